/* Discovery on a fitted model: read the missing physics off its networks as equations.
 *
 *   create      which net calls to explain, the candidate terms, a probe of the calls and terms;
 *   sample      states along the fitted trajectories (the learned model integrated densely from
 *               the fitted initial states) and optionally in a box around them, with the net
 *               outputs and the terms evaluated there;
 *   candidates  per output component, the supports an STLSQ threshold sweep visits (refitted) and
 *               every one-term model (Brunton, Proctor & Kutz 2016);
 *   select      each candidate replaces its output in the model and is scored by an information
 *               criterion of one-interval trajectory predictions against the fitted curves
 *               (Mangan et al. 2017; the last step of Rackauckas et al. 2020);
 *   model text  the model with every explained call replaced by its chosen terms, the
 *               coefficients as learnable parameters, ready to be refitted.
 * Every text is built with nde_str from the model's own structure (the places of its net calls
 * and declarations), never in buffers sized by guesswork. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nde/discover.h"

#define BATCH 256
#define MAX_THRESHOLDS 1000

typedef struct cand {
  double threshold, ridge;
  int n_terms;
  double rel_error; /* regression residual relative to the network output */
  double sse, crit; /* trajectory misfit and its criterion */
  double n_vals;
  double *xi;       /* p coefficients */
} cand;

typedef struct output {
  int call;      /* index into calls */
  int component; /* 0-based */
  int col;       /* column of the probe's output row */
  cand *c;
  int n_c, cap_c;
  int chosen;
  unsigned char *allow; /* p flags: the terms that are candidates of this output */
  int n_allow;
} output;

struct nde_discovery {
  const nde_result *r;
  const nde_model *m;
  nde_discover_opts o;
  char **user;         /* copies of the user terms */
  nde_model_net_call *calls;
  int n_calls;
  int *sel;            /* calls to explain */
  int n_sel;
  char **terms;        /* candidate terms (one malloc'ed block) */
  int p;
  nde_probe *probe;     /* worker 0's probe (widths, columns) */
  /* Clones of it for the other workers of the sampling (nde_probe: one thread at a time), made
   * when a sampling first runs on more threads. */
  nde_probe **wprobe;   /* n_wprobe probes of workers 1 .. n_wprobe */
  int n_wprobe;
  int *call_width;
  output *out;
  int n_out;
  size_t n_s;          /* samples */
  double *S, *St;      /* n_s x n states, n_s times */
  double *Theta;       /* n_s x p term values */
  double *V;           /* n_s x W probe outputs */
  int W, col_terms;
  int stage;           /* 0 created, 1 sampled, 2 candidates, 3 selected */
};

nde_discover_opts nde_discover_opts_default(void) {
  nde_discover_opts o;
  memset(&o, 0, sizeof o);
  o.library = nde_library_opts_default();
  o.points = 200;
  o.samples = 0;
  o.margin = 0.1;
  o.seed = 1;
  o.threshold = -1;
  o.n_thresholds = 41;
  o.criterion = NDE_CRIT_BIC;
  o.ridge = 1e-6;
  return o;
}

void nde_discovery_destroy(nde_discovery **dp) {
  if (!dp || !*dp) return;
  nde_discovery *d = *dp;
  if (d->user)
    for (int i = 0; i < d->o.library.n_user; i++) free(d->user[i]);
  free(d->user);
  free(d->calls);
  free(d->sel);
  free(d->terms);
  nde_probe_destroy(&d->probe);
  for (int w = 0; w < d->n_wprobe; w++) nde_probe_destroy(&d->wprobe[w]);
  free(d->wprobe);
  free(d->call_width);
  for (int i = 0; d->out && i < d->n_out; i++) {
    for (int k = 0; k < d->out[i].n_c; k++) free(d->out[i].c[k].xi);
    free(d->out[i].c);
    free(d->out[i].allow);
  }
  free(d->out);
  free(d->S);
  free(d->St);
  free(d->Theta);
  free(d->V);
  free(d);
  *dp = NULL;
}

static char *call_text(const nde_discovery *d, int c) {
  const char *src = nde_model_source(d->m);
  nde_str s = NDE_STR_INIT;
  nde_str_add(&s, src + d->calls[c].begin, d->calls[c].end - d->calls[c].begin);
  return nde_str_take(&s);
}

nde_status nde_discovery_create(const nde_result *r, const nde_discover_opts *opts,
                                nde_discovery **out, nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_discovery_create: no output pointer");
  *out = NULL;
  if (!r) return nde__fail(err, NDE_ERR_ARG, "discovery needs a result");
  nde_discover_opts o = opts ? *opts : nde_discover_opts_default();
  if (o.points < 2 || o.points > 1000000 || o.samples < 0 || o.samples > 10000000 ||
      !(o.margin >= 0) || !(o.ridge >= 0) || (o.threshold < 0 && (o.n_thresholds < 1 ||
                                                                  o.n_thresholds > MAX_THRESHOLDS)))
    return nde__fail(err, NDE_ERR_ARG,
                     "invalid discovery options (expected points in [2, 1e6], samples in [0, 1e7], "
                     "margin >= 0, ridge >= 0, 1 to %d thresholds; got %ld, %ld, %g, %g, %d)",
                     MAX_THRESHOLDS, o.points, o.samples, o.margin, o.ridge, o.n_thresholds);
  if (o.library.n_user < 0 || (o.library.n_user > 0 && !o.library.user))
    return nde__fail(err, NDE_ERR_ARG, "invalid user terms (expected n_user >= 0 and that many "
                     "strings in user; got %d%s)", o.library.n_user,
                     o.library.user ? "" : " and no array");
  for (int i = 0; i < o.library.n_user; i++)
    if (!o.library.user[i])
      return nde__fail(err, NDE_ERR_ARG, "user term %d is NULL (expected an expression)", i);
  if (o.criterion != NDE_CRIT_BIC && o.criterion != NDE_CRIT_AIC)
    return nde__fail(err, NDE_ERR_ARG, "invalid criterion %d (expected NDE_CRIT_BIC or "
                     "NDE_CRIT_AIC)", (int)o.criterion);
  if (!isfinite(o.threshold))
    return nde__fail(err, NDE_ERR_ARG, "the threshold is %g (expected a finite value >= 0, or "
                     "< 0 for the sweep)", o.threshold);
  nde_discovery *d = calloc(1, sizeof *d);
  if (!d) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  d->r = r;
  d->m = nde_result_model(r);
  d->o = o;
  const nde_model *m = d->m;
  const int n = nde_model_state_dim(m);
  nde_status st = NDE_OK;
  const char **names = NULL;
  char **exprs = NULL;
  nde_input_series *binding = NULL;
  double *bconsts = NULL;
  unsigned char *dep = NULL; /* what each probe expression reads: the calls, then the terms */
  /* Copies of the user terms, so the caller's strings need not outlive the discovery. */
  if (o.library.n_user > 0) {
    d->user = calloc((size_t)o.library.n_user, sizeof *d->user);
    if (!d->user) goto nomem;
    for (int i = 0; i < o.library.n_user; i++) {
      nde_str s = NDE_STR_INIT;
      nde_str_adds(&s, o.library.user[i]);
      if (!(d->user[i] = nde_str_take(&s))) goto nomem;
    }
    d->o.library.user = (const char *const *)d->user;
  }
  d->o.nets = NULL; /* only read here */
  if ((st = nde_model_net_calls(m, &d->n_calls, &d->calls)) != NDE_OK) goto nomem;
  d->sel = calloc((size_t)d->n_calls + 1, sizeof *d->sel);
  if (!d->sel) goto nomem;
  if (o.nets) {
    /* Every listed name must be a net of the model. */
    const char *p = o.nets;
    while (*p) {
      size_t len = strcspn(p, ",");
      nde_str name = NDE_STR_INIT;
      nde_str_add(&name, p, len);
      if (name.failed) goto nomem;
      const int k = len ? nde_model_find_net(m, name.data) : -1;
      if (k < 0) {
        st = nde__fail(err, NDE_ERR_ARG, "'%s' is not a net of the model (expected one of its "
                       "nets)", name.data ? name.data : "");
        nde_str_release(&name);
        goto fail;
      }
      nde_str_release(&name);
      for (int c = 0; c < d->n_calls; c++)
        if (d->calls[c].net == k) d->sel[c] = 1;
      p += len;
      if (*p == ',') p++;
    }
  } else {
    for (int c = 0; c < d->n_calls; c++) d->sel[c] = 1;
  }
  for (int c = 0; c < d->n_calls; c++) d->n_sel += d->sel[c];
  if (d->n_sel == 0) {
    st = nde__fail(err, NDE_ERR_ARG, "the model calls no network (nothing to discover)");
    goto fail;
  }
  /* The library's variables: the state components, then the measured inputs (SINDy with
   * control: terms in states and inputs). */
  const int mi = nde_model_n_inputs(m);
  names = calloc((size_t)(n + mi) + 1, sizeof *names);
  if (!names) goto nomem;
  for (int j = 0; j < n; j++) names[j] = nde_model_component_name(m, j);
  for (int j = 0; j < mi; j++) {
    nde_model_input_info ii;
    nde_model_get_input(m, j, &ii);
    names[n + j] = ii.name;
  }
  /* The probe sees each fitted series' inputs, constants and per-series parameters. */
  const int S = nde_result_n_series(r), ndc = nde_model_n_data_consts(m);
  binding = calloc((size_t)S, sizeof *binding);
  bconsts = nde__dalloc((size_t)S * (size_t)ndc + 1);
  if (!binding || !bconsts) goto nomem;
  for (int q = 0; q < S; q++) {
    nde_result_series se;
    nde_result_get_series(r, q, &se);
    binding[q] = (nde_input_series){se.n_u, se.u_t, se.u};
    if (ndc) memcpy(bconsts + (size_t)q * (size_t)ndc, se.consts, (size_t)ndc * sizeof *bconsts);
  }
  nde_model_rhs_opts ro = nde_model_rhs_opts_default();
  ro.max_batch = BATCH;
  ro.n_series = S;
  ro.inputs = binding;
  ro.consts = bconsts;
  /* The user's terms compiled first, in their order, so that a term that does not compile is
   * reported before a later one is found to repeat the library's. */
  if (d->o.library.n_user > 0) {
    nde_probe *tmp = NULL;
    st = nde_probe_create_opts(m, d->o.library.n_user, d->o.library.user, &ro, &tmp, err);
    nde_probe_destroy(&tmp);
    if (st != NDE_OK) goto fail;
  }
  if ((st = nde_library_terms(n + mi, names, &d->o.library, &d->p, &d->terms, err)) != NDE_OK)
    goto fail;
  /* Probe expressions: the selected calls as written, then the terms. */
  exprs = calloc((size_t)(d->n_sel + d->p), sizeof *exprs);
  d->call_width = calloc((size_t)d->n_calls + 1, sizeof *d->call_width);
  if (!exprs || !d->call_width) goto nomem;
  int k = 0;
  for (int c = 0; c < d->n_calls; c++)
    if (d->sel[c] && !(exprs[k++] = call_text(d, c))) goto nomem;
  for (int j = 0; j < d->p; j++) exprs[d->n_sel + j] = d->terms[j];
  if ((st = nde_probe_create_opts(m, d->n_sel + d->p, (const char *const *)exprs, &ro, &d->probe,
                                  err)) != NDE_OK)
    goto fail;
  for (int j = 0; j < d->p; j++)
    if (nde_probe_width(d->probe, d->n_sel + j) != 1) {
      st = nde__fail(err, NDE_ERR_ARG, "term '%s' is a vector of %d values (expected a scalar)",
                     d->terms[j], nde_probe_width(d->probe, d->n_sel + j));
      goto fail;
    }
  /* One output per component of each selected call. */
  k = 0;
  int col = 0;
  for (int c = 0; c < d->n_calls; c++) {
    if (!d->sel[c]) continue;
    d->call_width[c] = nde_probe_width(d->probe, k++);
    d->n_out += d->call_width[c];
  }
  d->W = nde_probe_total_width(d->probe);
  d->out = calloc((size_t)d->n_out, sizeof *d->out);
  if (!d->out) goto nomem;
  /* A network is a function of its arguments alone, so the candidates of a call's outputs are
   * the terms in the variables (states, inputs) those arguments depend on: a term in any other
   * variable could only copy a correlation along the sampled trajectories. */
  const size_t nvar = (size_t)(n + mi);
  dep = malloc((size_t)(d->n_sel + d->p) * nvar + 1);
  if (!dep) goto nomem;
  if ((st = nde_probe_dependency(d->probe, dep)) != NDE_OK) goto status;
  const unsigned char *dep_terms = dep + (size_t)d->n_sel * nvar;
  int q = 0;
  k = 0;
  for (int c = 0; c < d->n_calls; c++) {
    if (!d->sel[c]) continue;
    const unsigned char *dep_call = dep + (size_t)k++ * nvar;
    for (int comp = 0; comp < d->call_width[c]; comp++, q++) {
      output *oq = &d->out[q];
      *oq = (output){c, comp, col + comp, NULL, 0, 0, -1, NULL, 0};
      if (!(oq->allow = malloc((size_t)d->p))) goto nomem;
      for (int j = 0; j < d->p; j++) {
        const unsigned char *dt = dep_terms + (size_t)j * nvar;
        int inside = 1;
        for (size_t v = 0; v < nvar && inside; v++) inside = !dt[v] || dep_call[v];
        oq->allow[j] = (unsigned char)inside;
        oq->n_allow += inside;
      }
      if (oq->n_allow == 0) {
        nde_model_net_info ni;
        nde_model_get_net(m, d->calls[c].net, &ni);
        st = nde__fail(err, NDE_ERR_ARG,
                       "no candidate term for %s[%d] (line %d): every term is in a variable its "
                       "arguments do not depend on (expected a constant, or terms in what it "
                       "reads: --terms)", ni.name, comp + 1, d->calls[c].line);
        goto fail;
      }
    }
    col += d->call_width[c];
  }
  d->col_terms = col;
  goto done;
status:
  if (st == NDE_ERR_NOMEM) goto nomem;
  st = nde__fail(err, st, "%s finding what the terms depend on", nde_status_str(st));
  goto fail;
nomem:
  st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
fail:
done:
  free(dep);
  if (exprs)
    for (int i = 0; i < d->n_sel; i++) free(exprs[i]);
  free(exprs);
  free(binding);
  free(bconsts);
  if (st != NDE_OK) nde_discovery_destroy(&d);
  free(names);
  if (st == NDE_OK) *out = d;
  return st;
}


/* Why the probe was not finite at sample i: the first candidate term that is not (with the
 * state there), or the nets; a box sample (in_box) beyond the trajectories suggests a smaller
 * margin. */
static nde_status not_finite(const nde_discovery *d, size_t i, int in_box, const double *row,
                             nde_error *err) {
  const int n = nde_model_state_dim(d->m);
  const double *u = d->S + i * (size_t)n;
  char state[200] = "";
  size_t len = 0;
  for (int j = 0; j < n && j < 6 && len < sizeof state; j++)
    len += (size_t)snprintf(state + len, sizeof state - len, "%s%s = %g", j ? ", " : "",
                            nde_model_component_name(d->m, j), u[j]);
  const char *where = in_box ? "a sample of the box around the trajectories"
                             : "a sample along the fitted trajectories";
  for (int j = 0; j < d->p; j++)
    if (!isfinite(row[(size_t)d->col_terms + (size_t)j]))
      return nde__fail(err, NDE_ERR_NUMERIC,
                       "the candidate term '%s' is not finite at %s (sample %zu, t = %g, %s): "
                       "expected terms defined on the whole range of the states (drop it or "
                       "shift its argument)%s",
                       d->terms[j], where, i, d->St[i], state,
                       in_box ? ", or lower the margin" : "");
  return nde__fail(err, NDE_ERR_NUMERIC,
                   "the model's networks are not finite at %s (sample %zu, t = %g, %s)%s", where,
                   i, d->St[i], state, in_box ? ": lower the margin" : "");
}
/* One series' dense integration for nde_discovery_sample (a job of nde__par_run). */
typedef struct sample_run {
  nde_discovery *d;
  size_t pts;
  nde_error *err; /* per series */
} sample_run;

static int sample_series(void *ctx, int worker, int k) {
  (void)worker;
  sample_run *R = ctx;
  nde_discovery *d = R->d;
  const nde_result *r = d->r;
  const int n = nde_model_state_dim(d->m);
  const size_t pts = R->pts;
  nde_result_series se;
  nde_result_get_series(r, k, &se);
  const double t0 = se.t[0], t1 = se.t[se.n_obs - 1];
  double *T = d->St + (size_t)k * pts;
  for (size_t i = 0; i < pts; i++) T[i] = t0 + (t1 - t0) * (double)i / (double)(pts - 1);
  nde_start start = {.kind = NDE_START_FITTED, .series = k};
  nde_solve_stats ss;
  nde_status st = nde_result_integrate(r, &start, pts, T, NULL, d->S + (size_t)k * pts * n, &ss,
                                       &R->err[k]);
  if (st != NDE_OK) return 1;
  if (ss.reason != NDE_REASON_NONE) {
    char msg[600];
    nde__fail(&R->err[k], NDE_ERR_NUMERIC, "the fitted model of series %s cannot be integrated "
              "over its span: %s", se.name,
              nde_stop_message(nde_result_settings(r)->solver.method, &ss, msg, sizeof msg));
    return 1;
  }
  return 0;
}

/* Blocks of samples evaluated by the probes, for nde_discovery_sample (jobs of nde__par_run). */
#define PROBE_BLOCK 256
typedef struct probe_run {
  nde_discovery *d;
  size_t n_traj, pts;
  size_t *first_bad; /* per block: the first sample that is not finite (SIZE_MAX: unbound) */
} probe_run;

static int probe_block(void *ctx, int worker, int b) {
  probe_run *P = ctx;
  nde_discovery *d = P->d;
  nde_probe *probe = worker == 0 ? d->probe : d->wprobe[worker - 1];
  const int n = nde_model_state_dim(d->m);
  const size_t i0 = (size_t)b * PROBE_BLOCK;
  const size_t i1 = i0 + PROBE_BLOCK < d->n_s ? i0 + PROBE_BLOCK : d->n_s;
  for (size_t i = i0; i < i1; i++) {
    /* One time per call, the series' own data; box samples share the first series' first time
     * and data (autonomous models need no more). */
    const int k = i < P->n_traj ? (int)(i / P->pts) : 0;
    if (nde_probe_set_rows(probe, 1, &k) != NDE_OK) {
      P->first_bad[b] = SIZE_MAX;
      return b + 1;
    }
    if (nde_probe_eval(probe, d->St[i], 1, d->S + i * (size_t)n, nde_result_theta(d->r),
                       d->V + i * (size_t)d->W) != 0) {
      P->first_bad[b] = i;
      return b + 1;
    }
  }
  return 0;
}

nde_status nde_discovery_sample(nde_discovery *d, nde_error *err) {
  if (!d) return nde__fail(err, NDE_ERR_ARG, "no discovery");
  const nde_result *r = d->r;
  const int n = nde_model_state_dim(d->m), S = nde_result_n_series(r);
  const size_t pts = (size_t)d->o.points, n_traj = (size_t)S * pts;
  d->n_s = n_traj + (size_t)d->o.samples;
  free(d->S);
  free(d->St);
  free(d->V);
  free(d->Theta);
  d->S = nde__dalloc(d->n_s * (size_t)n);
  d->St = nde__dalloc(d->n_s);
  d->V = nde__dalloc(d->n_s * (size_t)d->W);
  d->Theta = nde__dalloc(d->n_s * (size_t)d->p);
  if (!d->S || !d->St || !d->V || !d->Theta) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  /* The learned model integrated densely along every fitted series, the series on the thread
   * pool (each writes its own rows; a failure is the lowest failed series'). */
  sample_run R = {d, pts, NULL};
  R.err = calloc((size_t)S, sizeof *R.err);
  if (!R.err) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  const int failed =
      nde__par_run(S, nde__par_threads(d->o.threads, S), sample_series, &R, NULL, NULL);
  if (failed) {
    for (int k = 0; k < S; k++)
      if (R.err[k].status != NDE_OK) {
        if (err) *err = R.err[k];
        const nde_status st = R.err[k].status;
        free(R.err);
        return st;
      }
    free(R.err);
    return nde__fail(err, NDE_ERR_INTERNAL, "the integration of a fitted series failed without "
                     "a message");
  }
  free(R.err);
  if (d->o.samples > 0) {
    nde_rng rng;
    nde_rng_seed(&rng, d->o.seed);
    nde_sample_box(n_traj, n, d->S, d->o.margin, (size_t)d->o.samples, &rng,
                   d->S + n_traj * (size_t)n);
    for (size_t i = n_traj; i < d->n_s; i++) d->St[i] = d->St[0];
  }
  /* The networks and terms at every sample, in blocks of samples on the pool (one probe per
   * worker): each block writes its own rows, and a failure is the lowest failed sample's. */
  const size_t n_blocks = (d->n_s + PROBE_BLOCK - 1) / PROBE_BLOCK;
  const int T = nde__par_threads(d->o.threads, n_blocks > INT_MAX ? INT_MAX : (int)n_blocks);
  if (T - 1 > d->n_wprobe) {
    nde_probe **wp = realloc(d->wprobe, (size_t)(T - 1) * sizeof *wp);
    if (!wp) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    d->wprobe = wp;
    for (; d->n_wprobe < T - 1; d->n_wprobe++) {
      d->wprobe[d->n_wprobe] = NULL;
      const nde_status pst = nde_probe_clone(d->probe, &d->wprobe[d->n_wprobe], err);
      if (pst != NDE_OK) return pst;
    }
  }
  probe_run P = {d, n_traj, pts, NULL};
  P.first_bad = malloc(n_blocks * sizeof *P.first_bad);
  if (!P.first_bad) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  const int bad = nde__par_run((int)n_blocks, T, probe_block, &P, NULL, NULL);
  if (bad) {
    const size_t i = P.first_bad[bad - 1];
    free(P.first_bad);
    if (i == SIZE_MAX) return nde__fail(err, NDE_ERR_INTERNAL, "cannot bind a sample's series");
    return not_finite(d, i, i >= n_traj, d->V + i * (size_t)d->W, err);
  }
  free(P.first_bad);
  for (size_t i = 0; i < d->n_s; i++)
    for (int j = 0; j < d->p; j++)
      d->Theta[i * (size_t)d->p + (size_t)j] =
          d->V[i * (size_t)d->W + (size_t)d->col_terms + (size_t)j];
  /* Two candidates proportional at every sample (x*y and y*x, 2*x*y and x*y, or an input that
   * is constant where a constant is a candidate) have no separate coefficients; nor has one that
   * is zero at every sample.  Proportional: <a, b>^2 >= (1 - 1e-12) |a|^2 |b|^2. */
  double *nrm = nde__dalloc((size_t)d->p);
  if (!nrm) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  for (int a = 0; a < d->p; a++) {
    double ss = 0;
    for (size_t i = 0; i < d->n_s; i++) {
      const double u = d->Theta[i * (size_t)d->p + (size_t)a];
      ss += u * u;
    }
    nrm[a] = ss;
  }
  nde_status st = NDE_OK;
  for (int a = 0; a < d->p && st == NDE_OK; a++) {
    if (nrm[a] == 0) {
      st = nde__fail(err, NDE_ERR_ARG,
                     "candidate term '%s' is zero at all %zu samples, so its coefficient cannot "
                     "be determined: remove it (from --terms or the library)",
                     d->terms[a], d->n_s);
      break;
    }
    for (int b = a + 1; b < d->p && st == NDE_OK; b++) {
      double ab = 0;
      for (size_t i = 0; i < d->n_s; i++)
        ab += d->Theta[i * (size_t)d->p + (size_t)a] * d->Theta[i * (size_t)d->p + (size_t)b];
      if (nrm[b] == 0 || ab * ab < (1 - 1e-12) * nrm[a] * nrm[b]) continue;
      const double ratio = ab / nrm[a]; /* b = ratio * a */
      if (fabs(ratio - 1) <= 1e-12)
        st = nde__fail(err, NDE_ERR_ARG,
                       "candidate terms '%s' and '%s' have the same value at all %zu samples, so "
                       "their coefficients cannot be told apart: remove one (from --terms or the "
                       "library)", d->terms[a], d->terms[b], d->n_s);
      else
        st = nde__fail(err, NDE_ERR_ARG,
                       "candidate terms '%s' and '%s' are proportional at all %zu samples ('%s' = "
                       "%.6g x '%s'), so their coefficients cannot be told apart: remove one "
                       "(from --terms or the library)", d->terms[a], d->terms[b], d->n_s,
                       d->terms[b], ratio, d->terms[a]);
    }
  }
  free(nrm);
  if (st != NDE_OK) return st;
  d->stage = 1;
  return NDE_OK;
}

size_t nde_discovery_n_samples(const nde_discovery *d) { return d ? d->n_s : 0; }
const double *nde_discovery_samples(const nde_discovery *d) { return d ? d->S : NULL; }

/* Add a candidate with the coefficients of a support refitted by ridge least squares, unless the
 * support is already there.  *added tells which. */
static nde_status add_candidate(nde_discovery *d, output *o, const double *y, const int *support,
                                double threshold, int *added, nde_error *err) {
  const int p = d->p;
  *added = 0;
  for (int e = 0; e < o->n_c; e++) {
    int same = 1;
    for (int j = 0; j < p && same; j++) same = (support[j] != 0) == (o->c[e].xi[j] != 0);
    if (same) return NDE_OK;
  }
  if (o->n_c == o->cap_c) {
    int cap = o->cap_c ? 2 * o->cap_c : 16;
    cand *c = realloc(o->c, (size_t)cap * sizeof *c);
    if (!c) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    o->c = c;
    o->cap_c = cap;
  }
  cand *c = &o->c[o->n_c];
  memset(c, 0, sizeof *c);
  if (!(c->xi = nde__dalloc((size_t)p))) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  nde_status st = nde_lstsq_support((int)d->n_s, p, d->Theta, y, support, d->o.ridge, c->xi, err);
  if (st != NDE_OK) {
    free(c->xi);
    return st;
  }
  double rss = 0, yy = 0;
  int k = 0;
  for (int j = 0; j < p; j++) k += c->xi[j] != 0;
  for (size_t i = 0; i < d->n_s; i++) {
    double res = y[i];
    for (int j = 0; j < p; j++) res -= d->Theta[i * (size_t)p + (size_t)j] * c->xi[j];
    rss += res * res;
    yy += y[i] * y[i];
  }
  c->threshold = threshold;
  c->ridge = d->o.ridge;
  c->n_terms = k;
  c->rel_error = yy > 0 ? sqrt(rss / yy) : 0;
  c->sse = c->crit = NAN;
  c->n_vals = 0;
  o->n_c++;
  *added = 1;
  return NDE_OK;
}

nde_status nde_discovery_candidates(nde_discovery *d, nde_error *err) {
  if (!d) return nde__fail(err, NDE_ERR_ARG, "no discovery");
  if (d->stage < 1) {
    nde_status st = nde_discovery_sample(d, err);
    if (st != NDE_OK) return st;
  }
  const int p = d->p;
  const int sweep = d->o.threshold < 0, n_thr = sweep ? d->o.n_thresholds : 1;
  double *thr = nde__dalloc((size_t)n_thr), *XI = nde__dalloc((size_t)n_thr * (size_t)p);
  double *y = nde__dalloc(d->n_s);
  int *support = calloc((size_t)p + 1, sizeof *support);
  nde_sweep_point *pts = calloc((size_t)n_thr, sizeof *pts);
  int some_out = 0;
  for (int q = 0; q < d->n_out; q++) some_out |= d->out[q].n_allow < p;
  double *Ta = some_out ? nde__dalloc(d->n_s * (size_t)p) : NULL;
  nde_status st = NDE_OK;
  if (!thr || !XI || !y || !support || !pts || (some_out && !Ta)) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  /* Thresholds geometric in 1e-3 .. 1. */
  if (!sweep) thr[0] = d->o.threshold;
  else
    for (int s = 0; s < n_thr; s++)
      thr[s] = n_thr == 1 ? 1e-3 : 1e-3 * pow(10.0, 3.0 * s / (n_thr - 1));
  for (int q = 0; q < d->n_out; q++) {
    output *o = &d->out[q];
    for (int k = 0; k < o->n_c; k++) free(o->c[k].xi);
    o->n_c = 0;
    o->chosen = -1;
    for (size_t i = 0; i < d->n_s; i++) y[i] = d->V[i * (size_t)d->W + (size_t)o->col];
    /* The sweep on this output's own terms (the columns of the others left out). */
    const int pa = o->n_allow;
    const double *Th = d->Theta;
    if (pa < p) {
      for (size_t i = 0; i < d->n_s; i++)
        for (int j = 0, a = 0; j < p; j++)
          if (o->allow[j]) Ta[i * (size_t)pa + (size_t)a++] = d->Theta[i * (size_t)p + (size_t)j];
      Th = Ta;
    }
    int unused;
    const nde_stlsq_opts so = {d->o.ridge, 25};
    st = nde_stlsq_sweep((int)d->n_s, pa, Th, y, n_thr, thr, &so, d->o.criterion, pts, XI,
                         &unused, err);
    if (st != NDE_OK) goto done;
    /* The distinct supports the sweep visits, refitted, then every one-term model: on
     * near-collinear trajectory samples the sweep can jump from several terms straight past the
     * right single term. */
    for (int s = 0; s < n_thr; s++) {
      const double *xs = XI + (size_t)s * (size_t)pa;
      for (int j = 0, a = 0; j < p; j++) {
        support[j] = 0;
        if (o->allow[j]) support[j] = xs[a++] != 0;
      }
      int added;
      if ((st = add_candidate(d, o, y, support, thr[s], &added, err)) != NDE_OK) goto done;
    }
    for (int j1 = 0; j1 < p && sweep; j1++) {
      if (!o->allow[j1]) continue;
      for (int j = 0; j < p; j++) support[j] = j == j1;
      int added;
      if ((st = add_candidate(d, o, y, support, NAN, &added, err)) != NDE_OK) goto done;
    }
  }
  d->stage = 2;
done:
  free(Ta);
  free(thr);
  free(XI);
  free(y);
  free(support);
  free(pts);
  return st;
}

/* The model with output `component` of call c replaced by xi . terms (numbers inline) and its
 * other outputs still read from the net: a candidate whose theta layout is the model's own. */
static char *candidate_source(const nde_discovery *d, int c, int component, const double *xi) {
  const char *src = nde_model_source(d->m);
  const nde_model_net_call *cl = &d->calls[c];
  nde_str s = NDE_STR_INIT;
  nde_str_add(&s, src, cl->begin);
  nde_str_adds(&s, "[");
  for (int q = 0; q < d->call_width[c]; q++) {
    if (q) nde_str_adds(&s, ", ");
    if (q != component) {
      nde_str_add(&s, src + cl->begin, cl->end - cl->begin);
      nde_str_addf(&s, "[%d]", q + 1);
      continue;
    }
    int any = 0;
    for (int j = 0; j < d->p; j++)
      if (xi[j] != 0) {
        nde_str_addf(&s, "%s(%.17g)*(%s)", any ? " + " : "", xi[j], d->terms[j]);
        any = 1;
      }
    if (!any) nde_str_adds(&s, "0");
  }
  nde_str_adds(&s, "]");
  nde_str_adds(&s, src + cl->end);
  return nde_str_take(&s);
}

/* Squared differences between a candidate model's one-interval predictions and the fitted
 * curves: from every fitted state y(t_k), integrate to t_{k+1} with the fit's settings and
 * compare with y(t_{k+1}).  Short horizons judge the vector field along the data without the
 * phase drift a small coefficient error builds up over a whole orbit.  Each series is driven as
 * it was fitted: its own measured inputs (stopping at the jumps of step inputs, as the fitted
 * curves did), constants from data and per-series parameters.  INFINITY when the candidate does
 * not compile or a prediction stops. */
static double trajectory_sse(const nde_discovery *d, const char *text, const double *const *fitted,
                             const double *noise_var, double *n_vals, double *noise_sum) {
  const nde_result *r = d->r;
  const int n = nde_model_state_dim(d->m), S = nde_result_n_series(r);
  nde_model *cm = NULL;
  nde_rhs *rhs = NULL;
  nde_solver *s = NULL;
  double sse = 0, Y[2 * 64], *Yp = Y, *bp = NULL;
  *noise_sum = 0;
  nde_input_series *inp = NULL;
  double *cs = NULL;
  *n_vals = 0;
  if (nde_model_load_string(text, strlen(text), "candidate", &cm, NULL) != NDE_OK ||
      nde_model_n_theta_full(cm, S) != nde_result_n_theta(r)) {
    sse = INFINITY;
    goto done;
  }
  /* One right-hand side for all series, bound to each in turn (rows of series k). */
  const int n_in = nde_model_n_inputs(cm), n_c = nde_model_n_data_consts(cm);
  nde_model_rhs_opts ro = nde_model_rhs_opts_default();
  ro.n_series = S;
  if (n_in > 0 && !(inp = calloc((size_t)S, sizeof *inp))) sse = INFINITY;
  if (n_c > 0 && !(cs = nde__dalloc((size_t)S * (size_t)n_c))) sse = INFINITY;
  for (int k = 0; k < S && isfinite(sse); k++) {
    nde_result_series se;
    nde_result_get_series(r, k, &se);
    if (inp) inp[k] = (nde_input_series){se.n_u, se.u_t, se.u};
    if (cs) memcpy(cs + (size_t)k * (size_t)n_c, se.consts, (size_t)n_c * sizeof *cs);
  }
  ro.inputs = inp;
  ro.consts = cs;
  if (!isfinite(sse) || nde_model_create_rhs_opts(cm, &ro, &rhs, NULL) != NDE_OK ||
      nde_solver_create(rhs, &nde_result_settings(r)->solver, 1, &s, NULL) != NDE_OK) {
    sse = INFINITY;
    goto done;
  }
  if (n > 64 && !(Yp = nde__dalloc(2 * (size_t)n))) {
    sse = INFINITY;
    goto done;
  }
  for (int k = 0; k < S && isfinite(sse); k++) {
    nde_result_series se;
    nde_result_get_series(r, k, &se);
    const double *F = fitted[k];
    if (nde_rhs_set_rows(rhs, 1, &k) != NDE_OK) {
      sse = INFINITY;
      break;
    }
    const size_t nb = nde_rhs_breakpoints(rhs, se.t[0], se.t[se.n_obs - 1], 0, NULL);
    free(bp);
    bp = nde__dalloc(nb + 1);
    if (!bp) {
      sse = INFINITY;
      break;
    }
    nde_rhs_breakpoints(rhs, se.t[0], se.t[se.n_obs - 1], nb, bp);
    if (nde_solver_set_breakpoints(s, nb, bp) != NDE_OK) {
      sse = INFINITY;
      break;
    }
    for (size_t i = 0; i + 1 < se.n_obs && isfinite(sse); i++) {
      const double *y0 = F + i * (size_t)n, *y1 = y0 + n;
      int ok = 1;
      for (int j = 0; j < n; j++) ok &= isfinite(y0[j]) != 0;
      if (!ok) continue;
      nde_solve_stats ss;
      if (nde_solver_solve(s, nde_result_theta(r), 1, y0, 2, se.t + i, Yp, &ss) != NDE_OK ||
          ss.reason != NDE_REASON_NONE) {
        sse = INFINITY;
        break;
      }
      for (int j = 0; j < n; j++) {
        if (!isfinite(y1[j])) continue;
        const double e = Yp[n + j] - y1[j];
        sse += e * e;
        *noise_sum += noise_var ? noise_var[j] : 0.0;
        (*n_vals)++;
      }
    }
  }
done:
  if (Yp != Y) free(Yp);
  free(bp);
  free(inp);
  free(cs);
  nde_solver_destroy(&s);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&cm);
  return isfinite(sse) ? sse : INFINITY;
}

nde_status nde_discovery_select(nde_discovery *d, nde_error *err) {
  if (!d) return nde__fail(err, NDE_ERR_ARG, "no discovery");
  if (d->stage < 2) {
    nde_status st = nde_discovery_candidates(d, err);
    if (st != NDE_OK) return st;
  }
  const nde_result *r = d->r;
  const int n = nde_model_state_dim(d->m), S = nde_result_n_series(r);
  double **fitted = calloc((size_t)S, sizeof *fitted);
  nde_status st = NDE_OK;
  if (!fitted) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  /* The fitted curves at the data times, as the fit computed them. */
  for (int k = 0; k < S && st == NDE_OK; k++) {
    nde_result_series se;
    nde_result_get_series(r, k, &se);
    if (!(fitted[k] = nde__dalloc(se.n_obs * (size_t)n))) {
      st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
      break;
    }
    nde_start start = {.kind = NDE_START_FITTED, .series = k};
    nde_solve_stats ss;
    st = nde_result_integrate(r, &start, se.n_obs, se.t, NULL, fitted[k], &ss, err);
  }
  /* BIC rather than AIC by default: its ln N per term prefers the sparser law unless a term
   * clearly improves the trajectories; the regression residual alone would reward terms that
   * copy the network's own errors between the observations.  The fitted curves carry no noise,
   * so terms that copy the network's errors far below the noise level would still look better:
   * each compared value is charged its state's noise variance (where it is known) on top of the
   * prediction error: the data could not tell apart predictions that differ by less. */
  const nde_result_fit_opts *rs = nde_result_settings(r);
  const double *sd = rs ? rs->noise_std : NULL;
  double *noise_var = NULL;
  if (sd) {
    int any = 0;
    for (int j = 0; j < n; j++) any |= isfinite(sd[j]) && sd[j] > 0;
    if (any && (noise_var = nde__dalloc((size_t)n)))
      for (int j = 0; j < n; j++) noise_var[j] = isfinite(sd[j]) ? sd[j] * sd[j] : 0.0;
  }
  for (int q = 0; q < d->n_out && st == NDE_OK; q++) {
    output *o = &d->out[q];
    double best = INFINITY;
    o->chosen = 0;
    for (int e = 0; e < o->n_c; e++) {
      cand *c = &o->c[e];
      char *text = candidate_source(d, o->call, o->component, c->xi);
      if (!text) {
        st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
        break;
      }
      double noise_sum;
      c->sse = trajectory_sse(d, text, (const double *const *)fitted, noise_var, &c->n_vals,
                              &noise_sum);
      nde_free(text);
      const double N = c->n_vals > 0 ? c->n_vals : 1, k = (double)c->n_terms;
      c->crit = isfinite(c->sse) ? N * log(fmax(c->sse + noise_sum, 1e-300) / N) +
                                       (d->o.criterion == NDE_CRIT_AIC ? 2.0 * k : k * log(N))
                                 : INFINITY;
      if (c->crit < best) {
        best = c->crit;
        o->chosen = e;
      }
    }
  }
  for (int k = 0; k < S; k++) free(fitted[k]);
  free(fitted);
  free(noise_var);
  if (st == NDE_OK) d->stage = 3;
  return st;
}

nde_status nde_discover(const nde_result *r, const nde_discover_opts *o, nde_discovery **out,
                        nde_error *err) {
  nde_status st = nde_discovery_create(r, o, out, err);
  if (st == NDE_OK) st = nde_discovery_select(*out, err);
  if (st != NDE_OK) nde_discovery_destroy(out);
  return st;
}

int nde_discovery_n_outputs(const nde_discovery *d) { return d ? d->n_out : 0; }
int nde_discovery_n_terms(const nde_discovery *d) { return d ? d->p : 0; }
const char *nde_discovery_term(const nde_discovery *d, int j) {
  return d && j >= 0 && j < d->p ? d->terms[j] : NULL;
}

nde_status nde_discovery_get_output(const nde_discovery *d, int i, nde_discovery_output *out) {
  if (!d || !out || i < 0 || i >= d->n_out) return NDE_ERR_ARG;
  const output *o = &d->out[i];
  const nde_model_net_call *cl = &d->calls[o->call];
  nde_model_net_info ni;
  nde_model_get_net(d->m, cl->net, &ni);
  *out = (nde_discovery_output){ni.name, o->component, nde_model_source(d->m) + cl->args_begin,
                                (int)(cl->args_end - cl->args_begin), cl->line, o->n_c, o->chosen};
  return NDE_OK;
}

int nde_discovery_term_allowed(const nde_discovery *d, int i, int j) {
  return d && i >= 0 && i < d->n_out && j >= 0 && j < d->p ? d->out[i].allow[j] : 0;
}

nde_status nde_discovery_get_candidate(const nde_discovery *d, int i, int k,
                                       nde_discovery_candidate *out) {
  if (!d || !out || i < 0 || i >= d->n_out || k < 0 || k >= d->out[i].n_c) return NDE_ERR_ARG;
  const cand *c = &d->out[i].c[k];
  const double rms = isnan(c->sse) ? NAN
                     : c->n_vals > 0 && isfinite(c->sse) ? sqrt(c->sse / c->n_vals)
                                                         : INFINITY;
  *out = (nde_discovery_candidate){c->n_terms, c->threshold, c->ridge, c->rel_error, rms, c->crit,
                                   c->xi};
  return NDE_OK;
}

char *nde_discovery_equation(const nde_discovery *d, int i, int k, int pretty) {
  if (!d || i < 0 || i >= d->n_out || k < 0 || k >= d->out[i].n_c) return NULL;
  const double *xi = d->out[i].c[k].xi;
  nde_str s = NDE_STR_INIT;
  int first = 1;
  for (int j = 0; j < d->p; j++) {
    if (xi[j] == 0.0) continue;
    const double c = xi[j];
    const int one = !strcmp(d->terms[j], "1");
    if (pretty) {
      /* U+2212 minus, U+00B7 middle dot. */
      nde_str_adds(&s, c < 0 ? (first ? "\xe2\x88\x92" : " \xe2\x88\x92 ") : (first ? "" : " + "));
      nde_str_addf(&s, "%.4g", fabs(c));
      if (!one) {
        nde_str_adds(&s, "\xc2\xb7");
        for (const char *t = d->terms[j]; *t; t++)
          if (*t == '*') nde_str_adds(&s, "\xc2\xb7");
          else nde_str_add(&s, t, 1);
      }
    } else {
      if (first) nde_str_addf(&s, "%.6g", c);
      else nde_str_addf(&s, " %s %.6g", c < 0 ? "-" : "+", fabs(c));
      if (!one) nde_str_addf(&s, "*%s", d->terms[j]);
    }
    first = 0;
  }
  if (first) nde_str_adds(&s, "0");
  return nde_str_take(&s);
}

/* A parameter name for term j of output `comp` of a net: "U1_xy", "U2_x2y", "U1_c" (constant),
 * "U1_t3" (a term with characters a name cannot hold). */
static void coef_name(nde_str *s, const char *net, int comp, int j, const char *term) {
  nde_str_addf(s, "%s%d_", net, comp + 1);
  if (!strcmp(term, "1")) {
    nde_str_adds(s, "c");
    return;
  }
  nde_str part = NDE_STR_INIT;
  int plain = 1;
  for (const char *c = term; *c; c++) {
    if (isalnum((unsigned char)*c) || *c == '_') nde_str_add(&part, c, 1);
    else if (!strchr("*^[]()", *c)) plain = 0;
  }
  if (plain && part.len > 0 && part.len <= 48) nde_str_add(s, part.data, part.len);
  else nde_str_addf(s, "t%d", j + 1);
  nde_str_release(&part);
}

/* Whether name occurs in text as a whole word. */
static int has_word(const char *text, const char *name) {
  const size_t len = strlen(name);
  for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
    const int before = p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
    const int after = isalnum((unsigned char)p[len]) || p[len] == '_';
    if (!before && !after) return 1;
  }
  return 0;
}

/* The coefficient's parameter name for output q, term j (numbering the call when a net is called
 * more than once, and avoiding names the source already uses). */
static void param_name(const nde_discovery *d, nde_str *s, int q, int j) {
  const output *o = &d->out[q];
  const nde_model_net_call *cl = &d->calls[o->call];
  nde_model_net_info ni;
  nde_model_get_net(d->m, cl->net, &ni);
  int nth = 0, total = 0;
  for (int c = 0; c < d->n_calls; c++)
    if (d->sel[c] && d->calls[c].net == cl->net) {
      total++;
      if (c <= o->call) nth++;
    }
  const size_t start = s->len;
  coef_name(s, ni.name, o->component, j, d->terms[j]);
  if (total > 1) nde_str_addf(s, "_call%d", nth);
  if (!s->failed && has_word(nde_model_source(d->m), s->data + start)) nde_str_adds(s, "_d");
}

/* Whether a fitted value can be written as the parameter's declared value: a value that
 * saturated its transform (exp underflowing to 0, a logit at a bound) would not load, and keeps
 * the declaration. */
static int writable_value(const nde_model_param_info *pi, double v) {
  if (!isfinite(v)) return 0;
  if (pi->positive) return v > 0;
  if (pi->bounded) return v > pi->lo && v < pi->hi;
  return 1;
}

nde_status nde_discovery_model_text(const nde_discovery *d, char **text, nde_error *err) {
  if (!text) return nde__fail(err, NDE_ERR_ARG, "no output pointer");
  *text = NULL;
  if (!d || d->stage < 3)
    return nde__fail(err, NDE_ERR_ARG, "the discovered model needs a selection first");
  const nde_model *m = d->m;
  const char *src = nde_model_source(m);
  const size_t src_len = strlen(src);
  nde_str s = NDE_STR_INIT;
  nde_str_adds(&s, "# Discovered by nde discover (STLSQ, ");
  nde_str_adds(&s, d->o.threshold >= 0 ? "fixed threshold" : d->o.criterion == NDE_CRIT_AIC ? "AIC" : "BIC");
  nde_str_adds(&s, "):\n");
  for (int q = 0; q < d->n_out; q++) {
    nde_discovery_output oi;
    nde_discovery_get_output(d, q, &oi);
    char *eq = nde_discovery_equation(d, q, d->out[q].chosen, 0);
    nde_str_addf(&s, "#   %s[%d](%.*s) ~ %s\n", oi.net, oi.component + 1, oi.args_len, oi.args,
                 eq ? eq : "?");
    nde_free(eq);
  }
  /* The coefficients were read off the nets as trained together with the other learnable
   * parameters, and the candidates were scored at their fitted values: the file carries those
   * values, not the starting values the source declares (a per-series parameter has no one value
   * to write and keeps its declaration). */
  const double *theta = nde_result_theta(d->r);
  int n_fitted = 0;
  for (int i = 0; i < nde_model_n_params(m); i++) {
    nde_model_param_info pi;
    nde_model_get_param(m, i, &pi);
    n_fitted += pi.learnable && !pi.per_series;
  }
  if (n_fitted > 0)
    nde_str_adds(&s, "# The other learnable parameters are written at their fitted values.\n");
  nde_str_adds(&s, "# Refine the coefficients with: nde fit THIS_FILE DATA.h5 -o refit.h5\n");
  /* Edits in source order: net declarations (replaced by the coefficients), calls and the values
   * of the fitted parameters. */
  size_t at = 0;
  for (;;) {
    size_t best = (size_t)-1, best_end = 0;
    int kind = 0, which = -1;
    for (int i = 0; i < nde_model_n_params(m); i++) {
      nde_model_param_info pi;
      size_t b, e;
      nde_model_get_param(m, i, &pi);
      if (!pi.learnable || pi.per_series ||
          !writable_value(&pi, nde_model_param_value(m, i, theta)) ||
          nde_model_param_value_range(m, i, &b, &e) != NDE_OK)
        continue;
      if (b >= at && b < best) {
        best = b;
        best_end = e;
        kind = 3;
        which = i;
      }
    }
    for (int k = 0; k < nde_model_n_nets(m); k++) {
      int used = 0;
      for (int c = 0; c < d->n_calls; c++) used |= d->sel[c] && d->calls[c].net == k;
      size_t b, e;
      if (!used || nde_model_net_decl_range(m, k, &b, &e) != NDE_OK) continue;
      if (b >= at && b < best) {
        best = b;
        best_end = e;
        kind = 1;
        which = k;
      }
    }
    for (int c = 0; c < d->n_calls; c++)
      if (d->sel[c] && d->calls[c].begin >= at && d->calls[c].begin < best) {
        best = d->calls[c].begin;
        best_end = d->calls[c].end;
        kind = 2;
        which = c;
      }
    if (which < 0) break;
    nde_str_add(&s, src + at, best - at);
    if (kind == 3) {
      nde_str_addf(&s, "%.17g", nde_model_param_value(m, which, theta));
    } else if (kind == 1) {
      nde_model_net_info ni;
      nde_model_get_net(m, which, &ni);
      nde_str_addf(&s, "# net %s replaced by its discovered terms:\n", ni.name);
      for (int q = 0; q < d->n_out; q++) {
        if (d->calls[d->out[q].call].net != which) continue;
        const double *xi = d->out[q].c[d->out[q].chosen].xi;
        for (int j = 0; j < d->p; j++) {
          if (xi[j] == 0) continue;
          nde_str_adds(&s, "param ");
          param_name(d, &s, q, j);
          nde_str_addf(&s, " = %.10g\n", xi[j]);
        }
      }
    } else {
      nde_str_adds(&s, "[");
      for (int q = 0; q < d->n_out; q++) {
        if (d->out[q].call != which) continue;
        if (d->out[q].component) nde_str_adds(&s, ", ");
        const double *xi = d->out[q].c[d->out[q].chosen].xi;
        int any = 0;
        for (int j = 0; j < d->p; j++) {
          if (xi[j] == 0) continue;
          if (any) nde_str_adds(&s, " + ");
          param_name(d, &s, q, j);
          if (strcmp(d->terms[j], "1")) nde_str_addf(&s, "*(%s)", d->terms[j]);
          any = 1;
        }
        if (!any) nde_str_adds(&s, "0");
      }
      nde_str_adds(&s, "]");
    }
    at = best_end;
  }
  nde_str_add(&s, src + at, src_len - at);
  if (s.failed) {
    nde_str_release(&s);
    return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  }
  /* The result must compile: checked before anyone writes it. */
  nde_model *dm = NULL;
  nde_error sub;
  nde_status st = nde_model_load_string(s.data, s.len, "discovered model", &dm, &sub);
  nde_model_destroy(&dm);
  if (st != NDE_OK) {
    nde_str_release(&s);
    return nde__fail(err, NDE_ERR_INTERNAL, "the discovered model does not compile: %s", sub.msg);
  }
  *text = nde_str_take(&s);
  return *text ? NDE_OK : nde__fail(err, NDE_ERR_NOMEM, "out of memory");
}

nde_status nde_discovery_choose_support(nde_discovery *d, int q, const int *support,
                                        nde_error *err) {
  if (!d || !support || q < 0 || q >= d->n_out)
    return nde__fail(err, NDE_ERR_ARG, "nde_discovery_choose_support: bad arguments");
  if (d->stage < 2) {
    nde_status st = nde_discovery_candidates(d, err);
    if (st != NDE_OK) return st;
  }
  output *o = &d->out[q];
  for (int j = 0; j < d->p; j++)
    if (support[j] && !o->allow[j])
      return nde__fail(err, NDE_ERR_ARG,
                       "term '%s' is not a candidate of output %d: the call's arguments do not "
                       "depend on all of its variables", d->terms[j], q);
  double *y = nde__dalloc(d->n_s);
  if (!y) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < d->n_s; i++) y[i] = d->V[i * (size_t)d->W + (size_t)o->col];
  int added;
  nde_status st = add_candidate(d, o, y, support, NAN, &added, err);
  free(y);
  if (st != NDE_OK) return st;
  for (int e = 0; e < o->n_c; e++) {
    int same = 1;
    for (int j = 0; j < d->p && same; j++) same = (support[j] != 0) == (o->c[e].xi[j] != 0);
    if (same) o->chosen = e;
  }
  /* Every output has a chosen model from here on: the model text can be made. */
  int all = 1;
  for (int k = 0; k < d->n_out; k++) all &= d->out[k].chosen >= 0;
  if (all && d->stage < 3) d->stage = 3;
  return NDE_OK;
}
