"""How sure a fit is (nde/result.h, "how sure is the fit"): standard errors from the Gauss-Newton
(sandwich) covariance with identifiability, profile-likelihood intervals, and the members of an
ensemble with the spread of their parameters, as nde fit --uncertainty/--profile/--ensemble and
nde uncertainty give them.  Everything is computed by libnde; this module copies its views into
Python objects and turns keywords into its option structs."""
import math
import numbers
import os
from collections import namedtuple

import numpy as np

from . import arrays
from ._lib import cstr, ffi, lib, pystr
from .errors import Interrupted, check, error_for, new_error
from .progress import jobs as _jobs

Coordinate = namedtuple("Coordinate", "name kind param series component transform value se "
                                      "se_opt lower upper lower_sym upper_sym identifiable")
Coordinate.__doc__ = """One fitted coordinate with its standard error and intervals: name
("alpha"; "k[/run1]" for a per-series parameter; "x(t0)" or "x(t0)[/run1]" for a learned initial
state; "U[17]" for a network weight), kind ("param", "series-param", "initial-state",
"net-weight"), the parameter's (or net's) name, the series name (per-series parameters and
initial states, else None), the state component (initial states, else None), transform (how the
optimiser stored it: "none", "log", "logit"), value (the estimate in natural units), se (natural
units, delta method; inf when not identifiable), se_opt (of the optimised coordinate: of log v
for a positive v), lower/upper (the optimised coordinate's interval mapped to natural units:
asymmetric for log and logit parameters), lower_sym/upper_sym (value -/+ q se), identifiable."""

Profile = namedtuple("Profile", "name grid stat value lower upper lower_found upper_found "
                                "threshold")
Profile.__doc__ = """A profile likelihood: the coordinate's name, its grid in natural units
(increasing, the estimate among the points) and the statistic there (NaN where the re-fit
stopped), the estimate, the likelihood-ratio interval (lower, upper) and whether each side was
found (False: the statistic never reached the threshold on that side, not identifiable that way;
the bound is then the coordinate's limit: 0 for a positive parameter, -inf/inf), and the
threshold q^2."""

Member = namedtuple("Member", "seed status loss iterations theta u0 keep")
Member.__doc__ = """One member of an ensemble: its seed, the status of its fit ("done", ...), the
trajectory loss on its own data at its parameters, its iterations, its theta, its fitted initial
states [S, n] and keep (a bool per observation row of every series in order: the rows it
fitted).  Result.member(k) makes member k a Result of its own."""

Spread = namedtuple("Spread", "n mean sd median lower upper")
Spread.__doc__ = """The spread of a parameter over the members of an ensemble whose fit ended
well: how many, mean, sd (divisor n - 1), median and the (1 - level)/2 and (1 + level)/2
quantiles (natural units)."""

_KINDS = {lib.NDE_UNC_PARAM: "param", lib.NDE_UNC_SERIES_PARAM: "series-param",
          lib.NDE_UNC_INITIAL_STATE: "initial-state", lib.NDE_UNC_NET_WEIGHT: "net-weight"}
_TRANSFORMS = {lib.NDE_TRANSFORM_NONE: "none", lib.NDE_TRANSFORM_LOG: "log",
               lib.NDE_TRANSFORM_LOGIT: "logit"}
NOISE_MODELS = {"per-state": lib.NDE_NOISE_PER_STATE, "pooled": lib.NDE_NOISE_POOLED,
                "known": lib.NDE_NOISE_KNOWN}
RESAMPLE = {"none": lib.NDE_RESAMPLE_NONE, "series": lib.NDE_RESAMPLE_SERIES,
            "time": lib.NDE_RESAMPLE_TIME}


def _num(x):
    """A number as the nde program prints one beside a value (%.6g, inf as inf)."""
    if math.isinf(x):
        return "-inf" if x < 0 else "inf"
    return "%.6g" % x


class Uncertainty:
    """The standard errors of a fit (a snapshot of what the result holds).

    coordinates   Coordinate per fitted coordinate (learnable parameters, per-series values,
                  learned initial states; network weights only with uncertainty_nets)
    names         their names; u["beta"] is a Coordinate
    estimate, se, lower, upper, lower_sym, upper_sym, identifiable
                  {name: value} of each
    cov, cov_natural, corr
                  [P, P]: the covariance of the optimised coordinates (log v for a positive v),
                  in natural units (delta method), the correlations (NaN for coordinates that are
                  not identifiable)
    null_directions
                  [K, P]: unit vectors in the optimised coordinates along which the data do not
                  determine the fit (two parameters that enter only as a product give one)
    warning       "" or the sentence naming the coordinates that are not identifiable
    u0_from_data  the fit took measured initial states from the data's first rows as exact (not
                  learned): the errors are conditional on them (learn_u0 includes them)
    level, quantile, noise_model ("per-state", "pooled", "known"), sigma (pooled: s, else NaN),
    sigma_state ({column: noise std used}, the state components and then any observable columns
    of the data), n_residuals, dof, rss, cond, finite_differences

    str() prints them as nde fit --uncertainty does after the values."""

    def __init__(self, u, model, nets, series):
        n = u.n
        self.level, self.quantile = u.level, u.quantile
        self.noise_model = pystr(lib.nde_noise_model_str(u.noise))
        self.sigma = u.sigma
        self._n_state = model.n_state
        columns = [pystr(u.sigma_names[j]) for j in range(u.n_sigma)]
        self.sigma_state = dict(zip(columns,
                                    arrays.copy_doubles(u.sigma_state, u.n_sigma).tolist()))
        self.n_residuals, self.dof, self.rss, self.cond = int(u.n_residuals), int(u.dof), u.rss, \
            u.cond
        self.finite_differences = bool(u.finite_differences)
        self.warning = pystr(u.warning) or ""
        self.u0_from_data = bool(u.u0_from_data)
        params = [p.name for p in model.param_info]
        coords = []
        for i in range(n):
            e = u.entry[i]
            kind = _KINDS.get(e.kind, "param")
            pname = None
            if kind in ("param", "series-param") and 0 <= e.param < len(params):
                pname = params[e.param]
            elif kind == "net-weight" and 0 <= e.param < len(nets):
                pname = nets[e.param]
            sname = series[e.series] if 0 <= e.series < len(series) else None
            comp = model.states[e.component] if e.component >= 0 else None
            coords.append(Coordinate(pystr(e.name), kind, pname, sname, comp,
                                     _TRANSFORMS.get(e.transform, "none"), e.value, e.se,
                                     e.se_opt, e.lower, e.upper, e.lower_sym, e.upper_sym,
                                     bool(e.identifiable)))
        self.coordinates = coords
        self.names = [c.name for c in coords]
        self._index = {c.name: i for i, c in enumerate(coords)}
        self.cov = arrays.copy_doubles(u.cov, n * n).reshape(n, n)
        self.cov_natural = arrays.copy_doubles(u.cov_natural, n * n).reshape(n, n)
        self.corr = arrays.copy_doubles(u.corr, n * n).reshape(n, n)
        self.null_directions = arrays.copy_doubles(u.null_dirs, u.n_null * n).reshape(u.n_null, n)
        self._nets_in = any(c.kind == "net-weight" for c in coords)
        self._has_nets = bool(nets)
        self._states = model.states
        for field in ("value", "se", "lower", "upper", "lower_sym", "upper_sym", "identifiable"):
            setattr(self, "estimate" if field == "value" else field,
                    {c.name: getattr(c, field) for c in coords})

    def __getitem__(self, name):
        try:
            return self.coordinates[self._index[name]]
        except KeyError:
            raise KeyError("%r is not a fitted coordinate (expected one of %s)"
                           % (name, ", ".join(self.names))) from None

    def __contains__(self, name):
        return name in self._index

    def __len__(self):
        return len(self.coordinates)

    def __iter__(self):
        return iter(self.names)

    def interval(self, name):
        """(lower, upper) of a coordinate."""
        c = self[name]
        return c.lower, c.upper

    def describe(self, name):
        """The text nde fit prints beside a value: "  +- SE  95% [LO, HI]" (with the symmetric
        interval for log and logit parameters), or "  +- inf (not identifiable)"."""
        c = self[name]
        if not c.identifiable:
            return "  +- inf (not identifiable)"
        pct = int(round(100 * self.level))
        text = "  +- %s  %d%% [%s, %s]" % (_num(c.se), pct, _num(c.lower), _num(c.upper))
        if c.transform != "none":
            text += " (%s scale; symmetric [%s, %s])" % (c.transform, _num(c.lower_sym),
                                                        _num(c.upper_sym))
        return text

    def __str__(self):
        """The block nde fit --uncertainty prints after the values (without the profiles)."""
        out = ["standard errors (Gauss-Newton covariance from %s, %d residuals, %d coordinates):"
               % ("central differences" if self.finite_differences else "forward sensitivities",
                  self.n_residuals, len(self))]
        if self.noise_model == "known":
            line = "  noise known:"
        elif self.noise_model == "pooled":
            line = ("  noise estimated from the residuals, pooled (s = %s, %d degrees of "
                    "freedom):" % (_num(self.sigma), self.dof))
        else:
            line = ("  noise estimated from the residuals of each %s (%d degrees of freedom):"
                    % ("data column" if len(self.sigma_state) > self._n_state else "state",
                       self.dof))
        out.append(line + "".join(" %s %s" % (c, _num(v)) for c, v in self.sigma_state.items()
                                  if not math.isnan(v)))
        out.append("  intervals at %g%%: %s quantile %.4g; positive parameters are fitted as "
                   "logs, so their interval is asymmetric (the symmetric one is the delta "
                   "method's)" % (100 * self.level, "normal" if self.noise_model == "known"
                                  else "t", self.quantile))
        if self._has_nets and not self._nets_in:
            out.append("  conditional on the trained network weights (not identifiable "
                       "themselves; --uncertainty-nets includes them)")
        if self.u0_from_data:
            out.append("  conditional on the initial states read off the data's first rows (too "
                       "small when those values are noisy; --learn-u0 includes them)")
        u0s = [c for c in self.coordinates if c.kind == "initial-state"]
        if u0s:
            out.append("  learned initial states:")
            for c in u0s:
                out.append("    %-16s = %.10g  +- %s  [%s, %s]" % (c.name, c.value, _num(c.se),
                                                                  _num(c.lower), _num(c.upper)))
        n = len(self)
        if 1 < n <= 8:
            out.append("  correlations:")
            out.append("    %-12s" % "" + "".join(" %9.9s" % s for s in self.names))
            for i, s in enumerate(self.names):
                out.append("    %-12.12s" % s + "".join(" %9.3f" % self.corr[i, j]
                                                          for j in range(n)))
        elif n > 8:
            a = np.abs(np.tril(np.nan_to_num(self.corr, nan=0.0), -1))
            if a.max() > 0:
                i, j = np.unravel_index(int(np.argmax(a)), a.shape)
                out.append("  strongest correlation: %s and %s, %.3f"
                           % (self.names[i], self.names[j], self.corr[i, j]))
        if self.warning:
            out.append("warning: " + self.warning)
        return "\n".join(out)

    def __repr__(self):
        return "<nde.Uncertainty %d coordinates at %g%%: %s>" % (
            len(self), 100 * self.level, ", ".join(
                "%s=%.6g+-%s" % (c.name, c.value, _num(c.se)) for c in self.coordinates[:6])
            + (", ..." if len(self) > 6 else ""))


def profile_text(p, u):
    """The line nde fit prints for a profile."""
    c = u[p.name]
    return ("profile %s: %g%% likelihood-ratio interval [%s%s, %s%s] (curvature [%s, %s]); %d "
            "points" % (p.name, 100 * u.level, "" if p.lower_found else "not bounded below: ",
                        _num(p.lower), "" if p.upper_found else "not bounded above: ",
                        _num(p.upper), _num(c.lower), _num(c.upper), p.grid.size))


# ---- options ----

def _real(name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ValueError("%s: expected a number, got %r" % (name, v))
    return float(v)


def _whole(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not lo <= v <= hi:
        raise ValueError("%s: expected a whole number in [%d, %d], got %r" % (name, lo, hi, v))
    return int(v)


def _flag(name, v):
    if not isinstance(v, (bool, int)) or v not in (0, 1):
        raise ValueError("%s: expected True or False, got %r" % (name, v))
    return bool(v)


def check_level(v, name="level"):
    """A coverage in (0, 1), as nde fit --level."""
    x = _real(name, v)
    if not 0 < x < 1:
        raise ValueError("%s: expected a coverage in (0, 1), got %r" % (name, v))
    return x


def check_jobs(v):
    return 0 if v is None else _whole("jobs", v, 0, 4096)


def profile_names(profile):
    """NAME[,NAME...] from a name, a comma-separated string or a list of names."""
    if isinstance(profile, str):
        names = [s.strip() for s in profile.split(",")]
    else:
        try:
            names = list(profile)
        except TypeError:
            names = None
        if names is None or not all(isinstance(s, str) for s in names):
            raise ValueError("profile: expected a coordinate name or a list of names, got %r"
                             % (profile,))
        names = [s.strip() for s in names]
    if not names or not all(names) or any("," in s for s in names):
        raise ValueError("profile: expected coordinate names such as 'beta' or ['beta', "
                         "'gamma'], got %r" % (profile,))
    return ",".join(names)


class UncOptions:
    """The options of the standard errors and profiles (nde fit --uncertainty ... and nde
    uncertainty), checked as the command line checks them, before any work."""

    def __init__(self, model, uncertainty=None, noise_model=None, noise_std=None, level=None,
                 uncertainty_nets=None, finite_differences=None, profile=None,
                 profile_points=None, jobs=None):
        from .options import noise_std_values
        self.on = _flag("uncertainty", uncertainty) if uncertainty is not None else False
        self.noise = "per-state"
        if noise_model is not None:
            if noise_model not in NOISE_MODELS:
                raise ValueError("noise_model: expected per-state, pooled or known, got %r"
                                 % (noise_model,))
            self.noise = noise_model
        self.level = None if level is None else check_level(level)
        self.nets = False if uncertainty_nets is None else _flag("uncertainty_nets",
                                                                  uncertainty_nets)
        self.fd = False if finite_differences is None else _flag("finite_differences",
                                                                 finite_differences)
        self.profile = None if profile is None else profile_names(profile)
        self.points = None if profile_points is None else _whole("profile_points",
                                                                 profile_points, 1, 10000)
        self.jobs = check_jobs(jobs)
        self.noise_std = None if noise_std is None else noise_std_values(noise_std, model)

    @property
    def wanted(self):
        return self.on or self.profile is not None

    def c_opts(self, keep):
        o = ffi.new("nde_unc_opts *", lib.nde_unc_opts_default())
        o.noise = NOISE_MODELS[self.noise]
        if self.level is not None:
            o.level = self.level
        o.include_nets = self.nets
        o.finite_differences = self.fd
        if self.noise_std is not None:
            keep.append(self.noise_std)
            o.noise_std = arrays.ptr(self.noise_std)
        return o


def compute(result, data, opts, callback=None, progress=None):
    """nde_result_compute_uncertainty, then nde_result_profile when opts.profile (as nde fit and
    nde uncertainty run them).  A stop of the profiles raises Interrupted with the result."""
    keep = []
    err = new_error()
    st = lib.nde_result_compute_uncertainty(result._ptr, data._ptr, opts.c_opts(keep), err)
    if st != lib.NDE_OK:
        raise error_for(st, "standard errors: " + data._message(pystr(err.msg)))
    if opts.profile is not None:
        run_profile(result, data, opts.profile, opts.points, opts.jobs, callback, progress)


def run_profile(result, data, names, points=None, jobs=None, callback=None, progress=None,
                unc=None):
    """nde_result_profile with progress; unc: nde_unc_opts for the standard errors when the
    result has none (NULL: the defaults)."""
    keep = []
    po = ffi.new("nde_profile_opts *", lib.nde_profile_opts_default())
    if points is not None:
        po.points = points
    po.threads = jobs or 0
    stopped = ffi.new("int *")
    err = new_error()
    with _jobs(po, "profile points", callback, progress, keep) as run:
        st = lib.nde_result_profile(result._ptr, data._ptr, cstr(names),
                                    ffi.NULL if unc is None else unc, po, stopped, err)
    if run.exc is not None:
        raise run.exc
    if st != lib.NDE_OK:
        raise error_for(st, data._message(pystr(err.msg)))
    if stopped[0]:
        raise Interrupted("the profiles were stopped before their points ended: the result "
                          "keeps its standard errors, without profiles", result)


def profiles(result):
    """{name: Profile} of the profiles the result holds."""
    out = {}
    p = ffi.new("nde_profile *")
    for i in range(lib.nde_result_n_profiles(result._ptr)):
        check(lib.nde_result_get_profile(result._ptr, i, p))
        out[pystr(p.name)] = Profile(pystr(p.name), arrays.copy_doubles(p.grid, p.n),
                                     arrays.copy_doubles(p.stat, p.n), p.value, p.lower,
                                     p.upper, bool(p.lower_found), bool(p.upper_found),
                                     p.threshold)
    return out


def members(result):
    """Member per ensemble member (an empty list for a single fit)."""
    r = result._ptr
    K = lib.nde_result_n_members(r)
    if K == 0:
        return []
    nth = lib.nde_result_n_theta(r)
    S = lib.nde_result_n_series(r)
    n = lib.nde_model_state_dim(lib.nde_result_model(r))
    s = ffi.new("nde_result_series *")
    rows = 0
    for k in range(S):
        check(lib.nde_result_get_series(r, k, s))
        rows += s.n_obs
    out = []
    mi = ffi.new("nde_member_info *")
    for k in range(K):
        check(lib.nde_result_get_member(r, k, mi))
        keep = np.frombuffer(ffi.buffer(mi.keep, rows), dtype=np.uint8).astype(bool) \
            if rows and mi.keep != ffi.NULL else np.zeros(0, dtype=bool)
        out.append(Member(int(mi.seed), pystr(lib.nde_fit_status_str(mi.status)), mi.loss,
                          int(mi.iterations), arrays.copy_doubles(mi.theta, nth),
                          arrays.copy_doubles(mi.u0, S * n).reshape(S, n), keep))
    return out


def spread(result, i, s, level):
    out = ffi.new("nde_spread *")
    err = new_error()
    check(lib.nde_result_param_spread(result._ptr, i, s, level, out), err,
          "param_spread: the result has no ensemble members (fit with ensemble=K)"
          if lib.nde_result_n_members(result._ptr) == 0 else None)
    return Spread(out.n, out.mean, out.sd, out.median, out.lower, out.upper)


def data_of(result, data, inputs=None, consts=None):
    """The data a result was fitted to: those given, the nde.Data of a fit made in this
    process, or the file its provenance records (as nde uncertainty FIT.h5 finds it)."""
    from .data import as_data
    m = result.model
    if data is not None:
        return as_data(data, m, inputs=inputs, consts=consts)
    if getattr(result, "_data", None) is not None:
        return result._data
    f = result.provenance.get("data_file", "")
    if not f:
        raise ValueError("data: %s records no data file: give the fit's data (data=...)"
                         % (result.path or "the result"))
    if not os.path.exists(f.split(":/")[0]):
        raise ValueError("data: the fit recorded its data as %s, which is not a file here: give "
                         "the fit's data (data=...)" % f)
    return as_data(f, m)


class EnsembleOptions:
    """nde fit --ensemble K --resample MODE --resample-fraction F, checked as the command line
    checks them."""

    def __init__(self, ensemble=None, resample=None, resample_fraction=None):
        self.members = 0 if ensemble is None else _whole("ensemble", ensemble, 0, 100000)
        self.resample = "none"
        if resample is not None:
            if resample not in RESAMPLE:
                raise ValueError("resample: expected none, series or time, got %r" % (resample,))
            self.resample = resample
        self.fraction = None
        if resample_fraction is not None:
            f = _real("resample_fraction", resample_fraction)
            if not 0 < f <= 1:
                raise ValueError("resample_fraction: expected a share in (0, 1], got %r"
                                 % (resample_fraction,))
            self.fraction = f
        K = self.members
        if K == 1 or (K == 0 and (resample is not None or resample_fraction is not None)):
            raise ValueError("ensemble: expected K >= 2 members%s (got %d)"
                             % ("" if K else " with resample and resample_fraction", K))

    def c_opts(self, jobs):
        e = ffi.new("nde_ensemble_opts *", lib.nde_ensemble_opts_default())
        e.members = self.members
        e.resample = RESAMPLE[self.resample]
        if self.fraction is not None:
            e.fraction = self.fraction
        e.threads = jobs
        return e
