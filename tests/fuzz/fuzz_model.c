/* Fuzz target of the .nde language: parse -> check -> compile -> one f, VJP and JVP at a random
 * state on rows of two series (with inputs and constants bound when the model declares them),
 * breakpoints, a clone, and an observer of every observable.  Linked with libFuzzer by .ci/fuzz
 * (clang -fsanitize=fuzzer), or with replay.c into a program that replays the corpus
 * (tests/fuzz/corpus/model) in the normal test suite. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nde/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nde_model *m = NULL;
  nde_status st = nde_model_load_string((const char *)data, size, "fuzz.nde", &m, NULL);
  if (!m) return 0;
  /* The message is always a string; touch all of it. */
  volatile size_t len = strlen(nde_model_errmsg(m));
  (void)len;
  if (st != NDE_OK) {
    nde_model_destroy(&m);
    return 0;
  }
  const int B = 3;
  /* Two series of samples on [0, 1] for whatever inputs and constants the model declares. */
  const int ni = nde_model_n_inputs(m), nc = nde_model_n_data_consts(m);
  double ts[2][4] = {{0, 0.25, 0.5, 1}, {0, 0.5, 0.75, 1}};
  double *us = calloc((size_t)(8 * ni + 1), sizeof *us), *cs = calloc((size_t)(2 * nc + 1), sizeof *cs);
  nde_input_series in[2] = {{4, ts[0], us}, {4, ts[1], us ? us + 4 * ni : NULL}};
  for (int i = 0; us && i < 8 * ni; i++) us[i] = (double)((i * 7) % 5) - 1.5;
  for (int i = 0; cs && i < 2 * nc; i++) cs[i] = 0.5 + i;
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.max_batch = B;
  o.n_series = 2;
  o.inputs = in;
  o.consts = cs;
  nde_rhs *rhs = NULL;
  if (!us || !cs || nde_model_create_rhs_opts(m, &o, &rhs, NULL) != NDE_OK) {
    free(us);
    free(cs);
    nde_model_destroy(&m);
    return 0;
  }
  const int rows[3] = {1, 0, 1};
  if (nde_rhs_set_rows(rhs, B, rows) != NDE_OK) abort();
  const nde_rhs_info *info = nde_rhs_get_info(rhs);
  size_t n = (size_t)info->n_state * B, P = info->n_theta;
  double *U = calloc(n, sizeof *U), *dU = calloc(n, sizeof *dU), *L = calloc(n, sizeof *L);
  double *gU = calloc(n, sizeof *gU), *th = calloc(P + 1, sizeof *th), *gth = calloc(P + 1, sizeof *gth);
  double *cache = calloc(info->cache_per_row * B + 1, sizeof *cache);
  if (U && dU && L && gU && th && gth && cache) {
    nde_rng rng;
    nde_rng_seed(&rng, size);
    for (size_t i = 0; i < n; i++) U[i] = 4 * nde_rng_uniform(&rng) - 2;
    for (size_t i = 0; i < n; i++) L[i] = 2 * nde_rng_uniform(&rng) - 1;
    nde_model_init_theta_full(m, 7, 2, th);
    int r = nde_rhs_f(rhs, 0.5, B, U, th, dU, cache);
    if (r < 0) abort(); /* the tape never fails fatally on a valid batch */
    r = nde_rhs_vjp(rhs, 0.5, B, U, th, L, cache, gU, gth);
    if (r < 0) abort();
    r = nde_rhs_jvp(rhs, 0.5, B, U, th, L, NULL, dU);
    if (r < 0) abort();
    double bp[4];
    (void)nde_rhs_breakpoints(rhs, 0, 1, 4, bp);
    nde_rhs *c = NULL;
    if (nde_rhs_clone(rhs, &c, NULL) == NDE_OK && nde_rhs_f(c, 0.5, B, U, th, dU, NULL) < 0) abort();
    nde_rhs_destroy(&c);
    /* Every observable, evaluated and differentiated. */
    const int K = nde_model_n_observables(m);
    const char *names[8];
    for (int k = 0; k < K && k < 8; k++) names[k] = nde_model_observable_name(m, k);
    nde_observer *obs = NULL;
    if (K > 0 && nde_model_create_observer(m, &o, K < 8 ? K : 8, names, &obs, NULL) == NDE_OK) {
      double H[24], LH[24] = {0};
      if (nde_observer_set_rows(obs, B, rows) != NDE_OK) abort();
      if (nde_observer_eval(obs, 0.5, B, U, th, H) < 0) abort();
      if (nde_observer_vjp(obs, 0.5, B, U, th, LH, gU, gth) < 0) abort();
      nde_observer_destroy(&obs);
    }
  }
  free(U); free(dU); free(L); free(gU); free(th); free(gth); free(cache); free(us); free(cs);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
  return 0;
}
