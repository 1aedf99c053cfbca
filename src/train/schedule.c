/* Parsing an optimiser schedule: "shoot:adam:3000@0.05,adam:2000,lbfgs:1000". */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nde/train.h"

nde_status nde_fit_schedule_parse(const char *spec, double default_lr, nde_fit_phase *phases,
                                  int *n_phases, nde_error *err) {
  if (!spec || !phases || !n_phases) return nde__fail(err, NDE_ERR_ARG, "no schedule");
  *n_phases = 0;
  const char *p = spec;
  int k = 0;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char item[128];
    if (len == 0 || len >= sizeof item || k == NDE_MAX_PHASES) {
      return nde__fail(err, NDE_ERR_ARG, "schedule phase %d ('%.*s'): %s", k + 1, (int)(len < 60 ? len : 60),
                 p, k == NDE_MAX_PHASES ? "too many phases (at most 16)" : "empty or too long");
    }
    memcpy(item, p, len);
    item[len] = '\0';
    nde_fit_phase ph = {NDE_OPT_ADAM, 0, default_lr, 0};
    char *s = item;
    if (strncmp(s, "shoot:", 6) == 0) {
      ph.shooting = 1;
      s += 6;
    }
    char *colon = strchr(s, ':');
    if (colon) *colon = '\0';
    if (strcmp(s, "adam") == 0)
      ph.opt = NDE_OPT_ADAM;
    else if (strcmp(s, "lbfgs") == 0)
      ph.opt = NDE_OPT_LBFGS;
    else {
      return nde__fail(err, NDE_ERR_ARG,
                 "schedule phase %d ('%s'): unknown optimiser '%s' (expected adam or lbfgs, as "
                 "in shoot:adam:3000@0.05,adam:2000,lbfgs:1000)",
                 k + 1, item, s);
    }
    if (!colon) {
      return nde__fail(err, NDE_ERR_ARG, "schedule phase %d: missing iteration count (expected %s:N)", k + 1,
                 s);
    }
    char *num = colon + 1, *q;
    errno = 0;
    long it = strtol(num, &q, 10);
    if (q == num || it < 0 || errno || (*q && *q != '@')) {
      return nde__fail(err, NDE_ERR_ARG,
                 "schedule phase %d: bad iteration count '%s' (expected a whole number >= 0)",
                 k + 1, num);
    }
    ph.iters = it;
    if (*q == '@') {
      char *r;
      errno = 0;
      double lr = strtod(q + 1, &r);
      if (r == q + 1 || *r || errno || !(lr > 0) || !isfinite(lr)) {
        return nde__fail(err, NDE_ERR_ARG,
                   "schedule phase %d: bad learning rate '%s' (expected a finite number > 0)",
                   k + 1, q + 1);
      }
      ph.lr = lr;
    }
    phases[k++] = ph;
    p = end ? end + 1 : p + len;
    /* A trailing ',' is an empty last phase, as ",," is an empty one inside (it was dropped). */
    if (end && !*p)
      return nde__fail(err, NDE_ERR_ARG, "schedule phase %d (''): empty or too long", k + 1);
  }
  if (k == 0) {
    return nde__fail(err, NDE_ERR_ARG, "empty schedule (expected e.g. adam:5000,lbfgs:1000)");
  }
  *n_phases = k;
  return NDE_OK;
}
