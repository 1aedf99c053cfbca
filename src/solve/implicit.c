/* The implicit midpoint rule, u' = u + h f(t + h/2, (u + u')/2) (Hairer, Lubich & Wanner,
 * Geometric Numerical Integration, sec. II.1 and IV.2: order 2, symmetric, symplectic, conserves
 * quadratic invariants).  Each step solves w = u + (h/2) f(t + h/2, w) for w = (u + u')/2 by
 * Newton's method from w = u, with the n x n Jacobian of every batch row from n batched JVPs
 * (or difference quotients when the model has none) and an LU factorisation with partial
 * pivoting per row; then u' = 2 w - u.  The factors of the last iteration are kept for the
 * discrete adjoint, which solves the transposed system. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

nde_status nde__newton_init(nde__newton *nw, int max_batch, int n) {
  memset(nw, 0, sizeof *nw);
  size_t bn, bnn;
  if (!nde__mul_size((size_t)max_batch, (size_t)n, &bn) || !nde__mul_size(bn, (size_t)n, &bnn))
    return NDE_ERR_NOMEM;
  nw->F = nde__dalloc(bn);
  nw->R = nde__dalloc(bn);
  nw->J = nde__dalloc(bnn);
  nw->V = nde__dalloc(bn);
  nw->JV = nde__dalloc(bn);
  nw->wp = nde__dalloc(bn);
  nw->piv = calloc(bn, sizeof *nw->piv);
  if (!nw->F || !nw->R || !nw->J || !nw->V || !nw->JV || !nw->wp || !nw->piv)
    return NDE_ERR_NOMEM;
  return NDE_OK;
}

void nde__newton_free(nde__newton *nw) {
  free(nw->F);
  free(nw->R);
  free(nw->J);
  free(nw->V);
  free(nw->JV);
  free(nw->wp);
  free(nw->piv);
  memset(nw, 0, sizeof *nw);
}

/* In-place LU with partial pivoting of the n x n row-major A: P A = L U, piv[k] the row swapped
 * with row k at step k.  Returns -1 for a zero or non-finite pivot. */
static int lu_factor(int n, double *A, int *piv) {
  for (int k = 0; k < n; k++) {
    int p = k;
    double big = fabs(A[(size_t)k * n + k]);
    for (int i = k + 1; i < n; i++)
      if (fabs(A[(size_t)i * n + k]) > big) {
        big = fabs(A[(size_t)i * n + k]);
        p = i;
      }
    if (!(big > 0.0) || !isfinite(big)) return -1;
    piv[k] = p;
    if (p != k)
      for (int j = 0; j < n; j++) {
        const double tmp = A[(size_t)k * n + j];
        A[(size_t)k * n + j] = A[(size_t)p * n + j];
        A[(size_t)p * n + j] = tmp;
      }
    const double inv = 1.0 / A[(size_t)k * n + k];
    for (int i = k + 1; i < n; i++) {
      double *Ai = A + (size_t)i * n;
      const double l = Ai[k] * inv;
      Ai[k] = l;
      if (l != 0.0)
        for (int j = k + 1; j < n; j++) Ai[j] -= l * A[(size_t)k * n + j];
    }
  }
  return 0;
}

/* x <- A^-1 x with the factors of lu_factor. */
static void lu_solve(int n, const double *A, const int *piv, double *x) {
  for (int k = 0; k < n; k++)
    if (piv[k] != k) {
      const double tmp = x[k];
      x[k] = x[piv[k]];
      x[piv[k]] = tmp;
    }
  for (int i = 1; i < n; i++)
    for (int j = 0; j < i; j++) x[i] -= A[(size_t)i * n + j] * x[j];
  for (int i = n - 1; i >= 0; i--) {
    for (int j = i + 1; j < n; j++) x[i] -= A[(size_t)i * n + j] * x[j];
    x[i] /= A[(size_t)i * n + i];
  }
}

void nde__midpoint_solve_t(int B, int n, const double *LU, const double *piv, const double *b,
                           double *y) {
  /* A = P^T L U, so A^T y = b is U^T z = b, L^T x = z, y = P^T x. */
  for (int r = 0; r < B; r++) {
    const double *A = LU + (size_t)r * n * n, *pr = piv + (size_t)r * n;
    double *x = y + (size_t)r * n;
    memcpy(x, b + (size_t)r * n, (size_t)n * sizeof *x);
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < i; j++) x[i] -= A[(size_t)j * n + i] * x[j];
      x[i] /= A[(size_t)i * n + i];
    }
    for (int i = n - 1; i >= 0; i--)
      for (int j = i + 1; j < n; j++) x[i] -= A[(size_t)j * n + i] * x[j];
    for (int k = n - 1; k >= 0; k--) {
      const int p = (int)pr[k];
      if (p != k) {
        const double tmp = x[k];
        x[k] = x[p];
        x[p] = tmp;
      }
    }
  }
}

/* A = I - c J(t, w) for every row into A (B n n), J column by column from batched JVPs (V = e_j
 * in every row), or from forward differences of f around w (Fw = f(t, w)) without a JVP. */
static int newton_matrix(nde_solver *s, const double *theta, double t, int B, const double *w,
                         const double *Fw, double c, double *A) {
  nde__newton *nw = &s->nw;
  const int n = s->n;
  const size_t bn = (size_t)B * (size_t)n;
  const int has_jvp = nde_rhs_has_jvp(s->rhs);
  for (int j = 0; j < n; j++) {
    int rc;
    if (has_jvp) {
      memset(nw->V, 0, bn * sizeof *nw->V);
      for (int b = 0; b < B; b++) nw->V[(size_t)b * n + j] = 1.0;
      rc = nde_rhs_jvp(s->rhs, t, B, w, theta, nw->V, NULL, nw->JV);
      if (rc != 0) return rc;
    } else {
      memcpy(nw->wp, w, bn * sizeof *w);
      for (int b = 0; b < B; b++) {
        double *x = nw->wp + (size_t)b * n + j;
        *x += sqrt(DBL_EPSILON) * fmax(1.0, fabs(*x));
        nw->V[b] = *x - w[(size_t)b * n + j]; /* the increment actually taken */
      }
      rc = nde_rhs_f(s->rhs, t, B, nw->wp, theta, nw->JV, NULL);
      if (rc != 0) return rc;
      for (int b = 0; b < B; b++)
        for (int i = 0; i < n; i++) {
          const size_t q = (size_t)b * n + i;
          nw->JV[q] = (nw->JV[q] - Fw[q]) / nw->V[b];
        }
    }
    for (int b = 0; b < B; b++)
      for (int i = 0; i < n; i++)
        A[(size_t)b * n * n + (size_t)i * n + j] =
            (i == j ? 1.0 : 0.0) - c * nw->JV[(size_t)b * n + i];
  }
  return 0;
}

int nde__midpoint_step(nde_solver *s, const double *theta, double t, double h, int B,
                       const double *u, double *u_out, double *store, int *newton_failed) {
  nde__newton *nw = &s->nw;
  const int n = s->n;
  const size_t bn = (size_t)B * (size_t)n;
  const double tm = t + 0.5 * h, c = 0.5 * h;
  double *w = store ? store : s->Us;
  double *A = store ? store + bn : nw->J;
  double *dw = nw->R;
  *newton_failed = 0;
  memcpy(w, u, bn * sizeof *w);
  for (int it = 0;; it++) {
    if (it >= s->opts.newton_max_iter) {
      *newton_failed = 1;
      return 0;
    }
    int rc = nde_rhs_f(s->rhs, tm, B, w, theta, nw->F, NULL);
    if (rc != 0) return rc;
    rc = newton_matrix(s, theta, tm, B, w, nw->F, c, A);
    if (rc != 0) return rc;
    for (size_t q = 0; q < bn; q++) dw[q] = u[q] + c * nw->F[q] - w[q]; /* -R */
    for (int b = 0; b < B; b++) {
      double *Ab = A + (size_t)b * n * n;
      int *pb = nw->piv + (size_t)b * n;
      if (lu_factor(n, Ab, pb) != 0) {
        *newton_failed = 1;
        return 0;
      }
      lu_solve(n, Ab, pb, dw + (size_t)b * n);
    }
    int converged = 1;
    for (size_t q = 0; q < bn; q++) {
      w[q] += dw[q];
      if (!(fabs(dw[q]) <= s->opts.newton_tol * fmax(1.0, fabs(w[q])))) converged = 0;
    }
    if (nde__first_nonfinite(bn, w) >= 0) {
      *newton_failed = 1;
      return 0;
    }
    if (converged) break;
  }
  if (store) {
    double *pv = store + bn + bn * (size_t)n;
    for (size_t q = 0; q < bn; q++) pv[q] = (double)nw->piv[q];
  }
  for (size_t q = 0; q < bn; q++) u_out[q] = 2.0 * w[q] - u[q];
  return 0;
}
