/* The mass-spring task of Greydanus et al. (2019), "Hamiltonian Neural Networks": data and scores.
 *
 *   H(q, p) = q^2 + p^2, so dq/dt = 2p, dp/dt = -2q, solved exactly:
 *     q(t) = q0 cos 2t + p0 sin 2t,   p(t) = p0 cos 2t - q0 sin 2t.
 *   50 trajectories of 30 points on [0, 3] (numpy's linspace(0, 3, 30)); each starts on a
 *   circle of radius r ~ U(0.1, 1) in the direction of u ~ U(-1, 1)^2; Gaussian noise of
 *   standard deviation 0.05 on q and p; the first 25 for training, the last 25 held out.
 *   (The paper's recipe, experiment-spring/data.py; the random numbers are nde's.)
 *
 * usage:
 *   mass_spring make SEED TRAIN.h5 TEST.h5 TRUTH.h5
 *       TRAIN.h5 and TEST.h5: 25 groups traj01..traj25 / traj26..traj50 of noisy (q, p), each
 *       with its noise_std; TRUTH.h5: the held-out trajectories without noise (same groups).
 *   mass_spring score FIT.h5 TEST.h5 TRUTH.h5 [--from observed|true] [--t1 T] [--points N]
 *                     [--solver NAME --dt H]
 *       Integrate the fitted model from each held-out trajectory's first observed state
 *       (--from observed, the default) or its true initial state (--from true), on the data's
 *       30 times or on N equally spaced times up to T, and print, against the exact solution:
 *         energy_mse   the mean over trajectories and times of (H(x^(t)) - H(x(t)))^2
 *         traj_mse     the mean of (x^(t) - x(t))^2 over trajectories, times and q, p
 *         learned_drift  (models with a net H) the largest |H_net(x^(t)) - H_net(x^(t0))|
 *                        relative to the spread of H_net over the data: how well the
 *                        integrator conserves the learned energy
 *       Exit 0, or 1 with a message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nde/data.h"
#include "nde/model.h"
#include "nde/result.h"

#define N_TRAJ 50
#define N_PTS 30
#define SIGMA 0.05

static void exact(double q0, double p0, double t, double *q, double *p) {
  const double c = cos(2 * t), s = sin(2 * t);
  *q = q0 * c + p0 * s;
  *p = p0 * c - q0 * s;
}

static int die(const char *what, const char *msg) {
  fprintf(stderr, "mass_spring: %s: %s\n", what, msg);
  return 1;
}

static int make(unsigned long long seed, const char *train, const char *test, const char *truth) {
  nde_rng rng;
  nde_rng_seed(&rng, seed);
  double t[N_PTS], y[N_TRAJ][N_PTS * 2], yt[N_TRAJ][N_PTS * 2];
  for (int k = 0; k < N_PTS; k++) t[k] = 3.0 * k / (N_PTS - 1);
  for (int s = 0; s < N_TRAJ; s++) {
    double u0 = 2 * nde_rng_uniform(&rng) - 1, u1 = 2 * nde_rng_uniform(&rng) - 1;
    const double r = 0.9 * nde_rng_uniform(&rng) + 0.1, norm = sqrt(u0 * u0 + u1 * u1);
    u0 *= r / norm;
    u1 *= r / norm;
    for (int k = 0; k < N_PTS; k++) {
      exact(u0, u1, t[k], &yt[s][2 * k], &yt[s][2 * k + 1]);
      y[s][2 * k] = yt[s][2 * k] + SIGMA * nde_rng_normal(&rng);
      y[s][2 * k + 1] = yt[s][2 * k + 1] + SIGMA * nde_rng_normal(&rng);
    }
  }
  const char *names[2] = {"q", "p"};
  const double noise[2] = {SIGMA, SIGMA};
  const char *paths[3] = {train, test, truth};
  for (int f = 0; f < 3; f++) {
    nde_writer *w = NULL;
    nde_error err;
    if (nde_writer_create(paths[f], &w, &err) != NDE_OK) return die(paths[f], err.msg);
    for (int s = f == 0 ? 0 : N_TRAJ / 2; s < (f == 0 ? N_TRAJ / 2 : N_TRAJ); s++) {
      char group[16];
      snprintf(group, sizeof group, "/traj%02d", s + 1);
      nde_series ser = {N_PTS, 2, t, f == 2 ? yt[s] : y[s], names, f == 2 ? NULL : noise};
      if (nde_writer_put_series(w, group, &ser) != NDE_OK) {
        int rc = die(paths[f], nde_writer_errmsg(w));
        nde_writer_destroy(&w);
        return rc;
      }
    }
    char desc[160];
    snprintf(desc, sizeof desc,
             "mass-spring (Greydanus et al. 2019): H = q^2 + p^2, noise %g, seed %llu, %s", SIGMA,
             seed, f == 0 ? "training" : f == 1 ? "held out" : "held out, without noise");
    if (nde_writer_set_attr_string(w, "/", "description", desc) != NDE_OK ||
        nde_writer_commit(w) != NDE_OK) {
      int rc = die(paths[f], nde_writer_errmsg(w));
      nde_writer_destroy(&w);
      return rc;
    }
    nde_writer_destroy(&w);
  }
  return 0;
}

static int score(int argc, char **argv) {
  const char *fit = argv[0], *test = argv[1], *truth = argv[2];
  int from_true = 0, points = 0;
  double t1 = 0, dt = 0;
  const char *solver = NULL;
  for (int i = 3; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return die(a, "needs a value");
    if (!strcmp(a, "--from")) from_true = !strcmp(v, "true");
    else if (!strcmp(a, "--t1")) t1 = atof(v);
    else if (!strcmp(a, "--points")) points = atoi(v);
    else if (!strcmp(a, "--solver")) solver = v;
    else if (!strcmp(a, "--dt")) dt = atof(v);
    else return die(a, "unknown option");
    i++;
  }
  nde_error err;
  nde_result *res = NULL;
  if (nde_result_open(fit, &res, &err) != NDE_OK) return die(fit, err.msg);
  const nde_model *m = nde_result_model(res);
  const char *names[2] = {"q", "p"};
  nde_data *obs = NULL, *tru = NULL;
  nde_data_opts dop = nde_data_opts_default();
  if (nde_data_open(test, 2, names, &dop, &obs, &err) != NDE_OK) return die(test, err.msg);
  if (nde_data_open(truth, 2, names, &dop, &tru, &err) != NDE_OK) return die(truth, err.msg);
  const int n = nde_model_state_dim(m);
  const int jq = nde_model_find_component(m, "q"), jp = nde_model_find_component(m, "p");
  if (n != 2 || jq < 0 || jp < 0) return die(fit, "the model's states are not q, p");
  /* The learned energy, when the model names its Hamiltonian net H. */
  nde_probe *probe = NULL;
  if (nde_model_find_net(m, "H") >= 0) {
    const char *e = "H(q, p)";
    if (nde_probe_create(m, 1, &e, 1, &probe, &err) != NDE_OK) return die(fit, err.msg);
  }
  nde_solver_opts so = nde_solver_opts_default();
  if (solver) {
    so.method = solver;
    so.dt = dt;
    so.rtol = 1e-10;
    so.atol = 1e-12;
  }
  double e_sum = 0, x_sum = 0, drift = 0, h_lo = INFINITY, h_hi = -INFINITY;
  size_t e_n = 0, x_n = 0;
  const size_t K = nde_data_n_traj(obs);
  for (size_t k = 0; k < K; k++) {
    const nde_traj *to = nde_data_traj(obs, k), *tt = nde_data_traj(tru, k);
    if (to->n != tt->n) return die(truth, "does not match the held-out file");
    const size_t N = points > 0 ? (size_t)points : to->n;
    double *times = malloc(N * sizeof *times), *Y = malloc(N * 2 * sizeof *Y);
    if (!times || !Y) return die("memory", "out of memory");
    for (size_t i = 0; i < N; i++)
      times[i] = points > 0 ? to->t[0] + (t1 - to->t[0]) * (double)i / (double)(N - 1) : to->t[i];
    double u0[2];
    const double *row = from_true ? tt->y : to->y;
    u0[jq] = row[0];
    u0[jp] = row[1];
    nde_start st = {.kind = NDE_START_STATE, .series = 0, .t = to->t[0], .u = u0};
    nde_solve_stats stats;
    if (nde_result_integrate(res, &st, N, times, solver ? &so : NULL, Y, &stats, &err) != NDE_OK)
      return die(fit, err.msg);
    double h0 = 0;
    for (size_t i = 0; i < N; i++) {
      double q, p;
      exact(tt->y[0], tt->y[1], times[i] - tt->t[0], &q, &p);
      const double qh = Y[2 * i + jq], ph = Y[2 * i + jp];
      const double de = (qh * qh + ph * ph) - (q * q + p * p);
      e_sum += de * de;
      e_n++;
      x_sum += (qh - q) * (qh - q) + (ph - p) * (ph - p);
      x_n += 2;
      if (probe) {
        double h;
        nde_probe_eval(probe, times[i], 1, Y + 2 * i, nde_result_theta(res), &h);
        if (i == 0) h0 = h;
        if (fabs(h - h0) > drift) drift = fabs(h - h0);
      }
    }
    if (probe)
      for (size_t i = 0; i < to->n; i++) {
        double u[2] = {0, 0}, h;
        u[jq] = tt->y[2 * i];
        u[jp] = tt->y[2 * i + 1];
        nde_probe_eval(probe, to->t[i], 1, u, nde_result_theta(res), &h);
        if (h < h_lo) h_lo = h;
        if (h > h_hi) h_hi = h;
      }
    free(times);
    free(Y);
    if (stats.reason != NDE_REASON_NONE) return die(fit, "an integration stopped early");
  }
  printf("energy_mse %.4e\ntraj_mse %.4e\n", e_sum / (double)e_n, x_sum / (double)x_n);
  if (probe) printf("learned_drift %.4e\n", drift / (h_hi - h_lo));
  nde_probe_destroy(&probe);
  nde_data_destroy(&obs);
  nde_data_destroy(&tru);
  nde_result_destroy(&res);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 6 && !strcmp(argv[1], "make")) return make(strtoull(argv[2], NULL, 10), argv[3], argv[4], argv[5]);
  if (argc >= 5 && !strcmp(argv[1], "score")) return score(argc - 2, argv + 2);
  fprintf(stderr,
          "usage: mass_spring make SEED TRAIN.h5 TEST.h5 TRUTH.h5\n"
          "       mass_spring score FIT.h5 TEST.h5 TRUTH.h5 [--from observed|true] [--t1 T --points N]"
          " [--solver NAME --dt H]\n");
  return 2;
}
