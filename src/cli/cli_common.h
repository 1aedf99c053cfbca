/* Helpers shared by the nde subcommands: strict option parsing, loading a model and a data file
 * with one clear message on failure, and progress display (an updating line on a terminal,
 * plain periodic lines otherwise). */
#ifndef NDE_CLI_COMMON_H
#define NDE_CLI_COMMON_H

#include <stdio.h>

#include "nde/data.h"
#include "nde/model.h"
#include "nde/solve.h"
#include "nde/train.h"

typedef enum { NDE_ARG_FLAG, NDE_ARG_STR, NDE_ARG_DOUBLE, NDE_ARG_LONG } nde_arg_kind;

typedef struct nde_arg {
  const char *name;  /* "--lr" */
  nde_arg_kind kind;
  void *dest;        /* int * (FLAG: set to 1), const char **, double *, long * */
  const char *meta;  /* placeholder in the help, e.g. "RATE" */
  const char *help;
  int seen;          /* set by the parser */
} nde_arg;

/* Parse argv[1..argc-1] (argv[0] is the command name): options of the table, as "--name VALUE"
 * or "--name=VALUE", and positional arguments into pos (at most max_pos).  Numbers must be
 * complete and finite.  Returns -1 to go on; otherwise the exit code to return (0 after --help,
 * 2 after an error message naming the option and what was expected). */
int nde_cli_parse(const char *usage, int argc, char **argv, nde_arg *opts, int n_opts,
                  const char **pos, int min_pos, int max_pos, int *n_pos);

/* Load a model file; on failure print its diagnostics and return the exit code (else 0): 2 for
 * anything wrong with the input, an unreadable file included. */
int nde_cli_load_model(const char *path, nde_model **out);

/* The names of the model's state components ("x", "y[1]", ...); free with free(). */
const char **nde_cli_component_names(const nde_model *m);

/* Open DATA.h5[:/group] for the model's states; on failure print the message, return the exit
 * code (else 0). */
int nde_cli_open_data(const char *path, const nde_model *m, nde_data **out);

/* Range checks for numeric options: print "OPTION: expected ..., got V" and return 2 when v is
 * out of range (below min, or not above min when strict), else 0. */
int nde_cli_check_long(const char *option, long v, long min);
int nde_cli_check_double(const char *option, double v, double min, int strict);

/* The solver and gradient options shared by the commands that solve and differentiate a model
 * against data (fit, grad): one table block, one validation, one translation. */
typedef struct nde_cli_solve_args {
  const char *solver, *grad;
  double dt, rtol, atol, h0;
  long steps, max_steps;
} nde_cli_solve_args;

nde_cli_solve_args nde_cli_solve_args_default(void);

/* Rows of an nde_arg table for the fields of a (an nde_cli_solve_args lvalue). */
#define NDE_CLI_SOLVE_ARGS(a)                                                                  \
  {"--solver", NDE_ARG_STR, &(a).solver, "NAME",                                               \
   "integrator: euler, rk4, dopri5, cvode-adams, cvode-bdf (default rk4)", 0},                 \
      {"--dt", NDE_ARG_DOUBLE, &(a).dt, "H",                                                   \
       "fixed step size (the last step of an interval is shortened)", 0},                      \
      {"--steps-per-interval", NDE_ARG_LONG, &(a).steps, "N",                                  \
       "equal steps between observations (default 5 when --dt is not given)", 0},             \
      {"--rtol", NDE_ARG_DOUBLE, &(a).rtol, "R", "relative tolerance of adaptive solvers (1e-6)", \
       0},                                                                                     \
      {"--atol", NDE_ARG_DOUBLE, &(a).atol, "A", "absolute tolerance of adaptive solvers (1e-9)", \
       0},                                                                                     \
      {"--h0", NDE_ARG_DOUBLE, &(a).h0, "H", "first step of adaptive solvers (0: automatic)", 0}, \
      {"--max-steps", NDE_ARG_LONG, &(a).max_steps, "N", "step budget of one solve (1000000)",  \
       0},                                                                                     \
      {"--grad", NDE_ARG_STR, &(a).grad, "METHOD",                                             \
       "discrete, backsolve, interp, forward or auto (default discrete)", 0}

/* Check the values (naming the offending option) and fill so and go (which point into a for
 * the method names).  Returns 0 or prints the message and returns 2. */
int nde_cli_solve_opts(const nde_cli_solve_args *a, nde_solver_opts *so, nde_grad_opts *go);

/* The model's right-hand side (batch 1) and the fit objective over the series.  Returns 0 or
 * prints the message (the solver's or the objective's own) and returns the exit code. */
int nde_cli_make_fit(nde_model *m, const char *model_path, const nde_solver_opts *so,
                     const nde_grad_opts *go, const nde_fit_opts *fo, int n_series,
                     const nde_fit_series *series, nde_rhs **rhs, nde_fit **fit);

/* The series of a data file as the fit objective reads them: *series (n_traj entries) and *u0s
 * (n_traj x n initial states: each series' first row, where a state is unobserved the model
 * file's initial value).  Free both with free().  Returns 0 or prints the message and returns the
 * exit code. */
int nde_cli_series(const char *data_path, const nde_model *m, const nde_data *d,
                   nde_fit_series **series, double **u0s);

/* Fill theta (nde_model_n_theta values) from /params/theta of init (length checked against the
 * model) or, with init NULL, from the model's initialisation with seed.  Returns 0 or prints the
 * message and returns the exit code. */
int nde_cli_theta(const char *init, const nde_model *m, const char *model_path, uint64_t seed,
                  double *theta);

/* One sentence on a solve that stopped early, with what to try: e.g. "solver dopri5 stopped at
 * t = 0.93 after 10000 steps (step size 1.2e-09): the step budget was used up; the problem may be
 * stiff: try --solver cvode-bdf".  Writes into buf (len bytes). */
void nde_cli_stop_message(char *buf, size_t len, const char *solver, const nde_solve_stats *s);

/* Progress output: on a terminal one updating line on stderr; otherwise a plain line per call
 * (callers rate-limit); nothing with quiet. */
typedef struct nde_cli_progress {
  int tty;
  int quiet;
  double t_start;
  int line_open;
} nde_cli_progress;

void nde_cli_progress_init(nde_cli_progress *p, int quiet);
/* Seconds since an arbitrary origin (monotonic). */
double nde_cli_now(void);
void nde_cli_progress_line(nde_cli_progress *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* A line that stays (an event or a final summary), ending any updating line first. */
void nde_cli_progress_note(nde_cli_progress *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void nde_cli_progress_end(nde_cli_progress *p);

#endif
