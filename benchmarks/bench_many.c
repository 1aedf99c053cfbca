/* Many series (issue 13, benchmarks 1 and 2): one full gradient of the fit objective over 256
 * trajectories x 101 observation times on one grid, du/dt = MLP(u) with MLP = 2 -> 64 tanh -> 64
 * tanh -> 2, RK4 with one step per interval, mean squared error, against
 *   (a) the B = 1 path of nde before batching: one solve and discrete adjoint per series at
 *       B = 1, the gradients summed (what the fit objective did for every piece);
 *   (b) the same batch through the library's batched gradient, no fit machinery: one
 *       nde_grad_eval on all 256 rows;
 * and the fit objective on 2 threads against 1 (its groups on a pool; OpenBLAS on one thread).
 * The gradients of the fit objective, (a) and (b) must agree to 1e-10 relative (else exit 1).
 * Times are the best of interleaved repetitions (wall clock: other work on the machine only adds
 * time, and the thread speed-up needs both cores free at once); CPU times (medians) in the notes.
 * Output: rows "row|benchmark|case|time|rate|reference|ratio|target|result" and notes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmodels.h"
#include "nde/grad.h"
#include "nde/train.h"

#define S 256
#define K 101
#define D 2
#define H 64
#define MAX_REPS 200

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double loadavg(void) {
  double l = NAN;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = NAN;
    fclose(f);
  }
  return l;
}

static double best(const double *x, int n) {
  double b = INFINITY;
  for (int i = 0; i < n; i++) b = fmin(b, x[i]);
  return b;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *x, int n) {
  qsort(x, (size_t)n, sizeof *x, cmp_double);
  return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* L = s * sum (Y - O)^2 over every entry (rows are series), s = 1 / (S K D): the fit
 * objective's mean squared error. */
typedef struct sse {
  const double *obs; /* K x B x D */
  double s;
} sse;

static int sse_eval(void *ctx, int n_obs, int B, int n, const double *Y, double *L, double *dLdY) {
  const sse *c = ctx;
  double acc = 0;
  for (size_t q = 0; q < (size_t)n_obs * B * n; q++) {
    const double r = Y[q] - c->obs[q];
    acc += r * r;
    if (dLdY) dLdY[q] = c->s * 2.0 * r;
  }
  *L = c->s * acc;
  return 0;
}

typedef struct world {
  nde_cmodel m1, mb; /* B = 1 and batched models */
  double *theta, *U0, *t, *obs_series, *obs_batch, *g;
  nde_fit_series series[S];
  nde_solver *s1, *sb;
  nde_grad *g1, *gb;
} world;

/* (a): the series one by one at B = 1, gradients summed. */
static double grad_b1(world *w, double *gsum, double *L) {
  double *gs = w->g;
  memset(gsum, 0, w->m1.n_theta * sizeof *gsum);
  *L = 0;
  for (int s = 0; s < S; s++) {
    sse c = {w->obs_series + (size_t)s * K * D, 1.0 / ((double)S * K * D)};
    double Ls;
    if (nde_grad_eval(w->g1, w->theta, 1, w->U0 + (size_t)s * D, K, w->t, sse_eval, &c, &Ls, gs,
                      NULL, NULL, NULL) != NDE_OK)
      return -1;
    *L += Ls;
    for (size_t i = 0; i < w->m1.n_theta; i++) gsum[i] += gs[i];
  }
  return 0;
}

/* (b): one batched gradient. */
static int grad_batch(world *w, double *g, double *L) {
  sse c = {w->obs_batch, 1.0 / ((double)S * K * D)};
  return nde_grad_eval(w->gb, w->theta, S, w->U0, K, w->t, sse_eval, &c, L, g, NULL, NULL, NULL) !=
         NDE_OK;
}

static double rel(size_t n, const double *a, const double *b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num = fmax(num, fabs(a[i] - b[i]));
    den = fmax(den, fabs(b[i]));
  }
  return num / den;
}

static void fmt_time(double t, char *buf, size_t len) {
  if (t >= 0.1)
    snprintf(buf, len, "%.3f s", t);
  else
    snprintf(buf, len, "%.2f ms", 1e3 * t);
}

int main(void) {
  world w;
  memset(&w, 0, sizeof w);
  if (nde_cmodel_mlp(D, H, 1, &w.m1) != NDE_OK || nde_cmodel_mlp(D, H, S, &w.mb) != NDE_OK) {
    fprintf(stderr, "bench_many: cannot create the models\n");
    return 1;
  }
  const size_t P = w.mb.n_theta;
  nde_rng rng;
  nde_rng_seed(&rng, 1313);
  w.theta = malloc(P * sizeof *w.theta);
  w.g = malloc(P * sizeof *w.g);
  w.U0 = malloc((size_t)S * D * sizeof *w.U0);
  w.t = malloc(K * sizeof *w.t);
  w.obs_series = malloc((size_t)S * K * D * sizeof *w.obs_series);
  w.obs_batch = malloc((size_t)S * K * D * sizeof *w.obs_batch);
  nde_net_init(w.mb.net, NDE_INIT_GLOROT_UNIFORM, 0.0, &rng, w.theta);
  for (int i = 0; i < S * D; i++) w.U0[i] = 2.0 * nde_rng_uniform(&rng) - 1.0;
  for (int k = 0; k < K; k++) w.t[k] = (double)k / (K - 1);
  for (int s = 0; s < S; s++)
    for (int k = 0; k < K; k++)
      for (int i = 0; i < D; i++) {
        const double o = k == 0 ? w.U0[s * D + i] : 0.7 * sin(1.3 * k * 0.01 + s + 2.1 * i);
        w.obs_series[((size_t)s * K + k) * D + i] = o;
        w.obs_batch[((size_t)k * S + s) * D + i] = o;
      }
  for (int s = 0; s < S; s++)
    w.series[s] = (nde_fit_series){K, w.t, w.obs_series + (size_t)s * K * D, w.U0 + (size_t)s * D,
                                   0, 0};
  nde_solver_opts so = nde_solver_opts_default();
  so.method = "rk4";
  so.steps_per_interval = 1;
  if (nde_solver_create(w.m1.rhs, &so, 1, &w.s1, NULL) != NDE_OK ||
      nde_grad_create(w.s1, NULL, &w.g1, NULL) != NDE_OK ||
      nde_solver_create(w.mb.rhs, &so, S, &w.sb, NULL) != NDE_OK ||
      nde_grad_create(w.sb, NULL, &w.gb, NULL) != NDE_OK) {
    fprintf(stderr, "bench_many: solver setup failed\n");
    return 1;
  }
  /* The fit objective (default batches) on 1 and 2 threads, and with every piece alone. */
  nde_fit_opts fo = nde_fit_opts_default();
  nde_fit *f1 = NULL, *f2 = NULL, *fa = NULL;
  nde_pool *pool = NULL;
  if (nde_fit_create(w.mb.rhs, &so, NULL, S, w.series, &fo, &f1, NULL) != NDE_OK ||
      nde_fit_create(w.mb.rhs, &so, NULL, S, w.series, &fo, &f2, NULL) != NDE_OK ||
      nde_pool_create(2, &pool, NULL) != NDE_OK || nde_fit_set_parallel(f2, pool, NULL) != NDE_OK) {
    fprintf(stderr, "bench_many: fit setup failed\n");
    return 1;
  }
  nde_fit_opts fo1 = fo;
  fo1.batch_rows = 1;
  if (nde_fit_create(w.mb.rhs, &so, NULL, S, w.series, &fo1, &fa, NULL) != NDE_OK) return 1;

  /* Agreement (and warm-up: the stores are sized on first use). */
  double *ga = malloc(P * sizeof *ga), *gb = malloc(P * sizeof *gb), *gf = malloc(P * sizeof *gf);
  double *gf2 = malloc(P * sizeof *gf2), La, Lb, Lf, Lf2;
  nde_fit_info info;
  if (grad_b1(&w, ga, &La) || grad_batch(&w, gb, &Lb) ||
      nde_fit_eval(f1, w.theta, 0, NULL, &Lf, gf, &info) != NDE_OK ||
      nde_fit_eval(f2, w.theta, 0, NULL, &Lf2, gf2, NULL) != NDE_OK) {
    fprintf(stderr, "bench_many: a gradient failed\n");
    return 1;
  }
  const double e_a = rel(P, gf, ga), e_b = rel(P, gf, gb);
  printf("many: gradient of the fit objective vs (a) %.2e, vs (b) %.2e relative (max-norm); loss "
         "%.10g / %.10g / %.10g; 2 threads: %s; %ld batches of %d rows\n",
         e_a, e_b, Lf, La, Lb,
         memcmp(gf, gf2, P * sizeof *gf) == 0 && Lf == Lf2 ? "bit-identical" : "DIFFERENT",
         info.n_solves, S / (int)info.n_solves);
  if (!(e_a <= 1e-10 && e_b <= 1e-10) || memcmp(gf, gf2, P * sizeof *gf) != 0) {
    fprintf(stderr, "bench_many: the gradients disagree\n");
    return 1;
  }

  static double ta[MAX_REPS], tb[MAX_REPS], tf[MAX_REPS], tf2[MAX_REPS], tfa[MAX_REPS];
  static double ca[MAX_REPS], cb[MAX_REPS], cf[MAX_REPS], cf2[MAX_REPS];
  int n = 0;
  const double t_start = now();
  while (n < MAX_REPS && (n < 7 || now() - t_start < 20.0)) {
    double t0 = now(), c0 = cpu_now();
    grad_b1(&w, ga, &La);
    ta[n] = now() - t0, ca[n] = cpu_now() - c0;
    t0 = now(), c0 = cpu_now();
    grad_batch(&w, gb, &Lb);
    tb[n] = now() - t0, cb[n] = cpu_now() - c0;
    t0 = now(), c0 = cpu_now();
    nde_fit_eval(f1, w.theta, 0, NULL, &Lf, gf, NULL);
    tf[n] = now() - t0, cf[n] = cpu_now() - c0;
    t0 = now(), c0 = cpu_now();
    nde_fit_eval(f2, w.theta, 0, NULL, &Lf2, gf2, NULL);
    tf2[n] = now() - t0, cf2[n] = cpu_now() - c0;
    t0 = now();
    nde_fit_eval(fa, w.theta, 0, NULL, &Lf2, gf2, NULL);
    tfa[n] = now() - t0;
    n++;
  }
  const double Ta = best(ta, n), Tb = best(tb, n), Tf = best(tf, n), Tf2 = best(tf2, n);
  const double Tfa = best(tfa, n);
  char s1[32], s2[32], s3[32], ref[64], rate[48];
  const char *cs = "256 x 101, 2-64-64-2 tanh, RK4";
  fmt_time(Tf, s1, sizeof s1);
  fmt_time(Ta, s2, sizeof s2);
  snprintf(ref, sizeof ref, "B = 1 path %s", s2);
  snprintf(rate, sizeof rate, "%.2fx faster", Ta / Tf);
  printf("row|many series|%s: fit objective vs B = 1|%s|%s|%s|%.2f|>= 3|%s\n", cs, s1, rate, ref,
         Ta / Tf, Ta / Tf >= 3 ? "met" : "MISSED");
  fmt_time(Tb, s3, sizeof s3);
  snprintf(ref, sizeof ref, "batched nde_grad_eval %s", s3);
  printf("row|many series|%s: fit objective vs batched gradient|%s|-|%s|%.2f|<= 1.2|%s\n", cs, s1,
         ref, Tf / Tb, Tf / Tb <= 1.2 ? "met" : "MISSED");
  fmt_time(Tf2, s2, sizeof s2);
  snprintf(ref, sizeof ref, "1 thread %s", s1);
  snprintf(rate, sizeof rate, "%.2fx faster", Tf / Tf2);
  printf("row|threads|%s: fit objective, 2 threads|%s|%s|%s|%.2f|>= 1.8|%s\n", cs, s2, rate, ref,
         Tf / Tf2, Tf / Tf2 >= 1.8 ? "met" : "MISSED");
  printf("many: %d interleaved repetitions; CPU time (a) %.2f ms, (b) %.2f ms, fit %.2f ms "
         "(ratios %.2f and %.2f), on 2 threads %.2f ms over both (work added by the threads: "
         "%.1f%%); the fit objective with every piece alone (batch_rows = 1) %.2f ms wall; %d "
         "cores available, load average %.2f\n",
         n, 1e3 * median(ca, n), 1e3 * median(cb, n), 1e3 * median(cf, n),
         median(ca, n) / median(cf, n), median(cf, n) / median(cb, n), 1e3 * median(cf2, n),
         100 * (median(cf2, n) / median(cf, n) - 1), 1e3 * Tfa, nde_cpu_count(), loadavg());
  /* Adaptive steps: dopri5 (rtol 1e-6) shares one step sequence over a batch and controls its
   * error in the RMS over the batch (nde/solve.h); against every series alone. */
  {
    nde_solver_opts ao = nde_solver_opts_default();
    ao.method = "dopri5";
    nde_fit *db = NULL, *d1 = NULL;
    nde_fit_opts fob = fo;
    if (nde_fit_create(w.mb.rhs, &ao, NULL, S, w.series, &fob, &db, NULL) != NDE_OK) return 1;
    fob.batch_rows = 1;
    if (nde_fit_create(w.mb.rhs, &ao, NULL, S, w.series, &fob, &d1, NULL) != NDE_OK) return 1;
    double Ldb, Ld1, tdb[5], td1[5];
    for (int r = 0; r < 5; r++) {
      double c0 = cpu_now();
      nde_fit_eval(db, w.theta, 0, NULL, &Ldb, gf, NULL);
      tdb[r] = cpu_now() - c0;
      c0 = cpu_now();
      nde_fit_eval(d1, w.theta, 0, NULL, &Ld1, ga, NULL);
      td1[r] = cpu_now() - c0;
    }
    printf("many: dopri5 (rtol 1e-6), batches of 32 against every series alone: %.2f ms against "
           "%.2f ms CPU (%.2fx), loss relative difference %.1e, gradient %.1e\n",
           1e3 * median(tdb, 5), 1e3 * median(td1, 5), median(td1, 5) / median(tdb, 5),
           fabs(Ldb - Ld1) / Ld1, rel(P, gf, ga));
    nde_fit_destroy(&db);
    nde_fit_destroy(&d1);
  }
  nde_fit_destroy(&f1);
  nde_fit_destroy(&f2);
  nde_fit_destroy(&fa);
  nde_pool_destroy(&pool);
  nde_grad_destroy(&w.g1);
  nde_grad_destroy(&w.gb);
  nde_solver_destroy(&w.s1);
  nde_solver_destroy(&w.sb);
  nde_cmodel_destroy(&w.m1);
  nde_cmodel_destroy(&w.mb);
  free(ga), free(gb), free(gf), free(gf2);
  free(w.theta), free(w.g), free(w.U0), free(w.t), free(w.obs_series), free(w.obs_batch);
  return 0;
}
