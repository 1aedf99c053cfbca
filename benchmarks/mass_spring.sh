#!/bin/sh
# The mass-spring acceptance of issue 14 at the sizes of Greydanus et al. (2019): fit the plain
# neural ODE (models/mass_spring_node.nde, 2 -> 200 tanh -> 200 tanh -> 2) and the Hamiltonian
# network (models/mass_spring_hnn.nde, H: 2 -> 200 tanh -> 200 tanh -> 1) to the 25 training
# trajectories of data/mass_spring.h5 with nde fit's default schedule (rk4, one step per
# observation interval), then score both on the 25 held-out trajectories against the exact
# solution (data/mass_spring.c): the energy MSE (of H = q^2 + p^2 along the prediction against
# the truth) and the trajectory MSE, integrated from the first observed state, from the true
# initial state, and from the true initial state up to t = 30 (ten times the training window),
# with the fit's rk4 and with implicit-midpoint (h = 0.01).  Prints one table; the paper's
# numbers (derivative fits, Table 1): energy baseline 1.7e-1, HNN 3.8e-4.  Takes about an hour
# on one core (the HNN's fit most of it).  Also runs nde discover on H (polynomial library).
#
#   benchmarks/mass_spring.sh BUILD_DIR [OUT_DIR]
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: benchmarks/mass_spring.sh BUILD_DIR [OUT_DIR]" >&2
  exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
out=${2:-$src/build-mass-spring}
mkdir -p "$out"
nde=$build/src/cli/nde
ms=$build/tests/cli/mass_spring
[ -x "$nde" ] && [ -x "$ms" ] || { echo "mass_spring.sh: build $build first" >&2; exit 2; }
export OPENBLAS_NUM_THREADS=1
cd "$src"
test=data/mass_spring_test.h5
truth=data/mass_spring_test_truth.h5
for m in node hnn; do
  [ -f "$out/$m.h5" ] || "$nde" fit models/mass_spring_$m.nde data/mass_spring.h5 -o "$out/$m.h5" \
    --steps-per-interval 1 > "$out/$m.log" 2>&1
done
get() { awk -v k="$1" '$1 == k { print $2 }'; }
printf '%-6s %-34s %12s %12s %14s\n' model "start, horizon, solver" "energy MSE" "traj MSE" "learned drift"
for m in node hnn; do
  for cfg in "observed;;" "true;;" "true;--t1 30 --points 301;" "true;--t1 30 --points 301;--solver implicit-midpoint --dt 0.01"; do
    from=${cfg%%;*} rest=${cfg#*;} span=${rest%%;*} solver=${rest#*;}
    # shellcheck disable=SC2086
    "$ms" score "$out/$m.h5" "$test" "$truth" --from "$from" $span $solver > "$out/score"
    label="$from, t in [0, $([ -n "$span" ] && echo 30 || echo 3)], $([ -n "$solver" ] && echo implicit-midpoint || echo rk4)"
    printf '%-6s %-34s %12s %12s %14s\n' $m "$label" "$(get energy_mse < "$out/score")" \
      "$(get traj_mse < "$out/score")" "$(get learned_drift < "$out/score")"
  done
done
echo "paper (Greydanus et al. 2019, derivative fits): energy MSE baseline 1.7e-1, HNN 3.8e-4"
for m in node hnn; do
  tail -n 4 "$out/$m.log" | sed "s/^/$m fit: /"
done
"$nde" discover "$out/hnn.h5" --library poly:2 -o "$out/hnn_discovered.nde" --quiet
