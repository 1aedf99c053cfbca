#!/usr/bin/env bash
# End-to-end tests of `nde discover` (and the README's refit step): on the shipped data, after the
# README's UDE fit, discovery keeps exactly the x*y term in each output of U with coefficients
# within 10 % of -0.9 and +0.8, the refit of the discovered model recovers beta and gamma within
# 2 %, the result holds for several fit seeds, and bad input exits 2 with one message.
# usage: discover.sh NDE H5CHECK SOURCE_ROOT CASE
set -u
NDE=$1 H5=$2 ROOT=$3 CASE=$4
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
NDE=$(abs "$NDE") H5=$(abs "$H5")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
DATA=$ROOT/data/lotka_volterra.h5
UDE=$ROOT/models/lotka_volterra_ude.nde
fail() { echo "FAIL: $*" >&2; exit 1; }
within() { # within NAME VALUE TRUTH REL
  awk -v n="$1" -v v="$2" -v t="$3" -v r="$4" 'BEGIN {
    e = (v - t) / t; printf "%s = %.6f (truth %s, error %+.2f%%)\n", n, v, t, 100*e;
    exit !(e < r && e > -r) }'
}
# The discovered model must hold exactly the two x*y coefficients as parameters.
check_terms() { # check_terms MODEL.nde REL
  params=$(grep -E '^param U' "$1" | awk '{print $2}' | tr '\n' ' ')
  [ "$params" = "U1_xy U2_xy " ] || fail "$1: expected exactly U1_xy and U2_xy, got: $params"
  grep -q '^u = \[U1_xy\*(x\*y), U2_xy\*(x\*y)\]$' "$1" || fail "$1: the call is not replaced"
  ! grep -q '^net U' "$1" || fail "$1: the net declaration is still there"
  within U1_xy "$(awk '/^param U1_xy/ {print $4}' "$1")" -0.9 "$2" || fail "U1_xy not within $2"
  within U2_xy "$(awk '/^param U2_xy/ {print $4}' "$1")" 0.8 "$2" || fail "U2_xy not within $2"
}

case $CASE in
discover_keeps_exactly_the_xy_terms)
  # The README walkthrough, command for command.
  cd "$T" || exit 1
  "$NDE" fit "$UDE" "$DATA" -o fit.h5 --quiet || fail "nde fit exited $?"
  "$NDE" discover fit.h5 > out.txt || fail "nde discover exited $?"
  cat out.txt
  [ -f lotka_volterra_ude_discovered.nde ] || fail "MODEL_discovered.nde not written next to fit.h5"
  grep -q '^  U\[1\](x, y) ≈ −0\.9[0-9]*·x·y$' out.txt || fail "U[1] equation not printed as -0.9..·x·y"
  grep -q '^  U\[2\](x, y) ≈ 0\.8[0-9]*·x·y$' out.txt || fail "U[2] equation not printed as 0.8..·x·y"
  check_terms lotka_volterra_ude_discovered.nde 0.10
  ;;
refit_recovers_beta_and_gamma)
  cd "$T" || exit 1
  "$NDE" fit "$UDE" "$DATA" -o fit.h5 --quiet || fail "nde fit exited $?"
  "$NDE" discover fit.h5 --quiet > /dev/null || fail "nde discover exited $?"
  "$NDE" fit lotka_volterra_ude_discovered.nde "$DATA" -o refit.h5 --quiet || fail "refit exited $?"
  within beta "$(awk 'BEGIN{print -('"$("$H5" get refit.h5 /params/values/U1_xy)"')}')" 0.9 0.02 \
    || fail "beta not within 2%"
  within gamma "$("$H5" get refit.h5 /params/values/U2_xy)" 0.8 0.02 || fail "gamma not within 2%"
  # README: the refit sits above the noise level from the noisy first row, and says so; with
  # the initial states learned it reaches the noise level.
  "$NDE" fit lotka_volterra_ude_discovered.nde "$DATA" -o refit.h5 > out.txt || fail "refit exited $?"
  q=$("$H5" attr refit.h5 /params/kept noise_ratio)
  echo "refit: loss / noise loss = $q"
  awk -v q="$q" 'BEGIN { exit !(q > 1.25 && q < 4) }' || fail "refit ratio $q not in (1.25, 4)"
  grep -q "^warning: .* the initial states are not fitted: each series starts from its first observed row" out.txt \
    || fail "no word on the noisy start"
  "$NDE" fit lotka_volterra_ude_discovered.nde "$DATA" -o refit0.h5 --learn-u0 > out.txt \
    || fail "refit --learn-u0 exited $?"
  q=$("$H5" attr refit0.h5 /params/kept noise_ratio)
  echo "refit with --learn-u0: loss / noise loss = $q"
  awk -v q="$q" 'BEGIN { exit !(q < 1.25) }' || fail "refit --learn-u0 ratio $q"
  grep -q "^warning" out.txt && fail "a warning with --learn-u0"
  ;;
discovery_holds_for_several_fit_seeds)
  # Seeds 1-8 of the UDE fit: at least 7 of 8 must give exactly x*y.  (Measured: 8 of 8 in the
  # optimised build, 9 of 10 over seeds 1-10; a build with other floating-point code, e.g. the
  # sanitizer build, reaches other networks for some seeds and 7 of 8.)
  good=0
  for s in 1 2 3 4 5 6 7 8; do
    "$NDE" fit "$UDE" "$DATA" -o "$T/f$s.h5" --seed $s --quiet || fail "fit seed $s exited $?"
    "$NDE" discover "$T/f$s.h5" --quiet -o "$T/d$s.nde" > /dev/null || fail "discover seed $s"
    echo "seed $s:"
    if (check_terms "$T/d$s.nde" 0.10); then good=$((good + 1)); fi
  done
  echo "exactly x*y within 10 %: $good of 8 seeds"
  [ $good -ge 7 ] || fail "discovery right for only $good of 8 seeds"
  ;;
the_discovered_model_carries_the_fitted_parameters)
  # The coefficients are read off a net trained together with alpha (learnable here, from 1.0),
  # and the candidates are scored at the fitted alpha: the discovered model must carry that
  # value, not the 1.0 the source declares (it did, and its trajectories were not the scored
  # ones); the fixed delta keeps its declaration.
  sed 's/^param alpha = 1.3 (fixed)$/param alpha = 1.0 (positive)/' "$UDE" > "$T/ude_alpha.nde"
  grep -q '^param alpha = 1.0 (positive)$' "$T/ude_alpha.nde" || fail "sed did not apply"
  "$NDE" fit "$T/ude_alpha.nde" "$DATA" -o "$T/fit.h5" --quiet --optim shoot:adam:300@0.02,lbfgs:100 \
    || fail "nde fit exited $?"
  alpha=$("$H5" get "$T/fit.h5" /params/values/alpha)
  "$NDE" discover "$T/fit.h5" --threshold 0.3 -o "$T/d.nde" --quiet > /dev/null \
    || fail "discover exited $?"
  cat "$T/d.nde"
  written=$(awk '/^param alpha =/ {print $4}' "$T/d.nde")
  awk -v a="$alpha" -v w="$written" 'BEGIN { printf "fitted alpha %s, written %s\n", a, w;
    exit !(a == w && a != 1.0) }' || fail "the discovered model does not carry the fitted alpha"
  grep -q '^param alpha = [0-9.e+-]* (positive)$' "$T/d.nde" || fail "alpha's flags lost"
  grep -q '^param delta = 1.8 (fixed)$' "$T/d.nde" || fail "the fixed delta changed"
  grep -q '^# The other learnable parameters are written at their fitted values\.$' "$T/d.nde" \
    || fail "the file does not say so"
  "$NDE" check "$T/d.nde" > /dev/null || fail "the discovered model does not check"
  # A bounded alpha driven to its bound (the logit saturates: alpha = 0.5 exactly) cannot be
  # written as its value, which the model would refuse: it keeps its declaration, and the
  # discovered model still loads.
  sed 's/^param alpha = 1.3 (fixed)$/param alpha = 1.0 (in [0.5, 2])/' "$UDE" > "$T/ude_b.nde"
  "$NDE" fit "$T/ude_b.nde" "$DATA" -o "$T/fit_b.h5" --quiet --optim adam:100@20 --keep-last \
    || fail "nde fit (bounded) exited $?"
  [ "$("$H5" get "$T/fit_b.h5" /params/values/alpha)" = 0.5 ] || fail "alpha did not reach its bound"
  "$NDE" discover "$T/fit_b.h5" --threshold 0.3 -o "$T/d_b.nde" --quiet > /dev/null \
    || fail "discover (bounded) exited $?"
  grep -q '^param alpha = 1.0 (in \[0.5, 2\])$' "$T/d_b.nde" || fail "the saturated alpha was written"
  ;;
user_terms_and_fixed_threshold)
  "$NDE" fit "$UDE" "$DATA" -o "$T/fit.h5" --quiet || fail "nde fit exited $?"
  "$NDE" discover "$T/fit.h5" --library poly:1 --terms 'x*y; sin(x)' --threshold 0.3 \
    -o "$T/d.nde" > "$T/out.txt" || fail "discover exited $?"
  cat "$T/out.txt"
  grep -q 'fixed threshold' "$T/out.txt" || fail "no fixed threshold reported"
  grep -q 'U\[1\](x, y) ≈ −0\.9[0-9]*·x·y$' "$T/out.txt" || fail "user term x*y not found alone"
  ;;
a_network_is_explained_by_terms_in_what_it_reads)
  # A damped pendulum whose friction F(omega) is learned: the network sees omega alone, so its
  # candidate terms are those in omega (and the constant); a term in the angle, from the library
  # or the user, could only copy a correlation along the orbits.  A short fit is enough.
  cd "$T" || exit 1
  printf 'state angle = 2.0, omega = 0.0\nparam g_over_L = 4.0\ndangle/dt = omega\ndomega/dt = -g_over_L*sin(angle) - 0.3*omega - 0.1*omega^3\n' > truth.nde
  printf 'name,seed,angle,omega\nswing1,1,2.0,0.0\nswing2,2,1.0,1.5\n' > series.csv
  "$NDE" simulate truth.nde -o d.h5 --t1 10 --points 51 --noise 0.01 --series series.csv --quiet \
    || fail "simulate exited $?"
  "$NDE" fit "$ROOT/models/pendulum.nde" d.h5 -o fit.h5 --optim lbfgs:30 --quiet || fail "fit exited $?"
  "$NDE" discover fit.h5 --terms 'sin(angle); omega*abs(omega)' > out.txt || fail "discover exited $?"
  cat out.txt
  grep -q "12 candidate terms (poly:3; " out.txt || fail "the summary does not count the 12 terms"
  grep -q '^F\[1\](omega), line [0-9]*: the candidate models (Pareto table) over 5 of the 12 terms: those in the variables its arguments depend on$' out.txt \
    || fail "the table does not say it is over the 5 terms in omega"
  awk '$1 ~ /^[0-9]+$/ && NF >= 7' out.txt | grep -q angle && fail "a candidate in the angle"
  awk '$1 ~ /^[0-9]+$/ && NF >= 7' out.txt | grep -q 'omega·abs(omega)\|omega\*abs(omega)' \
    || fail "the user term in omega is not a candidate"
  # A model in which the net reads every state keeps the whole library (LV: U(x, y)).
  "$NDE" fit "$UDE" "$DATA" -o lv.h5 --optim adam:5 --quiet || fail "lv fit"
  "$NDE" discover lv.h5 --library poly:2 > lv.txt || fail "lv discover"
  grep -q 'over [0-9]* of the' lv.txt && fail "U(x, y) lost candidates"
  ;;
bad_input_exits_2_with_a_message)
  expect() { # expect CODE PATTERN -- command...
    code=$1 pat=$2; shift 3
    "$@" > "$T/o.txt" 2> "$T/e.txt"; rc=$?
    [ $rc -eq "$code" ] || fail "exit $rc, expected $code: $*"
    grep -q -- "$pat" "$T/e.txt" || { cat "$T/e.txt"; fail "message '$pat' missing: $*"; }
  }
  expect 2 "no-such.h5" -- "$NDE" discover "$T/no-such.h5"
  expect 2 "expected a result file of nde fit" -- "$NDE" discover "$DATA"
  "$NDE" fit "$UDE" "$DATA" -o "$T/fit.h5" --quiet --optim adam:5 || fail "short fit"
  expect 2 "'V' is not a net of the model" -- "$NDE" discover "$T/fit.h5" --net V
  expect 2 "unknown item 'tan'" -- "$NDE" discover "$T/fit.h5" --library poly:2,tan
  expect 2 "expression 'x\*z', column 3: unknown name 'z'" -- "$NDE" discover "$T/fit.h5" --terms 'x*z'
  expect 2 "expected bic or aic" -- "$NDE" discover "$T/fit.h5" --criterion mdl
  expect 2 "--points: expected a whole number in \\[2, 1000000\\], got .1." -- "$NDE" discover "$T/fit.h5" --points 1
  ls "$T"/*discovered* 2>/dev/null && fail "a discovered model was written on bad input"
  # A model without networks: nothing to discover.
  "$NDE" fit "$ROOT/models/lotka_volterra.nde" "$DATA" -o "$T/lv.h5" --quiet --optim adam:5 || fail "lv fit"
  expect 2 "calls no network" -- "$NDE" discover "$T/lv.h5"
  # The discovered model is text: a data-file name for it is refused.
  expect 2 "the discovered model is a model file (text), not data" -- "$NDE" discover "$T/fit.h5" -o "$T/d.h5"
  [ -e "$T/d.h5" ] && fail "discover -o d.h5 wrote the file"
  # A call with no term in what it reads (noconst, terms in other states only).
  printf 'state x = 1, y = 2\nnet U : 1 -> 3 tanh -> 1\ndx/dt = -y\ndy/dt = U(x)[1]\n' > "$T/one.nde"
  "$NDE" fit "$T/one.nde" "$DATA" -o "$T/one.h5" --quiet --optim adam:3 || fail "one fit"
  expect 2 "no candidate term for U\[1\] (line 4): every term is in a variable its arguments do not depend on" \
    -- "$NDE" discover "$T/one.h5" --library poly:0,noconst --terms 'y; y^2'
  # The model file is written like every output: never over an input or a device, through a
  # symbolic link to its target keeping the target's mode, and nothing when the directory is missing.
  expect 2 "is also an input" -- "$NDE" discover "$T/fit.h5" -o "$T/fit.h5"
  expect 4 "expected a regular file, got a character device" -- "$NDE" discover "$T/fit.h5" -o /dev/null
  [ -c /dev/null ] || fail "/dev/null is no longer a device"
  expect 4 "does not exist" -- "$NDE" discover "$T/fit.h5" -o "$T/no/dir/m.nde"
  echo "old" > "$T/target.nde" && chmod 600 "$T/target.nde" && ln -s target.nde "$T/link.nde"
  "$NDE" discover "$T/fit.h5" --quiet -o "$T/link.nde" > /dev/null || fail "discover through a link"
  [ -L "$T/link.nde" ] || fail "the link was replaced"
  grep -q '^# Discovered by nde discover' "$T/target.nde" || fail "the link's target was not written"
  [ "$(stat -c %a "$T/target.nde")" = 600 ] || fail "mode $(stat -c %a "$T/target.nde"), expected 600"
  ls -a "$T" | grep -q '^\.nde-' && fail "a temporary file was left"
  ;;
*) fail "unknown case $CASE" ;;
esac
echo "ok: $CASE"
