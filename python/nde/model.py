"""Models: a .nde file compiled into a right-hand side with exact derivatives (nde/model.h), and
what can be done with a model before any fit: simulate it, evaluate the loss against data and its
gradient.  The grammar of the language is docs/language.md."""
import os
import re
import warnings
from collections import namedtuple

import numpy as np

from . import arrays
from ._lib import cstr, ffi, h5_lock, lib, pystr
from .errors import ModelError, SolverStopWarning, check, error_for, new_error

Diagnostic = namedtuple("Diagnostic", "line col message is_note source_line")
Diagnostic.__doc__ = "One problem of a model file: 1-based line and column, the message."
ParamInfo = namedtuple("ParamInfo",
                       "name value learnable positive bounds transform offset line per_series")
ParamInfo.__doc__ = ("A scalar parameter as declared: value in natural units, learnable, "
                     "positive (optimised in log space), bounds (lo, hi) or None, transform "
                     "('none', 'log', 'logit'), offset in theta (None when fixed; for a "
                     "per-series parameter its index k in a series' block, theta[n_theta + "
                     "s * n_series_params + k]), line, per_series (one value per series).")
InputInfo = namedtuple("InputInfo", "name interp hold line")
InputInfo.__doc__ = ("A measured input: its name, interpolation ('linear', 'cubic', 'step'), "
                     "hold (the end values hold outside its samples) and declaration line.")
ConstInfo = namedtuple("ConstInfo", "name from_data value line")
ConstInfo.__doc__ = ("A constant: its name, from_data (one value per series, given with the "
                     "data) and its written value (NaN when from data), declaration line.")
NetInfo = namedtuple("NetInfo", "name offset n_params")
NetInfo.__doc__ = "A network: its block theta[offset:offset + n_params]."
LayoutEntry = namedtuple("LayoutEntry", "name kind offset length transform")
LayoutEntry.__doc__ = "One entry of the layout of theta: a parameter ('param') or a net's block."
StopInfo = namedtuple("StopInfo", "reason t_stop h_last bad_row bad_state message")
StopInfo.__doc__ = ("Why a solve stopped before its last output: the reason, the time reached, "
                    "the last step, the first non-finite row and state, and nde's sentence.")
SolveInfo = namedtuple("SolveInfo", "n_steps n_rhs n_rejected stop noise_std")
SolveInfo.__doc__ = ("Statistics of a simulation: accepted steps, right-hand-side calls, "
                     "rejected steps, stop (StopInfo or None), the noise std added per column.")

_TRANSFORMS = {lib.NDE_TRANSFORM_NONE: "none", lib.NDE_TRANSFORM_LOG: "log",
               lib.NDE_TRANSFORM_LOGIT: "logit"}
_INTERP = {lib.NDE_INTERP_LINEAR: "linear", lib.NDE_INTERP_CUBIC: "cubic",
           lib.NDE_INTERP_STEP: "step"}


def stop_info(method, stats):
    """StopInfo for a stats struct whose reason is not NONE, else None."""
    if stats.reason == lib.NDE_REASON_NONE:
        return None
    buf = ffi.new("char[]", 600)
    sp = stats if ffi.typeof(stats).kind == "pointer" else ffi.addressof(stats)
    lib.nde_stop_message(cstr(method), sp, buf, 600)
    return StopInfo(pystr(lib.nde_stop_reason_str(stats.reason)), stats.t_stop, stats.h_last,
                    stats.bad_row, stats.bad_state, pystr(buf))


def warn_stop(what, info, stacklevel=3):
    warnings.warn("%s stopped: %s" % (what, info.message), SolverStopWarning, stacklevel=stacklevel)


class Model:
    """A compiled .nde model.

        m = nde.Model.from_file("models/lotka_volterra_ude.nde")
        m = nde.Model(source_text)

    A model that does not compile raises nde.ModelError with every message as
    "FILE:LINE:COL: error: what" (and .diagnostics).  A Model is immutable; it can be shared by
    any number of fits, problems and threads."""

    def __init__(self, source, filename=None):
        if isinstance(source, bytes):
            src = source
        elif isinstance(source, str):
            src = source.encode()
        else:
            raise TypeError("Model(source): expected the model text as str, got %s (use "
                            "nde.Model.from_file(path) for a file)" % type(source).__name__)
        out = ffi.new("nde_model **")
        err = new_error()
        st = lib.nde_model_load_string(src, len(src), cstr(filename), out, err)
        try:
            self._adopt(out[0], st, err)
        except ModelError as e:
            if isinstance(source, str) and "\n" not in source and source.strip().endswith(".nde"):
                e.message += ("\n(nde.Model takes the model's text: for a file, use "
                              "nde.Model.from_file(%r))" % source.strip())
                e.args = (e.message,)
            raise

    @classmethod
    def from_file(cls, path):
        """Read and compile a .nde file (nde.FileError when it cannot be read)."""
        self = cls.__new__(cls)
        out = ffi.new("nde_model **")
        err = new_error()
        st = lib.nde_model_load_file(cstr(os.fspath(path)), out, err)
        self._adopt(out[0], st, err)
        return self

    def _adopt(self, ptr, st, err):
        if ptr != ffi.NULL:
            ptr = ffi.gc(ptr, lib.ndepy_model_destroy)
        if st != lib.NDE_OK:
            diags, message = [], pystr(err.msg)
            if ptr != ffi.NULL:
                d = ffi.new("nde_model_diag *")
                for i in range(lib.nde_model_n_diags(ptr)):
                    if lib.nde_model_get_diag(ptr, i, d) == lib.NDE_OK:
                        diags.append(Diagnostic(d.line, d.col, pystr(d.message), bool(d.is_note),
                                                pystr(d.source_line)))
                full = pystr(lib.nde_model_errmsg(ptr))
                if full and full.strip():
                    message = full.rstrip("\n")
            if st in (lib.NDE_ERR_PARSE, lib.NDE_ERR_MODEL):
                raise ModelError(message, "NDE_ERR_PARSE" if st == lib.NDE_ERR_PARSE
                                 else "NDE_ERR_MODEL", diags)
            raise error_for(st, message)
        self._ptr = ptr
        self._cache = None  # the last Problem of loss_and_grad (see there)
        n = lib.nde_model_state_dim(ptr)
        self.states = tuple(pystr(lib.nde_model_component_name(ptr, j)) for j in range(n))
        self._params = []
        p = ffi.new("nde_model_param_info *")
        for i in range(lib.nde_model_n_params(ptr)):
            check(lib.nde_model_get_param(ptr, i, p))
            self._params.append(ParamInfo(
                pystr(p.name), p.value, bool(p.learnable), bool(p.positive),
                (p.lo, p.hi) if p.bounded else None,
                _TRANSFORMS.get(p.transform, "none") if p.learnable else "none",
                int(p.offset) if p.learnable else None, p.line, bool(p.per_series)))
        self._nets = []
        q = ffi.new("nde_model_net_info *")
        for i in range(lib.nde_model_n_nets(ptr)):
            check(lib.nde_model_get_net(ptr, i, q))
            self._nets.append(NetInfo(pystr(q.name), int(q.offset), int(q.n_params)))
        self._inputs = []
        ii = ffi.new("nde_model_input_info *")
        for i in range(lib.nde_model_n_inputs(ptr)):
            check(lib.nde_model_get_input(ptr, i, ii))
            self._inputs.append(InputInfo(pystr(ii.name), _INTERP.get(ii.interp, "linear"),
                                          bool(ii.hold), ii.line))
        self._consts = []
        data_consts = [None] * lib.nde_model_n_data_consts(ptr)
        ci = ffi.new("nde_model_const_info *")
        for i in range(lib.nde_model_n_consts(ptr)):
            check(lib.nde_model_get_const(ptr, i, ci))
            self._consts.append(ConstInfo(pystr(ci.name), bool(ci.from_data), ci.value, ci.line))
            if ci.from_data:
                data_consts[ci.column] = pystr(ci.name)
        self.data_consts = tuple(data_consts)
        self.observables = tuple(pystr(lib.nde_model_observable_name(ptr, i))
                                 for i in range(lib.nde_model_n_observables(ptr)))

    # ---- what the model declares ----

    @property
    def source(self):
        """The source text."""
        return pystr(lib.nde_model_source(self._ptr))

    @property
    def filename(self):
        """The file name used in messages ("<string>" for text without one)."""
        return pystr(lib.nde_model_filename(self._ptr))

    @property
    def n_state(self):
        """The width n of a state row (vector states count their components)."""
        return len(self.states)

    @property
    def n_theta(self):
        """The length of the shared part of theta (everything learnable but the per-series
        parameters): all of theta for a model without per-series parameters."""
        return int(lib.nde_model_n_theta(self._ptr))

    @property
    def n_series_params(self):
        """The number of per-series parameters: the size of one series' block of theta."""
        return int(lib.nde_model_n_series_params(self._ptr))

    def n_theta_full(self, n_series=1):
        """The length of theta for n_series series: n_theta + n_series * n_series_params."""
        return int(lib.nde_model_n_theta_full(self._ptr, _n_series(n_series)))

    @property
    def inputs(self):
        """The names of the measured inputs in declaration order (the order of the columns of
        an inputs array)."""
        return tuple(i.name for i in self._inputs)

    @property
    def input_info(self):
        """InputInfo of every measured input, in declaration order."""
        return list(self._inputs)

    @property
    def const_info(self):
        """ConstInfo of every constant (written in the model or from data), in declaration
        order; .data_consts names those given with the data, in column order."""
        return list(self._consts)

    @property
    def params(self):
        """The declared values of the scalar parameters (natural units), fixed ones included."""
        return {p.name: p.value for p in self._params}

    @property
    def param_info(self):
        """ParamInfo of every scalar parameter, in declaration order."""
        return list(self._params)

    @property
    def nets(self):
        """NetInfo of every network, by name."""
        return {n.name: n for n in self._nets}

    @property
    def layout(self):
        """The layout of theta: LayoutEntry per learnable parameter or net, in theta order."""
        e = ffi.new("nde_model_layout_entry *")
        out = []
        for i in range(lib.nde_model_n_layout(self._ptr)):
            check(lib.nde_model_get_layout(self._ptr, i, e))
            out.append(LayoutEntry(pystr(e.name), "net" if e.kind == lib.NDE_LAYOUT_NET else "param",
                                   int(e.offset), int(e.length),
                                   _TRANSFORMS.get(e.transform, "none")))
        return out

    @property
    def initial_state(self):
        """The declared initial state (0 for components declared without one)."""
        u = np.zeros(self.n_state)
        lib.nde_model_initial_state(self._ptr, arrays.wptr(u))
        return u

    def __repr__(self):
        extra = "".join(", %s %s" % (what, ", ".join(names)) for what, names in (
            ("inputs", self.inputs), ("constants from data", self.data_consts),
            ("observables", self.observables)) if names)
        return "<nde.Model %s: states %s, %d parameters, nets %s%s, %d learnable values>" % (
            self.filename, ", ".join(self.states), len(self._params),
            ", ".join(n.name for n in self._nets) or "none", extra, self.n_theta)

    # ---- theta and parameters ----

    def init_theta(self, seed=1, n_series=1):
        """The initial theta of a fit with this seed (n_theta_full(n_series) values): learnable
        parameters at their declared values (transformed), nets by their initialisation
        schemes, then every series' block of per-series parameters at their declared values."""
        ns = _n_series(n_series)
        theta = np.zeros(self.n_theta_full(ns))
        check(lib.nde_model_init_theta_full(self._ptr, _u64(seed, "seed"), ns,
                                            arrays.wptr(theta)))
        return theta

    def theta(self, params=None, seed=1, init=None, n_series=1):
        """A theta for n_series series: init or the initialisation with seed, then the learnable
        parameters of params ({name: natural value}; a per-series parameter takes one value for
        every series or a list of n_series values) stored into it.

        init  a theta (an array), an nde.Result, or a file read as nde fit --init reads it
              (nde_read_params: /params/theta, its layout checked when the file records one,
              then /params/values/NAME in natural units; a file may hold only these)."""
        ns = _n_series(n_series)
        if init is None:
            theta = self.init_theta(seed, ns)
        elif isinstance(init, (str, os.PathLike)):
            theta = self.init_theta(seed, ns)
            err = new_error()
            with h5_lock:
                st = lib.nde_read_params(cstr(os.fspath(init)), self._ptr, ns,
                                         arrays.wptr(theta), err)
            if st != lib.NDE_OK:
                raise error_for(st, "init: " + pystr(err.msg))
        else:
            theta = self._theta_of(init, "init", ns).copy()
        if params:
            self._set_params(theta, params, "params", ns)
        return theta

    def param_values(self, theta, series=0):
        """The natural values of every scalar parameter at theta, fixed ones included; a
        per-series parameter's value in series `series` (theta then holds the blocks of at least
        series + 1 series)."""
        th = self._full_theta(theta, "theta")
        ns = self._series_in(th)
        if isinstance(series, bool) or not isinstance(series, (int, np.integer)) \
                or not 0 <= series < ns:
            raise ValueError("series: expected an index in [0, %d), got %r" % (ns, series))
        p = arrays.ptr(th)
        return {info.name: lib.nde_model_param_value_series(self._ptr, i, p, int(series))
                for i, info in enumerate(self._params)}

    def _series_in(self, th):
        nsp = self.n_series_params
        return (th.size - self.n_theta) // nsp if nsp else 1

    def _full_theta(self, theta, argname, n_series=None):
        """theta as a float64 vector of n_theta_full(n_series) values (any whole number of
        series' blocks when n_series is None)."""
        if n_series is not None:
            return arrays.vector(theta, argname, self.n_theta_full(n_series))
        th = arrays.real_array(theta, argname, ndim=1, expected="[%d]" % self.n_theta_full(1))
        nsp = self.n_series_params
        if not nsp:
            return arrays.vector(th, argname, self.n_theta)
        if th.size < self.n_theta + nsp or (th.size - self.n_theta) % nsp:
            raise ValueError("%s: expected a float64 array of shape [%d + S x %d] (the shared "
                             "part, then %d per-series values for each of S series), got shape "
                             "[%d]" % (argname, self.n_theta, nsp, nsp, th.size))
        return th

    def _set_params(self, theta, params, argname, n_series=1):
        p = arrays.wptr(theta)
        if not hasattr(params, "items"):
            raise TypeError("%s: expected a dict {name: value}, got %s"
                            % (argname, type(params).__name__))
        for name, value in params.items():
            i = lib.nde_model_find_param(self._ptr, cstr(name))
            if i < 0:
                raise ValueError("%s: '%s' is not a parameter of %s (expected one of %s)" % (
                    argname, name, self.filename,
                    ", ".join(q.name for q in self._params) or "none: it declares no parameters"))
            info = self._params[i]
            if not info.learnable:
                raise ValueError("%s: %s is fixed in %s (line %d) and cannot be set (remove "
                                 "'(fixed)' there to vary it)" % (argname, name, self.filename,
                                                                  info.line))
            if info.per_series:
                values = np.full(n_series, float(value)) if np.ndim(value) == 0 \
                    else np.ravel(np.asarray(value, dtype=float))
                if values.size != n_series:
                    raise ValueError("%s: %s is a per-series parameter: expected one value or %d "
                                     "(one per series), got %d" % (argname, name, n_series,
                                                                   values.size))
                bad = [v for s, v in enumerate(values) if lib.nde_model_set_param_series(
                    self._ptr, i, s, float(v), p) != lib.NDE_OK]
            else:
                bad = [value] if lib.nde_model_set_param(self._ptr, i, float(value), p) \
                    != lib.NDE_OK else []
            if bad:
                if info.bounds:
                    why = "outside its bounds (expected a value in (%r, %r))" % info.bounds
                else:
                    why = "outside its domain (expected a %s value)" % (
                        "positive" if info.positive else "valid")
                raise ValueError("%s: %s = %r is %s" % (argname, name, bad[0], why))

    def _theta_of(self, x, argname, n_series=1):
        """theta from an array or a Result."""
        from .result import Result
        if isinstance(x, Result):
            x = x.theta
        return arrays.vector(x, argname, self.n_theta_full(n_series))

    def _state_of(self, u0, argname, base=None):
        """A state row from an array of n values or a dict {component: value} over base."""
        if hasattr(u0, "items"):
            u = (self.initial_state if base is None else np.array(base, dtype=float))
            for name, v in u0.items():
                j = lib.nde_model_find_component(self._ptr, cstr(name))
                if j < 0:
                    raise ValueError("%s: '%s' is not a state component of %s (expected one of "
                                     "%s)" % (argname, name, self.filename, ", ".join(self.states)))
                u[j] = float(v)
            return u
        return arrays.vector(u0, argname, self.n_state)

    # ---- simulation ----

    def simulate(self, t, u0=None, params=None, theta=None, inputs=None, consts=None,
                 columns=None, solver="rk4", dt=None, steps_per_interval=None, rtol=None,
                 atol=None, max_steps=None, noise=0.0, seed=1, info=False):
        """Integrate the model through the times t (t[0] is the initial time): an array [T, K],
        one column per state component or per name of columns.

        u0       the initial state: n values, or {component: value} over the declared initial
                 state; default the declared one (as nde simulate)
        params   {name: natural value} over theta (default: the initialisation with seed)
        theta    the whole parameter vector instead (n_theta_full(1) values: one series)
        inputs   the measured inputs, required when the model declares them (nde simulate
                 --inputs): (t_u, U) with U [M, m] in the order of .inputs ([M] when m = 1),
                 or (t_u, {name: values [M]}); samples at strictly increasing times t_u that
                 cover t unless the input is declared hold
        consts   {name: value} for the constants declared (from data) (nde simulate --const)
        columns  names of state components and observables to return (nde simulate
                 --columns); default every state component in order
        solver   "rk4" (default: 10 steps per output interval, as nde simulate), or any name of
                 nde.solver_names(); dt, steps_per_interval, rtol, atol, max_steps as the
                 options of the same names
        noise    Gaussian noise with std noise * mean(|y_j|) per column, drawn with seed
        info     also return SolveInfo (steps, stop, noise std)
        A solve that stops early returns NaN rows after the stop and warns (SolverStopWarning)."""
        tt = arrays.real_array(t, "t", ndim=1, expected="[T]")
        if tt.size < 1:
            raise ValueError("t: expected at least one time, got none")
        if theta is not None:
            th = arrays.vector(theta, "theta", self.n_theta_full(1)).copy()
        else:
            th = self.init_theta(seed)
        if params:
            self._set_params(th, params, "params")
        u = self.initial_state if u0 is None else self._state_of(u0, "u0")
        keep = []
        so, K = self._sim_opts(keep, columns, solver, dt, steps_per_interval, rtol, atol,
                               max_steps, noise, seed)
        so.inputs = self._inputs_arg(inputs, keep)
        so.consts = self._consts_arg(consts, keep)
        Y = np.empty((tt.size, K))
        noise_std = np.zeros(K)
        stats = ffi.new("nde_solve_stats *")
        err = new_error()
        st = lib.nde_simulate(self._ptr, arrays.ptr(th), arrays.ptr(u), tt.size, arrays.ptr(tt),
                              so, arrays.wptr(Y), arrays.wptr(noise_std), stats, err)
        check(st, err)
        stop = stop_info(pystr(so.solver.method), stats)
        if stop is not None:
            warn_stop("the simulation", stop)
        if info:
            return Y, SolveInfo(stats.n_steps, stats.n_rhs, stats.n_rejected, stop, noise_std)
        return Y

    def _sim_opts(self, keep, columns, solver, dt, steps_per_interval, rtol, atol, max_steps,
                  noise, seed):
        """nde_sim_opts for simulate and simulate_many (without inputs and constants), and the
        number of columns."""
        so = ffi.new("nde_sim_opts *", lib.nde_sim_opts_default())
        from .options import set_solver
        set_solver(so.solver, keep, solver=solver, dt=dt, steps_per_interval=steps_per_interval,
                   rtol=rtol, atol=atol, max_steps=max_steps, simulate=True)
        so.noise = float(noise)
        so.seed = _u64(seed, "seed")
        K = self.n_state
        if columns is not None:
            if isinstance(columns, str):
                columns = [columns]
            names = [str(c) for c in columns]
            if not names:
                raise ValueError("columns: expected at least one name (a state component or an "
                                 "observable), got none")
            cn = [cstr(c) for c in names]
            arr = ffi.new("const char *[]", cn)
            keep += [cn, arr]
            so.n_columns, so.columns = len(names), arr
            K = len(names)
        return so, K

    def simulate_many(self, t, series, params=None, theta=None, inputs=None, consts=None,
                      columns=None, solver="rk4", dt=None, steps_per_interval=None, rtol=None,
                      atol=None, max_steps=None, noise=0.0, seed=1, threads=None, info=False):
        """Many series on the shared times t, on threads (nde simulate --series): an array
        [S, T, K], series k exactly what simulate gives it alone with its noise seed and the same
        parameters (for a model with networks and no theta, the nets are initialised once from
        seed and shared: simulate(..., seed=s) initialises them from s).

        series   S dicts (or an int S: S series of the defaults), each with any of u0, params,
                 theta, inputs, consts, seed as in simulate, overriding the defaults below
        params, theta, inputs, consts   the defaults of every series (as in simulate; the
                 parameters default to the initialisation with seed, shared by all series)
        seed     the noise seed of a series without its own is nde_sim_series_seed(seed, k), so
                 that series do not share noise (nde.sim_series_seed)
        threads  None or 0: every core; the result does not depend on it
        info     also return a SolveInfo per series
        Other arguments as simulate.  A series whose solve stops early has NaN rows after the
        stop and warns; an error names the first failing series ("series 2: ...")."""
        tt = arrays.real_array(t, "t", ndim=1, expected="[T]")
        if tt.size < 1:
            raise ValueError("t: expected at least one time, got none")
        if isinstance(series, (int, np.integer)) and not isinstance(series, bool):
            if series < 0:
                raise ValueError("series: expected a number of series >= 0 or a list of dicts, "
                                 "got %d" % series)
            series = [{}] * int(series)
        if not isinstance(series, (list, tuple)):
            raise TypeError("series: expected a list of dicts (u0, params, theta, inputs, "
                            "consts, seed), got %s" % type(series).__name__)
        from .uncertainty import _whole
        threads = 0 if threads is None else _whole("threads", threads, 0,
                                                   lib.NDE_POOL_MAX_THREADS)
        # The series' seeds are made from seed modulo 2^53 (as nde simulate --seed takes it).
        seed = _whole("seed", seed, 0, 2 ** 53)
        keep = []
        so, K = self._sim_opts(keep, columns, solver, dt, steps_per_interval, rtol, atol,
                               max_steps, noise, seed)
        so.inputs = self._inputs_arg(inputs, keep) if inputs is not None else ffi.NULL
        so.consts = self._consts_arg(consts, keep) if consts is not None else ffi.NULL
        if theta is not None:
            base = arrays.vector(theta, "theta", self.n_theta_full(1)).copy()
        else:
            base = self.init_theta(seed)
        if params:
            self._set_params(base, params, "params")
        S = len(series)
        arr = ffi.new("nde_sim_series[]", max(S, 1))
        keys = ("u0", "params", "theta", "inputs", "consts", "seed")
        for k, d in enumerate(series):
            where = "series %d" % k
            if not hasattr(d, "items"):
                raise TypeError("%s: expected a dict with any of %s, got %s"
                                % (where, ", ".join(keys), type(d).__name__))
            for key in d:
                if key not in keys:
                    raise ValueError("%s: '%s' is not a setting of a series (expected any of %s)"
                                     % (where, key, ", ".join(keys)))
            if d.get("theta") is not None:
                th = arrays.vector(d["theta"], where + ": theta", self.n_theta_full(1)).copy()
            else:
                th = base.copy()
            if d.get("params") is not None:
                self._set_params(th, d["params"], where + ": params")
            u = (self.initial_state if d.get("u0") is None
                 else self._state_of(d["u0"], where + ": u0"))
            keep += [th, u]
            arr[k].theta, arr[k].u0 = arrays.ptr(th), arrays.ptr(u)
            if d.get("inputs") is not None:
                arr[k].inputs = self._inputs_arg(d["inputs"], keep, where + ": inputs")
            elif self._inputs and inputs is None:
                self._inputs_arg(None, keep, where + ": inputs")  # names what is missing
            if d.get("consts") is not None:
                arr[k].consts = self._consts_arg(d["consts"], keep, where + ": consts")
            elif self.data_consts and consts is None:
                self._consts_arg(None, keep, where + ": consts")
            if d.get("seed") is not None:
                arr[k].own_seed, arr[k].seed = 1, _u64(d["seed"], where + ": seed")
        Y = np.empty((S, tt.size, K))
        noise_std = np.zeros((S, K))
        stats = ffi.new("nde_solve_stats[]", max(S, 1))
        err = new_error()
        st = lib.nde_simulate_many(self._ptr, S, arr, tt.size, arrays.ptr(tt), so, threads,
                                   arrays.wptr(Y), arrays.wptr(noise_std), stats, ffi.NULL, err)
        check(st, err)
        infos = []
        for k in range(S):
            stop = stop_info(pystr(so.solver.method), stats[k])
            if stop is not None:
                warn_stop("the simulation of series %d" % k, stop)
            infos.append(SolveInfo(stats[k].n_steps, stats[k].n_rhs, stats[k].n_rejected, stop,
                                   noise_std[k]))
        if info:
            return Y, infos
        return Y

    # ---- what drives a solve: measured inputs and constants from data ----

    def input_samples(self, inputs, argname="inputs"):
        """(t_u, U): measured inputs given as (t_u, U) or (t_u, {name: values}) as float64
        arrays, U [M, m] in the order of .inputs.  A ValueError names what does not fit."""
        m = len(self._inputs)
        names = self.inputs
        want = ("(t, U) with U [M, %d] in the order of the model's inputs (%s), or (t, {name: "
                "values})" % (m, ", ".join(names)))
        if not m:
            raise ValueError("%s: %s declares no measured inputs" % (argname, self.filename))
        if not (isinstance(inputs, tuple) and len(inputs) == 2):
            raise ValueError("%s: expected %s, got %s" % (argname, want,
                                                          type(inputs).__name__))
        tu = arrays.real_array(inputs[0], argname + ": t", ndim=1, expected="[M]")
        vals = inputs[1]
        if hasattr(vals, "items"):
            for k in vals:
                if k not in names:
                    raise ValueError("%s: '%s' is not an input of %s (expected each of %s once)"
                                     % (argname, k, self.filename, ", ".join(names)))
            for k in names:
                if k not in vals:
                    raise ValueError("%s: no values for the input '%s' (expected every input of "
                                     "%s: %s)" % (argname, k, self.filename, ", ".join(names)))
            U = np.empty((tu.size, m))
            for i, k in enumerate(names):
                U[:, i] = arrays.real_array(vals[k], "%s: %s" % (argname, k), shape=(tu.size,),
                                            expected="[%d] (one value per time)" % tu.size)
            return tu, U
        U = np.asarray(vals) if not isinstance(vals, np.ndarray) else vals
        if U.ndim == 1 and m == 1:
            U = U.reshape(-1, 1)
        U = arrays.real_array(U, argname + ": U", shape=(tu.size, m),
                              expected="[%d, %d] (one row per time, one column per input: %s)"
                              % (tu.size, m, ", ".join(names)))
        return tu, U

    def _inputs_arg(self, inputs, keep, argname="inputs"):
        """An nde_input_series * for the call (NULL for a model without inputs)."""
        if not self._inputs:
            if inputs is not None:
                raise ValueError("%s: %s declares no measured inputs" % (argname, self.filename))
            return ffi.NULL
        if inputs is None:
            raise ValueError("%s: %s declares measured inputs (%s): give their samples as "
                             "inputs=(t, U) or (t, {name: values})"
                             % (argname, self.filename, ", ".join(self.inputs)))
        tu, U = self.input_samples(inputs, argname)
        p = ffi.new("nde_input_series *")
        p.n, p.t, p.u = tu.size, arrays.ptr(tu), arrays.ptr(U)
        keep += [tu, U, p]
        return p

    def const_values(self, consts, argname="consts"):
        """The constants from data given as {name: value}, as an array in column order (the
        order of .data_consts).  A ValueError names what does not fit."""
        if not hasattr(consts, "items"):
            raise TypeError("%s: expected a dict {name: value}, got %s"
                            % (argname, type(consts).__name__))
        out = np.full(len(self.data_consts), np.nan)
        info = {c.name: c for c in self._consts}
        for k, v in consts.items():
            c = info.get(k)
            if c is None or not c.from_data:
                raise ValueError("%s: '%s' %s (expected values for the constants declared "
                                 "'(from data)': %s)" % (
                                     argname, k, "names no constant of %s" % self.filename
                                     if c is None else "is a constant written in %s (line %d)"
                                     % (self.filename, c.line),
                                     ", ".join(self.data_consts) or "it declares none"))
            try:
                x = float(v)
            except (TypeError, ValueError):
                x = float("nan")
            if isinstance(v, bool) or not np.isfinite(x):
                raise ValueError("%s: %s: expected a finite number, got %r" % (argname, k, v))
            out[self.data_consts.index(k)] = x
        for j, k in enumerate(self.data_consts):
            if np.isnan(out[j]):
                raise ValueError("%s: no value for the constant '%s' (it is declared '(from "
                                 "data)' in %s)" % (argname, k, self.filename))
        return out

    def _consts_arg(self, consts, keep, argname="consts"):
        """A double * of the constants from data for the call (NULL for a model without)."""
        if not self.data_consts:
            if consts:
                self.const_values(consts, argname)  # names the constant that is not one
            return ffi.NULL
        if consts is None:
            raise ValueError("%s: %s declares constants from data (%s): give their values as "
                             "consts={name: value}" % (argname, self.filename,
                                                       ", ".join(self.data_consts)))
        c = self.const_values(consts, argname)
        keep.append(c)
        return arrays.ptr(c)

    # ---- loss and gradient against data ----

    def problem(self, data, **options):
        """This model bound to data (a path, arrays or series; see nde.Data) with the solver,
        gradient and loss options: an nde.Problem for repeated loss_and_grad calls."""
        from .data import Problem
        return Problem(self, data, **options)

    def loss_and_grad(self, theta, data, **options):
        """The trajectory loss against data at theta and its gradient dL/dtheta: (float, array).

        Options as Problem (solver, dt, steps_per_interval, rtol, atol, max_steps, grad, loss,
        scale, log_loss).  The Problem is kept for the next call with the same nde.Data object
        and options; arrays or paths are opened again on every call, so for repeated calls open
        them once: d = nde.Data(arrays, model) or p = model.problem(arrays)."""
        return self._problem_for(data, options).loss_and_grad(theta)

    def loss(self, theta, data, **options):
        """The trajectory loss against data at theta (see loss_and_grad)."""
        return self._problem_for(data, options).loss(theta)

    def _problem_for(self, data, options):
        from .data import Data, Problem
        key = (id(data), tuple(sorted(options.items())))
        # One read of the cache: a model is shared between threads, and another thread's call
        # may replace it between two reads, which returned that call's problem, bound to other
        # data.
        cache = self._cache
        if cache is not None and cache[0] == key and cache[1] is data:
            return cache[2]
        p = Problem(self, data, **options)
        if isinstance(data, Data):
            self._cache = (key, data, p)
        return p

    # ---- text ----

    def equations(self, theta=None, latex=False, values=False):
        """The intermediates and equations as text (or LaTeX), parameter names replaced by their
        values at theta when values is set, else followed by them (nde export)."""
        th = self.init_theta() if theta is None else self._full_theta(theta, "theta")
        text = ffi.new("char **")
        check(lib.nde_model_format_equations(
            self._ptr, arrays.ptr(th), lib.NDE_FORMAT_LATEX if latex else lib.NDE_FORMAT_TEXT,
            1 if values else 0, text))
        try:
            return pystr(text[0])
        finally:
            lib.free(text[0])

    def export_c(self, theta, prefix="nde_model"):
        """The right-hand side at theta as a standalone C source file (nde export --c)."""
        th = self._full_theta(theta, "theta")
        # The library says only NDE_ERR_ARG for a bad prefix (it has no message argument).
        if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
            raise ValueError("prefix: expected a C identifier (letters, digits and '_', not "
                             "starting with a digit), got %r" % (prefix,))
        text = ffi.new("char **")
        st = lib.nde_model_export_c(self._ptr, arrays.ptr(th), cstr(prefix), text)
        if st == lib.NDE_ERR_UNSUPPORTED:
            raise error_for(st, "export_c: %s has per-series parameters, measured inputs or "
                                "constants from data, which the exported function has no series "
                                "to read from" % self.filename)
        check(st)
        try:
            return pystr(text[0])
        finally:
            lib.free(text[0])


def as_model(model):
    """A Model from a Model or a path of a .nde file."""
    if isinstance(model, Model):
        return model
    if isinstance(model, (str, os.PathLike)):
        return Model.from_file(model)
    raise TypeError("model: expected an nde.Model or the path of a .nde file, got %s"
                    % type(model).__name__)


def _n_series(n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n < 2 ** 24:
        raise ValueError("n_series: expected a number of series >= 1, got %r" % (n,))
    return int(n)


def _u64(x, name):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or not 0 <= x < 2 ** 64:
        raise ValueError("%s: expected an integer in [0, 2^64), got %r" % (name, x))
    return int(x)
