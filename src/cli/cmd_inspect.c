/* nde inspect: placeholder until its implementation lands. */
#include "cli.h"

int nde_cmd_inspect(int argc, char **argv) {
  (void)argc;
  (void)argv;
  nde_cli_error("inspect: not implemented yet");
  return NDE_EXIT_INTERNAL;
}
