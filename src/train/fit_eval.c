/* The evaluation of the fit objective: the groups of pieces (groups.c) of this rank are solved and
 * differentiated as batches on the threads of a pool, one worker (rhs clone, solver, gradient
 * workspace) per thread, each group's results in places of its own; then the loss and gradient
 * are summed over the groups and the ranks by the reproducible sum of core (pre-rounding,
 * Demmel & Nguyen 2013): one integer maximum (the exponents, and the first failed group) and one
 * integer sum (the digits) across the ranks.  Nothing here depends on the number of threads or
 * ranks except which of them computes what. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fit_internal.h"
#include "internal.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The batched loss: per row the weighted squared error of the piece from its observations
 * (leading ones left out) and the continuity penalty towards the next segment's start.  With an
 * observation model the observations are its K quantities at the observation times: H(t_k, Y_k,
 * theta) is compared, and dL/dY_k = dH/du^T dL/dH (dH/dtheta^T dL/dH goes to w->gth_obs). */
typedef struct batch_loss {
  const nde_fit *f;
  const nde__row *rows;
  double scale, pen_scale;
  nde__worker *w;
  const double *t;     /* the grid (for the observer) */
  const double *theta;
} batch_loss;

static int batch_loss_eval(void *ctx, int n_obs, int B, int n, const double *Y, double *L,
                           double *dLdY) {
  const batch_loss *bl = ctx;
  const nde_fit *f = bl->f;
  nde__worker *w = bl->w;
  const int K = f->K;
  double total = 0.0;
  for (int b = 0; b < B; b++) *bl->rows[b].data = 0.0;
  if (dLdY && w->obs) memset(w->gth_obs, 0, f->n_theta * sizeof *w->gth_obs);
  for (int k = 0; k < n_obs; k++) {
    const double *Yk = Y + (size_t)k * (size_t)B * (size_t)n;
    double *dk = dLdY ? dLdY + (size_t)k * (size_t)B * (size_t)n : NULL;
    if (dk) memset(dk, 0, (size_t)B * (size_t)n * sizeof *dk);
    int any = 0;
    for (int b = 0; b < B && !any; b++) any = k >= bl->rows[b].skip;
    if (!any) continue;
    /* The compared quantities (B x K) and their cotangents: the states themselves, or the
     * observation model's outputs, whose cotangents its VJP takes back to the states. */
    const double *Hk = Yk;
    double *LHk = dk;
    if (w->obs) {
      /* A quantity that is not finite (rc > 0) matters only where it is compared: there its
       * residual makes the loss NaN (an outcome, not an error); unmeasured, it is skipped, and
       * its zero cotangent passes nothing back through its derivative (the observer's VJP
       * treats zero cotangents as exact zeros). */
      const int rc = nde_observer_eval(w->obs, bl->t[k], B, Yk, bl->theta, w->H);
      if (rc < 0) return rc;
      Hk = w->H;
      LHk = dLdY ? w->LH : NULL;
    }
    int any_obs = 0;
    for (int b = 0; b < B; b++) {
      const nde__row *r = &bl->rows[b];
      for (int i = 0; i < K; i++) {
        const size_t q = (size_t)b * (size_t)K + (size_t)i;
        const double o = r->obs[(size_t)k * (size_t)K + (size_t)i];
        if (LHk) LHk[q] = 0.0;
        if (k < r->skip || isnan(o)) continue;
        const double h = Hk[q];
        /* A compared quantity that is not finite (or not positive in log space) makes the
         * loss NaN, not +inf. */
        double res = f->o.log_space ? log(h) - log(o) : h - o;
        if (!isfinite(res)) res = NAN;
        *r->data += r->w[i] * res * res;
        if (LHk) LHk[q] = bl->scale * 2.0 * r->w[i] * res * (f->o.log_space ? 1.0 / h : 1.0);
        any_obs = 1;
      }
    }
    if (w->obs && dLdY && any_obs &&
        nde_observer_vjp(w->obs, bl->t[k], B, Yk, bl->theta, w->LH, dk, w->gth_obs) < 0)
      return -1;
  }
  for (int b = 0; b < B; b++) *bl->rows[b].data *= bl->scale;
  for (int b = 0; b < B; b++) {
    const nde__row *r = &bl->rows[b];
    double pen = 0.0;
    if (r->next) {
      const size_t last = ((size_t)(n_obs - 1) * (size_t)B + (size_t)b) * (size_t)n;
      for (int i = 0; i < n; i++) {
        const double d = Y[last + (size_t)i] - r->next[i];
        pen += bl->pen_scale * d * d;
        if (dLdY) dLdY[last + (size_t)i] += 2.0 * bl->pen_scale * d;
        r->dnext[i] = -2.0 * bl->pen_scale * d;
      }
    }
    *r->pen = pen;
    total += *r->data + pen;
  }
  *L = total;
  return 0;
}

nde_status nde__fit_worker_init(nde_fit *f, nde__worker *w, nde_rhs *rhs, int own,
                                const nde_solver_opts *sopts, const nde_grad_opts *gopts,
                                nde_error *sub) {
  memset(w, 0, sizeof *w);
  w->rhs = rhs;
  w->own_rhs = own;
  const size_t bn = (size_t)f->cap * (size_t)f->n;
  w->series_of_row = calloc((size_t)f->cap, sizeof *w->series_of_row);
  w->rows = calloc((size_t)f->cap, sizeof *w->rows);
  w->U0 = nde__dalloc(bn);
  w->gU = nde__dalloc(bn);
  w->snext = nde__dalloc(bn);
  nde_status st = NDE_ERR_NOMEM;
  if (!w->series_of_row || !w->rows || !w->U0 || !w->gU || !w->snext) {
    nde__fail(sub, st, "out of memory for a batch of %d rows", f->cap);
    goto fail;
  }
  st = nde_solver_create(rhs, sopts, f->cap, &w->solver, sub);
  if (st == NDE_OK) st = nde_grad_create(w->solver, gopts, &w->grad, sub);
  if (st == NDE_OK && f->o.observer) {
    /* Worker 0 uses the objective's observer; the others a clone of it. */
    w->own_obs = own;
    w->obs = f->o.observer;
    if (own) st = nde_observer_clone(f->o.observer, &w->obs, sub);
    w->H = nde__dalloc((size_t)f->cap * (size_t)f->K);
    w->LH = nde__dalloc((size_t)f->cap * (size_t)f->K);
    w->gth_obs = nde__dalloc(f->n_theta + 1);
    if (st == NDE_OK && (!w->H || !w->LH || !w->gth_obs))
      st = nde__fail(sub, NDE_ERR_NOMEM, "out of memory for the observations of a batch");
  }
  if (st == NDE_OK) return NDE_OK;
fail:
  nde__fit_worker_free(w);
  return st;
}

nde_status nde__fit_bind(nde__worker *w, int B, const int *series_of_row, double t0, double t1) {
  nde_status st = nde_rhs_set_rows(w->rhs, B, series_of_row);
  if (st == NDE_OK && w->obs) st = nde_observer_set_rows(w->obs, B, series_of_row);
  if (st != NDE_OK)
    return nde__errf(&w->err, st, "binding %d rows to their series (the first: series %d) failed",
                     B, series_of_row[0]);
  /* The breakpoints of the batch: the union of its rows' (the rhs reports them for the rows
   * bound now). */
  size_t nb = nde_rhs_breakpoints(w->rhs, t0, t1, w->bp_cap, w->bp);
  if (nb > w->bp_cap) {
    double *b = realloc(w->bp, nb * sizeof *b);
    if (!b) return nde__errf(&w->err, NDE_ERR_NOMEM, "out of memory for %zu breakpoints", nb);
    w->bp = b;
    w->bp_cap = nb;
    nb = nde_rhs_breakpoints(w->rhs, t0, t1, w->bp_cap, w->bp);
  }
  st = nde_solver_set_breakpoints(w->solver, nb, w->bp);
  if (st != NDE_OK) return nde__errf(&w->err, st, "%s", nde_solver_errmsg(w->solver));
  return NDE_OK;
}

nde_status nde_fit_set_parallel(nde_fit *f, nde_pool *pool, nde_comm *comm) {
  if (!f) return NDE_ERR_ARG;
  for (int i = 1; i < f->n_workers; i++) nde__fit_worker_free(&f->workers[i]);
  f->n_workers = 1;
  f->pool = NULL;
  f->comm = comm;
  const int want = nde_pool_size(pool);
  if (want <= 1) return NDE_OK;
  nde__worker *ws = realloc(f->workers, (size_t)want * sizeof *ws);
  if (!ws) return nde__errf(&f->err, NDE_ERR_NOMEM, "out of memory for %d threads", want);
  f->workers = ws;
  for (int i = 1; i < want; i++) {
    nde_rhs *c = NULL;
    nde_error sub;
    nde_status st = nde_rhs_clone(f->rhs, &c, &sub);
    if (st == NDE_ERR_UNSUPPORTED) break; /* a callback table without clone: one thread */
    if (st == NDE_OK)
      st = nde__fit_worker_init(f, &f->workers[i], c, 1, nde_solver_get_opts(f->solver),
                                &f->gopts, &sub);
    if (st != NDE_OK) {
      for (int k = 1; k < f->n_workers; k++) nde__fit_worker_free(&f->workers[k]);
      f->n_workers = 1;
      return nde__errf(&f->err, st, "a worker for thread %d: %s", i + 1, sub.msg);
    }
    f->n_workers++;
  }
  if (f->n_workers > 1) f->pool = pool;
  return NDE_OK;
}

int nde_fit_threads(const nde_fit *f) { return f ? f->n_workers : 1; }
nde_comm *nde__fit_comm(const nde_fit *f) { return f ? f->comm : NULL; }
void nde__fit_set_pool_min(nde_fit *f, double seconds) {
  if (f) f->pool_min_s = seconds;
}

typedef struct eval_ctx {
  nde_fit *f;
  const double *x;
  int want_g;
  double scale; /* of the mean */
} eval_ctx;

/* Group g_lo + item on thread `thread`: its rows' start states and loss views, the binding,
 * one batched loss-and-gradient, and the per-piece results.  Returns non-zero when the group
 * failed (an error, or a forward solve that stopped): later groups are then skipped. */
static int run_group(void *ctx, int thread, long item) {
  const eval_ctx *E = ctx;
  nde_fit *f = E->f;
  nde__group *G = &f->groups[f->g_lo + item];
  nde__worker *w = &f->workers[thread];
  const int n = f->n, B = G->B;
  const double *x = E->x;
  G->ran = 1;
  G->thread = thread;
  int any_start = 0;
  for (int b = 0; b < B; b++) {
    const long p = f->prow[G->first + b];
    const nde__piece *pc = &f->pieces[p];
    const nde_fit_series *se = &f->series[pc->series];
    w->series_of_row[b] = se->id;
    double *u = w->U0 + (size_t)b * (size_t)n;
    if (pc->x_start >= 0) {
      const double *sc = f->scale + (pc->x_start - (long)f->n_theta);
      for (int i = 0; i < n; i++) u[i] = sc[i] * x[pc->x_start + i];
      any_start = 1;
    } else {
      memcpy(u, pc->u_fixed, (size_t)n * sizeof *u);
    }
    nde__row *r = &w->rows[b];
    r->obs = se->obs + (size_t)pc->a * (size_t)f->K;
    r->w = f->wser + (size_t)pc->series * (size_t)f->K;
    r->skip = pc->skip;
    r->next = NULL;
    if (pc->x_next >= 0) {
      double *sn = w->snext + (size_t)b * (size_t)n;
      const double *sc = f->scale + (pc->x_next - (long)f->n_theta);
      for (int i = 0; i < n; i++) sn[i] = sc[i] * x[pc->x_next + i];
      r->next = sn;
    }
    r->dnext = f->pdn + (size_t)p * (size_t)n;
    r->data = &f->pdata[p];
    r->pen = &f->ppen[p];
  }
  /* An autonomous f has no breakpoints (it does not depend on t); else the union of the rows'
   * (their common ones under fixed steps: see groups.c). */
  nde_status st = nde__fit_bind(w, B, w->series_of_row, G->t[0],
                                f->o.autonomous ? G->t[0] : G->t[G->n_obs - 1]);
  if (st != NDE_OK) {
    G->st = st;
    return 1;
  }
  const batch_loss bl = {f, w->rows, E->scale, f->o.shoot_weight * E->scale, w, G->t, x};
  double Lg;
  nde_grad_stats gs;
  double *gth = E->want_g ? f->gth + (size_t)item * f->n_theta : NULL;
  st = nde_grad_eval(w->grad, x, B, w->U0, G->n_obs, G->t, batch_loss_eval, (void *)&bl, &Lg,
                     gth, E->want_g && any_start ? w->gU : NULL, NULL, &gs);
  if (st != NDE_OK) {
    G->st = st;
    nde__errf(&w->err, st, "%s", nde_grad_errmsg(w->grad));
    return 1;
  }
  if (gs.forward.reason != NDE_REASON_NONE) {
    G->stop = gs.forward;
    return 1;
  }
  G->bstop = gs.backward;
  if (gth && w->obs)
    for (size_t i = 0; i < f->n_theta; i++) gth[i] += w->gth_obs[i];
  if (E->want_g && any_start)
    for (int b = 0; b < B; b++) {
      const long p = f->prow[G->first + b];
      if (f->pieces[p].x_start >= 0)
        memcpy(f->pgu + (size_t)p * (size_t)n, w->gU + (size_t)b * (size_t)n,
               (size_t)n * sizeof *f->pgu);
    }
  return 0;
}

/* The contributions of this rank to the components [gradient (nx) | data | penalty]: with add
 * 0 their exponents into f->ex, with add 1 their digits into f->acc. */
static void contributions(nde_fit *f, size_t nx, int add) {
  const int n = f->n;
  double *tmp = f->ustart;
  for (long gi = f->g_lo; gi < f->g_hi; gi++) {
    const nde__group *G = &f->groups[gi];
    if (nx) {
      const double *gth = f->gth + (size_t)(gi - f->g_lo) * f->n_theta;
      if (add)
        nde__rsum_add(f->n_theta, gth, f->ex, f->acc);
      else
        nde__rsum_exp(f->n_theta, gth, f->ex);
    }
    for (int b = 0; b < G->B; b++) {
      const long p = f->prow[G->first + b];
      const nde__piece *pc = &f->pieces[p];
      if (add) {
        nde__rsum_add(1, &f->pdata[p], f->ex + nx, f->acc + 2 * nx);
        nde__rsum_add(1, &f->ppen[p], f->ex + nx + 1, f->acc + 2 * (nx + 1));
      } else {
        nde__rsum_exp(1, &f->pdata[p], f->ex + nx);
        nde__rsum_exp(1, &f->ppen[p], f->ex + nx + 1);
      }
      if (!nx) continue;
      /* The learned start states of the piece (dL/dU0) and of the next segment (the penalty),
       * scaled as x stores them. */
      const long offs[2] = {pc->x_start, pc->x_next};
      const double *src[2] = {f->pgu + (size_t)p * (size_t)n, f->pdn + (size_t)p * (size_t)n};
      for (int k = 0; k < 2; k++) {
        if (offs[k] < 0) continue;
        const double *sc = f->scale + (offs[k] - (long)f->n_theta);
        for (int i = 0; i < n; i++) tmp[i] = sc[i] * src[k][i];
        if (add)
          nde__rsum_add((size_t)n, tmp, f->ex + offs[k], f->acc + 2 * (size_t)offs[k]);
        else
          nde__rsum_exp((size_t)n, tmp, f->ex + offs[k]);
      }
    }
  }
}

/* What the rank of a failed group tells the others. */
typedef struct failure {
  int st;
  nde_solve_stats stop;
  char msg[NDE__ERRMSG_MAX];
} failure;

nde_status nde_fit_eval(nde_fit *f, const double *x, int shooting, nde_rng *rng, double *L,
                        double *g, nde_fit_info *info) {
  nde_fit_info local;
  if (!info) info = &local;
  memset(info, 0, sizeof *info);
  if (!f || !x || !L) return NDE_ERR_ARG;
  if (shooting && f->o.shoot_interval <= 0)
    return nde__errf(&f->err, NDE_ERR_ARG, "multiple shooting needs shoot_interval > 0");
  nde__fit_make_pieces(f, shooting, rng);
  /* The mean's denominator: the observed entries that the pieces compare. */
  long count = 0;
  for (long p = 0; p < f->np; p++) {
    const nde__piece *pc = &f->pieces[p];
    const double *obs = f->series[pc->series].obs;
    for (int k = pc->a + pc->skip; k <= pc->b; k++)
      for (int i = 0; i < f->K; i++) count += !isnan(obs[(size_t)k * f->K + i]);
  }
  const double scale = f->o.loss_sum || count == 0 ? 1.0 : 1.0 / (double)count;
  nde_status st = nde__fit_group(f);
  if (st != NDE_OK) return st;
  const long mine = f->g_hi - f->g_lo;
  const size_t nx = g ? nde_fit_n_x(f, shooting) : 0;
  if (g && mine > f->cap_gth) {
    double *b = realloc(f->gth, ((size_t)mine * f->n_theta + 1) * sizeof *b);
    if (!b)
      return nde__errf(&f->err, NDE_ERR_NOMEM, "out of memory for the gradients of %ld batches",
                       mine);
    f->gth = b;
    f->cap_gth = mine;
  }
  for (long gi = f->g_lo; gi < f->g_hi; gi++) {
    nde__group *G = &f->groups[gi];
    G->ran = 0;
    G->st = NDE_OK;
    G->stop.reason = NDE_REASON_NONE;
    G->bstop.reason = NDE_REASON_NONE;
  }
  /* Threads only for evaluations worth waking them for: the previous one's work (wall time x
   * threads) was at least NDE_FIT_POOL_MIN_SECONDS.  The result is the same either way. */
  const eval_ctx E = {f, x, g != NULL, scale};
  const int use_pool = f->pool && mine > 1 && f->work_s >= f->pool_min_s;
  const double t0 = now();
  nde_pool_run(use_pool ? f->pool : NULL, mine, run_group, (void *)&E);
  f->work_s = (now() - t0) * (use_pool ? nde_pool_size(f->pool) : 1);
  /* This rank's first failed group (every group before it ran). */
  long fail = -1;
  for (long gi = f->g_lo; gi < f->g_hi && fail < 0; gi++) {
    const nde__group *G = &f->groups[gi];
    if (G->ran && (G->st != NDE_OK || G->stop.reason != NDE_REASON_NONE)) fail = gi;
  }
  /* First pass: the exponent of every component and the first failed group of all ranks. */
  const size_t nc = nx + 2;
  for (size_t i = 0; i < nc; i++) f->ex[i] = NDE__RSUM_NONE;
  f->ex[nc] = fail >= 0 ? (int)-(fail < INT_MAX ? fail : INT_MAX - 1) : INT_MIN;
  if (fail < 0) contributions(f, nx, 0);
  if ((st = nde__comm_max_int(f->comm, f->ex, nc + 1, &f->err)) != NDE_OK) return st;
  info->n_solves = f->n_groups;
  if (f->ex[nc] != INT_MIN) {
    /* A group failed: its rank says how, and every rank gives the same answer. */
    const long gf = -(long)f->ex[nc];
    const nde__group *G = &f->groups[gf];
    failure fl;
    memset(&fl, 0, sizeof fl);
    if (G->owner == nde_comm_rank(f->comm)) {
      fl.st = G->st;
      fl.stop = G->stop;
      if (G->st != NDE_OK)
        snprintf(fl.msg, sizeof fl.msg, "%s", nde__err_msg(&f->workers[G->thread].err));
    }
    if ((st = nde__comm_bcast(f->comm, &fl, sizeof fl, G->owner, &f->err)) != NDE_OK) return st;
    if (fl.st != NDE_OK) return nde__errf(&f->err, (nde_status)fl.st, "%s", fl.msg);
    info->stop = fl.stop;
    *L = NAN;
    if (g)
      for (size_t i = 0; i < nde_fit_n_x(f, shooting); i++) g[i] = NAN;
    return NDE_OK;
  }
  /* Second pass: the digits, summed over the ranks, and the sums. */
  memset(f->acc, 0, 2 * nc * sizeof *f->acc);
  contributions(f, nx, 1);
  if ((st = nde__comm_sum_i64(f->comm, f->acc, 2 * nc, &f->err)) != NDE_OK) return st;
  nde__rsum_get(nc, f->ex, f->acc, f->red);
  if (g) memcpy(g, f->red, nx * sizeof *g);
  info->data_loss = f->red[nx];
  info->penalty = f->red[nx + 1];
  /* The first backward solve of this rank that stopped (its gradient is NaN, which the sum
   * carries to every rank; the reason is for this rank's messages). */
  for (long gi = f->g_lo; gi < f->g_hi; gi++)
    if (f->groups[gi].bstop.reason != NDE_REASON_NONE) {
      info->backward_stop = f->groups[gi].bstop;
      break;
    }
  *L = info->data_loss + info->penalty;
  /* Regularisation of the masked entries of theta (network weights): l2 sum th^2 + l1 sum |th|,
   * with the subgradient 0 at 0 for l1.  Every rank computes it alike. */
  if (f->o.reg_mask && (f->o.l2 > 0 || f->o.l1 > 0)) {
    double r = 0;
    for (size_t i = 0; i < f->n_theta; i++) {
      if (!f->o.reg_mask[i]) continue;
      const double th = x[i];
      r += f->o.l2 * th * th + f->o.l1 * fabs(th);
      if (g) g[i] += 2.0 * f->o.l2 * th + f->o.l1 * (th > 0 ? 1.0 : th < 0 ? -1.0 : 0.0);
    }
    info->regularization = r;
    *L += r;
  }
  return NDE_OK;
}
