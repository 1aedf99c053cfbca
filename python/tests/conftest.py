"""Shared fixtures of the Python tests.  meson test runs each test file with PYTHONPATH pointing
at the built package, NDE_EXE at the built nde program, H5CHECK at tests/cli's h5check and
NDE_SOURCE_ROOT at the repository;
OPENBLAS_NUM_THREADS=1 as for every test, so that numbers are bit-reproducible."""
import os
import subprocess

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import nde  # noqa: E402

ROOT = os.environ.get("NDE_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
TRUTH = {"alpha": 1.3, "beta": 0.9, "gamma": 0.8, "delta": 1.8}


def model_path(name):
    return os.path.join(ROOT, "models", name)


def data_path(name):
    return os.path.join(ROOT, "data", name)


def run_nde(*args, cwd=None, check=True):
    """Run the built nde program; returns the CompletedProcess (stdout and stderr as text)."""
    exe = os.environ.get("NDE_EXE")
    if not exe:
        pytest.skip("NDE_EXE is not set (meson test sets it to the built nde program)")
    p = subprocess.run([exe] + [str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError("nde %s exited %d:\n%s%s" % (" ".join(map(str, args)), p.returncode,
                                                          p.stdout, p.stderr))
    return p


def h5check(*args):
    """Run tests/cli's h5check (reads and makes small HDF5 files; numbers printed with 17
    digits, so exactly); returns its stdout."""
    exe = os.environ.get("H5CHECK")
    if not exe:
        pytest.skip("H5CHECK is not set (meson test sets it to tests/cli's h5check)")
    p = subprocess.run([exe] + [str(a) for a in args], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("h5check %s exited %d:\n%s" % (" ".join(map(str, args)),
                                                          p.returncode, p.stderr))
    return p.stdout


def h5get(path, dataset):
    """Every value of a numeric dataset of any HDF5 file, exactly."""
    return np.array([float(v) for v in h5check("get", path, dataset).split()])


def h5attr(path, obj, name):
    """A numeric attribute of any HDF5 file, exactly."""
    return float(h5check("attr", path, obj, name))


def bits(a):
    """The bit patterns of a float64 array, for comparisons that must be exact (NaN == NaN)."""
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


@pytest.fixture(scope="session")
def lv():
    return nde.Model.from_file(model_path("lotka_volterra.nde"))


@pytest.fixture(scope="session")
def ude():
    return nde.Model.from_file(model_path("lotka_volterra_ude.nde"))


@pytest.fixture(scope="session")
def lv_arrays(lv):
    """The Lotka-Volterra truth on [0, 5] every 0.25 with 0.5 % noise (data/make_data.sh's
    recipe), as arrays."""
    t = np.linspace(0.0, 5.0, 21)
    y = lv.simulate(t, params=TRUTH, noise=5e-3, seed=2020, steps_per_interval=10)
    return t, y


@pytest.fixture(scope="module")
def ude_fit(ude):
    """The LV UDE fitted to the shipped data with nde fit's defaults."""
    return nde.fit(ude, data_path("lotka_volterra.h5"), seed=1, progress=False)
