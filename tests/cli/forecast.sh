#!/usr/bin/env bash
# End-to-end tests of `nde forecast` and the plots: after the README's walkthrough (UDE fit,
# discover, refit), forecasting to t = 10 against a noise-free simulation of the truth, the refit
# discovered model's RMSE is at least 10x smaller than the pure-network UDE's; the forecast file
# is data nde reads back; CSV, any solver, plots; bad input exits 2.
# usage: forecast.sh NDE H5CHECK SOURCE_ROOT CASE H5SET
set -u
NDE=$1 H5=$2 ROOT=$3 CASE=$4 H5SET=$5
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
NDE=$(abs "$NDE") H5=$(abs "$H5") H5SET=$(abs "$H5SET")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
DATA=$ROOT/data/lotka_volterra.h5
UDE=$ROOT/models/lotka_volterra_ude.nde
fail() { echo "FAIL: $*" >&2; exit 1; }
rmse() { # overall RMSE from the per-state attributes of a forecast file
  awk -v a="$("$H5" attr "$1" / rmse_x)" -v b="$("$H5" attr "$1" / rmse_y)" \
    'BEGIN { printf "%.6e", sqrt((a*a + b*b) / 2) }'
}
cd "$T" || exit 1

case $CASE in
refit_discovered_model_forecasts_10x_better_than_the_ude)
  # The README walkthrough, command for command.
  "$NDE" fit "$UDE" "$DATA" -o fit.h5 --quiet || fail "fit"
  "$NDE" discover fit.h5 --quiet > /dev/null || fail "discover"
  "$NDE" fit lotka_volterra_ude_discovered.nde "$DATA" -o refit.h5 --quiet || fail "refit"
  "$NDE" simulate "$ROOT/models/lotka_volterra.nde" -o truth.h5 --t0 0 --t1 10 --dt-out 0.1 \
    --quiet || fail "simulate"
  "$NDE" forecast fit.h5 --t1 10 --data truth.h5 -o forecast_ude.h5 || fail "forecast ude"
  "$NDE" forecast refit.h5 --t1 10 --data truth.h5 -o forecast.h5 --plot forecast.svg \
    || fail "forecast refit"
  a=$(rmse forecast_ude.h5) b=$(rmse forecast.h5)
  awk -v a="$a" -v b="$b" 'BEGIN { printf "RMSE to t = 10: UDE %s, refit discovered model %s, ratio %.3g\n", a, b, a/b;
    exit !(a >= 10*b) }' || fail "the discovered model is not 10x better"
  # The shipped long data (noisy truth on [0, 10]) tells the same story.
  "$NDE" forecast refit.h5 --t1 10 --data "$ROOT/data/lotka_volterra_long.h5" -o long.h5 \
    --quiet || fail "forecast against the long data"
  echo "RMSE against data/lotka_volterra_long.h5: $(rmse long.h5)"
  # Held-out data that continue the training series: started from the fitted trajectory (the start
  # the parameters were fitted with), the refit model stays within 0.1 std up to t = 10.
  "$NDE" forecast refit.h5 --t1 10 --data truth.h5 --start fitted -o cont.h5 --quiet \
    || fail "forecast from the fitted start"
  echo "RMSE from the fitted start: $(rmse cont.h5)"
  [ "$("$H5" attr cont.h5 / horizon)" = nan ] || fail "refit forecast has a finite horizon"
  awk -v a="$(rmse cont.h5)" 'BEGIN { exit !(a < 3e-2) }' || fail "fitted-start RMSE"
  ;;
held_out_series_start_from_their_own_first_row)
  # Issue 9: held-out series from other initial states are each predicted from their own first row
  # (they used to start from training series 1: RMSE 1.28 where the right start gives 7e-3).
  LV=$ROOT/models/lotka_volterra.nde
  "$NDE" fit "$LV" "$DATA" -o fit.h5 --quiet || fail "fit the known model"
  "$NDE" simulate "$LV" -o held.h5 --t1 5 --dt-out 0.25 --u0 x=1.7,y=2.2 --noise 1e-3 --seed 9 \
    --quiet || fail "held-out data"
  "$NDE" forecast fit.h5 --data held.h5 -o f.h5 > out.txt || fail "forecast"
  cat out.txt
  grep -q "each series from its own first observed row" out.txt || fail "start not said"
  a=$("$H5" attr f.h5 / rmse)
  awk -v a="$a" 'BEGIN { printf "held-out RMSE %s\n", a; exit !(a < 2e-2) }' || fail "RMSE $a"
  # From the training series' fitted start (the old behaviour) the prediction is far off.
  "$NDE" forecast fit.h5 --data held.h5 --start fitted -o g.h5 --quiet || fail "fitted start"
  b=$("$H5" attr g.h5 / rmse)
  awk -v a="$a" -v b="$b" 'BEGIN { printf "from the fitted start instead: RMSE %s\n", b; exit !(b > 10 * a) }' \
    || fail "the fitted start is not worse"
  ;;
a_held_out_start_says_where_its_unobserved_states_came_from)
  # Two fitted series /a and /b of LV; held-out series observe x alone, so y(t0) is completed.
  # /b at t = 0 takes b's fitted trajectory; /c (no fitted series of that name) takes the model's
  # declared y = 4.6280594, not the first fitted series' (/a's) trajectory, which is no start for
  # it; /b starting at t = 8, after the fitted span [0, 5], takes the declared value too, and the
  # output says so for each.
  LV=$ROOT/models/lotka_volterra.nde
  printf 'name,x,y\na,0.75,3.5\nb,1.35,2.15\n' > train.csv
  "$NDE" simulate "$LV" -o train.h5 --series train.csv --t1 5 --dt-out 0.25 --noise 1e-3 \
    --quiet || fail "training data"
  "$NDE" fit "$LV" train.h5 -o fit.h5 --quiet --optim lbfgs:200 || fail "fit"
  printf 'name,x,y\nb,1.35,2.15\nc,0.5,4.1\n' > held.csv
  "$NDE" simulate "$LV" -o held.h5 --series held.csv --t1 5 --dt-out 0.25 --columns x \
    --quiet || fail "held-out data"
  "$NDE" forecast fit.h5 --data held.h5 -o f.h5 > out.txt || fail "forecast"
  cat out.txt
  grep -A1 "series /b " out.txt | grep -q "start: not observed in the first row: y = .*, from the fitted trajectory of series /b at t = 0" \
    || fail "/b's completed start not said"
  grep -A1 "series /c " out.txt | grep -q "start: not observed in the first row: y = 4.6280594, the model's declared initial values (no fitted series named /c covers t = 0)" \
    || fail "/c's start: not the declared y, or not said"
  awk -v y="$("$H5" get f.h5 /c/y | sed -n 2p)" 'BEGIN { exit !(y == 4.6280594) }' \
    || fail "/c did not start from the declared y"
  "$NDE" simulate "$LV" -o late.h5 --t0 8 --t1 10 --dt-out 0.25 --u0 x=1.35,y=2.15 --columns x \
    --quiet || fail "late data"
  "$NDE" merge -o late_b.h5 late.h5 --names b --quiet || fail "merge"
  "$NDE" forecast fit.h5 --data late_b.h5 -o g.h5 > out.txt || fail "late forecast"
  cat out.txt
  grep -q "y = 4.6280594, the model's declared initial values (no fitted series named /b covers t = 8)" out.txt \
    || fail "the declared value at t = 8 not said"
  ;;
forecast_is_data_that_nde_reads_back)
  "$NDE" fit "$UDE" "$DATA" -o fit.h5 --quiet --optim shoot:adam:300@0.02 || fail "fit"
  "$NDE" forecast fit.h5 --t1 3 --dt-out 0.5 -o f.h5 --quiet || fail "forecast h5"
  [ "$("$H5" get f.h5 /t | tr '\n' ' ')" = "0 0.5 1 1.5 2 2.5 3 " ] || fail "time grid"
  "$NDE" inspect f.h5 | grep -q "7 times on \[0, 3\]" || fail "inspect does not read the forecast"
  "$NDE" fit "$UDE" f.h5 -o refit.h5 --quiet --optim adam:3 || fail "fit does not read the forecast"
  # A forecast of several held-out series is a batch (the model's source a root attribute, not a
  # /model group beside the series): nde inspect and nde fit read it too.
  printf 'x,y\n0.5,4\n1.5,2\n' > held.csv
  "$NDE" simulate "$ROOT/models/lotka_volterra.nde" -o held2.h5 --series held.csv --t1 3 \
    --dt-out 0.5 --quiet || fail "two held-out series"
  "$NDE" forecast fit.h5 --data held2.h5 -o fb.h5 --quiet || fail "forecast of two series"
  "$NDE" inspect fb.h5 | grep -q "2 series" || { "$NDE" inspect fb.h5; fail "inspect does not read the batch forecast"; }
  "$NDE" fit "$UDE" fb.h5 -o refit2.h5 --quiet --optim adam:3 || fail "fit does not read the batch forecast"
  "$H5" attr fb.h5 / model_source | grep -q "net U" || fail "no model_source"
  # The same forecast as CSV, with any solver the library knows.
  "$NDE" forecast fit.h5 --t1 3 --dt-out 0.5 -o f.csv --quiet || fail "forecast csv"
  [ "$(head -1 f.csv)" = "t,x,y" ] || fail "CSV header"
  [ "$(wc -l < f.csv)" = 8 ] || fail "CSV rows"
  first=$("$H5" get f.h5 /y | sed -n 13,14p | tr '\n' ' ')
  for s in dopri5 cvode-bdf cvode-adams; do
    "$NDE" forecast fit.h5 --t1 3 --dt-out 0.5 --solver $s --rtol 1e-9 --atol 1e-11 \
      -o f_$s.h5 --quiet || fail "solver $s"
    other=$("$H5" get f_$s.h5 /y | sed -n 13,14p | tr '\n' ' ')
    awk -v a="$first" -v b="$other" -v s=$s 'BEGIN { split(a, x, " "); split(b, y, " ");
      e = 0; for (i = 1; i <= 2; i++) { d = (x[i] - y[i]) / x[i]; if (d < 0) d = -d; if (d > e) e = d }
      printf "%s vs rk4 at t = 3: relative difference %.2e\n", s, e; exit !(e < 2e-3) }' \
      || fail "$s disagrees with rk4"
  done
  # From the last fitted state and from a given state.
  "$NDE" forecast fit.h5 --from-last --t1 8 -o last.h5 --quiet || fail "--from-last"
  [ "$("$H5" get last.h5 /t | head -1)" = 5 ] || fail "--from-last does not start at t = 5"
  "$NDE" forecast fit.h5 --u0 x=1.25,y=2.5 --t1 1 -o u0.h5 --quiet || fail "--u0"
  [ "$("$H5" get u0.h5 /y | head -2 | tr '\n' ' ')" = "1.25 2.5 " ] || fail "--u0 not used"
  ;;
plots_are_svg_and_png)
  "$NDE" fit "$UDE" "$DATA" -o fit.h5 --quiet --optim shoot:adam:300@0.02 || fail "fit"
  "$NDE" forecast fit.h5 --t1 8 --data "$ROOT/data/lotka_volterra_long.h5" -o f.h5 \
    --plot f.svg --quiet || fail "svg plot"
  "$NDE" forecast fit.h5 --t1 8 -o f.h5 --plot f.png --quiet || fail "png plot"
  head -c 5 f.svg | grep -q '<?xml' || fail "not an SVG"
  [ "$(head -c 4 f.png | od -An -tx1 | tr -d ' \n')" = 89504e47 ] || fail "not a PNG"
  [ "$(stat -c %s f.png)" -gt 10000 ] || fail "PNG suspiciously small"
  ;;
bad_input_exits_2_with_a_message)
  expect() { # expect CODE PATTERN -- command...
    code=$1 pat=$2; shift 3
    "$@" > o.txt 2> e.txt; rc=$?
    [ $rc -eq "$code" ] || { cat e.txt; fail "exit $rc, expected $code: $*"; }
    grep -q -- "$pat" e.txt || { cat e.txt; fail "message '$pat' missing: $*"; }
  }
  "$NDE" fit "$UDE" "$DATA" -o fit.h5 --quiet --optim adam:5 || fail "short fit"
  expect 2 "--t1 is required" -- "$NDE" forecast fit.h5 -o f.h5
  expect 2 "output file is required" -- "$NDE" forecast fit.h5 --t1 3
  expect 2 "is not after the start time" -- "$NDE" forecast fit.h5 --t1 -1 -o f.h5
  expect 2 "unknown method 'rk5'" -- "$NDE" forecast fit.h5 --t1 3 --solver rk5 -o f.h5
  expect 2 "'z' is not a state" -- "$NDE" forecast fit.h5 --t1 3 --u0 z=1 -o f.h5
  expect 2 "must end in .svg, .png or .pdf" -- "$NDE" forecast fit.h5 --t1 3 --plot f.gif -o f.h5
  expect 2 "expected row or fitted" -- "$NDE" forecast fit.h5 --data "$DATA" --start first -o f.h5
  expect 2 "cannot be combined" -- "$NDE" forecast fit.h5 --data "$DATA" --t0 1 -o f.h5
  expect 2 "is also an input" -- "$NDE" forecast fit.h5 --t1 3 -o fit.h5
  # A foreign or old file names what is missing.
  "$H5" mkresult old.h5 || fail "mkresult"
  expect 2 "old.h5:/ attribute format: not 'nde-fit' (expected a result file of nde fit" -- \
    "$NDE" forecast old.h5 --t1 3 -o f.h5
  expect 2 "holds 1 fitted series" -- "$NDE" forecast fit.h5 --t1 3 --series 2 -o f.h5
  expect 2 "expected a result file of nde fit" -- "$NDE" forecast "$DATA" --t1 3 -o f.h5
  expect 2 "nope.h5" -- "$NDE" forecast fit.h5 --t1 3 --data nope.h5 -o f.h5
  [ -e f.h5 ] && fail "a forecast was written on bad input"
  ;;
a_band_whose_members_all_blew_up_is_refused_with_exit_3)
  # dx/dt = k x^2 blows up at t = 1 / (k x0).  The kept fit (k near 0.3, x0 near 1: at t = 3.3)
  # reaches t = 1.5; the members, given k = 2, 2.5 and 3 by hand, all blow up by t = 0.5 (the
  # last stop lands a step or so later).
  # Their band has no value past the last member's stop: refused as a non-finite forecast is
  # (exit 3, one line naming the first such time and the members, nothing written), not
  # written as NaN.
  printf 'state x = 1\nparam k = 0.3 (positive)\ndx/dt = k*x^2\n' > blow.nde
  "$NDE" simulate blow.nde -o d.h5 --t1 1 --points 11 --quiet || fail "simulate"
  "$NDE" fit blow.nde d.h5 -o ens.h5 --ensemble 3 --quiet || fail "ensemble fit"
  "$NDE" forecast ens.h5 --t1 1.5 -o ok.csv --quiet || fail "the fitted members' band"
  # theta is log k (a positive parameter), one row per member.
  "$H5SET" ens.h5 /ensemble/theta 0.69314718055994529 0.91629073187415511 \
    1.0986122886681098 || fail "h5set"
  for out in f.csv f.h5; do
    "$NDE" forecast ens.h5 --t1 1.5 -o $out > o.txt 2> e.txt
    rc=$?
    [ $rc -eq 3 ] || { cat e.txt; fail "$out: exit $rc, expected 3"; }
    grep -q "^nde: error: the band of the forecast of series / is not finite from t = 0\.[0-9]*: \
the integrations of all 3 members stopped by then (expected a forecast that ends before, or \
--no-band); nothing written to $out\$" e.txt || { cat e.txt; fail "$out: message"; }
    [ "$(wc -l < e.txt)" -eq 1 ] || { cat e.txt; fail "$out: not one line"; }
    t=$(sed 's/.*not finite from t = \([0-9.]*\):.*/\1/' e.txt)
    awk -v t="$t" 'BEGIN { exit !(t > 0.45 && t < 0.65) }' || fail "$out: first time $t"
    [ -e $out ] && fail "$out was written"
    ls -A | grep -q '^\.nde-' && fail "$out: a temporary file was left behind"
    echo "ok (3): $(cat e.txt)"
  done
  # Without the band the forecast itself is finite, and written.
  "$NDE" forecast ens.h5 --t1 1.5 -o nb.csv --no-band --quiet || fail "--no-band"
  [ -s nb.csv ] || fail "--no-band wrote nothing"
  ;;
*) fail "unknown case $CASE" ;;
esac
echo "ok: $CASE"
