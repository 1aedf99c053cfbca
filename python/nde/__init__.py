"""nde: neural and universal differential equations, from Python.

A thin binding over the installed C library libnde (cffi): the same models, solvers, gradients,
fits and result files as the nde program, with numpy arrays instead of files where you like.

    import nde
    m = nde.Model.from_file("models/lotka_volterra_ude.nde")
    r = nde.fit(m, (t, y), seed=1)        # or a path, a list of series, an nde.Data
    r.params, r.history, r.status
    d = r.discover(); print(d)            # the networks read off as equations
    t10, y10 = r.forecast(10.0)
    r.save("fit.h5"); r2 = nde.load("fit.h5")
    u = nde.fit(m, data, uncertainty=True).uncertainty    # standard errors (u.se["beta"])
    e = nde.fit(m, data, ensemble=10); e.discover()       # members, stability selection

Everything numerical runs in libnde; see python/README.md.
"""
import numpy as _np

from ._lib import ffi as _ffi, lib as _lib
from .data import Data, Problem, Series
from .discover import Candidate, Discovery, Equation, StableDiscovery, StableTerm
from .errors import (ArgumentError, CallbackError, DataError, Error, FileError, InternalError,
                     Interrupted, LimitError, ModelError, NumericalError, OutOfMemoryError,
                     SolverStopWarning, UnsupportedError)
from .model import Model, _u64
from .options import grad_names, solver_names
from .progress import JobProgress, Progress
from .result import Result, Score, Trajectory, fit, load, read_theta
from .uncertainty import Coordinate, Member, Profile, Spread, Uncertainty

__version__ = _ffi.string(_lib.nde_version()).decode()
DEFAULT_SCHEDULE = _ffi.string(_lib.NDE_DEFAULT_SCHEDULE).decode()


def sim_series_seed(seed, k):
    """The noise seed of series k of Model.simulate_many (and nde simulate --series) run with
    base seed seed, when the series gives none of its own.  seed is an integer in [0, 2^64), as
    simulate_many takes it, and k an integer (a negative one is taken as 0, as in C); anything
    else is a ValueError (int() truncated a seed of 1.7 to 1 and read "3" as 3)."""
    seed = _u64(seed, "seed")
    if isinstance(k, bool) or not isinstance(k, (int, _np.integer)):
        raise ValueError("k: expected an integer series index, got %r" % (k,))
    return int(_lib.nde_sim_series_seed(seed, int(max(min(k, 2 ** 31 - 1), 0))))


__all__ = ["Model", "Data", "Series", "Problem", "fit", "load", "read_theta", "Result",
           "Trajectory", "Score", "Discovery", "StableDiscovery", "StableTerm", "Equation",
           "Candidate", "Progress",
           "JobProgress", "Uncertainty", "Coordinate", "Profile", "Member", "Spread",
           "solver_names", "grad_names", "sim_series_seed", "Error", "ArgumentError", "LimitError", "ModelError",
           "DataError", "FileError", "OutOfMemoryError", "CallbackError", "NumericalError",
           "UnsupportedError", "InternalError", "Interrupted", "SolverStopWarning",
           "DEFAULT_SCHEDULE"]
