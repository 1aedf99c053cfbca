/* nde train: optimisers on the flat parameter vector theta.
 *
 * Adam (Kingma & Ba 2015): m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2,
 * theta <- theta - lr * mhat / (sqrt(vhat) + eps) with bias-corrected mhat, vhat.
 */
#ifndef NDE_TRAIN_H
#define NDE_TRAIN_H

#include <stddef.h>

#include "nde/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nde_adam_opts {
  double lr;    /* default 1e-3 */
  double beta1; /* default 0.9 */
  double beta2; /* default 0.999 */
  double eps;   /* default 1e-8 */
} nde_adam_opts;

nde_adam_opts nde_adam_opts_default(void);

typedef struct nde_adam nde_adam;

/* Adam on n parameters.  Statuses: NDE_ERR_ARG (n == 0, lr <= 0, betas outside [0, 1), eps
 * <= 0), NDE_ERR_NOMEM. */
nde_status nde_adam_create(size_t n, const nde_adam_opts *opts, nde_adam **out);
void nde_adam_destroy(nde_adam **a);

/* One update of theta (n) with gradient g (n). */
void nde_adam_step(nde_adam *a, double *theta, const double *g);

double nde_adam_get_lr(const nde_adam *a);
void nde_adam_set_lr(nde_adam *a, double lr);
/* Number of steps taken. */
long nde_adam_get_step(const nde_adam *a);

/* The optimiser state as 2 n + 1 doubles (m, v, step count), for checkpoints: restoring it
 * continues bit for bit. */
size_t nde_adam_state_size(const nde_adam *a);
void nde_adam_get_state(const nde_adam *a, double *state);
nde_status nde_adam_set_state(nde_adam *a, const double *state);

#ifdef __cplusplus
}
#endif
#endif
