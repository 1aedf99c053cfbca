/* Fuzz target of the .nde language: parse -> check -> compile -> one f, one VJP and one JVP at a
 * random state.  Linked with libFuzzer by .ci/fuzz (clang -fsanitize=fuzzer), or with replay.c
 * into a program that replays the corpus (tests/fuzz/corpus/model) in the normal test suite. */
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
  nde_rhs *rhs = NULL;
  if (nde_model_create_rhs(m, B, &rhs, NULL) != NDE_OK) {
    nde_model_destroy(&m);
    return 0;
  }
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
    nde_model_init_theta(m, 7, th);
    int r = nde_rhs_f(rhs, 0.5, B, U, th, dU, cache);
    if (r < 0) abort(); /* the tape never fails fatally on a valid batch */
    r = nde_rhs_vjp(rhs, 0.5, B, U, th, L, cache, gU, gth);
    if (r < 0) abort();
    r = nde_rhs_jvp(rhs, 0.5, B, U, th, L, NULL, dU);
    if (r < 0) abort();
  }
  free(U); free(dU); free(L); free(gU); free(th); free(gth); free(cache);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
  return 0;
}
