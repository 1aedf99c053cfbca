/* Communicators: this process alone is rank 0 of 1 whatever the build; without an MPI launcher
 * AUTO does not start MPI; a build without MPI refuses WORLD, and refuses AUTO in a process that a
 * launcher started as one of several (each would fit alone and write the same file). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nde/train.h"

static void this_process_alone_is_rank_0_of_1(void **state) {
  (void)state;
  nde_comm *c = NULL;
  assert_int_equal(nde_comm_create(NDE_COMM_SELF, &c, NULL), NDE_OK);
  assert_int_equal(nde_comm_rank(c), 0);
  assert_int_equal(nde_comm_size(c), 1);
  assert_int_equal(nde_comm_local_size(c), 1);
  assert_int_equal(nde_comm_default_threads(c), nde_cpu_count());
  double secs;
  long calls;
  nde_comm_stats(c, &secs, &calls);
  assert_true(secs == 0.0 && calls == 0);
  nde_comm_destroy(&c);
  assert_null(c);
  assert_int_equal(nde_comm_size(NULL), 1);
  assert_int_equal(nde_comm_create((nde_comm_kind)7, &c, NULL), NDE_ERR_ARG);
}

static void auto_without_a_launcher_is_this_process(void **state) {
  (void)state;
  unsetenv("OMPI_COMM_WORLD_SIZE");
  unsetenv("PMI_SIZE");
  unsetenv("PMIX_RANK");
  nde_comm *c = NULL;
  assert_int_equal(nde_comm_create(NDE_COMM_AUTO, &c, NULL), NDE_OK);
  assert_int_equal(nde_comm_size(c), 1);
  nde_comm_destroy(&c);
}

static void a_build_without_mpi_refuses_to_be_one_of_several(void **state) {
  (void)state;
  if (nde_mpi_available()) {
    print_message("built with MPI: nothing to refuse\n");
    return;
  }
  nde_comm *c = NULL;
  nde_error err;
  assert_int_equal(nde_comm_create(NDE_COMM_WORLD, &c, &err), NDE_ERR_UNSUPPORTED);
  assert_null(c);
  setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
  assert_int_equal(nde_comm_create(NDE_COMM_AUTO, &c, &err), NDE_ERR_UNSUPPORTED);
  print_message("%s\n", err.msg);
  assert_non_null(strstr(err.msg, "one of 3 processes"));
  unsetenv("OMPI_COMM_WORLD_SIZE");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(this_process_alone_is_rank_0_of_1),
      cmocka_unit_test(auto_without_a_launcher_is_this_process),
      cmocka_unit_test(a_build_without_mpi_refuses_to_be_one_of_several),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
