"""Time series for a model (nde/data.h), from a file or from arrays, and a model bound to them
(nde_problem: the loss and its gradient at any theta).

Data can be given wherever a function takes `data` as
  - a path: "DATA.h5" (every series in it) or "DATA.h5:/group", read by the library as nde fit
    reads it (nde_data_open_for: with the model's measured inputs and constants from data);
  - arrays (t, y): one series, t [N] strictly increasing, y [N, D], NaN for a missing value; the
    D columns are the model's state components in order (or its state components and then its
    observables), or those named by Series(names=...): state components and observables
    (`observe NAME = ...`), matched by name as nde_data_open_for matches a file's columns;
  - nde.Series(t, y, names=None, name=None, noise_std=None, sigma=None, inputs=None,
    consts=None): one series with its measured inputs, constants and known noise;
  - a list of those (a batch of series, each on its own time grid), or a dict {name: series};
  - an nde.Data, opened once for a model and reusable.
Series from arrays are made by the library (nde_data_from_series), which checks the values
(times, Inf, all-NaN columns, names, inputs, constants) with the messages it gives for files, in
which "series K" stands for the file (K counts the series in the order of Data.series).  List
item k is named /seriesK (zero-padded), named series keep their names, a single unnamed series
is "/" (as a file's root series), and series come in name order, as the groups of a file do, so
that Data.save writes a file that nde fit reads as the same batch.
"""
import os
import threading
import warnings
from collections import namedtuple

import numpy as np

from . import arrays
from ._lib import cstr, ffi, h5_lock, lib, pystr
from .errors import SolverStopWarning, check, error_for, new_error
from .model import as_model, stop_info

SeriesView = namedtuple("SeriesView", "name t y inputs consts sigma")
SeriesView.__doc__ = ("One series as the library holds it: its group name, times [N] and "
                      "values [N, K] in the order of Data.columns (the model's state components, "
                      "then its observables; NaN where missing or unobserved), its measured "
                      "inputs (t_u [M], U [M, m] in the order of the model's inputs) or None, "
                      "its constants from data {name: value}, and its known noise sigma per "
                      "column (NaN where unknown) or None.")


class Series:
    """One time series given as arrays.

    t          [N] strictly increasing times
    y          [N, D] observations, NaN = missing ([N] when D = 1)
    names      D names of the columns: state components or observables (default: the model's
               components, or its components and then its observables)
    name       the series' name (its group name in a result file)
    noise_std  D noise standard deviations (recorded, as nde simulate records them)
    sigma      D known noise standard deviations (> 0, NaN where unknown): the data's sigma
    inputs     the measured inputs that drove it, on their own time grid: (t_u, U) with U
               [M, m] in the order of the model's inputs (Model.inputs; [M] when m = 1), or
               (t_u, {name: values [M]}); t_u strictly increasing and covering t
    consts     its constants from data {name: value} (the model's "const NAME (from data)")"""

    def __init__(self, t, y, names=None, name=None, noise_std=None, sigma=None, inputs=None,
                 consts=None):
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
        d = self.y.shape[1]
        self.noise_std = None if noise_std is None else arrays.vector(noise_std, "noise_std", d)
        self.sigma = None if sigma is None else arrays.vector(sigma, "sigma", d)
        self.inputs = None if inputs is None else _input_arrays(inputs)
        self.consts = None if consts is None else _const_dict(consts)

    def _copy(self, **changes):
        """A shallow copy with some attributes changed (a name is checked as Series checks
        it)."""
        s = Series.__new__(Series)
        s.__dict__.update(self.__dict__)
        if "name" in changes:
            changes["name"] = Series(self.t[:1], self.y[:1], name=changes["name"]).name
        s.__dict__.update(changes)
        return s

    def __repr__(self):
        return "<nde.Series %s: %d times, %d columns%s%s>" % (
            self.name or "", self.t.size, self.y.shape[1],
            ", %d input samples" % self.inputs[0].size if self.inputs else "",
            ", constants " + ", ".join("%s=%g" % kv for kv in self.consts.items())
            if self.consts else "")


def write_text(path, text):
    """Write text (UTF-8) to path as nde writes its text outputs (nde_write_file: a temporary
    file in the target's directory, synced and renamed over it, so a failure leaves an existing
    file untouched); an nde.FileError with nde's message when it cannot be written."""
    data = text.encode("utf-8")
    err = new_error()
    check(lib.nde_write_file(cstr(os.fspath(path)), data, len(data), err), err)


def _input_arrays(inputs, argname="inputs"):
    """(t_u, U [M, m], names or None) from (t_u, U) or (t_u, {name: values})."""
    if not (isinstance(inputs, tuple) and len(inputs) == 2):
        raise ValueError("%s: expected (t, U) with U [M, m] in the order of the model's inputs, "
                         "or (t, {name: values}), got %s" % (argname, type(inputs).__name__))
    tu = arrays.real_array(inputs[0], argname + ": t", ndim=1, expected="[M]")
    vals = inputs[1]
    if hasattr(vals, "items"):
        names = [str(k) for k in vals]
        if not names:
            raise ValueError("%s: expected at least one input, got an empty dict" % argname)
        U = np.empty((tu.size, len(names)))
        for i, (k, v) in enumerate(vals.items()):
            U[:, i] = arrays.real_array(v, "%s: %s" % (argname, k), shape=(tu.size,),
                                        expected="[%d] (one value per time)" % tu.size)
        return tu, U, names
    U = np.asarray(vals) if not isinstance(vals, np.ndarray) else vals
    if U.ndim == 1:
        U = U.reshape(-1, 1)
    U = arrays.real_array(U, argname + ": U", shape=(tu.size, None),
                          expected="[%d, m] (one row per time)" % tu.size)
    return tu, U, None


def _const_dict(consts, argname="consts"):
    if not hasattr(consts, "items"):
        raise TypeError("%s: expected a dict {name: value}, got %s"
                        % (argname, type(consts).__name__))
    out = {}
    for k, v in consts.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError("%s: %s: expected a number, got %r" % (argname, k, v))
        out[str(k)] = float(v)
    return out


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
    """The list of Series in data given as arrays (in the order given), or None for a path or
    an nde.Data."""
    if isinstance(data, (str, os.PathLike, Data)):
        return None
    if isinstance(data, Series):
        return [data]
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], (Series, tuple)):
        return [_as_series(data, "data")]
    if hasattr(data, "items"):
        if not data:
            raise ValueError("data: expected at least one series, got an empty dict")
        return [_as_series(v, "data[%r]" % (k,))._copy(name=k) for k, v in data.items()]
    if isinstance(data, (list, tuple)):
        if not data:
            raise ValueError("data: expected at least one series, got an empty list")
        return [_as_series(x, "data[%d]" % k) for k, x in enumerate(data)]
    raise TypeError("data: expected a path, (t, y) arrays, an nde.Series, a list or dict of "
                    "them, or an nde.Data; got %s" % type(data).__name__)


def _with_defaults(series, inputs, consts):
    """The series with the inputs and constants given for all of them (one value) or each (a
    list, in the order given) where a series has none of its own."""
    def per_series(x, what, conv):
        if x is None:
            return [None] * len(series)
        if isinstance(x, list):
            if len(x) != len(series):
                raise ValueError("%s: a list gives one value per series: expected %d, got %d"
                                 % (what, len(series), len(x)))
            return [None if v is None else conv(v, "%s[%d]" % (what, k))
                    for k, v in enumerate(x)]
        v = conv(x, what)
        return [v] * len(series)
    ins = per_series(inputs, "inputs", _input_arrays)
    cs = per_series(consts, "consts", _const_dict)
    out = []
    for s, i, c in zip(series, ins, cs):
        if i is not None and s.inputs is None:
            s = s._copy(inputs=i)
        if c is not None and s.consts is None:
            s = s._copy(consts=c)
        out.append(s)
    return out


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


def _columns(model):
    """The data columns of a model, as nde_data_open_for opens a file for it: its state
    components, then its observables."""
    return tuple(model.states) + tuple(model.observables)


def _model_names(model):
    """The model's column (state components, then observables), input and constant-from-data
    names as C arrays (kept in keep)."""
    keep = []

    def carr(names):
        c = [cstr(x) for x in names]
        keep.append(c)
        a = ffi.new("const char *[]", c + [ffi.NULL])
        keep.append(a)
        return a
    return carr(_columns(model)), carr(model.inputs), carr(model.data_consts), keep


def _open_path(path, model):
    out = ffi.new("nde_data **")
    err = new_error()
    with h5_lock:
        st = lib.nde_data_open_for(cstr(os.fspath(path)), model._ptr, out, err)
    if st != lib.NDE_OK:
        raise error_for(st, pystr(err.msg))
    return ffi.gc(out[0], lib.ndepy_data_destroy)


def _open_series(series, model):
    """The series (in name order) made into an nde_data by the library (nde_data_from_series),
    with the model's inputs and constants from data requested."""
    groups = _group_names(series)
    order = sorted(range(len(series)), key=lambda k: groups[k])
    columns, inputs, dconsts, keep = _model_names(model)
    n_col = model.n_state + len(model.observables)
    n = len(series)
    ns = ffi.new("nde_series[]", n)
    nx = ffi.new("nde_series_extra[]", n)
    for pos, k in enumerate(order):
        s, g = series[k], groups[k]
        if s.names is None and s.y.shape[1] not in (model.n_state, n_col):
            raise ValueError(
                "series %d: y: expected %d columns, one per state component of %s (%s)%s, got "
                "%d; name the columns with nde.Series(t, y, names=[...]) to give some of them"
                % (pos, model.n_state, model.filename, ", ".join(model.states),
                   ", or %d with its observables (%s) after them"
                   % (n_col, ", ".join(model.observables)) if model.observables else "",
                   s.y.shape[1]))
        if s.names is None:
            cnames = columns
        else:
            cn = [cstr(x) for x in s.names]
            cnames = ffi.new("const char *[]", cn)
            keep += [cn, cnames]
        q = ns[pos]
        q.n, q.d = s.t.size, s.y.shape[1]
        q.t, q.y, q.names = arrays.ptr(s.t), arrays.ptr(s.y), cnames
        q.noise_std = ffi.NULL if s.noise_std is None else arrays.ptr(s.noise_std)
        x = nx[pos]
        x.sigma = ffi.NULL if s.sigma is None else arrays.ptr(s.sigma)
        gname = cstr(g)
        keep.append(gname)
        x.name = gname
        where = "series %d: " % pos
        if s.inputs is not None or model.inputs:
            if s.inputs is None:
                raise ValueError("%sinputs: %s declares measured inputs (%s): give their samples "
                                 "with the series, nde.Series(..., inputs=(t, U)), or for every "
                                 "series (inputs=)" % (where, model.filename,
                                                       ", ".join(model.inputs)))
            tu, U, inames = s.inputs
            tu, U = model.input_samples((tu, U if inames is None else dict(zip(inames, U.T))),
                                        where + "inputs")
            keep += [tu, U]
            x.m, x.n_u = U.shape[1], tu.size
            x.u_t, x.u, x.input_names = arrays.ptr(tu), arrays.ptr(U), inputs
        if s.consts is not None or model.data_consts:
            if s.consts is None and model.data_consts:
                raise ValueError("%sconsts: %s declares constants from data (%s): give their "
                                 "values with the series, nde.Series(..., consts={...}), or for "
                                 "every series (consts=)" % (where, model.filename,
                                                            ", ".join(model.data_consts)))
            vals = model.const_values(s.consts, where + "consts")
            keep.append(vals)
            if vals.size:
                x.n_consts, x.const_names, x.consts = vals.size, dconsts, arrays.ptr(vals)
    o = ffi.new("nde_data_opts *", lib.nde_data_opts_default())
    o.n_inputs, o.n_consts = len(model.inputs), len(model.data_consts)
    o.input_names = inputs if model.inputs else ffi.NULL
    o.const_names = dconsts if model.data_consts else ffi.NULL
    out = ffi.new("nde_data **")
    err = new_error()
    st = lib.nde_data_from_series(n_col, columns, n, ns, nx, o, out, err)
    if st != lib.NDE_OK:
        raise error_for(st, pystr(err.msg))
    return ffi.gc(out[0], lib.ndepy_data_destroy)


class Data:
    """Time series opened for a model's states, measured inputs and constants from data (an
    nde_data): from a path, arrays or series (see the module documentation).  Immutable;
    reusable by every fit, problem and score of models with the same names.

    label   the name recorded as the data of a fit ("data_file" in its provenance): the path,
            or "arrays (K series)"
    inputs  for series given as arrays without their own: measured inputs (t_u, U) or
            (t_u, {name: values}) for all of them, or a list with one per series (in the order
            given); consts likewise ({name: value}, or a list of those)."""

    def __init__(self, data, model, label=None, inputs=None, consts=None):
        model = as_model(model)
        if isinstance(data, Data):
            if inputs is not None or consts is not None:
                raise ValueError("inputs, consts: an nde.Data holds its series' own (give them "
                                 "with the series when opening it)")
            data._check_model(model)
            self.__dict__.update(data.__dict__)
            return
        series = series_list(data)
        if series is None:
            if inputs is not None or consts is not None:
                raise ValueError("inputs, consts: the series of %s carry their own (inputs= and "
                                 "consts= go with series given as arrays)" % os.fspath(data))
            self.label = label or os.fspath(data)
            self._ptr = _open_path(data, model)
            self._arrays = False
        else:
            series = _with_defaults(series, inputs, consts)
            self.label = label or "arrays (%d series)" % len(series)
            self._ptr = _open_series(series, model)
            self._arrays = True
        self.states = model.states
        self.observables = model.observables
        self.inputs = model.inputs
        self.data_consts = model.data_consts

    @property
    def columns(self):
        """The names of the columns of SeriesView.y: the model's state components, then its
        observables."""
        return tuple(self.states) + tuple(self.observables)

    def _check_model(self, model):
        for what, mine, theirs in (("states", self.states, model.states),
                                   ("observables", self.observables, model.observables),
                                   ("measured inputs", self.inputs, model.inputs),
                                   ("constants from data", self.data_consts, model.data_consts)):
            if tuple(mine) != tuple(theirs):
                raise ValueError("data: opened for the %s %s, but %s has the %s %s (open it "
                                 "again for this model)" % (what, ", ".join(mine) or "(none)",
                                                            model.filename, what,
                                                            ", ".join(theirs) or "(none)"))

    def _message(self, msg):
        """A library message about these data.  The library names a series from arrays
        "series K" itself (nde_data_place); data from arrays have no file, so a message about
        all of them (": ...") gets the label."""
        if self._arrays and msg.startswith(":"):
            return self.label + msg
        return msg

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
        """Every series as a SeriesView (name, t, y, inputs, consts, sigma): copies, with the
        columns of .columns (the model's state components, then its observables)."""
        n = len(self.columns)
        out = []
        for k in range(self.n_series):
            tr = lib.nde_data_traj(self._ptr, k)
            inputs = None
            if tr.n_inputs:
                inputs = (arrays.copy_doubles(tr.u_t, tr.n_u),
                          arrays.copy_doubles(tr.u, tr.n_u * tr.n_inputs).reshape(
                              tr.n_u, tr.n_inputs))
            consts = {pystr(tr.const_names[j]): tr.consts[j] for j in range(tr.n_consts)}
            sigma = None if tr.sigma == ffi.NULL else arrays.copy_doubles(tr.sigma, n)
            out.append(SeriesView(pystr(tr.name), arrays.copy_doubles(tr.t, tr.n),
                                  arrays.copy_doubles(tr.y, tr.n * n).reshape(tr.n, n),
                                  inputs, consts, sigma))
        return out

    def __len__(self):
        return self.n_series

    def save(self, path):
        """Write the series as a time-series file of the data convention (docs/data-format.md),
        which nde fit and nde inspect read: one group per series (the root for a single series
        named "/"), the observed columns (state components and observables) with their names,
        recorded noise and known noise (sigma), the measured inputs and the constants from
        data.  What nde merge makes of several files, from arrays."""
        out = ffi.new("nde_writer **")
        err = new_error()
        n = len(self.columns)
        _, in_names, c_names, keep = _model_names(self)
        with h5_lock:
            check(lib.nde_writer_create(cstr(os.fspath(path)), out, err), err)
            w = out[0]
            try:
                for k in range(self.n_series):
                    tr = lib.nde_data_traj(self._ptr, k)
                    cols = [j for j in range(n) if tr.col[j] >= 0]
                    y = arrays.copy_doubles(tr.y, tr.n * n).reshape(tr.n, n)[:, cols].copy()
                    t = arrays.copy_doubles(tr.t, tr.n)
                    names = [cstr(self.columns[j]) for j in cols]
                    cn = ffi.new("const char *[]", names)
                    s = ffi.new("nde_series *")
                    s.n, s.d, s.t, s.y, s.names = tr.n, len(cols), arrays.ptr(t), arrays.ptr(y), cn
                    x = ffi.new("nde_series_extra *")
                    hold = [names, cn, t, y]
                    for src, field in ((tr.noise_std, "noise_std"), (tr.sigma, "sigma")):
                        if src != ffi.NULL:
                            v = np.array([src[j] for j in cols])
                            hold.append(v)
                            setattr(s if field == "noise_std" else x, field, arrays.ptr(v))
                    if tr.n_inputs:
                        x.m, x.n_u, x.u_t, x.u = tr.n_inputs, tr.n_u, tr.u_t, tr.u
                        x.input_names = in_names
                    if tr.n_consts:
                        x.n_consts, x.const_names, x.consts = tr.n_consts, c_names, tr.consts
                    st = lib.nde_writer_put_series_ex(w, tr.name, s, x)
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


def as_data(data, model, label=None, inputs=None, consts=None):
    if isinstance(data, Data) and inputs is None and consts is None:
        data._check_model(model)
        return data
    return Data(data, model, label, inputs=inputs, consts=consts)


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
        st = lib.nde_problem_create(self.model._ptr, self.data._ptr, fo, out, err)
        if st != lib.NDE_OK:
            raise error_for(st, self.data._message(pystr(err.msg)))
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
                raise error_for(st, self.data._message(pystr(lib.nde_problem_errmsg(self._ptr))))
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
