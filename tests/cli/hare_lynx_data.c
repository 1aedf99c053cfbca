/* Writes the Hudson's Bay Company hare and lynx pelt counts 1900-1920 (thousands; Odum 1953,
 * Fundamentals of Ecology, after MacLulich 1937 and Elton & Nicholson 1942, as used by the Stan
 * case study of Carpenter 2018) as an nde data file, t in years from 1900, states hare and lynx.
 *   hare_lynx_data OUT.h5 */
#include <stdio.h>

#include "nde/data.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: hare_lynx_data OUT.h5\n");
    return 2;
  }
  static const double hare[21] = {30.0, 47.2, 70.2, 77.4, 36.3, 20.6, 18.1, 21.4, 22.0, 25.4, 27.1,
                                  40.3, 57.0, 76.6, 52.3, 19.5, 11.2, 7.6,  14.6, 16.2, 24.7};
  static const double lynx[21] = {4.0, 6.1,  9.8,  35.2, 59.4, 41.7, 19.0, 13.0, 8.3, 9.1, 7.4,
                                  8.0, 12.3, 19.5, 45.7, 51.1, 29.7, 15.8, 9.7, 10.1, 8.6};
  double t[21], y[42];
  for (int k = 0; k < 21; k++) {
    t[k] = k;
    y[2 * k] = hare[k];
    y[2 * k + 1] = lynx[k];
  }
  const char *names[2] = {"hare", "lynx"};
  nde_series s = {21, 2, t, y, names, NULL};
  nde_writer *w = NULL;
  nde_error err;
  if (nde_writer_create(argv[1], &w, &err) != NDE_OK) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  if (nde_writer_put_series(w, "/", &s) != NDE_OK || nde_writer_commit(w) != NDE_OK) {
    fprintf(stderr, "%s\n", nde_writer_errmsg(w));
    nde_writer_destroy(&w);
    return 1;
  }
  nde_writer_destroy(&w);
  return 0;
}
