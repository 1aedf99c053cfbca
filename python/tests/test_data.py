"""Data from paths, arrays, series lists and dicts; shapes, dtypes and NaN masks; the library's
data errors with their messages."""
import numpy as np
import pytest

import nde
from nde import arrays
from conftest import bits, data_path, h5get, model_path, run_nde


def test_a_path_is_read_as_nde_fit_reads_it(lv):
    d = nde.Data(data_path("lotka_volterra.h5"), lv)
    assert d.n_series == len(d) == 1 and d.n_obs == 42 and d.n_nan == 0
    s = d.series[0]
    assert s.name == "/" and s.t.shape == (21,) and s.y.shape == (21, 2)
    assert d.label == data_path("lotka_volterra.h5")


def test_arrays_become_the_same_series_as_a_file_holding_them(lv, lv_arrays):
    t, y = lv_arrays
    d = nde.Data((t, y), lv)
    s = d.series[0]
    assert d.label == "arrays (1 series)" and s.name == "/"
    assert np.array_equal(bits(s.t), bits(t)) and np.array_equal(bits(s.y), bits(y))


def test_a_list_of_series_keeps_its_order_each_on_its_own_grid(lv, lv_arrays):
    t, y = lv_arrays
    items = [(t[k:], y[k:]) for k in range(12)]  # 12 series: names series00 ... series11
    d = nde.Data(items, lv)
    got = d.series
    assert [s.name for s in got] == ["/series%02d" % k for k in range(12)]
    for k, s in enumerate(got):
        assert np.array_equal(s.t, t[k:]) and np.array_equal(s.y, y[k:])


def test_a_dict_names_its_series_and_they_come_in_name_order(lv, lv_arrays):
    t, y = lv_arrays
    d = nde.Data({"run_b": (t, y), "run_a": nde.Series(t[:9], y[:9])}, lv)
    assert [s.name for s in d.series] == ["/run_a", "/run_b"]
    assert d.series[0].t.size == 9


def test_named_columns_may_observe_only_some_states(lv, lv_arrays):
    t, y = lv_arrays
    d = nde.Data(nde.Series(t, y[:, 1], names=["y"]), lv)
    s = d.series[0]
    assert np.isnan(s.y[:, 0]).all() and np.array_equal(s.y[:, 1], y[:, 1])
    assert d.n_obs == 21
    d2 = nde.Data(nde.Series(t, y[:, ::-1], names=["y", "x"]), lv)
    assert np.array_equal(d2.series[0].y, y)


def test_nan_marks_missing_values_and_is_kept_as_missing(lv, lv_arrays):
    t, y = lv_arrays
    y2 = y.copy()
    y2[[3, 7, 11], [0, 1, 0]] = np.nan
    d = nde.Data((t, y2), lv)
    assert d.n_nan == 3 and d.n_obs == 39
    assert np.array_equal(np.isnan(d.series[0].y), np.isnan(y2))


def test_wrong_shapes_and_dtypes_are_value_errors_naming_the_argument(lv, lv_arrays):
    t, y = lv_arrays
    with pytest.raises(ValueError, match=r"^data: y: expected a float64 array of shape \[21, D\] "
                                         r"\(one row per time of t\), got shape \[20, 2\]"):
        nde.Data((t, y[:-1]), lv)
    with pytest.raises(ValueError, match=r"^t: expected a float64 array of shape \[N\], got "
                                         r"shape \[21, 2\]"):
        nde.Series(y, y)
    with pytest.raises(ValueError, match=r"y: expected real numbers \(float64\) .* got dtype "
                                         r"complex128"):
        nde.Series(t, y.astype(complex))
    with pytest.raises(ValueError, match=r"y: expected 2 columns, one per state component of "
                                         r".*lotka_volterra.nde \(x, y\), got 1"):
        nde.Data((t, y[:, :1]), lv)
    with pytest.raises(ValueError, match=r"names: expected 2 names \(one per column of y\), got 1"):
        nde.Series(t, y, names=["x"])
    with pytest.raises(ValueError, match="the series name 'a' is given twice"):
        nde.Data([nde.Series(t, y, name="a"), nde.Series(t, y, name="a")], lv)
    with pytest.raises(TypeError, match=r"data\[1\]: expected \(t, y\) arrays or an nde.Series"):
        nde.Data([(t, y), "x"], lv)
    with pytest.raises(ValueError, match="expected at least one series"):
        nde.Data([], lv)


def test_the_masked_entries_of_a_masked_array_are_missing_values(lv, lv_arrays):
    # np.asarray dropped the mask: the values under it were fitted as observations.
    t, y = lv_arrays
    mask = np.zeros(y.shape, bool)
    mask[[3, 7, 11], [0, 1, 0]] = True
    d = nde.Data((t, np.ma.masked_array(y, mask)), lv)
    assert d.n_nan == 3 and d.n_obs == 39
    assert np.array_equal(np.isnan(d.series[0].y), mask)
    theta = lv.theta({"alpha": 1.1, "beta": 0.75, "gamma": 0.95, "delta": 1.6})
    assert lv.loss(theta, (t, np.ma.masked_array(y, mask))) == \
        lv.loss(theta, (t, np.where(mask, np.nan, y)))
    ints = np.ma.masked_array([1, 2, 3], [False, True, False])
    assert np.array_equal(arrays.real_array(ints, "x", ndim=1), [1.0, np.nan, 3.0],
                          equal_nan=True)
    assert np.ma.getmask(ints).any()  # the caller's array is not changed
    with pytest.raises(nde.ArgumentError, match="output time 1 is not finite"):
        lv.simulate(np.ma.masked_array([0.0, 1.0, 2.0], [False, True, False]))


def test_other_real_dtypes_and_layouts_are_converted_and_float64_is_not_copied():
    a = np.linspace(0, 1, 6)
    assert arrays.real_array(a, "a", ndim=1) is a
    m = np.arange(12.0).reshape(3, 4)
    assert arrays.real_array(m, "m", ndim=2) is m
    f = arrays.real_array(m[:, ::2], "m", ndim=2)  # a strided view: one copy, C-contiguous
    assert f.flags.c_contiguous and np.array_equal(f, m[:, ::2])
    for x in (np.arange(5), np.arange(5, dtype=np.float32), [0, 1, 2, 3, 4]):
        c = arrays.real_array(x, "x", ndim=1)
        assert c.dtype == np.float64 and np.array_equal(c, np.arange(5.0))
    with pytest.raises(ValueError, match="x: expected real numbers"):
        arrays.real_array(np.array(["a"]), "x", ndim=1)
    with pytest.raises(ValueError, match="x: expected real numbers"):
        arrays.real_array(np.array([True]), "x", ndim=1)


def test_the_library_checks_values_with_the_messages_it_gives_for_files(lv, lv_arrays):
    # nde_data_from_series: "series K" (K counting in the order of Data.series) stands for the
    # file and "/" for the group.
    t, y = lv_arrays
    with pytest.raises(nde.DataError, match=r"^series 0:/t: times not strictly increasing at "
                                            r"index 1 \(expected t\[1\] > t\[0\] = 5"):
        nde.Data((t[::-1], y), lv)
    y2 = y.copy()
    y2[:, 0] = np.nan
    with pytest.raises(nde.DataError, match=r'^series 0:/y: column 0 \("x"\) is all NaN'):
        nde.Data((t, y2), lv)
    y3 = y.copy()
    y3[3, 1] = np.inf
    with pytest.raises(nde.DataError, match=r'^series 1:/y: infinite value at row 3, column '
                                            r'1 \("y"\)'):
        nde.Data([(t, y), (t, y3)], lv)
    with pytest.raises(nde.DataError, match=r"^series 0:/y: attribute sigma\[1\] is invalid "
                                            r"\(expected a finite value > 0"):
        nde.Data(nde.Series(t, y, sigma=[0.1, -0.25]), lv)
    with pytest.raises(nde.DataError, match=r'state_names\[0\] = "z" matches no state of the '
                                            r'model \(expected one of x, y\)'):
        nde.Data(nde.Series(t, y[:, :1], names=["z"]), lv)
    with pytest.raises(nde.FileError, match="nope.h5: cannot open"):
        nde.Data("nope.h5", lv)


def test_data_opened_for_one_model_is_refused_for_a_model_with_other_states(lv, lv_arrays):
    spiral = nde.Model.from_file(data_path("../models/spiral.nde"))
    d = nde.Data(lv_arrays, lv)
    with pytest.raises(ValueError, match="opened for the states x, y"):
        nde.Problem(spiral, d)


def test_inputs_and_constants_for_a_model_that_declares_none_are_refused(lv, lv_arrays):
    t, y = lv_arrays
    with pytest.raises(ValueError, match=r"^inputs: expected \(t, U\) .* got dict"):
        nde.Series(t, y, inputs={"u": (t, t)})
    with pytest.raises(ValueError, match=r"^series 0: inputs: .*lotka_volterra.nde declares no "
                                         r"measured inputs"):
        nde.Data(nde.Series(t, y, inputs=(t, t)), lv)
    with pytest.raises(ValueError, match=r"^series 0: consts: 'k' names no constant of "
                                         r".*lotka_volterra.nde \(expected values for the "
                                         r"constants declared '\(from data\)': it declares none"):
        nde.Data(nde.Series(t, y, consts={"k": 1.0}), lv)


def test_data_from_arrays_saved_to_a_file_are_read_back_by_nde(lv, lv_arrays, tmp_path):
    t, y = lv_arrays
    y2 = y.copy()
    y2[4, 0] = np.nan
    d = nde.Data({"a": (t, y2), "b": nde.Series(t[:7], y[:7, 1], names=["y"])}, lv)
    d.save(tmp_path / "d.h5")
    back = nde.Data(tmp_path / "d.h5", lv)
    assert [s.name for s in back.series] == ["/a", "/b"]
    for s, r in zip(d.series, back.series):
        assert np.array_equal(bits(s.t), bits(r.t)) and np.array_equal(bits(s.y), bits(r.y))
    run_nde("inspect", tmp_path / "d.h5")


LV_OBS = open(model_path("lotka_volterra.nde")).read().replace(
    "param alpha = 1.3", "param alpha = 1.1") + "observe total = x + y\n"


@pytest.fixture(scope="module")
def obs(tmp_path_factory):
    """LV with an observable, and files of nde simulate measuring only the observable (one.h5)
    and a state and the observable (two.h5)."""
    d = tmp_path_factory.mktemp("obs")
    (d / "lv_obs.nde").write_text(LV_OBS)
    for out, cols, seed in (("one.h5", "total", 3), ("two.h5", "x,total", 4)):
        run_nde("simulate", d / "lv_obs.nde", "--quiet", "--t1", "5", "--dt-out", "0.25",
                "--param", "alpha=1.3", "--columns", cols, "--noise", "0.005", "--seed", seed,
                "-o", d / out)
    return d, nde.Model.from_file(d / "lv_obs.nde")


def test_columns_measuring_an_observable_are_read_as_from_a_file(obs):
    d, m = obs
    # A file: the views have the columns of nde_data_open_for, the states then the observables.
    f = nde.Data(d / "one.h5", m)
    assert f.columns == ("x", "y", "total")
    v = f.series[0]
    assert v.y.shape == (21, 3) and np.isnan(v.y[:, :2]).all()
    assert np.array_equal(bits(v.y[:, 2]), bits(h5get(d / "one.h5", "/y")))
    # The same values from arrays, by name.
    a = nde.Data(nde.Series(v.t, v.y[:, 2], names=["total"]), m)
    assert a.n_obs == f.n_obs == 21 and np.array_equal(bits(a.series[0].y), bits(v.y))
    # Unnamed columns: the states, or the states then the observables.
    y3 = m.simulate(v.t, columns=["x", "y", "total"])
    a3 = nde.Data((v.t, y3), m).series[0]
    assert np.array_equal(bits(a3.y), bits(y3))
    assert np.array_equal(bits(nde.Data((v.t, y3[:, :2]), m).series[0].y[:, :2]),
                          bits(y3[:, :2]))
    theta = m.theta({"alpha": 1.2})
    assert m.loss(theta, nde.Series(v.t, v.y[:, 2], names=["total"])) == \
        m.loss(theta, d / "one.h5")
    with pytest.raises(ValueError, match=r"y: expected 2 columns, one per state component of "
                                         r".*lv_obs.nde \(x, y\), or 3 with its observables "
                                         r"\(total\) after them, got 1"):
        nde.Data((v.t, v.y[:, 2]), m)
    with pytest.raises(nde.DataError, match=r'state_names\[0\] = "z" matches no state of the '
                                            r'model \(expected one of x, y, total\)'):
        nde.Data(nde.Series(v.t, v.y[:, 2], names=["z"]), m)


def test_a_fit_to_an_observable_from_arrays_is_nde_fit_on_the_file_bit_for_bit(obs):
    d, m = obs
    run_nde("fit", d / "lv_obs.nde", d / "two.h5", "--optim", "lbfgs:40", "--quiet", "-o",
            d / "fit.h5")
    cli = nde.load(d / "fit.h5")
    v = nde.Data(d / "two.h5", m).series[0]
    y = np.column_stack([v.y[:, 2], v.y[:, 0]])  # the columns in any order, by name
    r = nde.fit(m, nde.Series(v.t, y, names=["total", "x"]), optim="lbfgs:40", progress=False)
    assert np.array_equal(bits(r.theta), bits(cli.theta))
    assert np.array_equal(bits(nde.fit(m, d / "two.h5", optim="lbfgs:40",
                                       progress=False).theta), bits(cli.theta))


def test_data_measuring_an_observable_are_saved_and_read_back(obs, tmp_path):
    d, m = obs
    f = nde.Data(d / "two.h5", m)
    f.save(tmp_path / "re.h5")
    back = nde.Data(tmp_path / "re.h5", m)
    for s, r in zip(f.series, back.series):
        assert np.array_equal(bits(s.y), bits(r.y)) and np.isnan(r.y[:, 1]).all()
    assert np.array_equal(bits(h5get(tmp_path / "re.h5", "/y")),
                          bits(h5get(d / "two.h5", "/y")))
    # Known noise of an observable column, from arrays, goes with it.
    v = f.series[0]
    a = nde.Data({"a": nde.Series(v.t, v.y[:, 2], names=["total"], sigma=[0.02])}, m)
    assert np.array_equal(a.series[0].sigma, [np.nan, np.nan, 0.02], equal_nan=True)
    a.save(tmp_path / "a.h5")
    r = nde.Data(tmp_path / "a.h5", m).series[0]
    assert r.name == "/a" and np.array_equal(bits(r.y), bits(a.series[0].y))
    assert np.array_equal(r.sigma, [np.nan, np.nan, 0.02], equal_nan=True)
    assert "total" in run_nde("inspect", tmp_path / "a.h5").stdout
    # Data opened for a model without the observable are refused for it.
    lv = nde.Model.from_file(model_path("lotka_volterra.nde"))
    with pytest.raises(ValueError, match=r"opened for the observables \(none\), but .*lv_obs.nde "
                                         r"has the observables total"):
        nde.Problem(m, nde.Data(nde.Series(v.t, v.y[:, 0], names=["x"]), lv))


def test_empty_and_too_short_series_from_arrays_are_named(lv, lv_arrays):
    t, y = lv_arrays
    with pytest.raises(ValueError, match=r"^data: expected at least one series, got an empty "
                                         r"dict"):
        nde.fit(lv, {}, progress=False)
    with pytest.raises(nde.DataError, match=r"^series 0:/t: a series needs at least 2 "
                                            r"observation times \(got 1\)"):
        nde.fit(lv, (t[:1], y[:1]), progress=False)
    with pytest.raises(nde.DataError, match=r"^series 1:/t: a series needs at least 2 "
                                            r"observation times \(got 1\)"):
        nde.Problem(lv, {"a": (t, y), "b": (t[:1], y[:1])})
    with pytest.raises(nde.DataError, match=r"^series 0:/t: a series needs at least 2 "):
        lv.loss(lv.theta(), [(t[:1], y[:1]), (t, y)])
