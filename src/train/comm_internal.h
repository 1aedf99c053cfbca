/* The collectives of a communicator that the fit objective uses (src/train/comm.c).  With one
 * process they do nothing; with MPI every rank must call them in the same order.  Errors of MPI
 * are NDE_ERR_IO with the message in e. */
#ifndef NDE_TRAIN_COMM_INTERNAL_H
#define NDE_TRAIN_COMM_INTERNAL_H

#include <stdint.h>

#include "core/internal.h"
#include "nde/train.h"

/* v[i] = the maximum of v[i] over the ranks, for i < n. */
nde_status nde__comm_max_int(nde_comm *c, int *v, size_t n, nde__err *e);
/* v[i] = the sum of v[i] over the ranks (exact), for i < n. */
nde_status nde__comm_sum_i64(nde_comm *c, int64_t *v, size_t n, nde__err *e);
/* buf (bytes) from rank root to every rank. */
nde_status nde__comm_bcast(nde_comm *c, void *buf, size_t bytes, int root, nde__err *e);
/* 1 when flag is non-zero on any rank (also when the collective fails). */
int nde__comm_any(nde_comm *c, int flag);

#endif
