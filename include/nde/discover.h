/* nde discover: reading equations off a trained network.  Candidate-term libraries written in the
 * model language (monomials of the state components, sin/cos/exp of them, user expressions) and
 * sparse regression by sequentially thresholded least squares (STLSQ, Brunton, Proctor & Kutz
 * 2016, "Discovering governing equations from data by sparse identification of nonlinear
 * dynamical systems", PNAS 113:3932), with ridge on normalised columns and least squares through
 * LAPACK (dgelsd), a threshold sweep and model selection by an information criterion.
 *
 * The regression layer knows models only through their component names: evaluating the terms
 * and the networks at sample states is the model layer's nde_probe.  The discovery pipeline on a
 * fitted model (sampling, candidates, selection by trajectory predictions, the discovered model)
 * is at the end of this header.
 */
#ifndef NDE_DISCOVER_H
#define NDE_DISCOVER_H

#include <stddef.h>

#include "nde/core.h"
#include "nde/result.h"

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
 * exp, user terms.  *terms is one allocated block (nde_free once) of *n_terms pointers and texts.
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

/* ---- discovery on a fitted model ---- */

typedef struct nde_discover_opts {
  /* Comma-separated names of the nets to explain; NULL: every net the model calls. */
  const char *nets;
  /* Candidate terms (nde_library_opts_parse; user terms are copied at create). */
  nde_library_opts library;
  long points;          /* samples along each fitted trajectory; default 200 */
  long samples;         /* extra samples uniform in the box around them; default 0 */
  double margin;        /* the box extends margin times its width beyond them; default 0.1 */
  uint64_t seed;        /* of the box samples; default 1 */
  double threshold;     /* >= 0: one STLSQ threshold instead of the sweep; default -1 (sweep) */
  int n_thresholds;     /* sweep points, geometric on [1e-3, 1]; default 41 */
  nde_criterion criterion; /* model selection; default BIC */
  double ridge;         /* ridge weight on normalised columns; default 1e-6 */
  /* Threads of the sampling (the series' integrations, then the nets and terms at the samples,
   * in blocks); the samples do not depend on it.  <= 0 (default): every core.  Inside a job of
   * an outer run (a member of stability selection) the sampling takes that job's thread. */
  int threads;
} nde_discover_opts;

NDE_API nde_discover_opts nde_discover_opts_default(void);

typedef struct nde_discovery nde_discovery;

/* Step 1: the net calls to explain (one output per component of each), the candidate terms and a
 * probe of both.  r is borrowed and must outlive the discovery.  Statuses: NDE_ERR_ARG (an
 * unknown net, a model without nets, bad options, a vector-valued term), NDE_ERR_PARSE /
 * NDE_ERR_MODEL (a term that does not compile; message names it), NDE_ERR_NOMEM. */
NDE_API nde_status nde_discovery_create(const nde_result *r, const nde_discover_opts *o,
                                        nde_discovery **out, nde_error *err);
NDE_API void nde_discovery_destroy(nde_discovery **d);
/* Step 2: samples along every fitted series (the fitted model integrated from its fitted initial
 * state over the series' span) and in the box, with the net outputs and the terms there.
 * NDE_ERR_NUMERIC when the model cannot be integrated or is not finite at a sample. */
NDE_API nde_status nde_discovery_sample(nde_discovery *d, nde_error *err);
NDE_API size_t nde_discovery_n_samples(const nde_discovery *d);
/* The sample states, n_samples x n (owned by the discovery). */
NDE_API const double *nde_discovery_samples(const nde_discovery *d);
/* Step 3: the candidate models of every output: the distinct supports of the STLSQ sweep over
 * the output's own terms (nde_discovery_term_allowed), each refitted by ridge least squares on
 * its support, and every one-term model.  Samples first when
 * step 2 was not called. */
NDE_API nde_status nde_discovery_candidates(nde_discovery *d, nde_error *err);
/* Step 4: each candidate replaces its output in the model and predicts one observation interval
 * at a time from the fitted curves, with the fit's settings; the criterion of the squared errors
 * (N ln(SSE/N) + k ln N for BIC, 2k for AIC) chooses.  Runs the earlier steps when needed. */
NDE_API nde_status nde_discovery_select(nde_discovery *d, nde_error *err);
/* All four steps. */
NDE_API nde_status nde_discover(const nde_result *r, const nde_discover_opts *o,
                                nde_discovery **out, nde_error *err);

/* The candidate terms (expressions in the model language). */
NDE_API int nde_discovery_n_terms(const nde_discovery *d);
NDE_API const char *nde_discovery_term(const nde_discovery *d, int j);

/* The outputs explained: a component of a net call. */
typedef struct nde_discovery_output {
  const char *net;   /* the net's name */
  int component;     /* 0-based output component */
  const char *args;  /* the call's argument text in the source (args_len bytes, not terminated) */
  int args_len;
  int line;          /* of the call */
  int n_candidates;
  int chosen;        /* index of the chosen candidate; -1 before selection */
} nde_discovery_output;
NDE_API int nde_discovery_n_outputs(const nde_discovery *d);
/* 1 when term j is a candidate of output i: every state and input it depends on is one the
 * call's arguments depend on (a network is a function of its arguments alone, so a term in any
 * other variable could only copy a correlation along the samples); else 0 (also for bad
 * indices).  Terms without variables (the constant, parameters, t) are candidates of every
 * output. */
NDE_API int nde_discovery_term_allowed(const nde_discovery *d, int i, int j);
NDE_API nde_status nde_discovery_get_output(const nde_discovery *d, int i,
                                            nde_discovery_output *out);

typedef struct nde_discovery_candidate {
  int n_terms;
  double threshold;  /* the first sweep threshold giving it; NaN for a one-term model */
  double ridge;
  double rel_error;  /* regression residual relative to the network output */
  double traj_rms;   /* RMS of the one-interval prediction errors (after selection; else NaN) */
  double crit;       /* the criterion (after selection; else NaN) */
  const double *xi;  /* coefficients, one per term (0 off the support); owned by the discovery */
} nde_discovery_candidate;
NDE_API nde_status nde_discovery_get_candidate(const nde_discovery *d, int output, int k,
                                               nde_discovery_candidate *out);
/* Candidate k of an output as an equation: "-0.921*x*y" (pretty = 0: model-language syntax) or
 * "−0.921·x·y" (pretty = 1: for display).  Release with nde_free; NULL on bad
 * indices or no memory. */
NDE_API char *nde_discovery_equation(const nde_discovery *d, int output, int k, int pretty);
/* The discovered model: the source with every explained call replaced by its chosen terms,
 * each net declaration by the coefficients as learnable parameters, and the values of the other
 * learnable (not per-series) parameters by their fitted values, after a comment listing the
 * equations.  It is compiled before it is returned (NDE_ERR_INTERNAL if it does not).  *text:
 * release with nde_free.  NDE_ERR_ARG before selection. */
NDE_API nde_status nde_discovery_model_text(const nde_discovery *d, char **text, nde_error *err);

/* ---- stability selection over an ensemble (src/discover/stability.c) ----
 *
 * Meinshausen & Buhlmann (2010), "Stability selection", JRSS B 72:417.  The discovery pipeline
 * above runs on every member of an ensemble result (nde_result_fit_ensemble: each member its
 * own trained networks, from its own seed and optionally its own half of the data); per output
 * and candidate term, the frequency with which the members' chosen models contain the term is
 * counted, and the final law of each output keeps the terms whose frequency is at least
 * `inclusion` (default NDE_DEFAULT_INCLUSION = 0.6, the lower end of the range 0.6-0.9 that
 * Meinshausen & Buhlmann recommend: a term must come back in most members).  Every member's
 * network output is then refitted on the final terms (ridge least squares on its own samples),
 * and the quantiles of those coefficients over the members are their intervals.  The final
 * model's coefficients are the refit on the result's own fit.  Members whose fit did not end
 * well, or whose model cannot be integrated for sampling, are left out of the counts
 * (nde_stability_n_members says how many counted).  Members run on threads; the counts do not
 * depend on the thread count. */

#define NDE_DEFAULT_INCLUSION 0.6

typedef struct nde_stability_opts {
  nde_discover_opts discover; /* the discovery of every member (and of the result's own fit) */
  double inclusion;           /* frequency a term needs to be in the final law; default 0.6 */
  double level;               /* of the coefficient intervals; default 0.95 */
  int threads;                /* <= 0 (default): every core */
  /* Called from the calling thread as members end (done of total, per pass: the discovery,
   * then the refit on the final terms); non-zero stops (NDE_OK, *out NULL, *stopped 1). */
  int (*progress)(void *ctx, int done, int total);
  void *progress_ctx;
} nde_stability_opts;

NDE_API nde_stability_opts nde_stability_opts_default(void);

typedef struct nde_stability nde_stability;

/* Stability selection on the ensemble result r (borrowed; it must outlive the selection).
 * Statuses: NDE_ERR_ARG (a result without members, bad options, and those of
 * nde_discovery_create), NDE_ERR_NUMERIC (no member could be integrated), NDE_ERR_NOMEM. */
NDE_API nde_status nde_discover_stable(const nde_result *r, const nde_stability_opts *o,
                                       nde_stability **out, int *stopped, nde_error *err);
NDE_API void nde_stability_destroy(nde_stability **s);
/* Members counted. */
NDE_API int nde_stability_n_members(const nde_stability *s);
/* The discovery on the result's own fit with the final laws chosen (outputs, terms, equations,
 * candidates: the accessors above).  Owned by the selection. */
NDE_API const nde_discovery *nde_stability_discovery(const nde_stability *s);

/* Term j of output q across the members. */
typedef struct nde_stable_term {
  double frequency;  /* share of the counted members whose chosen model has the term */
  int selected;      /* frequency >= inclusion: in the final law */
  double coef;       /* its coefficient in the final law (the result's own fit); 0 when not */
  double median, lower, upper; /* over the members' refits on the final terms (NaN when not
                                * selected): median and the level interval */
  int n;             /* members with a coefficient */
} nde_stable_term;
NDE_API nde_status nde_stability_get(const nde_stability *s, int q, int j, nde_stable_term *out);
/* The final law of output q as an equation (as nde_discovery_equation).  Release with nde_free. */
NDE_API char *nde_stability_equation(const nde_stability *s, int q, int pretty);
/* The discovered model with the final laws (as nde_discovery_model_text). */
NDE_API nde_status nde_stability_model_text(const nde_stability *s, char **text, nde_error *err);

/* Make output q's chosen model the ridge least-squares fit on the terms with support[j] != 0
 * (one int per term, each a candidate of q: nde_discovery_term_allowed), refitted on the discovery's samples and added as a candidate when it is
 * new (its trajectory score is NaN).  Computes the candidates first when needed; once every
 * output has a chosen model, nde_discovery_model_text works without nde_discovery_select.
 * Statuses: NDE_ERR_ARG, NDE_ERR_NUMERIC, NDE_ERR_NOMEM. */
NDE_API nde_status nde_discovery_choose_support(nde_discovery *d, int q, const int *support,
                                                nde_error *err);

#ifdef __cplusplus
}
#endif
#endif
