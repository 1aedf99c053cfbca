/* Stability selection of discovered laws over an ensemble (Meinshausen & Buhlmann 2010,
 * "Stability selection", JRSS B 72:417): the discovery pipeline runs on every member of an
 * ensemble result (each its own fitted networks), the frequency with which each candidate term
 * is chosen across the members is counted per output, and the final law keeps the terms chosen
 * in at least `inclusion` of them.  Each member's network output is then refitted on the final
 * terms, and the quantiles of those coefficients over the members are their intervals.  Members
 * run on the shared job runner (nde__par_run: a thread pool), each writing only its own slot;
 * counts are summed afterwards in member order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nde/discover.h"

typedef struct member_out {
  int ran;          /* its discovery ran (a member that cannot be integrated is left out) */
  nde_status st;    /* an error (not an outcome) */
  nde_error err;
  int *chosen;      /* n_out x p: 1 where the member's chosen model has the term */
  double *coef;     /* n_out x p: its refit on the final terms */
} member_out;

struct nde_stability {
  nde_stability_opts o;
  nde_discovery *main;   /* the discovery on the result's own fit, with the stable supports */
  int n_members, n_ran, n_out, p;
  double *freq;          /* n_out x p */
  int *selected;         /* n_out x p */
  double *median, *lower, *upper; /* n_out x p (NaN off the final terms) */
  int *n_coef;           /* n_out x p: members with a finite coefficient */
};

nde_stability_opts nde_stability_opts_default(void) {
  nde_stability_opts o;
  memset(&o, 0, sizeof o);
  o.discover = nde_discover_opts_default();
  o.inclusion = NDE_DEFAULT_INCLUSION;
  o.level = 0.95;
  return o;
}

void nde_stability_destroy(nde_stability **sp) {
  if (!sp || !*sp) return;
  nde_stability *s = *sp;
  nde_discovery_destroy(&s->main);
  free(s->freq);
  free(s->selected);
  free(s->median);
  free(s->lower);
  free(s->upper);
  free(s->n_coef);
  free(s);
  *sp = NULL;
}

/* ---- members on threads ---- */

typedef struct job_ctx {
  const nde_result *r;
  const nde_stability_opts *o;
  member_out *mo;
  int n_out, p;
  const int *final;  /* n_out x p, or NULL in the first pass */
  int n_jobs;
} job_ctx;

/* Discovery on member k: its chosen terms (first pass) or its refit on the final terms. */
static void run_member(job_ctx *C, int k) {
  member_out *mo = &C->mo[k];
  nde_member_info mi;
  nde_result_get_member(C->r, k, &mi);
  if (mi.status != NDE_FIT_DONE && mi.status != NDE_FIT_EARLY_STOP) return;
  nde_result *mr = NULL;
  nde_discovery *d = NULL;
  nde_status st = nde_result_member(C->r, k, &mr, &mo->err);
  if (st == NDE_OK) st = nde_discovery_create(mr, &C->o->discover, &d, &mo->err);
  if (st == NDE_OK)
    st = C->final ? nde_discovery_candidates(d, &mo->err) : nde_discovery_select(d, &mo->err);
  if (st == NDE_ERR_NUMERIC) {
    /* Its model cannot be integrated or is not finite at a sample: an outcome, left out. */
    st = NDE_OK;
    goto done;
  }
  if (st != NDE_OK) goto done;
  for (int q = 0; q < C->n_out && st == NDE_OK; q++) {
    if (C->final) {
      st = nde_discovery_choose_support(d, q, C->final + (size_t)q * (size_t)C->p, &mo->err);
      if (st != NDE_OK) break;
    }
    nde_discovery_output oi;
    nde_discovery_candidate c;
    nde_discovery_get_output(d, q, &oi);
    nde_discovery_get_candidate(d, q, oi.chosen, &c);
    for (int j = 0; j < C->p; j++) {
      if (C->final) mo->coef[(size_t)q * (size_t)C->p + (size_t)j] = c.xi[j];
      else mo->chosen[(size_t)q * (size_t)C->p + (size_t)j] = c.xi[j] != 0;
    }
  }
  if (st == NDE_OK) mo->ran = 1;
done:
  mo->st = st;
  nde_discovery_destroy(&d);
  nde_result_destroy(&mr);
}

/* Member k's job on the shared job runner: non-zero when it failed. */
static int member_job(void *ctx, int worker, int k) {
  (void)worker;
  job_ctx *C = ctx;
  run_member(C, k);
  return C->mo[k].st != NDE_OK;
}

static int member_progress(void *ctx, int done, int total) {
  const job_ctx *C = ctx;
  return C->o->progress ? C->o->progress(C->o->progress_ctx, done, total) : 0;
}

/* Run every member on up to `threads` threads (nde__par_run: an nde_pool, progress from this
 * thread).  Returns the error of the failed member with the lowest index, or sets *stopped. */
static nde_status run_all(job_ctx *C, int threads, nde_error *err, int *stopped) {
  const int rc = nde__par_run(C->n_jobs, threads, member_job, C, member_progress, C);
  if (rc == NDE__PAR_STOPPED) {
    *stopped = 1;
    return NDE_OK;
  }
  for (int k = 0; k < C->n_jobs; k++)
    if (C->mo[k].st != NDE_OK) {
      if (err) *err = C->mo[k].err;
      return C->mo[k].st;
    }
  return NDE_OK;
}

nde_status nde_discover_stable(const nde_result *r, const nde_stability_opts *opts,
                               nde_stability **out, int *stopped, nde_error *err) {
  int stop_local = 0;
  if (!stopped) stopped = &stop_local;
  *stopped = 0;
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_discover_stable: no output pointer");
  *out = NULL;
  if (!r) return nde__fail(err, NDE_ERR_ARG, "stability selection needs a result");
  const nde_stability_opts o = opts ? *opts : nde_stability_opts_default();
  if (!(o.inclusion > 0 && o.inclusion <= 1) || !(o.level > 0 && o.level < 1))
    return nde__fail(err, NDE_ERR_ARG,
                     "stability selection: the inclusion frequency must be in (0, 1] and the "
                     "level in (0, 1) (got %g and %g)",
                     o.inclusion, o.level);
  const int K = nde_result_n_members(r);
  if (K < 2)
    return nde__fail(err, NDE_ERR_ARG,
                     "stability selection needs an ensemble result (fit with --ensemble K, K >= "
                     "2); this result holds %d members",
                     K);
  nde_stability *s = calloc(1, sizeof *s);
  member_out *mo = calloc((size_t)K, sizeof *mo);
  int *final = NULL;
  double *v = nde__dalloc((size_t)K);
  nde_status st = NDE_OK;
  if (!s || !mo || !v) goto nomem;
  s->o = o;
  s->n_members = K;
  /* The result's own discovery fixes the outputs and terms (every member has the same model). */
  if ((st = nde_discovery_create(r, &o.discover, &s->main, err)) != NDE_OK) goto fail;
  s->n_out = nde_discovery_n_outputs(s->main);
  s->p = nde_discovery_n_terms(s->main);
  const size_t cells = (size_t)s->n_out * (size_t)s->p;
  s->freq = nde__dalloc(cells);
  s->selected = calloc(cells + 1, sizeof *s->selected);
  s->median = nde__dalloc(cells);
  s->lower = nde__dalloc(cells);
  s->upper = nde__dalloc(cells);
  s->n_coef = calloc(cells + 1, sizeof *s->n_coef);
  final = calloc(cells + 1, sizeof *final);
  if (!s->freq || !s->selected || !s->median || !s->lower || !s->upper || !s->n_coef || !final)
    goto nomem;
  for (int k = 0; k < K; k++) {
    mo[k].chosen = calloc(cells + 1, sizeof *mo[k].chosen);
    mo[k].coef = nde__dalloc(cells);
    if (!mo[k].chosen || !mo[k].coef) goto nomem;
  }
  job_ctx C;
  memset(&C, 0, sizeof C);
  C.r = r;
  C.o = &o;
  C.mo = mo;
  C.n_out = s->n_out;
  C.p = s->p;
  C.n_jobs = K;
  const int threads = nde__par_threads(o.threads, K);
  /* Pass 1: every member's own discovery. */
  if ((st = run_all(&C, threads, err, stopped)) != NDE_OK) goto fail;
  if (*stopped) goto fail;
  for (int k = 0; k < K; k++) s->n_ran += mo[k].ran;
  if (s->n_ran == 0) {
    st = nde__fail(err, NDE_ERR_NUMERIC, "no member of the ensemble could be integrated for "
                   "discovery");
    goto fail;
  }
  for (size_t c = 0; c < cells; c++) {
    int cnt = 0;
    for (int k = 0; k < K; k++) cnt += mo[k].ran && mo[k].chosen[c];
    s->freq[c] = (double)cnt / s->n_ran;
    /* A small tolerance so that 6 of 10 counts as 0.6. */
    final[c] = s->selected[c] = s->freq[c] >= o.inclusion - 1e-12;
  }
  /* Pass 2: every member refitted on the final terms. */
  C.final = final;
  for (int k = 0; k < K; k++) mo[k].ran = 0;
  if ((st = run_all(&C, threads, err, stopped)) != NDE_OK) goto fail;
  if (*stopped) goto fail;
  for (size_t c = 0; c < cells; c++) {
    int cnt = 0;
    for (int k = 0; k < K; k++)
      if (mo[k].ran && final[c] && isfinite(mo[k].coef[c])) v[cnt++] = mo[k].coef[c];
    nde__sort_doubles(v, (size_t)cnt);
    s->n_coef[c] = cnt;
    s->median[c] = final[c] ? nde__quantile_sorted(v, cnt, 0.5) : NAN;
    s->lower[c] = final[c] ? nde__quantile_sorted(v, cnt, (1 - o.level) / 2) : NAN;
    s->upper[c] = final[c] ? nde__quantile_sorted(v, cnt, (1 + o.level) / 2) : NAN;
  }
  /* The final law on the result's own fit: its samples refitted on the final terms. */
  if ((st = nde_discovery_candidates(s->main, err)) != NDE_OK) goto fail;
  for (int q = 0; q < s->n_out; q++)
    if ((st = nde_discovery_choose_support(s->main, q, final + (size_t)q * (size_t)s->p, err)) !=
        NDE_OK)
      goto fail;
  *out = s;
  s = NULL;
  goto done;
nomem:
  st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
fail:
done:
  for (int k = 0; mo && k < K; k++) {
    free(mo[k].chosen);
    free(mo[k].coef);
  }
  free(mo);
  free(final);
  free(v);
  nde_stability_destroy(&s);
  return st;
}

int nde_stability_n_members(const nde_stability *s) { return s ? s->n_ran : 0; }
const nde_discovery *nde_stability_discovery(const nde_stability *s) {
  return s ? s->main : NULL;
}

nde_status nde_stability_get(const nde_stability *s, int q, int j, nde_stable_term *out) {
  if (!s || !out || q < 0 || q >= s->n_out || j < 0 || j >= s->p) return NDE_ERR_ARG;
  const size_t c = (size_t)q * (size_t)s->p + (size_t)j;
  nde_discovery_output oi;
  nde_discovery_get_output(s->main, q, &oi);
  nde_discovery_candidate cd;
  nde_discovery_get_candidate(s->main, q, oi.chosen, &cd);
  *out = (nde_stable_term){s->freq[c], s->selected[c], s->selected[c] ? cd.xi[j] : 0.0,
                           s->median[c], s->lower[c], s->upper[c], s->n_coef[c]};
  return NDE_OK;
}

char *nde_stability_equation(const nde_stability *s, int q, int pretty) {
  if (!s || q < 0 || q >= s->n_out) return NULL;
  nde_discovery_output oi;
  nde_discovery_get_output(s->main, q, &oi);
  return nde_discovery_equation(s->main, q, oi.chosen, pretty);
}

nde_status nde_stability_model_text(const nde_stability *s, char **text, nde_error *err) {
  if (!s) return nde__fail(err, NDE_ERR_ARG, "no stability selection");
  return nde_discovery_model_text(s->main, text, err);
}
