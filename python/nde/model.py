"""Models: a .nde file compiled into a right-hand side with exact derivatives (nde/model.h), and
what can be done with a model before any fit: simulate it, evaluate the loss against data and its
gradient.  The grammar of the language is docs/language.md."""
import os
import warnings
from collections import namedtuple

import numpy as np

from . import arrays
from ._lib import cstr, ffi, lib, pystr
from .errors import ModelError, SolverStopWarning, check, error_for, new_error

Diagnostic = namedtuple("Diagnostic", "line col message is_note source_line")
Diagnostic.__doc__ = "One problem of a model file: 1-based line and column, the message."
ParamInfo = namedtuple("ParamInfo",
                       "name value learnable positive bounds transform offset line")
ParamInfo.__doc__ = ("A scalar parameter as declared: value in natural units, learnable, "
                     "positive (optimised in log space), bounds (lo, hi) or None, transform "
                     "('none', 'log', 'logit'), offset in theta (None when fixed), line.")
NetInfo = namedtuple("NetInfo", "name offset n_params")
NetInfo.__doc__ = "A network: its block theta[offset:offset + n_params]."
LayoutEntry = namedtuple("LayoutEntry", "name kind offset length transform")
LayoutEntry.__doc__ = "One entry of the layout of theta: a parameter ('param') or a net's block."
StopInfo = namedtuple("StopInfo", "reason t_stop h_last bad_row bad_state message")
StopInfo.__doc__ = ("Why a solve stopped before its last output: the reason, the time reached, "
                    "the last step, the first non-finite row and state, and nde's sentence.")
SolveInfo = namedtuple("SolveInfo", "n_steps n_rhs n_rejected stop noise_std")
SolveInfo.__doc__ = ("Statistics of a simulation: accepted steps, right-hand-side calls, "
                     "rejected steps, stop (StopInfo or None), the noise std added per state.")

_TRANSFORMS = {lib.NDE_TRANSFORM_NONE: "none", lib.NDE_TRANSFORM_LOG: "log",
               lib.NDE_TRANSFORM_LOGIT: "logit"}


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


def _not_yet(name, what):
    raise NotImplementedError(
        "%s: %s are not supported by this libnde yet (the C library's model and data layers do "
        "not take them); the argument is kept so that code written for them keeps working"
        % (name, what))


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
                int(p.offset) if p.learnable else None, p.line))
        self._nets = []
        q = ffi.new("nde_model_net_info *")
        for i in range(lib.nde_model_n_nets(ptr)):
            check(lib.nde_model_get_net(ptr, i, q))
            self._nets.append(NetInfo(pystr(q.name), int(q.offset), int(q.n_params)))

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
        """The length of theta, the flat vector of everything learnable."""
        return int(lib.nde_model_n_theta(self._ptr))

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
        return "<nde.Model %s: states %s, %d parameters, nets %s, %d learnable values>" % (
            self.filename, ", ".join(self.states), len(self._params),
            ", ".join(n.name for n in self._nets) or "none", self.n_theta)

    # ---- theta and parameters ----

    def init_theta(self, seed=1):
        """The initial theta of a fit with this seed: learnable parameters at their declared
        values (transformed), nets by their initialisation schemes."""
        theta = np.zeros(self.n_theta)
        check(lib.nde_model_init_theta(self._ptr, _u64(seed, "seed"), arrays.wptr(theta)))
        return theta

    def theta(self, params=None, seed=1, init=None):
        """A theta: init (a theta, a Result or a result file) or the initialisation with seed,
        then the learnable parameters of params ({name: natural value}) stored into it."""
        if init is None:
            theta = self.init_theta(seed)
        else:
            theta = self._theta_of(init, "init").copy()
        if params:
            self._set_params(theta, params, "params")
        return theta

    def param_values(self, theta):
        """The natural values of every scalar parameter at theta, fixed ones included."""
        th = arrays.vector(theta, "theta", self.n_theta)
        p = arrays.ptr(th)
        return {info.name: lib.nde_model_param_value(self._ptr, i, p)
                for i, info in enumerate(self._params)}

    def _set_params(self, theta, params, argname):
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
            if lib.nde_model_set_param(self._ptr, i, float(value), p) != lib.NDE_OK:
                if info.bounds:
                    why = "outside its bounds (expected a value in (%r, %r))" % info.bounds
                else:
                    why = "outside its domain (expected a %s value)" % (
                        "positive" if info.positive else "valid")
                raise ValueError("%s: %s = %r is %s" % (argname, name, value, why))

    def _theta_of(self, x, argname):
        """theta from an array, a Result or a file holding /params/theta."""
        from .result import Result, read_theta
        if isinstance(x, Result):
            x = x.theta
        elif isinstance(x, (str, os.PathLike)):
            x = read_theta(x)
        return arrays.vector(x, argname, self.n_theta)

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
                 solver="rk4", dt=None, steps_per_interval=None, rtol=None, atol=None,
                 max_steps=None, noise=0.0, seed=1, info=False):
        """Integrate the model through the times t (t[0] is the initial time): an array [T, n].

        u0       the initial state: n values, or {component: value} over the declared initial
                 state; default the declared one (as nde simulate)
        params   {name: natural value} over theta (default: the initialisation with seed)
        theta    the whole parameter vector instead
        solver   "rk4" (default: 10 steps per output interval, as nde simulate), "euler",
                 "dopri5", "cvode-bdf", "cvode-adams"; dt, steps_per_interval, rtol, atol,
                 max_steps as the options of the same names
        noise    Gaussian noise with std noise * mean(|y_j|) per state, drawn with seed
        info     also return SolveInfo (steps, stop, noise std)
        A solve that stops early returns NaN rows after the stop and warns (SolverStopWarning).
        inputs, consts: measured inputs and per-series constants (not supported yet)."""
        if inputs is not None:
            _not_yet("inputs", "measured inputs")
        if consts is not None:
            _not_yet("consts", "per-series constants")
        tt = arrays.real_array(t, "t", ndim=1, expected="[T]")
        if tt.size < 1:
            raise ValueError("t: expected at least one time, got none")
        if theta is not None:
            th = arrays.vector(theta, "theta", self.n_theta).copy()
        else:
            th = self.init_theta(seed)
        if params:
            self._set_params(th, params, "params")
        u = self.initial_state if u0 is None else self._state_of(u0, "u0")
        keep = []
        so = ffi.new("nde_sim_opts *", lib.nde_sim_opts_default())
        from .options import set_solver
        set_solver(so.solver, keep, solver=solver, dt=dt, steps_per_interval=steps_per_interval,
                   rtol=rtol, atol=atol, max_steps=max_steps, simulate=True)
        so.noise = float(noise)
        so.seed = _u64(seed, "seed")
        Y = np.empty((tt.size, self.n_state))
        noise_std = np.zeros(self.n_state)
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
        if self._cache is not None and self._cache[0] == key and self._cache[1] is data:
            return self._cache[2]
        p = Problem(self, data, **options)
        if isinstance(data, Data):
            self._cache = (key, data, p)
        return p

    # ---- text ----

    def equations(self, theta=None, latex=False, values=False):
        """The intermediates and equations as text (or LaTeX), parameter names replaced by their
        values at theta when values is set, else followed by them (nde export)."""
        th = self.init_theta() if theta is None else arrays.vector(theta, "theta", self.n_theta)
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
        th = arrays.vector(theta, "theta", self.n_theta)
        text = ffi.new("char **")
        check(lib.nde_model_export_c(self._ptr, arrays.ptr(th), cstr(prefix), text))
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


def _u64(x, name):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or not 0 <= x < 2 ** 64:
        raise ValueError("%s: expected an integer in [0, 2^64), got %r" % (name, x))
    return int(x)
