/* The processes that evaluate a fit objective together: MPI_COMM_WORLD (a duplicate of it) when
 * nde is built with MPI and the process was started by an MPI launcher, else this process alone.
 * The fit objective needs three collectives (comm_internal.h): an integer maximum, an integer
 * sum and a broadcast; without MPI, or with one process, they do nothing.  Only the thread that
 * calls nde functions talks to MPI (MPI_THREAD_FUNNELED). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm_internal.h"

#ifdef NDE_HAVE_MPI
#include <mpi.h>
#endif

struct nde_comm {
  int rank, size, local_size;
  double seconds; /* in collectives */
  long calls;
#ifdef NDE_HAVE_MPI
  int mpi;        /* comm is a duplicate of MPI_COMM_WORLD */
  MPI_Comm comm;
#endif
};

#ifdef NDE_HAVE_MPI
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

int nde_mpi_available(void) {
#ifdef NDE_HAVE_MPI
  return 1;
#else
  return 0;
#endif
}

/* The number of processes an MPI launcher says it started (0: not started by one). */
static long launcher_size(void) {
  static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    const char *v = getenv(sizes[i]);
    if (v && *v) return strtol(v, NULL, 10);
  }
  const char *v = getenv("PMIX_RANK");
  return v && *v ? 1 : 0; /* PMIx alone does not say how many: at least this one */
}

#ifdef NDE_HAVE_MPI
/* MPI is initialised at most once per process, by the program or by nde; nde finalises what it
 * initialised when the process exits (MPI cannot be initialised again after MPI_Finalize, so a
 * later fit in the same process still finds it running). */
static pthread_once_t mpi_once = PTHREAD_ONCE_INIT;
static int mpi_init_rc = MPI_SUCCESS;

static void finalize_at_exit(void) {
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin) MPI_Finalize();
}

static void init_mpi(void) {
  int inited = 0;
  MPI_Initialized(&inited);
  if (inited) return;
  int provided;
  mpi_init_rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
  if (mpi_init_rc == MPI_SUCCESS) atexit(finalize_at_exit);
}

static nde_status mpi_fail(nde_comm *c, nde_error *err, const char *what, int rc) {
  char msg[MPI_MAX_ERROR_STRING + 1];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
  msg[len] = '\0';
  if (c && c->mpi) MPI_Comm_free(&c->comm);
  free(c);
  return nde__fail(err, NDE_ERR_IO, "%s failed: %s", what, len ? msg : "unknown MPI error");
}
#endif

nde_status nde_comm_create(nde_comm_kind kind, nde_comm **out, nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_comm_create: no output pointer");
  *out = NULL;
  if (kind != NDE_COMM_SELF && kind != NDE_COMM_AUTO && kind != NDE_COMM_WORLD)
    return nde__fail(err, NDE_ERR_ARG, "unknown communicator kind %d", (int)kind);
  const long launched = launcher_size();
#ifndef NDE_HAVE_MPI
  if (kind == NDE_COMM_WORLD)
    return nde__fail(err, NDE_ERR_UNSUPPORTED,
                     "nde was built without MPI (configure with -Dmpi=enabled and install "
                     "libopenmpi-dev)");
  if (kind == NDE_COMM_AUTO && launched > 1)
    return nde__fail(err, NDE_ERR_UNSUPPORTED,
                     "started by an MPI launcher as one of %ld processes, but nde was built "
                     "without MPI: each process would fit on its own (build with -Dmpi=enabled, "
                     "or run without mpirun)",
                     launched);
#endif
  nde_comm *c = calloc(1, sizeof *c);
  if (!c) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  c->rank = 0;
  c->size = c->local_size = 1;
#ifdef NDE_HAVE_MPI
  if (kind == NDE_COMM_WORLD || (kind == NDE_COMM_AUTO && launched > 0)) {
    pthread_once(&mpi_once, init_mpi);
    if (mpi_init_rc != MPI_SUCCESS) return mpi_fail(c, err, "MPI_Init_thread", mpi_init_rc);
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &c->comm);
    if (rc != MPI_SUCCESS) return mpi_fail(c, err, "MPI_Comm_dup", rc);
    c->mpi = 1;
    /* Errors of nde's collectives come back as statuses instead of aborting the job. */
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    MPI_Comm node;
    rc = MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node);
    if (rc != MPI_SUCCESS) return mpi_fail(c, err, "MPI_Comm_split_type", rc);
    MPI_Comm_size(node, &c->local_size);
    MPI_Comm_free(&node);
  }
#else
  (void)launched;
#endif
  *out = c;
  return NDE_OK;
}

void nde_comm_destroy(nde_comm **cp) {
  if (!cp || !*cp) return;
#ifdef NDE_HAVE_MPI
  nde_comm *c = *cp;
  int fin = 0;
  MPI_Finalized(&fin);
  if (c->mpi && !fin) MPI_Comm_free(&c->comm);
#endif
  free(*cp);
  *cp = NULL;
}

int nde_comm_rank(const nde_comm *c) { return c ? c->rank : 0; }
int nde_comm_size(const nde_comm *c) { return c ? c->size : 1; }
int nde_comm_local_size(const nde_comm *c) { return c ? c->local_size : 1; }

void nde_comm_stats(const nde_comm *c, double *seconds, long *calls) {
  if (seconds) *seconds = c ? c->seconds : 0.0;
  if (calls) *calls = c ? c->calls : 0;
}

#ifdef NDE_HAVE_MPI
static nde_status coll_fail(nde__err *e, const char *what, int rc) {
  char msg[MPI_MAX_ERROR_STRING + 1];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
  msg[len] = '\0';
  return nde__errf(e, NDE_ERR_IO, "%s failed: %s", what, len ? msg : "unknown MPI error");
}

/* MPI counts are int: long arrays go in pieces. */
#define CHUNK ((size_t)1 << 30)
#endif

#ifdef NDE_HAVE_MPI
/* In-place MPI_Allreduce of n elements of size bytes each, in pieces of at most CHUNK. */
static nde_status allreduce(nde_comm *c, void *v, size_t n, size_t size, MPI_Datatype type,
                            MPI_Op op, const char *what, nde__err *e) {
  const double t0 = now();
  for (size_t i = 0; i < n; i += CHUNK) {
    const int m = (int)(n - i < CHUNK ? n - i : CHUNK);
    const int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)v + i * size, m, type, op, c->comm);
    if (rc != MPI_SUCCESS) return coll_fail(e, what, rc);
  }
  c->seconds += now() - t0;
  c->calls++;
  return NDE_OK;
}
#endif

nde_status nde__comm_max_int(nde_comm *c, int *v, size_t n, nde__err *e) {
  (void)v;
  (void)n;
  (void)e;
  if (!c || c->size == 1) return NDE_OK;
#ifdef NDE_HAVE_MPI
  return allreduce(c, v, n, sizeof *v, MPI_INT, MPI_MAX, "MPI_Allreduce (MAX)", e);
#else
  return NDE_OK;
#endif
}

nde_status nde__comm_sum_i64(nde_comm *c, int64_t *v, size_t n, nde__err *e) {
  (void)v;
  (void)n;
  (void)e;
  if (!c || c->size == 1) return NDE_OK;
#ifdef NDE_HAVE_MPI
  return allreduce(c, v, n, sizeof *v, MPI_INT64_T, MPI_SUM, "MPI_Allreduce (SUM)", e);
#else
  return NDE_OK;
#endif
}

nde_status nde__comm_bcast(nde_comm *c, void *buf, size_t bytes, int root, nde__err *e) {
  (void)buf;
  (void)bytes;
  (void)root;
  (void)e;
  if (!c || c->size == 1) return NDE_OK;
#ifdef NDE_HAVE_MPI
  const double t0 = now();
  for (size_t i = 0; i < bytes; i += CHUNK) {
    const int m = (int)(bytes - i < CHUNK ? bytes - i : CHUNK);
    const int rc = MPI_Bcast((char *)buf + i, m, MPI_BYTE, root, c->comm);
    if (rc != MPI_SUCCESS) return coll_fail(e, "MPI_Bcast", rc);
  }
  c->seconds += now() - t0;
  c->calls++;
#endif
  return NDE_OK;
}

int nde__comm_any(nde_comm *c, int flag) {
  int v = flag != 0;
  nde__err e;
  if (nde__comm_max_int(c, &v, 1, &e) != NDE_OK) return 1; /* a broken job stops everywhere */
  return v;
}
