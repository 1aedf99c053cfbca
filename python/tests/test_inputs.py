"""Driven experiments from Python (issue 11): measured inputs, constants from data, per-series
parameters and observables give the numbers of the nde program bit for bit (simulate --inputs
--const --columns, fit, forecast --inputs, forecast --data, merge), fitted series expose what
drove them, and every refusal names what is wrong.  The experiment is tests/cli/inputs.sh's:
x' = -k x + g u with a step input u switching off the observation grid."""
import os

import numpy as np
import pytest

import nde
from conftest import ROOT, bits, h5attr, h5check, h5get, model_path, run_nde

TRUTH = """state x = 1
input u (step)
const g (from data)
param k = 1.3
dx/dt = -k*x + g*u
"""
FIT = TRUTH.replace("param k = 1.3", "param k = 0.5 (positive)")
PER = TRUTH.replace("param k = 1.3", "param k = 0.5 (positive, per series)")
OBS = TRUTH + "observe h = 2*x + g*u\n"
U_T, U = np.array([0, 1.93, 4.61, 8.0]), np.array([0, 1, 0.5, 0.5])
U_LONG_T, U_LONG = np.array([0, 1.93, 4.61, 9.3, 12.0]), np.array([0, 1, 0.5, 2, 2])


def write_csv(path, t, cols):
    with open(path, "w") as f:
        f.write("t," + ",".join(cols) + "\n")
        for i in range(len(t)):
            f.write(",".join(repr(float(v)) for v in [t[i]] + [cols[c][i] for c in cols]) + "\n")


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    """The models and input files of the experiment, and data simulated by nde simulate."""
    d = tmp_path_factory.mktemp("inputs")
    for name, text in (("truth", TRUTH), ("fit", FIT), ("per", PER), ("obs", OBS)):
        (d / (name + ".nde")).write_text(text)
    write_csv(d / "u.csv", U_T, {"u": U})
    write_csv(d / "u_long.csv", U_LONG_T, {"u": U_LONG})

    def sim(t1, csv, g, k, seed, out):
        run_nde("simulate", d / "truth.nde", "--quiet", "--t1", t1, "--dt-out", "0.25",
                "--inputs", d / csv, "--const", "g=%s" % g, "--param", "k=%s" % k, "--noise",
                "0.01", "--seed", seed, "-o", d / out)
        return d / out
    sim(8, "u.csv", 2, 1.3, 1, "d.h5")
    sim(12, "u_long.csv", 1, 1.3, 7, "held.h5")
    sim(12, "u_long.csv", 0.5, 0.8, 2, "b.h5")
    return d


@pytest.fixture(scope="module")
def models(exp):
    return {name: nde.Model.from_file(exp / (name + ".nde"))
            for name in ("truth", "fit", "per", "obs")}


@pytest.fixture(scope="module")
def cli_fit(exp):
    run_nde("fit", exp / "fit.nde", exp / "d.h5", "-o", exp / "f.h5", "--quiet")
    return nde.load(exp / "f.h5")


def test_a_model_declares_its_inputs_constants_and_observables(models):
    m = models["obs"]
    assert m.inputs == ("u",) and m.data_consts == ("g",) and m.observables == ("h",)
    assert m.input_info[0] == ("u", "step", False, 2)
    assert [(c.name, c.from_data) for c in m.const_info] == [("g", True)]
    room = nde.Model.from_file(model_path("heated_room.nde"))
    assert [(i.name, i.interp, i.hold) for i in room.input_info] == [
        ("heater", "step", False), ("T_out", "cubic", True)]
    assert room.data_consts == ("P",) and room.observables == ("sensor",)
    k = [p for p in room.param_info if p.name == "k"][0]
    assert k.per_series and room.n_series_params == 1
    assert room.n_theta_full(3) == room.n_theta + 3
    assert "inputs heater, T_out, constants from data P, observables sensor" in repr(room)
    assert "where k = (per series), c = 0.8" in room.equations()
    with pytest.raises(nde.UnsupportedError, match="export_c: .*heated_room.nde has per-series "
                                                   "parameters, measured inputs"):
        room.export_c(room.init_theta())


def test_simulate_with_inputs_and_constants_is_nde_simulate_bit_for_bit(exp, models):
    s = nde.Data(exp / "d.h5", models["truth"]).series[0]
    y = models["truth"].simulate(s.t, inputs=(U_T, U), consts={"g": 2}, params={"k": 1.3},
                                 noise=0.01, seed=1)
    assert np.array_equal(bits(y), bits(s.y))
    # The file carries the inputs and the constant it was made with.
    assert np.array_equal(s.inputs[0], U_T) and np.array_equal(s.inputs[1][:, 0], U)
    assert s.consts == {"g": 2.0}
    # Inputs by name are the same inputs.
    y2 = models["truth"].simulate(s.t, inputs=(U_T, {"u": U}), consts={"g": 2.0},
                                  params={"k": 1.3}, noise=0.01, seed=1)
    assert np.array_equal(bits(y2), bits(y))


def test_simulate_many_is_simulate_per_series_and_nde_simulate_series(exp, models, tmp_path):
    """Many series on threads (issue 13): each series is what simulate gives it alone with its
    seed, at any thread count, and the batch is nde simulate --series's, group by group."""
    m = models["obs"]
    t = np.linspace(0, 8, 33)
    series = [{"u0": {"x": 1.0}, "params": {"k": 1.3}, "consts": {"g": 2}},
              {"u0": [0.5], "params": {"k": 0.8}, "consts": {"g": 0.5}, "seed": 11},
              {"consts": {"g": 1}, "inputs": (U_LONG_T, U_LONG)}]
    kw = dict(inputs=(U_T, U), columns=["x", "h"], noise=0.01, seed=5)
    Y1 = m.simulate_many(t, series, threads=1, **kw)
    Y3, info = m.simulate_many(t, series, threads=3, info=True, **kw)
    assert Y1.shape == (3, t.size, 2) and np.array_equal(bits(Y1), bits(Y3))
    assert len(info) == 3 and all(i.stop is None for i in info)
    seeds = [nde.sim_series_seed(5, 0), 11, nde.sim_series_seed(5, 2)]
    assert seeds[0] != seeds[2] and seeds[0] != 5
    for k, d in enumerate(series):
        alone = m.simulate(t, u0=d.get("u0"), params=d.get("params"), consts=d["consts"],
                           inputs=d.get("inputs", (U_T, U)), columns=["x", "h"], noise=0.01,
                           seed=seeds[k])
        assert np.array_equal(bits(alone), bits(Y1[k])), k
    # The command line's batch: the same values, group by group.
    (tmp_path / "table.csv").write_text(
        "name,x,k,g,seed\na,1,1.3,2,%d\nb,0.5,0.8,0.5,11\n" % seeds[0])
    write_csv(tmp_path / "u.csv", U_T, {"u": U})
    run_nde("simulate", exp / "obs.nde", "--quiet", "--t1", "8", "--points", "33", "--inputs",
            tmp_path / "u.csv", "--columns", "x,h", "--noise", "0.01", "--series",
            tmp_path / "table.csv", "-o", tmp_path / "b.h5")
    for k, g in enumerate(("a", "b")):
        assert np.array_equal(bits(h5get(tmp_path / "b.h5", "/%s/y" % g)), bits(Y1[k].ravel())), g
    # Defaults of every series, a count of series, and what is wrong named by series.
    Y0 = m.simulate_many(t, 2, inputs=(U_T, U), consts={"g": 2}, seed=5)
    assert Y0.shape == (2, t.size, 1)
    assert np.array_equal(bits(Y0[1]), bits(m.simulate(t, inputs=(U_T, U), consts={"g": 2},
                                                       seed=5)))
    with pytest.raises(ValueError, match="series 1: 'k0' is not a setting of a series"):
        m.simulate_many(t, [{}, {"k0": 1}], inputs=(U_T, U), consts={"g": 2})
    with pytest.raises(ValueError, match="series 0: consts: .*declares constants from data"):
        m.simulate_many(t, [{}], inputs=(U_T, U))
    for bad in (-1, 2 ** 40, 1.5):
        with pytest.raises(ValueError, match=r"threads: expected a whole number in \[0, 1024\]"):
            m.simulate_many(t, 1, inputs=(U_T, U), consts={"g": 2}, threads=bad)
    for bad in (-1, 2 ** 53 + 1):
        with pytest.raises(ValueError,
                           match=r"seed: expected a whole number in \[0, 9007199254740992\]"):
            m.simulate_many(t, 1, inputs=(U_T, U), consts={"g": 2}, seed=bad)
    with pytest.raises(TypeError, match="series 0: params: expected a dict"):
        m.simulate_many(t, [{"params": []}], inputs=(U_T, U), consts={"g": 2})


def test_columns_choose_states_and_observables_as_nde_simulate_columns(exp, models):
    run_nde("simulate", exp / "obs.nde", "--quiet", "--t1", "8", "--dt-out", "0.25", "--inputs",
            exp / "u.csv", "--const", "g=2", "--columns", "h,x", "-o", exp / "h.h5")
    t = h5get(exp / "h.h5", "/t")
    y, info = models["obs"].simulate(t, inputs=(U_T, U), consts={"g": 2}, columns=["h", "x"],
                                     info=True)
    assert y.shape == (t.size, 2) and info.noise_std.shape == (2,)
    assert np.array_equal(bits(y.ravel()), bits(h5get(exp / "h.h5", "/y")))
    np.testing.assert_allclose(y[:, 0], 2 * y[:, 1] + 2 * U[np.searchsorted(U_T, t, "right") - 1],
                               rtol=1e-15)
    with pytest.raises(nde.ArgumentError, match="unknown quantity 'zz' \\(expected a state "
                                                "component such as 'x' or an observable such "
                                                "as 'h'\\)"):
        models["obs"].simulate(t, inputs=(U_T, U), consts={"g": 2}, columns=["zz"])


def test_what_drives_a_simulation_is_checked_with_a_message_naming_it(models):
    m, t = models["truth"], np.linspace(0, 8, 9)
    with pytest.raises(ValueError, match=r"^inputs: .*truth.nde declares measured inputs \(u\): "
                                         r"give their samples"):
        m.simulate(t, consts={"g": 1})
    with pytest.raises(nde.ArgumentError, match=r"needs the measured input 'u' beyond its "
                                                r"samples on \[0, 4\]"):
        m.simulate(t, inputs=([0, 4], [1, 1]), consts={"g": 1})
    with pytest.raises(ValueError, match=r"^consts: .*truth.nde declares constants from data "
                                         r"\(g\): give their values"):
        m.simulate(t, inputs=(U_T, U))
    with pytest.raises(ValueError, match="consts: no value for the constant 'g'"):
        m.simulate(t, inputs=(U_T, U), consts={})
    with pytest.raises(ValueError, match="consts: 'h' names no constant of .*truth.nde"):
        m.simulate(t, inputs=(U_T, U), consts={"g": 1, "h": 1})
    with pytest.raises(ValueError, match=r"consts: g: expected a finite number, got inf"):
        m.simulate(t, inputs=(U_T, U), consts={"g": np.inf})
    with pytest.raises(ValueError, match="inputs: 'v' is not an input of .*truth.nde"):
        m.simulate(t, inputs=(U_T, {"v": U}), consts={"g": 1})
    with pytest.raises(ValueError, match=r"inputs: U: expected a float64 array of shape \[4, 1\]"):
        m.simulate(t, inputs=(U_T, U[:3]), consts={"g": 1})
    with pytest.raises(nde.ArgumentError, match=r"input 'u' of series 0 is not finite at "
                                                r"sample 1 \(t = 1.9299"):
        m.simulate(t, inputs=(U_T, [0, np.nan, 1, 1]), consts={"g": 1})


def test_a_fit_from_arrays_with_inputs_is_nde_fit_bit_for_bit(exp, models, cli_fit):
    m = models["fit"]
    s = nde.Data(exp / "d.h5", m).series[0]
    r = nde.fit(m, nde.Series(s.t, s.y, inputs=s.inputs, consts=s.consts), seed=1,
                progress=False)
    assert np.array_equal(bits(r.theta), bits(cli_fit.theta))
    assert r.params["k"] == pytest.approx(1.3, rel=0.01)
    # The inputs and constants given to nde.fit for the series are the same data.
    r2 = nde.fit(m, (s.t, s.y), inputs=(s.inputs[0], {"u": s.inputs[1][:, 0]}),
                 consts={"g": 2}, seed=1, progress=False)
    assert np.array_equal(bits(r2.theta), bits(cli_fit.theta))
    # What drove the fitted series, from the fit and from the program's result file.
    for res in (r, cli_fit):
        fs = res.series[0]
        assert fs.name == "/" and fs.consts == {"g": 2.0}
        assert np.array_equal(fs.inputs[0], U_T) and np.array_equal(fs.inputs[1][:, 0], U)
        assert fs.params["k"] == res.params["k"]


def test_the_loss_through_a_step_input_is_nde_grads_and_matches_finite_differences(exp, models):
    m = models["fit"]
    s = nde.Data(exp / "d.h5", m).series[0]
    p = m.problem(nde.Series(s.t, s.y, inputs=s.inputs, consts=s.consts), grad="discrete")
    theta = m.theta({"k": 0.9})
    L, g = p.loss_and_grad(theta)
    out = run_nde("grad", exp / "fit.nde", exp / "d.h5", "--param", "k=0.9", "--grad",
                  "discrete", "--out", exp / "g.h5").stdout
    assert float(dict(line.split() for line in out.splitlines())["loss"]) == L
    assert np.array_equal(bits(g), bits(h5get(exp / "g.h5", "/grad")))
    h = 1e-6
    fd = (p.loss(theta + h) - p.loss(theta - h)) / (2 * h)
    assert g[0] == pytest.approx(fd, rel=1e-6)


def test_data_for_an_input_model_need_the_inputs_and_constants(exp, models):
    m = models["fit"]
    s = nde.Data(exp / "d.h5", m).series[0]
    with pytest.raises(ValueError, match=r"^series 0: inputs: .*declares measured inputs \(u\)"):
        nde.Data((s.t, s.y), m, consts={"g": 1})
    with pytest.raises(ValueError, match=r"^series 0: consts: .*declares constants from data"):
        nde.Data((s.t, s.y), m, inputs=s.inputs)
    with pytest.raises(ValueError, match="inputs: a list gives one value per series: expected 1"):
        nde.Data((s.t, s.y), m, inputs=[s.inputs, s.inputs], consts={"g": 1})
    with pytest.raises(ValueError, match="inputs, consts: the series of .*d.h5 carry their own"):
        nde.Data(exp / "d.h5", m, consts={"g": 1})
    # Inputs that end before the observations: the model (u is not declared hold) refuses them
    # when it meets the data.
    short = nde.Data((s.t, s.y), m, inputs=(U_T[:3], U[:3]), consts={"g": 1})
    with pytest.raises(nde.DataError, match=r"^series 0:/inputs/t: the samples of the measured "
                                            r"input 'u' span \[0, .*\], which does not cover"):
        nde.fit(m, short, optim="adam:1", progress=False)
    # A file without the inputs the model declares: the fit names the file and dataset.
    lv_like = exp / "plain.h5"
    nde.Data((s.t, s.y[:, 0]), nde.Model("state x = 1\ndx/dt = -x\n")).save(lv_like)
    with pytest.raises(nde.DataError, match=r"plain.h5:/inputs/u: no such dataset"):
        nde.fit(m, lv_like)


def test_forecasts_are_driven_by_future_inputs_and_refused_beyond_them(exp, models, cli_fit):
    r = cli_fit
    with pytest.raises(nde.ArgumentError, match=r"measured input 'u' beyond its samples on "
                                                r"\[0, 8\]"):
        r.forecast(12)
    run_nde("forecast", exp / "f.h5", "--t1", "12", "--inputs", exp / "u_long.csv", "-o",
            exp / "fc.h5", "--quiet")
    run_nde("forecast", exp / "f.h5", "--t1", "12", "--inputs", exp / "u_long.csv", "--const",
            "g=0.5", "-o", exp / "fc_g.h5", "--quiet")
    fc = r.forecast(12, inputs=(U_LONG_T, U_LONG))
    for tr, path in ((fc, "fc.h5"), (r.forecast(12, inputs=(U_LONG_T, U_LONG),
                                                consts={"g": 0.5}), "fc_g.h5")):
        cli = nde.Data(exp / path, models["fit"]).series[0]
        assert np.array_equal(bits(tr.t), bits(cli.t)) and np.array_equal(bits(tr.y), bits(cli.y))
        assert cli.consts == tr.consts
    assert fc.consts == {"g": 2.0} and np.array_equal(fc.inputs[0], U_LONG_T)
    # Saved as nde forecast saves it: with the inputs that drove it.
    fc.save(exp / "py_fc.h5")
    out = run_nde("inspect", exp / "py_fc.h5").stdout
    assert "measured inputs: u (5 samples on [0, 12])" in out
    back = nde.Data(exp / "py_fc.h5", models["fit"]).series[0]
    assert np.array_equal(bits(back.y), bits(fc.y)) and back.consts == {"g": 2.0}
    # Within the fitted span the series' own inputs drive it: the fitted curve.
    own = r.integrate(r.series[0].t)
    assert np.array_equal(bits(own.y), bits(r.fitted()))


def test_held_out_experiments_are_scored_driven_by_their_own_inputs(exp, models, cli_fit):
    run_nde("forecast", exp / "f.h5", "--data", exp / "held.h5", "-o", exp / "scored.h5")
    cli_rmse = h5attr(exp / "scored.h5", "/", "rmse")
    sc = cli_fit.score(exp / "held.h5")
    assert sc.rmse == cli_rmse
    held = nde.Data(exp / "held.h5", models["fit"]).series[0]
    sa = cli_fit.score(nde.Series(held.t, held.y, inputs=held.inputs, consts=held.consts))
    assert sa.rmse == cli_rmse and sa[0].series == 0
    noise = 0.01 * np.mean(np.abs(held.y))
    assert sc.rmse < 2 * noise, (sc.rmse, noise)


def test_experiments_with_per_series_rates_are_nde_merge_and_nde_fit_bit_for_bit(exp, models):
    run_nde("merge", "-o", exp / "batch.h5", exp / "d.h5", exp / "b.h5", "--names", "low,high")
    run_nde("fit", exp / "per.nde", exp / "batch.h5", "-o", exp / "fp.h5", "--quiet")
    cli = nde.load(exp / "fp.h5")
    per = models["per"]
    a, b = (nde.Data(exp / f, per).series[0] for f in ("d.h5", "b.h5"))
    series = {"low": nde.Series(a.t, a.y, inputs=a.inputs, consts=a.consts),
              "high": nde.Series(b.t, b.y, inputs=b.inputs, consts=b.consts)}
    r = nde.fit(per, series, progress=False)
    assert np.array_equal(bits(r.theta), bits(cli.theta))
    # Series in name order, as the groups of the merged file.
    assert [s.name for s in r.series] == [s.name for s in cli.series] == ["/high", "/low"]
    k = r.params["k"]
    assert k.shape == (2,) and k == pytest.approx([0.8, 1.3], rel=0.02)
    assert [s.params["k"] for s in r.series] == list(k)
    assert [s.consts["g"] for s in r.series] == [0.5, 2.0]
    # Data.save writes the batch nde merge writes.
    nde.Data(series, per).save(exp / "py_batch.h5")
    for g in ("/low", "/high"):
        for ds in ("t", "y", "inputs/t", "inputs/u"):
            assert np.array_equal(bits(h5get(exp / "py_batch.h5", g + "/" + ds)),
                                  bits(h5get(exp / "batch.h5", g + "/" + ds))), (g, ds)
        assert h5attr(exp / "py_batch.h5", g, "g") == h5attr(exp / "batch.h5", g, "g")
    # Start values of a per-series parameter: one for every series, or one each.
    th = per.theta({"k": [0.75, 1.25]}, n_series=2)
    assert per.param_values(th, series=1)["k"] == pytest.approx(1.25)
    assert per.param_values(per.theta({"k": 0.9}, n_series=2), series=1)["k"] == \
        pytest.approx(0.9)
    with pytest.raises(ValueError, match="k is a per-series parameter: expected one value or 2"):
        per.theta({"k": [1, 2, 3]}, n_series=2)


def test_init_from_a_file_of_natural_values_is_nde_fit_init(exp, models):
    h5check("mkvalues", exp / "init.h5", "k=1.1")
    # One tiny step (a schedule of none trips UBSan in libnde's nde_train_get_state).
    run_nde("fit", exp / "fit.nde", exp / "d.h5", "-o", exp / "fi.h5", "--init", exp / "init.h5",
            "--optim", "adam:1@1e-12", "--quiet")
    r = nde.fit(models["fit"], exp / "d.h5", init=exp / "init.h5", optim="adam:1@1e-12",
                progress=False)
    assert np.array_equal(bits(r.theta), bits(nde.load(exp / "fi.h5").theta))
    assert r.params["k"] == pytest.approx(1.1, rel=1e-9)
    assert models["fit"].theta(init=exp / "init.h5") == pytest.approx([np.log(1.1)])
    with pytest.raises(nde.DataError, match=r"^init: .*d.h5:/params/theta: no such dataset, nor "
                                            r"/params/values/NAME"):
        models["fit"].theta(init=exp / "d.h5")
    h5check("mkvalues", exp / "bad.h5", "k=-1")
    with pytest.raises(nde.DataError, match=r"init: .*bad.h5:/params/values/k: expected one "
                                            r"value in the domain of k"):
        nde.fit(models["fit"], exp / "d.h5", init=exp / "bad.h5")


def test_the_heated_room_with_step_and_held_cubic_inputs_is_nde_simulate(exp, tmp_path):
    room = nde.Model.from_file(model_path("heated_room.nde"))
    t_u = np.array([0.0, 1.5, 3.25, 6.0])
    cols = {"heater": [0.0, 1.0, 0.0, 1.0], "T_out": [4.5, 6.25, 7.0, 5.5]}
    write_csv(tmp_path / "room.csv", t_u, cols)
    run_nde("simulate", model_path("heated_room.nde"), "--quiet", "--t1", "6", "--dt-out",
            "0.5", "--inputs", tmp_path / "room.csv", "--const", "P=2.5", "--columns",
            "T,sensor", "--seed", "4", "--solver", "dopri5", "-o", tmp_path / "room.h5")
    t = h5get(tmp_path / "room.h5", "/t")
    y = room.simulate(t, inputs=(t_u, cols), consts={"P": 2.5}, columns=["T", "sensor"], seed=4,
                      solver="dopri5")
    assert np.array_equal(bits(y.ravel()), bits(h5get(tmp_path / "room.h5", "/y")))
    # T_out holds its last value; the heater's schedule does not.
    longer = np.linspace(0, 9, 10)
    with pytest.raises(nde.ArgumentError, match="measured input 'heater' beyond its samples"):
        room.simulate(longer, inputs=(t_u, cols), consts={"P": 2.5})
    cols2 = dict(cols, heater=cols["heater"] + [1.0])
    y9 = room.simulate(longer, inputs=(np.append(t_u, 9.0), {"heater": cols2["heater"],
                                                             "T_out": cols["T_out"] + [5.5]}),
                       consts={"P": 2.5})
    assert np.isfinite(y9).all()


def test_sigma_and_inputs_round_trip_through_a_saved_file(exp, models, tmp_path):
    s = nde.Data(exp / "d.h5", models["fit"]).series[0]
    d = nde.Data(nde.Series(s.t, s.y, sigma=[0.0125], inputs=s.inputs, consts={"g": 2.0},
                            name="run1"), models["fit"])
    v = d.series[0]
    assert v.name == "/run1" and v.sigma.tolist() == [0.0125] and v.consts == {"g": 2.0}
    d.save(tmp_path / "s.h5")
    back = nde.Data(tmp_path / "s.h5", models["fit"]).series[0]
    assert back.name == "/run1" and back.sigma.tolist() == [0.0125]
    assert np.array_equal(bits(back.inputs[1]), bits(v.inputs[1])) and back.consts == v.consts
    out = run_nde("inspect", tmp_path / "s.h5").stdout
    assert "measured inputs: u" in out and "sigma" in out


def test_the_readme_example_of_driven_experiments_runs(tmp_path, monkeypatch):
    text = open(os.path.join(ROOT, "python", "README.md")).read()
    block = text.split("### Driven experiments")[1].split("```python")[1].split("```")[0]
    monkeypatch.chdir(tmp_path)  # where it writes rooms.h5
    block = block.replace('"models/heated_room.nde"', repr(model_path("heated_room.nde")))
    ns = {}
    exec(compile(block, "python/README.md", "exec"), ns)
    r, fc = ns["r"], ns["fc"]
    assert r.status == "done" and r.params["k"] == pytest.approx([0.21, 0.31], abs=0.01)
    assert (r.series[0].name, r.series[0].consts) == ("/a", {"P": 2.0})
    assert fc.t[-1] == 18 and np.isfinite(fc.y).all() and ns["sensor"].shape == (49, 1)
    back = nde.Data(tmp_path / "rooms.h5", ns["room"])
    assert [s.name for s in back.series] == ["/a", "/b"]


def test_a_series_seed_takes_integers_only_as_simulate_many_does():
    # sim_series_seed passed its arguments through int(): a seed of 1.7 gave seed 1's series,
    # "3" gave 3's, and -1 raised cffi's OverflowError.
    assert nde.sim_series_seed(np.uint64(5), np.int32(2)) == nde.sim_series_seed(5, 2)
    assert nde.sim_series_seed(5, -4) == nde.sim_series_seed(5, 0)  # as in C
    for seed in (1.7, "3", -1, 2 ** 64, True, None):
        with pytest.raises(ValueError, match=r"^seed: expected an integer in \[0, 2\^64\)"):
            nde.sim_series_seed(seed, 0)
    for k in (1.5, "2", False):
        with pytest.raises(ValueError, match="^k: expected an integer series index"):
            nde.sim_series_seed(5, k)
