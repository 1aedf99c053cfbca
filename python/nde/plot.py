"""Optional figures with matplotlib (Debian python3-matplotlib): the data and fitted curves of a
fit, its loss history, and a forecast against held-out data, with the band of an ensemble or of
the standard errors as a translucent area (as nde fit --plot and nde forecast --plot draw them).
Each function draws into the given axes (or a new figure) and returns the figure; nothing here
computes anything nde does not."""
import os

import numpy as np


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("nde.plot needs matplotlib (Debian: apt-get install "
                          "python3-matplotlib; pip: pip install matplotlib)") from None
    return plt


def _axes(ax, n=1):
    plt = _plt()
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=(7, 4) if n == 1 else (7, 3 * n))
    return fig, ax


def _band(ax, trajectory):
    """The band of a trajectory (when it has one) as a translucent area per state."""
    if trajectory.lower is None:
        return
    kind = "ensemble" if trajectory.band_kind == "members" else "linearised"
    for j, c in enumerate(trajectory.states):
        ax.fill_between(trajectory.t, trajectory.lower[:, j], trajectory.upper[:, j],
                        color="C%d" % j, alpha=0.25, lw=0,
                        label="%s %g%% band (%s)" % (c, 100 * trajectory.band_level, kind))


def plot_fit(result, data=None, series=0, ax=None, fine=True, band=None):
    """The data (markers; default: the fit's data file when it still exists) and the fitted
    curves of one series, one colour per state; band (as Result.integrate: None a 95 % band
    when the result has ensemble members or standard errors, a level, or False) drawn as a
    translucent area around them."""
    from .data import as_data
    fig, ax = _axes(ax)
    m = result.model
    k = result._series_index(series)
    s = result.series[k]
    if data is None:
        f = result.provenance.get("data_file", "")
        if f and os.path.exists(f.split(":/")[0]):
            data = f
    if data is not None:
        views = as_data(data, m).series
        v = next((x for x in views if x.name == s.name), views[min(k, len(views) - 1)])
        for j, c in enumerate(m.states):
            ax.plot(v.t, v.y[:, j], "o", ms=3, color="C%d" % j, label="%s data" % c)
    if fine and result.step > 0:
        tr = result.forecast(s.t[-1], series=k, band=band)
    else:
        tr = result.integrate(s.t, series=k, band=band)
    t, y = tr.t, tr.y
    _band(ax, tr)
    for j, c in enumerate(m.states):
        ax.plot(t, y[:, j], "-", color="C%d" % j, label="%s fitted" % c)
    ax.set_xlabel("t")
    ax.set_title("%s: series %s (%s)" % (os.path.basename(m.filename), s.name, result.status))
    ax.legend(fontsize="small")
    return fig


def plot_history(result, ax=None):
    """The loss per iteration (log scale), with the phase boundaries."""
    fig, ax = _axes(ax)
    h = result.history
    ax.semilogy(np.arange(1, h.size + 1), h, lw=1)
    for e in result.phase_ends:
        if 0 < e < h.size:
            ax.axvline(e, color="0.6", ls=":", lw=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("objective of the phase")
    return fig


def plot_forecast(trajectory, data=None, ax=None):
    """A forecast (nde.Trajectory) with optional held-out data (path, arrays or nde.Data), and
    its band (Trajectory.lower and .upper) as a translucent area when it has one."""
    from .data import as_data
    fig, ax = _axes(ax)
    m = trajectory._result.model
    _band(ax, trajectory)
    if data is not None:
        for v in as_data(data, m).series:
            for j, c in enumerate(m.states):
                ax.plot(v.t, v.y[:, j], "o", ms=3, color="C%d" % j, label="%s data" % c)
    for j, c in enumerate(m.states):
        ax.plot(trajectory.t, trajectory.y[:, j], "-", color="C%d" % j, label="%s forecast" % c)
    ax.set_xlabel("t")
    ax.legend(fontsize="small")
    return fig
