"""Discovery (nde/discover.h): the trained networks of a fit read off as equations by sparse
regression (STLSQ over candidate terms), the candidates chosen by the information criterion of
their trajectory predictions, and the discovered model with the networks replaced by the terms,
as nde discover does."""
import os
from collections import namedtuple

import numpy as np

from . import arrays
from ._lib import cstr, ffi, lib, pystr
from .data import write_text
from .errors import Interrupted, check, error_for, new_error
from .model import Model
from .progress import jobs as _jobs

Equation = namedtuple("Equation", "net component args text expr")
Equation.__doc__ = ("The chosen equation of one network output: net name, component (1-based, "
                    "as in the model language), the call's argument text, the equation for "
                    "display ('−0.921·x·y') and in the model language ('-0.921*x*y').")
Candidate = namedtuple("Candidate", "n_terms threshold ridge rel_error traj_rms crit "
                                    "coefficients text chosen")
Candidate.__doc__ = ("One candidate model of an output: its terms, the first sweep threshold "
                     "giving it (NaN for one-term models), ridge, the regression error relative "
                     "to the network output, the RMS of its one-interval predictions, the "
                     "criterion, {term: coefficient} of its non-zero terms, its text, and "
                     "whether it was chosen.")

StableTerm = namedtuple("StableTerm", "term frequency selected coef median lower upper n")
StableTerm.__doc__ = ("A candidate term of one output across the members of an ensemble: the "
                      "term, the share of the counted members whose chosen law has it, whether "
                      "it is in the final law (frequency >= inclusion), its coefficient there "
                      "(the refit on the result's own fit; 0 when not selected), and the "
                      "median and 95 % interval of the members' refits on the final terms (NaN "
                      "when not selected) with how many members gave one.")

_OPTIONS = ("nets", "library", "terms", "points", "samples", "margin", "seed", "threshold",
            "criterion", "ridge", "inclusion", "stability", "jobs", "callback", "progress")


def discover(result, nets=None, library="poly:3", terms=None, points=None, samples=None,
             margin=None, seed=None, threshold=None, criterion="bic", ridge=None,
             inclusion=None, stability=None, jobs=None, callback=None, progress=None):
    """nde discover on a Result (see Result.discover)."""
    from .uncertainty import _real, check_jobs
    K = lib.nde_result_n_members(result._ptr)
    if stability not in (None, True, False):
        raise ValueError("stability: expected True or False, got %r" % (stability,))
    if inclusion is not None:
        inc = _real("inclusion", inclusion)
        if not 0 < inc <= 1:
            raise ValueError("inclusion: expected a frequency in (0, 1], got %r" % (inclusion,))
    n_jobs = check_jobs(jobs)
    if K < 2 and (inclusion is not None or stability):
        raise ValueError("inclusion, stability: stability selection needs an ensemble result "
                         "(nde.fit(..., ensemble=K)); this result holds %d members" % K)
    keep = []
    o = ffi.new("nde_discover_opts *", lib.nde_discover_opts_default())
    if nets is not None:
        if not isinstance(nets, str):
            nets = ",".join(nets)
        keep.append(cstr(nets))
        o.nets = keep[-1]
    err = new_error()
    if lib.nde_library_opts_parse(cstr(library), ffi.addressof(o, "library"), err) != lib.NDE_OK:
        raise error_for(err.status, "library: " + pystr(err.msg))
    if terms is not None:
        if isinstance(terms, str):
            terms = [t.strip() for t in terms.split(";") if t.strip()]
        cs = [cstr(t) for t in terms]
        arr = ffi.new("const char *[]", cs or [ffi.NULL])
        keep += cs + [arr]
        o.library.n_user = len(cs)
        o.library.user = arr
    for name, v, conv in (("points", points, int), ("samples", samples, int),
                          ("margin", margin, float), ("seed", seed, int),
                          ("threshold", threshold, float), ("ridge", ridge, float)):
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or \
                    (conv is int and not isinstance(v, int)):
                raise ValueError("%s: expected %s, got %r" % (
                    name, "an integer" if conv is int else "a number", v))
            try:
                setattr(o, name, conv(v))
            except OverflowError:
                raise ValueError("%s: %r is out of range" % (name, v)) from None
    if criterion not in ("bic", "aic"):
        raise ValueError("criterion: expected 'bic' or 'aic', got %r" % (criterion,))
    o.criterion = lib.NDE_CRIT_AIC if criterion == "aic" else lib.NDE_CRIT_BIC
    if K >= 2 and stability is not False:
        return _stable(result, o, inclusion, n_jobs, criterion, callback, progress, keep)
    out = ffi.new("nde_discovery **")
    st = lib.nde_discovery_create(result._ptr, o, out, err)
    if out[0] != ffi.NULL and st != lib.NDE_OK:
        lib.ndepy_discovery_destroy(out[0])
    check(st, err)
    ptr = ffi.gc(out[0], lib.ndepy_discovery_destroy)
    check(lib.nde_discovery_select(ptr, err), err)
    return Discovery(ptr, result, criterion)


def _stable(result, o, inclusion, n_jobs, criterion, callback, progress, keep):
    """Stability selection over the members of an ensemble result (nde_discover_stable)."""
    so = ffi.new("nde_stability_opts *", lib.nde_stability_opts_default())
    so.discover = o[0]
    if inclusion is not None:
        so.inclusion = float(inclusion)
    so.threads = n_jobs
    out = ffi.new("nde_stability **")
    stopped = ffi.new("int *")
    err = new_error()
    with _jobs(so, "stability selection", callback, progress, keep) as run:
        st = lib.nde_discover_stable(result._ptr, so, out, stopped, err)
    if out[0] != ffi.NULL and st != lib.NDE_OK:
        lib.ndepy_stability_destroy(out[0])
    if run.exc is not None:
        raise run.exc
    check(st, err)
    if stopped[0]:
        raise Interrupted("the stability selection was stopped before its members ended")
    stab = ffi.gc(out[0], lib.ndepy_stability_destroy)
    return StableDiscovery(stab, result, criterion, so.inclusion)


class Discovery:
    """The outcome of nde discover: .equations (the chosen Equation per network output),
    .model_text (the discovered model), .model (it compiled), .save(path), .candidates(i) (the
    Pareto table of output i), .terms (the candidate terms), .terms_of(i) (those of output i),
    .samples (where the networks were
    sampled).  str() prints the equations as nde discover does."""

    def __init__(self, ptr, result, criterion):
        self._ptr, self._result, self.criterion = ptr, result, criterion
        self.terms = [pystr(lib.nde_discovery_term(ptr, j))
                      for j in range(lib.nde_discovery_n_terms(ptr))]
        self._outputs = []
        o = ffi.new("nde_discovery_output *")
        for i in range(lib.nde_discovery_n_outputs(ptr)):
            check(lib.nde_discovery_get_output(ptr, i, o))
            args = ffi.unpack(o.args, o.args_len).decode("utf-8", "replace")
            self._outputs.append((pystr(o.net), o.component, args, o.line, o.n_candidates,
                                  o.chosen))

    def _index(self, i):
        """Output i (in the order of .equations; negative counts from the end) as an index."""
        n = len(self._outputs)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -n <= i < n:
            raise ValueError("i: expected the index of a network output in [0, %d) (in the order "
                             "of .equations: %s), got %r" % (
                                 n, ", ".join("%s[%d]" % (o[0], o[1] + 1)
                                              for o in self._outputs), i))
        return int(i) % n

    def _equation(self, i, k, pretty):
        p = lib.nde_discovery_equation(self._ptr, i, k, 1 if pretty else 0)
        if p == ffi.NULL:
            raise MemoryError("nde_discovery_equation")
        try:
            return pystr(p)
        finally:
            lib.nde_free(p)

    @property
    def equations(self):
        out = []
        for i, (net, comp, args, _, _, chosen) in enumerate(self._outputs):
            out.append(Equation(net, comp + 1, args, self._equation(i, chosen, True),
                                self._equation(i, chosen, False)))
        return out

    def terms_of(self, i):
        """The candidate terms of output i (in order of equations): those in the states and
        inputs the network call's arguments depend on (a network is a function of its arguments
        alone), with the constant and terms without variables."""
        i = self._index(i)
        return [t for j, t in enumerate(self.terms) if lib.nde_discovery_term_allowed(self._ptr, i, j)]

    def candidates(self, i):
        """The candidate models of output i (in order of equations), fewest terms first."""
        i = self._index(i)
        net, comp, args, line, n_cand, chosen = self._outputs[i]
        c = ffi.new("nde_discovery_candidate *")
        out = []
        nt = len(self.terms)
        for k in range(n_cand):
            check(lib.nde_discovery_get_candidate(self._ptr, i, k, c))
            xi = arrays.copy_doubles(c.xi, nt)
            out.append(Candidate(c.n_terms, c.threshold, c.ridge, c.rel_error, c.traj_rms,
                                 c.crit, {t: float(v) for t, v in zip(self.terms, xi) if v != 0},
                                 self._equation(i, k, True), k == chosen))
        out.sort(key=lambda x: x.n_terms)
        return out

    @property
    def samples(self):
        """The sample states, [n_samples, n]."""
        n = self._result.model.n_state
        m = lib.nde_discovery_n_samples(self._ptr)
        return arrays.copy_doubles(lib.nde_discovery_samples(self._ptr), m * n).reshape(m, n)

    @property
    def model_text(self):
        text = ffi.new("char **")
        err = new_error()
        check(lib.nde_discovery_model_text(self._ptr, text, err), err)
        try:
            return pystr(text[0])
        finally:
            lib.nde_free(text[0])

    @property
    def default_path(self):
        """MODEL_discovered.nde, MODEL the fitted model's file name (nde discover's default, in
        the current directory)."""
        base = os.path.basename(self._result.model.filename)
        if base.endswith(".nde") and len(base) > 4:
            base = base[:-4]
        return base + "_discovered.nde"

    @property
    def model(self):
        """The discovered model, compiled (its filename is default_path)."""
        return Model(self.model_text, self.default_path)

    def save(self, path=None):
        """Write the discovered model (default: default_path) as nde discover writes it
        (atomically: a failure leaves an existing file untouched, an nde.FileError says why);
        returns the path."""
        path = os.fspath(path) if path is not None else self.default_path
        write_text(path, self.model_text)
        return path

    def table(self, i):
        """The Pareto table of output i as nde discover prints it."""
        i = self._index(i)
        net, comp, args, line, _, _ = self._outputs[i]
        head = "%s[%d](%s), line %d: the candidate models (Pareto table)" % (net, comp + 1, args,
                                                                           line)
        own = len(self.terms_of(i))
        if own < len(self.terms):
            head += " over %d of the %d terms: those in the variables its arguments depend on" % (
                own, len(self.terms))
        lines = [head,
                 "  %5s %9s %7s %11s %11s %10s  %s" % ("terms", "threshold", "ridge", "net.error",
                                                       "traj.rms", self.criterion.upper(),
                                                       "model")]
        for c in self.candidates(i):
            lines.append("  %5d %9.3g %7.0e %11.3e %11.3e %10.1f  %s%s" % (
                c.n_terms, c.threshold, c.ridge, c.rel_error, c.traj_rms, c.crit,
                "<- " if c.chosen else "   ",
                c.text if c.n_terms <= 5 else "(%d terms)" % c.n_terms))
        return "\n".join(lines)

    def __str__(self):
        return "Discovered equations:\n" + "\n".join(
            "  %s[%d](%s) \u2248 %s" % (e.net, e.component, e.args, e.text)
            for e in self.equations)

    def __repr__(self):
        return "<nde.Discovery: %s>" % "; ".join("%s[%d] = %s" % (e.net, e.component, e.expr)
                                                 for e in self.equations)


class StableDiscovery(Discovery):
    """The outcome of nde discover on an ensemble result: discovery on every member and
    stability selection (Meinshausen & Buhlmann 2010).  As a Discovery, the final laws (the
    terms chosen by at least .inclusion of the members, refitted on the result's own fit):
    .equations, .model_text, .model, .save(path), .candidates(i); and across the members:
    .n_members (those counted), .frequencies[i] ({term: share of the members whose chosen law
    has it} of output i), .terms_of(i) (StableTerm of every term some member chose, most
    frequent first), .stability_table(i) (as nde discover prints it)."""

    def __init__(self, stab, result, criterion, inclusion):
        super().__init__(lib.nde_stability_discovery(stab), result, criterion)
        self._stab = stab  # owns the discovery above
        self.inclusion = inclusion
        self.n_members = int(lib.nde_stability_n_members(stab))

    def _term(self, i, j):
        t = ffi.new("nde_stable_term *")
        check(lib.nde_stability_get(self._stab, i, j, t))
        return StableTerm(self.terms[j], t.frequency, bool(t.selected), t.coef, t.median,
                          t.lower, t.upper, int(t.n))

    def stable_terms(self, i):
        """StableTerm of every term of output i, in the order of .terms."""
        i = self._index(i)
        return [self._term(i, j) for j in range(len(self.terms))]

    def terms_of(self, i):
        """The terms of output i that some member chose, most frequent first (ties in the order
        of .terms), as nde discover lists them."""
        ts = [t for t in self.stable_terms(i) if t.frequency > 0]
        return sorted(ts, key=lambda t: -t.frequency)

    @property
    def frequencies(self):
        """Per output (in the order of .equations), {term: frequency} of every candidate term."""
        return [{t.term: t.frequency for t in self.stable_terms(i)}
                for i in range(len(self._outputs))]

    def stability_table(self, i):
        """The stability table of output i as nde discover prints it."""
        i = self._index(i)
        net, comp, args, _, _, _ = self._outputs[i]
        lines = ["%s[%d](%s): how often each term is chosen over %d members (final law: "
                 "frequency >= %g)" % (net, comp + 1, args, self.n_members, self.inclusion),
                 "  %-16s %9s  %-5s %12s %12s  %s" % ("term", "frequency", "final", "coefficient",
                                                      "median", "95% interval over members")]
        for t in self.terms_of(i):
            line = "  %-16s %9.2f  %-5s" % (t.term, t.frequency, "yes" if t.selected else "no")
            if t.selected:
                line += " %12.6g %12.6g  [%.6g, %.6g] (%d members)" % (t.coef, t.median, t.lower,
                                                                       t.upper, t.n)
            lines.append(line)
        return "\n".join(lines)

    def __str__(self):
        return ("Discovered equations (stable terms, coefficients refitted on the result's own "
                "fit):\n" + "\n".join("  %s[%d](%s) \u2248 %s" % (e.net, e.component, e.args,
                                                                   e.text)
                                       for e in self.equations))

    def __repr__(self):
        return "<nde.StableDiscovery over %d members: %s>" % (
            self.n_members, "; ".join("%s[%d] = %s" % (e.net, e.component, e.expr)
                                      for e in self.equations))
