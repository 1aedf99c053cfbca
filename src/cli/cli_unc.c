/* Standard errors, profiles and ensembles on the command line: shared options, running with
 * progress, and the printed tables (issue 12). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_unc.h"

void nde_cli_unc_init(nde_cli_unc *u) {
  memset(u, 0, sizeof *u);
  u->noise = "per-state";
  u->points = nde_profile_opts_default().points;
  u->level = nde_unc_opts_default().level;
}

void nde_cli_unc_args(nde_arg *rows, nde_cli_unc *u) {
  const nde_arg r[NDE_CLI_N_UNC_ARGS] = {
      NDE_FLAG("--uncertainty", &u->on,
               "standard errors of the parameters (Gauss-Newton covariance; networks excluded), "
               "written into the result"),
      NDE_STR("--noise-model", &u->noise, "per-state|pooled|known",
              "the noise of the standard errors: estimated from the residuals (one level per "
              "state, or one pooled level with the fit's state weights), or known (--noise-std "
              "or the data's noise_std)"),
      NDE_STR("--profile", &u->profile, "NAME[,NAME]",
              "profile likelihood intervals of these parameters (implies --uncertainty)"),
      NDE_NUM("--profile-points", NDE_ARG_INT, &u->points, "N",
              "grid points on each side of a profile (the grid is extended where needed)", 1,
              10000, 0),
      NDE_NUM("--level", NDE_ARG_DOUBLE, &u->level, "L", "coverage of the intervals", 0, 1,
              NDE_ARG_GT | NDE_ARG_LT),
      NDE_FLAG("--uncertainty-nets", &u->nets,
               "include the network weights among the coordinates (they are rarely "
               "identifiable)"),
      NDE_FLAG("--finite-differences", &u->fd,
               "the residual Jacobian by central differences instead of sensitivities"),
      NDE_NUM("--jobs", NDE_ARG_INT, &u->jobs, "N",
              "ensemble members or profile points run at once (0: every core)", 0, 4096, 0),
  };
  memcpy(rows, r, sizeof r);
}

int nde_cli_unc_wanted(const nde_cli_unc *u) { return u->on || u->profile; }

static int noise_model(const char *s, nde_noise_model *m) {
  if (!strcmp(s, "per-state")) *m = NDE_NOISE_PER_STATE;
  else if (!strcmp(s, "pooled")) *m = NDE_NOISE_POOLED;
  else if (!strcmp(s, "known")) *m = NDE_NOISE_KNOWN;
  else return -1;
  return 0;
}

int nde_cli_unc_check(const nde_cli_unc *u) {
  nde_noise_model m;
  if (noise_model(u->noise, &m)) {
    nde_cli_error("--noise-model: expected per-state, pooled or known, got '%s'", u->noise);
    return NDE_EXIT_INPUT;
  }
  return 0;
}

typedef struct prog {
  nde_cli_progress p;
  const char *what;
  volatile const sig_atomic_t *sig;
  double t_last;
  int shown; /* the count last printed */
} prog;

static int on_points(void *ctx, int done, int total) {
  prog *P = ctx;
  const double now = nde_cli_now();
  if (done != P->shown &&
      (P->p.tty ? now - P->t_last > 0.1 || done == total : now - P->t_last > 2 || done == total)) {
    nde_cli_progress_line(&P->p, "%s: %d of %d done  %.0f s", P->what, done, total,
                          now - P->p.t_start);
    P->t_last = now;
    P->shown = done;
  }
  return P->sig && *P->sig;
}

int nde_cli_unc_run(nde_result *r, const nde_data *data, const nde_cli_unc *u,
                    const double *noise_sd, int quiet,
                    volatile const sig_atomic_t *signal_flag) {
  nde_unc_opts o = nde_unc_opts_default();
  noise_model(u->noise, &o.noise);
  o.level = u->level;
  o.include_nets = u->nets;
  o.finite_differences = u->fd;
  o.noise_std = noise_sd;
  nde_error err;
  nde_status st = nde_result_compute_uncertainty(r, data, &o, &err);
  if (st != NDE_OK) {
    nde_cli_error("standard errors: %s", err.msg);
    return nde_cli_exit_code(st);
  }
  /* Differences of a CVODE solve carry the jitter of its iterations, which stop at a tolerance
   * and reuse Jacobians, so its output is not smooth in theta at the scale of rtol: on a stiff
   * Michaelis-Menten fit at the default rtol 1e-6, cvode-adams's differences made standard errors
   * 22x too small (at rtol 1e-10 cvode-bdf's agree with the sensitivities to 0.2 %; dopri5's
   * agree at 1e-6 too, there and on the LV fit). */
  const nde_solver_opts *so = &nde_result_settings(r)->solver;
  const nde_solver_method_info *sm = nde_solver_method_find(so->method);
  if (u->fd && !quiet && sm && sm->adaptive && sm->variable_order &&
      so->rtol > 1e-3 * o.fd_step)
    fprintf(stderr,
            "nde: note: --finite-differences on a %s solve at rtol %g: differences of "
            "relative step %g are not much larger than the solve's own error, so these standard "
            "errors can be far off; drop --finite-differences (the sensitivities "
            "follow the solve), or refit with --rtol %g or below\n",
            sm->name, so->rtol, o.fd_step, 1e-4 * o.fd_step);
  if (!u->profile) return 0;
  prog P;
  memset(&P, 0, sizeof P);
  nde_cli_progress_init(&P.p, quiet);
  P.what = "profile points";
  P.sig = signal_flag;
  nde_profile_opts po = nde_profile_opts_default();
  po.points = u->points;
  po.threads = u->jobs;
  po.progress = on_points;
  po.progress_ctx = &P;
  int stopped = 0;
  st = nde_result_profile(r, data, u->profile, NULL, &po, &stopped, &err);
  nde_cli_progress_end(&P.p);
  if (st != NDE_OK) {
    nde_cli_error("--profile: %s", err.msg);
    return nde_cli_exit_code(st);
  }
  if (stopped) return signal_flag && *signal_flag == SIGTERM ? 143 : 130;
  return 0;
}

/* The uncertainty entry of parameter i in series s, or NULL. */
static const nde_unc_entry *entry_of(const nde_uncertainty *u, int i, int s) {
  for (int j = 0; u && j < u->n; j++) {
    const nde_unc_entry *e = &u->entry[j];
    if (e->param == i && ((e->kind == NDE_UNC_PARAM && s < 0) ||
                          (e->kind == NDE_UNC_SERIES_PARAM && e->series == s)))
      return e;
  }
  return NULL;
}

static void num(double x, char *b) {
  if (isinf(x)) snprintf(b, NDE_NUM_MAX, "%sinf", x < 0 ? "-" : "");
  else snprintf(b, NDE_NUM_MAX, "%.6g", x);
}

void nde_cli_param_unc(const nde_result *r, int i, int s, char *buf, size_t len) {
  buf[0] = '\0';
  const nde_uncertainty *u = nde_result_get_uncertainty(r);
  const nde_unc_entry *e = entry_of(u, i, s);
  char a[NDE_NUM_MAX], b[NDE_NUM_MAX], c[NDE_NUM_MAX], d[NDE_NUM_MAX], se[NDE_NUM_MAX];
  if (e) {
    if (!e->identifiable) {
      snprintf(buf, len, "  +- inf (not identifiable)");
      return;
    }
    num(e->se, se);
    num(e->lower, a);
    num(e->upper, b);
    const int pct = (int)lround(100 * u->level);
    if (e->transform == NDE_TRANSFORM_NONE) {
      snprintf(buf, len, "  +- %s  %d%% [%s, %s]", se, pct, a, b);
    } else {
      num(e->lower_sym, c);
      num(e->upper_sym, d);
      snprintf(buf, len, "  +- %s  %d%% [%s, %s] (%s scale; symmetric [%s, %s])", se, pct, a, b,
               e->transform == NDE_TRANSFORM_LOG ? "log" : "logit", c, d);
    }
    return;
  }
  if (nde_result_n_members(r) > 0) {
    nde_spread sp;
    if (nde_result_param_spread(r, i, s < 0 ? 0 : s, 0.95, &sp) != NDE_OK || sp.n == 0) return;
    num(sp.sd, se);
    num(sp.lower, a);
    num(sp.upper, b);
    num(sp.median, c);
    snprintf(buf, len, "  members: median %s, sd %s, 95%% range [%s, %s]", c, se, a, b);
  }
}

void nde_cli_print_uncertainty(const nde_result *r) {
  const nde_uncertainty *u = nde_result_get_uncertainty(r);
  if (!u) return;
  const nde_model *m = nde_result_model(r);
  char b[NDE_NUM_MAX];
  printf("standard errors (Gauss-Newton covariance from %s, %ld residuals, %d coordinates):\n",
         u->finite_differences ? "central differences" : "forward sensitivities", u->n_residuals,
         u->n);
  if (u->noise == NDE_NOISE_KNOWN) {
    printf("  noise known:");
  } else if (u->noise == NDE_NOISE_POOLED) {
    num(u->sigma, b);
    printf("  noise estimated from the residuals, pooled (s = %s, %ld degrees of freedom):", b,
           u->dof);
  } else {
    printf("  noise estimated from the residuals of each %s (%ld degrees of freedom):",
           u->n_sigma > nde_model_state_dim(m) ? "data column" : "state", u->dof);
  }
  for (int j = 0; j < u->n_sigma; j++) {
    if (isnan(u->sigma_state[j])) continue; /* a column without residuals */
    num(u->sigma_state[j], b);
    printf(" %s %s", u->sigma_names[j], b);
  }
  printf("\n  intervals at %g%%: %s quantile %.4g; positive parameters are fitted as logs, so their "
         "interval is asymmetric (the symmetric one is the delta method's)\n",
         100 * u->level, u->noise == NDE_NOISE_KNOWN ? "normal" : "t", u->quantile);
  int nets = 0, has_net_entry = 0;
  for (int j = 0; j < u->n; j++) has_net_entry |= u->entry[j].kind == NDE_UNC_NET_WEIGHT;
  nets = nde_model_n_nets(m) > 0 && !has_net_entry;
  if (nets)
    printf("  conditional on the trained network weights (not identifiable themselves; "
           "--uncertainty-nets includes them)\n");
  if (u->u0_from_data)
    printf("  conditional on the initial states read off the data's first rows (too small when "
           "those values are noisy; --learn-u0 includes them)\n");
  int any_u0 = 0;
  for (int j = 0; j < u->n; j++) any_u0 |= u->entry[j].kind == NDE_UNC_INITIAL_STATE;
  if (any_u0) {
    printf("  learned initial states:\n");
    for (int j = 0; j < u->n; j++) {
      const nde_unc_entry *e = &u->entry[j];
      if (e->kind != NDE_UNC_INITIAL_STATE) continue;
      char se[NDE_NUM_MAX], lo[NDE_NUM_MAX], hi[NDE_NUM_MAX];
      num(e->se, se);
      num(e->lower, lo);
      num(e->upper, hi);
      printf("    %-16s = %.10g  +- %s  [%s, %s]\n", e->name, e->value, se, lo, hi);
    }
  }
  if (u->n <= 8 && u->n > 1) {
    printf("  correlations:\n    %-12s", "");
    for (int j = 0; j < u->n; j++) printf(" %9.9s", u->entry[j].name);
    printf("\n");
    for (int i = 0; i < u->n; i++) {
      printf("    %-12.12s", u->entry[i].name);
      for (int j = 0; j < u->n; j++) printf(" %9.3f", u->corr[(size_t)i * u->n + (size_t)j]);
      printf("\n");
    }
  } else if (u->n > 8) {
    /* The strongest correlations only. */
    double best = 0;
    int bi = -1, bj = -1;
    for (int i = 0; i < u->n; i++)
      for (int j = 0; j < i; j++) {
        const double c = fabs(u->corr[(size_t)i * u->n + (size_t)j]);
        if (c > best) {
          best = c;
          bi = i;
          bj = j;
        }
      }
    if (bi >= 0)
      printf("  strongest correlation: %s and %s, %.3f\n", u->entry[bi].name, u->entry[bj].name,
             u->corr[(size_t)bi * u->n + (size_t)bj]);
  }
  if (*u->warning) printf("warning: %s\n", u->warning);
  for (int k = 0; k < nde_result_n_profiles(r); k++) {
    nde_profile p;
    nde_result_get_profile(r, k, &p);
    const nde_unc_entry *e = &u->entry[p.entry];
    char lo[NDE_NUM_MAX], hi[NDE_NUM_MAX], clo[NDE_NUM_MAX], chi[NDE_NUM_MAX];
    num(p.lower, lo);
    num(p.upper, hi);
    num(e->lower, clo);
    num(e->upper, chi);
    printf("profile %s: %g%% likelihood-ratio interval [%s%s, %s%s] (curvature [%s, %s]); %d "
           "points\n",
           p.name, 100 * u->level, p.lower_found ? "" : "not bounded below: ", lo,
           p.upper_found ? "" : "not bounded above: ", hi, clo, chi, p.n);
  }
}

void nde_cli_print_ensemble(const nde_result *r) {
  const int K = nde_result_n_members(r);
  if (K == 0) return;
  int good = 0;
  uint64_t s0 = 0;
  for (int k = 0; k < K; k++) {
    nde_member_info mi;
    nde_result_get_member(r, k, &mi);
    good += mi.status == NDE_FIT_DONE || mi.status == NDE_FIT_EARLY_STOP;
    if (k == 0) s0 = mi.seed;
  }
  printf("ensemble: %d members (seeds %llu to %llu), %d ended well\n", K,
         (unsigned long long)s0, (unsigned long long)(s0 + (uint64_t)K - 1), good);
  for (int k = 0; k < K && k < 50; k++) {
    nde_member_info mi;
    nde_result_get_member(r, k, &mi);
    printf("  member %2d  seed %-6llu %-11s loss %.6e  %ld iterations\n", k + 1,
           (unsigned long long)mi.seed, nde_fit_status_str(mi.status), mi.loss, mi.iterations);
  }
  if (K > 50) printf("  ... (%d more)\n", K - 50);
}
