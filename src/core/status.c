/* Status strings generated from NDE_STATUS_LIST, and the per-handle error buffer. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

const char *nde_status_str(nde_status s) {
  switch (s) {
#define NDE__STATUS_CASE(name, msg) \
  case name:                        \
    return msg;
    NDE_STATUS_LIST(NDE__STATUS_CASE)
#undef NDE__STATUS_CASE
    default:
      return "unknown status";
  }
}

nde_status nde__verrf(nde__err *e, nde_status status, const char *fmt, va_list ap) {
  if (e) {
    e->status = status;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  }
  return status;
}

nde_status nde__errf(nde__err *e, nde_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  nde__verrf(e, status, fmt, ap);
  va_end(ap);
  return status;
}

nde_status nde__fail(nde_error *out, nde_status status, const char *fmt, ...) {
  if (out) {
    va_list ap;
    va_start(ap, fmt);
    out->status = status;
    vsnprintf(out->msg, sizeof out->msg, fmt, ap);
    va_end(ap);
  }
  return status;
}

void nde__err_clear(nde__err *e) {
  if (e) {
    e->status = NDE_OK;
    e->msg[0] = '\0';
  }
}

void nde__err_export(const nde__err *e, nde_error *out) {
  if (!out) return;
  out->status = e ? e->status : NDE_ERR_ARG;
  snprintf(out->msg, sizeof out->msg, "%s", nde__err_msg(e));
}

const char *nde__err_msg(const nde__err *e) {
  if (!e) return nde_status_str(NDE_ERR_ARG);
  if (e->msg[0]) return e->msg;
  return nde_status_str(e->status);
}

const char *nde_version(void) { return NDE_VERSION_STRING; }
