/* The nde program: its subcommands and what they share (argument parsing, messages and exit
 * codes, loading models and data, progress).  A subcommand is nde_cmd_NAME(argc, argv) in its
 * own cmd_NAME.c; adding one is one line in NDE_CLI_COMMANDS (and its file in meson.build).  The
 * program reaches the library only through include/nde/. */
#ifndef NDE_CLI_H
#define NDE_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nde/nde.h"

/* Exit codes (shared/STYLE.md). */
enum {
  NDE_EXIT_OK = 0,
  NDE_EXIT_INTERNAL = 1,
  NDE_EXIT_INPUT = 2,   /* usage, model, data, mismatched checkpoint */
  NDE_EXIT_NUMERIC = 3, /* solver failed, training diverged */
  NDE_EXIT_IO = 4       /* I/O or resource failure */
};

/* X(name, one-line description) */
#define NDE_CLI_COMMANDS(X)                                                                  \
  X(check, "check a model file and print its states, parameters and nets")                   \
  X(simulate, "integrate a model and write synthetic data (HDF5), optionally noisy")         \
  X(fit, "fit a model to time series and write a result file")                               \
  X(grad, "print the loss and its gradient at given parameters (checks, timing)")           \
  X(inspect, "describe what a data or result file holds")                                   \
  X(discover, "read equations off the trained networks of a result file (STLSQ)")           \
  X(forecast, "integrate a fitted model beyond the data; score it against held-out data")   \
  X(export, "the learned model as standalone C, LaTeX or text equations")                    \
  X(merge, "several time-series files (experiments) into one batch file")                    \
  X(uncertainty, "standard errors and profile intervals of a finished fit, into its result")

#define NDE_CLI_DECLARE(name, help) int nde_cmd_##name(int argc, char **argv);
NDE_CLI_COMMANDS(NDE_CLI_DECLARE)
#undef NDE_CLI_DECLARE

/* ---- messages and exit codes ---- */

/* "nde: error: <message>" on stderr (one line; a newline is added). */
void nde_cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* The exit code for a library status. */
int nde_cli_exit_code(nde_status st);
/* The exit code for a failure to read an input: 2 (bad input) for a missing or unreadable file
 * too, since it is the user's to fix; other statuses as nde_cli_exit_code. */
int nde_cli_input_exit(nde_status st);
/* Print err's message and return the exit code for its status (input: as nde_cli_input_exit). */
int nde_cli_fail(const nde_error *err, int input);
/* The command being run (main sets it), so that a message can show how it is called. */
void nde_cli_set_command(const char *name);
/* Print a failed model load: each problem as "nde: error: FILE:LINE:COL: what" with the
 * offending line and a caret (an HDF5 file in the model's place: one line saying so, with the
 * command's synopsis).  Returns the exit code. */
int nde_cli_report_model(const nde_model *m, nde_status st);

/* nde_stop_message naming the state component whose value stopped the solve, when the solver
 * reports one ("solver rk4 stopped at t = 1.1, x not finite, after ..."); m may be NULL. */
char *nde_cli_stop_message(const char *method, const nde_solve_stats *s, const nde_model *m,
                           char *buf, size_t len);

/* ---- options ---- */

typedef enum {
  NDE_ARG_FLAG,   /* int, set to 1 */
  NDE_ARG_STR,    /* const char * */
  NDE_ARG_DOUBLE, /* double in [lo, hi] (lo excluded with NDE_ARG_GT) */
  NDE_ARG_INT,    /* int in [lo, hi] */
  NDE_ARG_LONG,   /* long in [lo, hi] */
  NDE_ARG_U64     /* uint64_t in [lo, hi] */
} nde_arg_kind;

enum { NDE_ARG_GT = 1, /* the lower bound is excluded */
       NDE_ARG_NODEFAULT = 2, /* the help shows no default */
       NDE_ARG_LT = 4 /* the upper bound is excluded */ };

typedef struct nde_arg {
  const char *name; /* "--lr" */
  nde_arg_kind kind;
  void *dest;       /* holds the default before parsing; the help prints it */
  const char *meta; /* placeholder in the help, e.g. "RATE" */
  const char *help;
  double lo, hi;    /* range of numeric options (inclusive unless NDE_ARG_GT, NDE_ARG_LT) */
  int flags;
  int seen;         /* set by the parser */
} nde_arg;

/* Rows of a table (the range fields are 0 for strings and flags). */
#define NDE_FLAG(name, dest, help) {name, NDE_ARG_FLAG, dest, NULL, help, 0, 0, 0, 0}
#define NDE_STR(name, dest, meta, help) {name, NDE_ARG_STR, dest, meta, help, 0, 0, 0, 0}
#define NDE_NUM(name, kind, dest, meta, help, lo, hi, flags) \
  {name, kind, dest, meta, help, lo, hi, flags, 0}

/* Parse argv[1..argc-1] (argv[0] is the command name): options of the table, as "--name VALUE"
 * or "--name=VALUE" (-o is --out), and positional arguments into pos (at most max_pos).
 * Numbers must be complete, finite and in the range the help prints; a whole-number option
 * takes any integral value, also written as 1e3 or 1000.0; an option given twice is an error.  Returns -1
 * to go on; otherwise the exit code (0 after --help, 2 after an error message naming the option,
 * what was expected and what was given). */
int nde_cli_parse(const char *usage, int argc, char **argv, nde_arg *opts, int n_opts,
                  const char **pos, int min_pos, int max_pos, int *n_pos);
/* The table entry of an option (NULL when absent). */
nde_arg *nde_cli_opt(nde_arg *opts, int n_opts, const char *name);

/* The solver and gradient options of every command that integrates (fit, grad, simulate,
 * forecast): table rows writing straight into library option structs, so the defaults and the
 * help numbers are the library's. */
#define NDE_CLI_N_SOLVER_ARGS 7
void nde_cli_solver_args(nde_arg *rows, nde_solver_opts *so);
void nde_cli_grad_arg(nde_arg *row, nde_grad_opts *go);
/* Check the solver/gradient choice against the registries and the options given together
 * (--dt with --steps-per-interval, options so->method does not read).  so->method NULL: the
 * method is not known yet (a forecast takes the fit's), and only the pairing is checked.
 * Prints the message; returns 0 or the exit code. */
int nde_cli_check_solver(nde_arg *opts, int n_opts, nde_solver_opts *so, nde_grad_opts *go);
/* NDE_EXIT_INPUT (after the message) when a solver option that method does not read was given:
 * --rtol, --atol, --h0 for a fixed-step method, --dt, --steps-per-interval for an adaptive one. */
int nde_cli_check_solver_reads(nde_arg *opts, int n_opts, const char *method);
/* The note that a gradient method approximating the continuous adjoint is not exact for the
 * fixed-step solver chosen (stderr; nothing otherwise).  For the caller to print when it speaks
 * (not quiet; rank 0). */
void nde_cli_note_inexact_grad(const nde_solver_opts *so, const nde_grad_opts *go);
/* The note that the result file at path holds a fit that did not end done or early-stop (failed,
 * diverged, interrupted, or a checkpoint of a running fit): its parameters are not a finished
 * fit's (stderr; nothing otherwise).  For the commands that use a result's parameters. */
void nde_cli_note_unfinished(const char *path, const nde_result *r);

/* ---- inputs and outputs ---- */

/* Load a model file; on failure print its diagnostics and return the exit code (else 0). */
int nde_cli_load_model(const char *path, nde_model **out);
/* The names of the model's state components ("x", "y[1]", ...), then with observables != 0 its
 * observables: the columns of a forecast.  Free with free(); NULL when out of memory. */
const char **nde_cli_column_names(const nde_model *m, int observables);
/* The names of the model's measured inputs, then of its constants from data, in their column
 * order (nde_series_extra's input_names and const_names): free with free(). */
const char **nde_cli_driver_names(const nde_model *m);
/* Open DATA.h5[:/group] for the model's states; on failure print the message, return the exit
 * code (else 0). */
int nde_cli_open_data(const char *path, const nde_model *m, nde_data **out);
/* An output path checked before any work: not an input (inputs NULL-terminated), not an
 * existing non-regular file, in an existing directory.  Prints and returns 2/4, else 0. */
int nde_cli_check_output(const char *option, const char *out, const char *const *inputs);

/* The CSV files of the command line (--inputs FILE.csv, --series TABLE.csv) are read line by
 * line with these two (cli_inputs.c).  What of line number lineno is content: the line after a
 * UTF-8 byte order mark on line 1 (as spreadsheets save; columns count from there), or NULL for
 * a blank line or a comment (first non-blank character '#'). */
const char *nde_cli_csv_content(const char *line, long lineno);
/* A field of a CSV line: [b, e) without the blanks around it (and a '\r' before its end of
 * line), and the column (1-based) where it starts. */
typedef struct nde_cli_field {
  const char *b, *e;
  int at;
} nde_cli_field;
/* The comma-separated fields of line up to its end of line, columns counted from line, into
 * *f[0 .. *n) (*cap entries, grown as needed; the caller frees *f).  0, or -1 out of memory. */
int nde_cli_csv_split(const char *line, nde_cli_field **f, int *cap, int *n);

/* Measured inputs read from the command line: n samples at t, u n x m in the model's order. */
typedef struct nde_cli_inputs {
  size_t n;
  double *t, *u;
} nde_cli_inputs;
/* The inputs of path for option opt: FILE.csv (header t,NAME,...; every input of the model a
 * column) or DATA.h5[:/GROUP] (the inputs of one series of a data file).  Returns 0 or prints
 * the message and returns the exit code. */
int nde_cli_read_inputs(const char *opt, const char *path, const nde_model *m,
                        nde_cli_inputs *in);
void nde_cli_inputs_free(nde_cli_inputs *in);
/* Whether s can name a series' group in a batch file: non-empty, no '/', not "." or "..", and
 * not "t" or "y" (a root /t or /y makes a file one series, docs/data-format.md). */
int nde_cli_group_name_ok(const char *s);
/* What nde_cli_group_name_ok expects, for messages. */
#define NDE_CLI_GROUP_NAME_RULE "a non-empty name without '/', other than ., .., t and y"
/* v as a whole number (decimal digits exactly, or a float form up to 2^53): 1 and *out, or 0. */
int nde_cli_whole_number(const char *v, long long *out);
/* "a,b,c" into *n names (views into *buf; free both with free(), also after an error), each
 * non-empty and given once; spec NULL gives none.  Returns 0 or prints and returns the code. */
int nde_cli_split_names(const char *opt, const char *spec, char **buf, const char ***names,
                        int *n);
/* "T=20,V=3" into consts (nde_model_n_data_consts values, by column): every constant declared
 * "(from data)" exactly once.  Returns 0 or prints the message and returns 2. */
int nde_cli_parse_consts(const char *opt, const char *spec, const nde_model *m, double *consts);
/* The same without requiring every constant: given[column] (zeroed by the caller) is set for
 * each constant spec gives; a constant given twice (also in given already) is refused. */
int nde_cli_parse_consts_given(const char *opt, const char *spec, const nde_model *m,
                               double *consts, unsigned char *given);

/* Write text (len bytes) to path atomically as every other output is written (nde_write_file:
 * a locked temporary file in the target's directory, synced and renamed over it; a symbolic
 * link is followed and stays a link; an existing file keeps its mode and, as root, its owner; a
 * new one gets 0666 less the umask; stale temporary files of the name are swept).  On failure
 * nothing is left behind, an existing file is untouched, the message names path and the exit
 * code (4) is returned; 0 on success. */
int nde_cli_write_text(const char *path, const char *text, size_t len);

/* "x=0.4,y=4.6" into u (components by name; vector parts as y[2]).  Returns 0 or prints the
 * message (naming opt) and returns 2. */
int nde_cli_parse_state(const char *opt, const char *spec, const nde_model *m, double *u);
/* --noise-std S (every column) or x=S,signal=S (by state component or observable) into
 * sd[state_dim + n_observables] (the states, then the observables; NaN where not given); prints
 * the error and returns NDE_EXIT_INPUT if bad (a standard deviation <= 0 included). */
int nde_cli_parse_noise(const char *spec, const nde_model *m, double *sd);
/* "beta=0.9,gamma=1" (natural units) into theta (nde_model_n_theta_full(m, n_series) values; a
 * per-series parameter gets the value for every series).  Returns 0 or prints and returns 2. */
int nde_cli_parse_params(const char *opt, const char *spec, const nde_model *m, int n_series,
                         double *theta);
/* theta (nde_model_n_theta_full(m, n_series) values) from FILE.h5: /params/theta of a result or
 * any file; a layout the file records (/params/layout) must be the model's, entry for entry, and
 * the length is checked before reading; shared parameters given by name (/params/values/NAME)
 * override.  Returns 0 or prints (naming the first differing layout entry) and returns the exit
 * code. */
int nde_cli_read_theta(const char *opt, const char *path, const nde_model *m, int n_series,
                       double *theta);
/* The starting theta of a command (nde_model_n_theta_full(m, n_series) values): the model's
 * initialisation from seed, then --init FILE.h5 (nde_cli_read_theta) when init is given, then
 * --param values (nde_cli_parse_params) on top when param is.  Returns 0 or the exit code (the
 * message printed). */
int nde_cli_start_theta(const nde_model *m, uint64_t seed, int n_series, const char *init,
                        const char *param, double *theta);

/* Predictions for trajectory k of the data (tr, its times) into Y (tr->n x n_state): 0, or
 * non-zero when they cannot be made, with the reason appended to why when there is one (a solve
 * that stopped). */
typedef int (*nde_cli_predict_fn)(void *ctx, size_t k, const nde_traj *tr, double *Y,
                                  nde_str *why);
/* Why a loss over the data d is not finite although the solves finished: the first observed
 * value whose squared misfit against predict's values is not finite (log_space: the --log-loss
 * comparison), appended to s as "DATA.h5:/ at t = 0.25, x: data 1e+200, model 7.8e+199: their
 * squared difference overflows", or the reason a trajectory cannot be computed ("in the
 * trajectory of DATA.h5:/" alone when that reason is already part of said, the message the
 * explanation goes into; said may be NULL).  Returns 1 when one is found, else 0 (s unchanged). */
int nde_cli_explain_loss(const nde_model *m, const nde_data *d, int log_space,
                         nde_cli_predict_fn predict, void *ctx, const char *said, nde_str *s);

/* Output times: t0 + i dt_out up to t1 (dt_out > 0; a last point within 1e-9 dt_out of t1 is t1),
 * or `points` equally spaced on [t0, t1]; or the times of a file (one per line, blank lines and
 * '#' comments skipped, or /t of an HDF5 file).  At least 2, strictly increasing, at most
 * NDE_CLI_MAX_TIMES.  *t malloc'ed.  Returns 0 or prints and returns the exit code. */
#define NDE_CLI_MAX_TIMES 100000000L
int nde_cli_grid_uniform(double t0, double t1, double dt_out, long points, double **t, long *n);
int nde_cli_times_file(const char *path, double **t, long *n);

/* The command line as one string ("nde fit ..."), for provenance: free with nde_free. */
char *nde_cli_command_line(int argc, char **argv);
/* Whether path ends with suffix, in either case (".CSV" is ".csv"). */
int nde_cli_ends_with(const char *path, const char *suffix);
/* 0 when path (NULL: no figure) names a figure nde can draw (.svg, .png, .pdf); else the message
 * and NDE_EXIT_INPUT. */
int nde_cli_check_plot(const char *path);

/* ---- progress ---- */

/* On a terminal one updating line on stderr; otherwise plain lines (callers rate-limit);
 * nothing with quiet. */
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
/* A line that stays (an event, a summary), ending any updating line first. */
void nde_cli_progress_note(nde_cli_progress *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void nde_cli_progress_end(nde_cli_progress *p);

/* ---- listing an HDF5 file (h5list.c, for nde inspect) ---- */

/* One group or dataset met by nde_reader_visit, copied. */
typedef struct nde_cli_object {
  char *path;
  nde_h5_kind kind;
  char type[24];
  int rank;
  size_t dims[NDE_DATA_MAX_RANK];
  int n_attrs;
  char *same_as; /* a group met before under this path, or NULL */
} nde_cli_object;

typedef struct nde_cli_listing {
  nde_cli_object *o;
  size_t n, cap;
  int nomem;
} nde_cli_listing;

/* The nde_reader_visit callback that appends to a listing (ctx); sets nomem and stops on failure. */
int nde_cli_listing_collect(void *ctx, const nde_h5_object *obj);
void nde_cli_listing_free(nde_cli_listing *L);
/* "contents:" and one line per group and dataset, with small values and every attribute. */
void nde_cli_print_contents(nde_reader *r, const nde_cli_listing *L);
/* Every attribute of obj, one per line after indent; returns how many. */
int nde_cli_print_attrs(nde_reader *r, const char *obj, const char *indent);
/* At most max_lines lines of text, each after indent, then how many more there are. */
void nde_cli_print_text_lines(const char *indent, const char *text, int max_lines);

#endif
