/* Scaling benchmark (issue 2): one discrete-adjoint gradient of a pure neural ODE du/dt = MLP(u),
 * MLP = D -> H tanh -> H tanh -> D, on B trajectories; RK4 with 100 equal steps on [0, 1]; MSE
 * (mean) against observations at the 11 times 0, 0.1, ..., 1 (10 steps per interval).
 *
 * Flops per gradient are counted as 3 x the forward GEMM flops (forward + VJP), i.e.
 * 3 * 2 B (D H + H H + H D) per RHS evaluation, 4 evaluations per step, 100 steps.  The reference
 * is cblas_dgemm on the network's dominant product (B x H) . (H x H)^T, timed in the same run.
 *
 * Output: table rows "row|benchmark|case|time|rate|reference|ratio|target|result" and notes
 * (any other line), read by benchmarks/run.sh. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmodels.h"
#include "nde/grad.h"
#include "nde/solve.h"

#define N_STEPS 100
#define N_OBS 11
#define TARGET_RATIO 0.70

typedef struct scase {
  int D, H, B;
} scase;

static const scase cases[] = {{2, 32, 1}, {2, 32, 64}, {8, 128, 64}, {32, 512, 128}};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of this thread: with one OpenBLAS thread all the work runs here, so this is immune to
 * other processes taking turns on the cores (a note next to the wall-clock table). */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *x, int n) {
  qsort(x, (size_t)n, sizeof *x, cmp_double);
  return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* Repetition policy: at least min_reps samples and min_time seconds, at most MAX_REPS. */
#define MAX_REPS 2000
typedef struct timer {
  double samples[MAX_REPS]; /* the gradient */
  double mm[MAX_REPS];      /* the reference product, per call */
  double seq[MAX_REPS];     /* the replay of the gradient's GEMM calls */
  double cpu[MAX_REPS];     /* CPU time of the gradient */
  double cpu_mm[MAX_REPS];  /* CPU time of the reference product, per call */
  int n;
  double t_start;
} timer;

static int timer_more(const timer *tm, int min_reps, double min_time) {
  if (tm->n >= MAX_REPS) return 0;
  return tm->n < min_reps || now() - tm->t_start < min_time;
}

/* Operands for the reference products, filled once per case. */
typedef struct refbuf {
  int D, H, B;
  double *X, *W, *Y; /* each B x H + H x H doubles */
} refbuf;

static int refbuf_init(refbuf *r, int D, int H, int B, nde_rng *rng) {
  const size_t big = (size_t)B * H + (size_t)H * H;
  r->D = D, r->H = H, r->B = B;
  r->X = malloc(big * sizeof *r->X);
  r->W = malloc(big * sizeof *r->W);
  r->Y = calloc(big, sizeof *r->Y);
  if (!r->X || !r->W || !r->Y) return -1;
  for (size_t i = 0; i < big; i++) r->X[i] = 2.0 * nde_rng_uniform(rng) - 1.0;
  for (size_t i = 0; i < big; i++) r->W[i] = 2.0 * nde_rng_uniform(rng) - 1.0;
  return 0;
}

static void refbuf_free(refbuf *r) {
  free(r->X), free(r->W), free(r->Y);
  memset(r, 0, sizeof *r);
}

/* Calls of the reference product per timing sample: about 2 ms at 10 GFLOP/s. */
static int dgemm_batch(const refbuf *r) {
  return (int)fmax(1.0, 2e7 / (2.0 * r->B * r->H * (double)r->H));
}

/* Seconds per call of the dominant layer product, Y = X W^T with X B x H and W H x H (the
 * forward pass of the H -> H layer), over a batch of calls. */
static double time_dgemm(const refbuf *r) {
  const int B = r->B, H = r->H, n = dgemm_batch(r);
  double t0 = now();
  for (int i = 0; i < n; i++)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, H, H, 1.0, r->X, H, r->W, H, 0.0, r->Y,
                H);
  return (now() - t0) / n;
}

/* The GEMM calls one gradient makes, replayed alone on the same shapes (row-major, as in the nn
 * layer): per stage the forward X W^T of each layer; per VJP gW += dZ^T X and gX = dZ W of each
 * layer.  This is the time of the gradient if everything but dgemm were free. */
static double time_gemm_sequence(const refbuf *r) {
  const int w[4] = {r->D, r->H, r->H, r->D}, B = r->B;
  double t0 = now();
  for (int st = 0; st < 4 * N_STEPS; st++) {
    for (int l = 0; l < 3; l++)
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, w[l + 1], w[l], 1.0, r->X, w[l],
                  r->W, w[l], 1.0, r->Y, w[l + 1]);
  }
  for (int st = 0; st < 4 * N_STEPS; st++) {
    for (int l = 2; l >= 0; l--) {
      cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w[l + 1], w[l], B, 1.0, r->X,
                  w[l + 1], r->W, w[l], 1.0, r->Y, w[l]);
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, w[l], w[l + 1], 1.0, r->X,
                  w[l + 1], r->W, w[l], 0.0, r->Y, w[l]);
    }
  }
  return now() - t0;
}

static void row(const char *cs, double t, double gf, double ref_gf, int B, int H, int target) {
  char tbuf[32], mbuf[32], rbuf[64], ratio[16], tgt[16];
  if (t >= 0.1)
    snprintf(tbuf, sizeof tbuf, "%.3f s", t);
  else
    snprintf(tbuf, sizeof tbuf, "%.3f ms", 1e3 * t);
  snprintf(mbuf, sizeof mbuf, "%.2f GFLOP/s", gf);
  snprintf(rbuf, sizeof rbuf, "dgemm %dx%dx%d %.2f GFLOP/s", B, H, H, ref_gf);
  snprintf(ratio, sizeof ratio, "%.2f", gf / ref_gf);
  snprintf(tgt, sizeof tgt, ">= %.2f", TARGET_RATIO);
  printf("row|scaling|%s|%s|%s|%s|%s|%s|%s\n", cs, tbuf, mbuf, rbuf, ratio, target ? tgt : "-",
         target ? (gf / ref_gf >= TARGET_RATIO ? "met" : "MISSED") : "-");
}

/* Run one case; returns 0 on success. */
static int run_case(const scase *c, int is_target) {
  const int D = c->D, H = c->H, B = c->B;
  nde_cmodel m;
  nde_solver *solver = NULL;
  nde_grad *grad = NULL;
  double *theta = NULL, *g = NULL, *U0 = NULL, *obs = NULL;
  timer *tm = NULL;
  refbuf ref = {0, 0, 0, NULL, NULL, NULL};
  int rc = 1;
  nde_rng rng;
  nde_rng_seed(&rng, 20240 + (uint64_t)(D * 1000 + H * 10 + B));

  if (nde_cmodel_mlp(D, H, B, &m) != NDE_OK) {
    fprintf(stderr, "bench_scaling: cannot create the %d-%d-%d-%d model\n", D, H, H, D);
    return 1;
  }
  nde_solver_opts so = nde_solver_opts_default();
  so.method = "rk4";
  so.steps_per_interval = N_STEPS / (N_OBS - 1);
  nde_status st = nde_solver_create(m.rhs, &so, B, &solver, NULL);
  if (st == NDE_OK) st = nde_grad_create(solver, NULL, &grad, NULL);
  if (st != NDE_OK) {
    fprintf(stderr, "bench_scaling: setup failed: %s\n", nde_status_str(st));
    goto done;
  }
  theta = malloc(m.n_theta * sizeof *theta);
  g = malloc(m.n_theta * sizeof *g);
  U0 = malloc((size_t)B * D * sizeof *U0);
  obs = malloc((size_t)N_OBS * B * D * sizeof *obs);
  tm = calloc(1, sizeof *tm);
  if (!theta || !g || !U0 || !obs || !tm || refbuf_init(&ref, D, H, B, &rng)) goto done;
  nde_net_init(m.net, NDE_INIT_GLOROT_UNIFORM, 0.0, &rng, theta);
  for (int i = 0; i < B * D; i++) U0[i] = 2.0 * nde_rng_uniform(&rng) - 1.0;
  for (int i = 0; i < N_OBS * B * D; i++) obs[i] = nde_rng_normal(&rng);
  double t_obs[N_OBS];
  for (int k = 0; k < N_OBS; k++) t_obs[k] = (double)k / (N_OBS - 1);
  nde_obs_loss loss = {obs, NULL, 1, 0};

  double L = NAN;
  nde_grad_stats gs;
  /* Warm-up: the first call sizes the trajectory store and touches its pages. */
  for (int w = 0; w < 2; w++) {
    st = nde_grad_eval(grad, theta, B, U0, N_OBS, t_obs, nde_obs_loss_eval, &loss, &L, g, NULL,
                       NULL, &gs);
    if (st != NDE_OK || gs.forward.reason != NDE_REASON_NONE || !isfinite(L)) {
      fprintf(stderr, "bench_scaling: gradient failed: %s (%s)\n", nde_status_str(st),
              nde_grad_errmsg(grad));
      goto done;
    }
  }
  if (gs.forward.n_steps != N_STEPS) {
    fprintf(stderr, "bench_scaling: expected %d steps, the solver took %ld\n", N_STEPS,
            gs.forward.n_steps);
    goto done;
  }
  /* Gradient, reference product and GEMM replay interleaved in every repetition, so that all
   * three see the same machine state (the ratios are what the benchmark reports). */
  for (int w = 0; w < 3; w++) time_dgemm(&ref);
  time_gemm_sequence(&ref);
  tm->t_start = now();
  while (timer_more(tm, 7, 1.0)) {
    double c0 = cpu_now(), t0 = now();
    nde_grad_eval(grad, theta, B, U0, N_OBS, t_obs, nde_obs_loss_eval, &loss, &L, g, NULL, NULL,
                  NULL);
    tm->samples[tm->n] = now() - t0;
    double c1 = cpu_now();
    tm->cpu[tm->n] = c1 - c0;
    tm->mm[tm->n] = time_dgemm(&ref);
    tm->cpu_mm[tm->n] = (cpu_now() - c1) / dgemm_batch(&ref);
    tm->seq[tm->n] = time_gemm_sequence(&ref);
    tm->n++;
  }
  const int reps = tm->n;
  const double t_grad = median(tm->samples, reps);
  const double flops = 3.0 * 2.0 * B * ((double)D * H + (double)H * H + (double)H * D) * 4.0 *
                       N_STEPS;
  const double gf = flops / t_grad * 1e-9;
  const double ref_gf = 2.0 * B * H * (double)H / median(tm->mm, reps) * 1e-9;
  const double seq = median(tm->seq, reps);
  const double cpu_gf = flops / median(tm->cpu, reps) * 1e-9;
  const double cpu_ref_gf = 2.0 * B * H * (double)H / median(tm->cpu_mm, reps) * 1e-9;

  char cs[64];
  snprintf(cs, sizeof cs, "D=%d H=%d B=%d", D, H, B);
  row(cs, t_grad, gf, ref_gf, B, H, is_target);
  printf("scaling %s: %d repetitions; dgemm calls of one gradient replayed alone: %.3f ms "
         "(%.2f GFLOP/s; library / gemm-only = %.2f); by thread CPU time %.2f vs dgemm %.2f "
         "GFLOP/s (ratio %.2f); %zu parameters, loss %.6g\n",
         cs, reps, 1e3 * seq, flops / seq * 1e-9, t_grad / seq, cpu_gf, cpu_ref_gf,
         cpu_gf / cpu_ref_gf, m.n_theta, L);
  rc = 0;
done:
  refbuf_free(&ref);
  free(tm);
  free(theta), free(g), free(U0), free(obs);
  nde_grad_destroy(&grad);
  nde_solver_destroy(&solver);
  nde_cmodel_destroy(&m);
  return rc;
}

int main(int argc, char **argv) {
  /* Optional argument: run only cases whose index (0-3) is listed, e.g. "3". */
  const char *only = argc > 1 ? argv[1] : NULL;
  const char *env = getenv("OPENBLAS_NUM_THREADS");
  printf("scaling: OPENBLAS_NUM_THREADS=%s, OpenBLAS threads in use %d (of %d cores), core %s\n",
         env ? env : "(unset)", openblas_get_num_threads(), openblas_get_num_procs(),
         openblas_get_corename());
  printf("scaling: RK4, %d steps on [0, 1], MSE at %d observation times, one gradient (loss + "
         "dL/dtheta by discrete adjoint)\n",
         N_STEPS, N_OBS);
  fflush(stdout);
  const int n_cases = (int)(sizeof cases / sizeof cases[0]);
  int fail = 0;
  for (int i = 0; i < n_cases; i++) {
    if (only && !strchr(only, '0' + i)) continue;
    fail |= run_case(&cases[i], i == n_cases - 1);
    fflush(stdout);
  }
  return fail;
}
