"""Fitting and the fitted model (nde/result.h): nde.fit, nde.load and nde.Result, with forecasts
from a chosen start, held-out scores and the result file (fit.h5) that nde fit writes and nde
forecast / nde discover read."""
import contextlib
import math
import os
import warnings
from collections import namedtuple

import numpy as np

from . import arrays
from ._lib import cstr, ffi, h5_lock, lib, pystr
from .data import as_data, write_text
from .errors import (Error, FileError, Interrupted, NumericalError, SolverStopWarning, check,
                     error_for, new_error)
from .model import Model, as_model, stop_info, warn_stop
from .options import (ENSEMBLE_OPTIONS, LOSS_OPTIONS, OBJECTIVE_OPTIONS, SOLVER_OPTIONS,
                      TRAIN_OPTIONS, UNCERTAINTY_OPTIONS, fit_opts, set_solver, settings_dict,
                      split)
from .progress import HEARTBEAT, Run, jobs, make_display, sigint_stops
from . import uncertainty as unc

FittedSeries = namedtuple("FittedSeries", "name t u0 inputs consts params")
FittedSeries.__doc__ = ("A fitted series: its name (the data group, '/' for a root series), its "
                        "observation times, its fitted initial state at t[0], the measured "
                        "inputs that drove it (t_u [M], U [M, m] in the order of the model's "
                        "inputs) or None, its constants from data {name: value}, and the "
                        "natural values of every parameter in this series {name: value} "
                        "(per-series parameters with their own value).")
Kept = namedtuple("Kept", "is_best iteration score loss last_loss validation noise_loss "
                          "noise_ratio")
Kept.__doc__ = ("Which iterate was kept: the best-scored one (is_best) or the last, its total "
                "iteration count and score, the trajectory loss there and at the last iterate, "
                "the validation loss (NaN without validation), the loss the true model would "
                "have under the known noise (NaN when unknown) and loss / noise_loss.")
SeriesScore = namedtuple("SeriesScore", "name t0 t1 u0 rmse count rmse_all horizon stop series")
SeriesScore.__doc__ = ("The score of one held-out series: its span, the start state used, RMSE "
                       "and observed values per state ({component: value}), the RMSE over all, "
                       "the horizon (NaN when the error stays within the tolerance), stop "
                       "(StopInfo or None) and the index of the fitted series whose per-series "
                       "values it used.")

_PROVENANCE = ("command_line", "data_file", "model_file", "nde_version", "sundials_version",
               "hdf5_version", "blas", "blas_threads", "threads", "mpi_ranks", "created")


def read_theta(path):
    """/params/theta of a result file, or of any HDF5 file holding it."""
    n = ffi.new("size_t *")
    p = ffi.new("double **")
    err = new_error()
    with h5_lock:
        check(lib.nde_read_theta(cstr(os.fspath(path)), n, p, err), err)
    try:
        return arrays.copy_doubles(p[0], n[0])
    finally:
        lib.free(p[0])


def _call_text(model, data, options):
    """The provenance "command line" of a fit from Python."""
    args = [repr(model.filename), repr(data.label)]
    args += ["%s=%r" % kv for kv in options.items()]
    return "nde.fit(%s)" % ", ".join(args)


def fit(model, data, *, callback=None, progress=None, progress_every=100, init=None, params=None,
        resume=None, checkpoint=None, inputs=None, consts=None, **options):
    """Fit a model to data, as `nde fit MODEL DATA` does: returns an nde.Result.

    model    an nde.Model or the path of a .nde file
    data     a path, arrays (t, y), nde.Series, a list or dict of them, or an nde.Data
    inputs   for data given as arrays: the measured inputs of the series that have none of
             their own, (t_u, U) or (t_u, {name: values}) for all of them or a list with one
             per series (see nde.Series); consts likewise, {name: value} or a list of them
    options  those of nde fit, '-' written '_', None meaning the library's default (the same as
             nde fit's, so the same options and seed give the same /params/theta bit for bit):
             solver, dt, steps_per_interval, rtol, atol, h0, max_steps, grad, optim (the
             schedule), lr, seed, learn_u0, scale ("none"|"std"), loss ("mean"|"sum"), log_loss,
             shoot_interval, shoot_weight, batch_series, batch_time, batch_windows,
             batch_segments (the segments of a series as one batch; a model that reads neither
             t nor an input), l2, l1,
             max_failures, checkpoint_every, checkpoint_seconds, keep_last, patience,
             phase_patience, phase_tol, validate ("tail:F" or "series:K"), noise_std (one
             standard deviation for every column, one per state and then per observable, or
             {state component or observable: std})
    init     start from this theta (an array or an nde.Result), or from a file as nde fit
             --init reads it (/params/theta, checked against the model's layout, and
             /params/values/NAME in natural units);
    params   then these start values {name: natural value} (nde fit --param; a per-series
             parameter takes one value for every series or a list of one per series)
    resume   continue an interrupted fit (an nde.Result or a result file) bit for bit
    checkpoint  write the result to this path at resume points and at the end (nde fit -o)
    callback called with an nde.Progress on events and every progress_every iterations;
             returning True stops the fit (status "interrupted"); while ensemble members or
             profile points run, with an nde.JobProgress (what, done, total) as they end
    progress None (default): a progress bar on a terminal or in a notebook; True: always (plain
             lines when not a terminal); False: never

    How sure the fit is (nde fit --uncertainty ...; see Result.uncertainty):
    uncertainty=True     standard errors of the parameters (and learned initial states) after
                         the fit, attached to the result (and written with it)
    noise_model          "per-state" (default), "pooled" or "known" (noise_std or the data's)
    profile              a coordinate name or a list of them: profile-likelihood intervals
                         (implies uncertainty); profile_points (default 8 a side)
    level                coverage of the intervals (default 0.95)
    uncertainty_nets     include the network weights among the coordinates
    finite_differences   the residual Jacobian by central differences
    jobs                 ensemble members or profile points run at once (0: every core)
    ensemble=K           K fits from seeds seed .. seed+K-1 run concurrently, kept in one
                         result (Result.members); resample "none", "series" or "time" with
                         resample_fraction (default 0.5): each member fits a random part
    The standard errors are computed only for a fit that ended well (done or early-stop).

    The outcome is the result's status, not an exception: "done", "early-stop", "interrupted"
    (Ctrl-C or the callback; the best parameters kept, resumable), "diverged", "failed".  Errors
    (a bad option, data that do not fit the model, a checkpoint that cannot be written) raise
    nde.Error subclasses; a FileError from the checkpoint, and an error of the standard errors,
    carry the result as .result.  An ensemble, or the profiles, stopped by Ctrl-C or the
    callback raise nde.Interrupted (an ensemble cannot be resumed; .result is the fit with its
    standard errors when the profiles were stopped)."""
    m = as_model(model)
    d = as_data(data, m, inputs=inputs, consts=consts)
    keep = []
    fit_options, ens_options, unc_options = split(
        options, SOLVER_OPTIONS + LOSS_OPTIONS + OBJECTIVE_OPTIONS + TRAIN_OPTIONS,
        ENSEMBLE_OPTIONS, UNCERTAINTY_OPTIONS, where="nde.fit()")
    fo = fit_opts(fit_options, keep, model=m)
    uo = unc.UncOptions(m, noise_std=fit_options.get("noise_std"), **unc_options)
    eo = unc.EnsembleOptions(**ens_options)
    if resume is not None and (init is not None or params):
        raise ValueError("resume continues a fit from its checkpoint: init and params cannot be "
                         "combined with it")
    if eo.members >= 2 and resume is not None:
        raise ValueError("resume continues one fit: it cannot be combined with ensemble")
    if init is not None or params:
        theta0 = m.theta(params, seed=fo.seed, init=init, n_series=d.n_series)
        keep.append(theta0)
        fo.theta0 = arrays.ptr(theta0)
    if checkpoint is not None:
        cp = cstr(os.fspath(checkpoint))
        keep.append(cp)
        fo.checkpoint_path = cp
    for s in (cstr(_call_text(m, d, options)), cstr(d.label)):
        keep.append(s)
    fo.command_line, fo.data_label = keep[-2], keep[-1]
    if isinstance(progress_every, bool) or not isinstance(progress_every, (int, np.integer)) \
            or progress_every < 1:
        raise ValueError("progress_every: expected a positive integer, got %r" % (progress_every,))
    progress_every = int(progress_every)
    if callback is not None and not callable(callback):
        raise TypeError("callback: expected a function of an nde.Progress, got %s"
                        % type(callback).__name__)

    if eo.members >= 2:
        result = _fit_ensemble(m, d, fo, eo, uo.jobs, callback, progress, checkpoint, keep)
    else:
        result = _fit_one(m, d, fo, callback, progress, progress_every, resume, checkpoint, keep)
    result._data = d
    if uo.wanted and result.ok:
        # The standard errors (and profiles) join the result, and its file (as nde fit writes
        # them after the fit).
        try:
            unc.compute(result, d, uo, callback, progress)
            if checkpoint is not None:
                result.save(checkpoint)
        except Error as e:
            e.result = result
            raise
    return result


def _fit_ensemble(m, d, fo, eo, n_jobs, callback, progress, checkpoint, keep):
    """nde_result_fit_ensemble with the members' progress."""
    e = eo.c_opts(n_jobs)
    fo.progress = ffi.NULL
    out = ffi.new("nde_result **")
    stopped = ffi.new("int *")
    err = new_error()
    seed = int(fo.seed)
    notes = ["nde: fitting %s (%d learnable values) to %s: %d series, %d observed values; "
             "schedule %s" % (m.filename, m.n_theta_full(d.n_series) + (
                 m.n_state * d.n_series if fo.objective.learn_u0 else 0), d.label, d.n_series,
                 d.n_obs, pystr(fo.schedule) if fo.schedule != ffi.NULL
                 else pystr(lib.NDE_DEFAULT_SCHEDULE)),
             "nde: ensemble of %d fits (seeds %d to %d%s) on %s" % (
                 eo.members, seed, seed + eo.members - 1,
                 "" if eo.resample == "none" else ", resampling the " + eo.resample,
                 "the given threads" if n_jobs > 0 else "every core")]
    lock = h5_lock if checkpoint is not None else contextlib.nullcontext()
    with jobs(e, "ensemble members", callback, progress, keep, notes) as run:
        with lock:
            st = lib.nde_result_fit_ensemble(m._ptr, d._ptr, fo, e, out, stopped, err)
    result = None
    if out[0] != ffi.NULL:
        result = Result._adopt(out[0], None if checkpoint is None else os.fspath(checkpoint))
    if st != lib.NDE_OK:
        exc = error_for(st, d._message(pystr(err.msg)))
        if isinstance(exc, FileError):
            exc.result = result
        raise exc
    if run.exc is not None:
        raise run.exc
    if stopped[0] or result is None:
        raise Interrupted("the ensemble was stopped before its members ended: nothing is kept "
                          "(an ensemble cannot be resumed; fit it again)")
    return result


def _fit_one(m, d, fo, callback, progress, progress_every, resume, checkpoint, keep):
    """nde_result_fit with progress, Ctrl-C and resume."""
    if resume is not None:
        ck = resume if isinstance(resume, Result) else load(resume)
        keep.append(ck)
        fo.resume = ck._ptr
    display = make_display(progress)
    run = Run(callback, progress_every, display)
    out = ffi.new("nde_result **")
    err = new_error()
    with sigint_stops(run) as sigint:
        if callback is not None or display is not None or sigint:
            handle = ffi.new_handle(run)
            ctx = ffi.new("ndepy_progress *")
            keep += [handle, ctx]
            ctx.handle = handle
            ctx.every = progress_every if (callback is not None or display is not None) else 0
            if resume is not None:  # count from where the checkpoint stopped
                done = ck.iterations
                ctx.iter_last = done - done % progress_every
            ctx.interval = HEARTBEAT if (display is not None or sigint) else 0.0
            fo.progress = ffi.addressof(lib, "ndepy_progress_cb")
            fo.progress_ctx = ctx
            fo.progress_every = 1
        if display is not None:
            display.note("nde: fitting %s (%d learnable values) to %s: %d series, %d observed "
                         "values; schedule %s" % (
                             m.filename, m.n_theta_full(d.n_series) + (
                                 m.n_state * d.n_series if fo.objective.learn_u0 else 0),
                             d.label, d.n_series, d.n_obs,
                             pystr(fo.schedule) if fo.schedule != ffi.NULL
                             else pystr(lib.NDE_DEFAULT_SCHEDULE)))
        lock = h5_lock if checkpoint is not None else contextlib.nullcontext()
        try:
            with lock:
                st = lib.nde_result_fit(m._ptr, d._ptr, fo, out, err)
        finally:
            if display is not None:
                display.close()
    result = None
    if out[0] != ffi.NULL:
        result = Result._adopt(out[0], None if checkpoint is None else os.fspath(checkpoint))
    if st != lib.NDE_OK:
        e = error_for(st, d._message(pystr(err.msg)))
        if isinstance(e, FileError):
            e.result = result
        raise e
    if run.exc is not None:
        raise run.exc
    if display is not None:
        if result.status == "interrupted" and run.interrupted:
            display.note("nde: interrupted after %d iterations; the best parameters are kept "
                         "(continue with nde.fit(..., resume=result))" % result.iterations)
        display.note("fit: %d iterations in %.2f s: %s" % (result.iterations, result.seconds,
                                                          result.message))
    if run.interrupted and result.status != "interrupted":
        raise KeyboardInterrupt  # it came after the fit's last iteration: not consumed
    return result


def load(path):
    """Open a result file (fit.h5 of nde fit or Result.save)."""
    out = ffi.new("nde_result **")
    err = new_error()
    with h5_lock:
        st = lib.nde_result_open(cstr(os.fspath(path)), out, err)
    if out[0] != ffi.NULL and st != lib.NDE_OK:
        lib.ndepy_result_destroy(out[0])
    check(st, err)
    return Result._adopt(out[0], os.fspath(path))


class Trajectory:
    """A solution of the fitted model on a grid: t [T], y [T, n] (columns: states), obs
    [T, len(observables)] (the model's observables along it, or None for a model without them
    or a solve that stopped), the start (series name, start_time, u0), stop (StopInfo when the
    solve stopped early: NaN rows after it), and what drove it: inputs (t_u, U) or None, consts
    {name: value}.

    With a band (results with ensemble members or standard errors, as nde forecast gives it):
    lower, upper [T, n] (else None), band_level (its coverage), band_kind ("members": the
    quantiles of the members' trajectories; "linearised": y -/+ q sqrt(diag(S C S^T)) from the
    covariance) and band_members (the members used at the last time; 0 for a linearised band);
    obs_lower, obs_upper [T, len(observables)] the same band of the observables (each member's
    observables along its own trajectory, or h -/+ q sqrt(diag(G C G^T)) with G the
    observables' sensitivities), None without observables or band.  The band is that of the
    model's trajectory; new observations scatter around it by the noise level besides."""

    def __init__(self, result, t, y, start_time, u0, series, stop, method, inputs=None,
                 consts=None, band=None, obs=None, obs_band=None):
        self.t, self.y, self.start_time, self.u0 = t, y, start_time, u0
        self.series, self.stop, self.method = series, stop, method
        self.inputs, self.consts = inputs, consts if consts is not None else {}
        self.states = result.model.states
        self.observables = result.model.observables
        self.obs = obs
        self._result = result
        self.lower = self.upper = self.band_level = self.band_kind = None
        self.band_members = 0
        if band is not None:
            self.lower, self.upper, self.band_level, self.band_kind, self.band_members = band
        self.obs_lower, self.obs_upper = obs_band if obs_band is not None else (None, None)

    def __len__(self):
        return self.t.size

    def __iter__(self):  # t, y = r.forecast(...)
        return iter((self.t, self.y))

    def __repr__(self):
        return "<nde.Trajectory %d times on [%g, %g]%s%s>" % (
            self.t.size, self.t[0], self.t[-1],
            ", stopped at t = %g" % self.stop.t_stop if self.stop else "",
            ", %g%% band (%s)" % (100 * self.band_level, self.band_kind)
            if self.lower is not None else "")

    def save(self, path):
        """Write the trajectory as nde forecast -o does: HDF5 in the data convention (nde fit and
        nde inspect read it back; with the inputs that drove it when they cover its span, and
        its constants from data) when path ends in .h5 or .hdf5, or CSV (t, the states, then the
        observables) when it ends in .csv (either case); any other name is refused
        (ValueError).  As nde forecast, a trajectory that stopped or has a value, an observable
        or a band that is not finite is refused (NumericalError), nothing written."""
        path = os.fspath(path)
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in (".h5", ".hdf5", ".csv"):
            raise ValueError("path: expected a file name ending in .h5 or .hdf5 (HDF5) or .csv "
                             "(CSV), got %r" % path)
        self._refuse_not_finite(path)
        if suffix == ".csv":
            buf = ffi.new("char[]", lib.NDE_NUM_MAX)

            def num(x):
                return pystr(lib.nde_num_str(float(x), buf))
            band = self.lower is not None
            obs = self.obs if self.obs is not None else np.empty((self.t.size, 0))
            # The band's columns: the states', then the observables' (as nde forecast).
            lo, hi, bcols = self._band_columns()
            lines = ["t," + ",".join(tuple(self.states) + tuple(
                self.observables if self.obs is not None else ())) + "".join(
                ",%s_lower,%s_upper" % (c, c) for c in bcols if band) + "\n"]
            for i in range(self.t.size):
                lines.append(num(self.t[i]) + "".join("," + num(v) for v in self.y[i]) +
                             "".join("," + num(v) for v in obs[i]) + "".join(
                    ",%s,%s" % (num(lo[i, j]), num(hi[i, j]))
                    for j in range(len(bcols)) if band) + "\n")
            # As nde forecast -o writes it: atomically, an existing file untouched on failure.
            write_text(path, "".join(lines))
            return
        r = self._result
        m = r.model
        # The columns of /y: the states, then the observables (as nde forecast writes them).
        cols = tuple(self.states) + (tuple(self.observables) if self.obs is not None else ())
        yo = self.y if self.obs is None else np.ascontiguousarray(np.hstack([self.y, self.obs]))
        names = [cstr(s) for s in cols]
        cnames = ffi.new("const char *[]", names)
        x = ffi.new("nde_series_extra *")
        xn = [cstr(v) for v in m.inputs + m.data_consts]
        xarr = ffi.new("const char *[]", xn + [ffi.NULL])
        hold = []
        if self.inputs is not None and self.t.size:
            tu, U = self.inputs
            if tu.size and tu[0] <= self.t[0] and tu[-1] >= self.t[-1]:
                x.m, x.n_u, x.u_t, x.u = U.shape[1], tu.size, arrays.ptr(tu), arrays.ptr(U)
                x.input_names = xarr
        if self.consts and m.data_consts:
            cv = np.array([self.consts[k] for k in m.data_consts])
            hold.append(cv)
            x.n_consts, x.const_names, x.consts = len(cv), xarr + len(m.inputs), arrays.ptr(cv)
        out = ffi.new("nde_writer **")
        err = new_error()
        with h5_lock:
            check(lib.nde_writer_create(cstr(path), out, err), err)
            w = out[0]
            try:
                s = ffi.new("nde_series *")
                s.n, s.d = self.t.size, len(cols)
                s.t, s.y, s.names = arrays.ptr(self.t), arrays.ptr(yo), cnames
                attrs = (("command_line", "nde.Result.forecast (Python)"),
                         ("forecast_of", r.path or ""), ("solver", self.method),
                         ("nde_version", pystr(lib.nde_version())))
                st = lib.nde_writer_put_series_ex(w, cstr("/"), s, x)
                if st == lib.NDE_OK and self.lower is not None:
                    # The band beside y, with its columns, as nde forecast writes it.
                    lo, hi, bcols = self._band_columns()
                    dims = ffi.new("size_t[2]", [self.t.size, len(bcols)])
                    st = lib.nde_writer_put_doubles(w, cstr("/y_lower"), 2, dims,
                                                    arrays.ptr(lo))
                    if st == lib.NDE_OK:
                        st = lib.nde_writer_put_doubles(w, cstr("/y_upper"), 2, dims,
                                                        arrays.ptr(hi))
                    if st == lib.NDE_OK:
                        st = lib.nde_writer_set_attr_double(w, cstr("/"), cstr("band_level"),
                                                            self.band_level)
                    if st == lib.NDE_OK:
                        st = lib.nde_writer_set_attr_string(
                            w, cstr("/"), cstr("band"), cstr(
                                "quantiles over the ensemble members"
                                if self.band_kind == "members"
                                else "linearised from the covariance"))
                    if st == lib.NDE_OK:
                        st = lib.nde_writer_set_attr_int64(w, cstr("/"), cstr("band_members"),
                                                           self.band_members)
                for k, v in attrs:
                    if st == lib.NDE_OK:
                        st = lib.nde_writer_set_attr_string(w, cstr("/"), cstr(k), cstr(v))
                if st == lib.NDE_OK:
                    st = lib.nde_writer_put_string(w, cstr("/model/source"), cstr(r.model.source))
                if st == lib.NDE_OK:
                    st = lib.nde_writer_commit(w)
                if st != lib.NDE_OK:
                    raise error_for(st, pystr(lib.nde_writer_errmsg(w)))
            finally:
                lib.nde_writer_destroy(out)


    def _refuse_not_finite(self, path):
        """As nde forecast: a trajectory that stopped, a value, an observable or a band that is
        not finite is refused (NumericalError), and nothing is written."""
        what = "the trajectory of series %s" % self.series
        if self.stop is not None:
            raise NumericalError("%s stopped: %s; nothing written to %s"
                                 % (what, self.stop.message, path))
        cols = [(self.y, tuple(self.states))]
        if self.obs is not None:
            cols.append((self.obs, tuple(self.observables)))
        for arr, names in cols:
            bad = ~np.isfinite(arr)
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise NumericalError("%s is not finite at t = %.17g (%s); nothing written to %s"
                                     % (what, self.t[i], names[j], path))
        if self.lower is not None:
            lo, hi, _ = self._band_columns()
            gap = ~(np.isfinite(lo).all(axis=1) & np.isfinite(hi).all(axis=1))
            if gap.any():
                raise NumericalError("the band of %s is not finite from t = %.17g; nothing "
                                     "written to %s" % (what, self.t[int(np.argmax(gap))], path))

    def _band_columns(self):
        """The band as written: lower, upper [T, K] and the K column names (the states, then
        the observables when they have a band)."""
        if self.lower is None or self.obs_lower is None or self.obs is None:
            return self.lower, self.upper, tuple(self.states)
        return (np.ascontiguousarray(np.hstack([self.lower, self.obs_lower])),
                np.ascontiguousarray(np.hstack([self.upper, self.obs_upper])),
                tuple(self.states) + tuple(self.observables))


class Score:
    """Scores of a fitted model against held-out series: .series (SeriesScore per series) and
    .rmse over every observed value."""

    def __init__(self, series, rmse, states, start):
        self.series, self.rmse, self._states, self._start = series, rmse, states, start

    def __getitem__(self, k):
        if isinstance(k, str):
            for s in self.series:
                if s.name == k or s.name == "/" + k:
                    return s
            raise KeyError(k)
        return self.series[k]

    def __len__(self):
        return len(self.series)

    def __repr__(self):
        lines = ["forecast error, each series from %s:" % (
            "the fitted trajectory of the series it continues" if self._start == "fitted"
            else "its own first observed row")]
        for s in self.series:
            per = "".join(", %s %.4e" % (c, s.rmse[c]) for c in self._states if s.count[c])
            hz = ("the error stays within the tolerance" if math.isnan(s.horizon)
                  else "horizon %g" % s.horizon)
            lines.append("  series %s (t in [%g, %g]): rmse %.6e%s; %s" % (
                s.name, s.t0, s.t1, s.rmse_all, per, hz))
            if s.stop:
                lines.append("    the prediction stopped at t = %g: %s" % (s.stop.t_stop,
                                                                         s.stop.reason))
        lines.append("  rmse all %.6e" % self.rmse)
        return "\n".join(lines)


# The most output times of a forecast grid, as nde forecast allows.
_MAX_GRID = 10000001


def _grid(t0, t1, dt_out):
    """t0, t0 + dt_out, ..., t1 (t1 included): the grid of nde forecast (nde_time_grid)."""
    p = ffi.new("double **")
    n = ffi.new("size_t *")
    err = new_error()
    st = lib.nde_time_grid(t0, t1, dt_out, _MAX_GRID, p, n, err)
    if st != lib.NDE_OK:
        raise error_for(st, "dt_out: " + pystr(err.msg))
    try:
        return arrays.copy_doubles(p[0], n[0])
    finally:
        lib.nde_free(p[0])



def _warn_band_gap(t, lo, hi, members):
    """Warn (SolverStopWarning) from the first time where the states' band has no value, as nde
    forecast refuses it: every member's integration had stopped, or the sensitivities' solve.
    (An observable's band is NaN also where the observable is undefined: not a stop.)"""
    gap = ~(np.isfinite(lo).all(axis=1) & np.isfinite(hi).all(axis=1))
    if not gap.any():
        return
    at = t[int(np.argmax(gap))]
    why = ("the integrations of all %d members stopped by then" % members if members
           else "the solve of its sensitivities stopped")
    warnings.warn("the band is not finite from t = %.6g: %s (it is NaN from there)" % (at, why),
                  SolverStopWarning, stacklevel=4)


class Result:
    """A fitted model: what nde fit writes to fit.h5 (nde.fit returns one, nde.load opens one).

    status ("done", "early-stop", "interrupted", "diverged", "failed"), message, params
    (natural units, fixed ones included), theta (the kept iterate), history, kept, series,
    settings (the options of the fit, as nde.fit keywords), provenance; forecast, integrate,
    fitted, score, discover, save."""

    @classmethod
    def _adopt(cls, ptr, path=None):
        self = cls.__new__(cls)
        self._ptr = ffi.gc(ptr, lib.ndepy_result_destroy)
        self.path = path
        self._model = None
        self._data = None  # the nde.Data of a fit made here (compute_uncertainty's default)
        return self

    # ---- the outcome ----

    @property
    def status(self):
        return pystr(lib.nde_fit_status_str(lib.nde_result_status(self._ptr)))

    @property
    def ok(self):
        """The fit ran to its end (done) or stopped early by patience."""
        return self.status in ("done", "early-stop")

    @property
    def message(self):
        return pystr(lib.nde_result_message(self._ptr))

    @property
    def model(self):
        """The fitted model (an nde.Model compiled from the source the result holds)."""
        if self._model is None:
            m = lib.nde_result_model(self._ptr)
            self._model = Model(pystr(lib.nde_model_source(m)), pystr(lib.nde_model_filename(m)))
        return self._model

    @property
    def theta(self):
        """The kept parameter vector (a copy)."""
        return arrays.copy_doubles(lib.nde_result_theta(self._ptr),
                                   lib.nde_result_n_theta(self._ptr))

    @property
    def theta_last(self):
        """The last accepted parameter vector."""
        return arrays.copy_doubles(lib.nde_result_theta_last(self._ptr),
                                   lib.nde_result_n_theta(self._ptr))

    @property
    def params(self):
        """{name: natural value} at the kept theta, fixed parameters included; a per-series
        parameter's value is an array of one value per series (in the order of .series)."""
        m = lib.nde_result_model(self._ptr)
        p = ffi.new("nde_model_param_info *")
        ns = lib.nde_result_n_series(self._ptr)
        out = {}
        for i in range(lib.nde_model_n_params(m)):
            check(lib.nde_model_get_param(m, i, p))
            if p.per_series:
                out[pystr(p.name)] = np.array([lib.nde_result_param_series(self._ptr, i, k)
                                               for k in range(ns)])
            else:
                out[pystr(p.name)] = lib.nde_result_param(self._ptr, i)
        return out

    @property
    def warning(self):
        """A sentence when the loss is far from the noise level (a model interpolating the noise,
        or one that cannot describe the data); "" otherwise or when the noise is unknown."""
        return pystr(lib.nde_result_warning(self._ptr))

    @property
    def kept(self):
        k = lib.nde_result_get_kept(self._ptr)
        return Kept(bool(k.is_best), k.iteration, k.score, k.loss, k.last_loss, k.validation,
                    k.noise_loss, k.noise_ratio)

    @property
    def history(self):
        """The phase's objective per iteration."""
        p = ffi.new("const double **")
        n = lib.nde_result_history(self._ptr, p)
        return arrays.copy_doubles(p[0], n)

    @property
    def scores(self):
        """(iterations, scores) of the scoring points."""
        s = ffi.new("const double **")
        it = ffi.new("const long **")
        n = lib.nde_result_scores(self._ptr, s, it)
        return arrays.copy_longs(it[0], n), arrays.copy_doubles(s[0], n)

    @property
    def phase_ends(self):
        """The history length at the end of each phase (-1: not reached)."""
        e = ffi.new("const long **")
        n = lib.nde_result_phase_ends(self._ptr, e)
        return [int(e[0][i]) for i in range(n)]

    @property
    def iterations(self):
        return int(lib.nde_result_iterations(self._ptr))

    @property
    def seconds(self):
        """Wall-clock seconds of the fit."""
        return lib.nde_result_seconds(self._ptr)

    @property
    def step(self):
        """The fixed step of the fit as one size (0 for adaptive solvers)."""
        return lib.nde_result_step(self._ptr)

    @property
    def series(self):
        """FittedSeries of every series of the fit: name, times, fitted initial state, the
        inputs and constants that drove it, its parameter values."""
        m = self.model
        n = m.n_state
        s = ffi.new("nde_result_series *")
        out = []
        for k in range(lib.nde_result_n_series(self._ptr)):
            check(lib.nde_result_get_series(self._ptr, k, s))
            inputs = None
            if m.inputs and s.n_u:
                inputs = (arrays.copy_doubles(s.u_t, s.n_u),
                          arrays.copy_doubles(s.u, s.n_u * len(m.inputs)).reshape(
                              s.n_u, len(m.inputs)))
            consts = {}
            if m.data_consts and s.consts != ffi.NULL:
                consts = dict(zip(m.data_consts, arrays.copy_doubles(s.consts,
                                                                     len(m.data_consts))))
            params = {p.name: lib.nde_result_param_series(self._ptr, i, k)
                      for i, p in enumerate(m.param_info)}
            out.append(FittedSeries(pystr(s.name), arrays.copy_doubles(s.t, s.n_obs),
                                    arrays.copy_doubles(s.u0, n), inputs, consts, params))
        return out

    @property
    def settings(self):
        """The options the fit ran with, as nde.fit keywords (nde.fit(m, data, **r.settings)
        fits again the same way); for an ensemble also ensemble=K and, when resampled,
        resample and resample_fraction; when the result holds standard errors, uncertainty=True
        with the noise_model, level, uncertainty_nets and finite_differences they were computed
        with (and, for a known noise, its levels as noise_std), and profile (the profiled names)
        when it holds profiles.  The grid a side of the
        profiles (profile_points) is not recorded: fitting again uses the default."""
        out = settings_dict(lib.nde_result_settings(self._ptr), self.model)
        how = ffi.new("nde_ensemble_opts *")
        if lib.nde_result_ensemble_settings(self._ptr, how) == 0:
            out["ensemble"] = int(how.members)
            if how.resample != lib.NDE_RESAMPLE_NONE:
                out["resample"] = pystr(lib.nde_resample_str(how.resample))
                out["resample_fraction"] = float(how.fraction)
        u = lib.nde_result_get_uncertainty(self._ptr)
        if u != ffi.NULL:
            if u.noise == lib.NDE_NOISE_KNOWN:
                # The known levels the standard errors used (given to them, or the fit's).
                levels = arrays.copy_doubles(u.sigma_state, u.n_sigma).tolist()
                out["noise_std"] = {pystr(u.sigma_names[j]): v for j, v in enumerate(levels)
                                    if not math.isnan(v)} or None
            out.update({
                "uncertainty": True, "noise_model": pystr(lib.nde_noise_model_str(u.noise)),
                "level": u.level, "finite_differences": bool(u.finite_differences),
                "uncertainty_nets": any(u.entry[i].kind == lib.NDE_UNC_NET_WEIGHT
                                        for i in range(u.n))})
            names = list(self.profiles)
            if names:
                out["profile"] = names
        return out

    @property
    def provenance(self):
        """Where the fit came from: command line, data and model files, versions, time."""
        out = {}
        for k in _PROVENANCE:
            v = lib.nde_result_provenance(self._ptr, cstr(k))
            if v != ffi.NULL:
                out[k] = pystr(v)
        return out

    def __repr__(self):
        return "<nde.Result %s: %s, %d iterations, %s>" % (
            self.model.filename, self.status, self.iterations,
            ", ".join("%s=%.6g" % kv for kv in self.params.items()) or "no scalar parameters")

    def summary(self):
        """What nde fit prints at the end: the fit, the values with their standard errors (or
        the members' spread), the standard errors' details, profiles and members."""
        k = self.kept
        s = self.settings
        lines = ["fit: %d iterations in %.2f s: %s" % (self.iterations, self.seconds,
                                                      self.message),
                 "  trajectory loss %.6e (%s squared error) at the kept parameters: %s "
                 "(iteration %d)" % (k.loss, "summed" if s["loss"] == "sum" else "mean",
                                     "the best scored iterate" if k.is_best
                                     else "the last iterate", k.iteration)]
        u = self.uncertainty
        names = [f.name for f in self.series]
        for i, p in enumerate(self.model.param_info):
            v = self.params[p.name]
            if p.per_series:
                lines.append("  %-12s (per series):" % p.name + "".join(
                    "%s%s %r%s" % ("\n    " if extra else " ", names[k], float(v[k]), extra)
                    for k in range(len(names))
                    for extra in [self._unc_text(u, i, "%s[%s]" % (p.name, names[k]), k)]))
                continue
            lines.append("  %-12s = %r%s%s" % (p.name, v, "" if p.learnable else "  (fixed)",
                                              self._unc_text(u, i, p.name, 0)
                                              if p.learnable else ""))
        for n in self.model.nets.values():
            lines.append("  net %-8s %d weights" % (n.name, n.n_params))
        if self.warning:
            lines.append("warning: " + self.warning)
        if u is not None:
            lines.append(str(u))
            lines += [unc.profile_text(p, u) for p in self.profiles.values()]
        ms = self.members
        if ms:
            lines.append("ensemble: %d members (seeds %d to %d), %d ended well" % (
                len(ms), ms[0].seed, ms[0].seed + len(ms) - 1,
                sum(x.status in ("done", "early-stop") for x in ms)))
            lines += ["  member %2d  seed %-6d %-11s loss %.6e  %d iterations"
                      % (k + 1, x.seed, x.status, x.loss, x.iterations)
                      for k, x in enumerate(ms[:50])]
            if len(ms) > 50:
                lines.append("  ... (%d more)" % (len(ms) - 50))
        return "\n".join(lines)

    def _unc_text(self, u, i, name, series):
        """What nde fit prints beside a parameter: its standard error and interval, or the
        spread over the members of an ensemble."""
        if u is not None and name in u:
            return u.describe(name)
        if self.n_members > 0:
            sp = unc.spread(self, i, series, 0.95)
            if sp.n > 0:
                return "  members: median %s, sd %s, 95%% range [%s, %s]" % (
                    unc._num(sp.median), unc._num(sp.sd), unc._num(sp.lower), unc._num(sp.upper))
        return ""

    # ---- how sure the fit is ----

    @property
    def uncertainty(self):
        """The standard errors the result holds (nde.Uncertainty: estimate, se, lower, upper,
        corr, identifiable, null_directions, warning, ... by coordinate name), or None: fit
        with uncertainty=True, or call compute_uncertainty()."""
        u = lib.nde_result_get_uncertainty(self._ptr)
        if u == ffi.NULL:
            return None
        m = self.model
        return unc.Uncertainty(u, m, list(m.nets), [s.name for s in self.series])

    def compute_uncertainty(self, data=None, *, noise_model=None, noise_std=None, level=None,
                            uncertainty_nets=None, finite_differences=None, profile=None,
                            profile_points=None, jobs=None, callback=None, progress=None,
                            inputs=None, consts=None):
        """The standard errors (and profiles) of this fit, computed against its data and
        attached to the result (save() writes them), as nde uncertainty does; returns
        .uncertainty.  Replaces standard errors and profiles computed before.

        data      the data of the fit (a path, arrays or series, as nde.fit takes them; data
                  whose values differ from the fit's are a DataError); default: the data of a
                  fit made in this process, else the file the fit recorded
        noise_model, noise_std, level, uncertainty_nets, finite_differences, profile,
        profile_points, jobs: as nde.fit (noise_std for noise_model="known"; default the
                  fit's); callback, progress: of the profile points (nde.JobProgress)"""
        o = unc.UncOptions(self.model, True, noise_model, noise_std, level, uncertainty_nets,
                           finite_differences, profile, profile_points, jobs)
        d = unc.data_of(self, data, inputs, consts)
        unc.compute(self, d, o, callback, progress)
        return self.uncertainty

    def profile(self, names, data=None, *, points=None, jobs=None, callback=None,
                progress=None, inputs=None, consts=None):
        """Profile-likelihood intervals (nde fit --profile): for each named coordinate
        ("beta", "k[/run1]", "y(t0)"; a comma-separated string or a list), the others
        re-optimised on a grid of its values; the interval is where the statistic stays below
        q^2.  Computes the standard errors first (with the defaults) when the result has none;
        replaces the profiles computed before (as nde uncertainty --profile does).  Returns the
        nde.Profile of a single name, or {name: Profile} for several (also .profiles).
        points: grid points a side in the first round (default 8); jobs: points run at once (0:
        every core); data, callback, progress: as compute_uncertainty."""
        spec = unc.profile_names(names)
        pts = None if points is None else unc._whole("points", points, 1, 10000)
        n_jobs = unc.check_jobs(jobs)
        d = unc.data_of(self, data, inputs, consts)
        unc.run_profile(self, d, spec, pts, n_jobs, callback, progress)
        got = self.profiles
        wanted = spec.split(",")
        if isinstance(names, str) and len(wanted) == 1:
            return got[wanted[0]]
        return {k: got[k] for k in wanted}

    @property
    def profiles(self):
        """{name: nde.Profile} of the profiles the result holds."""
        return unc.profiles(self)

    @property
    def n_members(self):
        """Members of an ensemble result (0 for a single fit)."""
        return int(lib.nde_result_n_members(self._ptr))

    @property
    def members(self):
        """nde.Member of every member of an ensemble (seed, status, loss, iterations, theta,
        u0, keep); [] for a single fit.  member(k) is member k as a Result."""
        return unc.members(self)

    def member(self, k):
        """Member k of an ensemble as a Result of its own (its parameters and fitted initial
        states; settings and provenance the ensemble's): forecasts, discovery, save."""
        K = self.n_members
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not -K <= k < K:
            raise ValueError("member: expected an index in [0, %d), got %r" % (K, k))
        out = ffi.new("nde_result **")
        err = new_error()
        check(lib.nde_result_member(self._ptr, int(k) % K, out, err), err)
        return Result._adopt(out[0])

    def param_spread(self, name, level=0.95, series=0):
        """The spread of a parameter over the ensemble's members whose fit ended well
        (nde.Spread: n, mean, sd, median, lower, upper at the level's quantiles; natural units);
        series: of a per-series parameter (index or name; members that did not fit that series
        are not counted)."""
        m = self.model
        names = [p.name for p in m.param_info]
        if name not in names:
            raise ValueError("param_spread: %r is not a parameter of %s (expected one of %s)"
                             % (name, m.filename, ", ".join(names)))
        return unc.spread(self, names.index(name), self._series_index(series),
                          unc.check_level(level))

    # ---- the fitted model on any grid ----

    def _series_index(self, series):
        n = lib.nde_result_n_series(self._ptr)
        if isinstance(series, str):
            k = lib.nde_result_find_series(self._ptr, cstr(series))
            if k < 0:
                k = lib.nde_result_find_series(self._ptr, cstr("/" + series))
            if k < 0:
                raise ValueError("series: no fitted series named %r (expected one of %s)" % (
                    series, ", ".join(s.name for s in self.series)))
            return k
        if isinstance(series, bool) or not isinstance(series, (int, np.integer)) \
                or not -n <= series < n:
            raise ValueError("series: expected an index in [0, %d) or a name, got %r"
                             % (n, series))
        return int(series) % n

    def _start(self, start, series, u0, keep, inputs=None, consts=None):
        """An nde_start from the Python arguments (see integrate), and the inputs and constants
        that drive it as Python values."""
        k = self._series_index(series)
        st = ffi.new("nde_start *")
        st.series = k
        if start is None or (isinstance(start, str) and start == "first"):
            st.kind = lib.NDE_START_FITTED
        elif isinstance(start, str) and start == "last":
            s = self.series[k]
            st.kind, st.t = lib.NDE_START_AT_TIME, float(s.t[-1])
        elif isinstance(start, (int, float, np.floating, np.integer)) \
                and not isinstance(start, bool):
            st.kind, st.t = lib.NDE_START_AT_TIME, float(start)
        else:
            raise ValueError("start: expected None (the fitted initial state), 'last', or a time "
                             "inside the fitted span, got %r" % (start,))
        m = self.model
        fs = self.series[k]
        # What drives it: the given inputs and constants, or the fitted series' own.
        st.inputs = ffi.NULL if inputs is None else m._inputs_arg(inputs, keep)
        st.consts = ffi.NULL if consts is None else m._consts_arg(consts, keep)
        drive_in = fs.inputs if inputs is None else m.input_samples(inputs)
        drive_c = fs.consts if consts is None else dict(zip(m.data_consts,
                                                            m.const_values(consts)))
        t0 = ffi.new("double *")
        u = np.empty(m.n_state)
        err = new_error()
        check(lib.nde_result_start_state(self._ptr, st, t0, arrays.wptr(u), err), err)
        if u0 is not None:
            u = m._state_of(u0, "u0", base=u)
            st.kind, st.t = lib.NDE_START_STATE, t0[0]
            st.u = arrays.ptr(u)
            keep.append(u)
        return st, t0[0], u, drive_in, drive_c

    def _solver(self, solver, options, keep):
        """NULL (the fit's settings) or the fit's settings with the options given (as nde
        forecast's solver options)."""
        (opts,) = split(options, SOLVER_OPTIONS, where="this call")
        if solver is not None:
            opts["solver"] = solver
        if not opts:
            return ffi.NULL, pystr(lib.nde_result_settings(self._ptr).solver.method)
        so = ffi.new("nde_solver_opts *", lib.nde_result_settings(self._ptr).solver)
        set_solver(so, keep, **opts)
        if so.dt == 0 and "steps_per_interval" not in opts:
            so.dt = lib.nde_result_step(self._ptr)
        return so, pystr(so.method)

    def integrate(self, times, start=None, series=0, u0=None, inputs=None, consts=None,
                  solver=None, band=None, **solver_options):
        """The fitted model on the grid times (strictly increasing, none before the start): an
        nde.Trajectory.

        start   None: the fitted initial state of the series; a time: the fitted trajectory of
                the series there; "last": at its last time
        series  index or name of the fitted series
        u0      a state (n values) or {component: value} overriding the start's state
        inputs  the measured inputs that drive it, (t_u, U) or (t_u, {name: values}) (future
                inputs for a forecast; nde forecast --inputs); default the fitted series' own.
                They must cover the times unless the input is declared hold (an
                nde.ArgumentError names the input and where its samples end)
        consts  {name: value} of the constants from data (nde forecast --const); default the
                fitted series' own
        solver  and dt, steps_per_interval, rtol, atol, h0, max_steps: other integration
                settings than the fit's (whose fixed step nde_result_step keeps).
        band    the band around it (Trajectory.lower, .upper), as nde forecast --band: None
                (default) a 95 % band when the result has ensemble members (the quantiles of
                the members' trajectories, each member from its own fitted trajectory) or
                standard errors (linearised), else none; a level in (0, 1), or True for 0.95
                (a ValueError when the result has neither); False: none (--no-band)
        A solve that stops early warns (SolverStopWarning) and leaves NaN rows after the stop; so
        does a band with no value from some time on (every member's integration had stopped, or
        the sensitivities' solve), where nde forecast refuses to write it."""
        keep = []
        level = self._band_level(band)
        st, t0, u, drive_in, drive_c = self._start(start, series, u0, keep, inputs, consts)
        tt = arrays.real_array(times, "times", ndim=1, expected="[T]")
        so, method = self._solver(solver, solver_options, keep)
        Y = np.empty((tt.size, self.model.n_state))
        stats = ffi.new("nde_solve_stats *")
        err = new_error()
        check(lib.nde_result_integrate(self._ptr, st, tt.size, arrays.ptr(tt), so,
                                       arrays.wptr(Y), stats, err), err)
        bands = obs_band = None
        if level is not None:
            lo, hi = np.empty_like(Y), np.empty_like(Y)
            no = len(self.model.observables)
            olo, ohi = np.empty((tt.size, no)), np.empty((tt.size, no))
            used = ffi.new("int *")
            # The states' band and the observables' in one pass (as nde forecast).
            st_b = lib.nde_result_forecast_band(
                self._ptr, st, tt.size, arrays.ptr(tt), so, level, arrays.wptr(lo), ffi.NULL,
                arrays.wptr(hi), arrays.wptr(olo) if no else ffi.NULL, ffi.NULL,
                arrays.wptr(ohi) if no else ffi.NULL, used, err)
            if st_b != lib.NDE_OK:
                raise error_for(st_b, "band: " + pystr(err.msg))
            bands = (lo, hi, level, "members" if self.n_members else "linearised", int(used[0]))
            if no:
                obs_band = (olo, ohi)
            # Members counted as nde forecast counts them: those whose fit ended well.
            _warn_band_gap(tt, lo, hi, sum(m.status in ("done", "early-stop")
                                            for m in self.members))
        stop = stop_info(method, stats)
        if stop is not None:
            warn_stop("the integration", stop)
        obs = None
        if self.model.observables and stop is None:
            # The observables along it, driven as it was (nde_result_observe).
            obs = np.empty((tt.size, len(self.model.observables)))
            check(lib.nde_result_observe(self._ptr, st, tt.size, arrays.ptr(tt), arrays.ptr(Y),
                                         arrays.wptr(obs), err), err)
        return Trajectory(self, tt, Y, t0, u, self.series[st.series].name, stop, method,
                          drive_in, drive_c, bands, obs, obs_band)

    def _band_level(self, band):
        """The level of the band that band= asks for, or None (see integrate)."""
        able = self.n_members > 0 or lib.nde_result_get_uncertainty(self._ptr) != ffi.NULL
        if band is None:
            return 0.95 if able else None
        if band is False:
            return None
        level = 0.95 if band is True else unc.check_level(band, "band")
        if not able:
            raise ValueError("band: %s has neither ensemble members nor standard errors (fit "
                             "with ensemble=K or uncertainty=True, or call compute_uncertainty)"
                             % (self.path or "the result"))
        return level

    def forecast(self, t1, start=None, series=0, dt_out=None, u0=None, inputs=None, consts=None,
                 solver=None, band=None, **solver_options):
        """The fitted model from a start up to t1, on a grid every dt_out (default: the fit's
        step, or a tenth of the data spacing for adaptive solvers), as nde forecast --t1 does.
        start, series, u0, inputs, consts, solver, band: as integrate ("last" is nde forecast
        --from-last, a time is --t0; inputs are --inputs, future inputs that cover [start, t1]
        unless declared hold; default the fitted series' own; band: a 95 % band when the
        result has ensemble members or standard errors, band=0.8 another level, band=False
        none).  Returns an nde.Trajectory (t, y = r.forecast(10) unpacks it; with .lower and
        .upper when it has a band)."""
        keep = []
        self._band_level(band)
        _, t0, _, _, _ = self._start(start, series, u0, keep, inputs, consts)
        if float(t1) == float("inf"):
            raise ValueError("t1: expected a finite end time, got %g" % t1)
        if not float(t1) > t0:
            raise ValueError("t1: %g is not after the start time %g" % (t1, t0))
        if dt_out is None or dt_out == 0:
            dt_out = lib.nde_result_step(self._ptr)
            if not dt_out > 0:
                s = self.series[self._series_index(series)]
                dt_out = (s.t[-1] - s.t[0]) / (s.t.size - 1) / 10
        return self.integrate(_grid(t0, float(t1), float(dt_out)), start=start, series=series,
                              u0=u0, inputs=inputs, consts=consts, solver=solver, band=band,
                              **solver_options)

    def fitted(self, series=0):
        """The fitted curve of a series at its observation times: [N, n]."""
        k = self._series_index(series)
        return self.integrate(self.series[k].t, series=k, band=False).y

    # ---- scores, discovery, files ----

    def score(self, heldout, start="row", horizon_tol=0.1, inputs=None, consts=None,
              solver=None, **solver_options):
        """Score the fitted model on held-out data (a path, arrays or series, as nde.fit takes
        them): each series predicted from its own first observed row (start="row") or from the
        fitted trajectory of the series it continues (start="fitted"), driven by its own
        measured inputs and constants, as nde forecast --data.  inputs, consts: for held-out
        series given as arrays without their own (as nde.fit takes them).
        horizon_tol: the horizon is where the error first exceeds this times a state's std."""
        if start not in ("row", "fitted"):
            raise ValueError("start: expected 'row' or 'fitted', got %r" % (start,))
        m = self.model
        held = as_data(heldout, m, inputs=inputs, consts=consts)
        keep = []
        o = ffi.new("nde_score_opts *", lib.nde_score_opts_default())
        o.horizon_tol = float(horizon_tol)
        o.start_fitted = start == "fitted"
        so, _ = self._solver(solver, solver_options, keep)
        o.solver = so
        out = ffi.new("nde_score **")
        err = new_error()
        st = lib.nde_result_score(self._ptr, held._ptr, o, out, err)
        if st != lib.NDE_OK:
            raise error_for(st, held._message(pystr(err.msg)))
        sc = ffi.gc(out[0], lib.ndepy_score_destroy)
        method = pystr(so.method) if so != ffi.NULL else self.settings["solver"]
        res = []
        s = ffi.new("nde_series_score *")
        n = m.n_state
        # The scored columns: the states, then the observables when the data have them.
        columns = (tuple(m.states) + tuple(m.observables))[:lib.nde_score_n_columns(sc)]
        for k in range(lib.nde_score_n_series(sc)):
            check(lib.nde_score_get(sc, k, s))
            rmse = arrays.copy_doubles(s.rmse, len(columns))
            res.append(SeriesScore(
                pystr(s.name), s.t0, s.t1, arrays.copy_doubles(s.u0, n),
                dict(zip(columns, rmse.tolist())),
                {c: int(s.count[j]) for j, c in enumerate(columns)}, s.rmse_all, s.horizon,
                stop_info(method, s.stop), int(s.series)))
        return Score(res, lib.nde_score_rmse(sc), columns, start)

    def discover(self, **options):
        """Read the missing terms off the trained networks as equations (nde discover): an
        nde.Discovery with .equations, .model_text, .model and .save(path).  Options as nde
        discover: nets, library ("poly:3"), terms (a list of .nde expressions), points, samples,
        margin, seed, threshold, criterion ("bic"|"aic"), ridge.

        On an ensemble result (nde.fit(..., ensemble=K)) it is stability selection, as nde
        discover does there: discovery on every member, and the final laws keep the terms
        chosen by at least inclusion (default 0.6) of the members; an nde.StableDiscovery
        (.frequencies, .terms_of(i), .stability_table(i), .n_members besides the Discovery's).
        stability=False discovers on the result's own fit only (nde discover --no-stability);
        jobs: members discovered at once (0: every core); callback, progress: of the members
        (nde.JobProgress).  inclusion or stability=True on a result without members is an
        error."""
        from .discover import discover
        return discover(self, **options)

    def save(self, path):
        """Write the result file (atomically), the same file nde fit writes."""
        err = new_error()
        with h5_lock:
            check(lib.nde_result_save(self._ptr, cstr(os.fspath(path)), err), err)

    def plot(self, data=None, ax=None, **kwargs):
        """Data and fitted curves per state (matplotlib; see nde.plot.plot_fit)."""
        from .plot import plot_fit
        return plot_fit(self, data=data, ax=ax, **kwargs)
