/* Splitting methods for equations that split as q' = F(t, p), p' = G(t, q): Stormer-Verlet
 * (kick-drift-kick leapfrog) and compositions of it (Yoshida 1990), with the split found from the
 * right-hand side's structural dependency matrix.  Hairer, Lubich & Wanner, Geometric Numerical
 * Integration, 2nd ed., sec. I.3, II.4 and II.5.
 *
 * The right-hand side has one f for all components, so a kick evaluates f and uses its p part,
 * a drift evaluates f and uses its q part.  The kick at the end of a step and the one at the
 * start of the next read the same q at the same time, so the next step reuses it (FSAL) unless
 * a breakpoint lies between them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* "f[i] depends on u[j]", with the state names when given. */
static nde_status split_error(nde_solver *s, const char *const *names, int i, int j) {
  const char *m = s->method->info.name;
  if (names && names[i] && names[j])
    return nde__errf(&s->err, NDE_ERR_ARG,
                     "method '%s' needs equations that split as q' = F(p), p' = G(q), but "
                     "d%s/dt depends on %s (f[%d] depends on u[%d])",
                     m, names[i], names[j], i, j);
  return nde__errf(&s->err, NDE_ERR_ARG,
                   "method '%s' needs equations that split as q' = F(p), p' = G(q), but f[%d] "
                   "depends on u[%d]",
                   m, i, j);
}

nde_status nde__split_detect(nde_solver *s, const char *const *names) {
  const nde_rhs_info *info = nde_rhs_get_info(s->rhs);
  const int n = s->n;
  const unsigned char *dep = info->dep;
  if (!dep)
    return nde__errf(&s->err, NDE_ERR_ARG,
                     "method '%s' needs equations that split as q' = F(p), p' = G(q), found from "
                     "the right-hand side's dependency matrix (nde_rhs_info.dep), and this "
                     "right-hand side has none (every f[i] may depend on every u[j])",
                     s->method->info.name);
  for (int i = 0; i < n; i++)
    if (dep[(size_t)i * n + i]) return split_error(s, names, i, i);
  s->is_p = malloc((size_t)n);
  int *colour = malloc((size_t)n * sizeof *colour), *queue = malloc((size_t)n * sizeof *queue);
  nde_status st = NDE_OK;
  if (!s->is_p || !colour || !queue) {
    st = nde__errf(&s->err, NDE_ERR_NOMEM, "out of memory finding the split of %d states", n);
    goto out;
  }
  for (int i = 0; i < n; i++) colour[i] = -1;
  /* Breadth-first 2-colouring of the graph whose edges are the dependencies (either way); the
   * lowest index of each connected group is q. */
  for (int r = 0; r < n && st == NDE_OK; r++) {
    if (colour[r] >= 0) continue;
    colour[r] = 0;
    int head = 0, tail = 0;
    queue[tail++] = r;
    while (head < tail && st == NDE_OK) {
      const int v = queue[head++];
      for (int w = 0; w < n; w++) {
        const int fv = dep[(size_t)v * n + w] != 0, fw = dep[(size_t)w * n + v] != 0;
        if (!fv && !fw) continue;
        if (colour[w] < 0) {
          colour[w] = 1 - colour[v];
          queue[tail++] = w;
        } else if (colour[w] == colour[v]) {
          st = fv ? split_error(s, names, v, w) : split_error(s, names, w, v);
          break;
        }
      }
    }
  }
  if (st == NDE_OK)
    for (int i = 0; i < n; i++) s->is_p[i] = (unsigned char)colour[i];
out:
  free(colour);
  free(queue);
  return st;
}

void nde__split_times(const nde__split *sp, double t, double h, double *tk, double *td) {
  double D = 0.0;
  tk[0] = t;
  for (int i = 1; i <= sp->m; i++) {
    td[i] = t + h * (D + 0.5 * sp->drift[i]);
    D += sp->drift[i];
    tk[i] = i == sp->m ? t + h : t + h * D;
  }
}

/* u[p] += c G[p] (kick) or u[q] += c F[q] (drift) on every row. */
static void update(int B, int n, const unsigned char *is_p, unsigned char which, double c,
                   const double *d, double *u) {
  for (int b = 0; b < B; b++) {
    double *ub = u + (size_t)b * n;
    const double *db = d + (size_t)b * n;
    for (int i = 0; i < n; i++)
      if (is_p[i] == which) ub[i] += c * db[i];
  }
}

int nde__split_step(nde_solver *s, const double *theta, double t, double h, nde__span span, int B,
                    double *u, double *Ustore, double *cstore, int *fresh) {
  const nde__split *sp = s->method->split;
  const int n = s->n, m = sp->m;
  const size_t bn = (size_t)B * (size_t)n, bc = (size_t)B * s->cache_per_row;
  double *G = s->K, *F = s->K + bn;
  double tk[NDE__SPLIT_MAX + 1], td[NDE__SPLIT_MAX + 1];
  nde__split_times(sp, t, h, tk, td);
  const int reuse = s->g_valid;
  s->g_valid = 0;
  *fresh = !reuse;
  int rc;
  if (!reuse) {
    if (Ustore) memcpy(Ustore, u, bn * sizeof *u);
    rc = nde_rhs_f(s->rhs, nde__clamp_t(tk[0], span), B, u, theta, G, cstore);
    if (rc != 0) return rc;
  }
  update(B, n, s->is_p, 1, sp->kick[0] * h, G, u);
  for (int i = 1; i <= m; i++) {
    const int sd = 2 * i - 1, sk = 2 * i;
    if (Ustore) memcpy(Ustore + (size_t)sd * bn, u, bn * sizeof *u);
    rc = nde_rhs_f(s->rhs, nde__clamp_t(td[i], span), B, u, theta, F,
                   cstore ? cstore + (size_t)sd * bc : NULL);
    if (rc != 0) return rc;
    update(B, n, s->is_p, 0, sp->drift[i] * h, F, u);
    if (Ustore) memcpy(Ustore + (size_t)sk * bn, u, bn * sizeof *u);
    rc = nde_rhs_f(s->rhs, nde__clamp_t(tk[i], span), B, u, theta, G,
                   cstore ? cstore + (size_t)sk * bc : NULL);
    if (rc != 0) return rc;
    update(B, n, s->is_p, 1, sp->kick[i] * h, G, u);
  }
  s->g_valid = 1;
  return 0;
}
