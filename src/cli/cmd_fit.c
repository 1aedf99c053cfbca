/* nde fit: placeholder until its implementation lands. */
#include "cli.h"

int nde_cmd_fit(int argc, char **argv) {
  (void)argc;
  (void)argv;
  nde_cli_error("fit: not implemented yet");
  return NDE_EXIT_INTERNAL;
}
