#!/bin/sh
# Make the data sets in data/ with `nde simulate`.  Run from the repository root:
#   data/make_data.sh BUILD_DIR [OUT_DIR]
# BUILD_DIR holds the built nde (BUILD_DIR/src/cli/nde); OUT_DIR defaults to data/.  The same
# nde version, seed and flags give the same /t and /y bit for bit (tests/cli/make_data.sh checks).
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: data/make_data.sh BUILD_DIR [OUT_DIR]" >&2
  exit 2
fi
nde=$1/src/cli/nde
out=${2:-data}
[ -x "$nde" ] || { echo "make_data.sh: $nde not found (build it first: ninja -C $1)" >&2; exit 2; }
[ -f models/lotka_volterra.nde ] || { echo "make_data.sh: run from the repository root" >&2; exit 2; }
mkdir -p "$out"

# Lotka-Volterra truth of Rackauckas et al. (2020): alpha=1.3 beta=0.9 gamma=0.8 delta=1.8 from
# u0 = (0.44249296, 4.6280594), t in [0, 5] every 0.25 (21 points), Gaussian noise with std
# 5e-3 x mean(|state|) per state.  RK4 with 10 steps per output interval (h = 0.025).
"$nde" simulate models/lotka_volterra.nde -o "$out/lotka_volterra.h5" \
  --param alpha=1.3,beta=0.9,gamma=0.8,delta=1.8 --u0 x=0.44249296,y=4.6280594 \
  --t0 0 --t1 5 --dt-out 0.25 --noise 5e-3 --seed 2020 --solver rk4 --steps-per-interval 10

# The same system and noise recipe on t in [0, 10] (41 points) for forecasts beyond [0, 5].  The
# noise std is 5e-3 x the mean over [0, 10], so values differ slightly from the file above.
"$nde" simulate models/lotka_volterra.nde -o "$out/lotka_volterra_long.h5" \
  --param alpha=1.3,beta=0.9,gamma=0.8,delta=1.8 --u0 x=0.44249296,y=4.6280594 \
  --t0 0 --t1 10 --dt-out 0.25 --noise 5e-3 --seed 2020 --solver rk4 --steps-per-interval 10

# The spiral of torchdiffeq's ode_demo: dy/dt = (y^3) A, A = [[-0.1, 2], [-2, -0.1]], y0 = (2, 0),
# 1000 equally spaced points on [0, 25] (as torch.linspace), no noise.  RK4 with 10 steps per
# output interval (h = 0.0025).
"$nde" simulate models/spiral_truth.nde -o "$out/spiral.h5" \
  --t0 0 --t1 25 --points 1000 --solver rk4 --steps-per-interval 10

# Two cascaded tanks (models/tanks_truth.nde), three experiments with three pumps of different
# gains, each driven by its own voltage sequence (data/tanks_inputs/pumpX.csv; the voltage
# switches at observation times, every 2 s), only the lower tank's level h2 measured, t in
# [0, 120] every 2 s (61 points), Gaussian noise with std 1e-2 x mean(h2) per experiment, seeds
# 11-13; merged into one batch with groups /pumpA, /pumpB, /pumpC.  The held-out experiment
# repeats pump B (same gain) with a new voltage sequence (seed 14), in its own file as group
# /pumpB so that a forecast takes pump B's fitted gain.  RK4 with 10 steps per output interval.
parts=$(mktemp -d)
trap 'rm -rf "$parts"' EXIT
tank() { # tank NAME GAIN SEED INPUTS
  "$nde" simulate models/tanks_truth.nde -o "$parts/$1.h5" --quiet \
    --inputs "data/tanks_inputs/$4.csv" --param gain="$2",k2=0.5 --u0 h1=5,h2=3 \
    --t0 0 --t1 120 --dt-out 2 --columns h2 --noise 1e-2 --seed "$3" \
    --solver rk4 --steps-per-interval 10
}
tank pumpA 0.30 11 pumpA
tank pumpB 0.36 12 pumpB
tank pumpC 0.42 13 pumpC
tank heldout 0.36 14 pumpB_heldout
"$nde" merge -o "$out/tanks.h5" "$parts/pumpA.h5" "$parts/pumpB.h5" "$parts/pumpC.h5" \
  --names pumpA,pumpB,pumpC --quiet
"$nde" merge -o "$out/tanks_heldout.h5" "$parts/heldout.h5" --names pumpB --quiet

# The mass-spring task of Greydanus et al. (2019), "Hamiltonian Neural Networks": H = q^2 + p^2,
# 50 trajectories of 30 points on [0, 3] starting at radius r ~ U(0.1, 1), noise std 0.05; the
# first 25 to train on (mass_spring.h5), the last 25 held out (mass_spring_test.h5) and the same
# without noise (mass_spring_test_truth.h5).  Exact solutions, made by the C helper
# data/mass_spring.c (built as BUILD_DIR/tests/cli/mass_spring), seed 0.
ms=$1/tests/cli/mass_spring
[ -x "$ms" ] || { echo "make_data.sh: $ms not found (build it first: ninja -C $1)" >&2; exit 2; }
"$ms" make 0 "$out/mass_spring.h5" "$out/mass_spring_test.h5" "$out/mass_spring_test_truth.h5"
