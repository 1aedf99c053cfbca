/* placeholder */
#include "internal.h"
nde_status nde__gcv_create(nde_grad *g) { (void)g; return NDE_ERR_UNSUPPORTED; }
void nde__gcv_destroy(nde_grad *g) { (void)g; }
nde_status nde__gcv_eval(nde_grad *g, nde__gmethod m, const double *theta, int B,
                         const double *U0, int n_obs, const double *t_obs, nde_loss_fn loss,
                         void *loss_ctx, double *L, double *gtheta, double *gU0,
                         nde_grad_stats *stats) {
  (void)g;(void)m;(void)theta;(void)B;(void)U0;(void)n_obs;(void)t_obs;(void)loss;(void)loss_ctx;(void)L;(void)gtheta;(void)gU0;(void)stats;
  return NDE_ERR_UNSUPPORTED;
}
