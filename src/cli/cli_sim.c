/* Number formatting and command-line provenance shared by `nde simulate` and `nde inspect`. */
#include "cli_sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *nde_cli_num(double v, char buf[NDE_CLI_NUM_MAX]) {
  if (isnan(v)) return strcpy(buf, "nan");
  if (isinf(v)) return strcpy(buf, v > 0 ? "inf" : "-inf");
  /* Plain notation for ordinary magnitudes: 10, not 1e+01. */
  const int plain = fabs(v) >= 1e-4 && fabs(v) < 1e15;
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, NDE_CLI_NUM_MAX, "%.*g", prec, v);
    if (strtod(buf, NULL) == v && !(plain && strchr(buf, 'e'))) break;
  }
  return buf;
}

static int needs_quotes(const char *s) {
  if (!*s) return 1;
  for (; *s; s++)
    if (strchr(" \t\n'\"\\$`*?[]{}()<>|&;#~!", *s)) return 1;
  return 0;
}

char *nde_cli_command_line(int argc, char **argv) {
  size_t len = strlen("nde") + 1;
  for (int i = 0; i < argc; i++) len += 4 * strlen(argv[i]) + 3; /* ' -> '\'' at worst */
  char *out = malloc(len);
  if (!out) return NULL;
  char *p = out;
  p += sprintf(p, "nde");
  for (int i = 0; i < argc; i++) {
    *p++ = ' ';
    if (!needs_quotes(argv[i])) {
      p += sprintf(p, "%s", argv[i]);
      continue;
    }
    *p++ = '\'';
    for (const char *s = argv[i]; *s; s++) {
      if (*s == '\'') {
        memcpy(p, "'\\''", 4);
        p += 4;
      } else {
        *p++ = *s;
      }
    }
    *p++ = '\'';
  }
  *p = '\0';
  return out;
}
