"""Models: loading, what they declare, theta and parameters, simulation (against nde simulate bit
for bit), stops as outcomes, and model errors with file:line:col."""
import re

import numpy as np
import pytest

import nde
from conftest import TRUTH, bits, model_path, run_nde

LV_TEXT = """# two states
state x = 0.5, y = 2.25
param a = 1.3 (positive)
param b = 0.7 (fixed)
param c = 0.25 (in [0, 1])
dx/dt = a*x - b*x*y
dy/dt = c*x*y - y
"""


def test_a_model_from_a_file_and_from_text_declare_the_same_things(lv):
    text = open(model_path("lotka_volterra.nde")).read()
    m = nde.Model(text, filename="lv.nde")
    assert m.states == lv.states == ("x", "y")
    assert m.params == lv.params == TRUTH
    assert m.n_theta == lv.n_theta == 4
    assert m.filename == "lv.nde" and lv.filename.endswith("lotka_volterra.nde")
    assert m.source == text
    np.testing.assert_array_equal(m.initial_state, [0.44249296, 4.6280594])


def test_parameters_report_their_transform_bounds_and_place_in_theta():
    m = nde.Model(LV_TEXT)
    a, b, c = m.param_info
    assert (a.name, a.learnable, a.positive, a.transform, a.offset) == ("a", True, True, "log", 0)
    assert (b.learnable, b.offset, b.line) == (False, None, 4)
    assert (c.bounds, c.transform, c.offset) == ((0.0, 1.0), "logit", 1)
    assert [(e.name, e.kind, e.offset, e.length) for e in m.layout] == [
        ("a", "param", 0, 1), ("c", "param", 1, 1)]
    theta = m.theta({"a": 2.385, "c": 0.125})
    assert theta[0] == pytest.approx(np.log(2.385))
    vals = m.param_values(theta)
    assert vals["a"] == pytest.approx(2.385) and vals["b"] == 0.7
    assert vals["c"] == pytest.approx(0.125)


def test_nets_have_their_block_of_theta(ude):
    assert list(ude.nets) == ["U"]
    assert ude.nets["U"].n_params == ude.n_theta == 87
    t1, t2 = ude.init_theta(1), ude.init_theta(2)
    assert t1.shape == (87,) and not np.array_equal(t1, t2)
    assert np.array_equal(ude.init_theta(1), t1)


def test_setting_a_fixed_unknown_or_out_of_domain_parameter_is_a_value_error():
    m = nde.Model(LV_TEXT)
    with pytest.raises(ValueError, match=r"params: b is fixed in <string> \(line 4\)"):
        m.theta({"b": 1.0})
    with pytest.raises(ValueError, match=r"'zz' is not a parameter .* \(expected one of a, b, c\)"):
        m.theta({"zz": 1.0})
    with pytest.raises(ValueError, match=r"a = -1 is outside its domain \(expected a positive"):
        m.theta({"a": -1})
    with pytest.raises(ValueError, match=r"c = 2 is outside its bounds"):
        m.theta({"c": 2})


def test_simulate_returns_one_row_per_time_and_one_column_per_state(lv):
    t = np.linspace(0, 3, 13)
    y = lv.simulate(t)
    assert y.shape == (13, 2) and y.dtype == np.float64 and y.flags.c_contiguous
    np.testing.assert_array_equal(y[0], lv.initial_state)
    y2 = lv.simulate(t, u0={"y": 3.5})
    assert y2[0, 0] == lv.initial_state[0] and y2[0, 1] == 3.5
    y3 = lv.simulate(t, u0=[1.25, 2.5], params={"beta": 0.45})
    assert not np.allclose(y3, y)


def test_simulate_equals_nde_simulate_bit_for_bit_noise_included(lv, tmp_path):
    out = tmp_path / "sim.h5"
    run_nde("simulate", model_path("lotka_volterra.nde"), "-o", out,
            "--param", "alpha=1.3,beta=0.9,gamma=0.8,delta=1.8", "--t0", "0", "--t1", "5",
            "--dt-out", "0.25", "--noise", "5e-3", "--seed", "2020", "--solver", "rk4",
            "--steps-per-interval", "10", "--quiet")
    cli = nde.Data(out, lv).series[0]
    t = np.linspace(0.0, 5.0, 21)
    y, info = lv.simulate(t, params=TRUTH, noise=5e-3, seed=2020, steps_per_interval=10,
                          info=True)
    assert np.array_equal(bits(cli.t), bits(t))
    assert np.array_equal(bits(cli.y), bits(y))
    assert info.stop is None and info.n_steps == 200 and info.noise_std.shape == (2,)


def test_other_solvers_agree_with_rk4_on_a_smooth_problem(lv):
    t = np.linspace(0, 2, 9)
    ref = lv.simulate(t, steps_per_interval=40)
    for solver in ("dopri5", "cvode-bdf", "cvode-adams"):
        y = lv.simulate(t, solver=solver, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(y, ref, rtol=1e-6, err_msg=solver)
    np.testing.assert_allclose(lv.simulate(t, solver="euler", dt=1e-4), ref, rtol=1e-3)


def test_a_blow_up_is_an_outcome_nan_after_the_stop_and_a_warning():
    m = nde.Model("state x = 1\nparam a = 1\ndx/dt = a*x^2\n", "blowup.nde")
    t = np.linspace(0, 2, 11)
    with pytest.warns(nde.SolverStopWarning, match=r"solver rk4 stopped at t = 1\.04"):
        y, info = m.simulate(t, info=True)
    assert info.stop is not None and info.stop.t_stop == pytest.approx(1.04)
    assert np.isfinite(y[:6]).all() and np.isnan(y[6:]).all()


def test_a_model_error_is_a_model_error_with_line_and_column():
    with pytest.raises(nde.ModelError) as e:
        nde.Model("state x\nparam a = 1\ndx/dt = a*q\n", "bad.nde")
    assert str(e.value).startswith("bad.nde:3:11: error: unknown name 'q'")
    assert "^" in str(e.value)  # the caret line under the offending text
    assert e.value.status == "NDE_ERR_MODEL" and isinstance(e.value, ValueError)
    d = e.value.diagnostics[0]
    assert (d.line, d.col, d.is_note, d.source_line) == (3, 11, False, "dx/dt = a*q")
    with pytest.raises(nde.ModelError, match=r"^<string>:1:\d+: error") as e:
        nde.Model("state x = \n")
    assert e.value.status == "NDE_ERR_PARSE"


def test_a_missing_model_file_is_a_file_error_naming_it(tmp_path):
    p = tmp_path / "nope.nde"
    with pytest.raises(nde.FileError, match="nope.nde: cannot read") as e:
        nde.Model.from_file(p)
    assert isinstance(e.value, OSError)
    with pytest.raises(TypeError, match="Model.from_file"):
        nde.Model(p)
    with pytest.raises(nde.ModelError, match=r"for a file, use nde.Model.from_file\('m.nde'\)"):
        nde.Model("m.nde")


def test_inputs_and_constants_for_a_model_that_declares_none_are_refused(lv):
    t = np.linspace(0, 1, 3)
    with pytest.raises(ValueError, match="inputs: .*lotka_volterra.nde declares no measured "
                                         "inputs"):
        lv.simulate(t, inputs=(t, t))
    with pytest.raises(ValueError, match="consts: 'k' names no constant of .*lotka_volterra.nde"):
        lv.simulate(t, consts={"k": 1.0})


def test_equations_and_c_export_are_the_text_of_nde_export(lv):
    text = lv.equations(lv.theta(TRUTH), values=True)
    assert "dx/dt" in text and "1.3" in text
    c = lv.export_c(lv.theta(TRUTH), prefix="lv")
    assert "int lv_rhs(double t, const double *u, double *du)" in c
    assert "\\begin" in lv.equations(latex=True)


def test_a_c_export_prefix_that_is_not_an_identifier_is_named(lv):
    # The library answers a bad prefix with a bare NDE_ERR_ARG; the binding said only
    # "invalid argument".
    for bad in ("1x", "", "a-b", "ok name", "x\u00e9"):
        with pytest.raises(ValueError, match=r"^prefix: expected a C identifier .* got %s$"
                                             % re.escape(repr(bad))):
            lv.export_c(lv.init_theta(), prefix=bad)
    with pytest.raises(ValueError, match="prefix: expected a C identifier"):
        lv.export_c(lv.init_theta(), prefix=None)
    assert "int _x9_rhs(" in lv.export_c(lv.init_theta(), prefix="_x9")
