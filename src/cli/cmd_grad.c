/* nde grad: placeholder until its implementation lands. */
#include "cli.h"

int nde_cmd_grad(int argc, char **argv) {
  (void)argc;
  (void)argv;
  nde_cli_error("grad: not implemented yet");
  return NDE_EXIT_INTERNAL;
}
