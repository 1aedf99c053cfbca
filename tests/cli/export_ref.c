/* Reference values for the export test: nde's own f of a result file's model at the states read
 * from stdin (lines "t u_1 ... u_n"), printed as "%.17g" one row per line, so that the shell test
 * can compare them with the exported standalone C.
 * usage: export_ref FIT.h5 < states */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nde/data.h"
#include "nde/model.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: export_ref FIT.h5 < states\n");
    return 2;
  }
  nde_reader *r = NULL;
  char *src = NULL;
  if (nde_reader_open(argv[1], &r, NULL) != NDE_OK ||
      nde_reader_get_string(r, "/model/source", &src) != NDE_OK) {
    fprintf(stderr, "export_ref: cannot read %s\n", argv[1]);
    return 2;
  }
  nde_model *m = NULL;
  if (nde_model_load_string(src, strlen(src), "fit", &m, NULL) != NDE_OK) return 2;
  const size_t nt = nde_model_n_theta(m);
  const int n = nde_model_state_dim(m);
  double *theta = calloc(nt + 1, sizeof *theta), *u = calloc((size_t)n, sizeof *u),
         *du = calloc((size_t)n, sizeof *du);
  if (nde_reader_get_doubles(r, "/params/theta", nt, theta) != NDE_OK) return 2;
  nde_rhs *rhs = NULL;
  if (nde_model_create_rhs(m, 1, &rhs, NULL) != NDE_OK) return 2;
  double t;
  while (scanf("%lf", &t) == 1) {
    for (int j = 0; j < n; j++)
      if (scanf("%lf", &u[j]) != 1) return 2;
    int rc = nde_rhs_f(rhs, t, 1, u, theta, du, NULL);
    for (int j = 0; j < n; j++) printf("%.17g%s", du[j], j + 1 < n ? " " : "");
    printf(" %d\n", rc);
  }
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
  nde_reader_destroy(&r);
  free(src);
  free(theta);
  free(u);
  free(du);
  return 0;
}
