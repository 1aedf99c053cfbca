/* Many Lotka-Volterra series for the MPI test and benchmark: the truth of models/lotka_volterra.nde
 * (alpha 1.3, beta 0.9, gamma 0.8, delta 1.8) from S initial states spread over [0.3, 4] x
 * [0.5, 5], on one grid of POINTS times on [0, T1], with 5e-3 relative Gaussian noise (seed = the
 * series' index), one group per series ("/s0000", ...).
 *   mkdata MODEL.nde OUT.h5 S [T1 POINTS] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nde/data.h"
#include "nde/result.h"

int main(int argc, char **argv) {
  if (argc != 4 && argc != 6) {
    fprintf(stderr, "usage: mkdata MODEL.nde OUT.h5 S [T1 POINTS]\n");
    return 2;
  }
  const int S = atoi(argv[3]);
  const double T1 = argc == 6 ? atof(argv[4]) : 5.0;
  const int N = argc == 6 ? atoi(argv[5]) : 21;
  if (S < 1 || N < 2 || !(T1 > 0)) {
    fprintf(stderr, "mkdata: bad arguments\n");
    return 2;
  }
  nde_model *m = NULL;
  nde_error err;
  if (nde_model_load_file(argv[1], &m, &err) != NDE_OK) {
    fprintf(stderr, "mkdata: %s\n", err.msg);
    return 1;
  }
  double theta[16];
  if (nde_model_n_theta(m) > 16) return 1;
  nde_model_init_theta(m, 1, theta);
  const char *pn[4] = {"alpha", "beta", "gamma", "delta"};
  const double pv[4] = {1.3, 0.9, 0.8, 1.8};
  for (int i = 0; i < 4; i++) {
    const int k = nde_model_find_param(m, pn[i]);
    if (k >= 0)
      nde_model_set_param(m, k, pv[i], theta);
  }
  double *t = malloc((size_t)N * sizeof *t), *Y = malloc((size_t)N * 2 * sizeof *Y);
  for (int k = 0; k < N; k++) t[k] = T1 * k / (N - 1);
  nde_writer *w = NULL;
  if (nde_writer_create(argv[2], &w, &err) != NDE_OK) {
    fprintf(stderr, "mkdata: %s\n", err.msg);
    return 1;
  }
  const char *names[2] = {"x", "y"};
  for (int s = 0; s < S; s++) {
    /* A low-discrepancy spread of initial states (golden-ratio sequence). */
    const double a = fmod(0.5 + 0.6180339887498949 * s, 1.0);
    const double b = fmod(0.5 + 0.7548776662466927 * s, 1.0);
    const double u0[2] = {0.3 + 3.7 * a, 0.5 + 4.5 * b};
    nde_sim_opts so = nde_sim_opts_default();
    so.noise = 5e-3;
    so.seed = (uint64_t)s + 1;
    double sd[2];
    nde_solve_stats st;
    if (nde_simulate(m, theta, u0, (size_t)N, t, &so, Y, sd, &st, &err) != NDE_OK ||
        st.reason != NDE_REASON_NONE) {
      fprintf(stderr, "mkdata: series %d did not integrate\n", s);
      return 1;
    }
    char group[32];
    snprintf(group, sizeof group, "/s%04d", s);
    const nde_series se = {(size_t)N, 2, t, Y, names, sd};
    if (nde_writer_put_series(w, group, &se) != NDE_OK) {
      fprintf(stderr, "mkdata: %s\n", nde_writer_errmsg(w));
      return 1;
    }
  }
  if (nde_writer_commit(w) != NDE_OK) {
    fprintf(stderr, "mkdata: %s\n", nde_writer_errmsg(w));
    return 1;
  }
  nde_writer_destroy(&w);
  nde_model_destroy(&m);
  free(t);
  free(Y);
  return 0;
}
