/* The whole nde workflow from C, with only <nde/nde.h>: fit the Lotka-Volterra universal
 * differential equation (a network U in place of the interaction terms) to the shipped data,
 * read the missing terms off the network as equations, refit the discovered model, and forecast
 * to t = 10 (twice the fitted span) from the fitted start against the true model from the true
 * start.
 *
 *   cc workflow.c $(pkg-config --cflags --libs nde) -o workflow
 *   ./workflow models/ data/lotka_volterra.h5
 *
 * Exits 0 when the discovered law is U1 ~ -beta x y, U2 ~ gamma x y, the refit recovers beta and
 * gamma within 2 % and the forecast's RMSE against the truth is below 0.1; 1 otherwise; 2 on an
 * error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nde/nde.h>

static int failed(const char *what, const nde_error *err) {
  fprintf(stderr, "workflow: %s: %s\n", what, err->msg);
  return 2;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: workflow MODELS_DIR DATA.h5\n");
    return 2;
  }
  char ude_path[4096], lv_path[4096];
  snprintf(ude_path, sizeof ude_path, "%s/lotka_volterra_ude.nde", argv[1]);
  snprintf(lv_path, sizeof lv_path, "%s/lotka_volterra.nde", argv[1]);
  nde_error err;
  nde_model *ude = NULL, *found = NULL, *lv = NULL;
  nde_data *data = NULL;
  nde_result *fit = NULL, *refit = NULL;
  nde_discovery *disc = NULL;
  char *text = NULL;
  int rc = 2;

  /* 1. Fit the UDE with the default schedule (multiple shooting, then L-BFGS). */
  if (nde_model_load_file(ude_path, &ude, &err) != NDE_OK) {
    rc = failed(ude_path, &err);
    goto done;
  }
  if (nde_data_open_for(argv[2], ude, &data, &err) != NDE_OK) {
    rc = failed(argv[2], &err);
    goto done;
  }
  if (nde_result_fit(ude, data, NULL, &fit, &err) != NDE_OK) {
    rc = failed("fit", &err);
    goto done;
  }
  printf("fit: %s; trajectory loss %.3e after %ld iterations\n", nde_result_message(fit),
         nde_result_get_kept(fit).loss, nde_result_iterations(fit));

  /* 2. Discover: sparse regression of the network's outputs on polynomial terms, chosen by the
   * BIC of trajectory predictions. */
  if (nde_discover(fit, NULL, &disc, &err) != NDE_OK) {
    rc = failed("discover", &err);
    goto done;
  }
  int law_ok = nde_discovery_n_outputs(disc) == 2;
  for (int q = 0; q < nde_discovery_n_outputs(disc); q++) {
    nde_discovery_output o;
    nde_discovery_candidate c;
    nde_discovery_get_output(disc, q, &o);
    nde_discovery_get_candidate(disc, q, o.chosen, &c);
    char *eq = nde_discovery_equation(disc, q, o.chosen, 0);
    printf("discovered %s[%d](%.*s) ~ %s\n", o.net, o.component + 1, o.args_len, o.args, eq);
    nde_free(eq);
    /* One term, x*y. */
    law_ok &= c.n_terms == 1 && !strcmp(nde_discovery_term(disc, 4), "x*y") && c.xi[4] != 0;
  }
  if (nde_discovery_model_text(disc, &text, &err) != NDE_OK) {
    rc = failed("discovered model", &err);
    goto done;
  }

  /* 3. Refit the discovered model: its coefficients are ordinary parameters now. */
  if (nde_model_load_string(text, strlen(text), "discovered.nde", &found, &err) != NDE_OK) {
    rc = failed("discovered model", &err);
    goto done;
  }
  if (nde_result_fit(found, data, NULL, &refit, &err) != NDE_OK) {
    rc = failed("refit", &err);
    goto done;
  }
  const double beta = -nde_result_param(refit, nde_model_find_param(found, "U1_xy"));
  const double gamma = nde_result_param(refit, nde_model_find_param(found, "U2_xy"));
  printf("refit: beta = %.5f (truth 0.9), gamma = %.5f (truth 0.8)\n", beta, gamma);

  /* 4. Forecast to t = 10 from the fitted start, against the true model. */
  enum { N = 101 };
  double t[N], Y[2 * N], Z[2 * N];
  for (int i = 0; i < N; i++) t[i] = 0.1 * i;
  nde_start start = {.kind = NDE_START_FITTED, .series = 0};
  nde_solve_stats ss;
  if (nde_result_integrate(refit, &start, N, t, NULL, Y, &ss, &err) != NDE_OK ||
      ss.reason != NDE_REASON_NONE) {
    rc = failed("forecast", &err);
    goto done;
  }
  if (nde_model_load_file(lv_path, &lv, &err) != NDE_OK) {
    rc = failed(lv_path, &err);
    goto done;
  }
  double theta[4];
  const char *pn[4] = {"alpha", "beta", "gamma", "delta"};
  const double pv[4] = {1.3, 0.9, 0.8, 1.8};
  for (int i = 0; i < 4; i++) nde_model_set_param(lv, nde_model_find_param(lv, pn[i]), pv[i], theta);
  double u_true[2];
  nde_model_initial_state(lv, u_true); /* the true initial state, declared in the model file */
  nde_sim_opts so = nde_sim_opts_default();
  if (nde_simulate(lv, theta, u_true, N, t, &so, Z, NULL, &ss, &err) != NDE_OK) {
    rc = failed("truth", &err);
    goto done;
  }
  double e2 = 0;
  for (int i = 0; i < 2 * N; i++) e2 += (Y[i] - Z[i]) * (Y[i] - Z[i]);
  const double rmse = sqrt(e2 / (2 * N));
  printf("forecast to t = 10: RMSE %.3e against the true model\n", rmse);

  const int ok = law_ok && fabs(beta - 0.9) < 0.018 && fabs(gamma - 0.8) < 0.016 && rmse < 0.1;
  printf("%s\n", ok ? "workflow: ok" : "workflow: the numbers are off");
  rc = ok ? 0 : 1;
done:
  nde_free(text);
  nde_discovery_destroy(&disc);
  nde_result_destroy(&refit);
  nde_result_destroy(&fit);
  nde_data_destroy(&data);
  nde_model_destroy(&found);
  nde_model_destroy(&lv);
  nde_model_destroy(&ude);
  return rc;
}
