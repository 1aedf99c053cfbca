"""The optional figures (matplotlib): each helper draws what it says into the axes it is given."""
import numpy as np
import pytest

from conftest import data_path

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nde.plot import plot_forecast, plot_history  # noqa: E402


def test_plot_fit_draws_the_data_and_a_fitted_curve_per_state(ude_fit, tmp_path):
    fig = ude_fit.plot()  # the data from the fit's data file
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["x data", "y data", "x fitted", "y fitted"]
    fitted = ax.get_lines()[2]
    assert fitted.get_xdata()[-1] == 5.0
    fig.savefig(tmp_path / "fit.png")
    plt.close(fig)


def test_plot_history_draws_the_loss_and_the_phase_boundaries(ude_fit):
    fig, ax = plt.subplots()
    assert plot_history(ude_fit, ax=ax) is fig
    (curve,) = [line for line in ax.get_lines() if len(line.get_xdata()) > 2]
    assert np.array_equal(curve.get_ydata(), ude_fit.history)
    assert len(ax.get_lines()) == 1 + 2  # two inner phase boundaries
    plt.close(fig)


def test_plot_forecast_draws_held_out_data_and_the_forecast(ude_fit):
    f = ude_fit.forecast(10.0)
    fig = plot_forecast(f, data=data_path("lotka_volterra_long.h5"))
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["x data", "y data", "x forecast",
                                                    "y forecast"]
    assert np.array_equal(lines[2].get_ydata(), f.y[:, 0])
    plt.close(fig)
