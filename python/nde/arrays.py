"""Arrays at the C boundary: float64, C-contiguous, passed without a copy when they already are.

Arguments are checked here, before C sees them, with a ValueError that names the argument, the
expected shape and what was given.  Contents (finite values, increasing times, ...) are checked
by the library, with its own messages.
"""
import numpy as np

from ._lib import ffi


def _shape_text(shape):
    return "[" + ", ".join(str(s) for s in shape) + "]"


def real_array(x, name, ndim=None, shape=None, expected=None):
    """x as a C-contiguous float64 array (the same object when it already is one).

    ndim: required rank; shape: a tuple with an int or None (any size) per axis; expected: the
    text for the message ("[N, 2]").  Integer and float arrays of other widths are converted
    (the masked entries of a numpy masked array to NaN); anything else (complex, bool, strings,
    objects) is a ValueError naming the argument."""
    if shape is not None:
        ndim = len(shape)
    want = expected or (_shape_text(["N" if s is None else s for s in shape]) if shape
                        else "rank %d" % ndim if ndim is not None else "an array")
    try:
        if np.ma.isMaskedArray(x) and x.dtype.kind in "fiu":
            # A masked entry is a missing value: NaN, as nde's data write it (np.asarray would
            # keep the value under the mask, silently).
            x = np.ma.filled(x.astype(np.float64), np.nan)
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise ValueError("%s: expected a float64 array of shape %s (%s)" % (name, want, e)) from None
    if a.dtype.kind not in "fiu" or a.dtype.itemsize > 8 and a.dtype.kind == "f":
        raise ValueError("%s: expected real numbers (float64) of shape %s, got dtype %s"
                         % (name, want, a.dtype))
    if ndim is not None and a.ndim != ndim:
        raise ValueError("%s: expected a float64 array of shape %s, got shape %s"
                         % (name, want, _shape_text(a.shape)))
    if shape is not None:
        for want_n, got_n in zip(shape, a.shape):
            if want_n is not None and want_n != got_n:
                raise ValueError("%s: expected a float64 array of shape %s, got shape %s"
                                 % (name, want, _shape_text(a.shape)))
    if a.dtype != np.float64 or not a.flags.c_contiguous:
        a = np.ascontiguousarray(a, dtype=np.float64)
    return a


def vector(x, name, n):
    """A float64 vector of n values."""
    return real_array(x, name, shape=(n,))


def ptr(a):
    """A double * into the buffer of a float64 C-contiguous array (no copy)."""
    return ffi.from_buffer("double[]", a)


def wptr(a):
    """A double * into a writable float64 C-contiguous array."""
    return ffi.from_buffer("double[]", a, require_writable=True)


def copy_doubles(p, n):
    """A new ndarray holding n doubles read from p (owned by a C object)."""
    if n == 0 or p == ffi.NULL:
        return np.empty(0)
    return np.frombuffer(ffi.buffer(p, 8 * n), dtype=np.float64).copy()


def copy_longs(p, n):
    if n == 0 or p == ffi.NULL:
        return np.empty(0, dtype=np.int64)
    return np.array([p[i] for i in range(n)], dtype=np.int64)


def readonly(a):
    a.flags.writeable = False
    return a
