"""The compiled half of the package: ffi and lib of the cffi extension nde._nde_cffi (generated
from python/build_ffi.py), plus the few helpers every module uses to pass strings and arrays."""
import threading

try:
    from ._nde_cffi import ffi, lib
except ImportError as e:  # pragma: no cover - only without a build
    raise ImportError(
        "nde: the compiled extension nde._nde_cffi is missing or cannot load libnde (%s); build "
        "and install nde with meson (see python/README.md)" % e) from e

__all__ = ["ffi", "lib", "h5_lock", "cstr", "pystr"]

# The serial HDF5 library is not thread-safe: every call that opens, reads or writes an HDF5 file
# (data, result files, fits with a checkpoint file) holds this lock.
h5_lock = threading.RLock()


def cstr(s):
    """A NUL-terminated C string (kept alive by the returned object) from a str or path."""
    if s is None:
        return ffi.NULL
    if not isinstance(s, bytes):
        s = str(s).encode()
    return ffi.new("char[]", s)


def pystr(p):
    """The Python str of a C string (None for NULL)."""
    if p == ffi.NULL:
        return None
    return ffi.string(p).decode("utf-8", "replace")
