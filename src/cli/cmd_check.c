/* nde check MODEL.nde: compile a model and print what it declares (states with initial
 * values, parameters with values and flags and where theta keeps them, per-series ones in
 * their series' blocks, nets with shapes, measured inputs, constants and observables), or its
 * errors with exit code 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_summary(const nde_model *m) {
  char b[NDE_NUM_MAX];
  printf("%s: ok\n", nde_model_filename(m));
  int ns = nde_model_n_states(m);
  printf("states (%d, %d component%s):\n", ns, nde_model_state_dim(m),
         nde_model_state_dim(m) == 1 ? "" : "s");
  for (int i = 0; i < ns; i++) {
    nde_model_state_info s;
    nde_model_get_state(m, i, &s);
    if (s.is_vector)
      printf("  %s[%d]", s.name, s.size);
    else
      printf("  %s", s.name);
    if (s.has_initial) {
      printf(" = ");
      if (s.is_vector) printf("[");
      for (int k = 0; k < s.size; k++) printf("%s%s", k ? ", " : "", nde_num_str(s.initial[k], b));
      if (s.is_vector) printf("]");
    } else {
      printf("  (no initial value)");
    }
    printf("\n");
  }
  int np = nde_model_n_params(m);
  printf("parameters (%d):\n", np);
  for (int i = 0; i < np; i++) {
    nde_model_param_info p;
    nde_model_get_param(m, i, &p);
    printf("  %s = %s", p.name, nde_num_str(p.value, b));
    if (!p.learnable) printf("  fixed");
    if (p.positive) printf("  positive");
    if (p.bounded) printf("  in [%s, ", nde_num_str(p.lo, b));
    if (p.bounded) printf("%s]", nde_num_str(p.hi, b));
    const char *tr = p.transform == NDE_TRANSFORM_LOG     ? " = log(value)"
                     : p.transform == NDE_TRANSFORM_LOGIT ? " = logit((value - lo) / (hi - lo))"
                                                          : "";
    if (p.per_series)
      printf("  per series: theta[%zu + s*%d + %zu]%s for series s", nde_model_n_theta(m),
             nde_model_n_series_params(m), p.offset, tr);
    else if (p.learnable)
      printf("  theta[%zu]%s", p.offset, tr);
    printf("\n");
  }
  int nn = nde_model_n_nets(m);
  printf("nets (%d):\n", nn);
  for (int i = 0; i < nn; i++) {
    nde_model_net_info n;
    nde_model_get_net(m, i, &n);
    printf("  %s : %d", n.name, nde_net_width(n.net, 0));
    for (int l = 0; l < nde_net_n_layers(n.net); l++) {
      printf(" -> %d", nde_net_width(n.net, l + 1));
      if (nde_net_act(n.net, l) != NDE_ACT_IDENTITY) printf(" %s", nde_act_name(nde_net_act(n.net, l)));
    }
    const char *init = n.init == NDE_INIT_HE ? "he" : n.init == NDE_INIT_NORMAL ? "normal" : "glorot";
    printf("  (%zu parameters, theta[%zu..%zu], init %s", n.n_params, n.offset,
           n.offset + n.n_params - 1, init);
    if (n.init == NDE_INIT_NORMAL) printf("(%s)", nde_num_str(n.init_sigma, b));
    printf(")\n");
  }
  int ni = nde_model_n_inputs(m);
  if (ni > 0) {
    static const char *const interp[] = {"linear", "cubic", "step"};
    printf("inputs (%d, given per series with the data):\n", ni);
    for (int i = 0; i < ni; i++) {
      nde_model_input_info in;
      nde_model_get_input(m, i, &in);
      printf("  %s  %s%s\n", in.name, interp[in.interp], in.hold ? ", hold" : "");
    }
  }
  int nc = nde_model_n_consts(m);
  if (nc > 0) {
    printf("constants (%d):\n", nc);
    for (int i = 0; i < nc; i++) {
      nde_model_const_info c;
      nde_model_get_const(m, i, &c);
      if (c.from_data)
        printf("  %s  from data (one value per series)\n", c.name);
      else
        printf("  %s = %s\n", c.name, nde_num_str(c.value, b));
    }
  }
  int no = nde_model_n_observables(m);
  if (no > 0) {
    printf("observables (%d):\n", no);
    for (int i = 0; i < no; i++) printf("  %s\n", nde_model_observable_name(m, i));
  }
  if (nde_model_n_series_params(m) > 0)
    printf("learnable parameters: %zu, and %d per series\n", nde_model_n_theta(m),
           nde_model_n_series_params(m));
  else
    printf("learnable parameters: %zu\n", nde_model_n_theta(m));
}

int nde_cmd_check(int argc, char **argv) {
  const char *path = NULL;
  int quiet = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      printf("usage: nde check [--quiet] MODEL.nde\n"
             "Compile MODEL.nde and print its states, parameters, nets, measured inputs,\n"
             "constants, observables and the number of learnable parameters; exit 2 with the\n"
             "errors when the file is wrong.\n");
      return NDE_EXIT_OK;
    }
    if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
      quiet = 1;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      nde_cli_error("check: unknown option '%s' (expected --quiet or a model file)", argv[i]);
      return NDE_EXIT_INPUT;
    } else if (path) {
      nde_cli_error("check: more than one model file given ('%s' and '%s')", path, argv[i]);
      return NDE_EXIT_INPUT;
    } else {
      path = argv[i];
    }
  }
  if (!path) {
    nde_cli_error("check: no model file given (usage: nde check MODEL.nde)");
    return NDE_EXIT_INPUT;
  }
  nde_model *m = NULL;
  nde_status st = nde_model_load_file(path, &m, NULL);
  int code;
  if (st != NDE_OK) {
    code = nde_cli_report_model(m, st);
  } else {
    if (!quiet) print_summary(m);
    code = NDE_EXIT_OK;
  }
  nde_model_destroy(&m);
  return code;
}
