/* Helpers of `nde simulate` and `nde inspect`: numbers printed the way a scientist types them
 * and a command line recorded as provenance. */
#ifndef NDE_CLI_SIM_H
#define NDE_CLI_SIM_H

#include <stddef.h>

#define NDE_CLI_NUM_MAX 32

/* The shortest decimal that reads back as the same double (0.9, not 0.90000000000000002);
 * "nan", "inf" for those.  Returns buf. */
const char *nde_cli_num(double v, char buf[NDE_CLI_NUM_MAX]);

/* "nde ARG1 ARG2 ...": argv[0..argc-1] joined by spaces, an argument with blanks, quotes or
 * shell characters in single quotes.  malloc'ed (free()); NULL on no memory. */
char *nde_cli_command_line(int argc, char **argv);

#endif
