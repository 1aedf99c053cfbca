/* Internal interface of the grad layer: the evaluator's state shared by the discrete adjoint
 * (grad.c), the built-in continuous adjoints (adjoint.c) and the CVODES-based methods
 * (cvodes.c). */
#ifndef NDE_GRAD_INTERNAL_H
#define NDE_GRAD_INTERNAL_H

#include "nde/grad.h"
#include "solve/internal.h"

typedef enum { NDE__GM_DISCRETE, NDE__GM_BACKSOLVE, NDE__GM_INTERP, NDE__GM_FORWARD } nde__gmethod;

/* A gradient method's registry entry: its public half and the solver families it runs on. */
typedef struct nde__gmdef {
  nde_grad_method_info info;
  nde__gmethod id;
  unsigned families;   /* bit (1u << nde__family) per family */
  int needs_dense;     /* the solver method must have dense output */
} nde__gmdef;

struct nde__gcv; /* CVODES state (cvodes.c) */

struct nde_grad {
  nde_solver *solver;
  nde_grad_opts opts;
  nde__err err;
  int is_auto;
  nde__gmethod method;
  int n, ns; /* ns: evaluations per step held in Ubar/W/Ust (at least 3: implicit's buffers) */
  size_t P; /* n_theta */
  size_t cache_per_row;
  double *Y, *dLdY;
  size_t y_cap;
  /* discrete adjoint */
  double *lam;  /* max_batch x n */
  double *Ubar; /* s x max_batch x n */
  double *Kbar; /* max_batch x n */
  double *W;    /* s x max_batch x n: cotangents of the stages from dense outputs */
  double *Ust;  /* recompute: s x max_batch x n stage inputs */
  double *cst;  /* recompute: s x max_batch x cache_per_row */
  double *utmp; /* recompute: max_batch x n */
  double *pend; /* splitting methods: a first kick's cotangent deferred to the previous step's
                 * last kick (max_batch x n) */
  double *gtmp; /* implicit-midpoint: the theta cotangent of a refinement iterate (P) */
  /* built-in continuous adjoint: z = (u, lambda, mu) or (lambda, mu) */
  nde__adapt adapt;
  double *z, *znew, *K, *Z; /* fixed-step backsolve: z, znew (N), K, Z (s x N) */
  double *ubuf;  /* max_batch x n: u(t) from the dense store */
  double *fc;    /* max_batch x cache_per_row: f's cache for the VJP at the same point */
  double *fcu, *fcf; /* max_batch x n: the point of fc, and f there (kept across a jump) */
  struct nde__gcv *cv;
};

/* Pick the method for this evaluation (resolves "auto"). */
nde__gmethod nde__grad_pick(const nde_grad *g, int B, int want_gU0);

/* Built-in continuous adjoint (backsolve, interp) after a forward solve that stored what the
 * method needs; writes gtheta (may be NULL) and gU0 (may be NULL). */
nde_status nde__adjoint_builtin(nde_grad *g, const double *theta, int B, int n_obs,
                                const double *t_obs, double *gtheta, double *gU0,
                                nde_grad_stats *stats);
nde_status nde__adjoint_builtin_init(nde_grad *g);
void nde__adjoint_builtin_free(nde_grad *g);

/* The CVODES methods: forward solve, loss and backward pass in one call. */
nde_status nde__gcv_create(nde_grad *g);
void nde__gcv_destroy(nde_grad *g);
nde_status nde__gcv_eval(nde_grad *g, nde__gmethod m, const double *theta, int B,
                         const double *U0, int n_obs, const double *t_obs, nde_loss_fn loss,
                         void *loss_ctx, double *L, double *gtheta, double *gU0,
                         nde_grad_stats *stats);

/* The discrete adjoint (discrete.c) after a forward solve that stored stages or steps: lambda
 * into g->lam (dL/dU0 then), gtheta accumulated (may be NULL).  A backward pass that stops
 * early sets stats->backward.reason and returns NDE_OK. */
nde_status nde__discrete_backward(nde_grad *g, const double *theta, int B, int n_obs,
                                  double *gtheta, nde_grad_stats *stats);

/* Fill the outputs of an evaluation whose solve stopped early. */
void nde__grad_nan(size_t P, size_t bn, double *gtheta, double *gU0);
int nde__grad_grow_y(nde_grad *g, size_t need);

#endif
