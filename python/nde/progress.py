"""Progress of a fit: the user's callback, a progress bar, and Ctrl-C.

The fit calls a C trampoline every iteration (python/build_ffi.py); it calls Python only on events
(a rejected step...), every `progress_every` iterations and, as a heartbeat, at most every 0.1 s,
so that the loop runs at C speed.  The callback gets a Progress on events and every
`progress_every` iterations and may return True to stop the fit.  The display is tqdm (tqdm.auto,
so a widget in a notebook) where it is installed, else one updating line on a terminal, else
plain lines.  While a fit runs in the main thread, SIGINT (Ctrl-C, a notebook's interrupt) asks
it to stop: the fit returns its result with status "interrupted" and the best parameters kept.
"""
import contextlib
import signal
import sys
import threading
import time
from collections import namedtuple

from ._lib import ffi, lib, pystr

Progress = namedtuple("Progress", "phase shooting iter total_iter total_iters loss grad_norm lr "
                                  "score event")
Progress.__doc__ = """The state of a fit: phase (0-based) and whether it optimises the
multiple-shooting objective, iterations in the phase and in all phases, iterations planned, the
phase's objective at the accepted point, |gradient|, the learning rate, the latest score (NaN
before the first), and event (None, or a sentence such as "step rejected: non-finite loss")."""

JobProgress = namedtuple("JobProgress", "what done total")
JobProgress.__doc__ = """The progress of jobs that run concurrently in C (ensemble members,
profile points, the members' discoveries of a stability selection): what runs ("ensemble
members", "profile points", "stability selection"), how many are done of the total."""

HEARTBEAT = 0.1  # seconds between calls into Python for the display and Ctrl-C


def _in_notebook():
    return "ipykernel" in sys.modules


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class _Bar:
    """tqdm."""

    def __init__(self, tqdm, stream):
        self.tqdm, self.stream, self.bar = tqdm, stream, None

    def note(self, text):
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream)

    def update(self, p):
        if self.bar is None:
            self.bar = self.tqdm(total=p.total_iters, unit="it", file=self.stream,
                                 desc="nde fit", dynamic_ncols=True)
        self.bar.set_postfix_str("phase %d loss %.4e" % (p.phase + 1, p.loss), refresh=False)
        self.bar.update(p.total_iter - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class _Line:
    """One line rewritten in place (a terminal without tqdm), or plain lines (lines=True)."""

    def __init__(self, stream, lines):
        self.stream, self.lines, self.t0, self.open = stream, lines, time.monotonic(), False

    def _text(self, p):
        el = time.monotonic() - self.t0
        rate = p.total_iter / el if el > 0 else 0.0
        eta = (p.total_iters - p.total_iter) / rate if rate > 0 else 0.0
        return ("iter %6d/%d  phase %d (%s)  loss %.4e  |grad| %.3e  %6.0f it/s  ETA %.0f s"
                % (p.total_iter, p.total_iters, p.phase + 1,
                   "shooting objective" if p.shooting else "trajectory loss", p.loss,
                   p.grad_norm, rate, eta))

    def note(self, text):
        if self.open:
            self.stream.write("\n")
            self.open = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, p):
        if self.lines:
            self.stream.write(self._text(p) + "\n")
        else:
            self.stream.write("\r" + self._text(p) + "\033[K")
            self.open = True
        self.stream.flush()

    def close(self):
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


def _where(progress, stream):
    """(stream, on a terminal, live) for progress=None (auto: shown on a terminal or in a
    notebook), True or False; None when nothing is shown."""
    if progress is False:
        return None
    stream = stream or sys.stderr
    tty = hasattr(stream, "isatty") and stream.isatty()
    live = tty or _in_notebook()
    if progress is None and not live:
        return None
    return stream, tty, live


def make_display(progress, stream=None):
    """The display for progress=None (auto: on a terminal or in a notebook), True or False."""
    where = _where(progress, stream)
    if where is None:
        return None
    stream, tty, live = where
    tqdm = _tqdm()
    if tqdm is not None and live:
        return _Bar(tqdm, stream)
    return _Line(stream, lines=not tty)


class Run:
    """The Python side of one fit's progress (reached from C through ffi.new_handle)."""

    def __init__(self, callback, every, display):
        self.callback, self.every, self.display = callback, every, display
        self.interrupted = False  # SIGINT
        self.stopped = False      # the callback returned True
        self.exc = None           # an exception raised by the callback or the display
        self.last = None

    def on_progress(self, p, why):
        try:
            prog = Progress(p.phase, bool(p.shooting), p.iter, p.total_iter, p.total_iters,
                            p.loss, p.grad_norm, p.lr, p.score,
                            pystr(p.event) if p.event != ffi.NULL else None)
            self.last = prog
            if self.display is not None:
                if prog.event:
                    self.display.note("nde: phase %d, iteration %d: %s"
                                      % (prog.phase + 1, prog.iter, prog.event))
                elif why == 2 or not getattr(self.display, "lines", False):
                    # plain lines every progress_every iterations; a bar or line also on beats
                    self.display.update(prog)
            if self.callback is not None and why in (1, 2) and self.callback(prog):
                self.stopped = True
        except BaseException as e:  # noqa: B902 - re-raised by fit() after the C call returns
            self.exc = e
        return 1 if (self.interrupted or self.stopped or self.exc is not None) else 0

    def interrupt(self, signum=None, frame=None):
        self.interrupted = True


@contextlib.contextmanager
def sigint_stops(run):
    """While the block runs in the main thread, SIGINT asks the fit to stop (run.interrupted)."""
    installed, old = False, None
    if threading.current_thread() is threading.main_thread():
        old = signal.getsignal(signal.SIGINT)
        if old not in (signal.SIG_IGN, None):
            signal.signal(signal.SIGINT, run.interrupt)
            installed = True
    try:
        yield installed
    finally:
        if installed:
            signal.signal(signal.SIGINT, old)


@ffi.def_extern()
def ndepy_on_progress(handle, p, why):
    """Called by the C trampoline (python/build_ffi.py); returns non-zero to stop the fit."""
    return ffi.from_handle(handle).on_progress(p, why)


class _JobLine:
    """The display of concurrent jobs: "WHAT: D of N done  S s", a tqdm bar on a terminal or in a
    notebook where tqdm is installed, else one line rewritten in place on a terminal, else a
    plain line when the count changed and 2 s passed (and at the end), as the nde program
    prints them."""

    def __init__(self, stream, tty, tqdm):
        self.stream, self.tty, self.tqdm = stream, tty, tqdm
        self.t0 = self.t_last = time.monotonic()
        self.bar, self.shown, self.open = None, -1, False

    def note(self, text):
        self.close()
        self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, what, done, total):
        if self.tqdm is not None:
            if self.bar is None:
                self.bar = self.tqdm(total=total, unit="", file=self.stream, desc=what,
                                     dynamic_ncols=True)
            self.bar.total = total
            self.bar.update(done - self.bar.n)
            return
        now = time.monotonic()
        if done == self.shown or not (self.tty or now - self.t_last > 2 or done == total):
            return
        text = "%s: %d of %d done  %.0f s" % (what, done, total, now - self.t0)
        if self.tty:
            self.stream.write("\r" + text + "\033[K")
            self.open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.t_last, self.shown = now, done

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


def make_job_display(progress, stream=None):
    """The display of concurrent jobs for progress=None (auto), True or False."""
    where = _where(progress, stream)
    if where is None:
        return None
    stream, tty, live = where
    return _JobLine(stream, tty, _tqdm() if live else None)


class JobRun:
    """The Python side of concurrent jobs (reached from C through ffi.new_handle): the callback
    gets a JobProgress whenever the count of finished jobs changes and may return True to stop;
    SIGINT stops too.  The C call reports the stop (*stopped), and the caller raises
    nde.Interrupted."""

    def __init__(self, what, callback, display):
        self.what, self.callback, self.display = what, callback, display
        self.interrupted = self.stopped = False
        self.exc = None
        self.last = None

    def on_jobs(self, done, total):
        try:
            if self.display is not None:
                self.display.update(self.what, done, total)
            if self.callback is not None and (done, total) != self.last:
                self.last = (done, total)
                if self.callback(JobProgress(self.what, done, total)):
                    self.stopped = True
        except BaseException as e:  # noqa: B902 - re-raised after the C call returns
            self.exc = e
        return 1 if (self.interrupted or self.stopped or self.exc is not None) else 0

    def interrupt(self, signum=None, frame=None):
        self.interrupted = True


@contextlib.contextmanager
def jobs(opts, what, callback, progress, keep, notes=()):
    """Point opts.progress (an nde_*_opts with progress and progress_ctx) at a JobRun for the C
    call made in the block (SIGINT stops it while it runs in the main thread); yields the run.
    notes: lines the display shows first."""
    if callback is not None and not callable(callback):
        raise TypeError("callback: expected a function of an nde.JobProgress, got %s"
                        % type(callback).__name__)
    display = make_job_display(progress)
    for text in notes if display is not None else ():
        display.note(text)
    run = JobRun(what, callback, display)
    with sigint_stops(run):
        handle = ffi.new_handle(run)
        keep.append(handle)
        opts.progress = ffi.addressof(lib, "ndepy_on_jobs")
        opts.progress_ctx = handle
        try:
            yield run
        finally:
            if display is not None:
                display.close()


@ffi.def_extern()
def ndepy_on_jobs(handle, done, total):
    """Called by the C library from the calling thread as jobs end (and, for ensembles, every
    0.2 s); returns non-zero to stop them."""
    return ffi.from_handle(handle).on_jobs(done, total)
