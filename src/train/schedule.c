/* Parsing an optimiser schedule: "shoot:adam:3000@0.05,adam:2000,lbfgs:1000". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nde/train.h"

nde_status nde_fit_schedule_parse(const char *spec, double default_lr, nde_fit_phase *phases,
                                  int *n_phases, char *err, size_t err_len) {
  if (!spec || !phases || !n_phases) return NDE_ERR_ARG;
  *n_phases = 0;
  const char *p = spec;
  int k = 0;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char item[128];
    if (len == 0 || len >= sizeof item || k == NDE_MAX_PHASES) {
      if (err)
        snprintf(err, err_len, "schedule phase %d ('%.*s'): %s", k + 1, (int)(len < 60 ? len : 60),
                 p, k == NDE_MAX_PHASES ? "too many phases (at most 16)" : "empty or too long");
      return NDE_ERR_ARG;
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
      if (err)
        snprintf(err, err_len,
                 "schedule phase %d ('%s'): unknown optimiser '%s' (expected adam or lbfgs, as "
                 "in shoot:adam:3000@0.05,adam:2000,lbfgs:1000)",
                 k + 1, item, s);
      return NDE_ERR_ARG;
    }
    if (!colon) {
      if (err)
        snprintf(err, err_len, "schedule phase %d: missing iteration count (expected %s:N)", k + 1,
                 s);
      return NDE_ERR_ARG;
    }
    char *num = colon + 1, *q;
    errno = 0;
    long it = strtol(num, &q, 10);
    if (q == num || it < 0 || errno || (*q && *q != '@')) {
      if (err)
        snprintf(err, err_len,
                 "schedule phase %d: bad iteration count '%s' (expected a whole number >= 0)",
                 k + 1, num);
      return NDE_ERR_ARG;
    }
    ph.iters = it;
    if (*q == '@') {
      char *r;
      errno = 0;
      double lr = strtod(q + 1, &r);
      if (r == q + 1 || *r || errno || !(lr > 0)) {
        if (err)
          snprintf(err, err_len,
                   "schedule phase %d: bad learning rate '%s' (expected a number > 0)", k + 1,
                   q + 1);
        return NDE_ERR_ARG;
      }
      ph.lr = lr;
    }
    phases[k++] = ph;
    p = end ? end + 1 : p + len;
  }
  if (k == 0) {
    if (err) snprintf(err, err_len, "empty schedule (expected e.g. adam:5000,lbfgs:1000)");
    return NDE_ERR_ARG;
  }
  *n_phases = k;
  return NDE_OK;
}
