"""nde's errors as Python exceptions.

Every error of the C library (a status and a one-line message) becomes an exception of the class
below for its status, carrying nde's message unchanged (file:line:col for models, FILE:/DATASET
for data).  The classes also derive from the built-in exception a Python user would catch for
that kind of problem (ValueError for bad input, OSError for files, MemoryError).

Numerical outcomes are not errors, as in C: a fit that diverged returns a Result whose status
says so; a solve that stopped early returns its output with NaN after the stop and warns with
SolverStopWarning.
"""
from ._lib import ffi, lib, pystr


class Error(Exception):
    """An error reported by nde.  .status is the C status name ("NDE_ERR_DATA"), .message the
    message as nde wrote it."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self):
        return self.message


class ArgumentError(Error, ValueError):
    """An invalid argument or option (NDE_ERR_ARG)."""


class LimitError(Error, ValueError):
    """A size limit exceeded (NDE_ERR_LIMIT)."""


class ModelError(Error, ValueError):
    """A model that does not compile (NDE_ERR_PARSE, NDE_ERR_MODEL).  The message holds every
    problem as "FILE:LINE:COL: error: what" with the offending line and a caret; .diagnostics
    lists them one by one (Diagnostic: line, col, message, is_note, source_line)."""

    def __init__(self, message, status=None, diagnostics=()):
        super().__init__(message, status)
        self.diagnostics = list(diagnostics)


class DataError(Error, ValueError):
    """Data that break the time-series convention, or do not fit the model (NDE_ERR_DATA)."""


class FileError(Error, OSError):
    """A file that cannot be read or written (NDE_ERR_IO)."""


class OutOfMemoryError(Error, MemoryError):
    """NDE_ERR_NOMEM."""


class CallbackError(Error, RuntimeError):
    """A right-hand side reported a fatal error (NDE_ERR_CALLBACK)."""


class NumericalError(Error, ArithmeticError):
    """A numerical failure reported as an error (NDE_ERR_NUMERIC), e.g. a model that cannot be
    integrated where discovery samples it."""


class UnsupportedError(Error, NotImplementedError):
    """An operation the object does not support (NDE_ERR_UNSUPPORTED)."""


class InternalError(Error, RuntimeError):
    """A bug in nde (NDE_ERR_INTERNAL)."""


class Interrupted(KeyboardInterrupt):
    """Work that cannot be kept in part was stopped by Ctrl-C or by the callback: an ensemble
    (its members are not resumable), the profile points or the stability selection.  .result is
    what was complete before it (the fit with its standard errors when the profiles were
    stopped), or None.  A KeyboardInterrupt, so that `except Exception` does not swallow it."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.message = message
        self.result = result

    def __str__(self):
        return self.message


class SolverStopWarning(RuntimeWarning):
    """A solve stopped before the last output time (a numerical outcome, not an error): the
    outputs after the stop are NaN.  The message says why and what to try."""


_BY_STATUS = {
    lib.NDE_ERR_ARG: ("NDE_ERR_ARG", ArgumentError),
    lib.NDE_ERR_NOMEM: ("NDE_ERR_NOMEM", OutOfMemoryError),
    lib.NDE_ERR_LIMIT: ("NDE_ERR_LIMIT", LimitError),
    lib.NDE_ERR_PARSE: ("NDE_ERR_PARSE", ModelError),
    lib.NDE_ERR_MODEL: ("NDE_ERR_MODEL", ModelError),
    lib.NDE_ERR_DATA: ("NDE_ERR_DATA", DataError),
    lib.NDE_ERR_IO: ("NDE_ERR_IO", FileError),
    lib.NDE_ERR_CALLBACK: ("NDE_ERR_CALLBACK", CallbackError),
    lib.NDE_ERR_NUMERIC: ("NDE_ERR_NUMERIC", NumericalError),
    lib.NDE_ERR_UNSUPPORTED: ("NDE_ERR_UNSUPPORTED", UnsupportedError),
    lib.NDE_ERR_INTERNAL: ("NDE_ERR_INTERNAL", InternalError),
}


def error_for(status, message=None, **extra):
    """The exception for a C status with nde's message (the status text when there is none)."""
    name, cls = _BY_STATUS.get(status, ("NDE_ERR_INTERNAL", InternalError))
    if not message:
        message = pystr(lib.nde_status_str(status))
    return cls(message, name, **extra)


def new_error():
    """An nde_error for a constructor's message."""
    return ffi.new("nde_error *")


def check(status, err=None, message=None):
    """Raise the exception of status (with err's message, or message) unless it is NDE_OK."""
    if status == lib.NDE_OK:
        return
    if message is None and err is not None:
        message = pystr(err.msg)
    raise error_for(status, message)
