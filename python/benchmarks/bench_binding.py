#!/usr/bin/env python3
"""What the Python binding costs where the work is in C (issue 15's targets).

    python3 bench_binding.py NDE_EXE SOURCE_ROOT [--runs N] [--calls N]

1. One fit of the LV UDE (nde fit's defaults, seed 1, data/lotka_volterra.h5, result written to a
   file) by the nde program and by nde.fit, alternated in one run, N times each: the wall time
   end to end (process or call) and of the fit loop as the result records it (nde_result_seconds),
   each the fastest of the N runs, and the median CPU time.  Target: Python within 1.05x of the
   program.
2. loss_and_grad on the LV UDE: the C call alone (nde grad --repeat, the median of single calls
   timed in C), the same C call made from Python through cffi with nothing around it, and
   Problem.loss_and_grad; the overhead is the difference of the medians.  Target <= 5 us.
   The same on a 3-point LV problem, where the C call itself is short.
Rows are printed as "row|benchmark|case|time|rate|reference|ratio|target|result" like the
programs of benchmarks/ (benchmarks/run.sh's table), anything else is a note.  Timings on a busy
machine vary: read the medians, and CPU times for the fit.
"""
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

import nde  # noqa: E402
from nde._lib import ffi, lib  # noqa: E402


def row(bench, case, t, rate, ref, ratio, target, ok):
    print("row|%s|%s|%s|%s|%s|%s|%s|%s" % (bench, case, t, rate, ref, ratio, target,
                                          "ok" if ok else "MISSED"), flush=True)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_fit(exe, root, runs):
    model = os.path.join(root, "models", "lotka_volterra_ude.nde")
    data = os.path.join(root, "data", "lotka_volterra.h5")
    cli_wall, cli_loop, cli_cpu, py_wall, py_loop, py_cpu = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        out_c, out_p = os.path.join(tmp, "cli.h5"), os.path.join(tmp, "py.h5")
        for i in range(runs):
            for which in ((0, 1) if i % 2 == 0 else (1, 0)):
                if which == 0:
                    c0, t0 = children_cpu(), time.perf_counter()
                    subprocess.run([exe, "fit", model, data, "-o", out_c, "--seed", "1",
                                    "--quiet"], check=True)
                    cli_wall.append(time.perf_counter() - t0)
                    cli_cpu.append(children_cpu() - c0)
                    cli_loop.append(nde.load(out_c).seconds)
                else:
                    c0, t0 = time.process_time(), time.perf_counter()
                    r = nde.fit(model, data, seed=1, checkpoint=out_p, progress=False)
                    py_wall.append(time.perf_counter() - t0)
                    py_cpu.append(time.process_time() - c0)
                    py_loop.append(r.seconds)
        same = np.array_equal(nde.read_theta(out_c), nde.read_theta(out_p))
    # Wall times on a shared machine carry the other jobs' load: the fastest of the runs is the
    # estimate of each (as timeit does); CPU time does not depend on the load: its median.
    for case, c, p, est in (("end to end (wall, fastest run)", cli_wall, py_wall, min),
                            ("fit loop (wall, fastest run)", cli_loop, py_loop, min),
                            ("end to end (CPU, median)", cli_cpu, py_cpu, statistics.median)):
        ratio = est(p) / est(c)
        row("python binding", "LV UDE fit, %s" % case, "%.3f s" % est(p), "-",
            "nde fit %.3f s" % est(c), "%.3f" % ratio, "<= 1.05", ratio <= 1.05)
    print("note: %d runs each, alternated; /params/theta of the last runs %s" % (
        runs, "identical" if same else "DIFFERENT"))
    for name, w, c in (("nde fit", cli_wall, cli_cpu), ("nde.fit", py_wall, py_cpu)):
        print("note: %s: wall %s s (median %.3f); CPU %s s" % (
            name, " ".join("%.3f" % x for x in w), statistics.median(w),
            " ".join("%.3f" % x for x in c)))


def time_calls(f, calls):
    ts = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        t0 = clock()
        f()
        ts.append(clock() - t0)
    return statistics.median(ts) / 1e3  # microseconds


def bench_grad(exe, root, calls):
    cases = [("LV UDE, 21 times", "lotka_volterra_ude.nde", None),
             ("LV, 3 times", "lotka_volterra.nde", 3)]
    for name, model_file, n_times in cases:
        model = os.path.join(root, "models", model_file)
        data = os.path.join(root, "data", "lotka_volterra.h5")
        m = nde.Model.from_file(model)
        if n_times is None:
            p = m.problem(data)
        else:
            s = nde.Data(data, m).series[0]
            p = m.problem((s.t[:n_times], s.y[:n_times]))
            tmp = tempfile.NamedTemporaryFile(suffix=".h5", delete=False)
            tmp.close()
            p.data.save(tmp.name)  # the same rows in a file, for nde grad
            data = tmp.name
        theta = m.init_theta(1)
        out = subprocess.run([exe, "grad", model, data, "--repeat", str(calls)], check=True,
                             capture_output=True, text=True).stdout
        c_us = float(dict(line.split() for line in out.splitlines())["time_per_grad_s"]) * 1e6
        g = np.empty(p.n_theta)
        Lp, info = ffi.new("double *"), ffi.new("nde_fit_info *")
        tp, gp = ffi.from_buffer("double[]", theta), ffi.from_buffer("double[]", g)
        raw = time_calls(lambda: lib.nde_problem_loss(p._ptr, tp, Lp, gp, info), calls)
        wrapped = time_calls(lambda: p.loss_and_grad(theta), calls)
        wrapped_out = time_calls(lambda: p.loss_and_grad(theta, out=g), calls)
        again = time_calls(lambda: lib.nde_problem_loss(p._ptr, tp, Lp, gp, info), calls)
        raw = min(raw, again)
        over = wrapped - raw
        row("python binding", "loss_and_grad overhead, %s" % name, "%.2f us" % over, "-",
            "C call %.2f us (from Python), %.2f us (nde grad)" % (raw, c_us),
            "%.3f" % (wrapped / raw), "<= 5 us", over <= 5.0)
        print("note: %s: Problem.loss_and_grad %.2f us, with out= %.2f us, the bare cffi call "
              "%.2f us, nde grad's C timing %.2f us" % (name, wrapped, wrapped_out, raw, c_us))
        if n_times is not None:
            os.unlink(data)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    exe, root = argv[1], argv[2]
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 5
    calls = int(argv[argv.index("--calls") + 1]) if "--calls" in argv else 5000
    print("note: nde %s, Python %s, numpy %s" % (nde.__version__, sys.version.split()[0],
                                                 np.__version__))
    bench_grad(exe, root, calls)
    bench_fit(exe, root, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
