/* Networks: the PyTorch parameter layout against a hand computation, initialisation
 * (determinism, Glorot bound, sample variances), and rejection of invalid arguments. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "nde/nn.h"

/* 2 -> 3 tanh -> 2 identity with weights chosen by hand, rows of W distinct and asymmetric. */
static const double hand_theta[17] = {
    /* W1 (3 x 2), row-major */ 0.5, -1.25, 2.0, 0.75, -0.3, 0.1,
    /* b1 */ 0.1, -0.2, 0.05,
    /* W2 (2 x 3) */ 1.5, -0.5, 0.25, -2.0, 0.6, 1.1,
    /* b2 */ 0.3, -0.7};

static void hand_net(const double *x, double *y) {
  double a0 = tanh(0.5 * x[0] - 1.25 * x[1] + 0.1);
  double a1 = tanh(2.0 * x[0] + 0.75 * x[1] - 0.2);
  double a2 = tanh(-0.3 * x[0] + 0.1 * x[1] + 0.05);
  y[0] = 1.5 * a0 - 0.5 * a1 + 0.25 * a2 + 0.3;
  y[1] = -2.0 * a0 + 0.6 * a1 + 1.1 * a2 - 0.7;
}

static void forward_matches_a_hand_computation_in_pytorch_layout(void **state) {
  (void)state;
  int widths[3] = {2, 3, 2};
  nde_act acts[2] = {NDE_ACT_TANH, NDE_ACT_IDENTITY};
  nde_net *net = NULL;
  nde_net_ws *ws = NULL;
  assert_int_equal(nde_net_create(2, widths, acts, &net, NULL), NDE_OK);
  assert_int_equal(nde_net_n_params(net), 17);
  assert_int_equal(nde_net_weight_offset(net, 0), 0);
  assert_int_equal(nde_net_bias_offset(net, 0), 6);
  assert_int_equal(nde_net_weight_offset(net, 1), 9);
  assert_int_equal(nde_net_bias_offset(net, 1), 15);
  assert_int_equal(nde_net_n_layers(net), 2);
  assert_int_equal(nde_net_n_in(net), 2);
  assert_int_equal(nde_net_n_out(net), 2);
  assert_int_equal(nde_net_width(net, 1), 3);
  assert_int_equal(nde_net_act(net, 0), NDE_ACT_TANH);
  assert_int_equal(nde_net_act(net, 1), NDE_ACT_IDENTITY);
  /* tanh and identity layers keep their activations only. */
  assert_int_equal(nde_net_cache_size(net, 5), 5 * (3 + 2));

  /* B = 1 and 2 (row loops) and B = 9 (dgemm), each row checked against the hand formula. */
  enum { BMAX = 9 };
  assert_int_equal(nde_net_ws_create(net, BMAX, &ws), NDE_OK);
  nde_rng rng;
  nde_rng_seed(&rng, 5);
  double X[BMAX * 2], Y[BMAX * 2], ref[2];
  nde_test_fill(&rng, BMAX * 2, -1.9, 2.3, X);
  const int batches[3] = {1, 2, BMAX};
  for (int t = 0; t < 3; t++) {
    int B = batches[t];
    memset(Y, 0, sizeof Y);
    nde_net_forward(net, hand_theta, B, X, Y, NULL, ws);
    for (int r = 0; r < B; r++) {
      hand_net(X + 2 * r, ref);
      check_close(Y[2 * r], ref[0], 1e-14);
      check_close(Y[2 * r + 1], ref[1], 1e-14);
    }
  }
  nde_net_ws_destroy(&ws);
  nde_net_destroy(&net);
  assert_null(ws);
  assert_null(net);
}

static void forward_saves_what_the_vjp_reads_in_the_cache(void **state) {
  (void)state;
  /* tanh then identity: the activations of both layers, no pre-activation. */
  int widths[3] = {2, 3, 2};
  nde_act acts[2] = {NDE_ACT_TANH, NDE_ACT_IDENTITY};
  nde_net *net = NULL;
  nde_net_ws *ws = NULL;
  assert_int_equal(nde_net_create(2, widths, acts, &net, NULL), NDE_OK);
  assert_int_equal(nde_net_ws_create(net, 1, &ws), NDE_OK);
  assert_int_equal(nde_net_cache_size(net, 1), 5);
  double x[2] = {0.8125, -1.4375}, y[2], cache[12];
  for (int i = 0; i < 12; i++) cache[i] = NAN;
  nde_net_forward(net, hand_theta, 1, x, y, cache, ws);
  double z0 = 0.5 * x[0] - 1.25 * x[1] + 0.1;
  check_close(cache[0], tanh(z0), 1e-15);
  check_close(cache[3], y[0], 0);
  check_close(cache[4], y[1], 0);
  assert_true(isnan(cache[5])); /* nothing written past the reported size */
  nde_net_ws_destroy(&ws);
  nde_net_destroy(&net);

  /* rbf's derivative -2 z exp(-z^2) needs z as well: Z then A for that layer. */
  nde_act acts_rbf[2] = {NDE_ACT_RBF, NDE_ACT_IDENTITY};
  assert_int_equal(nde_net_create(2, widths, acts_rbf, &net, NULL), NDE_OK);
  assert_int_equal(nde_net_ws_create(net, 1, &ws), NDE_OK);
  assert_int_equal(nde_net_cache_size(net, 1), 8);
  assert_int_equal(nde_net_cache_size(net, 3), 24);
  for (int i = 0; i < 12; i++) cache[i] = NAN;
  nde_net_forward(net, hand_theta, 1, x, y, cache, ws);
  check_close(cache[0], z0, 1e-15);
  check_close(cache[3], exp(-z0 * z0), 1e-15);
  check_close(cache[6], y[0], 0);
  check_close(cache[7], y[1], 0);
  assert_true(isnan(cache[8]));
  nde_net_ws_destroy(&ws);
  nde_net_destroy(&net);
}

/* At B = 1 a network in -> H act -> out (identity) with in, out <= 4 runs through one kernel
 * per (in, out, tanh or not), chosen when it is created: every one of them gives the forward
 * pass, the cache and the VJP of the same row inside a batch of three (the layer loop and
 * dgemm) to rounding, for tanh (fused in the loop) and two other activations. */
static void the_one_row_kernels_agree_with_the_batched_path(void **state) {
  (void)state;
  const nde_act hidden[] = {NDE_ACT_TANH, NDE_ACT_SOFTPLUS, NDE_ACT_RBF};
  const int Hs[] = {1, 13, 62};
  int checked = 0;
  for (int in = 1; in <= 4; in++)
    for (int out = 1; out <= 4; out++)
      for (int a = 0; a < 3; a++)
        for (int h = 0; h < 3; h++) {
          const int widths[3] = {in, Hs[h], out};
          const nde_act acts[2] = {hidden[a], NDE_ACT_IDENTITY};
          nde_net *net = NULL;
          nde_net_ws *ws = NULL;
          assert_int_equal(nde_net_create(2, widths, acts, &net, NULL), NDE_OK);
          assert_int_equal(nde_net_ws_create(net, 3, &ws), NDE_OK);
          const size_t P = nde_net_n_params(net), C = nde_net_cache_size(net, 1);
          double theta[4 * 62 + 62 + 62 * 4 + 4], X[12], dY[12], Y[12], y1[4], gX[12], gx1[4];
          double g3[sizeof theta / sizeof theta[0]], g1[sizeof theta / sizeof theta[0]];
          double cache3[3 * (2 * 62 + 4)], cache1[2 * 62 + 4];
          nde_rng rng;
          nde_rng_seed(&rng, 77u + (uint64_t)(100 * in + 10 * out + a));
          assert_int_equal(nde_net_init(net, NDE_INIT_NORMAL, 0.7, &rng, theta), NDE_OK);
          for (size_t i = 0; i < P; i++) theta[i] += 0.01 * (double)(i % 7); /* biases too */
          for (int i = 0; i < 3 * in; i++) X[i] = 0.9 * sin(1.3 * i + in);
          for (int i = 0; i < 3 * out; i++) dY[i] = cos(0.7 * i + out);
          memset(g3, 0, sizeof g3);
          memset(g1, 0, sizeof g1);
          nde_net_forward(net, theta, 3, X, Y, cache3, ws);
          nde_net_vjp(net, theta, 3, X, dY, cache3, gX, g3, ws);
          /* The middle row alone, and its share of g3 from a batch of that row alone. */
          for (size_t i = 0; i < C; i++) cache1[i] = NAN;
          nde_net_forward(net, theta, 1, X + in, y1, cache1, ws);
          for (int i = 0; i < out; i++) check_close(y1[i], Y[out + i], 1e-14);
          nde_net_vjp(net, theta, 1, X + in, dY + out, cache1, gx1, g1, ws);
          for (int i = 0; i < in; i++) check_close(gx1[i], gX[in + i], 1e-13);
          double g3row[sizeof theta / sizeof theta[0]];
          memset(g3row, 0, sizeof g3row);
          double Xr[12], dYr[12];
          memcpy(Xr, X + in, (size_t)in * sizeof *Xr);
          memcpy(dYr, dY + out, (size_t)out * sizeof *dYr);
          /* The same row with no cache (the VJP runs the forward pass itself) and gtheta NULL
           * (the kernel without the parameter sums): the same input cotangent, bit for bit. */
          double gxl[4];
          nde_net_vjp(net, theta, 1, Xr, dYr, NULL, gxl, NULL, ws);
          assert_memory_equal(gxl, gx1, (size_t)in * sizeof *gxl);
          /* gtheta of one row: a batch of three copies of it gives three times as much. */
          double X3[12], dY3[12], gX3[12];
          for (int r = 0; r < 3; r++) {
            memcpy(X3 + r * in, Xr, (size_t)in * sizeof *X3);
            memcpy(dY3 + r * out, dYr, (size_t)out * sizeof *dY3);
          }
          nde_net_vjp(net, theta, 3, X3, dY3, NULL, gX3, g3row, ws);
          for (size_t i = 0; i < P; i++) check_close(3.0 * g1[i], g3row[i], 1e-12);
          checked++;
          nde_net_ws_destroy(&ws);
          nde_net_destroy(&net);
        }
  assert_int_equal(checked, 4 * 4 * 3 * 3);
}

/* Batches of small layers (at most 512 weights, 64 inputs and 64 outputs) run without BLAS, each
 * entry of a product summed in one order whatever the batch: through relu and identity layers a
 * row's forward pass and input cotangent are the same bits alone in a batch of two as in a batch
 * of 19.  The layers here take both paths: narrow or short ones (2 x 50, 50 x 2, 3 x 24, 1 x 16)
 * row by row with the one-row loops, the others (5 x 5, 24 x 17, 17 x 9, 16 x 16) through the
 * blocked kernel.  (The transcendental activations are not part of the promise: libmvec's vector
 * lanes and the scalar tail of a loop may differ in the last bit.)  Wider layers go to dgemm,
 * which makes no such promise, and are not checked here. */
static void a_row_of_a_small_batch_does_not_depend_on_the_batch(void **state) {
  (void)state;
  const struct {
    int L, w[5];
    nde_act a[4];
  } nets[] = {{2, {2, 50, 2}, {NDE_ACT_RELU, NDE_ACT_IDENTITY}},
              {4, {2, 5, 5, 5, 2}, {NDE_ACT_RELU, NDE_ACT_RELU, NDE_ACT_RELU, NDE_ACT_IDENTITY}},
              {3, {3, 24, 17, 9}, {NDE_ACT_RELU, NDE_ACT_IDENTITY, NDE_ACT_IDENTITY}},
              {3, {1, 16, 16, 1}, {NDE_ACT_RELU, NDE_ACT_RELU, NDE_ACT_IDENTITY}}};
  enum { B = 19, MAXW = 64 };
  for (size_t q = 0; q < sizeof nets / sizeof nets[0]; q++) {
    nde_net *net = NULL;
    nde_net_ws *ws = NULL;
    assert_int_equal(nde_net_create(nets[q].L, nets[q].w, nets[q].a, &net, NULL), NDE_OK);
    assert_int_equal(nde_net_ws_create(net, B, &ws), NDE_OK);
    const int in = nets[q].w[0], out = nets[q].w[nets[q].L];
    const size_t P = nde_net_n_params(net);
    double *theta = test_calloc(P, sizeof *theta), *g = test_calloc(P, sizeof *g);
    double *cache = test_calloc(nde_net_cache_size(net, B), sizeof *cache);
    double X[B * MAXW], Y[B * MAXW], dY[B * MAXW], gX[B * MAXW];
    double X2[2 * MAXW], Y2[2 * MAXW], dY2[2 * MAXW], gX2[2 * MAXW];
    nde_rng rng;
    nde_rng_seed(&rng, 4242u + q);
    assert_int_equal(nde_net_init(net, NDE_INIT_GLOROT_UNIFORM, 1.0, &rng, theta), NDE_OK);
    for (int i = 0; i < B * in; i++) X[i] = sin(0.7 * i + 0.1);
    for (int i = 0; i < B * out; i++) dY[i] = cos(0.9 * i);
    nde_net_forward(net, theta, B, X, Y, cache, ws);
    nde_net_vjp(net, theta, B, X, dY, cache, gX, g, ws);
    for (int r = 0; r < B; r++) {
      for (int k = 0; k < 2; k++) {
        memcpy(X2 + k * in, X + r * in, (size_t)in * sizeof *X2);
        memcpy(dY2 + k * out, dY + r * out, (size_t)out * sizeof *dY2);
      }
      nde_net_forward(net, theta, 2, X2, Y2, cache, ws);
      nde_net_vjp(net, theta, 2, X2, dY2, cache, gX2, g, ws);
      assert_memory_equal(Y2, Y + r * out, (size_t)out * sizeof *Y2);
      assert_memory_equal(gX2, gX + r * in, (size_t)in * sizeof *gX2);
    }
    test_free(theta);
    test_free(g);
    test_free(cache);
    nde_net_ws_destroy(&ws);
    nde_net_destroy(&net);
  }
}

static nde_net *make_net(int n_layers, const int *widths, nde_act act) {
  nde_act acts[NDE_NET_MAX_LAYERS];
  for (int l = 0; l < n_layers; l++) acts[l] = act;
  nde_net *net = NULL;
  assert_int_equal(nde_net_create(n_layers, widths, acts, &net, NULL), NDE_OK);
  return net;
}

static void init_is_deterministic_given_the_seed(void **state) {
  (void)state;
  int widths[4] = {3, 17, 11, 2};
  nde_net *net = make_net(3, widths, NDE_ACT_TANH);
  size_t n = nde_net_n_params(net);
  double a[512], b[512], c[512];
  assert_true(n <= 512);
  for (int s = 0; s < 4; s++) {
    nde_rng r1, r2, r3;
    nde_rng_seed(&r1, 1234);
    nde_rng_seed(&r2, 1234);
    nde_rng_seed(&r3, 1235);
    assert_int_equal(nde_net_init(net, (nde_init)s, 0.37, &r1, a), NDE_OK);
    assert_int_equal(nde_net_init(net, (nde_init)s, 0.37, &r2, b), NDE_OK);
    assert_int_equal(nde_net_init(net, (nde_init)s, 0.37, &r3, c), NDE_OK);
    assert_memory_equal(a, b, n * sizeof *a);
    assert_memory_equal(&r1, &r2, sizeof r1);
    assert_memory_not_equal(a, c, n * sizeof *a);
    /* A second draw from the advanced generator gives new weights. */
    assert_int_equal(nde_net_init(net, (nde_init)s, 0.37, &r1, b), NDE_OK);
    assert_memory_not_equal(a, b, n * sizeof *a);
  }
  nde_net_destroy(&net);
}

/* Sample mean and variance of layer l's weights; checks its biases are zero. */
static void weight_stats(const nde_net *net, const double *theta, int l, double *mean,
                         double *var, double *maxabs) {
  size_t nw = (size_t)nde_net_width(net, l) * (size_t)nde_net_width(net, l + 1);
  const double *w = theta + nde_net_weight_offset(net, l);
  double s = 0, s2 = 0, m = 0;
  for (size_t i = 0; i < nw; i++) {
    s += w[i];
    m = fmax(m, fabs(w[i]));
  }
  s /= (double)nw;
  for (size_t i = 0; i < nw; i++) s2 += (w[i] - s) * (w[i] - s);
  *mean = s;
  *var = s2 / (double)(nw - 1);
  *maxabs = m;
  const double *b = theta + nde_net_bias_offset(net, l);
  for (int j = 0; j < nde_net_width(net, l + 1); j++) assert_true(b[j] == 0.0);
}

static void init_schemes_have_their_documented_scale_and_zero_biases(void **state) {
  (void)state;
  int widths[3] = {300, 200, 100};
  nde_net *net = make_net(2, widths, NDE_ACT_RELU);
  size_t n = nde_net_n_params(net);
  double *theta = test_malloc(n * sizeof *theta);
  nde_rng rng;
  nde_rng_seed(&rng, 99);
  for (int s = 0; s < 4; s++) {
    for (size_t i = 0; i < n; i++) theta[i] = 7.5; /* biases must be overwritten with zeros */
    double sigma = 0.0625;
    assert_int_equal(nde_net_init(net, (nde_init)s, sigma, &rng, theta), NDE_OK);
    for (int l = 0; l < 2; l++) {
      double in = widths[l], out = widths[l + 1], mean, var, maxabs, expect;
      weight_stats(net, theta, l, &mean, &var, &maxabs);
      switch ((nde_init)s) {
        case NDE_INIT_GLOROT_UNIFORM: {
          double a = sqrt(6.0 / (in + out));
          assert_true(maxabs <= a);
          assert_true(maxabs > 0.99 * a); /* the whole interval is used */
          expect = a * a / 3.0;
          break;
        }
        case NDE_INIT_GLOROT_NORMAL: expect = 2.0 / (in + out); break;
        case NDE_INIT_HE: expect = 2.0 / in; break;
        default: expect = sigma * sigma; break;
      }
      /* At least 20000 samples: the variance estimate has relative sd <= 1%, so 5% is 5 sd. */
      if (fabs(var / expect - 1.0) > 0.05 || fabs(mean) > 5.0 * sqrt(expect / (in * out))) {
        print_error("scheme %d layer %d: mean %.4g, variance %.6g, expected %.6g\n", s, l, mean,
                    var, expect);
        fail();
      }
    }
  }
  test_free(theta);
  nde_net_destroy(&net);
}

static void invalid_arguments_are_rejected(void **state) {
  (void)state;
  int ok_w[3] = {2, 4, 1};
  nde_act ok_a[2] = {NDE_ACT_TANH, NDE_ACT_IDENTITY};
  nde_net *net = (nde_net *)&ok_w; /* must be reset to NULL on failure */
  assert_int_equal(nde_net_create(2, ok_w, ok_a, NULL, NULL), NDE_ERR_ARG);
  assert_int_equal(nde_net_create(0, ok_w, ok_a, &net, NULL), NDE_ERR_ARG);
  assert_null(net);
  assert_int_equal(nde_net_create(NDE_NET_MAX_LAYERS + 1, ok_w, ok_a, &net, NULL), NDE_ERR_ARG);
  assert_int_equal(nde_net_create(-1, ok_w, ok_a, &net, NULL), NDE_ERR_ARG);
  assert_int_equal(nde_net_create(2, NULL, ok_a, &net, NULL), NDE_ERR_ARG);
  assert_int_equal(nde_net_create(2, ok_w, NULL, &net, NULL), NDE_ERR_ARG);
  int zero_w[3] = {2, 0, 1}, big_w[3] = {2, NDE_NET_MAX_WIDTH + 1, 1}, neg_w[3] = {-3, 4, 1};
  assert_int_equal(nde_net_create(2, zero_w, ok_a, &net, NULL), NDE_ERR_ARG);
  assert_int_equal(nde_net_create(2, big_w, ok_a, &net, NULL), NDE_ERR_ARG);
  assert_int_equal(nde_net_create(2, neg_w, ok_a, &net, NULL), NDE_ERR_ARG);
  nde_act bad_a[2] = {NDE_ACT_TANH, NDE_ACT_COUNT};
  assert_int_equal(nde_net_create(2, ok_w, bad_a, &net, NULL), NDE_ERR_ARG);
  assert_null(net);
  int max_w[2] = {NDE_NET_MAX_WIDTH, 1};
  assert_int_equal(nde_net_create(1, max_w, ok_a, &net, NULL), NDE_OK);
  nde_net_destroy(&net);

  assert_int_equal(nde_net_create(2, ok_w, ok_a, &net, NULL), NDE_OK);
  nde_net_ws *ws = NULL;
  assert_int_equal(nde_net_ws_create(net, 0, &ws), NDE_ERR_ARG);
  assert_int_equal(nde_net_ws_create(net, -4, &ws), NDE_ERR_ARG);
  assert_int_equal(nde_net_ws_create(NULL, 4, &ws), NDE_ERR_ARG);
  assert_int_equal(nde_net_ws_create(net, 4, NULL), NDE_ERR_ARG);
  assert_null(ws);
  assert_int_equal(nde_net_cache_size(net, 0), 0);
  assert_int_equal(nde_net_cache_size(NULL, 3), 0);

  double theta[17];
  nde_rng rng;
  nde_rng_seed(&rng, 3);
  assert_int_equal(nde_net_init(NULL, NDE_INIT_HE, 0, &rng, theta), NDE_ERR_ARG);
  assert_int_equal(nde_net_init(net, NDE_INIT_HE, 0, NULL, theta), NDE_ERR_ARG);
  assert_int_equal(nde_net_init(net, NDE_INIT_HE, 0, &rng, NULL), NDE_ERR_ARG);
  assert_int_equal(nde_net_init(net, (nde_init)4, 0, &rng, theta), NDE_ERR_ARG);
  assert_int_equal(nde_net_init(net, NDE_INIT_NORMAL, -0.5, &rng, theta), NDE_ERR_ARG);
  assert_int_equal(nde_net_init(net, NDE_INIT_NORMAL, NAN, &rng, theta), NDE_ERR_ARG);
  assert_int_equal(nde_net_init(net, NDE_INIT_HE, 0, &rng, theta), NDE_OK);

  /* Passes return nothing: a batch beyond the workspace leaves NaN in the output. */
  assert_int_equal(nde_net_ws_create(net, 2, &ws), NDE_OK);
  double X[6] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, Y[3] = {0, 0, 0}, gX[6] = {0};
  nde_net_forward(net, theta, 3, X, Y, NULL, ws);
  for (int i = 0; i < 3; i++) assert_true(isnan(Y[i]));
  nde_net_forward(net, theta, 2, X, Y, NULL, ws);
  assert_true(isfinite(Y[0]) && isfinite(Y[1]));
  nde_net_forward(net, theta, 1, X, Y, NULL, NULL);
  assert_true(isnan(Y[0]));
  nde_net_vjp(net, theta, 3, X, Y, NULL, gX, NULL, ws);
  for (int i = 0; i < 6; i++) assert_true(isnan(gX[i]));
  nde_net_jvp(net, NULL, 1, X, X, NULL, Y, ws);
  assert_true(isnan(Y[0]));

  /* Queries out of range. */
  assert_int_equal(nde_net_width(net, 3), 0);
  assert_int_equal(nde_net_width(net, -1), 0);
  assert_int_equal(nde_net_act(net, 2), NDE_ACT_COUNT);
  assert_int_equal(nde_net_n_params(NULL), 0);

  nde_net_ws_destroy(&ws);
  nde_net_ws_destroy(NULL);
  nde_net_destroy(&net);
  nde_net_destroy(&net);
  nde_net_destroy(NULL);
}

/* The BLAS configuration string is asked for from many threads at once (the provenance of
 * ensemble members fitted concurrently): every caller reads the whole string.  OpenBLAS's own
 * openblas_get_config() rebuilds one static buffer at every call, and an ASan build of an
 * ensemble fit read past a copy made while another thread rebuilt it. */
typedef struct cfg_reader {
  const char *want;
  int bad;
} cfg_reader;

static void *read_config(void *arg) {
  cfg_reader *c = arg;
  for (int i = 0; i < 100000; i++)
    if (strcmp(nde_nn_blas_config(), c->want) != 0) c->bad++;
  return NULL;
}

static void the_blas_configuration_reads_whole_on_any_thread(void **state) {
  (void)state;
  char want[256];
  snprintf(want, sizeof want, "%s", nde_nn_blas_config());
  assert_true(strlen(want) > 0);
  enum { T = 8 };
  pthread_t th[T];
  cfg_reader c[T];
  for (int k = 0; k < T; k++) {
    c[k] = (cfg_reader){want, 0};
    assert_int_equal(pthread_create(&th[k], NULL, read_config, &c[k]), 0);
  }
  for (int k = 0; k < T; k++) {
    pthread_join(th[k], NULL);
    assert_int_equal(c[k].bad, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(forward_matches_a_hand_computation_in_pytorch_layout),
      cmocka_unit_test(the_one_row_kernels_agree_with_the_batched_path),
      cmocka_unit_test(a_row_of_a_small_batch_does_not_depend_on_the_batch),
      cmocka_unit_test(forward_saves_what_the_vjp_reads_in_the_cache),
      cmocka_unit_test(init_is_deterministic_given_the_seed),
      cmocka_unit_test(init_schemes_have_their_documented_scale_and_zero_biases),
      cmocka_unit_test(invalid_arguments_are_rejected),
      cmocka_unit_test(the_blas_configuration_reads_whole_on_any_thread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
