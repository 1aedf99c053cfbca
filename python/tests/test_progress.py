"""Progress of a fit: the callback (every N iterations and on events, stopping on True), the
display (plain lines off a terminal, tqdm where installed), and Ctrl-C in the main thread."""
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import numpy as np
import pytest

import nde
from conftest import ROOT, model_path


def test_the_callback_sees_every_nth_iteration_and_stops_the_fit_on_true(lv, lv_arrays):
    seen = []

    def cb(p):
        seen.append(p)
        return p.total_iter >= 120

    r = nde.fit(lv, lv_arrays, optim="adam:500@0.01", callback=cb, progress_every=40,
                checkpoint_every=50)
    assert [p.total_iter for p in seen] == [40, 80, 120]
    p = seen[-1]
    assert isinstance(p, nde.Progress) and p.total_iters == 500 and p.phase == 0
    assert p.event is None and np.isfinite(p.loss) and p.lr == 0.01
    assert r.status == "interrupted" and r.iterations == 120
    assert r.message == "interrupted after 120 iterations"


def test_progress_every_takes_a_numpy_integer_as_every_other_count_does(lv, lv_arrays):
    # progress_every=np.int64(40) was refused ("expected a positive integer, got 40"), while
    # seed, checkpoint_every and the other counts take numpy integers.
    seen = []
    nde.fit(lv, lv_arrays, optim="adam:130@0.01", callback=lambda p: seen.append(p.total_iter),
            progress_every=np.int64(40), checkpoint_every=np.int64(50), progress=False)
    assert seen[:3] == [40, 80, 120]
    for bad in (0, -3, np.int32(0), 2.5, True, "40"):
        with pytest.raises(ValueError, match="progress_every: expected a positive integer"):
            nde.fit(lv, lv_arrays, optim="adam:5", progress_every=bad, progress=False)


def test_a_resumed_fit_reports_at_the_same_iterations_as_an_uninterrupted_one(lv, lv_arrays):
    part = nde.fit(lv, lv_arrays, optim="adam:300@0.01", checkpoint_every=50,
                   callback=lambda p: p.total_iter >= 150, progress_every=50)
    seen = []
    nde.fit(lv, lv_arrays, optim="adam:300@0.01", checkpoint_every=50, resume=part,
            callback=lambda p: seen.append(p.total_iter), progress_every=40)
    assert seen == [160, 200, 240, 280]


def test_events_reach_the_callback_as_sentences(lv, lv_arrays):
    events = []
    r = nde.fit(lv, lv_arrays, optim="adam:100@0.01,adam:20@1e30", checkpoint_every=100,
                callback=lambda p: events.append(p.event) if p.event else None)
    assert r.status == "diverged"
    assert events and all(e.startswith("step rejected") for e in events)


def test_an_exception_in_the_callback_stops_the_fit_and_propagates(lv, lv_arrays):
    class Stop(Exception):
        pass

    def cb(p):
        raise Stop("from the callback")

    with pytest.raises(Stop, match="from the callback"):
        nde.fit(lv, lv_arrays, optim="adam:100000", callback=cb, progress_every=10,
                checkpoint_every=5)


def test_progress_true_off_a_terminal_prints_plain_lines(lv, lv_arrays, capsys):
    nde.fit(lv, lv_arrays, optim="adam:200@0.01", progress=True, progress_every=50)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("nde: fitting ") and "schedule adam:200@0.01" in err[0]
    iters = [line for line in err if line.startswith("iter ")]
    assert [line.split()[1] for line in iters] == ["50/200", "100/200", "150/200", "200/200"]
    assert err[-1].startswith("fit: 200 iterations in ")


def test_by_default_nothing_is_printed_off_a_terminal(lv, lv_arrays, capsys):
    nde.fit(lv, lv_arrays, optim="adam:50")
    assert capsys.readouterr() == ("", "")


def test_in_a_notebook_the_bar_is_tqdm(monkeypatch, lv, lv_arrays):
    updates = []

    class FakeTqdm:
        def __init__(self, total, **kw):
            self.total, self.n, self.closed = total, 0, False
            updates.append(self)

        def update(self, k):
            self.n += k

        def set_postfix_str(self, s, refresh=True):
            self.postfix = s

        def write(self, s, file=None):
            pass

        def close(self):
            self.closed = True

    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = FakeTqdm
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    nde.fit(lv, lv_arrays, optim="adam:300@0.01", progress_every=100)
    (bar,) = updates
    assert bar.total == 300 and bar.n == 300 and bar.closed
    assert bar.postfix.startswith("phase 1 loss ")


SCRIPT = textwrap.dedent("""
    import sys, time, nde
    print("start", flush=True)
    r = nde.fit(sys.argv[1], sys.argv[2], optim="adam:10000000@0.01", checkpoint_every=10,
                phase_patience=0, progress=False)  # no early end of the stalling phase
    print("fit", r.status, r.iterations, r.kept.is_best, flush=True)
    time.sleep(30)
    print("not reached", flush=True)
""")


def test_ctrl_c_stops_the_fit_keeps_the_best_parameters_then_interrupts_as_usual(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(nde.__file__))] +
                                        env.get("PYTHONPATH", "").split(os.pathsep))
    p = subprocess.Popen([sys.executable, str(script), model_path("lotka_volterra_ude.nde"),
                          os.path.join(ROOT, "data", "lotka_volterra.h5")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "start\n"
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    line = p.stdout.readline().split()
    assert line[:2] == ["fit", "interrupted"] and int(line[2]) > 0 and line[3] == "True"
    p.send_signal(signal.SIGINT)  # outside the fit: Python's own KeyboardInterrupt
    out, err = p.communicate(timeout=60)
    assert "not reached" not in out and "KeyboardInterrupt" in err
    assert p.returncode != 0


def test_the_readme_names_the_fields_of_progress():
    text = open(os.path.join(ROOT, "python", "README.md")).read()
    para = text.split("**Progress and Ctrl-C.**")[1].split("returning True")[0]
    named = [f for f in nde.Progress._fields if "`%s`" % f in para]
    assert named == list(nde.Progress._fields)
