"""The loss and its gradient from Python: shapes, agreement with nde grad, central finite
differences, NaN masks, other gradient methods, stops as outcomes."""
import threading

import numpy as np
import pytest

import nde
from conftest import TRUTH, data_path, model_path, run_nde

START = {"alpha": 1.1, "beta": 0.75, "gamma": 0.95, "delta": 1.6}


def test_loss_and_grad_returns_a_float_and_one_derivative_per_theta_entry(ude, lv_arrays):
    theta = ude.init_theta(1)
    L, g = ude.loss_and_grad(theta, lv_arrays)
    assert isinstance(L, float) and np.isfinite(L)
    assert g.shape == (87,) and g.dtype == np.float64 and np.isfinite(g).all()
    assert ude.loss(theta, lv_arrays) == L
    p = ude.problem(lv_arrays)
    out = np.zeros(87)
    L2, g2 = p.loss_and_grad(theta, out=out)
    assert g2 is out and L2 == L and np.array_equal(out, g)
    with pytest.raises(ValueError, match=r"theta: expected a float64 array of shape \[87\], got "
                                         r"shape \[86\]"):
        p.loss_and_grad(theta[:-1])
    with pytest.raises(ValueError, match=r"out: expected a writable C-contiguous float64 array of "
                                         r"shape \[87\], got float32 array of shape \[87\]"):
        p.loss_and_grad(theta, out=np.zeros(87, dtype=np.float32))
    # A NaN entry is refused, naming what it is, not evaluated into a solver stop.
    bad = theta.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match=r"weight 5 of net 'U' is nan \(theta\[5\]; expected a "
                                         r"finite value\)"):
        p.loss_and_grad(bad)


def test_the_loss_is_the_one_nde_grad_prints(lv):
    theta = lv.theta(START)
    L, g = lv.loss_and_grad(theta, data_path("lotka_volterra.h5"))
    out = run_nde("grad", model_path("lotka_volterra.nde"), data_path("lotka_volterra.h5"),
                  "--param", ",".join("%s=%r" % kv for kv in START.items())).stdout
    vals = dict(line.split() for line in out.splitlines())
    assert float(vals["loss"]) == L
    assert float(vals["grad_norm"]) == pytest.approx(np.linalg.norm(g), rel=1e-14)


def _central_differences(f, theta, idx, h):
    out = []
    for i in idx:
        tp, tm = theta.copy(), theta.copy()
        tp[i] += h
        tm[i] -= h
        out.append((f(tp) - f(tm)) / (2 * h))
    return np.array(out)


def test_the_gradient_agrees_with_central_finite_differences(lv, ude, lv_arrays):
    p = lv.problem(lv_arrays, loss="sum")
    theta = lv.theta(START)
    _, g = p.loss_and_grad(theta)
    fd = _central_differences(p.loss, theta, range(4), 1e-6)
    np.testing.assert_allclose(g, fd, rtol=1e-6)

    q = ude.problem(lv_arrays)
    theta = ude.init_theta(7)
    _, g = q.loss_and_grad(theta)
    idx = np.random.default_rng(2385).choice(87, 12, replace=False)
    fd = _central_differences(q.loss, theta, idx, 1e-6)
    np.testing.assert_allclose(g[idx], fd, rtol=1e-5, atol=1e-8 * np.abs(g).max())


def test_continuous_adjoints_agree_with_the_discrete_one(lv, lv_arrays):
    theta = lv.theta(START)
    _, ref = lv.loss_and_grad(theta, lv_arrays, solver="dopri5", rtol=1e-10, atol=1e-12,
                              grad="discrete")
    for method in ("backsolve", "interp"):
        _, g = lv.loss_and_grad(theta, lv_arrays, solver="dopri5", rtol=1e-10, atol=1e-12,
                                grad=method)
        np.testing.assert_allclose(g, ref, rtol=1e-5, err_msg=method)
    _, g = lv.loss_and_grad(theta, lv_arrays, solver="cvode-bdf", rtol=1e-10, atol=1e-12,
                            grad="forward")
    np.testing.assert_allclose(g, ref, rtol=1e-5)


def test_a_missing_value_is_left_out_of_the_loss(lv, lv_arrays):
    t, y = lv_arrays
    theta = lv.theta(START)
    full = lv.loss(theta, (t, y), loss="sum")
    i, j = 9, 1
    y2 = y.copy()
    y2[i, j] = np.nan
    masked = lv.loss(theta, (t, y2), loss="sum")
    # the model's value there, integrated as the loss integrates (rk4, 5 steps per interval)
    pred = lv.simulate(t, u0=y[0], theta=theta, steps_per_interval=5)
    assert full - masked == pytest.approx((y[i, j] - pred[i, j]) ** 2, rel=1e-9)
    # the mean divides by the observed values only
    assert lv.loss(theta, (t, y2)) == pytest.approx(masked / 41, rel=1e-14)


def test_a_solve_that_stops_gives_a_nan_loss_and_a_warning_not_an_error(lv, lv_arrays):
    p = lv.problem(lv_arrays)
    theta = lv.theta({"alpha": 60.0})
    with pytest.warns(nde.SolverStopWarning, match="the loss is NaN: solver rk4 stopped"):
        L, g = p.loss_and_grad(theta)
    assert np.isnan(L) and p.last_stop is not None and p.last_stop.t_stop > 0
    L, g = p.loss_and_grad(lv.theta(TRUTH))
    assert np.isfinite(L) and p.last_stop is None


def test_bad_options_name_themselves(lv, lv_arrays):
    with pytest.raises(ValueError, match=r"solver: unknown method 'rk5' \(expected one of euler, "
                                         r"rk4, "):
        lv.problem(lv_arrays, solver="rk5")
    with pytest.raises(nde.ArgumentError, match="gradient method 'interp' does not work with solver 'rk4'"):
        lv.problem(lv_arrays, grad="interp")
    with pytest.raises(ValueError, match="loss: expected one of mean, sum, got 'max'"):
        lv.problem(lv_arrays, loss="max")
    with pytest.raises(TypeError, match="unexpected keyword argument 'shoot_interval'"):
        lv.problem(lv_arrays, shoot_interval=4)
    with pytest.raises(ValueError, match="dt and steps_per_interval both given"):
        lv.problem(lv_arrays, dt=0.01, steps_per_interval=3)


def test_a_problem_for_an_nde_data_is_reused_by_model_loss_and_grad(lv, lv_arrays):
    d = nde.Data(lv_arrays, lv)
    theta = lv.theta(START)
    lv.loss_and_grad(theta, d)
    p = lv._cache[2]
    lv.loss_and_grad(theta, d)
    assert lv._cache[2] is p
    lv.loss_and_grad(theta, d, loss="sum")
    assert lv._cache[2] is not p


def test_a_shared_model_reads_its_problem_cache_once(lv_arrays):
    # Model.loss read the model's problem cache four times; another thread's call that replaced
    # it between the third and the fourth read made this call use that call's problem, bound to
    # other data.  The replacement is simulated by a cache that changes after its third read.
    m = nde.Model.from_file(model_path("lotka_volterra.nde"))
    t, y = lv_arrays
    mine, other = nde.Data((t, y), m), nde.Data((t, 1.5 * y), m)
    theta = m.theta(START)
    want = m.loss(theta, mine)
    cache_mine = m._cache
    assert m.loss(theta, other) != want
    cache_other = m._cache
    reads = []

    class Replaced(nde.Model):
        @property
        def _cache(self):
            reads.append(1)
            return cache_mine if len(reads) <= 3 else cache_other

        @_cache.setter
        def _cache(self, value):
            pass

    m.__class__ = Replaced
    assert m.loss(theta, mine) == want


def test_one_problem_can_be_called_from_several_threads(ude, lv_arrays):
    p = ude.problem(lv_arrays)
    thetas = [ude.init_theta(s) for s in range(1, 9)]
    want = [p.loss_and_grad(th) for th in thetas]
    got = [None] * len(thetas)

    def work(k):
        for _ in range(20):
            got[k] = p.loss_and_grad(thetas[k])

    ts = [threading.Thread(target=work, args=(k,)) for k in range(len(thetas))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for (L, g), (L2, g2) in zip(want, got):
        assert L == L2 and np.array_equal(g, g2)
