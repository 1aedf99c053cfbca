#!/usr/bin/env bash
# The mass-spring task of Greydanus et al. (2019) end to end (issue 14), the README's commands: a
# Hamiltonian network (models/hnn.nde: dq/dt = grad(H(q, p), p), dp/dt = -grad(H(q, p), q)) and
# a plain neural ODE of the same size (models/node.nde) fitted to the 25 training trajectories
# of data/mass_spring.h5, scored on the 25 held-out ones against the exact solution
# (data/mass_spring.c):
#   - from the true initial states, the HNN's energy error over ten times the training window
#     is at least 10x smaller than the plain network's (measured 4.8e-4 against 3.7e-2);
#   - implicit-midpoint keeps the learned energy of the trained HNN: the largest change of H
#     over [0, 300] is below 1e-3 of H's spread and no larger than over [0, 30] (bounded, no
#     drift);
#   - nde discover on H with the degree-2 polynomial library reads off q^2 + p^2 (up to a
#     constant and a scale: the two coefficients within 10 % of each other, any q*p term below
#     a tenth of them);
#   - nde forecast scores the held-out data with implicit-midpoint.
# usage: mass_spring.sh NDE MASS_SPRING SOURCE_ROOT
set -u
NDE=$1 MS=$2 ROOT=$3
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
NDE=$(abs "$NDE") MS=$(abs "$MS")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$ROOT" || exit 1
TRAIN=data/mass_spring.h5 TEST=data/mass_spring_test.h5 TRUTH=data/mass_spring_test_truth.h5
score() { local f=$1; shift; "$MS" score "$f" "$TEST" "$TRUTH" "$@"; }
get() { awk -v k="$1" '$1 == k { print $2 }'; }

# The README's commands.
"$NDE" fit models/hnn.nde $TRAIN -o "$T/hnn.h5" --steps-per-interval 1 \
  --optim shoot:adam:400@0.02,lbfgs:200 --quiet || fail "fit hnn"
"$NDE" fit models/node.nde $TRAIN -o "$T/node.h5" --steps-per-interval 1 \
  --optim shoot:adam:400@0.02,lbfgs:200 --quiet || fail "fit node"
"$NDE" forecast "$T/hnn.h5" --data $TEST -o "$T/hnn_test.h5" --solver implicit-midpoint --dt 0.01 \
  --quiet || fail "forecast hnn"
"$NDE" discover "$T/hnn.h5" --library poly:2 -o "$T/hnn_discovered.nde" --quiet > "$T/disc" \
  || fail "discover"
cat "$T/disc"

# Energy and trajectory errors against the exact solution.
for m in hnn node; do
  for from in observed true; do
    score "$T/$m.h5" --from $from > "$T/$m.$from" || fail "score $m from $from"
  done
  score "$T/$m.h5" --from true --t1 30 --points 301 > "$T/$m.long" || fail "score $m long"
  echo "$m: energy MSE $(get energy_mse < "$T/$m.observed") (from the observed start)," \
    "$(get energy_mse < "$T/$m.true") (true start), $(get energy_mse < "$T/$m.long") (true start," \
    "t up to 30); trajectory MSE $(get traj_mse < "$T/$m.observed"), $(get traj_mse < "$T/$m.true")," \
    "$(get traj_mse < "$T/$m.long")"
done
awk -v h="$(get energy_mse < "$T/hnn.long")" -v n="$(get energy_mse < "$T/node.long")" \
  'BEGIN { exit !(h > 0 && n >= 10 * h) }' || fail "the HNN's long-horizon energy error is not 10x below the plain network's"

# implicit-midpoint on the trained HNN: the learned energy stays put.
score "$T/hnn.h5" --from true --t1 30 --points 301 --solver implicit-midpoint --dt 0.01 > "$T/im30" \
  || fail "implicit-midpoint to 30"
score "$T/hnn.h5" --from true --t1 300 --points 3001 --solver implicit-midpoint --dt 0.01 > "$T/im300" \
  || fail "implicit-midpoint to 300"
d30=$(get learned_drift < "$T/im30") d300=$(get learned_drift < "$T/im300")
echo "implicit-midpoint, h = 0.01: largest change of the learned H $d30 on [0, 30], $d300 on [0, 300] (of its spread)"
awk -v a="$d30" -v b="$d300" 'BEGIN { exit !(b < 1e-3 && b <= 2 * a) }' \
  || fail "implicit-midpoint does not keep the learned energy"

# Discovery reads off q^2 + p^2.
coef() { awk -v k="$1" '$1 == "param" && $2 == k { print $4 }' "$T/hnn_discovered.nde"; }
q2=$(coef H1_q2_call1) p2=$(coef H1_p2_call1) qp=$(coef H1_qp_call1)
[ -n "$q2" ] && [ -n "$p2" ] || fail "discovery lacks q^2 or p^2: $(cat "$T/hnn_discovered.nde")"
awk -v a="$q2" -v b="$p2" -v c="${qp:-0}" \
  'BEGIN { r = a / b; exit !(r > 0.9 && r < 1.1 && (c < 0 ? -c : c) < 0.1 * a) }' \
  || fail "discovered H is not q^2 + p^2: q^2 $q2, p^2 $p2, q*p ${qp:-0}"
echo "discovered H: c + $q2 q^2 + $p2 p^2${qp:+ + $qp q p}"
