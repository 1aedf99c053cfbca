/* How sure is the fit: standard errors from the curvature and profile likelihoods.
 *
 * Covariance: the Gauss-Newton approximation of the fit's weighted least squares, the sandwich
 * H^+ (J^T W S W J) H^+ with H = J^T W J (Bates & Watts 1988, Nonlinear Regression Analysis,
 * ch. 2; Seber & Wild 1989, secs. 2.1.4 and 5.1; s^2 H^-1 when the noise follows the weights),
 * H^+ from an SVD of W^(1/2) J with unit columns so that a direction the data do not determine
 * shows as a small singular value (Raue et al. 2009, Bioinformatics 25:1923, for structural and
 * practical non-identifiability).  Natural units by the delta method.  Profiles: the other
 * coordinates re-optimised by Levenberg-Marquardt (Marquardt 1963) on a grid of one coordinate;
 * the interval is where the likelihood-ratio statistic stays below q^2 (Venzon & Moolgavkar
 * 1988; Raue et al. 2009). */
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unc_internal.h"

/* ---- quantiles ---- */

/* Acklam's rational approximation, refined by one Halley step on erfc (full double precision). */
double nde__norm_quantile(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                             -2.759285104469687e+02, 1.383577518672690e+02,
                             -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                             -1.556989798598866e+02, 6.680131188771972e+01,
                             -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                             -2.400758277161838e+00, -2.549732539343734e+00,
                             4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                             2.445134137142996e+00, 3.754408661907416e+00};
  if (!(p > 0 && p < 1)) return p == 0 ? -INFINITY : p == 1 ? INFINITY : NAN;
  double x;
  if (p < 0.02425) {
    const double q = sqrt(-2 * log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - 0.02425) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = sqrt(-2 * log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const double e = 0.5 * erfc(-x / sqrt(2.0)) - p;
  const double u = e * 2.5066282746310002 * exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

/* The continued fraction of the regularised incomplete beta function (modified Lentz). */
static double betacf(double a, double b, double x) {
  const double tiny = 1e-300;
  double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
  if (fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 10000; m++) {
    const int m2 = 2 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (fabs(del - 1) < 1e-16) break;
  }
  return h;
}

/* I_x(a, b). */
static double betai(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return exp(lbt) * betacf(a, b, x) / a;
  return 1 - exp(lbt) * betacf(b, a, 1 - x) / b;
}

/* P(T <= x) for Student's t with nu degrees of freedom. */
static double t_cdf(double x, double nu) {
  const double tail = 0.5 * betai(nu / 2, 0.5, nu / (nu + x * x));
  return x >= 0 ? 1 - tail : tail;
}

double nde__t_quantile(double p, double dof) {
  if (!(dof > 0) || !isfinite(dof) || dof > 1e7) return nde__norm_quantile(p);
  if (!(p > 0 && p < 1)) return nde__norm_quantile(p);
  if (p < 0.5) return -nde__t_quantile(1 - p, dof);
  double lo = 0, hi = fmax(2 * nde__norm_quantile(p), 1.0);
  while (t_cdf(hi, dof) < p && hi < 1e300) hi *= 2;
  for (int it = 0; it < 2000 && hi - lo > 1e-15 * hi; it++) {
    const double mid = 0.5 * (lo + hi);
    if (t_cdf(mid, dof) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/* ---- options and names ---- */

const char *nde_noise_model_str(nde_noise_model m) {
  switch (m) {
    case NDE_NOISE_PER_STATE: return "per-state";
    case NDE_NOISE_POOLED: return "pooled";
    case NDE_NOISE_KNOWN: return "known";
  }
  return "unknown";
}

nde_unc_opts nde_unc_opts_default(void) {
  nde_unc_opts o;
  memset(&o, 0, sizeof o);
  o.level = 0.95;
  o.noise = NDE_NOISE_PER_STATE;
  o.include_u0 = 1;
  o.ident_tol = 1e-8;
  o.fd_step = 1e-6;
  return o;
}

nde_profile_opts nde_profile_opts_default(void) {
  nde_profile_opts o;
  memset(&o, 0, sizeof o);
  o.points = 8;
  o.reach = 4;
  o.max_extend = 3;
  o.max_iter = 100;
  return o;
}

/* ---- the stored uncertainty ---- */

static void profiles_free(struct nde__unc *u) {
  for (int i = 0; i < u->n_prof; i++) {
    free(u->prof[i].name);
    free(u->prof[i].grid);
    free(u->prof[i].stat);
  }
  free(u->prof);
  free(u->prof_pub);
  u->prof = NULL;
  u->prof_pub = NULL;
  u->n_prof = 0;
}

void nde__unc_free(struct nde__unc *u) {
  if (!u) return;
  profiles_free(u);
  nde__coords_free(u->cols, u->pub.n);
  free(u->entry);
  free(u->cov);
  free(u->cov_nat);
  free(u->corr);
  free(u->null_dirs);
  free(u->sigma_state);
  for (int j = 0; u->sigma_names && j < u->n_sigma; j++) nde_free(u->sigma_names[j]);
  free(u->sigma_names);
  free(u->hdiag);
  nde_free(u->warning);
  free(u);
}

void nde__unc_publish(struct nde__unc *u) {
  u->pub.entry = u->entry;
  u->pub.cov = u->cov;
  u->pub.cov_natural = u->cov_nat;
  u->pub.corr = u->corr;
  u->pub.sigma_state = u->sigma_state;
  u->pub.n_sigma = u->n_sigma;
  u->pub.sigma_names = (const char *const *)u->sigma_names;
  u->pub.null_dirs = u->null_dirs;
  u->pub.warning = u->warning ? u->warning : "";
  for (int i = 0; i < u->pub.n; i++) {
    if (u->cols) u->entry[i].name = u->cols[i].name;
  }
  free(u->prof_pub);
  u->prof_pub = u->n_prof ? calloc((size_t)u->n_prof, sizeof *u->prof_pub) : NULL;
  for (int i = 0; u->prof_pub && i < u->n_prof; i++) {
    const nde__profile *p = &u->prof[i];
    u->prof_pub[i] = (nde_profile){p->name, p->coord, p->n, p->grid, p->stat, p->value,
                                   p->lower, p->upper, p->lower_found, p->upper_found,
                                   p->threshold};
  }
}

const nde_uncertainty *nde_result_get_uncertainty(const nde_result *r) {
  return r && r->unc ? &r->unc->pub : NULL;
}

int nde_uncertainty_find(const nde_uncertainty *u, const char *name) {
  for (int i = 0; u && name && i < u->n; i++)
    if (u->entry[i].name && !strcmp(u->entry[i].name, name)) return i;
  return -1;
}

int nde_result_n_profiles(const nde_result *r) { return r && r->unc ? r->unc->n_prof : 0; }

nde_status nde_result_get_profile(const nde_result *r, int i, nde_profile *out) {
  if (!r || !r->unc || !out || i < 0 || i >= r->unc->n_prof || !r->unc->prof_pub)
    return NDE_ERR_ARG;
  *out = r->unc->prof_pub[i];
  return NDE_OK;
}

/* Natural value of a coordinate's optimised value x, and dv/dx. */
static double natural(const nde__coord *c, double x, double *dvdx) {
  switch (c->transform) {
    case NDE_TRANSFORM_LOG: {
      const double v = exp(x);
      if (dvdx) *dvdx = v;
      return v;
    }
    case NDE_TRANSFORM_LOGIT: {
      const double s = 1 / (1 + exp(-x));
      if (dvdx) *dvdx = (c->hi - c->lo) * s * (1 - s);
      return c->lo + (c->hi - c->lo) * s;
    }
    default:
      if (dvdx) *dvdx = 1;
      return x;
  }
}

static double coord_x(const nde__coord *c, const double *theta, const double *u0s, int n) {
  return c->kind == NDE_UNC_INITIAL_STATE
             ? u0s[(size_t)c->series * (size_t)n + (size_t)c->component]
             : theta[c->theta];
}

static void coord_set(const nde__coord *c, double *theta, double *u0s, int n, double x) {
  if (c->kind == NDE_UNC_INITIAL_STATE) u0s[(size_t)c->series * (size_t)n + (size_t)c->component] = x;
  else theta[c->theta] = x;
}

/* "log(alpha)" for a log parameter, "logit(p)", else the name. */
static void coord_label(const nde__coord *c, nde_str *s) {
  if (c->transform == NDE_TRANSFORM_LOG) nde_str_addf(s, "log %s", c->name);
  else if (c->transform == NDE_TRANSFORM_LOGIT) nde_str_addf(s, "logit %s", c->name);
  else nde_str_adds(s, c->name);
}

/* The fitted point: the kept theta and the fitted initial states (S x n). */
static double *fitted_u0s(const nde_result *r) {
  const int n = nde_model_state_dim(r->model);
  double *u = nde__dalloc((size_t)r->n_series * (size_t)n);
  for (int k = 0; u && k < r->n_series; k++)
    memcpy(u + (size_t)k * (size_t)n, r->series[k].u0, (size_t)n * sizeof *u);
  return u;
}

static nde_status check_data(const nde_result *r, const nde_data *data, nde_error *err) {
  if (!data) return nde__fail(err, NDE_ERR_ARG, "the uncertainty of a fit needs its data");
  if (nde__data_hash(data) != r->data_hash)
    return nde__fail(err, NDE_ERR_DATA,
                     "%s: not the data of this fit (its series, times or values differ from what "
                     "the fit saw; expected the data file the fit was made with)",
                     nde_data_file(data) ? nde_data_file(data) : "data");
  return NDE_OK;
}

/* ---- the covariance ---- */

typedef struct unc_work {
  nde__coord *cols;
  int P;
  nde_problem *p;
  nde__jac *J;
  double *e, *Jm;
  size_t N;
} unc_work;

static void work_free(unc_work *W) {
  nde__jac_destroy(&W->J);
  nde_problem_destroy(&W->p);
  free(W->e);
  free(W->Jm);
}

/* The row scales of the fit's own objective, sqrt(w_state(row)). */
static void row_scales(const nde__jac *J, double *c) {
  const int *rs = nde__jac_row_state(J);
  const double *w = nde__jac_weights(J);
  for (size_t q = 0; q < nde__jac_n_rows(J); q++) c[q] = sqrt(w[rs[q]]);
}

/* What a data column is called in messages: "state 'x'" or "observable 's'". */
static const char *column_kind(const nde_result *r, int j) {
  return j < nde_model_state_dim(r->model) ? "state" : "observable";
}

/* The noise levels per data column (sigma, K values: the states, then the observable columns,
 * named by names) by the noise model; *s_out the pooled noise std at weight 1 (NaN otherwise).
 * A known level comes from --noise-std or the data's noise_std, per column in the model's order
 * (the data's K columns are a prefix of it). */
static nde_status noise_levels(const nde_result *r, const nde_unc_opts *o, const nde__jac *J,
                               const double *e, int P, const char *const *names, double *sigma,
                               double *s_out, nde_error *err) {
  const int K = nde__jac_n_columns(J);
  const size_t N = nde__jac_n_rows(J);
  const int *rs = nde__jac_row_state(J);
  const double *w = nde__jac_weights(J);
  const double dof = (double)N - (double)P;
  *s_out = NAN;
  if (o->noise == NDE_NOISE_KNOWN) {
    const double *sd = o->noise_std ? o->noise_std : r->noise_std;
    /* A column without residuals (a state never measured) has no level, as below. */
    for (int j = 0; j < K; j++) sigma[j] = NAN;
    for (size_t q = 0; q < N; q++) {
      const double s = sd ? sd[rs[q]] : NAN;
      if (!(s > 0) || !isfinite(s))
        return nde__fail(err, NDE_ERR_ARG,
                         "the noise of %s '%s' is not known (expected its noise std from "
                         "--noise-std or the data's noise_std, or an estimated noise model)",
                         column_kind(r, rs[q]), names[rs[q]]);
      sigma[rs[q]] = s;
    }
    return NDE_OK;
  }
  if (!(dof > 0))
    return nde__fail(err, NDE_ERR_ARG,
                     "%zu residuals cannot estimate the noise of %d coordinates (expected more "
                     "observed values than coordinates, or a known noise level)",
                     N, P);
  if (o->noise == NDE_NOISE_POOLED) {
    double ss = 0;
    for (size_t q = 0; q < N; q++) ss += w[rs[q]] * e[q] * e[q];
    const double s = sqrt(ss / dof);
    *s_out = s;
    /* A column without residuals (a state never measured) has no level. */
    for (int j = 0; j < K; j++) sigma[j] = NAN;
    for (size_t q = 0; q < N; q++) sigma[rs[q]] = s / sqrt(w[rs[q]]);
  } else {
    for (int j = 0; j < K; j++) {
      double ss = 0;
      size_t cnt = 0;
      for (size_t q = 0; q < N; q++)
        if (rs[q] == j) {
          ss += e[q] * e[q];
          cnt++;
        }
      sigma[j] = cnt ? sqrt(ss / ((double)cnt * (dof / (double)N))) : NAN;
    }
  }
  for (size_t q = 0; q < N; q++)
    if (!(sigma[rs[q]] > 0))
      return nde__fail(err, NDE_ERR_NUMERIC,
                       "the residuals of %s '%s' are all zero: its noise level cannot be "
                       "estimated (give it with a known noise level)",
                       column_kind(r, rs[q]), names[rs[q]]);
  return NDE_OK;
}

/* The message naming the coordinates along the non-identifiable directions. */
static char *ident_warning(const nde__coord *cols, int P, const double *dirs, int n_null,
                           const int *bad) {
  if (n_null == 0) return NULL;
  nde_str s = NDE_STR_INIT;
  int n_bad = 0;
  for (int j = 0; j < P; j++) n_bad += bad[j];
  nde_str_addf(&s, "not identifiable from these data: ");
  int first = 1;
  for (int j = 0; j < P; j++)
    if (bad[j]) {
      nde_str_addf(&s, "%s%s", first ? "" : ", ", cols[j].name);
      first = 0;
    }
  /* "Only combinations are determined" is true of a direction along several coordinates; one
   * along a single coordinate (a learned start of a state nothing reads) says that the
   * coordinate alone does not matter. */
  int multi = 0;
  for (int k = 0; k < n_null; k++) {
    const double *v = dirs + (size_t)k * (size_t)P;
    double vmax = 0;
    int listed = 0;
    for (int j = 0; j < P; j++) vmax = fmax(vmax, fabs(v[j]));
    for (int j = 0; j < P; j++) listed += fabs(v[j]) >= 0.01 * vmax;
    multi |= listed > 1;
  }
  nde_str_adds(&s, n_bad > 1 && multi ? " (only combinations of them are determined: the fit "
                                        "does not change along "
                                      : " (the fit does not change along ");
  for (int k = 0; k < n_null; k++) {
    const double *v = dirs + (size_t)k * (size_t)P;
    double vmax = 0;
    for (int j = 0; j < P; j++) vmax = fmax(vmax, fabs(v[j]));
    /* A direction's sign is arbitrary: its first listed coordinate is written positive. */
    double sign = 1;
    for (int j = 0; j < P; j++)
      if (fabs(v[j]) >= 0.01 * vmax) {
        sign = v[j] < 0 ? -1 : 1;
        break;
      }
    nde_str_adds(&s, k ? "; and along " : "");
    int any = 0;
    for (int j = 0; j < P; j++) {
      if (fabs(v[j]) < 0.01 * vmax) continue;
      const double c = sign * v[j] / vmax;
      nde_str_adds(&s, any ? (c < 0 ? " - " : " + ") : (c < 0 ? "-" : ""));
      if (fabs(fabs(c) - 1) >= 5e-4) nde_str_addf(&s, "%.3g ", fabs(c));
      coord_label(&cols[j], &s);
      any = 1;
    }
  }
  nde_str_adds(&s, multi ? "); their standard errors are infinite: fix one of them, or measure "
                           "what tells them apart"
                         : "); their standard errors are infinite: fix them, or measure what "
                           "determines them");
  return nde_str_take(&s);
}

/* C, entries and identifiability.  A (N x P, overwritten) is the Jacobian of the fit's own
 * objective (rows scaled by sqrt(w)), B (N x P) the Jacobian with rows scaled by w sigma: the
 * estimate minimises sum w e^2, so its covariance is the sandwich H^+ (B^T B) H^+ with
 * H = A^T A (Seber & Wild 1989, sec. 2.1.4); when sigma_i^2 = s^2 / w_i (the pooled model) it is
 * s^2 H^+, the textbook formula. */
static nde_status covariance(struct nde__unc *u, double *A, const double *B, size_t N,
                             nde_error *err) {
  const int P = u->pub.n;
  double *d = nde__dalloc((size_t)P), *sv = nde__dalloc((size_t)P), *vt = nde__dalloc((size_t)P * P);
  double *superb = nde__dalloc((size_t)P + 1), *dirs = nde__dalloc((size_t)P * P), du = 0;
  double *Hp = nde__dalloc((size_t)P * P), *G = nde__dalloc(N * (size_t)P);
  int *bad = calloc((size_t)P + 1, sizeof *bad);
  nde_status st = NDE_OK;
  if (!d || !sv || !vt || !superb || !dirs || !bad || !Hp || !G) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  /* Unit columns (a zero column, a coordinate the data do not see, stays zero). */
  for (int j = 0; j < P; j++) {
    double ss = 0;
    for (size_t q = 0; q < N; q++) ss += A[q * (size_t)P + (size_t)j] * A[q * (size_t)P + (size_t)j];
    d[j] = ss > 0 ? sqrt(ss) : 1.0;
    for (size_t q = 0; q < N; q++) A[q * (size_t)P + (size_t)j] /= d[j];
  }
  const int m = (int)N, kmin = m < P ? m : P;
  if (m > 0) {
    lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'A', m, P, A, P, sv, &du, 1, vt, P,
                                     superb);
    if (info != 0) {
      st = nde__fail(err, NDE_ERR_NUMERIC, "the SVD of the residual Jacobian failed (LAPACK "
                     "dgesvd info %d)", (int)info);
      goto done;
    }
  }
  const double smax = kmin > 0 ? sv[0] : 0;
  int n_null = 0;
  /* H^+ = sum over kept directions v v^T / s^2; the others are the null directions. */
  memset(Hp, 0, (size_t)P * P * sizeof *Hp);
  double smin_kept = INFINITY;
  for (int k = 0; k < P; k++) {
    const double *v = vt + (size_t)k * (size_t)P;
    const double s = k < kmin ? sv[k] : 0;
    if (!(s > u->opts.ident_tol * smax) || !(smax > 0)) {
      for (int j = 0; j < P; j++) {
        dirs[(size_t)n_null * (size_t)P + (size_t)j] = v[j] / d[j];
        if (fabs(v[j]) >= 0.01) bad[j] = 1;
      }
      n_null++;
      continue;
    }
    smin_kept = fmin(smin_kept, s);
    for (int i = 0; i < P; i++)
      for (int j = 0; j < P; j++)
        Hp[(size_t)i * P + (size_t)j] += v[i] * v[j] / (s * s) / (d[i] * d[j]);
  }
  /* C = (B H^+)^T (B H^+). */
  for (size_t q = 0; q < N; q++)
    for (int j = 0; j < P; j++) {
      double g = 0;
      for (int k = 0; k < P; k++) g += B[q * (size_t)P + (size_t)k] * Hp[(size_t)k * P + (size_t)j];
      G[q * (size_t)P + (size_t)j] = g;
    }
  for (int i = 0; i < P; i++)
    for (int j = 0; j <= i; j++) {
      double c = 0;
      for (size_t q = 0; q < N; q++) c += G[q * (size_t)P + (size_t)i] * G[q * (size_t)P + (size_t)j];
      u->cov[(size_t)i * P + (size_t)j] = u->cov[(size_t)j * P + (size_t)i] = c;
    }
  free(u->hdiag);
  u->hdiag = nde__dalloc((size_t)P);
  if (!u->hdiag) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  for (int j = 0; j < P; j++) u->hdiag[j] = Hp[(size_t)j * P + (size_t)j];
  u->pub.cond = n_null ? INFINITY : smax / smin_kept;
  u->pub.n_null = n_null;
  /* Null directions as unit vectors in the optimised coordinates. */
  for (int k = 0; k < n_null; k++) {
    double *v = dirs + (size_t)k * (size_t)P, nn = 0;
    for (int j = 0; j < P; j++) nn += v[j] * v[j];
    nn = sqrt(nn);
    int sgn = 0;
    for (int j = 0; j < P && !sgn; j++)
      if (fabs(v[j]) > 1e-12 * nn) sgn = v[j] > 0 ? 1 : -1;
    for (int j = 0; j < P; j++) v[j] = sgn < 0 ? -v[j] / nn : v[j] / nn;
  }
  free(u->null_dirs);
  u->null_dirs = n_null ? dirs : NULL;
  if (n_null) dirs = NULL;
  nde_free(u->warning);
  u->warning = ident_warning(u->cols, P, u->null_dirs, n_null, bad);
  /* Entries, natural covariance, correlations. */
  double *g = d; /* reuse: dv/dx */
  for (int j = 0; j < P; j++) {
    nde_unc_entry *en = &u->entry[j];
    const nde__coord *c = &u->cols[j];
    const double x = en->value; /* the optimised value, set by the caller */
    double dv;
    const double v = natural(c, x, &dv);
    g[j] = dv;
    const double so = bad[j] ? INFINITY : sqrt(fmax(u->cov[(size_t)j * P + (size_t)j], 0));
    const double q = u->pub.quantile;
    en->value = v;
    en->identifiable = !bad[j];
    en->se_opt = so;
    en->se = bad[j] ? INFINITY : fabs(dv) * so;
    en->lower_sym = v - q * en->se;
    en->upper_sym = v + q * en->se;
    if (bad[j]) {
      en->lower = c->transform == NDE_TRANSFORM_LOG ? 0 : c->transform == NDE_TRANSFORM_LOGIT ? c->lo : -INFINITY;
      en->upper = c->transform == NDE_TRANSFORM_LOGIT ? c->hi : INFINITY;
    } else {
      en->lower = natural(c, x - q * so, NULL);
      en->upper = natural(c, x + q * so, NULL);
    }
  }
  for (int i = 0; i < P; i++)
    for (int j = 0; j < P; j++) {
      const double cij = u->cov[(size_t)i * P + (size_t)j];
      u->cov_nat[(size_t)i * P + (size_t)j] = g[i] * cij * g[j];
      const double den = sqrt(u->cov[(size_t)i * P + (size_t)i] * u->cov[(size_t)j * P + (size_t)j]);
      u->corr[(size_t)i * P + (size_t)j] =
          bad[i] || bad[j] || !(den > 0) ? NAN : i == j ? 1.0 : cij / den;
    }
done:
  free(d);
  free(sv);
  free(vt);
  free(superb);
  free(dirs);
  free(bad);
  free(Hp);
  free(G);
  return st;
}

/* Build the machinery (problem, coordinates, Jacobian) for r against data. */
static nde_status work_make(nde_result *r, const nde_data *data, const nde_unc_opts *o,
                            unc_work *W, nde_error *err) {
  memset(W, 0, sizeof *W);
  nde_status st = check_data(r, data, err);
  if (st != NDE_OK) return st;
  if ((st = nde_problem_create(r->model, data, &r->settings, &W->p, err)) != NDE_OK) return st;
  if ((st = nde__coords_make(r, o->include_nets, o->include_u0, &W->cols, &W->P, err)) != NDE_OK)
    return st;
  if (W->P == 0)
    return nde__fail(err, NDE_ERR_ARG, "%s: nothing to estimate (no learnable parameters%s)",
                     nde_model_filename(r->model),
                     nde_model_n_nets(r->model) ? " besides network weights, which are left out "
                                                  "unless asked for"
                                                : "");
  if ((st = nde__jac_create(r, W->p, W->P, o->finite_differences ? NDE__JAC_FD : NDE__JAC_SENS,
                            o->fd_step, &W->J, err)) != NDE_OK)
    return st;
  W->N = nde__jac_n_rows(W->J);
  W->e = nde__dalloc(W->N);
  W->Jm = nde__dalloc(W->N * (size_t)W->P);
  if (!W->e || !W->Jm) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  return NDE_OK;
}

static nde_status compute(nde_result *r, const nde_data *data, const nde_unc_opts *opts,
                          struct nde__unc **out, nde_error *err) {
  *out = NULL;
  nde_unc_opts o = opts ? *opts : nde_unc_opts_default();
  if (!(o.level > 0 && o.level < 1) || !(o.ident_tol > 0 && o.ident_tol < 1) ||
      !(o.fd_step > 0 && o.fd_step < 1) || o.noise < NDE_NOISE_PER_STATE ||
      o.noise > NDE_NOISE_KNOWN)
    return nde__fail(err, NDE_ERR_ARG,
                     "invalid uncertainty options (expected a level and ident_tol in (0, 1), a "
                     "finite-difference step in (0, 1), a known noise model; got %g, %g, %g, %d)",
                     o.level, o.ident_tol, o.fd_step, (int)o.noise);
  const int n = nde_model_state_dim(r->model);
  unc_work W;
  struct nde__unc *u = NULL;
  double *u0s = NULL, *c = NULL, *B = NULL;
  nde_status st = work_make(r, data, &o, &W, err);
  if (st != NDE_OK) goto done;
  u0s = fitted_u0s(r);
  c = nde__dalloc(W.N);
  u = calloc(1, sizeof *u);
  if (!u0s || !c || !u) goto nomem;
  const int P = W.P;
  u->pub.n = P;
  u->cols = W.cols;
  W.cols = NULL;
  u->opts = o;
  u->opts.noise_std = NULL;
  u->entry = calloc((size_t)P, sizeof *u->entry);
  u->cov = nde__dalloc((size_t)P * P);
  u->cov_nat = nde__dalloc((size_t)P * P);
  u->corr = nde__dalloc((size_t)P * P);
  /* The data columns the residuals compare, by name. */
  const int K = nde__jac_n_columns(W.J);
  u->n_sigma = K;
  u->sigma_state = nde__dalloc((size_t)K);
  u->sigma_names = calloc((size_t)K, sizeof *u->sigma_names);
  if (!u->entry || !u->cov || !u->cov_nat || !u->corr || !u->sigma_state || !u->sigma_names)
    goto nomem;
  for (int j = 0; j < K; j++) {
    nde_str nm = NDE_STR_INIT;
    nde_str_adds(&nm, nde_data_state_name(data, (size_t)j));
    if (!(u->sigma_names[j] = nde_str_take(&nm))) goto nomem;
  }
  int ok;
  if ((st = nde__jac_eval(W.J, r->theta, u0s, P, u->cols, W.e, W.Jm, &ok, err)) != NDE_OK)
    goto done;
  if (!ok) {
    st = nde__fail(err, NDE_ERR_NUMERIC,
                   "the fitted model or its sensitivities cannot be integrated over the data "
                   "(a solve stopped or a value is not finite): no standard errors");
    goto done;
  }
  double s;
  if ((st = noise_levels(r, &o, W.J, W.e, P, (const char *const *)u->sigma_names,
                         u->sigma_state, &s, err)) != NDE_OK)
    goto done;
  row_scales(W.J, c);
  B = nde__dalloc(W.N * (size_t)P);
  if (!B) goto nomem;
  double rss = 0;
  const int *rs = nde__jac_row_state(W.J);
  for (size_t q = 0; q < W.N; q++) {
    const double sg = u->sigma_state[rs[q]], b = c[q] * c[q] * sg;
    rss += (W.e[q] / sg) * (W.e[q] / sg);
    for (int j = 0; j < P; j++) {
      B[q * (size_t)P + (size_t)j] = b * W.Jm[q * (size_t)P + (size_t)j];
      W.Jm[q * (size_t)P + (size_t)j] *= c[q];
    }
  }
  /* Initial states read off the data's first rows, not learned: the errors are conditional on
   * them. */
  if (!r->settings.objective.learn_u0)
    for (size_t k = 0; k < nde_data_n_traj(data) && !u->pub.u0_from_data; k++) {
      const nde_traj *tr = nde_data_traj(data, k);
      for (int j = 0; j < n && j < (int)nde_data_n_state(data); j++)
        if (!isnan(tr->y[j])) u->pub.u0_from_data = 1;
    }
  u->pub.level = o.level;
  u->pub.noise = o.noise;
  u->pub.sigma = s;
  u->pub.n_residuals = (long)W.N;
  u->pub.dof = (long)W.N - P;
  u->pub.rss = rss;
  u->pub.finite_differences = nde__jac_uses_fd(W.J);
  u->pub.quantile = o.noise == NDE_NOISE_KNOWN
                        ? nde__norm_quantile(0.5 + o.level / 2)
                        : nde__t_quantile(0.5 + o.level / 2, (double)u->pub.dof);
  for (int j = 0; j < P; j++) {
    u->entry[j].kind = u->cols[j].kind;
    u->entry[j].param = u->cols[j].param;
    u->entry[j].series = u->cols[j].series;
    u->entry[j].component = u->cols[j].component;
    u->entry[j].transform = u->cols[j].transform;
    u->entry[j].value = coord_x(&u->cols[j], r->theta, u0s, n);
  }
  if ((st = covariance(u, W.Jm, B, W.N, err)) != NDE_OK) goto done;
  nde__unc_publish(u);
  *out = u;
  u = NULL;
  goto done;
nomem:
  st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
done:
  nde__unc_free(u);
  nde__coords_free(W.cols, W.P);
  work_free(&W);
  free(u0s);
  free(c);
  free(B);
  return st;
}

nde_status nde_result_compute_uncertainty(nde_result *r, const nde_data *data,
                                          const nde_unc_opts *o, nde_error *err) {
  if (!r) return nde__fail(err, NDE_ERR_ARG, "no result");
  struct nde__unc *u = NULL;
  nde_status st = compute(r, data, o, &u, err);
  if (st != NDE_OK) return st;
  nde__unc_free(r->unc);
  r->unc = u;
  return NDE_OK;
}

/* ---- profiles ---- */

/* One thread's Levenberg-Marquardt over the coordinates other than `fixed` (-1: all). */
typedef struct lm {
  nde__jac *J;
  int P, nf;
  int *free_idx;
  nde__coord *fcols;
  double *e, *Jm, *c, *H, *A, *g, *delta, *theta, *u0s, *theta_t, *u0s_t, *e_t;
  size_t N, nth, nu;
} lm;

static void lm_free(lm *L) {
  nde__jac_destroy(&L->J);
  free(L->free_idx);
  free(L->fcols);
  free(L->e);
  free(L->Jm);
  free(L->c);
  free(L->H);
  free(L->A);
  free(L->g);
  free(L->delta);
  free(L->theta);
  free(L->u0s);
  free(L->theta_t);
  free(L->u0s_t);
  free(L->e_t);
  memset(L, 0, sizeof *L);
}

static nde_status lm_make(lm *L, nde_result *r, nde_problem *p, const struct nde__unc *u,
                          nde_error *err) {
  memset(L, 0, sizeof *L);
  const int P = u->pub.n, n = nde_model_state_dim(r->model);
  nde_status st = nde__jac_create(r, p, P, u->opts.finite_differences ? NDE__JAC_FD : NDE__JAC_SENS,
                                  u->opts.fd_step, &L->J, err);
  if (st != NDE_OK) return st;
  L->P = P;
  L->N = nde__jac_n_rows(L->J);
  const size_t nth = nde_problem_n_theta(p), nu = (size_t)r->n_series * (size_t)n;
  L->free_idx = calloc((size_t)P + 1, sizeof *L->free_idx);
  L->fcols = calloc((size_t)P + 1, sizeof *L->fcols);
  L->e = nde__dalloc(L->N);
  L->e_t = nde__dalloc(L->N);
  L->Jm = nde__dalloc(L->N * (size_t)P);
  L->c = nde__dalloc(L->N);
  L->H = nde__dalloc((size_t)P * P);
  L->A = nde__dalloc((size_t)P * P);
  L->nth = nth;
  L->nu = nu;
  L->g = nde__dalloc((size_t)P);
  L->delta = nde__dalloc((size_t)P);
  L->theta = nde__dalloc(nth);
  L->theta_t = nde__dalloc(nth);
  L->u0s = nde__dalloc(nu);
  L->u0s_t = nde__dalloc(nu);
  if (!L->free_idx || !L->fcols || !L->e || !L->e_t || !L->Jm || !L->c || !L->H || !L->A || !L->g ||
      !L->delta || !L->theta || !L->theta_t || !L->u0s || !L->u0s_t) {
    lm_free(L);
    return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  }
  row_scales(L->J, L->c);
  return NDE_OK;
}

static double wrss(const lm *L, const double *e) {
  double s = 0;
  for (size_t q = 0; q < L->N; q++) s += (L->c[q] * e[q]) * (L->c[q] * e[q]);
  return s;
}

/* Minimise the scaled RSS over the free coordinates from (L->theta, L->u0s), coordinate
 * `fixed` held (-1: none).  *rss receives the minimum (NaN when the start cannot be
 * integrated); the minimiser is left in (L->theta, L->u0s). */
static nde_status lm_run(lm *L, const struct nde__unc *u, int fixed, int max_iter, int n,
                         double *rss, nde_error *err) {
  L->nf = 0;
  for (int j = 0; j < L->P; j++)
    if (j != fixed) {
      L->free_idx[L->nf] = j;
      L->fcols[L->nf++] = u->cols[j];
    }
  const int nf = L->nf;
  int ok;
  nde_status st = nde__jac_eval(L->J, L->theta, L->u0s, nf, L->fcols, L->e, nf ? L->Jm : NULL,
                                &ok, err);
  if (st != NDE_OK) return st;
  if (!ok) {
    *rss = NAN;
    return NDE_OK;
  }
  double F = wrss(L, L->e), lambda = -1;
  for (int it = 0; it < max_iter && nf > 0; it++) {
    /* Normal equations of the scaled problem: H = Jc^T Jc, g = Jc^T (c e). */
    for (int a = 0; a < nf; a++) {
      double ga = 0;
      for (size_t q = 0; q < L->N; q++)
        ga += L->c[q] * L->c[q] * L->Jm[q * (size_t)nf + (size_t)a] * L->e[q];
      L->g[a] = ga;
      for (int b = 0; b <= a; b++) {
        double h = 0;
        for (size_t q = 0; q < L->N; q++)
          h += L->c[q] * L->c[q] * L->Jm[q * (size_t)nf + (size_t)a] *
               L->Jm[q * (size_t)nf + (size_t)b];
        L->H[(size_t)a * nf + (size_t)b] = L->H[(size_t)b * nf + (size_t)a] = h;
      }
    }
    if (lambda < 0) lambda = 1e-3; /* relative to diag(H): Marquardt's scaling */
    int accepted = 0, converged = 0;
    for (int tries = 0; tries < 40 && !accepted; tries++) {
      /* (H + lambda diag(H)) delta = -g (Marquardt's scaling) by Cholesky; a failed
       * factorisation raises lambda. */
      for (int a = 0; a < nf; a++) {
        for (int b = 0; b < nf; b++) L->A[(size_t)a * nf + (size_t)b] = L->H[(size_t)a * nf + (size_t)b];
        const double hd = L->H[(size_t)a * nf + (size_t)a];
        L->A[(size_t)a * nf + (size_t)a] += lambda * (hd > 0 ? hd : 1e-300);
        L->delta[a] = -L->g[a];
      }
      lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', nf, 1, L->A, nf, L->delta, 1);
      if (info != 0) {
        lambda *= 10;
        continue;
      }
      memcpy(L->theta_t, L->theta, L->nth * sizeof *L->theta);
      memcpy(L->u0s_t, L->u0s, L->nu * sizeof *L->u0s);
      double dmax = 0, xmax = 0;
      for (int a = 0; a < nf; a++) {
        const nde__coord *cc = &L->fcols[a];
        const double x = coord_x(cc, L->theta, L->u0s, n);
        coord_set(cc, L->theta_t, L->u0s_t, n, x + L->delta[a]);
        dmax = fmax(dmax, fabs(L->delta[a]));
        xmax = fmax(xmax, fabs(x));
      }
      if (dmax <= 1e-13 * (1 + xmax)) {
        converged = 1; /* the step vanished: at the minimum */
        break;
      }
      int ok_t;
      if ((st = nde__jac_eval(L->J, L->theta_t, L->u0s_t, nf, L->fcols, L->e_t, NULL, &ok_t,
                              err)) != NDE_OK)
        return st;
      const double Ft = ok_t ? wrss(L, L->e_t) : INFINITY;
      if (!(Ft < F)) {
        lambda *= 4;
        continue;
      }
      accepted = 1;
      const double gain = F - Ft;
      double *tmp = L->theta;
      L->theta = L->theta_t;
      L->theta_t = tmp;
      tmp = L->u0s;
      L->u0s = L->u0s_t;
      L->u0s_t = tmp;
      F = Ft;
      lambda = fmax(lambda / 3, 1e-12);
      if (gain <= 1e-14 * (1 + F) || dmax <= 1e-11 * (1 + xmax)) converged = 1;
    }
    if (!accepted || converged) break;
    if ((st = nde__jac_eval(L->J, L->theta, L->u0s, nf, L->fcols, L->e, L->Jm, &ok, err)) !=
        NDE_OK)
      return st;
    if (!ok) break;
  }
  *rss = F;
  return NDE_OK;
}

/* One grid point of one profile. */
typedef struct pjob {
  int prof;   /* index into the profiles being made */
  int side;   /* -1 below the estimate, +1 above */
  double x;   /* the profiled coordinate's optimised value */
  double stat;
} pjob;

/* The points of one side of one profile in one round, walked outward in order: each starts from
 * the optimum of the point before it (slot: the side's state, kept across rounds). */
typedef struct pwalk {
  int first, count, slot;
} pwalk;

typedef struct pctx {
  nde_result *r;
  const struct nde__unc *u;
  lm *L;
  const int *coord; /* per profile: its coordinate */
  const double *theta_hat, *u0_hat;
  double rss_hat;
  const double *scale; /* per profile: the factor that turns a rise of the fit's objective into
                        * the likelihood-ratio statistic */
  pjob *jobs;
  int max_iter, n;
  nde_status *st;   /* per worker */
  nde_error *errs;  /* per worker */
  int (*progress)(void *ctx, int done, int total);
  void *progress_ctx;
  int done_before, total;
  double thr;        /* the statistic's threshold */
  const pwalk *walks;
  double *wth, *wu0; /* per slot: the optimum of its last point (theta, u0s) */
  int per_walk;      /* points per walk (progress) */
} pctx;

/* Move a start (theta, u0s) of coordinate p by dx: along the linear prediction of the others
 * given p (the regression of the estimate's Gaussian approximation) when p is identifiable, or
 * along the direction in which the fit does not change when it is not. */
static void predict_start(const struct nde__unc *u, int p, int n, double dx, double *theta,
                          double *u0s) {
  const int P = u->pub.n;
  const double cpp = u->cov[(size_t)p * P + (size_t)p];
  int best = -1;
  double comp = 0;
  for (int k = 0; k < u->pub.n_null; k++) {
    const double v = u->null_dirs[(size_t)k * P + (size_t)p];
    if (fabs(v) > fabs(comp)) {
      comp = v;
      best = k;
    }
  }
  if (!u->entry[p].identifiable && best >= 0 && fabs(comp) > 1e-3)
    for (int k = 0; k < P; k++) {
      const nde__coord *ck = &u->cols[k];
      coord_set(ck, theta, u0s, n,
                coord_x(ck, theta, u0s, n) + u->null_dirs[(size_t)best * P + (size_t)k] / comp * dx);
    }
  else if (u->entry[p].identifiable && cpp > 0)
    for (int k = 0; k < P; k++)
      if (k != p && u->entry[k].identifiable) {
        const nde__coord *ck = &u->cols[k];
        coord_set(ck, theta, u0s, n,
                  coord_x(ck, theta, u0s, n) + u->cov[(size_t)k * P + (size_t)p] / cpp * dx);
      }
}

/* The others re-optimised with p held at x, from (th0, u00) moved by dx (predict_start; 0: as
 * they are): the result in L->theta, L->u0s and *rss. */
static nde_status point_from(pctx *C, lm *L, int worker, int p, double x, const double *th0,
                             const double *u00, double dx, double *rss) {
  memcpy(L->theta, th0, L->nth * sizeof *L->theta);
  memcpy(L->u0s, u00, L->nu * sizeof *L->u0s);
  if (dx != 0) predict_start(C->u, p, C->n, dx, L->theta, L->u0s);
  coord_set(&C->u->cols[p], L->theta, L->u0s, C->n, x);
  return lm_run(L, C->u, p, C->max_iter, C->n, rss, &C->errs[worker]);
}

/* One walk.  Each point starts from the previous point's optimum moved by the linear
 * prediction: far from the estimate the prediction from the estimate itself can start the
 * re-fit where it cannot find the profile's valley (a stiff Michaelis-Menten rate, flat at 1.53
 * from 10x the estimate on, got 7e4 and 3e5 at 1e4x and was reported bounded there).  A point
 * that comes out above the threshold is tried from the estimate's prediction too (the only start
 * before the walks), and from the estimate itself when that cannot be integrated; the lowest
 * wins and the walk goes on from it. */
static int pwalk_run(void *vctx, int worker, int w) {
  pctx *C = vctx;
  lm *L = &C->L[worker];
  const pwalk *W = &C->walks[w];
  const struct nde__unc *u = C->u;
  const int n = C->n;
  double *sth = C->wth + (size_t)W->slot * L->nth, *su0 = C->wu0 + (size_t)W->slot * L->nu;
  for (int q = 0; q < W->count; q++) {
    pjob *jb = &C->jobs[W->first + q];
    const int p = C->coord[jb->prof];
    const nde__coord *cp = &u->cols[p];
    const double xh = coord_x(cp, C->theta_hat, C->u0_hat, n), xs = coord_x(cp, sth, su0, n);
    const int at_hat = !memcmp(sth, C->theta_hat, L->nth * sizeof *sth) &&
                       !memcmp(su0, C->u0_hat, L->nu * sizeof *su0);
    double rss = NAN, r2;
    nde_status st = point_from(C, L, worker, p, jb->x, sth, su0, jb->x - xs, &rss);
    if (st != NDE_OK) goto fail;
    memcpy(sth, L->theta, L->nth * sizeof *sth);
    memcpy(su0, L->u0s, L->nu * sizeof *su0);
    if (!at_hat && !((rss - C->rss_hat) * C->scale[jb->prof] <= C->thr)) {
      if ((st = point_from(C, L, worker, p, jb->x, C->theta_hat, C->u0_hat, jb->x - xh, &r2)) !=
          NDE_OK)
        goto fail;
      if (r2 < rss || (!isfinite(rss) && isfinite(r2))) {
        rss = r2;
        memcpy(sth, L->theta, L->nth * sizeof *sth);
        memcpy(su0, L->u0s, L->nu * sizeof *su0);
      }
    }
    if (!isfinite(rss) && u->entry[p].identifiable) {
      /* The linear prediction can leave the model's domain far out: retry from the estimate. */
      if ((st = point_from(C, L, worker, p, jb->x, C->theta_hat, C->u0_hat, 0, &r2)) != NDE_OK)
        goto fail;
      if (isfinite(r2)) {
        rss = r2;
        memcpy(sth, L->theta, L->nth * sizeof *sth);
        memcpy(su0, L->u0s, L->nu * sizeof *su0);
      }
    }
    jb->stat = (rss - C->rss_hat) * C->scale[jb->prof];
    continue;
  fail:
    C->st[worker] = st;
    return 1;
  }
  return 0;
}

static int pjob_progress(void *vctx, int done, int total) {
  pctx *C = vctx;
  (void)total;
  return C->progress
             ? C->progress(C->progress_ctx, C->done_before + done * C->per_walk, C->total)
             : 0;
}

static int cmp_pjob(const void *a, const void *b) {
  const pjob *x = a, *y = b;
  if (x->prof != y->prof) return x->prof < y->prof ? -1 : 1;
  return x->x < y->x ? -1 : x->x > y->x ? 1 : 0;
}

/* The first-round reach of a coordinate: `reach` standard errors, or a default width when the
 * coordinate is not identifiable. */
static double first_reach(const nde_unc_entry *en, const nde__coord *c, double x, double reach) {
  if (en->identifiable && en->se_opt > 0 && isfinite(en->se_opt)) return reach * en->se_opt;
  if (c->transform == NDE_TRANSFORM_LOG) return 2.0;
  if (c->transform == NDE_TRANSFORM_LOGIT) return 4.0;
  return 0.5 * fmax(fabs(x), 1.0);
}

/* Where the statistic crosses thr on one side (side -1 or +1) of the estimate xh, in the
 * optimised coordinate, interpolating the signed root linearly between the first point above
 * thr and its inward neighbour; NaN when it never does.  (Between the neighbours: from the
 * highest point below instead, a profile that dips on its flat part put the crossing of a rate
 * whose statistic jumps from 0 to 1.8e4 between 8e19 and 2e21 at 5e6.) */
static double crossing(const pjob *pts, int np, double xh, int side, double thr) {
  double xp = xh, rp = 0;
  const double rt = sqrt(thr);
  for (int s = 0; s < np; s++) {
    const int i = side > 0 ? s : np - 1 - s;
    if ((pts[i].x - xh) * side <= 0 || isnan(pts[i].stat)) continue;
    const double rc = sqrt(fmax(pts[i].stat, 0));
    if (rc > rt) return xp + (rt - rp) / (rc - rp) * (pts[i].x - xp);
    xp = pts[i].x;
    rp = rc;
  }
  return NAN;
}

static double natural_limit(const nde__coord *c, int side) {
  if (c->transform == NDE_TRANSFORM_LOG) return side < 0 ? 0 : INFINITY;
  if (c->transform == NDE_TRANSFORM_LOGIT) return side < 0 ? c->lo : c->hi;
  return side < 0 ? -INFINITY : INFINITY;
}

nde_status nde_result_profile(nde_result *r, const nde_data *data, const char *names,
                              const nde_unc_opts *uo, const nde_profile_opts *po_in, int *stopped,
                              nde_error *err) {
  if (stopped) *stopped = 0;
  if (!r || !names) return nde__fail(err, NDE_ERR_ARG, "a profile needs a result and names");
  const nde_profile_opts po = po_in ? *po_in : nde_profile_opts_default();
  if (po.points < 1 || po.points > 10000 || !(po.reach > 0) || po.max_extend < 0 ||
      po.max_extend > 30 || po.max_iter < 1)
    return nde__fail(err, NDE_ERR_ARG,
                     "invalid profile options (expected 1 to 10000 points per side, a reach > 0, "
                     "0 to 30 extensions, max_iter >= 1; got %d, %g, %d, %d)",
                     po.points, po.reach, po.max_extend, po.max_iter);
  nde_status st = check_data(r, data, err);
  if (st != NDE_OK) return st;
  /* Standard errors computed here are attached only once the names are known to be good. */
  struct nde__unc *fresh = NULL;
  if (!r->unc || !r->unc->cols || !r->unc->hdiag || uo) {
    nde_unc_opts o = uo ? *uo : r->unc ? r->unc->opts : nde_unc_opts_default();
    if ((st = compute(r, data, &o, &fresh, err)) != NDE_OK) return st;
  }
  struct nde__unc *u = fresh ? fresh : r->unc;
  const int P = u->pub.n, n = nde_model_state_dim(r->model);
  /* The names. */
  int n_prof = 0, *coord = calloc(strlen(names) + 1, sizeof *coord);
  if (!coord) {
    nde__unc_free(fresh);
    return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  }
  for (const char *s = names; *s;) {
    size_t len = strcspn(s, ",");
    while (len && s[len - 1] == ' ') len--;
    int k = -1;
    for (int j = 0; j < P && k < 0; j++)
      if (strlen(u->cols[j].name) == len && !strncmp(u->cols[j].name, s, len)) k = j;
    if (k < 0) {
      nde_str lst = NDE_STR_INIT;
      for (int j = 0; j < P && j < 40; j++) nde_str_addf(&lst, "%s%s", j ? ", " : "", u->cols[j].name);
      st = nde__fail(err, NDE_ERR_ARG, "profile: '%.*s' is not a fitted coordinate (expected one "
                     "of %s)", (int)len, s, lst.data ? lst.data : "");
      nde_str_release(&lst);
      free(coord);
      nde__unc_free(fresh);
      return st;
    }
    coord[n_prof++] = k;
    s += strcspn(s, ",");
    while (*s == ',' || *s == ' ') s++;
  }
  if (n_prof == 0) {
    free(coord);
    nde__unc_free(fresh);
    return nde__fail(err, NDE_ERR_ARG, "profile: no names given (expected NAME[,NAME...])");
  }
  if (fresh) {
    nde__unc_free(r->unc);
    r->unc = fresh;
  }
  nde_problem *p = NULL;
  lm *L = NULL;
  nde_status *wst = NULL;
  nde_error *werr = NULL;
  pjob *jobs = NULL;
  pwalk *walks = NULL;
  double *wth = NULL, *wu0 = NULL;
  nde__profile *prof = NULL;
  double *u0h = fitted_u0s(r), *th = nde__dalloc(r->n_theta), *pscale = nde__dalloc((size_t)n_prof);
  int threads = 0;
  if (!u0h || !th || !pscale) goto nomem;
  memcpy(th, r->theta, r->n_theta * sizeof *th);
  if ((st = nde_problem_create(r->model, data, &r->settings, &p, err)) != NDE_OK) goto done;
  const int m = po.points;
  const int max_jobs_round = 2 * m * n_prof;
  threads = nde__par_threads(po.threads, 2 * n_prof); /* a walk per side and profile */
  L = calloc((size_t)threads, sizeof *L);
  wst = calloc((size_t)threads, sizeof *wst);
  werr = calloc((size_t)threads, sizeof *werr);
  prof = calloc((size_t)n_prof, sizeof *prof);
  const size_t cap = (size_t)max_jobs_round * (size_t)(po.max_extend + 1);
  jobs = calloc(cap, sizeof *jobs);
  if (!L || !wst || !werr || !prof || !jobs) goto nomem;
  for (int w = 0; w < threads; w++)
    if ((st = lm_make(&L[w], r, p, u, err)) != NDE_OK) goto done;
  /* The reference: the fit polished by Levenberg-Marquardt over every coordinate. */
  double rss_fit;
  memcpy(L[0].theta, th, L[0].nth * sizeof *th);
  memcpy(L[0].u0s, u0h, L[0].nu * sizeof *u0h);
  if ((st = lm_run(&L[0], u, -1, po.max_iter, n, &rss_fit, err)) != NDE_OK) goto done;
  if (!isfinite(rss_fit)) {
    st = nde__fail(err, NDE_ERR_NUMERIC, "the fitted model cannot be integrated over the data");
    goto done;
  }
  memcpy(th, L[0].theta, L[0].nth * sizeof *th);
  memcpy(u0h, L[0].u0s, L[0].nu * sizeof *u0h);
  const double thr = u->pub.quantile * u->pub.quantile;
  /* The fit minimised F = sum w e^2.  Its rise along a profile is turned into the likelihood-ratio
   * statistic by the factor that makes the two agree to second order at the estimate,
   * (H^+)_pp / C_pp: 1 / s^2 for the pooled model, the curvature-adjusted (robust) profile
   * otherwise.  A coordinate without a finite variance takes N / sum w sigma^2. */
  double wsum = 0;
  {
    const int *rs = nde__jac_row_state(L[0].J);
    for (size_t q = 0; q < L[0].N; q++)
      wsum += L[0].c[q] * L[0].c[q] * u->sigma_state[rs[q]] * u->sigma_state[rs[q]];
  }
  for (int i = 0; i < n_prof; i++) {
    const int c = coord[i];
    const double cpp = u->cov[(size_t)c * (size_t)u->pub.n + (size_t)c];
    pscale[i] = u->entry[c].identifiable && cpp > 0 && u->hdiag[c] > 0
                    ? u->hdiag[c] / cpp
                    : (double)L[0].N / wsum;
  }
  walks = calloc(2 * (size_t)n_prof, sizeof *walks);
  wth = nde__dalloc(2 * (size_t)n_prof * L[0].nth);
  wu0 = nde__dalloc(2 * (size_t)n_prof * (L[0].nu ? L[0].nu : 1));
  if (!walks || !wth || !wu0) goto nomem;
  for (int q = 0; q < 2 * n_prof; q++) {
    memcpy(wth + (size_t)q * L[0].nth, th, L[0].nth * sizeof *th);
    memcpy(wu0 + (size_t)q * L[0].nu, u0h, L[0].nu * sizeof *u0h);
  }
  pctx C = {r, u, L, coord, th, u0h, rss_fit, pscale, jobs, po.max_iter, n, wst, werr,
            po.progress, po.progress_ctx, 0, 0, thr, walks, wth, wu0, m};
  double reach[2 * 64], *rch = n_prof <= 64 ? reach : malloc(2 * (size_t)n_prof * sizeof *rch);
  int *open = calloc(2 * (size_t)n_prof, sizeof *open);
  if (!rch || !open) {
    if (rch != reach) free(rch);
    free(open);
    goto nomem;
  }
  for (int i = 0; i < n_prof; i++) {
    const int c = coord[i];
    const double xh = coord_x(&u->cols[c], th, u0h, n);
    rch[2 * i] = rch[2 * i + 1] = first_reach(&u->entry[c], &u->cols[c], xh, po.reach);
    open[2 * i] = open[2 * i + 1] = 1;
  }
  int n_jobs = 0;
  for (int round = 0; round <= po.max_extend; round++) {
    const int first = n_jobs;
    int n_walks = 0;
    for (int i = 0; i < n_prof; i++) {
      const double xh = coord_x(&u->cols[coord[i]], th, u0h, n);
      for (int sd = 0; sd < 2; sd++) {
        if (!open[2 * i + sd]) continue;
        const int side = sd ? 1 : -1;
        const double R = rch[2 * i + sd], from = round == 0 ? 0 : R / 2;
        walks[n_walks++] = (pwalk){n_jobs - first, m, 2 * i + sd};
        for (int k = 1; k <= m; k++) /* outward: the order of the walk */
          jobs[n_jobs++] = (pjob){i, side, xh + side * (from + (R - from) * k / m), NAN};
      }
    }
    if (n_jobs == first) break;
    C.done_before = first;
    C.total = n_jobs;
    const int rc = nde__par_run(n_walks, threads, pwalk_run, &C, pjob_progress, &C);
    /* Jobs of this round are jobs[first ..]: the walks index from the round's start. */
    if (rc == NDE__PAR_STOPPED) {
      if (stopped) *stopped = 1;
      if (rch != reach) free(rch);
      free(open);
      st = NDE_OK;
      goto done;
    }
    for (int w = 0; w < threads; w++)
      if (wst[w] != NDE_OK) {
        st = wst[w];
        if (err) *err = werr[w];
        break;
      }
    if (st != NDE_OK) {
      if (rch != reach) free(rch);
      free(open);
      goto done;
    }
    /* Sides whose statistic has not reached the threshold reach twice as far next round. */
    for (int i = 0; i < n_prof; i++)
      for (int sd = 0; sd < 2; sd++) {
        if (!open[2 * i + sd]) continue;
        int reached = 0;
        for (int j = 0; j < n_jobs; j++)
          if (jobs[j].prof == i && jobs[j].side == (sd ? 1 : -1) && jobs[j].stat > thr) reached = 1;
        if (reached) open[2 * i + sd] = 0;
        else rch[2 * i + sd] *= 2;
      }
    C.jobs = jobs + n_jobs; /* the next round's jobs start here */
  }
  if (rch != reach) free(rch);
  free(open);
  /* The profiles: grid (with the estimate itself) and interval. */
  qsort(jobs, (size_t)n_jobs, sizeof *jobs, cmp_pjob);
  for (int i = 0, j0 = 0; i < n_prof; i++) {
    int j1 = j0;
    while (j1 < n_jobs && jobs[j1].prof == i) j1++;
    const nde__coord *c = &u->cols[coord[i]];
    const double xh = coord_x(c, th, u0h, n);
    nde__profile *pr = &prof[i];
    pr->name = malloc(strlen(c->name) + 1);
    pr->n = j1 - j0 + 1;
    pr->grid = nde__dalloc((size_t)pr->n);
    pr->stat = nde__dalloc((size_t)pr->n);
    if (!pr->name || !pr->grid || !pr->stat) goto nomem;
    strcpy(pr->name, c->name);
    pr->coord = coord[i];
    pr->value = natural(c, xh, NULL);
    pr->threshold = thr;
    /* The points in increasing order with the estimate itself among them (g is increasing). */
    int q = 0, centre = 0;
    for (int j = j0; j < j1; j++) {
      if (!centre && jobs[j].x > xh) {
        pr->grid[q] = pr->value;
        pr->stat[q++] = 0;
        centre = 1;
      }
      pr->grid[q] = natural(c, jobs[j].x, NULL);
      pr->stat[q++] = jobs[j].stat;
    }
    if (!centre) {
      pr->grid[q] = pr->value;
      pr->stat[q++] = 0;
    }
    const double lo = crossing(jobs + j0, j1 - j0, xh, -1, thr);
    const double hi = crossing(jobs + j0, j1 - j0, xh, 1, thr);
    pr->lower = isnan(lo) ? natural_limit(c, -1) : natural(c, lo, NULL);
    pr->upper = isnan(hi) ? natural_limit(c, 1) : natural(c, hi, NULL);
    pr->lower_found = !isnan(lo);
    pr->upper_found = !isnan(hi);
    j0 = j1;
  }
  profiles_free(u);
  u->prof = prof;
  u->n_prof = n_prof;
  prof = NULL;
  nde__unc_publish(u);
  st = NDE_OK;
  goto done;
nomem:
  st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
done:
  for (int w = 0; L && w < threads; w++) lm_free(&L[w]);
  free(L);
  free(wst);
  free(werr);
  if (prof)
    for (int i = 0; i < n_prof; i++) {
      free(prof[i].name);
      free(prof[i].grid);
      free(prof[i].stat);
    }
  free(prof);
  free(jobs);
  free(walks);
  free(wth);
  free(wu0);
  free(coord);
  free(u0h);
  free(th);
  free(pscale);
  nde_problem_destroy(&p);
  return st;
}
