/* nde discover FIT.h5: read the missing physics off the trained networks of a result file as
 * equations (nde_discover: samples along the fitted trajectories, STLSQ candidates, selection by
 * the information criterion of trajectory predictions), print the candidates and the chosen
 * equations, and write MODEL_discovered.nde with the coefficients as learnable parameters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define USAGE "nde discover FIT.h5 [options]"

/* Stability selection on an ensemble result: per output, every term some member chose, with its
 * frequency, whether it is in the final law and its coefficients. */
static void print_stability(const nde_stability *s, double inclusion) {
  const nde_discovery *d = nde_stability_discovery(s);
  const int K = nde_stability_n_members(s);
  for (int q = 0; q < nde_discovery_n_outputs(d); q++) {
    nde_discovery_output o;
    nde_discovery_get_output(d, q, &o);
    printf("\n%s[%d](%.*s): how often each term is chosen over %d members (final law: "
           "frequency >= %g)\n",
           o.net, o.component + 1, o.args_len, o.args, K, inclusion);
    printf("  %-16s %9s  %-5s %12s %12s  %s\n", "term", "frequency", "final", "coefficient",
           "median", "95% interval over members");
    /* By frequency, highest first; terms no member chose are left out. */
    const int p = nde_discovery_n_terms(d);
    int *done = calloc((size_t)p + 1, sizeof *done);
    for (int shown = 0; done && shown < p; shown++) {
      int best = -1;
      double bf = 0;
      for (int j = 0; j < p; j++) {
        nde_stable_term t;
        nde_stability_get(s, q, j, &t);
        if (!done[j] && t.frequency > bf) {
          bf = t.frequency;
          best = j;
        }
      }
      if (best < 0) break;
      done[best] = 1;
      nde_stable_term t;
      nde_stability_get(s, q, best, &t);
      printf("  %-16s %9.2f  %-5s", nde_discovery_term(d, best), t.frequency,
             t.selected ? "yes" : "no");
      if (t.selected)
        printf(" %12.6g %12.6g  [%.6g, %.6g] (%d members)", t.coef, t.median, t.lower, t.upper,
               t.n);
      printf("\n");
    }
    free(done);
  }
}

static void print_table(const nde_discovery *d, int q, nde_criterion crit) {
  nde_discovery_output o;
  nde_discovery_get_output(d, q, &o);
  const int p = nde_discovery_n_terms(d);
  int allowed = 0;
  for (int j = 0; j < p; j++) allowed += nde_discovery_term_allowed(d, q, j);
  printf("\n%s[%d](%.*s), line %d: the candidate models (Pareto table)", o.net,
         o.component + 1, o.args_len, o.args, o.line);
  if (allowed < p)
    printf(" over %d of the %d terms: those in the variables its arguments depend on", allowed, p);
  printf("\n");
  printf("  %5s %9s %7s %11s %11s %10s  %s\n", "terms", "threshold", "ridge", "net.error",
         "traj.rms", crit == NDE_CRIT_AIC ? "AIC" : "BIC", "model");
  for (int kk = 0; kk <= nde_discovery_n_terms(d); kk++)
    for (int e = 0; e < o.n_candidates; e++) {
      nde_discovery_candidate c;
      nde_discovery_get_candidate(d, q, e, &c);
      if (c.n_terms != kk) continue;
      printf("  %5d %9.3g %7.0e %11.3e %11.3e %10.1f  %s", kk, c.threshold, c.ridge, c.rel_error,
             c.traj_rms, c.crit, e == o.chosen ? "<- " : "   ");
      if (kk <= 5) {
        char *eq = nde_discovery_equation(d, q, e, 1);
        printf("%s", eq ? eq : "?");
        nde_free(eq);
      } else {
        printf("(%d terms)", kk);
      }
      printf("\n");
    }
}

/* MODEL_discovered.nde next to FIT.h5, MODEL from the fitted model's file name. */
static char *default_out(const char *fit_path, const nde_model *m) {
  const char *mf = nde_model_filename(m), *base = strrchr(mf, '/');
  base = base ? base + 1 : mf;
  size_t bl = strlen(base);
  if (bl > 4 && !strcmp(base + bl - 4, ".nde")) bl -= 4;
  const char *slash = strrchr(fit_path, '/');
  nde_str s = NDE_STR_INIT;
  if (slash) nde_str_add(&s, fit_path, (size_t)(slash - fit_path + 1));
  nde_str_add(&s, base, bl);
  nde_str_adds(&s, "_discovered.nde");
  return nde_str_take(&s);
}

int nde_cmd_discover(int argc, char **argv) {
  nde_discover_opts o = nde_discover_opts_default();
  nde_stability_opts so = nde_stability_opts_default();
  const char *library = "poly:3", *terms = NULL, *out = NULL, *crit = "bic";
  int quiet = 0, no_stability = 0;
  nde_arg opts[] = {
      NDE_STR("--net", &o.nets, "NAME[,NAME]", "nets to explain (default: all)"),
      NDE_STR("--library", &library, "SPEC",
              "candidate terms: poly:D[,sin][,cos][,exp][,noconst]"),
      NDE_STR("--terms", &terms, "E1;E2", "extra terms, .nde expressions separated by ;"),
      NDE_NUM("--points", NDE_ARG_LONG, &o.points, "K", "samples along each fitted trajectory", 2,
              1e6, 0),
      NDE_NUM("--samples", NDE_ARG_LONG, &o.samples, "N",
              "extra samples uniform in the box around the trajectories", 0, 1e7, 0),
      NDE_NUM("--margin", NDE_ARG_DOUBLE, &o.margin, "F",
              "the box extends F times its width beyond the trajectories", 0, 1e6, 0),
      NDE_NUM("--seed", NDE_ARG_U64, &o.seed, "N", "seed of the box samples", 0,
              9007199254740992.0, 0),
      NDE_NUM("--threshold", NDE_ARG_DOUBLE, &o.threshold, "L",
              "one STLSQ threshold instead of the sweep (share of the output's RMS)", 0, 1e6,
              NDE_ARG_NODEFAULT),
      NDE_STR("--criterion", &crit, "bic|aic", "model selection over the sweep"),
      NDE_NUM("--ridge", NDE_ARG_DOUBLE, &o.ridge, "A", "ridge weight on normalised columns", 0,
              1e6, 0),
      NDE_STR("--out", &out, "MODEL.nde",
              "discovered model (also -o; default MODEL_discovered.nde next to FIT.h5)"),
      NDE_FLAG("--quiet", &quiet, "print only the equations"),
      NDE_NUM("--inclusion", NDE_ARG_DOUBLE, &so.inclusion, "F",
              "ensemble results: the final law keeps the terms chosen by at least this share of "
              "the members (stability selection)", 0, 1, NDE_ARG_GT),
      NDE_NUM("--jobs", NDE_ARG_INT, &so.threads, "N",
              "threads: members discovered at once (ensemble results), or of the sampling of "
              "one discovery (0: every core)", 0, 4096, 0),
      NDE_FLAG("--no-stability", &no_stability,
               "ensemble results: discover on the result's own fit only"),
  };
  const int n_opts = (int)(sizeof opts / sizeof *opts);
  const char *pos[1];
  int n_pos;
  int rc = nde_cli_parse(USAGE, argc, argv, opts, n_opts, pos, 1, 1, &n_pos);
  if (rc >= 0) return rc;
  if (!strcmp(crit, "bic")) o.criterion = NDE_CRIT_BIC;
  else if (!strcmp(crit, "aic")) o.criterion = NDE_CRIT_AIC;
  else {
    nde_cli_error("--criterion: expected bic or aic, got '%s'", crit);
    return NDE_EXIT_INPUT;
  }
  o.threads = so.threads;
  nde_error err;
  if (nde_library_opts_parse(library, &o.library, &err) != NDE_OK) {
    nde_cli_error("--library: %s", err.msg);
    return NDE_EXIT_INPUT;
  }
  nde_result *r = NULL;
  nde_discovery *d = NULL;
  char *text = NULL, *path = NULL;
  const char **user = NULL;
  nde_str ubuf = NDE_STR_INIT;
  if (terms) {
    /* Terms separated by ';' (copied into one buffer, split in place). */
    nde_str_adds(&ubuf, terms);
    user = calloc(strlen(terms) / 2 + 2, sizeof *user);
    if (ubuf.failed || !user) goto nomem;
    for (char *t = ubuf.data; t && *t;) {
      char *end = strchr(t, ';');
      if (end) *end = '\0';
      while (*t == ' ') t++;
      if (*t) user[o.library.n_user++] = t;
      t = end ? end + 1 : NULL;
    }
    o.library.user = user;
    if (o.library.n_user == 0) {
      nde_cli_error("--terms: expected .nde expressions separated by ';', got '%s'", terms);
      rc = NDE_EXIT_INPUT;
      goto done;
    }
  }
  nde_status st = nde_result_open(pos[0], &r, &err);
  if (st != NDE_OK) {
    rc = nde_cli_fail(&err, 1);
    goto done;
  }
  if (!quiet) nde_cli_note_unfinished(pos[0], r);
  const nde_model *m = nde_result_model(r);
  path = out ? NULL : default_out(pos[0], m);
  if (!out && !path) goto nomem;
  const char *inputs[] = {pos[0], NULL};
  if ((rc = nde_cli_check_output("--out", out ? out : path, inputs))) goto done;
  if (out && (nde_cli_ends_with(out, ".h5") || nde_cli_ends_with(out, ".hdf5") ||
              nde_cli_ends_with(out, ".csv"))) {
    nde_cli_error("--out: '%s': the discovered model is a model file (text), not data (expected "
                  "a name such as found.nde)", out);
    rc = NDE_EXIT_INPUT;
    goto done;
  }
  if (nde_result_n_members(r) < 2 && (nde_cli_opt(opts, n_opts, "--inclusion")->seen ||
                                       nde_cli_opt(opts, n_opts, "--no-stability")->seen)) {
    nde_cli_error("%s: --inclusion and --no-stability are for stability selection, which needs "
                  "an ensemble result (nde fit --ensemble K); this result holds %d members",
                  pos[0], nde_result_n_members(r));
    rc = NDE_EXIT_INPUT;
    goto done;
  }
  if (nde_result_n_members(r) >= 2 && !no_stability) {
    /* An ensemble: discovery on every member and stability selection. */
    so.discover = o;
    nde_stability *stab = NULL;
    if (!quiet)
      printf("nde discover: stability selection over the %d members of %s (%ld samples along "
             "each fitted series, candidate terms %s%s%s, %s); the final law keeps the terms "
             "chosen by at least %g of the members\n",
             nde_result_n_members(r), pos[0], o.points, library, terms ? "; " : "",
             terms ? terms : "",
             o.threshold >= 0 ? "fixed threshold" : "STLSQ sweep scored by trajectories",
             so.inclusion);
    st = nde_discover_stable(r, &so, &stab, NULL, &err);
    if (st != NDE_OK) {
      const char *opt = terms ? "--terms" : "--library";
      nde_cli_error("%s: %s%s%s", pos[0], strstr(err.msg, "net") && o.nets ? "--net: " : "",
                    st == NDE_ERR_PARSE || st == NDE_ERR_MODEL ? opt : "",
                    err.msg);
      rc = nde_cli_exit_code(st);
      goto done;
    }
    if (!quiet) print_stability(stab, so.inclusion);
    const nde_discovery *sd = nde_stability_discovery(stab);
    if (!quiet) printf("\nDiscovered equations (stable terms, coefficients refitted on the "
                       "result's own fit):\n");
    for (int q = 0; q < nde_discovery_n_outputs(sd); q++) {
      nde_discovery_output oi;
      nde_discovery_get_output(sd, q, &oi);
      char *eq = nde_stability_equation(stab, q, 1);
      printf("  %s[%d](%.*s) \xe2\x89\x88 %s\n", oi.net, oi.component + 1, oi.args_len, oi.args,
             eq ? eq : "?");
      nde_free(eq);
    }
    st = nde_stability_model_text(stab, &text, &err);
    nde_stability_destroy(&stab);
    if (st != NDE_OK) {
      rc = nde_cli_fail(&err, 0);
      goto done;
    }
    goto write;
  }
  st = nde_discovery_create(r, &o, &d, &err);
  if (st != NDE_OK) {
    /* Name the option the problem came from, if any: a net named by --net, a term of --terms
     * or of the library; not a model without networks. */
    const char *opt = NULL;
    if (o.nets && strstr(err.msg, "is not a net of the model")) opt = "--net";
    for (int i = 0; !opt && i < o.library.n_user; i++) {
      const size_t len = strlen(user[i]);
      const char *q = strchr(err.msg, '\'');
      if (q && !strncmp(q + 1, user[i], len) && q[len + 1] == '\'') opt = "--terms";
    }
    if (!opt && (!strncmp(err.msg, "expression '", 12) || !strncmp(err.msg, "term '", 6)))
      opt = "--library";
    nde_cli_error("%s: %s%s%s", pos[0], opt ? opt : "", opt ? ": " : "", err.msg);
    rc = nde_cli_exit_code(st);
    goto done;
  }
  if (!quiet)
    printf("nde discover: %zu samples (%ld along each of %d fitted series, %ld in the box), %d "
           "candidate terms (%s%s%s), %s\n",
           (size_t)o.points * (size_t)nde_result_n_series(r) + (size_t)o.samples, o.points,
           nde_result_n_series(r), o.samples, nde_discovery_n_terms(d), library,
           terms ? "; " : "", terms ? terms : "",
           o.threshold >= 0 ? "fixed threshold"
           : o.criterion == NDE_CRIT_AIC ? "STLSQ sweep, models scored by the AIC of their "
                                           "trajectories"
                                         : "STLSQ sweep, models scored by the BIC of their "
                                           "trajectories");
  if ((st = nde_discovery_select(d, &err)) != NDE_OK) {
    nde_cli_error("%s: %s", pos[0], err.msg);
    rc = nde_cli_exit_code(st);
    goto done;
  }
  const int n_out = nde_discovery_n_outputs(d);
  for (int q = 0; q < n_out && !quiet; q++) print_table(d, q, o.criterion);
  if (!quiet) printf("\nDiscovered equations:\n");
  for (int q = 0; q < n_out; q++) {
    nde_discovery_output oi;
    nde_discovery_get_output(d, q, &oi);
    char *eq = nde_discovery_equation(d, q, oi.chosen, 1);
    printf("  %s[%d](%.*s) \xe2\x89\x88 %s\n", oi.net, oi.component + 1, oi.args_len, oi.args,
           eq ? eq : "?");
    nde_free(eq);
  }
  if ((st = nde_discovery_model_text(d, &text, &err)) != NDE_OK) {
    rc = nde_cli_fail(&err, 0);
    goto done;
  }
write:;
  const char *dest = out ? out : path;
  if ((rc = nde_cli_write_text(dest, text, strlen(text)))) goto done;
  if (!quiet) printf("\nnde discover: wrote %s\n", dest);
  rc = 0;
  goto done;
nomem:
  nde_cli_error("out of memory");
  rc = NDE_EXIT_IO;
done:
  nde_free(text);
  nde_free(path);
  free(user);
  nde_str_release(&ubuf);
  nde_discovery_destroy(&d);
  nde_result_destroy(&r);
  return rc;
}
