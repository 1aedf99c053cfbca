"""Time series for a model (nde/data.h), from a file or from arrays, and a model bound to them
(nde_problem: the loss and its gradient at any theta).

Data can be given wherever a function takes `data` as
  - a path: "DATA.h5" (every series in it) or "DATA.h5:/group", read by the library as nde fit
    reads it;
  - arrays (t, y): one series, t [N] strictly increasing, y [N, D], NaN for a missing value; the
    D columns are the model's state components in order, or those named by Series(names=...);
  - nde.Series(t, y, names=None, name=None, noise_std=None, inputs=None, consts=None);
  - a list of those (a batch of series, each on its own time grid), or a dict {name: series};
  - an nde.Data, opened once for a model and reusable.
The library checks the values (times, Inf, all-NaN columns, names) with the messages it gives for
files.  Series from arrays are written with the library's own writer to a temporary HDF5 file
that the library opens and that is removed at once (glue until libnde has a constructor of data
from arrays); list item k is the group /seriesK (zero-padded), named series keep their names, and
series come in name order, as the groups of a file do.
"""
import os
import tempfile
import threading
import warnings
from collections import namedtuple

import numpy as np

from . import arrays
from ._lib import cstr, ffi, h5_lock, lib, pystr
from .errors import SolverStopWarning, check, error_for, new_error
from .model import _not_yet, as_model, stop_info

SeriesView = namedtuple("SeriesView", "name t y")
SeriesView.__doc__ = ("One series as the library holds it: its group name, times [N] and "
                      "values [N, n] in the model's state order (NaN where missing or "
                      "unobserved).")


class Series:
    """One time series given as arrays.

    t          [N] strictly increasing times
    y          [N, D] observations, NaN = missing ([N] when D = 1)
    names      D state component names of the columns (default: the model's components)
    name       the series' name (its group name in a result file)
    noise_std  D noise standard deviations (recorded, as nde simulate records them)
    inputs     measured inputs {name: (t, values)}; consts: per-series constants {name: value}.
               Not supported by this libnde yet (NotImplementedError)."""

    def __init__(self, t, y, names=None, name=None, noise_std=None, inputs=None, consts=None):
        if inputs is not None:
            _not_yet("inputs", "measured inputs")
        if consts is not None:
            _not_yet("consts", "per-series constants")
        self.t = arrays.real_array(t, "t", ndim=1, expected="[N]")
        y = np.asarray(y) if not isinstance(y, np.ndarray) else y
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        self.y = arrays.real_array(y, "y", shape=(self.t.size, None),
                                   expected="[%d, D] (one row per time of t)" % self.t.size)
        if names is not None:
            if isinstance(names, str):
                names = [names]
            names = [str(s) for s in names]
            if len(names) != self.y.shape[1]:
                raise ValueError("names: expected %d names (one per column of y), got %d"
                                 % (self.y.shape[1], len(names)))
        self.names = names
        if name is not None:
            name = str(name).strip("/")
            if not name or "/" in name or name == ".":
                raise ValueError("name: expected a group name without '/', got %r" % (name,))
        self.name = name
        self.noise_std = None if noise_std is None else arrays.vector(
            noise_std, "noise_std", self.y.shape[1])

    def __repr__(self):
        return "<nde.Series %s: %d times, %d columns>" % (self.name or "", self.t.size,
                                                         self.y.shape[1])


def _as_series(x, where):
    if isinstance(x, Series):
        return x
    if isinstance(x, tuple) and len(x) == 2:
        try:
            return Series(*x)
        except ValueError as e:
            raise ValueError("%s: %s" % (where, e)) from None
    raise TypeError("%s: expected (t, y) arrays or an nde.Series, got %s"
                    % (where, type(x).__name__))


def series_list(data):
    """The list of Series in data given as arrays, or None for a path or an nde.Data."""
    if isinstance(data, (str, os.PathLike, Data)):
        return None
    if isinstance(data, Series):
        return [data]
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], (Series, tuple)):
        return [_as_series(data, "data")]
    if hasattr(data, "items"):
        out = []
        for k, v in data.items():
            s = _as_series(v, "data[%r]" % (k,))
            s = Series(s.t, s.y, s.names, k, s.noise_std)
            out.append(s)
        return out
    if isinstance(data, (list, tuple)):
        if not data:
            raise ValueError("data: expected at least one series, got an empty list")
        return [_as_series(x, "data[%d]" % k) for k, x in enumerate(data)]
    raise TypeError("data: expected a path, (t, y) arrays, an nde.Series, a list or dict of "
                    "them, or an nde.Data; got %s" % type(data).__name__)


def _group_names(series):
    n = len(series)
    if n == 1 and series[0].name is None:
        return ["/"]
    w = len(str(n - 1))
    names = ["/" + (s.name if s.name is not None else "series%0*d" % (w, k))
             for k, s in enumerate(series)]
    seen = set()
    for nm in names:
        if nm in seen:
            raise ValueError("data: the series name %r is given twice (expected distinct names)"
                             % nm[1:])
        seen.add(nm)
    return names


def _open_path(path, model, label=None):
    names = [cstr(s) for s in model.states]
    cnames = ffi.new("const char *[]", names + [ffi.NULL])
    out = ffi.new("nde_data **")
    err = new_error()
    with h5_lock:
        st = lib.nde_data_open(cstr(os.fspath(path)), model.n_state, cnames, ffi.NULL, out, err)
    if st != lib.NDE_OK:
        msg = pystr(err.msg)
        if label is not None:
            msg = label(msg)
        raise error_for(st, msg)
    return ffi.gc(out[0], lib.ndepy_data_destroy)


# The writer syncs the file to disk before it renames it: in memory (tmpfs) that costs nothing.
_TMP = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK) \
    else None


def _open_series(series, model, label):
    """Write the series with nde's writer to a temporary file and open it (see the module doc)."""
    groups = _group_names(series)
    keep = []
    with tempfile.TemporaryDirectory(prefix="nde-data-", dir=_TMP) as tmp:
        path = os.path.join(tmp, "data.h5")
        # The library's messages name the file: say "data" (or the caller's label) instead.
        rename = (lambda m: m.replace(path, label))
        out = ffi.new("nde_writer **")
        err = new_error()
        with h5_lock:
            st = lib.nde_writer_create(cstr(path), out, err)
            if st != lib.NDE_OK:
                raise error_for(st, pystr(err.msg))
            w = out[0]
            try:
                for s, g in zip(series, groups):
                    names = s.names if s.names is not None else list(model.states)
                    if s.names is None and s.y.shape[1] != model.n_state:
                        raise ValueError(
                            "%s: y: expected %d columns, one per state component of %s (%s), "
                            "got %d; name the columns with nde.Series(t, y, names=[...]) to give "
                            "some of them" % (label + (":" + g if g != "/" else ""),
                                              model.n_state, model.filename,
                                              ", ".join(model.states), s.y.shape[1]))
                    cn = [cstr(x) for x in names]
                    keep.extend(cn)
                    cnames = ffi.new("const char *[]", cn)
                    keep.append(cnames)
                    ns = ffi.new("nde_series *")
                    ns.n = s.t.size
                    ns.d = s.y.shape[1]
                    ns.t = arrays.ptr(s.t)
                    ns.y = arrays.ptr(s.y)
                    ns.names = cnames
                    ns.noise_std = ffi.NULL if s.noise_std is None else arrays.ptr(s.noise_std)
                    st = lib.nde_writer_put_series(w, cstr(g), ns)
                    if st != lib.NDE_OK:
                        raise error_for(st, rename(pystr(lib.nde_writer_errmsg(w))))
                st = lib.nde_writer_commit(w)
                if st != lib.NDE_OK:
                    raise error_for(st, pystr(lib.nde_writer_errmsg(w)))
            finally:
                lib.nde_writer_destroy(out)
            return _open_path(path, model, rename)


class Data:
    """Time series opened for a model's states (an nde_data): from a path, arrays or series (see
    the module documentation).  Immutable; reusable by every fit, problem and score of models
    with the same state components.

    label  the name recorded as the data of a fit ("data_file" in its provenance): the path,
           or "arrays (K series)" """

    def __init__(self, data, model, label=None):
        model = as_model(model)
        if isinstance(data, Data):
            data._check_model(model)
            self.__dict__.update(data.__dict__)
            return
        series = series_list(data)
        if series is None:
            self.label = label or os.fspath(data)
            self._ptr = _open_path(data, model)
        else:
            self.label = label or "arrays (%d series)" % len(series)
            self._ptr = _open_series(series, model, "data")
        self.states = model.states

    def _check_model(self, model):
        if tuple(model.states) != tuple(self.states):
            raise ValueError("data: opened for the states %s, but %s has the states %s (open it "
                             "again for this model)" % (", ".join(self.states), model.filename,
                                                        ", ".join(model.states)))

    @property
    def n_series(self):
        return int(lib.nde_data_n_traj(self._ptr))

    @property
    def n_obs(self):
        """Observed (finite) values over every series."""
        return int(lib.nde_data_n_obs(self._ptr))

    @property
    def n_nan(self):
        """Missing (NaN) values in the data as given."""
        return int(lib.nde_data_n_nan(self._ptr))

    @property
    def series(self):
        """Every series as SeriesView(name, t, y), copies in the model's state order."""
        n = len(self.states)
        out = []
        for k in range(self.n_series):
            tr = lib.nde_data_traj(self._ptr, k)
            out.append(SeriesView(pystr(tr.name), arrays.copy_doubles(tr.t, tr.n),
                                  arrays.copy_doubles(tr.y, tr.n * n).reshape(tr.n, n)))
        return out

    def __len__(self):
        return self.n_series

    def save(self, path):
        """Write the series as a time-series file of the data convention (docs/data-format.md),
        which nde fit and nde inspect read: one group per series (the root for a single series
        named "/"), the observed state columns with their names and recorded noise."""
        out = ffi.new("nde_writer **")
        err = new_error()
        n = len(self.states)
        with h5_lock:
            check(lib.nde_writer_create(cstr(os.fspath(path)), out, err), err)
            w = out[0]
            try:
                for k in range(self.n_series):
                    tr = lib.nde_data_traj(self._ptr, k)
                    cols = [j for j in range(n) if tr.col[j] >= 0]
                    y = arrays.copy_doubles(tr.y, tr.n * n).reshape(tr.n, n)[:, cols].copy()
                    t = arrays.copy_doubles(tr.t, tr.n)
                    names = [cstr(self.states[j]) for j in cols]
                    cn = ffi.new("const char *[]", names)
                    s = ffi.new("nde_series *")
                    s.n, s.d, s.t, s.y, s.names = tr.n, len(cols), arrays.ptr(t), arrays.ptr(y), cn
                    if tr.noise_std != ffi.NULL:
                        ns = np.array([tr.noise_std[j] for j in cols])
                        s.noise_std = arrays.ptr(ns)
                    st = lib.nde_writer_put_series(w, tr.name, s)
                    if st != lib.NDE_OK:
                        raise error_for(st, pystr(lib.nde_writer_errmsg(w)))
                st = lib.nde_writer_commit(w)
                if st != lib.NDE_OK:
                    raise error_for(st, pystr(lib.nde_writer_errmsg(w)))
            finally:
                lib.nde_writer_destroy(out)

    def __repr__(self):
        return "<nde.Data %s: %d series, %d observed values, %d missing>" % (
            self.label, self.n_series, self.n_obs, self.n_nan)


def as_data(data, model, label=None):
    if isinstance(data, Data):
        data._check_model(model)
        return data
    return Data(data, model, label)


class Problem:
    """A model bound to data (nde_problem): the trajectory loss (no shooting, no minibatch) at any
    theta and its gradient, each series started from its first observed row (a component missing
    there takes the model's declared initial value), as nde grad computes them.

        p = nde.Problem(model, data, solver="rk4", grad="discrete", loss="mean")
        L, g = p.loss_and_grad(theta)

    Options: solver, dt, steps_per_interval, rtol, atol, h0, max_steps, grad, loss ("mean" or
    "sum"), scale ("none" or "std"), log_loss.  Calls on one Problem are serialised (it owns its
    workspaces); make one per thread to run in parallel."""

    def __init__(self, model, data, **options):
        from .options import problem_opts
        self.model = as_model(model)
        self.data = as_data(data, self.model)
        keep = []
        fo = problem_opts(options, keep, where="Problem()")
        self._method = pystr(fo.solver.method)
        out = ffi.new("nde_problem **")
        err = new_error()
        check(lib.nde_problem_create(self.model._ptr, self.data._ptr, fo, out, err), err)
        self._ptr = ffi.gc(out[0], lib.ndepy_problem_destroy)
        self.n_theta = int(lib.nde_problem_n_theta(self._ptr))
        self._L = ffi.new("double *")
        self._info = ffi.new("nde_fit_info *")
        self._lock = threading.Lock()
        self.last_stop = None

    @property
    def n_series(self):
        return self.data.n_series

    def u0(self, k=0):
        """The initial state of series k (by the first-row rule above)."""
        p = lib.nde_problem_u0(self._ptr, int(k))
        if p == ffi.NULL:
            raise IndexError("series %d: out of range (%d series)" % (k, self.n_series))
        return arrays.copy_doubles(p, self.model.n_state)

    def _theta(self, theta):
        if (type(theta) is np.ndarray and theta.dtype == np.float64 and theta.ndim == 1
                and theta.shape[0] == self.n_theta and theta.flags.c_contiguous):
            return theta
        return arrays.vector(theta, "theta", self.n_theta)

    def _eval(self, theta, g):
        th = self._theta(theta)
        gp = ffi.NULL if g is None else ffi.from_buffer("double[]", g, require_writable=True)
        with self._lock:
            st = lib.nde_problem_loss(self._ptr, ffi.from_buffer("double[]", th), self._L, gp,
                                      self._info)
            L = self._L[0]
            reason = self._info.stop.reason
            if st != lib.NDE_OK:
                raise error_for(st, pystr(lib.nde_problem_errmsg(self._ptr)))
            if reason != lib.NDE_REASON_NONE:
                self.last_stop = stop_info(self._method, self._info.stop)
            else:
                self.last_stop = None
        if self.last_stop is not None:
            warnings.warn("the loss is NaN: %s" % self.last_stop.message, SolverStopWarning,
                          stacklevel=3)
        return L

    def loss(self, theta):
        """The loss at theta (NaN, with a SolverStopWarning, when a solve stops)."""
        return self._eval(theta, None)

    def loss_and_grad(self, theta, out=None):
        """(loss, dL/dtheta) at theta.  out: a float64 array [n_theta] to write the gradient into
        (returned), else a new array."""
        if out is None:
            g = np.empty(self.n_theta)
        else:
            g = out
            if not (type(g) is np.ndarray and g.dtype == np.float64 and g.shape == (self.n_theta,)
                    and g.flags.c_contiguous and g.flags.writeable):
                raise ValueError("out: expected a writable C-contiguous float64 array of shape "
                                 "[%d], got %s" % (self.n_theta, _describe(g)))
        return self._eval(theta, g), g

    def __repr__(self):
        return "<nde.Problem %s on %s, %d learnable values>" % (
            self.model.filename, self.data.label, self.n_theta)


def _describe(x):
    if isinstance(x, np.ndarray):
        return "%s array of shape [%s]%s" % (x.dtype, ", ".join(map(str, x.shape)),
                                             "" if x.flags.c_contiguous else ", not contiguous")
    return type(x).__name__
