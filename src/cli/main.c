/* nde: the command-line program.  `nde COMMAND [options]`; the commands are the table of
 * cli.h, each in its own cmd_*.c. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "nde/model.h"

typedef struct command {
  const char *name;
  const char *help;
  int (*run)(int argc, char **argv);
} command;

#define NDE_CLI_ENTRY(name, help) {#name, help, nde_cmd_##name},
static const command commands[] = {NDE_CLI_COMMANDS(NDE_CLI_ENTRY)};
#undef NDE_CLI_ENTRY

void nde_cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("nde: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int nde_cli_exit_code(nde_status st) {
  switch (st) {
    case NDE_OK: return NDE_EXIT_OK;
    case NDE_ERR_ARG:
    case NDE_ERR_LIMIT:
    case NDE_ERR_PARSE:
    case NDE_ERR_MODEL:
    case NDE_ERR_DATA: return NDE_EXIT_INPUT;
    case NDE_ERR_IO:
    case NDE_ERR_NOMEM: return NDE_EXIT_IO;
    case NDE_ERR_NUMERIC:
    case NDE_ERR_CALLBACK: return NDE_EXIT_NUMERIC;
    default: return NDE_EXIT_INTERNAL;
  }
}

int nde_cli_input_exit(nde_status st) {
  return st == NDE_ERR_IO || st == NDE_ERR_NOMEM ? NDE_EXIT_INPUT : nde_cli_exit_code(st);
}

int nde_cli_report_model(const struct nde_model *m, nde_status st) {
  int n = nde_model_n_diags(m);
  if (n == 0) {
    /* No place in the file (unreadable, no memory): the message names the file. */
    const char *msg = m ? nde_model_errmsg(m) : nde_status_str(st);
    size_t len = strlen(msg);
    while (len > 0 && msg[len - 1] == '\n') len--;
    nde_cli_error("%.*s", (int)len, len ? msg : nde_status_str(st));
    return nde_cli_input_exit(st);
  }
  for (int i = 0; i < n; i++) {
    nde_model_diag d;
    if (nde_model_get_diag(m, i, &d) != NDE_OK) continue;
    fprintf(stderr, "nde: %s: %s:%d:%d: %s\n", d.is_note ? "note" : "error", nde_model_filename(m),
            d.line, d.col, d.message);
    fprintf(stderr, "%5d | %s\n      | %*s^\n", d.line, d.source_line, d.col - 1, "");
  }
  /* The summary line of errors not shown, if any, is the last line of the full message. */
  const char *all = nde_model_errmsg(m);
  const char *more = strstr(all, " more error");
  if (more) {
    while (more > all && more[-1] != '\n') more--;
    fprintf(stderr, "nde: %s", more);
  }
  return nde_cli_input_exit(st);
}

static void usage(FILE *f) {
  fprintf(f, "usage: nde COMMAND [options] (nde COMMAND --help for its options)\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
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
    printf("nde %s\n", nde_version());
    return NDE_EXIT_OK;
  }
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (!strcmp(cmd, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  nde_cli_error("unknown command '%s' (expected one of the commands of nde --help)", cmd);
  return NDE_EXIT_INPUT;
}
