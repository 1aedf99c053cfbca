/* nde: the command-line program.  `nde COMMAND [options]`; the commands are the table of
 * cli.h, each in its own cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct command {
  const char *name;
  const char *help;
  int (*run)(int argc, char **argv);
} command;

#define NDE_CLI_ENTRY(name, help) {#name, help, nde_cmd_##name},
static const command commands[] = {NDE_CLI_COMMANDS(NDE_CLI_ENTRY)};
#undef NDE_CLI_ENTRY

static void usage(FILE *f) {
  fprintf(f, "usage: nde COMMAND [options] (nde COMMAND --help for its options)\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    nde_cli_error("no command given (expected one of the commands below)");
    usage(stderr);
    return NDE_EXIT_INPUT;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    usage(stdout);
    return NDE_EXIT_OK;
  }
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("nde %s (library %s)\nHDF5 %s\n%s\n", NDE_VERSION_STRING, nde_version(),
           nde_data_hdf5_version(), nde_nn_blas_config());
#ifdef NDE_TEST_HOOKS
    printf("test hooks: compiled in\n");
#endif
    return NDE_EXIT_OK;
  }
  /* Every error is reported in one line of ours; HDF5 must print nothing, not even at exit. */
  nde_data_hdf5_errors_off();
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (!strcmp(cmd, commands[i].name)) {
      nde_cli_set_command(commands[i].name);
      return commands[i].run(argc - 1, argv + 1);
    }
  nde_cli_error("unknown command '%s' (expected one of the commands of nde --help)", cmd);
  return NDE_EXIT_INPUT;
}
