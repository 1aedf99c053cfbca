"""Discovery from Python: the equations and the discovered model file of nde discover, the
candidate tables, options, errors."""
import os

import numpy as np
import pytest

import nde
from conftest import data_path, run_nde


@pytest.fixture(scope="module")
def fit_file(ude_fit, tmp_path_factory):
    p = tmp_path_factory.mktemp("discover") / "fit.h5"
    ude_fit.save(p)
    return p


@pytest.fixture(scope="module")
def found(ude_fit):
    return ude_fit.discover()


def test_the_network_is_read_off_as_the_interaction_terms(found):
    e1, e2 = found.equations
    assert (e1.net, e1.component, e1.args) == ("U", 1, "x, y")
    assert e1.expr.endswith("*x*y") and e2.expr.endswith("*x*y")
    assert float(e1.expr.split("*")[0]) == pytest.approx(-0.9, rel=0.05)
    assert float(e2.expr.split("*")[0]) == pytest.approx(0.8, rel=0.05)
    assert e1.text.startswith("\u2212") and "\u00b7x\u00b7y" in e1.text
    assert str(found).startswith("Discovered equations:\n  U[1](x, y) \u2248 ")


def test_the_discovered_model_is_the_file_nde_discover_writes(found, fit_file, tmp_path):
    out = run_nde("discover", fit_file, "-o", tmp_path / "d.nde").stdout
    assert open(tmp_path / "d.nde").read() == found.model_text
    for e in found.equations:
        assert "%s[%d](%s) \u2248 %s" % (e.net, e.component, e.args, e.text) in out
    assert found.table(0).splitlines()[0] in out
    for line in found.table(0).splitlines()[2:]:
        assert line in out
    m = found.model
    assert m.filename == "lotka_volterra_ude_discovered.nde" and not m.nets
    assert set(m.params) == {"alpha", "delta", "U1_xy", "U2_xy"}
    assert found.save(tmp_path / "again.nde") == str(tmp_path / "again.nde")


def test_the_model_file_is_written_as_nde_discover_writes_it(found, tmp_path):
    # Discovery.save wrote with open(path, "w") (which truncates the target before writing),
    # not as nde discover -o does: a directory gave IsADirectoryError rather than nde's
    # FileError.
    target = tmp_path / "d.nde"
    target.write_text("previous\n")
    os.chmod(target, 0o640)
    assert found.save(target) == str(target)
    assert target.read_text() == found.model_text and (os.stat(target).st_mode & 0o777) == 0o640
    with pytest.raises(nde.FileError, match=r"cannot write \(expected a regular file, got a "
                                            r"directory\)"):
        found.save(tmp_path)
    with pytest.raises(nde.FileError, match="directory .*no-such-dir does not exist"):
        found.save(tmp_path / "no-such-dir" / "d.nde")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.nde"]


def test_refitting_the_discovered_model_brings_back_beta_and_gamma(found):
    r = nde.fit(found.model, data_path("lotka_volterra.h5"))
    assert r.params["U1_xy"] == pytest.approx(-0.9, rel=0.01)
    assert r.params["U2_xy"] == pytest.approx(0.8, rel=0.01)


def test_candidates_list_every_model_considered_with_its_scores(found):
    cands = found.candidates(0)
    assert [c.n_terms for c in cands] == sorted(c.n_terms for c in cands)
    (chosen,) = [c for c in cands if c.chosen]
    assert set(chosen.coefficients) == {"x*y"} and np.isfinite(chosen.crit)
    assert found.terms[0] == "1" and "x*y" in found.terms
    assert found.samples.shape == (200, 2)


def test_a_network_is_explained_by_terms_in_what_it_reads(tmp_path):
    # A pendulum whose friction F(omega) is learned: F's candidates are the terms in omega.
    truth = tmp_path / "truth.nde"
    truth.write_text("state angle = 2.0, omega = 0.0\nparam g = 4.0\ndangle/dt = omega\n"
                     "domega/dt = -g*sin(angle) - 0.3*omega - 0.1*omega^3\n")
    run_nde("simulate", truth, "-o", tmp_path / "d.h5", "--t1", "10", "--points", "51",
            "--noise", "0.01", "--quiet")
    ude = tmp_path / "ude.nde"
    ude.write_text("state angle = 2.0, omega = 0.0\nparam g = 3.0 (positive)\n"
                   "net F : 1 -> 8 tanh -> 1\ndangle/dt = omega\n"
                   "domega/dt = -g*sin(angle) + F(omega)[1]\n")
    r = nde.fit(str(ude), str(tmp_path / "d.h5"), optim="lbfgs:20")
    d = r.discover(terms=["sin(angle)"])
    assert len(d.terms) == 11 and d.terms_of(0) == ["1", "omega", "omega^2", "omega^3"]
    assert all("angle" not in k for c in d.candidates(0) for k in c.coefficients)
    assert " over 4 of the 11 terms: " in d.table(0).splitlines()[0]
    r.save(tmp_path / "fit.h5")
    out = run_nde("discover", tmp_path / "fit.h5", "--terms", "sin(angle)", "-o",
                  tmp_path / "o.nde").stdout
    assert d.table(0).splitlines()[0] in out


def test_options_are_those_of_nde_discover(ude_fit, fit_file, tmp_path):
    d = ude_fit.discover(library="poly:2", terms=["sin(x)"], criterion="aic", points=120,
                         samples=50, seed=4, nets="U")
    run_nde("discover", fit_file, "--library", "poly:2", "--terms", "sin(x)", "--criterion",
            "aic", "--points", "120", "--samples", "50", "--seed", "4", "--net", "U",
            "-o", tmp_path / "o.nde", "--quiet")
    assert open(tmp_path / "o.nde").read() == d.model_text
    assert d.terms[-1] == "sin(x)" and d.samples.shape == (170, 2)
    one = ude_fit.discover(threshold=0.5)
    assert all(c.n_terms <= 10 for c in one.candidates(1))


def test_bad_options_are_errors_with_nde_s_message(ude_fit):
    with pytest.raises(nde.ArgumentError, match="^library: "):
        ude_fit.discover(library="poly:x")
    with pytest.raises(nde.Error, match="V"):
        ude_fit.discover(nets="V")
    with pytest.raises(nde.ModelError, match="expression 'nosuch\\(x\\)'"):
        ude_fit.discover(terms="nosuch(x)")
    with pytest.raises(ValueError, match="criterion: expected 'bic' or 'aic'"):
        ude_fit.discover(criterion="x")
    with pytest.raises(ValueError, match="points: expected an integer"):
        ude_fit.discover(points=1.5)
    with pytest.raises(TypeError):
        ude_fit.discover(bogus=1)


def test_an_output_index_out_of_range_names_the_outputs(found):
    # Two outputs, U[1] and U[2]: a negative index counts from the end, as for series.
    assert found.table(-1) == found.table(1)
    assert [c.text for c in found.candidates(-2)] == [c.text for c in found.candidates(0)]
    for bad in (2, 5, -3, 1.0, True, "0"):
        with pytest.raises(ValueError, match=r"^i: expected the index of a network output in "
                                             r"\[0, 2\) \(in the order of \.equations: U\[1\], "
                                             r"U\[2\]\), got "):
            found.candidates(bad)
        with pytest.raises(ValueError, match=r"^i: expected the index of a network output in "
                                             r"\[0, 2\)"):
            found.table(bad)
