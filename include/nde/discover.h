/* nde discover: reading equations off a trained network.  Candidate-term libraries written in the
 * model language (monomials of the state components, sin/cos/exp of them, user expressions) and
 * sparse regression by sequentially thresholded least squares (STLSQ, Brunton, Proctor & Kutz
 * 2016, "Discovering governing equations from data by sparse identification of nonlinear
 * dynamical systems", PNAS 113:3932), with ridge on normalised columns and least squares through
 * LAPACK (dgelsd), a threshold sweep and model selection by an information criterion.
 *
 * The layer knows models only through their component names: evaluating the terms and the
 * networks at sample states is the model layer's nde_probe.
 */
#ifndef NDE_DISCOVER_H
#define NDE_DISCOVER_H

#include <stddef.h>

#include "nde/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- candidate terms ---- */

typedef struct nde_library_opts {
  int poly_degree;          /* monomials of total degree 1..poly_degree (default 3) */
  int constant;             /* include the constant term "1" (default 1) */
  int sin, cos, exp;        /* sin(s), cos(s), exp(s) of every component s (default 0) */
  int n_user;               /* user terms: expressions in the model language */
  const char *const *user;
} nde_library_opts;

NDE_API nde_library_opts nde_library_opts_default(void);

/* Read a library spec "poly:D[,sin][,cos][,exp][,noconst]" into o (user terms untouched).
 * NDE_ERR_ARG with err->msg naming the bad item and what was expected. */
NDE_API nde_status nde_library_opts_parse(const char *spec, nde_library_opts *o, nde_error *err);

/* The terms of the library over n components named names ("x", "y[2]") as expressions of the
 * model language, in a fixed order: 1, monomials by degree (x, y, x^2, x*y, y^2, ...), sin, cos,
 * exp, user terms.  *terms is one malloc'ed block (free() once) of *n_terms pointers and texts.
 * NDE_ERR_ARG (degree < 0 or > 8, empty library), NDE_ERR_LIMIT (more than
 * NDE_LIBRARY_MAX_TERMS terms), NDE_ERR_NOMEM. */
#define NDE_LIBRARY_MAX_TERMS 4096
NDE_API nde_status nde_library_terms(int n, const char *const *names, const nde_library_opts *o,
                             int *n_terms, char ***terms, nde_error *err);

/* ---- sparse regression ---- */

typedef struct nde_stlsq_opts {
  /* Ridge weight alpha: each least-squares step minimises |A xi - b|^2 + alpha m |xi|^2 on the
   * normalised problem (columns of A and b scaled to unit root-mean-square over the m rows).
   * Default 1e-6. */
  double ridge;
  int max_iter; /* threshold/refit rounds (default 25) */
} nde_stlsq_opts;

NDE_API nde_stlsq_opts nde_stlsq_opts_default(void);

/* One STLSQ solution of y ~ Theta xi at threshold lambda.
 *   m, p    rows (samples) and columns (terms); Theta is m x p row-major, y has m values
 *   lambda  a term is dropped while |xi_j| rms(Theta_j) < lambda rms(y): lambda is the share of
 *           the target's size below which a term's contribution counts as zero
 *   xi      receives p coefficients in the units of Theta and y (0 for dropped terms)
 * Columns that are zero on every row are never selected.  Allocates its workspace once.
 * Returns NDE_OK, NDE_ERR_ARG (sizes, non-finite values), NDE_ERR_NUMERIC (LAPACK failed),
 * NDE_ERR_NOMEM; the message goes to err (may be NULL). */
NDE_API nde_status nde_stlsq(int m, int p, const double *Theta, const double *y, double lambda,
                     const nde_stlsq_opts *opts, double *xi, nde_error *err);

/* Ridge least squares of y on the columns j with support[j] != 0 only (the refit of a chosen
 * support); xi receives p coefficients, 0 off the support.  Errors as nde_stlsq. */
NDE_API nde_status nde_lstsq_support(int m, int p, const double *Theta, const double *y,
                             const int *support, double ridge, double *xi, nde_error *err);

/* Model selection over a threshold sweep. */
typedef enum { NDE_CRIT_BIC = 0, NDE_CRIT_AIC } nde_criterion;

typedef struct nde_sweep_point {
  double threshold;
  int n_terms;      /* non-zero coefficients */
  double rss;       /* residual sum of squares in y's units */
  double rel_error; /* sqrt(rss / sum y^2) */
  double aic, bic;  /* m ln(rss/m) + 2k and m ln(rss/m) + k ln m, k = n_terms */
} nde_sweep_point;

/* STLSQ at each of the n_thr thresholds thr (increasing).  pts[n_thr] and XI[n_thr x p] receive
 * each solution.  *chosen receives the index of the point with the smallest criterion (the
 * first such, i.e. the smallest threshold giving that model).  Errors as nde_stlsq. */
NDE_API nde_status nde_stlsq_sweep(int m, int p, const double *Theta, const double *y, int n_thr,
                           const double *thr, const nde_stlsq_opts *opts, nde_criterion crit,
                           nde_sweep_point *pts, double *XI, int *chosen, nde_error *err);

/* ---- sampling ---- */

/* Draw N states uniformly in the box spanned by the n_pts points P (n_pts x n, row-major),
 * widened on each side by margin times its width in every component, into OUT (N x n).  A
 * component with zero width gets the margin of its absolute value (or of 1 when it is 0). */
NDE_API void nde_sample_box(size_t n_pts, int n, const double *P, double margin, size_t N, nde_rng *rng,
                    double *OUT);

#ifdef __cplusplus
}
#endif
#endif
