"""How sure a fit is, from Python: standard errors, profiles, ensembles, bands and stability
selection give the nde program's numbers bit for bit (nde fit --uncertainty --profile --ensemble,
nde uncertainty, nde forecast --band, nde discover on an ensemble), bad options are refused with
the command line's messages, and stops raise nde.Interrupted."""
import os
import re
import subprocess

import numpy as np
import pytest

import nde
from conftest import ROOT, bits, data_path, h5attr, h5get, model_path, run_nde

LV = model_path("lotka_volterra.nde")
UDE = model_path("lotka_volterra_ude.nde")
DATA = data_path("lotka_volterra.h5")
LONG = data_path("lotka_volterra_long.h5")
SHORT = "shoot:adam:300@0.02,lbfgs:100"

# Two rates that enter only as a product: only a*b is determined by data (tests/cli).
PRODUCT = """# Decay whose rate is the product of two parameters: only a*b is identifiable.
state x = 2.1
param a = 1.2 (positive)
param b = 0.7 (positive)
param c = 0.4
dx/dt = -a*b*x + c
"""


def lines_of(text):
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def lv_cli(tmp_path_factory):
    """nde fit --learn-u0 --profile beta,gamma (standard errors implied): the file and what it
    printed."""
    d = tmp_path_factory.mktemp("lv")
    p = run_nde("fit", LV, DATA, "-o", d / "cli.h5", "--learn-u0", "--profile", "beta,gamma",
                "--jobs", "2")
    return d / "cli.h5", p.stdout


@pytest.fixture(scope="module")
def lv_py():
    return nde.fit(LV, DATA, learn_u0=True, profile=["beta", "gamma"], jobs=1, progress=False)


@pytest.fixture(scope="module")
def ens_cli(tmp_path_factory):
    """A short ensemble of three UDE fits from seed 4 by the nde program."""
    d = tmp_path_factory.mktemp("ens")
    run_nde("fit", UDE, DATA, "-o", d / "ens.h5", "--ensemble", "3", "--seed", "4", "--optim",
            SHORT, "--quiet")
    return d / "ens.h5"


@pytest.fixture(scope="module")
def ens_py():
    return nde.fit(UDE, DATA, ensemble=3, seed=4, optim=SHORT, jobs=2, progress=False)


# ---- standard errors and profiles ----

def test_standard_errors_and_profiles_of_a_fit_are_nde_fits_bit_for_bit(lv_cli, lv_py, tmp_path):
    path, printed = lv_cli
    cli, r = nde.load(path), lv_py
    assert np.array_equal(bits(r.theta), bits(cli.theta))
    u, v = r.uncertainty, cli.uncertainty
    assert u.names == v.names == ["alpha", "beta", "gamma", "delta", "x(t0)", "y(t0)"]
    for name in ("alpha", "beta", "gamma", "delta"):
        assert bits(u.se[name]) == bits(h5get(path, "/params/se/" + name)[0]), name
        assert bits(u.lower[name]) == bits(h5get(path, "/params/lower/" + name)[0]), name
        assert bits(u.upper[name]) == bits(h5get(path, "/params/upper/" + name)[0]), name
    assert u.coordinates == v.coordinates
    for a in ("cov", "cov_natural", "corr"):
        assert np.array_equal(bits(getattr(u, a)), bits(getattr(v, a))), a
    assert np.array_equal(bits(u.cov.ravel()), bits(h5get(path, "/uncertainty/covariance")))
    assert (u.noise_model, u.n_residuals, u.dof, u.sigma_state, u.quantile) == \
           (v.noise_model, v.n_residuals, v.dof, v.sigma_state, v.quantile) == \
           ("per-state", 42, 36, v.sigma_state, v.quantile)
    assert u.warning == "" and u.null_directions.shape == (0, 6) and all(u.identifiable.values())
    # The truth (1.3, 0.9, 0.8, 1.8) is inside every interval; log parameters' are asymmetric.
    for name, truth in (("alpha", 1.3), ("beta", 0.9), ("gamma", 0.8), ("delta", 1.8)):
        c = u[name]
        assert c.lower < truth < c.upper and c.transform == "log" and c.kind == "param"
        assert c.lower != c.lower_sym and 0 < c.se < 0.004
    assert u["y(t0)"].kind == "initial-state" and u["y(t0)"].component == "y"
    # Profiles: grids and statistics of every point, on one thread here and two there.
    assert list(r.profiles) == list(cli.profiles) == ["beta", "gamma"]
    for i, name in enumerate(("beta", "gamma")):
        p, q = r.profiles[name], cli.profiles[name]
        assert np.array_equal(bits(p.grid), bits(h5get(path, "/uncertainty/profiles/p%d/grid" % i)))
        assert np.array_equal(bits(p.stat), bits(q.stat))
        assert (p.lower, p.upper) == (h5attr(path, "/uncertainty/profiles/p%d" % i, "lower"),
                                      h5attr(path, "/uncertainty/profiles/p%d" % i, "upper"))
        assert p.lower_found and p.upper_found and p.lower < p.value < p.upper
    # What nde fit printed, line for line: the values with their errors, the block, profiles.
    summary = lines_of(r.summary())
    shown = lines_of(printed)
    for line in summary[2:]:
        assert line in shown, line
    assert "profile beta: 95% likelihood-ratio interval [0.894867, 0.901827] (curvature " \
           "[0.894866, 0.901828]); 17 points" in summary
    # Saved from Python, the file holds the same numbers where nde finds them.
    r.save(tmp_path / "py.h5")
    for ds in ("/params/se/beta", "/uncertainty/correlation", "/series/u0_se",
               "/uncertainty/profiles/p1/stat"):
        assert np.array_equal(bits(h5get(tmp_path / "py.h5", ds)), bits(h5get(path, ds))), ds
    assert "beta" in run_nde("inspect", tmp_path / "py.h5").stdout


def test_the_settings_name_the_standard_errors_and_profiles_and_fitting_with_them_gives_them(
        lv_cli, lv_py):
    cli = nde.load(lv_cli[0])
    s = lv_py.settings
    assert s == cli.settings
    assert (s["uncertainty"], s["noise_model"], s["level"], s["uncertainty_nets"],
            s["finite_differences"], s["profile"]) == \
           (True, "per-state", 0.95, False, False, ["beta", "gamma"])
    again = nde.fit(LV, DATA, progress=False, **s)
    assert np.array_equal(bits(again.theta), bits(lv_py.theta))
    assert np.array_equal(bits(again.uncertainty.cov), bits(lv_py.uncertainty.cov))
    assert list(again.profiles) == ["beta", "gamma"]
    assert np.array_equal(bits(again.profiles["gamma"].stat), bits(lv_py.profiles["gamma"].stat))
    # A fit without them says nothing of them.
    plain = nde.fit(LV, DATA, optim="lbfgs:20", progress=False)
    assert not {"uncertainty", "noise_model", "level", "profile"} & set(plain.settings)
    # A known noise level given to the standard errors afterwards is in them too.
    plain.compute_uncertainty(noise_model="known", noise_std=0.05)
    k = plain.settings
    assert (k["noise_model"], k["noise_std"]) == ("known", {"x": 0.05, "y": 0.05})
    again = nde.fit(LV, DATA, progress=False, **k)
    assert again.uncertainty.sigma_state == {"x": 0.05, "y": 0.05}


def test_standard_errors_of_a_fit_to_an_observable_are_nde_fits(tmp_path):
    """LV measured only through an observable: the errors run through the observation model,
    the noise level is the signal column's, and Python gives nde fit's numbers bit for bit."""
    model = tmp_path / "lvo.nde"
    model.write_text(
        "state x = 0.44249296, y = 4.6280594\n"
        "param alpha = 1.3 (positive)\nparam beta = 0.9 (positive)\n"
        "param gamma = 0.8 (positive)\nparam delta = 1.8 (positive)\n"
        "param gain = 2 (positive)\n"
        "observe signal = gain*x + y\n"
        "dx/dt = alpha*x - beta*x*y\ndy/dt = gamma*x*y - delta*y\n")
    data = tmp_path / "d.h5"
    run_nde("simulate", model, "-o", data, "--t1", "8", "--dt-out", "0.2", "--columns", "signal",
            "--noise", "0.005", "--seed", "3", "--quiet")
    run_nde("fit", model, data, "-o", tmp_path / "cli.h5", "--optim", "lbfgs:200", "--uncertainty",
            "--quiet")
    cli = nde.load(tmp_path / "cli.h5")
    r = nde.fit(model, data, optim="lbfgs:200", uncertainty=True, progress=False)
    u, v = r.uncertainty, cli.uncertainty
    assert list(u.sigma_state) == ["x", "y", "signal"]
    assert np.isnan(u.sigma_state["x"]) and u.sigma_state["signal"] > 0
    assert list(v.sigma_state) == list(u.sigma_state)
    assert all(bits(u.sigma_state[k]) == bits(v.sigma_state[k]) for k in u.sigma_state)
    assert np.array_equal(bits(u.cov), bits(v.cov))
    for name, truth in (("alpha", 1.3), ("gain", 2.0)):
        assert u.lower[name] < truth < u.upper[name], name
    assert "residuals of each data column" in str(u)
    # Scored on the observable as nde forecast --data scores it.
    sc = r.score(data)[0]
    assert sc.count["x"] == 0 and sc.count["signal"] == 41
    assert 0 < sc.rmse["signal"] < 0.05
    # A known level of the signal: the data's noise_std (what simulate added), as nde
    # uncertainty --noise-model known takes it, or given by name; twice it, twice the errors.
    assert r.settings["noise_std"] == {"signal": pytest.approx(0.02313420636, rel=1e-9)}
    run_nde("uncertainty", tmp_path / "cli.h5", "-o", tmp_path / "known.h5", "--noise-model",
            "known", "--quiet")
    k = r.compute_uncertainty(noise_model="known")
    assert np.array_equal(bits(k.cov), bits(nde.load(tmp_path / "known.h5").uncertainty.cov))
    sd = r.settings["noise_std"]["signal"]
    k2 = r.compute_uncertainty(noise_model="known", noise_std={"signal": 2 * sd})
    assert k2.sigma_state["signal"] == 2 * sd and np.isnan(k2.sigma_state["x"])
    assert np.allclose(k2.cov, 4 * k.cov, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="'z' is not a state component or observable"):
        r.compute_uncertainty(noise_model="known", noise_std={"z": 0.1})
    # A forecast carries the observables along it and writes them after the states, as nde
    # forecast does: the same file, byte for byte.
    f = r.forecast(10.0, band=False)
    assert f.observables == ("signal",) and f.obs.shape == (f.t.size, 1)
    gain = r.params["gain"]
    assert np.allclose(f.obs[:, 0], gain * f.y[:, 0] + f.y[:, 1], rtol=1e-12, atol=0)
    f.save(tmp_path / "py.csv")
    run_nde("forecast", tmp_path / "cli.h5", "--t1", "10", "--no-band", "-o",
            tmp_path / "cli.csv", "--quiet")
    assert (tmp_path / "py.csv").read_text() == (tmp_path / "cli.csv").read_text()
    assert (tmp_path / "py.csv").read_text().startswith("t,x,y,signal\n")
    # With the band: the observables' band too (linearised through the observation model),
    # the same text and arrays as nde forecast writes (from nde fit's result: r's standard
    # errors are now those of a known noise level).
    g = cli.forecast(10.0)
    assert g.band_kind == "linearised" and g.obs_lower.shape == (g.t.size, 1)
    assert np.all(g.obs_lower <= g.obs) and np.all(g.obs <= g.obs_upper)
    assert np.allclose((g.obs_lower + g.obs_upper) / 2, g.obs, rtol=1e-12, atol=1e-12)
    assert np.all(g.obs_upper[1:] > g.obs_lower[1:])
    g.save(tmp_path / "pyb.csv")
    g.save(tmp_path / "pyb.h5")
    run_nde("forecast", tmp_path / "cli.h5", "--t1", "10", "-o", tmp_path / "clib.csv", "--quiet")
    run_nde("forecast", tmp_path / "cli.h5", "--t1", "10", "-o", tmp_path / "clib.h5", "--quiet")
    assert (tmp_path / "pyb.csv").read_text() == (tmp_path / "clib.csv").read_text()
    assert (tmp_path / "pyb.csv").read_text().startswith(
        "t,x,y,signal,x_lower,x_upper,y_lower,y_upper,signal_lower,signal_upper\n")
    for name in ("/y_lower", "/y_upper"):
        assert np.array_equal(bits(h5get(tmp_path / "pyb.h5", name)),
                              bits(h5get(tmp_path / "clib.h5", name))), name
    lo = h5get(tmp_path / "clib.h5", "/y_lower").reshape(g.t.size, 3)
    assert np.array_equal(bits(lo[:, 2]), bits(g.obs_lower[:, 0]))


def test_compute_uncertainty_is_nde_uncertainty_on_a_finished_fit(tmp_path, lv):
    run_nde("fit", LV, DATA, "-o", tmp_path / "plain.h5", "--learn-u0", "--quiet")
    opts = ["--noise-model", "pooled", "--level", "0.9", "--finite-differences"]
    run_nde("uncertainty", tmp_path / "plain.h5", DATA, "-o", tmp_path / "cli.h5", "--quiet",
            *opts)
    cli = nde.load(tmp_path / "cli.h5").uncertainty
    r = nde.load(tmp_path / "plain.h5")
    assert r.uncertainty is None
    # The data the fit recorded (its absolute path), as nde uncertainty FIT.h5 finds them.
    u = r.compute_uncertainty(noise_model="pooled", level=0.9, finite_differences=True)
    assert r.uncertainty.coordinates == u.coordinates == cli.coordinates
    assert np.array_equal(bits(u.cov), bits(cli.cov))
    assert (u.noise_model, u.level, u.finite_differences, bits(u.sigma)) == \
           ("pooled", 0.9, True, bits(cli.sigma))
    assert u.sigma_state == cli.sigma_state
    # The same data given as arrays give the same numbers.
    s = nde.Data(DATA, lv).series[0]
    again = nde.load(tmp_path / "plain.h5").compute_uncertainty(
        (s.t, s.y), noise_model="pooled", level=0.9, finite_differences=True)
    assert np.array_equal(bits(again.cov), bits(cli.cov))
    # A known noise.
    run_nde("uncertainty", tmp_path / "plain.h5", DATA, "-o", tmp_path / "known.h5",
            "--noise-model", "known", "--noise-std", "x=0.01,y=0.02", "--quiet")
    k = r.compute_uncertainty(noise_model="known", noise_std={"x": 0.01, "y": 0.02})
    assert k.coordinates == nde.load(tmp_path / "known.h5").uncertainty.coordinates
    assert k.noise_model == "known" and k.sigma_state == {"x": 0.01, "y": 0.02}
    # Replacing the standard errors, then writing them: nde reads them back.
    r.save(tmp_path / "again.h5")
    assert nde.load(tmp_path / "again.h5").uncertainty.coordinates == k.coordinates


def test_a_fit_from_arrays_keeps_its_data_for_the_standard_errors(tmp_path, lv, lv_arrays):
    r = nde.fit(lv, lv_arrays, optim="lbfgs:200", progress=False)
    u = r.compute_uncertainty()
    assert u.names == ["alpha", "beta", "gamma", "delta"] and u.n_residuals == 40
    with_fit = nde.fit(lv, lv_arrays, optim="lbfgs:200", uncertainty=True, progress=False)
    assert np.array_equal(bits(with_fit.uncertainty.cov), bits(u.cov))
    # Saved, the result records "arrays (1 series)": the data must then be given.
    r.save(tmp_path / "r.h5")
    with pytest.raises(ValueError, match=r"the fit recorded its data as arrays \(1 series\), "
                                         r"which is not a file here"):
        nde.load(tmp_path / "r.h5").compute_uncertainty()
    back = nde.load(tmp_path / "r.h5").compute_uncertainty(lv_arrays)
    assert np.array_equal(bits(back.cov), bits(u.cov))


def test_parameters_that_enter_only_as_a_product_are_flagged_as_nde_flags_them(tmp_path):
    (tmp_path / "prod.nde").write_text(PRODUCT)
    run_nde("simulate", tmp_path / "prod.nde", "-o", tmp_path / "prod.h5", "--t1", "3",
            "--dt-out", "0.2", "--noise", "0.01", "--seed", "5", "--quiet")
    p = run_nde("fit", tmp_path / "prod.nde", tmp_path / "prod.h5", "-o", tmp_path / "cli.h5",
                "--optim", "lbfgs:300", "--profile", "a,c", "--profile-points", "4")
    r = nde.fit(tmp_path / "prod.nde", tmp_path / "prod.h5", optim="lbfgs:300",
                profile="a,c", profile_points=4, progress=False)
    u = r.uncertainty
    assert u.identifiable == {"a": False, "b": False, "c": True}
    assert u.se["a"] == u.se["b"] == np.inf and 0 < u.se["c"] < 1
    assert u.warning.startswith("not identifiable from these data: a, b (only combinations of "
                                "them are determined: the fit does not change along log a - "
                                "log b)")
    assert "warning: " + u.warning in p.stdout
    # One null direction, along log a - log b in the optimised coordinates.
    (d,) = u.null_directions
    assert abs(abs(d[0]) - 2 ** -0.5) < 1e-6 and abs(d[0] + d[1]) < 1e-6 and abs(d[2]) < 1e-6
    assert np.isnan(u.corr[0, 2]) and u.describe("a") == "  +- inf (not identifiable)"
    # The profile of a is flat: not bounded on either side (0 and inf: a positive parameter).
    pa = r.profiles["a"]
    assert (pa.lower_found, pa.upper_found, pa.lower, pa.upper) == (False, False, 0.0, np.inf)
    assert r.profiles["c"].lower_found and r.profiles["c"].upper_found
    cli = nde.load(tmp_path / "cli.h5")
    for name in ("a", "c"):
        assert np.array_equal(bits(r.profiles[name].stat), bits(cli.profiles[name].stat))
    assert "profile a: 95% likelihood-ratio interval [not bounded below: 0, not bounded above: " \
           "inf]" in r.summary()


def test_profile_computes_the_standard_errors_first_and_replaces_earlier_profiles(lv_py):
    r = nde.fit(LV, DATA, learn_u0=True, progress=False)
    assert r.uncertainty is None and r.profiles == {}
    p = r.profile("beta", jobs=2)
    assert isinstance(p, nde.Profile) and r.uncertainty is not None
    assert np.array_equal(bits(p.grid), bits(lv_py.profiles["beta"].grid))
    both = r.profile(["gamma", "y(t0)"], points=3)
    assert list(both) == list(r.profiles) == ["gamma", "y(t0)"]
    assert both["y(t0)"].lower < r.series[0].u0[1] < both["y(t0)"].upper


# ---- ensembles and bands ----

def test_an_ensemble_is_nde_fit_ensemble_bit_for_bit(ens_cli, ens_py, ude):
    cli, r = nde.load(ens_cli), ens_py
    assert r.n_members == cli.n_members == 3
    assert np.array_equal(bits(r.theta), bits(cli.theta))
    assert np.array_equal(bits(np.concatenate([m.theta for m in r.members])),
                          bits(h5get(ens_cli, "/ensemble/theta")))
    for a, b in zip(r.members, cli.members):
        assert (a.seed, a.status, a.iterations, bits(a.loss)) == \
               (b.seed, b.status, b.iterations, bits(b.loss))
        assert np.array_equal(bits(a.u0), bits(b.u0)) and a.keep.all() and a.keep.size == 21
    assert [m.seed for m in r.members] == [4, 5, 6]
    # Member 2 is the fit with seed 5 alone, and a Result of its own.
    one = nde.fit(ude, DATA, seed=5, optim=SHORT, progress=False)
    m2 = r.member(1)
    assert isinstance(m2, nde.Result) and m2.n_members == 0
    assert np.array_equal(bits(m2.theta), bits(one.theta))
    assert np.array_equal(bits(m2.series[0].u0), bits(r.members[1].u0[0]))


def test_forecast_bands_are_nde_forecasts_band_arrays(ens_cli, ens_py, lv_cli, lv_py, tmp_path):
    run_nde("forecast", ens_cli, "--t1", "6", "-o", tmp_path / "fc.h5", "--quiet")
    f = ens_py.forecast(6)
    assert (f.band_level, f.band_kind, f.band_members) == (0.95, "members", 3)
    for name, a in (("/y", f.y), ("/y_lower", f.lower), ("/y_upper", f.upper)):
        assert np.array_equal(bits(a.ravel()), bits(h5get(tmp_path / "fc.h5", name))), name
    assert np.all(f.lower <= f.upper)
    # Written from Python as nde forecast writes it.
    f.save(tmp_path / "py.h5")
    for name in ("/y_lower", "/y_upper"):
        assert np.array_equal(bits(h5get(tmp_path / "py.h5", name)),
                              bits(h5get(tmp_path / "fc.h5", name)))
    for a in ("band_level", "band_members"):
        assert h5attr(tmp_path / "py.h5", "/", a) == h5attr(tmp_path / "fc.h5", "/", a)
    # Another level, as CSV: the same text as nde forecast --band 0.8.
    run_nde("forecast", ens_cli, "--t1", "6", "-o", tmp_path / "fc.csv", "--band", "0.8",
            "--quiet")
    ens_py.forecast(6, band=0.8).save(tmp_path / "py.csv")
    assert (tmp_path / "py.csv").read_text() == (tmp_path / "fc.csv").read_text()
    assert (tmp_path / "py.csv").read_text().startswith("t,x,y,x_lower,x_upper,y_lower,y_upper\n")
    # The linearised band of a fit with standard errors, from the fitted trajectory at t = 2.
    path, _ = lv_cli
    run_nde("forecast", path, "--t1", "8", "--t0", "2", "-o", tmp_path / "lin.h5", "--quiet")
    g = lv_py.forecast(8, start=2.0)
    assert g.band_kind == "linearised"
    for name, a in (("/y_lower", g.lower), ("/y_upper", g.upper)):
        assert np.array_equal(bits(a.ravel()), bits(h5get(tmp_path / "lin.h5", name))), name
    assert np.allclose((g.lower + g.upper) / 2, g.y, rtol=1e-12, atol=1e-12)
    # No band when asked for none, or from a result without either.
    assert lv_py.forecast(8, band=False).lower is None
    assert ens_py.integrate(np.linspace(0, 5, 6)).lower.shape == (6, 2)


def test_a_resampled_ensemble_gives_the_parameters_spread_of_nde(tmp_path):
    run_nde("fit", LV, DATA, "-o", tmp_path / "cli.h5", "--ensemble", "4", "--resample", "time",
            "--quiet")
    r = nde.fit(LV, DATA, ensemble=4, resample="time", progress=False)
    cli = nde.load(tmp_path / "cli.h5")
    assert np.array_equal(bits(r.theta), bits(cli.theta))
    # Each member fits 11 of the 21 rows (the first always).
    assert [int(m.keep.sum()) for m in r.members] == [11, 11, 11, 11]
    assert all(m.keep[0] for m in r.members)
    assert [m.keep.tolist() for m in r.members] == [m.keep.tolist() for m in cli.members]
    # How the ensemble was made is in the settings, and fitting with them makes it again.
    assert r.settings == cli.settings
    assert (r.settings["ensemble"], r.settings["resample"], r.settings["resample_fraction"]) == \
        (4, "time", 0.5)
    again = nde.fit(LV, DATA, progress=False, **cli.settings)
    assert np.array_equal(bits(again.theta), bits(cli.theta))
    assert [m.keep.tolist() for m in again.members] == [m.keep.tolist() for m in cli.members]
    for name in ("alpha", "beta", "gamma", "delta"):
        sp = r.param_spread(name)
        g = "/ensemble/params/" + name
        assert sp.n == h5attr(tmp_path / "cli.h5", g, "n_good") == 4
        assert (sp.mean, sp.sd, sp.median, sp.lower, sp.upper) == tuple(
            h5attr(tmp_path / "cli.h5", g, a)
            for a in ("mean", "sd", "median", "lower_95", "upper_95")), name
        assert np.array_equal(bits(h5get(tmp_path / "cli.h5", g)),
                              bits([r.member(k).params[name] for k in range(4)]))
    # nde inspect and the summary print the same spread.
    shown = run_nde("inspect", tmp_path / "cli.h5").stdout
    for line in lines_of(r.summary()):
        if "members: median" in line:
            assert line.split("=", 1)[1].split("  ", 1)[1] in shown, line
    wide, narrow = r.param_spread("beta"), r.param_spread("beta", level=0.5)
    assert wide.lower < narrow.lower < narrow.upper < wide.upper
    assert (narrow.n, narrow.median) == (wide.n, wide.median)


# ---- stability selection ----

def test_stability_selection_on_an_ensemble_is_nde_discovers(ens_cli, ens_py, tmp_path):
    p = run_nde("discover", ens_cli, "-o", tmp_path / "cli.nde")
    d = ens_py.discover(jobs=1)
    assert isinstance(d, nde.StableDiscovery) and d.n_members == 3 and d.inclusion == 0.6
    assert d.model_text == (tmp_path / "cli.nde").read_text()
    shown = p.stdout
    for i in range(2):
        assert d.stability_table(i) in shown
    assert str(d) in shown
    with pytest.raises(ValueError, match=r"^i: expected the index of a network output in "
                                         r"\[0, 2\)"):
        d.stability_table(2)
    for i, freq in enumerate(d.frequencies):
        for t in d.terms_of(i):
            assert freq[t.term] == t.frequency and t.selected == (t.frequency >= 0.6 - 1e-12)
            assert t.coef != 0 if t.selected else (t.coef == 0 and np.isnan(t.median))
    # Another inclusion frequency, and discovery on the result's own fit only.
    p7 = run_nde("discover", ens_cli, "-o", tmp_path / "cli7.nde", "--inclusion", "0.7",
                 "--quiet")
    d7 = ens_py.discover(inclusion=0.7)
    assert d7.model_text == (tmp_path / "cli7.nde").read_text()
    assert [e.text for e in d7.equations] == re.findall(r"≈ (.*)", p7.stdout)
    run_nde("discover", ens_cli, "-o", tmp_path / "own.nde", "--no-stability", "--quiet")
    own = ens_py.discover(stability=False)
    assert type(own) is nde.Discovery
    assert own.model_text == (tmp_path / "own.nde").read_text()


def test_the_readme_example_runs_and_keeps_x_times_y_in_both_outputs_of_the_lv_data(tmp_path):
    # Six members with nde fit's default schedule on the shipped LV data; nde discover reads
    # the ensemble Python wrote.
    text = open(os.path.join(ROOT, "python", "README.md")).read()
    block = text.split("### How sure is the fit")[1].split("```python")[1].split("```")[0]
    for name in ("models/lotka_volterra.nde", "models/lotka_volterra_ude.nde",
                 "data/lotka_volterra.h5"):
        block = block.replace('"%s"' % name, repr(os.path.join(ROOT, name)))
    block = block.replace("print(", "str(")
    ns = {}
    exec(compile(block, "python/README.md", "exec"), ns)
    u, p = ns["u"], ns["p"]
    assert "%.3g" % u.se["beta"] == "0.00172" and u.warning == ""
    assert ["%.6g" % x for x in u.interval("beta") + (p.lower, p.upper)] == [
        "0.894866", "0.901828", "0.894867", "0.901827"]
    assert ns["near"].band_kind == "linearised" and ns["near"].lower.shape == ns["near"].y.shape
    ens, d, far = ns["ens"], ns["d"], ns["far"]
    assert [m.status for m in ens.members] == ["done"] * 6
    for i, eq in enumerate(d.equations):
        freq = d.frequencies[i]
        assert freq["x*y"] >= 0.9, (i, freq)
        assert all(f <= 0.5 for t, f in freq.items() if t != "x*y"), (i, freq)
        assert re.fullmatch(r"-?0\.[0-9]+\*x\*y", eq.expr), eq.expr
    # The coefficients of the README (-0.9172, 0.8071 in a release build; optimisation levels
    # change the last digits of a 5000-iteration fit): the truth is -0.9, 0.8.
    (c1,), (c2,) = [[float(v) for v in re.findall(r"-?[0-9.]+(?=\*x\*y)", e.expr)]
                    for e in d.equations]
    assert abs(c1 + 0.9172) < 0.01 and abs(c2 - 0.8071) < 0.01, (c1, c2)
    assert str(d).splitlines()[1].startswith("  U[1](x, y) \u2248 \u22120.91")
    # The band is narrow over the data and widens beyond them (0.01 and 31 in the README).
    width = far.upper - far.lower
    i5, i6 = np.searchsorted(far.t, [5.0, 6.0])
    assert width[i5, 0] < 0.03 and width[i6, 0] > 100 * width[i5, 0]
    ens.save(tmp_path / "ens.h5")
    cli = run_nde("discover", tmp_path / "ens.h5", "-o", tmp_path / "cli.nde")
    assert d.model_text == (tmp_path / "cli.nde").read_text()
    for i in range(2):
        assert d.stability_table(i) in cli.stdout


# ---- figures ----

def test_the_plots_draw_the_band_around_the_curves(ens_py, lv_py):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nde.plot import plot_forecast
    f = ens_py.forecast(7)
    fig = plot_forecast(f)
    ax = fig.axes[0]
    bands = ax.collections
    assert [b.get_label() for b in bands] == ["x 95% band (ensemble)", "y 95% band (ensemble)"]
    for j, b in enumerate(bands):
        # The area's outline runs along the lower and the upper curve.
        v = b.get_paths()[0].vertices
        assert np.array_equal(np.unique(v[:, 0]), f.t)
        assert np.array_equal(np.unique(v[:, 1]),
                              np.unique(np.concatenate([f.lower[:, j], f.upper[:, j]])))
    plt.close(fig)
    fig = lv_py.plot(band=0.9)
    labels = [b.get_label() for b in fig.axes[0].collections]
    assert labels == ["x 90% band (linearised)", "y 90% band (linearised)"]
    plt.close(fig)
    fig = lv_py.plot(band=False)
    assert len(fig.axes[0].collections) == 0
    plt.close(fig)


# ---- progress, stops and bad input ----

def test_members_report_their_progress_and_a_stop_raises_interrupted(capsys):
    seen = []
    r = nde.fit(LV, DATA, ensemble=2, optim="adam:50", callback=seen.append, progress=True)
    assert r.n_members == 2
    assert seen[-1] == nde.JobProgress("ensemble members", 2, 2)
    err = capsys.readouterr().err
    assert "nde: ensemble of 2 fits (seeds 1 to 2) on every core" in err
    assert "ensemble members: 2 of 2 done" in err
    with pytest.raises(nde.Interrupted, match="the ensemble was stopped") as e:
        nde.fit(LV, DATA, ensemble=3, optim="adam:3000@1e-4", jobs=1,
                callback=lambda p: True, progress=False)
    assert e.value.result is None
    # Profiles stopped after the fit: the fit with its standard errors is kept.
    with pytest.raises(nde.Interrupted, match="the profiles were stopped") as e:
        nde.fit(LV, DATA, optim="lbfgs:100", profile="beta", jobs=1,
                callback=lambda p: isinstance(p, nde.JobProgress), progress=False)
    assert e.value.result.uncertainty is not None and e.value.result.profiles == {}


ENSEMBLE_SCRIPT = """
import sys, time, nde
print("start", flush=True)


def running(p):
    if p.done == 0:
        print("running", flush=True)


try:
    nde.fit(sys.argv[1], sys.argv[2], ensemble=2, jobs=2, optim="adam:20000@0.01",
            phase_patience=0, callback=running, progress=False)
except nde.Interrupted as e:
    print("interrupted", e.result is None, flush=True)
    time.sleep(30)
print("not reached", flush=True)
"""


def test_ctrl_c_stops_an_ensemble_and_raises_interrupted(tmp_path):
    # (libnde's members look at the stop request only every 1000000 iterations
    # (src/result/ensemble.c, progress_every of ens_job), so the members of this short schedule
    # run to their end before the ensemble stops; nde fit --ensemble waits as long.)
    import signal
    import subprocess
    import sys
    script = tmp_path / "ens.py"
    script.write_text(ENSEMBLE_SCRIPT)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(nde.__file__))] +
                                        env.get("PYTHONPATH", "").split(os.pathsep))
    p = subprocess.Popen([sys.executable, str(script), LV, DATA], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "start\n"
    assert p.stdout.readline() == "running\n"  # the members' first heartbeat
    p.send_signal(signal.SIGINT)
    line = p.stdout.readline().split()
    assert line == ["interrupted", "True"], (line, p.stderr.read() if not line else "")
    p.send_signal(signal.SIGINT)  # outside: Python's own KeyboardInterrupt
    out, err = p.communicate(timeout=60)
    assert "not reached" not in out and "KeyboardInterrupt" in err and p.returncode != 0


def test_bad_options_are_refused_with_the_messages_of_the_command_line(tmp_path, lv, lv_arrays):
    plain = nde.fit(lv, DATA, optim="adam:5", progress=False)
    cases = [
        (dict(uncertainty=True, noise_model="loud"),
         "noise_model: expected per-state, pooled or known, got 'loud'"),
        (dict(ensemble=1), r"ensemble: expected K >= 2 members \(got 1\)"),
        (dict(resample="time"),
         r"ensemble: expected K >= 2 members with resample and resample_fraction \(got 0\)"),
        (dict(ensemble=2, resample="rows"), "resample: expected none, series or time, got 'rows'"),
        (dict(ensemble=-3), r"ensemble: expected a whole number in \[0, 100000\], got -3"),
        (dict(ensemble=2, resample="time", resample_fraction=0),
         r"resample_fraction: expected a share in \(0, 1\], got 0"),
        (dict(uncertainty=True, level=1), r"level: expected a coverage in \(0, 1\), got 1"),
        (dict(profile=""), "profile: expected coordinate names"),
        (dict(profile_points=0), r"profile_points: expected a whole number in \[1, 10000\]"),
        (dict(jobs=-1), r"jobs: expected a whole number in \[0, 4096\], got -1"),
        (dict(uncertainty="yes"), "uncertainty: expected True or False"),
        (dict(ensemble=2, resume=plain), "resume continues one fit: it cannot be combined "
                                         "with ensemble"),
    ]
    for kw, msg in cases:
        with pytest.raises(ValueError, match=msg):
            nde.fit(lv, lv_arrays, progress=False, **kw)
    # Errors of the library carry its message, the one nde prints.
    with pytest.raises(nde.ArgumentError, match="resampling the series needs at least 2 "
                                                "series"):
        nde.fit(lv, lv_arrays, ensemble=2, resample="series", progress=False)
    plain.save(tmp_path / "lv.h5")
    cli = run_nde("uncertainty", tmp_path / "lv.h5", DATA, "-o", tmp_path / "x.h5",
                  "--profile", "zeta", check=False)
    with pytest.raises(nde.ArgumentError) as e:
        plain.profile("zeta")
    assert str(e.value) == "profile: 'zeta' is not a fitted coordinate (expected one of " \
                           "alpha, beta, gamma, delta)"
    assert cli.returncode == 2 and str(e.value) in cli.stderr
    cli = run_nde("uncertainty", tmp_path / "lv.h5", LONG, "-o", tmp_path / "x.h5",
                  check=False)
    with pytest.raises(nde.DataError, match="not the data of this fit") as e:
        plain.compute_uncertainty(LONG)
    assert cli.returncode == 2 and str(e.value) in cli.stderr
    with pytest.raises(nde.ArgumentError, match="the noise of state 'x' is not known"):
        plain.compute_uncertainty(noise_model="known", noise_std={"y": 0.1})
    # An error of the standard errors after a fit carries the fit.
    with pytest.raises(nde.ArgumentError, match="the noise of state 'x' is not known") as e:
        nde.fit(lv, lv_arrays, optim="adam:5", uncertainty=True, noise_model="known",
                progress=False)
    assert e.value.result.status == "done" and e.value.result.uncertainty is None
    # (plain.profile computed the standard errors before it failed on the name: a fresh copy)
    plain = nde.load(tmp_path / "lv.h5")
    with pytest.raises(ValueError, match="band: .* has neither ensemble members nor standard "
                                         "errors"):
        plain.forecast(6, band=0.9)
    with pytest.raises(ValueError, match=r"band: expected a coverage in \(0, 1\), got 1.5"):
        plain.forecast(6, band=1.5)
    with pytest.raises(ValueError, match="stability selection needs an ensemble result"):
        plain.discover(inclusion=0.7)
    with pytest.raises(ValueError, match="param_spread: the result has no ensemble members"):
        plain.param_spread("beta")
    with pytest.raises(ValueError, match="param_spread: 'zeta' is not a parameter"):
        plain.param_spread("zeta")
    with pytest.raises(ValueError, match=r"member: expected an index in \[0, 0\)"):
        plain.member(0)
    assert plain.members == [] and plain.uncertainty is None
    assert not os.path.exists(tmp_path / "x.h5")


def test_a_band_with_no_value_warns_from_where_every_member_stopped(tmp_path):
    # dx/dt = k x^2 blows up at t = 1 / (k x0); the members, given k = 2, 2.5 and 3 by hand
    # (tests/cli/h5set, beside h5check), all stop by t = 0.5 while the kept fit (k near 0.3) runs
    # on.  nde forecast refuses that band (tests/cli/forecast.sh); Python gives it with NaN rows
    # and a SolverStopWarning naming the first such time and the members.
    h5c = os.environ.get("H5CHECK")
    if not h5c:
        pytest.skip("H5CHECK is not set (meson test sets it to tests/cli's h5check)")
    h5set = os.path.join(os.path.dirname(h5c), "h5set")
    (tmp_path / "blow.nde").write_text("state x = 1\nparam k = 0.3 (positive)\ndx/dt = k*x^2\n")
    run_nde("simulate", tmp_path / "blow.nde", "-o", tmp_path / "d.h5", "--t1", "1", "--points",
            "11", "--quiet")
    run_nde("fit", tmp_path / "blow.nde", tmp_path / "d.h5", "-o", tmp_path / "ens.h5",
            "--ensemble", "3", "--quiet")
    r = nde.load(tmp_path / "ens.h5")
    import warnings as w
    with w.catch_warnings():
        w.simplefilter("error")
        ok = r.forecast(1.5)  # the fitted members' band: finite, no warning
    assert np.isfinite(ok.lower).all() and np.isfinite(ok.upper).all()
    subprocess.run([h5set, str(tmp_path / "ens.h5"), "/ensemble/theta", repr(np.log(2.0)),
                    repr(np.log(2.5)), repr(np.log(3.0))], check=True)
    r = nde.load(tmp_path / "ens.h5")
    with pytest.warns(nde.SolverStopWarning,
                      match=r"the band is not finite from t = 0\.5\d*: the integrations of all "
                            r"3 members stopped by then") as rec:
        tr = r.forecast(1.5)
    assert len(rec) == 1
    assert np.isfinite(tr.y).all()
    gap = ~np.isfinite(tr.lower).all(axis=1)
    first = int(np.argmax(gap))
    assert 0 < first and gap[first:].all() and not gap[:first].any()
    # Saving it is refused as nde forecast refuses it: nothing written.
    with pytest.raises(nde.NumericalError, match=r"the band of the trajectory of series .* is not "
                                                 r"finite from t = 0\.5\d*; nothing written to"):
        tr.save(tmp_path / "f.csv")
    assert not (tmp_path / "f.csv").exists()
    ok.save(tmp_path / "ok.csv")
    # So is a trajectory that stopped (the kept fit, k near 0.3, blows up near t = 3.3).
    with pytest.warns(nde.SolverStopWarning):
        far = r.forecast(5.0, band=False)
    with pytest.raises(nde.NumericalError, match=r"the trajectory of series .* stopped: solver "
                                                 r".* stopped at t = 3\.\d*.*nothing written"):
        far.save(tmp_path / "far.h5")
    assert not (tmp_path / "far.h5").exists()


def test_an_undefined_observable_blanks_its_band_without_a_stop_warning():
    # r = sqrt(x - 0.5) is undefined from t = ln 2 / k (about 1.16): its value and band are NaN
    # there, the states' band is not, and nothing stopped, so nothing warns of a stop.
    src = ("state x = 1\nparam k = 0.6 (positive)\nobserve r = sqrt(x - 0.5)\nobserve h = 2*x\n"
           "dx/dt = -k*x\n")
    m = nde.Model(src, "dom.nde")
    t = np.arange(11) * 0.25
    x = np.exp(-0.6 * t) * (1 + 0.01 * np.sin(2.0 * np.arange(11)))
    r = nde.fit(m, {"s": (t, x[:, None])}, optim="lbfgs:100", uncertainty=True)
    import warnings as w
    with w.catch_warnings():
        w.simplefilter("error")
        tr = r.forecast(2.0, dt_out=0.25)
    assert np.isfinite(tr.y).all() and np.isfinite(tr.lower).all()
    assert np.isnan(tr.obs_lower[-1, 0]) and np.isfinite(tr.obs_lower[:, 1]).all()
