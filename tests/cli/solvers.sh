#!/usr/bin/env bash
# The adaptive and stiff solvers from the command line: Robertson's stiff system (cvode-bdf matches
# the reference, dopri5 stops with the stiffness message and exit 3), a blow-up stopped by every
# solver with a reason, and nde grad agreeing across solver x gradient-method pairs.
# usage: solvers.sh NDE H5CHECK SOURCE_ROOT CASE
set -u
NDE=$1 H5=$2 ROOT=$3 CASE=$4
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

case $CASE in
robertson_is_solved_by_bdf_and_stops_dopri5)
  "$NDE" simulate "$ROOT/models/robertson.nde" -o "$T/r.h5" --t0 0 --t1 40 --points 2 \
    --solver cvode-bdf --rtol 1e-8 --atol 1e-12 >/dev/null || fail "cvode-bdf exited $?"
  # Reference at t = 40 (Hairer & Wanner; the CVODES example cvRoberts_dns).
  "$H5" get "$T/r.h5" /y | tail -3 | paste - <(printf '0.7158270687\n9.185534764e-06\n0.2841637457\n') |
    awk '{ e = ($1 - $2) / $2; if (e < 0) e = -e; printf "%.10g vs %.10g: %.2e\n", $1, $2, e;
           if (e > 1e-4) bad = 1 } END { exit bad }' || fail "cvode-bdf misses the reference"
  "$NDE" simulate "$ROOT/models/robertson.nde" -o "$T/d.h5" --t0 0 --t1 40 --points 2 \
    --solver dopri5 2>"$T/err"; rc=$?
  [ $rc -eq 3 ] || fail "dopri5 on Robertson exited $rc, expected 3"
  grep -q "stopped at t = .* after .* steps.*stiff.*--solver cvode-bdf" "$T/err" \
    || { cat "$T/err"; fail "no stiffness message"; }
  [ -e "$T/d.h5" ] && fail "a stopped simulation wrote a file"
  cat "$T/err"
  ;;
blow_up_stops_every_solver_with_a_reason)
  printf 'state y = 1\ndy/dt = y^2\n' > "$T/blow.nde"
  # Adaptive solvers stop just before the singularity at t = 1 (within their tolerance).  A
  # fixed-step method follows its own discrete solution, which stays finite a few steps past
  # t = 1 (Euler at h = 1e-4 overflows at t = 1.0018): it may stop up to 20 steps late.
  for s in euler rk4 dopri5 cvode-adams cvode-bdf; do
    step=() late=1e-5; case $s in euler|rk4) step=(--dt 1e-4) late=2e-3;; esac
    timeout 20 "$NDE" simulate "$T/blow.nde" -o "$T/b.h5" --t0 0 --t1 2 --points 3 --solver $s \
      "${step[@]}" 2>"$T/err"; rc=$?
    [ $rc -eq 3 ] || { cat "$T/err"; fail "$s: exit $rc, expected 3"; }
    t=$(sed -n 's/.*stopped at t = \([0-9.e+-]*\).*/\1/p' "$T/err")
    awk -v t="$t" -v l="$late" 'BEGIN { exit !(t >= 0.99 && t <= 1.0 + l) }' \
      || { cat "$T/err"; fail "$s stopped at t = $t, expected just before 1"; }
    echo "$s: $(cat "$T/err")"
  done
  # A fixed step cannot retry a derivative that is not finite: the stop names its component, as
  # README promises ("names the time, the state and the reason"); it named none.
  printf 'state x = 1, y = 1\ndx/dt = -x\ndy/dt = y^2\n' > "$T/blow2.nde"
  for s in euler rk4; do
    "$NDE" simulate "$T/blow2.nde" -o "$T/b.h5" --t0 0 --t1 2 --points 3 --solver $s --dt 1e-4 \
      2>"$T/err"; rc=$?
    [ $rc -eq 3 ] || { cat "$T/err"; fail "$s: exit $rc, expected 3"; }
    grep -q "solver $s stopped at t = 1\.00[0-9]*, dy/dt not finite, after" "$T/err" \
      || { cat "$T/err"; fail "$s: the stop does not name dy/dt"; }
  done
  ;;
grad_agrees_across_solvers_and_methods)
  DATA=$ROOT/data/lotka_volterra.h5 UDE=$ROOT/models/lotka_volterra_ude.nde
  "$NDE" grad "$UDE" "$DATA" --solver dopri5 --rtol 1e-11 --atol 1e-13 --grad interp \
    > "$T/ref" || fail "reference gradient"
  ref=$(sed -n 's/^grad_norm //p' "$T/ref")
  for pair in dopri5:discrete dopri5:backsolve dopri5:interp cvode-adams:interp \
              cvode-bdf:interp cvode-bdf:backsolve cvode-adams:backsolve dopri5:auto; do
    s=${pair%%:*} g=${pair##*:}
    out=$("$NDE" grad "$UDE" "$DATA" --solver "$s" --grad "$g" --rtol 1e-8 --atol 1e-10) \
      || fail "$pair exited $?"
    v=$(echo "$out" | sed -n 's/^grad_norm //p')
    awk -v v="$v" -v r="$ref" -v p="$pair" 'BEGIN { e = (v - r) / r; if (e < 0) e = -e;
      printf "%-22s grad_norm %.10g  relative difference %.1e\n", p, v, e; exit !(e < 1e-4) }' \
      || fail "$pair disagrees with the reference"
  done
  "$NDE" grad "$UDE" "$DATA" --solver rk4 --grad interp 2>"$T/err"; rc=$?
  [ $rc -eq 2 ] || fail "rk4 + interp exited $rc, expected 2 (unsupported pair)"
  cat "$T/err"
  ;;
fit_runs_with_an_adaptive_solver_and_adjoint)
  "$NDE" fit "$ROOT/tests/cli/lotka_volterra_off.nde" "$ROOT/data/lotka_volterra.h5" \
    -o "$T/f.h5" --solver dopri5 --grad interp --rtol 1e-8 --optim adam:300@0.05,lbfgs:300 --quiet \
    || fail "fit exited $?"
  for p in alpha:1.3 beta:0.9 gamma:0.8 delta:1.8; do
    v=$("$H5" get "$T/f.h5" "/params/values/${p%%:*}")
    awk -v v="$v" -v t="${p##*:}" 'BEGIN { e = (v - t) / t; exit !(e < 0.02 && e > -0.02) }' \
      || fail "${p%%:*} = $v not within 2% of ${p##*:}"
  done
  [ "$("$H5" attr "$T/f.h5" /settings solver)" = dopri5 ] || fail "settings solver"
  ;;
*)
  fail "unknown case $CASE"
  ;;
esac
