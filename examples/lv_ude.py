#!/usr/bin/env python3
"""The README walkthrough from Python, notebook style: fit the Lotka-Volterra universal
differential equation to arrays, read the missing terms off the network, refit the discovered
model, forecast beyond the data and plot.  Every number comes from libnde.

    python3 examples/lv_ude.py [OUTDIR]      (default OUTDIR: the current directory)

Writes OUTDIR/fit.h5 and OUTDIR/refit.h5 (the files nde fit writes: nde forecast and nde discover
read them), OUTDIR/lotka_volterra_ude_discovered.nde, and OUTDIR/lv_ude.png when matplotlib is
installed.  The test suite runs it (python/tests/test_example.py)."""
import os
import sys

import numpy as np

import nde

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "models")
out = sys.argv[1] if len(sys.argv) > 1 else "."

# %% Data: the Lotka-Volterra truth of Rackauckas et al. (2020) on t in [0, 5] with noise of 0.5 %
# of each state's mean, as data/make_data.sh makes data/lotka_volterra.h5 with nde simulate.
truth = nde.Model.from_file(os.path.join(MODELS, "lotka_volterra.nde"))
rates = {"alpha": 1.3, "beta": 0.9, "gamma": 0.8, "delta": 1.8}
t = np.linspace(0.0, 5.0, 21)
y = truth.simulate(t, params=rates, noise=5e-3, seed=2020, steps_per_interval=10)
print("data: %d times, states %s" % (t.size, ", ".join(truth.states)))

# %% Fit the UDE: alpha and delta known, a network U for the interaction terms (nde fit's
# default schedule: multiple shooting with Adam, then L-BFGS).
ude = nde.Model.from_file(os.path.join(MODELS, "lotka_volterra_ude.nde"))
fit = nde.fit(ude, (t, y), seed=1)
print(fit.summary())
fit.save(os.path.join(out, "fit.h5"))

# %% Discover: U[1] ~ -beta*x*y, U[2] ~ +gamma*x*y.
found = fit.discover()
print(found)
path = found.save(os.path.join(out, found.default_path))

# %% Refit the discovered model: its coefficients are ordinary parameters now.
refit = nde.fit(found.model, (t, y))
refit.save(os.path.join(out, "refit.h5"))
print("refit: %s" % ", ".join("%s = %.4f" % kv for kv in refit.params.items()))

# %% Forecast to t = 10, twice the fitted window, against the truth.
t_long = np.linspace(0.0, 10.0, 101)
y_long = truth.simulate(t_long, params=rates, steps_per_interval=10)
for name, r in (("UDE", fit), ("discovered", refit)):
    print("forecast RMSE on [0, 10], %s: %.3g" % (name, r.score((t_long, y_long)).rmse))
ahead = refit.forecast(10.0)

# %% Plot (optional).
try:
    import matplotlib
    matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no figure")
else:
    from nde.plot import plot_forecast, plot_history
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    plot_forecast(ahead, data=(t_long, y_long), ax=a)
    a.set_title("discovered model, fitted on [0, 5]")
    plot_history(fit, ax=b)
    b.set_title("UDE fit: loss per iteration")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "lv_ude.png"), dpi=100)
    print("figure: %s" % os.path.join(out, "lv_ude.png"))
