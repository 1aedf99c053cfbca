"""The fitted model: result files shared with the command line, forecasts from every kind of
start (the same numbers and files as nde forecast), fitted curves, held-out scores."""
import math

import numpy as np
import pytest

import nde
from conftest import TRUTH, bits, data_path, run_nde

LONG = data_path("lotka_volterra_long.h5")


@pytest.fixture(scope="module")
def fit_file(ude_fit, tmp_path_factory):
    p = tmp_path_factory.mktemp("result") / "fit.h5"
    ude_fit.save(p)
    return p


def test_a_result_reads_like_the_summary_of_nde_fit(ude_fit):
    r = ude_fit
    assert r.status == "done" and r.ok and r.message == "every phase ran to its end"
    assert r.params == {"alpha": 1.3, "delta": 1.8}
    assert r.theta.shape == (87,) and r.theta_last.shape == (87,)
    assert r.history.shape == (5000,) and r.phase_ends == [3000, 4000, 5000]
    it, sc = r.scores
    assert it.dtype == np.int64 and it.shape == sc.shape and it[0] == 200
    k = r.kept
    assert k.is_best and k.loss == pytest.approx(sc.min()) and k.loss < 1e-3
    s = r.series
    assert [x.name for x in s] == ["/"] and s[0].t.shape == (21,) and s[0].u0.shape == (2,)
    assert r.settings["optim"] == nde.DEFAULT_SCHEDULE and r.settings["seed"] == 1
    assert r.provenance["data_file"].endswith("lotka_volterra.h5")
    assert "net U" in r.summary() and "alpha        = 1.3  (fixed)" in r.summary()
    assert repr(r).startswith("<nde.Result ")


def test_save_and_load_give_back_the_same_result(ude_fit, fit_file):
    back = nde.load(fit_file)
    assert np.array_equal(bits(back.theta), bits(ude_fit.theta))
    assert np.array_equal(bits(back.history), bits(ude_fit.history))
    assert back.settings == ude_fit.settings and back.params == ude_fit.params
    assert back.path == str(fit_file)
    with pytest.raises(nde.DataError, match="attribute format: not 'nde-fit'"):
        nde.load(data_path("lotka_volterra.h5"))
    with pytest.raises(nde.FileError):
        nde.load("no-such-fit.h5")


def test_a_forecast_is_the_one_nde_forecast_writes(fit_file, ude_fit, tmp_path):
    run_nde("forecast", fit_file, "--t1", "10", "-o", tmp_path / "f.h5", "--quiet")
    run_nde("forecast", fit_file, "--t1", "10", "-o", tmp_path / "f.csv", "--quiet")
    cli = nde.Data(tmp_path / "f.h5", ude_fit.model).series[0]
    f = ude_fit.forecast(10.0)
    assert f.t[0] == 0 and f.t[-1] == 10 and f.y.shape == (f.t.size, 2)
    assert np.array_equal(bits(f.t), bits(cli.t)) and np.array_equal(bits(f.y), bits(cli.y))
    f.save(tmp_path / "py.csv")
    assert open(tmp_path / "py.csv").read() == open(tmp_path / "f.csv").read()
    f.save(tmp_path / "py.h5")
    again = nde.Data(tmp_path / "py.h5", ude_fit.model).series[0]
    assert np.array_equal(bits(again.y), bits(f.y))
    t, y = f  # unpacks as (t, y)
    assert t is f.t and y is f.y


def test_a_forecast_is_saved_by_its_suffix_and_an_unknown_one_is_refused(ude_fit, tmp_path):
    f = ude_fit.forecast(4.0)
    f.save(tmp_path / "a.csv")
    f.save(tmp_path / "b.CSV")  # CSV in either case
    assert open(tmp_path / "b.CSV").read() == open(tmp_path / "a.csv").read()
    f.save(tmp_path / "c.HDF5")
    assert np.array_equal(bits(nde.Data(tmp_path / "c.HDF5", ude_fit.model).series[0].y),
                          bits(f.y))
    for name in ("x.txt", "x", "x.csv.bak"):
        with pytest.raises(ValueError, match=r"^path: expected a file name ending in \.h5 or "
                                             r"\.hdf5 \(HDF5\) or \.csv \(CSV\), got '.*%s'"
                                             % name.replace(".", r"\.")):
            f.save(tmp_path / name)
        assert not (tmp_path / name).exists()


def test_a_csv_forecast_is_written_as_nde_forecast_writes_it(ude_fit, tmp_path):
    # The CSV was written with open(path, "w"), not as nde forecast -o writes it (nde_write_file):
    # a directory gave IsADirectoryError rather than nde's FileError.
    f = ude_fit.forecast(4.0)
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(nde.FileError, match=r"cannot write \(expected a regular file, got a "
                                            r"directory\)"):
        f.save(tmp_path / "dir.csv")
    with pytest.raises(nde.FileError, match="directory .*missing does not exist"):
        f.save(tmp_path / "missing" / "f.csv")
    f.save(tmp_path / "f.csv")
    text = (tmp_path / "f.csv").read_text()
    assert text.startswith("t,x,y\n0,") and len(text.splitlines()) == f.t.size + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.csv", "f.csv"]


def test_every_start_of_nde_forecast_gives_its_numbers(fit_file, ude_fit, tmp_path):
    cases = [({"start": "last", "dt_out": 0.5}, ["--from-last", "--dt-out", "0.5"]),
             ({"start": 2.5, "dt_out": 0.125}, ["--t0", "2.5", "--dt-out", "0.125"]),
             ({"u0": {"y": 3.25}, "solver": "dopri5"}, ["--u0", "y=3.25", "--solver", "dopri5"]),
             ({"steps_per_interval": 2}, ["--steps-per-interval", "2"])]
    for k, (kw, args) in enumerate(cases):
        out = tmp_path / ("f%d.h5" % k)
        run_nde("forecast", fit_file, "--t1", "9", "-o", out, "--quiet", *args)
        cli = nde.Data(out, ude_fit.model).series[0]
        f = ude_fit.forecast(9.0, **kw)
        assert np.array_equal(bits(f.t), bits(cli.t)), kw
        assert np.array_equal(bits(f.y), bits(cli.y)), kw
    assert ude_fit.forecast(9.0, u0={"y": 3.25}).y[0, 1] == 3.25


def test_the_fitted_curves_are_the_integration_at_the_data_times(ude_fit):
    Y = ude_fit.fitted()
    assert Y.shape == (21, 2)
    np.testing.assert_array_equal(Y[0], ude_fit.series[0].u0)
    tr = ude_fit.integrate(ude_fit.series[0].t[5:], start=1.25)
    np.testing.assert_allclose(tr.y, Y[5:], rtol=1e-12)


def test_starts_outside_the_fitted_span_and_bad_grids_are_errors(ude_fit):
    with pytest.raises(nde.ArgumentError, match="start time 7 is outside the fitted span"):
        ude_fit.forecast(9.0, start=7.0)
    with pytest.raises(ValueError, match="t1: 0.5 is not after the start time 1"):
        ude_fit.forecast(0.5, start=1.0)
    with pytest.raises(ValueError, match=r"series: expected an index in \[0, 1\) or a name"):
        ude_fit.forecast(9.0, series=3)
    with pytest.raises(ValueError, match="start: expected None"):
        ude_fit.forecast(9.0, start="middle")
    with pytest.raises(nde.ArgumentError):
        ude_fit.integrate([0.0, 1.0, 0.5])
    # The grid is nde forecast's (nde_time_grid), with its limits and messages.
    with pytest.raises(nde.ArgumentError, match=r"^dt_out: a step 1e-07 gives more than 10000001 "
                                                r"times on \[0, 9\]"):
        ude_fit.forecast(9.0, dt_out=1e-7)
    with pytest.raises(nde.ArgumentError, match=r"^dt_out: a time grid needs t0 < t1 and a step "
                                                r"dt > 0 \(got t0 = 0, t1 = 9, dt = -0.5\)"):
        ude_fit.forecast(9.0, dt_out=-0.5)
    assert ude_fit.forecast(1.0, dt_out=0.3).t.tolist() == pytest.approx([0, 0.3, 0.6, 0.9, 1.0])


def test_an_infinite_end_time_is_named_as_such_not_blamed_on_the_step(ude_fit):
    # forecast(inf) said "dt_out: a time grid needs t0 < t1 and a step dt > 0 (... t1 = inf,
    # dt = 0.05)", naming an argument the caller did not give.
    with pytest.raises(ValueError, match=r"^t1: expected a finite end time, got inf$"):
        ude_fit.forecast(math.inf)
    with pytest.raises(ValueError, match=r"^t1: expected a finite end time, got inf$"):
        ude_fit.forecast(np.float32("inf"), dt_out=0.5)
    with pytest.raises(ValueError, match="t1: nan is not after the start time 0"):
        ude_fit.forecast(math.nan)


def test_the_score_is_the_one_nde_forecast_prints(fit_file, ude_fit, tmp_path):
    out = run_nde("forecast", fit_file, "--data", LONG, "-o", tmp_path / "s.h5").stdout
    sc = ude_fit.score(LONG)
    assert "rmse all %.6e" % sc.rmse in out
    s = sc["/"]
    assert s.t0 == 0 and s.t1 == 10 and set(s.rmse) == {"x", "y"}
    assert s.count == {"x": 41, "y": 41}
    assert "horizon %g" % s.horizon in out
    assert "series / (t in [0, 10]): rmse %.6e" % s.rmse_all in out
    fitted = ude_fit.score(LONG, start="fitted")
    assert fitted.rmse != sc.rmse and "fitted trajectory" in repr(fitted)


def test_a_refitted_known_model_forecasts_twice_its_window(lv, lv_arrays):
    r = nde.fit(lv, lv_arrays, optim="lbfgs:200", params={"alpha": 1.2})
    for name, v in TRUTH.items():
        assert r.params[name] == pytest.approx(v, rel=0.01)
    t = np.linspace(0, 10, 41)
    truth = lv.simulate(t, params=TRUTH, steps_per_interval=10)
    sc = r.score((t, truth))
    assert sc.rmse < 0.1 and sc[0].horizon > 4  # rates within 1 %: the error grows slowly
    assert math.isnan(r.score((t, truth), horizon_tol=0.5)[0].horizon)  # within 0.5 std
