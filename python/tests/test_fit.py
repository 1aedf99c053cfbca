"""Fits from Python: the same result file as nde fit bit for bit, from paths and from arrays;
multi-series fits with missing values; outcomes as statuses; starts, checkpoints and resume."""
import inspect
import re

import numpy as np
import pytest

import nde
from conftest import TRUTH, bits, data_path, model_path, run_nde

UDE = model_path("lotka_volterra_ude.nde")
LV = model_path("lotka_volterra.nde")
DATA = data_path("lotka_volterra.h5")


def test_a_fit_with_the_defaults_and_a_seed_is_nde_fit_bit_for_bit(tmp_path, ude):
    run_nde("fit", UDE, DATA, "-o", tmp_path / "cli.h5", "--seed", "5", "--quiet")
    cli = nde.load(tmp_path / "cli.h5")
    r = nde.fit(UDE, DATA, seed=5)
    assert r.status == cli.status == "done"
    assert np.array_equal(bits(r.theta), bits(cli.theta))
    assert np.array_equal(bits(r.theta), bits(nde.read_theta(tmp_path / "cli.h5")))
    assert np.array_equal(bits(r.history), bits(cli.history))
    assert r.settings == cli.settings and r.iterations == cli.iterations == 5000
    # from arrays: the same numbers again
    s = nde.Data(DATA, ude).series[0]
    ra = nde.fit(ude, (s.t, s.y), seed=5)
    assert np.array_equal(bits(ra.theta), bits(cli.theta))


def test_options_mean_what_the_options_of_nde_fit_of_the_same_name_mean(tmp_path, lv):
    run_nde("fit", LV, DATA, "-o", tmp_path / "cli.h5", "--optim", "shoot:adam:150@0.05,lbfgs:60",
            "--steps-per-interval", "3", "--learn-u0", "--scale", "std", "--loss", "sum",
            "--shoot-interval", "3", "--shoot-weight", "2.5", "--param", "alpha=1.1,beta=0.75",
            "--seed", "11", "--checkpoint-every", "50", "--keep-last", "--quiet")
    cli = nde.load(tmp_path / "cli.h5")
    r = nde.fit(lv, DATA, optim="shoot:adam:150@0.05,lbfgs:60", steps_per_interval=3,
                learn_u0=True, scale="std", loss="sum", shoot_interval=3, shoot_weight=2.5,
                params={"alpha": 1.1, "beta": 0.75}, seed=11, checkpoint_every=50,
                keep_last=True)
    assert np.array_equal(bits(r.theta), bits(cli.theta))
    assert np.array_equal(bits(r.series[0].u0), bits(cli.series[0].u0))
    assert r.settings == cli.settings
    again = nde.fit(lv, DATA, params={"alpha": 1.1, "beta": 0.75}, **cli.settings)
    assert np.array_equal(bits(again.theta), bits(cli.theta))


def test_a_solver_option_the_solver_does_not_read_is_refused_as_nde_refuses_it(lv, lv_arrays):
    with pytest.raises(ValueError, match="^rtol: the solver rk4 takes fixed steps and reads no "
                                         "tolerance"):
        nde.fit(lv, lv_arrays, rtol=1e-8, progress=False)
    with pytest.raises(ValueError, match="^dt: the solver dopri5 chooses its own steps"):
        nde.fit(lv, lv_arrays, solver="dopri5", dt=0.01, progress=False)
    with pytest.raises(ValueError, match="^rtol: the solver implicit-midpoint takes fixed steps"):
        lv.simulate([0.0, 1.0], solver="implicit-midpoint", rtol=0.1)


def test_every_option_of_nde_fit_is_a_keyword_of_nde_fit(lv, lv_arrays):
    from nde import options
    names = re.findall(r"^  --([a-z0-9-]+)", run_nde("fit", "--help").stdout, re.M)
    assert len(names) > 30
    keywords = set(options.SOLVER_OPTIONS + options.LOSS_OPTIONS + options.OBJECTIVE_OPTIONS +
                   options.TRAIN_OPTIONS + options.ENSEMBLE_OPTIONS +
                   options.UNCERTAINTY_OPTIONS)
    # nde.fit takes each of them: a value it cannot use is refused under the keyword's name
    # (an unknown keyword would be a TypeError).
    for k in keywords:
        with pytest.raises(ValueError, match="^%s: " % k):
            nde.fit(lv, lv_arrays, progress=False, **{k: object()})
    # Options that are arguments of nde.fit, or other calls, under their own names.
    elsewhere = {"out": "checkpoint", "init": "init", "param": "params", "resume": "resume",
                 "progress-every": "progress_every", "quiet": "progress"}
    params = inspect.signature(nde.fit).parameters
    for n in names:
        if n == "plot":
            assert callable(nde.Result.plot)
        elif n in elsewhere:
            assert elsewhere[n] in params, n
        else:
            assert n.replace("-", "_") in keywords, "--%s is not an option of nde.fit" % n


def test_the_options_of_this_wave_are_nde_fits_and_round_trip_through_the_settings(tmp_path,
                                                                                    ude):
    args = {"optim": "shoot:adam:150@0.05,lbfgs:60", "validate": "tail:0.2", "l2": 1e-4,
            "l1": 2.5e-5, "phase_patience": 3, "phase_tol": 1e-4, "checkpoint_every": 50}
    cli_args = []
    for k, v in args.items():
        cli_args += ["--" + k.replace("_", "-"), v]
    run_nde("fit", UDE, DATA, "-o", tmp_path / "cli.h5", "--noise-std", "x=0.01,y=0.02",
            "--quiet", *cli_args)
    cli = nde.load(tmp_path / "cli.h5")
    r = nde.fit(ude, DATA, noise_std={"x": 0.01, "y": 0.02}, progress=False, **args)
    assert np.array_equal(bits(r.theta), bits(cli.theta))
    assert r.settings == cli.settings
    s = cli.settings
    assert (s["validate"], s["l2"], s["l1"], s["phase_patience"], s["phase_tol"]) == (
        "tail:0.2", 1e-4, 2.5e-5, 3, 1e-4)
    assert s["noise_std"] == {"x": 0.01, "y": 0.02}
    assert r.kept.noise_loss == cli.kept.noise_loss and not np.isnan(r.kept.validation)
    again = nde.fit(ude, DATA, progress=False, **cli.settings)
    assert np.array_equal(bits(again.theta), bits(cli.theta))
    # One standard deviation for every state, or one per state.
    # (one iteration: a schedule of none trips UBSan in libnde's nde_train_get_state)
    a = nde.fit(ude, DATA, noise_std=0.015, optim="adam:1", progress=False)
    b = nde.fit(ude, DATA, noise_std=[0.015, 0.015], optim="adam:1", progress=False)
    assert a.settings["noise_std"] == b.settings["noise_std"] == {"x": 0.015, "y": 0.015}


def test_batch_segments_is_nde_fit_batch_segments_and_refused_for_a_model_that_reads_t(tmp_path,
                                                                                       ude):
    sched = "shoot:adam:40@0.02,shoot:lbfgs:10"
    run_nde("fit", UDE, DATA, "-o", tmp_path / "cli.h5", "--optim", sched, "--batch-segments",
            "--quiet")
    cli = nde.load(tmp_path / "cli.h5")
    r = nde.fit(ude, DATA, optim=sched, batch_segments=True, progress=False)
    assert np.array_equal(bits(r.theta), bits(cli.theta))
    assert r.settings == cli.settings and r.settings["batch_segments"] is True
    assert nde.fit(ude, DATA, optim="adam:1", progress=False).settings["batch_segments"] is False
    with open(UDE) as f:
        text = f.read().replace("dx/dt = alpha*x + u[1]", "dx/dt = alpha*x + u[1] + 0*t")
    assert "0*t" in text
    (tmp_path / "t.nde").write_text(text)
    with pytest.raises(ValueError, match="only when the model reads neither t nor a measured "
                                         "input, and this one reads t"):
        nde.fit(str(tmp_path / "t.nde"), DATA, optim=sched, batch_segments=True, progress=False)


def test_a_batch_of_series_on_their_own_grids_with_missing_values_recovers_the_rates(lv):
    rng = np.random.default_rng(2385)
    series = []
    for k, (u0, dt) in enumerate((([0.44, 4.63], 0.25), ([1.7, 0.9], 0.2), ([3.1, 2.2], 0.3))):
        t = np.arange(0, 6 + 1e-9, dt)
        y = lv.simulate(t, u0=u0, params=TRUTH, steps_per_interval=20)
        y = y * (1 + 2e-3 * rng.standard_normal(y.shape))
        y[rng.random(y.shape) < 0.15] = np.nan
        y[0] = lv.simulate(t[:1], u0=u0)[0]  # a fully observed first row: the start
        series.append(nde.Series(t, y, name="run%d" % k))
    r = nde.fit(lv, series, seed=3)
    assert r.status == "done"
    assert [s.name for s in r.series] == ["/run0", "/run1", "/run2"]
    for name, v in TRUTH.items():
        assert r.params[name] == pytest.approx(v, rel=0.02), name


def test_numerical_failures_are_statuses_of_the_result_not_exceptions(lv, lv_arrays):
    # 200 good iterations (scored at 100 and 200), then a learning rate that cannot work
    r = nde.fit(lv, lv_arrays, optim="adam:200@0.01,adam:40@1e30", checkpoint_every=100)
    assert r.status == "diverged" and not r.ok
    assert r.message.startswith("training diverged: 9 rejected steps in a row")
    assert r.kept.is_best and r.kept.iteration == 200 and r.iterations > 200
    # a shooting phase accepts a point whose whole trajectory blows up: the next phase fails
    quad = nde.Model("state x = 1\nparam a = 0.3\ndx/dt = a*x^2\n", "quad.nde")
    t = np.linspace(0, 1.5, 7)
    r = nde.fit(quad, (t, quad.simulate(t)), optim="shoot:adam:1@1e-12,adam:5", shoot_interval=1,
                params={"a": 1.2})
    assert r.status == "failed" and r.history.size == 1
    assert r.message.startswith("cannot evaluate the objective at the accepted parameters: "
                                "solver rk4 stopped at t = 0.9")


def test_init_starts_from_a_result_or_a_file_as_nde_fit_init(tmp_path, lv, lv_arrays):
    first = nde.fit(lv, lv_arrays, optim="adam:30@0.05", params={"alpha": 1.1})
    first.save(tmp_path / "first.h5")
    a = nde.fit(lv, lv_arrays, optim="lbfgs:20", init=first)
    c = nde.fit(lv, lv_arrays, optim="lbfgs:20", init=first.theta)
    assert np.array_equal(bits(a.theta), bits(c.theta))
    # A file is read as nde fit --init reads it (nde_read_params): /params/theta, then the
    # natural values of /params/values/NAME over it, so a start from a result file can differ
    # from the exact theta in the last bits (log of exp): the same numbers as the program.
    nde.Data(lv_arrays, lv).save(tmp_path / "d.h5")
    run_nde("fit", LV, tmp_path / "d.h5", "-o", tmp_path / "cli.h5", "--optim", "lbfgs:20",
            "--init", tmp_path / "first.h5", "--quiet")
    b = nde.fit(lv, lv_arrays, optim="lbfgs:20", init=tmp_path / "first.h5")
    assert np.array_equal(bits(b.theta), bits(nde.load(tmp_path / "cli.h5").theta))
    np.testing.assert_allclose(b.theta, a.theta, rtol=1e-9)
    with pytest.raises(ValueError, match="init: expected a float64 array of shape \\[4\\]"):
        nde.fit(lv, lv_arrays, init=np.zeros(3))


def test_a_stopped_fit_resumes_to_the_uninterrupted_result_bit_for_bit(ude, lv_arrays):
    opts = dict(optim="adam:300@0.02", checkpoint_every=100, seed=2)
    whole = nde.fit(ude, lv_arrays, **opts)
    part = nde.fit(ude, lv_arrays, callback=lambda p: p.total_iter >= 200, progress_every=100,
                   **opts)
    assert part.status == "interrupted" and part.iterations == 200
    rest = nde.fit(ude, lv_arrays, resume=part, **opts)
    assert rest.status == "done" and rest.iterations == 300
    assert np.array_equal(bits(rest.theta), bits(whole.theta))
    assert np.array_equal(bits(rest.history), bits(whole.history))
    with pytest.raises(nde.DataError, match="the checkpoint was made with different data"):
        nde.fit(ude, (lv_arrays[0], lv_arrays[1] * 1.01), resume=part, **opts)
    with pytest.raises(ValueError, match="init and params cannot be combined with it"):
        nde.fit(ude, lv_arrays, resume=part, init=part)


def test_a_checkpoint_file_is_a_result_file_that_nde_forecast_reads(tmp_path, lv, lv_arrays):
    ck = tmp_path / "fit.h5"
    r = nde.fit(lv, lv_arrays, optim="adam:60@0.05,lbfgs:30", checkpoint=ck)
    assert r.path == str(ck)
    back = nde.load(ck)
    assert np.array_equal(back.theta, r.theta) and back.status == "done"
    assert back.provenance["data_file"] == "arrays (1 series)"
    assert back.provenance["command_line"].startswith("nde.fit(")
    run_nde("forecast", ck, "--t1", "7", "-o", tmp_path / "f.csv", "--quiet")
    assert open(tmp_path / "f.csv").readline() == "t,x,y\n"
    with pytest.raises(nde.FileError, match="cannot"):
        nde.fit(lv, lv_arrays, optim="adam:5", checkpoint=tmp_path / "no" / "dir" / "fit.h5")


def test_bad_options_are_refused_before_the_fit(lv, lv_arrays):
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        nde.fit(lv, lv_arrays, bogus=1)
    with pytest.raises(ValueError, match="lr: expected a positive learning rate"):
        nde.fit(lv, lv_arrays, lr=-1)
    with pytest.raises(nde.ArgumentError, match="schedule phase 1: bad iteration count 'x'"):
        nde.fit(lv, lv_arrays, optim="adam:x")
    with pytest.raises(ValueError, match="steps_per_interval: expected an integer, got 2.5"):
        nde.fit(lv, lv_arrays, steps_per_interval=2.5)
    with pytest.raises(ValueError, match="seed: -1 is out of range"):
        nde.fit(lv, lv_arrays, seed=-1)
    with pytest.raises(ValueError, match="inputs: .*lotka_volterra.nde declares no measured"):
        nde.fit(lv, lv_arrays, inputs=(lv_arrays[0], lv_arrays[0]))
    with pytest.raises(ValueError, match="noise_std: expected a standard deviation > 0, got 0"):
        nde.fit(lv, lv_arrays, noise_std=0)
    with pytest.raises(ValueError, match="noise_std: y: expected a standard deviation > 0"):
        nde.fit(lv, lv_arrays, noise_std={"x": 0.01, "y": -1})
    with pytest.raises(ValueError, match="noise_std: 'z' is not a state component"):
        nde.fit(lv, lv_arrays, noise_std={"z": 0.01})
    with pytest.raises(ValueError, match=r"noise_std: expected a float64 array of shape \[2\]"):
        nde.fit(lv, lv_arrays, noise_std=[0.1, 0.2, 0.3])
    with pytest.raises(TypeError, match="model: expected an nde.Model or the path"):
        nde.fit(3, lv_arrays)
