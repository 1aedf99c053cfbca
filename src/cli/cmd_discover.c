/* nde discover FIT.h5: read the missing physics off a trained network as equations.  Samples the
 * states along the fitted trajectories (the learned model integrated densely from the fitted
 * initial states) and optionally in a box around them, evaluates each net call and a library of
 * candidate terms there (model probes), and regresses every output on the terms by STLSQ with a
 * threshold sweep scored by BIC (Brunton, Proctor & Kutz 2016; Rackauckas et al. 2020, the UDE
 * paper's last step).  Writes MODEL_discovered.nde with each explained call replaced by its
 * terms, the coefficients as learnable parameters, ready for `nde fit` to refine. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "fit_result.h"
#include "nde/discover.h"

#define USAGE "nde discover FIT.h5 [options]"
#define BATCH 256

typedef struct candidate {
  double threshold, ridge; /* the first sweep point that gave this support */
  int n_terms;
  double rel_error;        /* regression residual relative to the network output */
  double sse, crit;        /* trajectory misfit and its information criterion */
  double n_vals;
} candidate;

typedef struct out_model {
  int call;          /* index into the call list */
  int out;           /* output component (0-based) */
  const double *xi;  /* chosen coefficients (p) */
} out_model;

/* A parameter name for term j of output i of a net: "U1_xy", "U2_x2y", "U1_c" (constant),
 * "U1_t3" (a term with characters a name cannot hold). */
static void coef_name(const char *net, int out, int j, const char *term, char *buf, size_t size) {
  char s[64];
  size_t k = 0;
  int plain = 1;
  if (strcmp(term, "1") == 0) {
    snprintf(s, sizeof s, "c");
  } else {
    for (const char *c = term; *c && k + 1 < sizeof s; c++) {
      if (isalnum((unsigned char)*c) || *c == '_') s[k++] = *c;
      else if (*c == '*' || *c == '^' || *c == '[' || *c == ']') continue;
      else if (*c == '(' || *c == ')') continue;
      else plain = 0;
    }
    s[k] = '\0';
    if (!plain || k == 0 || k + 1 >= sizeof s) snprintf(s, sizeof s, "t%d", j + 1);
  }
  snprintf(buf, size, "%s%d_%s", net, out + 1, s);
}

/* Whether name occurs in text as a whole word. */
static int has_word(const char *text, const char *name) {
  size_t len = strlen(name);
  for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
    int before = p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
    int after = isalnum((unsigned char)p[len]) || p[len] == '_';
    if (!before && !after) return 1;
  }
  return 0;
}

/* "x·y", "x^2·y": a term for display. */
static void pretty_term(const char *term, char *buf, size_t size) {
  size_t k = 0;
  for (const char *c = term; *c && k + 3 < size; c++) {
    if (*c == '*') {
      memcpy(buf + k, "\xc2\xb7", 2); /* U+00B7 middle dot */
      k += 2;
    } else {
      buf[k++] = *c;
    }
  }
  buf[k] = '\0';
}

/* "−0.899·x·y + 0.1·x" (display) */
static void print_equation(FILE *f, const double *xi, int p, char **terms) {
  int first = 1;
  for (int j = 0; j < p; j++) {
    if (xi[j] == 0.0) continue;
    char t[256];
    pretty_term(terms[j], t, sizeof t);
    double c = xi[j];
    const char *sign = c < 0 ? (first ? "\xe2\x88\x92" : " \xe2\x88\x92 ") : (first ? "" : " + ");
    if (strcmp(terms[j], "1") == 0) fprintf(f, "%s%.4g", sign, fabs(c));
    else fprintf(f, "%s%.4g\xc2\xb7%s", sign, fabs(c), t);
    first = 0;
  }
  if (first) fprintf(f, "0");
}

/* The model's source with one call's output o replaced by the sparse expression xi . terms
 * (numbers inline) and its other outputs still read from the net: a candidate whose theta layout
 * is the model's own.  malloc'ed; NULL on no memory. */
static char *candidate_source(const char *src, const nde_model_net_call *cl, int width, int o,
                              const double *xi, int p, char **terms) {
  size_t src_len = strlen(src), cap = src_len + (size_t)p * 600 + (size_t)width * (cl->end - cl->begin + 32) + 64;
  char *s = malloc(cap);
  if (!s) return NULL;
  size_t len = 0;
#define PUT(...) len += (size_t)snprintf(s + len, cap - len, __VA_ARGS__)
  PUT("%.*s[", (int)cl->begin, src);
  for (int q = 0; q < width; q++) {
    if (q) PUT(", ");
    if (q != o) {
      PUT("%.*s[%d]", (int)(cl->end - cl->begin), src + cl->begin, q + 1);
      continue;
    }
    int any = 0;
    for (int j = 0; j < p; j++)
      if (xi[j] != 0) {
        PUT("%s(%.17g)*(%s)", any ? " + " : "", xi[j], terms[j]);
        any = 1;
      }
    if (!any) PUT("0");
  }
  PUT("]%s", src + cl->end);
#undef PUT
  return s;
}

/* Sum of squared differences between a candidate model's one-interval predictions and the fitted
 * curves: from every fitted state y(t_k), integrate to t_{k+1} (with the fit's solver and step)
 * and compare with y(t_{k+1}).  Short horizons judge the vector field along the data without the
 * phase drift that a small coefficient error builds up over a whole orbit.  *n_vals receives the
 * number of values compared; INFINITY when the candidate does not compile or a solve stops. */
static double trajectory_sse(const nde_fit_result *r, const char *text, size_t *n_vals) {
  nde_model *cm = NULL;
  *n_vals = 0;
  if (nde_model_load_string(text, strlen(text), "candidate", &cm, NULL) != NDE_OK) {
    nde_model_destroy(&cm);
    return INFINITY;
  }
  double sse = 0;
  const int n = r->n;
  double *Y = calloc(2 * (size_t)n, sizeof *Y);
  if (!Y) sse = INFINITY;
  for (size_t k = 0; k < r->n_series && isfinite(sse); k++) {
    const nde_traj *tr = nde_data_traj(r->fitted, k);
    double h = r->dt > 0 ? r->dt : 0, t_stop;
    long spi = r->dt > 0 ? 1 : (r->steps_per_interval > 0 ? r->steps_per_interval : 5);
    for (size_t i = 0; i + 1 < tr->n && isfinite(sse); i++) {
      const double *y0 = tr->y + i * (size_t)n, *y1 = y0 + n;
      int ok = 1;
      for (int j = 0; j < n; j++) ok &= isfinite(y0[j]) != 0;
      if (!ok) continue;
      if (nde_fit_result_integrate(r, cm, NULL, h, spi, 0, 0, y0, 2, tr->t + i, Y, &t_stop) != 0) {
        sse = INFINITY;
        break;
      }
      for (int j = 0; j < n; j++) {
        if (!isfinite(y1[j])) continue;
        double d = Y[n + j] - y1[j];
        sse += d * d;
        (*n_vals)++;
      }
    }
  }
  free(Y);
  nde_model_destroy(&cm);
  return isfinite(sse) ? sse : INFINITY;
}

int nde_cmd_discover(int argc, char **argv) {
  const char *nets = NULL, *library = "poly:3", *terms_opt = NULL, *out = NULL, *crit = "bic";
  double threshold = -1, margin = 0.1, ridge = 1e-6;
  long samples = 0, seed = 1, points = 200;
  int quiet = 0;
  nde_arg opts[] = {
      {"--net", NDE_ARG_STR, &nets, "NAME[,NAME]", "nets to explain (default: all)", 0},
      {"--library", NDE_ARG_STR, &library, "SPEC",
       "candidate terms: poly:D[,sin][,cos][,exp][,noconst] (default poly:3)", 0},
      {"--terms", NDE_ARG_STR, &terms_opt, "E1;E2", "extra terms, .nde expressions separated by ;", 0},
      {"--points", NDE_ARG_LONG, &points, "K",
       "samples along each fitted trajectory (default 200)", 0},
      {"--samples", NDE_ARG_LONG, &samples, "N",
       "extra samples uniform in the box around the trajectories (default 0)", 0},
      {"--margin", NDE_ARG_DOUBLE, &margin, "F",
       "the box extends F times its width beyond the trajectories (default 0.1)", 0},
      {"--seed", NDE_ARG_LONG, &seed, "N", "seed of the box samples (default 1)", 0},
      {"--threshold", NDE_ARG_DOUBLE, &threshold, "L",
       "fixed STLSQ threshold instead of the sweep (share of the output's RMS)", 0},
      {"--criterion", NDE_ARG_STR, &crit, "bic|aic", "model selection over the sweep (default bic)", 0},
      {"--ridge", NDE_ARG_DOUBLE, &ridge, "A",
       "ridge weight on normalised columns (default 1e-6)", 0},
      {"--out", NDE_ARG_STR, &out, "MODEL.nde",
       "discovered model (also -o; default MODEL_discovered.nde next to FIT.h5)", 0},
      {"--quiet", NDE_ARG_FLAG, &quiet, NULL, "print only the equations", 0},
  };
  const char *pos[1];
  int n_pos;
  int rc = nde_cli_parse(USAGE, argc, argv, opts, (int)(sizeof opts / sizeof *opts), pos, 1, 1,
                         &n_pos);
  if (rc >= 0) return rc;
  if (points < 2 || samples < 0 || seed < 0 || !(margin >= 0) || !(ridge >= 0) ||
      (opts[7].seen && !(threshold >= 0)) || points > 1000000 || samples > 10000000) {
    nde_cli_error("bad option value: --points must be >= 2, --samples, --seed, --margin, --ridge "
                  "and --threshold >= 0");
    return NDE_EXIT_INPUT;
  }
  nde_criterion criterion;
  if (!strcmp(crit, "bic")) criterion = NDE_CRIT_BIC;
  else if (!strcmp(crit, "aic")) criterion = NDE_CRIT_AIC;
  else {
    nde_cli_error("--criterion: expected bic or aic, got '%s'", crit);
    return NDE_EXIT_INPUT;
  }
  nde_library_opts lo = nde_library_opts_default();
  nde_error err;
  if (nde_library_opts_parse(library, &lo, &err) != NDE_OK) {
    nde_cli_error("--library: %s", err.msg);
    return NDE_EXIT_INPUT;
  }

  nde_fit_result r;
  rc = nde_fit_result_read(pos[0], 1, &r);
  if (rc) return rc;
  nde_model *m = r.model;
  const int n = r.n;
  nde_model_net_call *calls = NULL;
  int n_calls = 0, n_sel = 0;
  char *user_buf = NULL, **terms = NULL, **exprs = NULL, *src_out = NULL;
  const char **user = NULL;
  double *S = NULL, *St = NULL, *V = NULL, *Theta = NULL, *y = NULL, *XI = NULL, *chosen_xi = NULL;
  nde_sweep_point *pts = NULL;
  candidate *cand = NULL;
  double *cand_xi = NULL;
  int *support = NULL;
  int *sel = NULL, *call_width = NULL;
  nde_probe *probe = NULL;
  out_model *om = NULL;
  int n_om = 0, p = 0;
  FILE *f = NULL;
  char out_path[4096];

  if (nde_model_net_calls(m, &n_calls, &calls) != NDE_OK) {
    nde_cli_error("out of memory");
    rc = NDE_EXIT_IO;
    goto done;
  }
  sel = calloc((size_t)n_calls + 1, sizeof *sel);
  if (!sel) goto nomem;
  if (nets) {
    /* Every listed name must be a net of the model. */
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", nets);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
      int k = nde_model_find_net(m, tok);
      if (k < 0) {
        nde_cli_error("--net: '%s' is not a net of the model in %s (expected one of its nets)",
                      tok, pos[0]);
        rc = NDE_EXIT_INPUT;
        goto done;
      }
      for (int c = 0; c < n_calls; c++)
        if (calls[c].net == k) sel[c] = 1;
    }
  } else {
    for (int c = 0; c < n_calls; c++) sel[c] = 1;
  }
  for (int c = 0; c < n_calls; c++) n_sel += sel[c];
  if (n_sel == 0) {
    nde_cli_error("%s:/model/source: the model calls no network (nothing to discover)", pos[0]);
    rc = NDE_EXIT_INPUT;
    goto done;
  }

  /* The library: generated terms plus user terms. */
  if (terms_opt) {
    size_t len = strlen(terms_opt);
    user_buf = malloc(len + 1);
    user = calloc(len + 1, sizeof *user);
    if (!user_buf || !user) goto nomem;
    memcpy(user_buf, terms_opt, len + 1);
    for (char *tok = strtok(user_buf, ";"); tok; tok = strtok(NULL, ";")) {
      while (*tok == ' ') tok++;
      if (*tok) user[lo.n_user++] = tok;
    }
    lo.user = user;
  }
  {
    const char **names = nde_cli_component_names(m);
    if (!names) goto nomem;
    nde_status st = nde_library_terms(n, names, &lo, &p, &terms, &err);
    free(names);
    if (st != NDE_OK) {
      nde_cli_error("--library: %s", err.msg);
      rc = nde_cli_exit_code(st);
      goto done;
    }
  }

  /* Probe expressions: the selected calls as written, then the terms. */
  exprs = calloc((size_t)(n_sel + p), sizeof *exprs);
  call_width = calloc((size_t)n_calls, sizeof *call_width);
  if (!exprs || !call_width) goto nomem;
  {
    const char *src = nde_model_source(m);
    int k = 0;
    for (int c = 0; c < n_calls; c++) {
      if (!sel[c]) continue;
      size_t len = calls[c].end - calls[c].begin;
      exprs[k] = malloc(len + 1);
      if (!exprs[k]) goto nomem;
      memcpy(exprs[k], src + calls[c].begin, len);
      exprs[k][len] = '\0';
      k++;
    }
    for (int j = 0; j < p; j++) exprs[n_sel + j] = terms[j];
    nde_status st = nde_probe_create(m, n_sel + p, (const char *const *)exprs, BATCH, &probe, &err);
    if (st != NDE_OK) {
      nde_cli_error("%s: %s", pos[0], err.msg);
      rc = nde_cli_exit_code(st);
      goto done;
    }
    for (int j = 0; j < p; j++)
      if (nde_probe_width(probe, n_sel + j) != 1) {
        nde_cli_error("--terms: '%s' is a vector of %d values (expected a scalar term)", terms[j],
                      nde_probe_width(probe, n_sel + j));
        rc = NDE_EXIT_INPUT;
        goto done;
      }
    k = 0;
    for (int c = 0; c < n_calls; c++)
      if (sel[c]) call_width[c] = nde_probe_width(probe, k++);
  }

  /* Samples: the learned model integrated densely along every fitted series, then the box. */
  const size_t n_ser = r.n_series;
  const size_t n_traj_pts = n_ser * (size_t)points, n_s = n_traj_pts + (size_t)samples;
  S = calloc(n_s * (size_t)n, sizeof *S);
  St = calloc(n_s, sizeof *St);
  if (!S || !St) goto nomem;
  for (size_t k = 0; k < n_ser; k++) {
    const nde_traj *tr = nde_data_traj(r.fitted, k);
    const double t0 = tr->t[0], t1 = tr->t[tr->n - 1];
    double *T = St + k * (size_t)points;
    for (long i = 0; i < points; i++) T[i] = t0 + (t1 - t0) * (double)i / (double)(points - 1);
    if (!(t1 > t0)) {
      nde_cli_error("%s:/fitted: series %zu has a single time (expected a trajectory)", pos[0], k);
      rc = NDE_EXIT_INPUT;
      goto done;
    }
    /* The fit's fixed step, but never longer than the sample spacing. */
    double h = r.dt > 0 ? r.dt : (tr->n > 1 ? (tr->t[1] - tr->t[0]) / (r.steps_per_interval > 0 ? (double)r.steps_per_interval : 5.0) : 0);
    rc = nde_fit_result_integrate(&r, NULL, NULL, h, 1, 0, 0, r.u0 + k * (size_t)n, (size_t)points, T,
                                  S + k * (size_t)points * (size_t)n, NULL);
    if (rc) goto done;
  }
  if (samples > 0) {
    nde_rng rng;
    nde_rng_seed(&rng, (uint64_t)seed);
    nde_sample_box(n_traj_pts, n, S, margin, (size_t)samples, &rng, S + n_traj_pts * (size_t)n);
    for (size_t i = n_traj_pts; i < n_s; i++) St[i] = St[0];
  }
  const int W = nde_probe_total_width(probe);
  V = calloc(n_s * (size_t)W, sizeof *V);
  if (!V) goto nomem;
  for (size_t i = 0; i < n_s; i++) {
    /* One time per call: rows share t (autonomous models need no more; a non-autonomous one
     * gets each sample's own time). */
    if (nde_probe_eval(probe, St[i], 1, S + i * (size_t)n, r.theta, V + i * (size_t)W) != 0) {
      nde_cli_error("%s: the model is not finite at sample %zu (t = %g); lower --margin", pos[0],
                    i, St[i]);
      rc = NDE_EXIT_NUMERIC;
      goto done;
    }
  }

  /* Regressions: one per output component of every selected call. */
  for (int c = 0; c < n_calls; c++) n_om += sel[c] ? call_width[c] : 0;
  om = calloc((size_t)n_om, sizeof *om);
  Theta = calloc(n_s * (size_t)p, sizeof *Theta);
  y = calloc(n_s, sizeof *y);
  /* The sweep: thresholds geometric in 1e-3 .. 1; the distinct supports STLSQ visits, plus every
   * one-term model (on near-collinear trajectory samples STLSQ's path can jump from several
   * terms straight past the right single term), are the candidate models. */
  const int n_thr = threshold >= 0 ? 1 : 41;
  const int n_ridge = 1;
  double thr[41], ridges[1];
  if (threshold >= 0) thr[0] = threshold;
  else
    for (int s = 0; s < n_thr; s++) thr[s] = 1e-3 * pow(10.0, 3.0 * s / (n_thr - 1));
  ridges[0] = ridge;
  const int n_cand_max = n_thr * n_ridge + p;
  pts = calloc((size_t)n_thr, sizeof *pts);
  XI = calloc((size_t)n_thr * (size_t)p, sizeof *XI);
  chosen_xi = calloc((size_t)n_om * (size_t)p, sizeof *chosen_xi);
  cand = calloc((size_t)n_cand_max, sizeof *cand);
  cand_xi = calloc((size_t)n_cand_max * (size_t)p, sizeof *cand_xi);
  support = calloc((size_t)p, sizeof *support);
  if (!om || !Theta || !y || !pts || !XI || !chosen_xi || !cand || !cand_xi || !support) goto nomem;
  const char *src = nde_model_source(m);
  int col_call = 0, q = 0, col_terms = 0;
  for (int e = 0; e < n_sel; e++) col_terms += nde_probe_width(probe, e);
  for (size_t i = 0; i < n_s; i++)
    for (int j = 0; j < p; j++)
      Theta[i * (size_t)p + j] = V[i * (size_t)W + (size_t)col_terms + (size_t)j];
  if (!quiet)
    printf("nde discover: %zu samples (%zu along %zu fitted series, %ld in the box), %d candidate "
           "terms (%s%s%s), %s\n",
           n_s, n_traj_pts, n_ser, samples, p, library, terms_opt ? "; " : "",
           terms_opt ? terms_opt : "", threshold >= 0 ? "fixed threshold"
           : criterion == NDE_CRIT_AIC ? "STLSQ sweep, models scored by the AIC of their trajectories"
                                       : "STLSQ sweep, models scored by the BIC of their trajectories");
  for (int c = 0; c < n_calls; c++) {
    if (!sel[c]) continue;
    nde_model_net_info ni;
    nde_model_get_net(m, calls[c].net, &ni);
    const int args_len = (int)(calls[c].args_end - calls[c].args_begin);
    for (int o = 0; o < call_width[c]; o++, q++) {
      for (size_t i = 0; i < n_s; i++) y[i] = V[i * (size_t)W + (size_t)col_call + (size_t)o];
      int n_cand = 0;
      for (int k = 0; k < n_ridge; k++) {
        int unused = 0;
        nde_status st = nde_stlsq_sweep((int)n_s, p, Theta, y, n_thr, thr,
                                        &(nde_stlsq_opts){ridges[k], 25}, criterion, pts, XI,
                                        &unused, &err);
        if (st != NDE_OK) {
          nde_cli_error("%s: %s[%d]: %s", pos[0], ni.name, o + 1, err.msg);
          rc = nde_cli_exit_code(st);
          goto done;
        }
        for (int s = 0; s < n_thr; s++) {
          const double *xs = XI + (size_t)s * p;
          int dup = 0;
          for (int e = 0; e < n_cand && !dup; e++) {
            int same = 1;
            for (int j = 0; j < p; j++)
              if ((xs[j] != 0) != (cand_xi[(size_t)e * p + j] != 0)) same = 0;
            dup = same;
          }
          if (dup) continue;
          /* The support's coefficients: refit with the smallest ridge (the sweep's larger
           * ridges shrink them). */
          for (int j = 0; j < p; j++) support[j] = xs[j] != 0;
          st = nde_lstsq_support((int)n_s, p, Theta, y, support, ridges[0],
                                 cand_xi + (size_t)n_cand * p, &err);
          if (st != NDE_OK) {
            nde_cli_error("%s: %s[%d]: %s", pos[0], ni.name, o + 1, err.msg);
            rc = nde_cli_exit_code(st);
            goto done;
          }
          const double *xc = cand_xi + (size_t)n_cand * p;
          double rss = 0, yy = 0;
          int kk = 0;
          for (int j = 0; j < p; j++) kk += support[j];
          for (size_t i = 0; i < n_s; i++) {
            double res = y[i];
            for (int j = 0; j < p; j++) res -= Theta[i * (size_t)p + j] * xc[j];
            rss += res * res;
            yy += y[i] * y[i];
          }
          cand[n_cand] = (candidate){thr[s], ridges[k], kk, yy > 0 ? sqrt(rss / yy) : 0, 0, 0, 1};
          n_cand++;
        }
      }
      for (int j1 = 0; j1 < p && threshold < 0; j1++) {
        int dup = 0;
        for (int e = 0; e < n_cand && !dup; e++) {
          int same = 1;
          for (int j = 0; j < p; j++)
            if ((j == j1) != (cand_xi[(size_t)e * p + j] != 0)) same = 0;
          dup = same;
        }
        if (dup) continue;
        for (int j = 0; j < p; j++) support[j] = j == j1;
        nde_status st = nde_lstsq_support((int)n_s, p, Theta, y, support, ridges[0],
                                          cand_xi + (size_t)n_cand * p, &err);
        if (st != NDE_OK) {
          nde_cli_error("%s: %s[%d]: %s", pos[0], ni.name, o + 1, err.msg);
          rc = nde_cli_exit_code(st);
          goto done;
        }
        double rss = 0, yy = 0;
        for (size_t i = 0; i < n_s; i++) {
          double res = y[i] - Theta[i * (size_t)p + j1] * cand_xi[(size_t)n_cand * p + j1];
          rss += res * res;
          yy += y[i] * y[i];
        }
        cand[n_cand++] = (candidate){NAN, ridges[0], 1, yy > 0 ? sqrt(rss / yy) : 0, 0, 0, 1};
      }
      /* Model selection (Mangan et al. 2017): each candidate replaces this output in the model,
       * is integrated from the fitted initial states and scored by the information criterion of
       * its trajectory misfit against the fitted curves, N ln(SSE/N) + k ln N (BIC; AIC: 2k).
       * The data pin the network down only through the trajectories, so that is where a sparse
       * law is judged: the regression residual alone rewards terms that copy the network's own
       * errors between the observations.  BIC rather than AIC: its ln N per term prefers the
       * sparser law unless a term clearly improves the trajectories. */
      int chosen = 0;
      double best = INFINITY;
      for (int e = 0; e < n_cand; e++) {
        char *text = candidate_source(src, &calls[c], call_width[c], o, cand_xi + (size_t)e * p, p, terms);
        if (!text) goto nomem;
        size_t nv = 0;
        cand[e].sse = trajectory_sse(&r, text, &nv);
        free(text);
        double N = (double)(nv ? nv : 1), k = (double)cand[e].n_terms;
        cand[e].n_vals = N;
        cand[e].crit = isfinite(cand[e].sse) ? N * log(fmax(cand[e].sse, 1e-300) / N) +
                                                   (criterion == NDE_CRIT_AIC ? 2.0 * k : k * log(N))
                                             : INFINITY;
        if (cand[e].crit < best) {
          best = cand[e].crit;
          chosen = e;
        }
      }
      memcpy(chosen_xi + (size_t)q * p, cand_xi + (size_t)chosen * p, (size_t)p * sizeof *XI);
      om[q] = (out_model){c, o, chosen_xi + (size_t)q * p};
      if (!quiet) {
        printf("\n%s[%d](%.*s), line %d: the candidate models (Pareto table)\n", ni.name, o + 1,
               args_len, src + calls[c].args_begin, calls[c].line);
        printf("  %5s %9s %7s %11s %11s %10s  %s\n", "terms", "threshold", "ridge", "net.error",
               "traj.rms", criterion == NDE_CRIT_AIC ? "AIC" : "BIC", "model");
        for (int kk = 0; kk <= p; kk++)
          for (int e = 0; e < n_cand; e++) {
            if (cand[e].n_terms != kk) continue;
            printf("  %5d %9.3g %7.0e %11.3e %11.3e %10.1f  %s", kk, cand[e].threshold,
                   cand[e].ridge, cand[e].rel_error,
                   isfinite(cand[e].sse) ? sqrt(cand[e].sse / cand[e].n_vals) : INFINITY,
                   cand[e].crit, e == chosen ? "<- " : "   ");
            if (kk <= 5) print_equation(stdout, cand_xi + (size_t)e * p, p, terms);
            else printf("(%d terms)", kk);
            printf("\n");
          }
      }
    }
    col_call += call_width[c];
  }
  if (!quiet) printf("\nDiscovered equations:\n");
  for (int k = 0; k < n_om; k++) {
    const nde_model_net_call *cl = &calls[om[k].call];
    nde_model_net_info ni;
    nde_model_get_net(m, cl->net, &ni);
    printf("  %s[%d](%.*s) \xe2\x89\x88 ", ni.name, om[k].out + 1,
           (int)(cl->args_end - cl->args_begin), nde_model_source(m) + cl->args_begin);
    print_equation(stdout, om[k].xi, p, terms);
    printf("\n");
  }

  /* The discovered model: each explained call replaced by its terms, the net declarations
   * replaced by the coefficients as learnable parameters. */
  {
    size_t src_len = strlen(src);
    size_t cap = src_len * 2 + (size_t)n_om * (size_t)p * 512 + 65536;
    src_out = malloc(cap);
    if (!src_out) goto nomem;
    size_t len = 0;
#define EMIT(...) len += (size_t)snprintf(src_out + len, cap - len, __VA_ARGS__)
    EMIT("# Discovered by nde discover from %s (library %s%s%s, STLSQ, %s):\n", pos[0], library,
         terms_opt ? "; " : "", terms_opt ? terms_opt : "",
         threshold >= 0 ? "fixed threshold" : criterion == NDE_CRIT_AIC ? "AIC" : "BIC");
    for (int k = 0; k < n_om; k++) {
      const nde_model_net_call *cl = &calls[om[k].call];
      nde_model_net_info ni;
      nde_model_get_net(m, cl->net, &ni);
      EMIT("#   %s[%d](%.*s) ~", ni.name, om[k].out + 1, (int)(cl->args_end - cl->args_begin),
           src + cl->args_begin);
      int any = 0;
      for (int j = 0; j < p; j++)
        if (om[k].xi[j] != 0) {
          if (any) EMIT(" %s %.6g*%s", om[k].xi[j] < 0 ? "-" : "+", fabs(om[k].xi[j]), terms[j]);
          else EMIT(" %.6g*%s", om[k].xi[j], terms[j]);
          any = 1;
        }
      if (!any) EMIT(" 0");
      EMIT("\n");
    }
    EMIT("# Refine the coefficients with: nde fit THIS_FILE DATA.h5 -o refit.h5\n");
    /* Edits in source order: net declarations (removed or replaced) and calls. */
    size_t at = 0;
    for (;;) {
      /* The next edit after `at`: the earliest net declaration or selected call. */
      size_t best = (size_t)-1, best_end = 0;
      int kind = 0, which = -1;
      for (int k = 0; k < nde_model_n_nets(m); k++) {
        int used = 0;
        for (int c = 0; c < n_calls; c++) used |= sel[c] && calls[c].net == k;
        if (!used) continue;
        size_t b, e;
        if (nde_model_net_decl_range(m, k, &b, &e) != NDE_OK) continue;
        if (b >= at && b < best) {
          best = b;
          best_end = e;
          kind = 1;
          which = k;
        }
      }
      for (int c = 0; c < n_calls; c++)
        if (sel[c] && calls[c].begin >= at && calls[c].begin < best) {
          best = calls[c].begin;
          best_end = calls[c].end;
          kind = 2;
          which = c;
        }
      if (which < 0) break;
      if (len + (best - at) + 8192 > cap) goto nomem;
      memcpy(src_out + len, src + at, best - at);
      len += best - at;
      if (kind == 1) {
        nde_model_net_info ni;
        nde_model_get_net(m, which, &ni);
        EMIT("# net %s replaced by its discovered terms:\n", ni.name);
        for (int k = 0; k < n_om; k++) {
          if (calls[om[k].call].net != which) continue;
          for (int j = 0; j < p; j++) {
            if (om[k].xi[j] == 0) continue;
            char name[160];
            coef_name(ni.name, om[k].out, j, terms[j], name, sizeof name);
            /* Several calls of one net: number the call too. */
            int nth = 0, total = 0;
            for (int c = 0; c < n_calls; c++)
              if (sel[c] && calls[c].net == which) {
                total++;
                if (c <= om[k].call) nth++;
              }
            char full[200];
            if (total > 1) snprintf(full, sizeof full, "%s_call%d", name, nth);
            else snprintf(full, sizeof full, "%s", name);
            if (has_word(src, full)) strncat(full, "_d", sizeof full - strlen(full) - 1);
            EMIT("param %s = %.10g\n", full, om[k].xi[j]);
          }
        }
      } else {
        nde_model_net_info ni;
        nde_model_get_net(m, calls[which].net, &ni);
        int nth = 0, total = 0;
        for (int c = 0; c < n_calls; c++)
          if (sel[c] && calls[c].net == calls[which].net) {
            total++;
            if (c <= which) nth++;
          }
        EMIT("[");
        for (int k = 0; k < n_om; k++) {
          if (om[k].call != which) continue;
          if (om[k].out) EMIT(", ");
          int any = 0;
          for (int j = 0; j < p; j++) {
            if (om[k].xi[j] == 0) continue;
            char name[160], full[200];
            coef_name(ni.name, om[k].out, j, terms[j], name, sizeof name);
            if (total > 1) snprintf(full, sizeof full, "%s_call%d", name, nth);
            else snprintf(full, sizeof full, "%s", name);
            if (has_word(src, full)) strncat(full, "_d", sizeof full - strlen(full) - 1);
            if (any) EMIT(" + ");
            if (strcmp(terms[j], "1") == 0) EMIT("%s", full);
            else EMIT("%s*(%s)", full, terms[j]);
            any = 1;
          }
          if (!any) EMIT("0");
        }
        EMIT("]");
      }
      at = best_end;
    }
    if (len + (src_len - at) + 1 > cap) goto nomem;
    memcpy(src_out + len, src + at, src_len - at);
    len += src_len - at;
    src_out[len] = '\0';
#undef EMIT
    /* The result must compile: a check before anything is written. */
    nde_model *dm = NULL;
    nde_status st = nde_model_load_string(src_out, len, "discovered model", &dm, NULL);
    if (st != NDE_OK) {
      nde_cli_error("internal: the discovered model does not compile: %s",
                    dm ? nde_model_errmsg(dm) : nde_status_str(st));
      nde_model_destroy(&dm);
      rc = NDE_EXIT_INTERNAL;
      goto done;
    }
    nde_model_destroy(&dm);
    if (out) {
      snprintf(out_path, sizeof out_path, "%s", out);
    } else {
      /* MODEL_discovered.nde next to FIT.h5, MODEL from the fitted model's file name. */
      const char *mf = nde_model_filename(m), *base = strrchr(mf, '/');
      base = base ? base + 1 : mf;
      size_t bl = strlen(base);
      if (bl > 4 && strcmp(base + bl - 4, ".nde") == 0) bl -= 4;
      const char *slash = strrchr(pos[0], '/');
      int dl = slash ? (int)(slash - pos[0] + 1) : 0;
      snprintf(out_path, sizeof out_path, "%.*s%.*s_discovered.nde", dl, pos[0], (int)bl, base);
    }
    f = fopen(out_path, "w");
    if (!f || fwrite(src_out, 1, len, f) != len || fclose(f) != 0) {
      f = NULL;
      nde_cli_error("%s: cannot write the discovered model", out_path);
      rc = NDE_EXIT_IO;
      goto done;
    }
    f = NULL;
    if (!quiet) printf("\nnde discover: wrote %s\n", out_path);
  }
  rc = 0;
  goto done;
nomem:
  nde_cli_error("out of memory");
  rc = NDE_EXIT_IO;
done:
  if (f) fclose(f);
  if (exprs)
    for (int k = 0; k < n_sel; k++) free(exprs[k]);
  free(exprs);
  free(src_out);
  free(call_width);
  free(om);
  free(chosen_xi);
  free(pts);
  free(XI);
  free(cand);
  free(cand_xi);
  free(support);
  free(Theta);
  free(y);
  free(V);
  free(S);
  free(St);
  free(terms);
  free(user);
  free(user_buf);
  free(sel);
  free(calls);
  nde_probe_destroy(&probe);
  nde_fit_result_free(&r);
  return rc;
}
