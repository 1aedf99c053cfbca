/* The nde program: its subcommands and the helpers they share (messages and exit codes).
 * A subcommand is a function nde_cmd_NAME(argc, argv) in its own cmd_NAME.c; adding one is one
 * line in NDE_CLI_COMMANDS below (and its file in meson.build). */
#ifndef NDE_CLI_H
#define NDE_CLI_H

#include "nde/core.h"

/* Exit codes (shared/STYLE.md). */
enum {
  NDE_EXIT_OK = 0,
  NDE_EXIT_INTERNAL = 1,
  NDE_EXIT_INPUT = 2,   /* usage, model, data, mismatched checkpoint */
  NDE_EXIT_NUMERIC = 3, /* solver failed, training diverged */
  NDE_EXIT_IO = 4       /* I/O or resource failure */
};

/* X(name, one-line description) */
#define NDE_CLI_COMMANDS(X)                                                            \
  X(check, "check a model file and print its states, parameters and nets")             \
  X(simulate, "integrate a model and write synthetic data (HDF5), optionally noisy")  \
  X(fit, "fit a model to time series and write a result file")                       \
  X(grad, "print the loss and its gradient at given parameters (checks, timing)")    \
  X(inspect, "describe what a data or result file holds") \
  X(discover, "read equations off the trained networks of a result file (STLSQ)") \
  X(forecast, "integrate a fitted model beyond the data; score it against held-out data") \
  X(export, "the learned model as standalone C, LaTeX or text equations")

#define NDE_CLI_DECLARE(name, help) int nde_cmd_##name(int argc, char **argv);
NDE_CLI_COMMANDS(NDE_CLI_DECLARE)
#undef NDE_CLI_DECLARE

/* "nde: error: <message>" on stderr (one line; a newline is added). */
void nde_cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* The exit code for a library status. */
int nde_cli_exit_code(nde_status st);

/* The exit code for a failure to read an input file: 2 (bad input) for a missing or unreadable
 * file too, since it is the user's to fix; other statuses map as nde_cli_exit_code. */
int nde_cli_input_exit(nde_status st);

/* Print a failed model load: each problem as "nde: error: FILE:LINE:COL: what" followed by the
 * offending line and a caret.  Returns the exit code. */
struct nde_model;
int nde_cli_report_model(const struct nde_model *m, nde_status st);

#endif
