/* nde simulate: placeholder until its implementation lands. */
#include "cli.h"

int nde_cmd_simulate(int argc, char **argv) {
  (void)argc;
  (void)argv;
  nde_cli_error("simulate: not implemented yet");
  return NDE_EXIT_INTERNAL;
}
