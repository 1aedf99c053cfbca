/* nde: neural and universal differential equations.  The umbrella header: every public layer.
 *
 *   core      statuses, errors, RNG, strings, nde_free           nde/core.h
 *   nn        dense networks on a flat parameter vector            nde/nn.h
 *   model     right-hand sides: the .nde language and C callbacks  nde/model.h
 *   solve     integrators and the method registry                  nde/solve.h
 *   grad      gradients of a loss through a solve                  nde/grad.h
 *   train     the fit objective, optimisers, the training loop     nde/train.h
 *   data      HDF5 time series and atomic writes                   nde/data.h
 *   result    the fitted model, fit driver, forecasts, scores      nde/result.h
 *   discover  candidate terms, sparse regression, the pipeline     nde/discover.h
 */
#ifndef NDE_NDE_H
#define NDE_NDE_H

#include "nde/core.h"
#include "nde/nn.h"
#include "nde/model.h"
#include "nde/solve.h"
#include "nde/grad.h"
#include "nde/train.h"
#include "nde/data.h"
#include "nde/result.h"
#include "nde/discover.h"

#endif
