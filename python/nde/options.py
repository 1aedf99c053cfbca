"""Keyword options -> the C option structs, named as the command-line options of nde fit, nde grad
and nde forecast with '-' written '_' (--steps-per-interval is steps_per_interval=).  An option
left at None keeps the library's default, so that nde.fit(m, data) runs exactly what
`nde fit MODEL DATA` runs.  Values are checked by the library (its message names the option);
here only what the command line's parser checks: names, types and the choices of strings."""
import math
import numbers

import numpy as np

from ._lib import cstr, ffi, lib, pystr

SOLVER_OPTIONS = ("solver", "dt", "steps_per_interval", "rtol", "atol", "h0", "max_steps")
LOSS_OPTIONS = ("grad", "loss", "scale", "log_loss")
OBJECTIVE_OPTIONS = ("learn_u0", "shoot_interval", "shoot_weight", "batch_series", "batch_time",
                     "batch_windows", "batch_segments", "l2", "l1")
TRAIN_OPTIONS = ("optim", "lr", "seed", "max_failures", "checkpoint_every", "checkpoint_seconds",
                 "keep_last", "patience", "phase_patience", "phase_tol", "validate", "noise_std",
                 "threads")
# nde fit --ensemble K --resample none|series|time --resample-fraction F
ENSEMBLE_OPTIONS = ("ensemble", "resample", "resample_fraction")
# nde fit --uncertainty --noise-model ... --jobs N (--jobs also runs the members of an ensemble)
UNCERTAINTY_OPTIONS = ("uncertainty", "noise_model", "profile", "profile_points", "level",
                       "uncertainty_nets", "finite_differences", "jobs")
# Every keyword option of nde.fit.
FIT_OPTIONS = (SOLVER_OPTIONS + LOSS_OPTIONS + OBJECTIVE_OPTIONS + TRAIN_OPTIONS + ENSEMBLE_OPTIONS
               + UNCERTAINTY_OPTIONS)


def _names(table):
    out, i = [], 0
    while table[i] != ffi.NULL:
        out.append(pystr(table[i]))
        i += 1
    return out


def solver_names():
    """The integrators of the registry."""
    return _names(lib.nde_solver_method_names())


def grad_names():
    """The gradient methods."""
    return _names(lib.nde_grad_method_names())


def _real(name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ValueError("%s: expected a number, got %r" % (name, v))
    return float(v)


def _int(name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise ValueError("%s: expected an integer, got %r" % (name, v))
    return int(v)


def _flag(name, v):
    if not isinstance(v, (bool, int)) or v not in (0, 1):
        raise ValueError("%s: expected True or False, got %r" % (name, v))
    return 1 if v else 0


def _choice(name, v, choices):
    if v not in choices:
        raise ValueError("%s: expected one of %s, got %r" % (name, ", ".join(choices), v))
    return v


def _set(struct, field, name, value, conv):
    try:
        setattr(struct, field, conv(name, value))
    except OverflowError:
        raise ValueError("%s: %r is out of range" % (name, value)) from None


def set_solver(so, keep, solver=None, dt=None, steps_per_interval=None, rtol=None, atol=None,
               h0=None, max_steps=None, simulate=False):
    """Apply the solver options to an nde_solver_opts (strings kept alive in keep)."""
    before = {k: getattr(so, k) for k in ("dt", "steps_per_interval", "rtol", "atol", "h0")}
    if dt is not None and steps_per_interval is not None:
        raise ValueError("dt and steps_per_interval both given (expected at most one)")
    if solver is not None:
        names = solver_names()
        if solver not in names:
            raise ValueError("solver: unknown method %r (expected one of %s)"
                             % (solver, ", ".join(names)))
        s = cstr(solver)
        keep.append(s)
        so.method = s
    if dt is not None:
        if not _real("dt", dt) > 0:
            raise ValueError("dt: expected a positive step size, got %r" % (dt,))
        so.dt = float(dt)
        if simulate:  # as nde simulate --dt
            so.steps_per_interval = 1
    if steps_per_interval is not None:
        _set(so, "steps_per_interval", "steps_per_interval", steps_per_interval, _int)
        so.dt = 0.0
    if rtol is not None:
        _set(so, "rtol", "rtol", rtol, _real)
    if atol is not None:
        _set(so, "atol", "atol", atol, _real)
    if h0 is not None:
        _set(so, "h0", "h0", h0, _real)
    if max_steps is not None:
        _set(so, "max_steps", "max_steps", max_steps, _int)
    # A value the method does not read is refused, as nde refuses the option; one that changes
    # nothing (a settings dict passed back whole) is not.
    mi = lib.nde_solver_method_find(so.method) if so.method != ffi.NULL else ffi.NULL
    if mi != ffi.NULL:
        method = ffi.string(mi.name).decode()
        given = dict(dt=dt, steps_per_interval=steps_per_interval, rtol=rtol, atol=atol, h0=h0)
        for name in (("dt", "steps_per_interval") if mi.adaptive else ("rtol", "atol", "h0")):
            if given[name] is None or getattr(so, name) == before[name]:
                continue
            if mi.adaptive:
                raise ValueError("%s: the solver %s chooses its own steps (expected rtol and atol "
                                 "for its accuracy, or a fixed-step solver such as rk4 for given "
                                 "steps)" % (name, method))
            raise ValueError("%s: the solver %s takes fixed steps and reads no tolerance (expected "
                             "dt or steps_per_interval for its accuracy, or an adaptive solver: "
                             "dopri5, cvode-adams, cvode-bdf)" % (name, method))


def set_loss(fo, keep, grad=None, loss=None, scale=None, log_loss=None):
    """The gradient method and the loss of an nde_result_fit_opts."""
    if grad is not None:
        names = grad_names()
        if grad not in names:
            raise ValueError("grad: unknown method %r (expected one of %s)"
                             % (grad, ", ".join(names)))
        s = cstr(grad)
        keep.append(s)
        fo.grad.method = s
    if loss is not None:
        fo.objective.loss_sum = _choice("loss", loss, ("mean", "sum")) == "sum"
    if scale is not None:
        fo.objective.scale_by_std = _choice("scale", scale, ("none", "std")) == "std"
    if log_loss is not None:
        fo.objective.log_space = _flag("log_loss", log_loss)


def set_objective(fo, learn_u0=None, shoot_interval=None, shoot_weight=None, batch_series=None,
                  batch_time=None, batch_windows=None, batch_segments=None, l2=None, l1=None):
    o = fo.objective
    if learn_u0 is not None:
        o.learn_u0 = _flag("learn_u0", learn_u0)
    if batch_segments is not None:
        o.autonomous = _flag("batch_segments", batch_segments)
    for name, v, conv in (("shoot_interval", shoot_interval, _int),
                          ("shoot_weight", shoot_weight, _real),
                          ("batch_series", batch_series, _int),
                          ("batch_time", batch_time, _int),
                          ("batch_windows", batch_windows, _int),
                          ("l2", l2, _real),
                          ("l1", l1, _real)):
        if v is not None:
            _set(o, name, name, v, conv)


def noise_std_values(noise_std, model):
    """The noise standard deviation per column (the states, then the observables: n +
    len(model.observables) values, NaN where unknown) from one value for every column, that many
    values, or {state component or observable: std}, as nde fit --noise-std S|x=S,... takes it."""
    columns = tuple(model.states) + tuple(model.observables)
    n = len(columns)
    if hasattr(noise_std, "items"):
        sd = np.full(n, np.nan)
        for name, v in noise_std.items():
            if name in model.observables:
                j = model.n_state + model.observables.index(name)
            else:
                j = lib.nde_model_find_component(model._ptr, cstr(name))
            if j < 0:
                raise ValueError("noise_std: '%s' is not a state component%s of %s (expected one "
                                 "of %s)" % (name, " or observable" if model.observables else "",
                                             model.filename, ", ".join(columns)))
            sd[j] = _real("noise_std", v)
            if not (sd[j] > 0 and math.isfinite(sd[j])):
                raise ValueError("noise_std: %s: expected a standard deviation > 0, got %r"
                                 % (name, v))
        return sd
    if np.ndim(noise_std) == 0:
        v = _real("noise_std", noise_std)
        if not (v > 0 and math.isfinite(v)):
            raise ValueError("noise_std: expected a standard deviation > 0, got %r"
                             % (noise_std,))
        return np.full(n, v)
    from .arrays import vector
    sd = vector(noise_std, "noise_std", n).copy()
    for j, v in enumerate(sd):
        if not (math.isnan(v) or (v > 0 and math.isfinite(v))):
            raise ValueError("noise_std: %s: expected a standard deviation > 0 (or NaN for "
                             "unknown), got %r" % (columns[j], v))
    return sd


def set_train(fo, keep, optim=None, lr=None, seed=None, max_failures=None, checkpoint_every=None,
              checkpoint_seconds=None, keep_last=None, patience=None, phase_patience=None,
              phase_tol=None, validate=None, noise_std=None, threads=None, model=None):
    if threads is not None:
        # As nde fit --threads: 0 (the cores available) or a count; the result does not
        # depend on it.
        _set(fo, "threads", "threads", threads, _int)
    if noise_std is not None:
        sd = noise_std_values(noise_std, model)
        keep.append(sd)
        fo.noise_std = ffi.from_buffer("double[]", sd)
    if phase_patience is not None:
        _set(fo, "phase_patience", "phase_patience", phase_patience, _int)
    if phase_tol is not None:
        _set(fo, "phase_tol", "phase_tol", phase_tol, _real)
    if validate is not None:
        # As nde fit --validate: "tail:F" (the trailing fraction of every series) or "series:K"
        # (the last K series held out whole).
        kind, _, val = str(validate).partition(":")
        try:
            if kind == "tail":
                fo.validate_tail = float(val)
            elif kind == "series":
                fo.validate_series = int(val)
            else:
                raise ValueError
        except ValueError:
            raise ValueError("validate: expected 'tail:F' or 'series:K', got %r" % (validate,))
    if optim is not None:
        if not isinstance(optim, str):
            raise ValueError("optim: expected a schedule such as 'adam:2000@0.01,lbfgs:500', "
                             "got %r" % (optim,))
        s = cstr(optim)
        keep.append(s)
        fo.schedule = s
    if lr is not None:
        if not _real("lr", lr) > 0:  # as nde fit --lr
            raise ValueError("lr: expected a positive learning rate, got %r" % (lr,))
        fo.lr = float(lr)
    if seed is not None:
        _set(fo, "seed", "seed", seed, _int)
    if max_failures is not None:
        _set(fo, "max_failures", "max_failures", max_failures, _int)
    if checkpoint_every is not None:
        _set(fo, "checkpoint_every", "checkpoint_every", checkpoint_every, _int)
    if checkpoint_seconds is not None:
        _set(fo, "checkpoint_seconds", "checkpoint_seconds", checkpoint_seconds, _real)
    if keep_last is not None:
        fo.keep_last = _flag("keep_last", keep_last)
    if patience is not None:
        _set(fo, "patience", "patience", patience, _int)


def split(options, *groups, where):
    """The options of each group; an unknown name is a TypeError as for any Python call."""
    out = [dict() for _ in groups]
    for k, v in options.items():
        for i, g in enumerate(groups):
            if k in g:
                out[i][k] = v
                break
        else:
            known = sorted(set().union(*groups))
            raise TypeError("%s got an unexpected keyword argument %r (options: %s)"
                            % (where, k, ", ".join(known)))
    return out


def fit_opts(options, keep, where="nde.fit()", model=None):
    """A new nde_result_fit_opts from the library's defaults and the options (noise_std needs
    the model)."""
    fo = ffi.new("nde_result_fit_opts *", lib.nde_result_fit_opts_default())
    s, l, o, t = split(options, SOLVER_OPTIONS, LOSS_OPTIONS, OBJECTIVE_OPTIONS, TRAIN_OPTIONS,
                       where=where)
    set_solver(fo.solver, keep, **s)
    set_loss(fo, keep, **l)
    set_objective(fo, **o)
    set_train(fo, keep, model=model, **t)
    return fo


def problem_opts(options, keep, where="Problem()"):
    """The options of a loss: solver, gradient and loss; the objective without shooting (as
    nde grad)."""
    fo = ffi.new("nde_result_fit_opts *", lib.nde_result_fit_opts_default())
    s, l = split(options, SOLVER_OPTIONS, LOSS_OPTIONS, where=where)
    set_solver(fo.solver, keep, **s)
    set_loss(fo, keep, **l)
    fo.objective.shoot_interval = 0
    return fo


def solver_dict(so):
    """The options of an nde_solver_opts as a dict (settings of a result)."""
    return {"solver": pystr(so.method), "dt": so.dt, "steps_per_interval": so.steps_per_interval,
            "rtol": so.rtol, "atol": so.atol, "h0": so.h0, "max_steps": so.max_steps}


def settings_dict(s, model):
    """The options of an nde_result_fit_opts (a result's settings) as nde.fit keywords: every
    option of the fit, so that nde.fit(model, data, **settings) fits again the same way."""
    so = solver_dict(s.solver)
    if so["dt"] > 0:
        del so["steps_per_interval"]
    else:
        del so["dt"]
    o = s.objective
    validate = None
    if s.validate_tail > 0:
        validate = "tail:%r" % s.validate_tail
    elif s.validate_series > 0:
        validate = "series:%d" % s.validate_series
    noise = None  # as {column: std}, the unknown ones left out (NaN would not compare)
    if s.noise_std != ffi.NULL:
        columns = tuple(model.states) + tuple(model.observables)
        noise = {c: s.noise_std[j] for j, c in enumerate(columns)
                 if not math.isnan(s.noise_std[j])} or None
    so.update({
        "grad": pystr(s.grad.method), "loss": "sum" if o.loss_sum else "mean",
        "scale": "std" if o.scale_by_std else "none", "log_loss": bool(o.log_space),
        "learn_u0": bool(o.learn_u0), "shoot_interval": o.shoot_interval,
        "shoot_weight": o.shoot_weight, "batch_series": o.batch_series,
        "batch_time": o.batch_time, "batch_windows": o.batch_windows,
        "batch_segments": bool(o.autonomous), "l2": o.l2, "l1": o.l1,
        "optim": pystr(s.schedule), "lr": s.lr, "seed": int(s.seed),
        "max_failures": s.max_failures, "checkpoint_every": s.checkpoint_every,
        "checkpoint_seconds": s.checkpoint_seconds, "keep_last": bool(s.keep_last),
        "patience": s.patience, "phase_patience": s.phase_patience, "phase_tol": s.phase_tol,
        "validate": validate, "noise_std": noise})
    return so
