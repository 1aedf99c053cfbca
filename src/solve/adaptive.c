/* The generic explicit Runge-Kutta kernel and the adaptive driver used by dopri5 forward solves
 * and by the built-in continuous adjoints (backward, on augmented systems).
 *
 * Error: err_i = h sum_j e_j K_j, ||err|| = sqrt(mean_i (err_i / (atol + rtol max(|z_i|,
 * |z'_i|)))^2) over the first N_err unknowns.  PI control (Gustafsson 1991, as in Hairer's DOPRI5):
 * h' = h / clamp(err^(0.2 - 0.75 b) err_old^-b / safety, 1/fac_max, 1/fac_min).  Initial step:
 * Hairer's HINIT; stiffness test: Hairer's DOPRI5 (Hairer & Wanner, Solving ODEs II, IV.2).
 * Reference: Hairer, Norsett & Wanner, Solving Ordinary Differential Equations I, sec. II.4. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A stiffness estimate below stiff_bound this many accepted steps in a row clears the count of
 * positive tests (Hairer's DOPRI5). */
#define NDE__STIFF_CLEAR_RUN 6

/* The kernel of nde__erk_step on a system whose unknowns z[N_dep .. N) are quadratures: F does
 * not read them, so their stage inputs are not formed (Z holds only the first N_dep of each
 * stage) and they enter only the new state. */
static int erk_step_q(const nde__tableau *tab, int ns, size_t N, size_t N_dep, nde__sys_fn F,
                      void *ctx, double t, double h, const double *z, int k1_known, double *K,
                      double *Z, double *znew) {
  const int s = tab->s;
  for (int i = 0; i < ns; i++) {
    double *Zi = Z + (size_t)i * N;
    if (Zi != z) memcpy(Zi, z, N_dep * sizeof *Zi);
    for (int j = 0; j < i; j++) {
      const double a = h * tab->A[i * s + j];
      if (a == 0.0) continue;
      const double *Kj = K + (size_t)j * N;
      for (size_t q = 0; q < N_dep; q++) Zi[q] += a * Kj[q];
    }
    if (i == 0 && k1_known) continue;
    int rc = F(ctx, i, t + tab->c[i] * h, Zi, K + (size_t)i * N);
    if (rc != 0) return rc;
  }
  if (tab->fsal && ns == s) {
    /* The last stage's input was computed with the weights b: it is the new state.  The
     * quadratures get the same arithmetic. */
    const int l = s - 1;
    memmove(znew, Z + (size_t)l * N, N_dep * sizeof *znew);
    if (N_dep < N) {
      if (znew != z) memcpy(znew + N_dep, z + N_dep, (N - N_dep) * sizeof *znew);
      for (int j = 0; j < l; j++) {
        const double a = h * tab->A[l * s + j];
        if (a == 0.0) continue;
        const double *Kj = K + (size_t)j * N;
        for (size_t q = N_dep; q < N; q++) znew[q] += a * Kj[q];
      }
    }
    return 0;
  }
  /* The increment first, then the state (znew may alias z): the arithmetic of the fixed-step
   * kernel before dopri5 arrived, so euler/rk4 results stay bit for bit. */
  double hb[NDE__MAX_STAGES];
  for (int j = 0; j < s; j++) hb[j] = h * tab->b[j];
  for (size_t q = 0; q < N; q++) {
    double inc = 0.0;
    for (int j = 0; j < s; j++)
      if (hb[j] != 0.0) inc += hb[j] * K[(size_t)j * N + q];
    znew[q] = z[q] + inc;
  }
  return 0;
}

int nde__erk_step(const nde__tableau *tab, int ns, size_t N, nde__sys_fn F, void *ctx, double t,
                  double h, const double *z, int k1_known, double *K, double *Z, double *znew) {
  return erk_step_q(tab, ns, N, N, F, ctx, t, h, z, k1_known, K, Z, znew);
}

nde_status nde__adapt_init(nde__adapt *a, const nde__tableau *tab, size_t N_cap) {
  memset(a, 0, sizeof *a);
  a->tab = tab;
  size_t sn;
  if (!nde__mul_size(N_cap, (size_t)tab->s, &sn)) return NDE_ERR_NOMEM;
  a->K = nde__dalloc(sn);
  a->Z = nde__dalloc(sn);
  a->znew = nde__dalloc(N_cap);
  if (!a->K || !a->Z || !a->znew) {
    nde__adapt_free(a);
    return NDE_ERR_NOMEM;
  }
  return NDE_OK;
}

void nde__adapt_free(nde__adapt *a) {
  free(a->K);
  free(a->Z);
  free(a->znew);
  a->K = a->Z = a->znew = NULL;
}

void nde__adapt_begin(nde__adapt *a, size_t N, size_t N_err, const nde_solver_opts *o,
                      int stiff_test) {
  a->N = N;
  a->N_err = N_err ? N_err : N;
  a->N_dep = N;
  a->o = *o;
  a->stiff_test = stiff_test && o->stiff_test_after > 0 && a->tab->fsal;
  a->h = 0.0;
  a->facold = 1e-4;
  a->k1_valid = 0;
  a->last_rejected = 0;
  a->stiff_hits = a->nonstiff_run = 0;
  a->n_steps = a->n_rejected = a->n_retries = 0;
  a->reason = NDE_REASON_NONE;
  a->t_stop = 0.0;
  a->h_last = 0.0;
  a->bad_index = -1;
}

/* RMS of (x_i / sc_i) over i < N_err with sc_i = atol + rtol |z_i|. */
static double wrms(const nde__adapt *a, const double *x, const double *z) {
  double sum = 0.0;
  for (size_t q = 0; q < a->N_err; q++) {
    const double sc = a->o.atol + a->o.rtol * fabs(z[q]);
    const double r = x[q] / sc;
    sum += r * r;
  }
  return sqrt(sum / (double)a->N_err);
}

/* Hairer's HINIT for a method of order p: h = min(100 h0, (0.01 / max(|f'|, |f|))^(1/p)) where
 * h0 = 0.01 |z| / |f| and f' is estimated from one explicit Euler step. */
static int initial_step(nde__adapt *a, nde__sys_fn F, void *ctx, double t, double dir,
                        const double *z) {
  const size_t N = a->N;
  const double *f0 = a->K;
  const double dnf = wrms(a, f0, z), dny = wrms(a, z, z);
  double h = (dnf <= 1e-5 || dny <= 1e-5) ? 1e-6 : 0.01 * dny / dnf;
  if (a->o.h_max > 0) h = fmin(h, a->o.h_max);
  double *y1 = a->Z + N, *f1 = a->K + N;
  for (size_t q = 0; q < N; q++) y1[q] = z[q] + dir * h * f0[q];
  int rc = F(ctx, 1, t + dir * h, y1, f1);
  if (rc < 0) return rc;
  double h1 = h;
  if (rc == 0) {
    for (size_t q = 0; q < N; q++) y1[q] = f1[q] - f0[q];
    double der2 = wrms(a, y1, z) / h;
    if (isfinite(der2)) {
      const double der12 = fmax(der2, dnf);
      h1 = der12 <= 1e-15 ? fmax(1e-6, h * 1e-3) : pow(0.01 / der12, 1.0 / (a->tab->order));
      h = fmin(100 * h, h1);
    }
  }
  if (a->o.h_max > 0) h = fmin(h, a->o.h_max);
  a->h = dir * h;
  return 0;
}

/* The error norm of a step; non-finite (with a->bad_index set) when znew or err is. */
static double error_norm(nde__adapt *a, double h, const double *z) {
  const nde__tableau *tab = a->tab;
  const size_t N = a->N, N_err = a->N_err;
  const double *znew = a->znew;
  double sum = 0.0;
  for (size_t q = 0; q < N_err; q++) {
    double e = 0.0;
    for (int j = 0; j < tab->s; j++)
      if (tab->e[j] != 0.0) e += tab->e[j] * a->K[(size_t)j * N + q];
    e *= h;
    if (!isfinite(znew[q]) || !isfinite(e)) {
      a->bad_index = (long)q;
      return NAN;
    }
    const double sc = a->o.atol + a->o.rtol * fmax(fabs(z[q]), fabs(znew[q]));
    const double r = e / sc;
    sum += r * r;
  }
  /* Outside the norm only finiteness matters: a non-finite stage shows in znew (the FSAL stage
   * in the next step's).  0 * x is NaN exactly when x is not finite; four sums vectorise. */
  if (N_err < N) {
    double probe[4] = {0.0, 0.0, 0.0, 0.0};
    size_t q = N_err;
    for (; q + 4 <= N; q += 4)
      for (int l = 0; l < 4; l++) probe[l] += 0.0 * znew[q + (size_t)l];
    for (; q < N; q++) probe[0] += 0.0 * znew[q];
    if (!isfinite(probe[0] + probe[1] + probe[2] + probe[3])) {
      for (q = N_err; q < N; q++)
        if (!isfinite(znew[q])) break;
      a->bad_index = (long)q;
      return NAN;
    }
  }
  return sqrt(sum / (double)N_err);
}

/* Hairer's stiffness test after an accepted step: |h lambda| ~ h |K_s - K_{s-1}| /
 * |Z_s - Z_{s-1}|.  Returns 1 when stiffness is suspected. */
static int stiffness_test(nde__adapt *a, double h) {
  if (!a->stiff_test || a->n_steps < a->o.stiff_test_after) return 0;
  if (a->n_steps % a->o.stiff_test_after != 0 && a->stiff_hits == 0) return 0;
  const size_t N = a->N;
  const int s = a->tab->s;
  const double *Kl = a->K + (size_t)(s - 1) * N, *Kp = a->K + (size_t)(s - 2) * N;
  const double *Zl = a->Z + (size_t)(s - 1) * N, *Zp = a->Z + (size_t)(s - 2) * N;
  double num = 0.0, den = 0.0;
  for (size_t q = 0; q < N; q++) {
    num += (Kl[q] - Kp[q]) * (Kl[q] - Kp[q]);
    den += (Zl[q] - Zp[q]) * (Zl[q] - Zp[q]);
  }
  if (den > 0 && fabs(h) * sqrt(num / den) > a->o.stiff_bound) {
    a->nonstiff_run = 0;
    if (++a->stiff_hits >= a->o.stiff_test_count) return 1;
  } else if (++a->nonstiff_run >= NDE__STIFF_CLEAR_RUN) {
    a->stiff_hits = 0;
  }
  return 0;
}

int nde__adapt_run(nde__adapt *a, nde__sys_fn F, void *ctx, nde__accept_fn on_accept,
                   void *actx, double t0, double t1, double *z) {
  const nde__tableau *tab = a->tab;
  const size_t N = a->N;
  const double dir = t1 >= t0 ? 1.0 : -1.0;
  const double beta = a->o.pi_beta;
  const double expo1 = 1.0 / (tab->emb_order + 1) - 0.75 * beta;
  double t = t0;
  a->reason = NDE_REASON_NONE;
  a->bad_index = -1;
  a->t_stop = t0;
  if (t0 == t1) return 0;
  if (!a->k1_valid) {
    int rc = F(ctx, 0, t, z, a->K);
    if (rc < 0) return rc;
    long bad = rc == 0 ? nde__first_nonfinite(N, a->K) : -1;
    if (rc > 0 || bad >= 0) {
      /* The derivative at the start point does not depend on h: no retry can help. */
      a->reason = rc > 0 ? NDE_REASON_RHS_RECOVERABLE : NDE_REASON_NONFINITE;
      a->bad_index = bad;
      return 0;
    }
    a->k1_valid = 1;
  }
  if (a->h == 0.0 || a->h * dir < 0) {
    if (a->o.h0 > 0) {
      a->h = dir * a->o.h0;
    } else {
      int rc = initial_step(a, F, ctx, t, dir, z);
      if (rc < 0) return rc;
    }
  }
  int retries = 0;
  for (;;) {
    if (a->n_steps >= a->o.max_steps) {
      a->reason = NDE_REASON_MAX_STEPS;
      break;
    }
    double h = a->h;
    if (a->o.h_max > 0 && fabs(h) > a->o.h_max) h = dir * a->o.h_max;
    /* A step below the resolution of t (written without 0.1 * h, which is 0 for a subnormal h
     * such as --h0 4.9e-324 at t = 0, where any positive step is resolved). */
    if (fabs(h) <= a->o.h_min || fabs(h) <= 10.0 * fabs(t) * DBL_EPSILON) {
      a->h_last = h;
      a->reason = NDE_REASON_STEP_UNDERFLOW;
      break;
    }
    const double h_prop = h;
    int last = 0;
    if ((t + 1.01 * h - t1) * dir >= 0) {
      h = t1 - t;
      last = 1;
    }
    a->h_last = h;
    a->in_last_step = last;
    int rc = erk_step_q(tab, tab->s, N, a->N_dep, F, ctx, t, h, z, 1, a->K, a->Z, a->znew);
    if (rc < 0) {
      a->t_stop = t;
      return rc;
    }
    double err = NAN;
    if (rc == 0) err = error_norm(a, h, z);
    if (rc > 0 || !isfinite(err)) {
      a->n_rejected++;
      a->n_retries++;
      if (++retries > a->o.max_retries) {
        a->reason = NDE_REASON_RHS_FAILED;
        break;
      }
      a->h = h * a->o.retry_shrink;
      a->last_rejected = 1;
      continue;
    }
    retries = 0;
    a->bad_index = -1;
    const double fac11 = pow(err, expo1);
    double fac = fac11 / pow(a->facold, beta) / a->o.safety;
    fac = fmax(1.0 / a->o.fac_max, fmin(1.0 / a->o.fac_min, fac));
    double hnew = h / fac;
    if (err > 1.0) {
      a->h = h / fmin(1.0 / a->o.fac_min, fac11 / a->o.safety);
      a->last_rejected = 1;
      a->n_rejected++;
      continue;
    }
    a->facold = fmax(err, 1e-4);
    a->n_steps++;
    const int stiff = stiffness_test(a, h);
    if (on_accept) {
      rc = on_accept(actx, t, h, z, a->znew, a->K, a->Z);
      if (rc != 0) {
        a->t_stop = t;
        return rc;
      }
    }
    memcpy(z, a->znew, N * sizeof *z);
    if (tab->fsal)
      memcpy(a->K, a->K + (size_t)(tab->s - 1) * N, N * sizeof *a->K);
    else
      a->k1_valid = 0;
    t = last ? t1 : t + h;
    if (a->last_rejected) hnew = dir * fmin(fabs(hnew), fabs(h));
    a->last_rejected = 0;
    /* A step shortened to land on t1 does not shrink the step carried to the next call. */
    a->h = last ? dir * fmax(fabs(hnew), fabs(h_prop)) : hnew;
    if (stiff) {
      a->reason = NDE_REASON_STIFF_SUSPECTED;
      break;
    }
    if (last) break;
    if (!a->k1_valid) {
      rc = F(ctx, 0, t, z, a->K);
      if (rc < 0) {
        a->t_stop = t;
        return rc;
      }
      if (rc > 0 || nde__first_nonfinite(N, a->K) >= 0) {
        a->reason = rc > 0 ? NDE_REASON_RHS_RECOVERABLE : NDE_REASON_NONFINITE;
        a->bad_index = nde__first_nonfinite(N, z);
        break;
      }
      a->k1_valid = 1;
    }
  }
  a->t_stop = t;
  return 0;
}
