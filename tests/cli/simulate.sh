#!/bin/sh
# `nde simulate` and `nde inspect` end to end: the written data agree with an independent
# integration, noise is seeded, --param/--u0/--times/--init act on the data, a solve that blows
# up exits 3 and writes nothing, and inspect describes data, batch, result and other files.
# usage: simulate.sh NDE H5CHECK SOURCE_ROOT
set -u
nde=$1
h5=$2
root=$3
models=$root/models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
lv=$models/lotka_volterra.nde

# Noise-free LV on [0, 5]: RK4 with h = 0.025 (error ~1e-5 relative, 1000x below the noise of
# data/) against the test's own RK4 at h = 1e-4.
"$nde" simulate "$lv" -o "$tmp/lv.h5" --t1 5 --dt-out 0.25 >"$tmp/out" 2>"$tmp/err" \
  || fail "simulate lv: exit $? ($(cat "$tmp/err"))"
[ -s "$tmp/err" ] && fail "simulate wrote to stderr: $(cat "$tmp/err")"
grep -q "^$tmp/lv.h5: 21 times on \[0, 5\], 2 states, no noise (rk4, 200 steps)$" "$tmp/out" \
  || fail "summary line: $(cat "$tmp/out")"
"$h5" ref "$tmp/lv.h5" lv 1e-5 || fail "LV solution disagrees with the reference"
[ "$("$h5" get "$tmp/lv.h5" /t | wc -l)" -eq 21 ] || fail "expected 21 times"
[ "$("$h5" get "$tmp/lv.h5" /t | tail -n 1)" = 5 ] || fail "last time is not exactly 5"
[ "$("$h5" get "$tmp/lv.h5" /y | head -n 2 | tr '\n' ' ')" = "0.44249295999999999 4.6280593999999997 " ] \
  || fail "y(0) is not the model's initial state"
# dopri5 passes through --solver and agrees with the reference too.
"$nde" simulate "$lv" -o "$tmp/lv_dp.h5" --t1 5 --dt-out 0.25 --solver dopri5 --rtol 1e-10 \
  --atol 1e-12 --quiet || fail "simulate --solver dopri5: exit $?"
"$h5" ref "$tmp/lv_dp.h5" lv 1e-7 || fail "dopri5 solution disagrees with the reference"

# The spiral truth model on 1000 points, against the reference.
"$nde" simulate "$models/spiral_truth.nde" -o "$tmp/sp.h5" --t1 25 --points 1000 --quiet \
  || fail "simulate spiral: exit $?"
"$h5" ref "$tmp/sp.h5" spiral 1e-5 || fail "spiral solution disagrees with the reference"

# --param changes the data, and the reference with the same parameters agrees.
"$nde" simulate "$lv" -o "$tmp/lv_p.h5" --t1 5 --dt-out 0.25 --param alpha=1.45,delta=1.625 \
  --quiet || fail "--param: exit $?"
"$h5" same "$tmp/lv.h5" "$tmp/lv_p.h5" /y 2>/dev/null && fail "--param did not change /y"
"$h5" ref "$tmp/lv_p.h5" lv 1e-5 1.45 0.9 0.8 1.625 || fail "--param values were not used"

# --u0 sets the first row.
"$nde" simulate "$lv" -o "$tmp/lv_u.h5" --t1 1 --dt-out 0.5 --u0 y=2.385,x=0.75 --quiet \
  || fail "--u0: exit $?"
[ "$("$h5" get "$tmp/lv_u.h5" /y | head -n 2 | tr '\n' ' ')" = "0.75 2.3849999999999998 " ] \
  || fail "--u0 not applied: $("$h5" get "$tmp/lv_u.h5" /y | head -n 2)"
"$nde" simulate "$models/spiral_truth.nde" -o "$tmp/sp_u.h5" --t1 1 --points 3 --u0 'y[2]=0.5' \
  --quiet || fail "--u0 y[2]: exit $?"
[ "$("$h5" get "$tmp/sp_u.h5" /y | head -n 2 | tr '\n' ' ')" = "2 0.5 " ] || fail "--u0 y[2] not applied"

# --times from a text file and from an HDF5 file give the grid asked for.
printf '# times\n0\n0.125\n\n1.5\n2.75\n' >"$tmp/times.txt"
"$nde" simulate "$lv" -o "$tmp/lv_t.h5" --times "$tmp/times.txt" --steps-per-interval 100 --quiet || fail "--times text: exit $?"
[ "$("$h5" get "$tmp/lv_t.h5" /t | tr '\n' ' ')" = "0 0.125 1.5 2.75 " ] || fail "--times text grid"
"$h5" ref "$tmp/lv_t.h5" lv 1e-5 || fail "--times solution disagrees with the reference"
"$nde" simulate "$lv" -o "$tmp/lv_t2.h5" --times "$tmp/lv_t.h5" --steps-per-interval 100 --quiet || fail "--times h5: exit $?"
"$h5" same "$tmp/lv_t.h5" "$tmp/lv_t2.h5" /t /y || fail "--times from HDF5 differs from text"

# Noise: the same seed gives the same bits, another seed other values; the recorded std is
# 5e-3 x mean |y| of the noise-free solution.
"$nde" simulate "$lv" -o "$tmp/n1.h5" --t1 5 --dt-out 0.25 --noise 5e-3 --seed 7 --quiet || fail "noise 1"
"$nde" simulate "$lv" -o "$tmp/n2.h5" --t1 5 --dt-out 0.25 --noise 5e-3 --seed 7 --quiet || fail "noise 2"
"$nde" simulate "$lv" -o "$tmp/n3.h5" --t1 5 --dt-out 0.25 --noise 5e-3 --seed 8 --quiet || fail "noise 3"
"$h5" same "$tmp/n1.h5" "$tmp/n2.h5" /t /y || fail "same seed, different /y"
"$h5" same "$tmp/n1.h5" "$tmp/n3.h5" /y 2>/dev/null && fail "different seeds, same /y"
"$h5" same "$tmp/lv.h5" "$tmp/n1.h5" /y 2>/dev/null && fail "noise did not change /y"
"$h5" ref "$tmp/n1.h5" lv 1e-5 >/dev/null && fail "noisy data agree with the noise-free reference"
"$nde" inspect "$tmp/n1.h5" >"$tmp/out" 2>"$tmp/err" || fail "inspect noisy: exit $?"
mean_x=$("$h5" get "$tmp/lv.h5" /y | awk 'NR % 2 == 1 { s += ($1 < 0 ? -$1 : $1); n++ } END { printf "%.6g", 5e-3 * s / n }')
grep -Eq "^x +21 +0 .* $mean_x\$" "$tmp/out" || fail "noise std of x is not $mean_x: $(cat "$tmp/out")"
grep -q '^  seed: 7$' "$tmp/out" || fail "seed not recorded: $(cat "$tmp/out")"
grep -q '^  noise: 0.005$' "$tmp/out" || fail "noise level not recorded"
grep -q "^  command_line: nde simulate $lv -o $tmp/n1.h5 --t1 5 --dt-out 0.25 --noise 5e-3 --seed 7 --quiet\$" \
  "$tmp/out" || fail "command line not recorded: $(cat "$tmp/out")"

# A per-series parameter set by --param is recorded with the value used (it read k=nan).
printf 'state x = 1\nparam k = 0.5 (positive, per series)\ndx/dt = -k*x\n' >"$tmp/ps.nde"
"$nde" simulate "$tmp/ps.nde" -o "$tmp/ps.h5" --t1 1 --points 3 --param k=2.385 --quiet || fail "per-series --param"
[ "$("$h5" attr "$tmp/ps.h5" / parameters)" = "k=2.385 (per series)" ] \
  || fail "per-series parameter recorded as $("$h5" attr "$tmp/ps.h5" / parameters)"
"$nde" inspect "$tmp/ps.h5" | grep -qx '  parameters: k=2.385 (per series)' || fail "inspect per-series parameter"

# -o NAME.csv writes CSV, as nde forecast does (it wrote HDF5 under that name): the header
# t,COLUMNS and the values of the HDF5 file to the last bit.
"$nde" simulate "$lv" -o "$tmp/lv.csv" --t1 5 --dt-out 0.25 >"$tmp/out" || fail "simulate to CSV"
grep -q "^$tmp/lv.csv: 21 times on \[0, 5\], 2 states, no noise" "$tmp/out" || fail "CSV summary: $(cat "$tmp/out")"
[ "$(head -n 1 "$tmp/lv.csv")" = "t,x,y" ] || fail "CSV header: $(head -n 1 "$tmp/lv.csv")"
[ "$(wc -l < "$tmp/lv.csv")" -eq 22 ] || fail "CSV rows: $(wc -l < "$tmp/lv.csv")"
"$h5" get "$tmp/lv.h5" /y | paste -d' ' - - > "$tmp/y_h5.txt"
tail -n +2 "$tmp/lv.csv" | awk -F, '{ print $2, $3 }' > "$tmp/y_csv.txt"
awk 'NR == FNR { a[FNR] = $0; next } { split(a[FNR], h, " "); if (h[1] + 0 != $1 + 0 || h[2] + 0 != $2 + 0) bad = 1 }
     END { exit bad }' "$tmp/y_h5.txt" "$tmp/y_csv.txt" || fail "CSV values differ from the HDF5 file's"
"$nde" simulate "$tmp/ps.nde" -o "$tmp/ps.csv" --t1 1 --points 3 --columns x --quiet || fail "CSV --columns"
[ "$(head -n 2 "$tmp/ps.csv" | tr '\n' '|')" = "t,x|0,1|" ] || fail "CSV with --columns: $(cat "$tmp/ps.csv")"

# --init: theta from a result file (here LV's four log-rates) replaces the declared values.
"$h5" mkresult "$tmp/fit.h5" || fail "mkresult"
"$nde" simulate "$lv" -o "$tmp/lv_i.h5" --t1 5 --dt-out 0.25 --init "$tmp/fit.h5" --quiet \
  || fail "--init: exit $?"
"$h5" ref "$tmp/lv_i.h5" lv 1e-5 1.3 0.9 0.8 1.8 || fail "--init theta was not used"
"$nde" simulate "$models/spiral_truth.nde" -o "$tmp/x.h5" --t1 0.1 --points 3 --init "$tmp/fit.h5" \
  --quiet || fail "--init with 4 values for spiral_truth's 4 parameters: exit $?"

# A solve that blows up (dx/dt = x^2 from x = 1 has a pole at t = 1): exit 3, nothing written.
printf 'state x = 1\ndx/dt = x^2\n' >"$tmp/blowup.nde"
"$nde" simulate "$tmp/blowup.nde" -o "$tmp/b.h5" --t1 2 --dt-out 0.25 --dt 0.5 >"$tmp/out" 2>"$tmp/err"
code=$?
[ $code -eq 3 ] || fail "blow-up: exit $code, expected 3 ($(cat "$tmp/err"))"
# The stop names the component whose derivative overflowed.
grep -Eq '^nde: error: simulation stopped: solver [a-z0-9-]+ stopped at t = [0-9.e+-]+, dx/dt not finite, after [0-9]+ steps \(step size [0-9.e+-]+\): .+' "$tmp/err" || fail "blow-up message: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "blow-up: more than one line: $(cat "$tmp/err")"
ls -A "$tmp" | grep -q '^b.h5$\|^\.nde-' && fail "blow-up left a file"

# inspect: the shipped data sets made by nde simulate (the mass-spring files are batches made by
# data/mass_spring.c).
for f in "$root"/data/*.h5; do
  case $f in */mass_spring*) continue ;; esac
  "$nde" inspect "$f" >"$tmp/out" 2>"$tmp/err" || fail "inspect $f: exit $? ($(cat "$tmp/err"))"
  case $f in
  */tanks.h5) head="3 series, 1 state (h2)" ;;
  */tanks_heldout.h5) head="1 series, 1 state (h2)" ;;
  *) head="1 series, 2 states" ;;
  esac
  grep -qF "$f: time-series data, $head" "$tmp/out" || fail "inspect $f: $(cat "$tmp/out")"
  grep -Eq '^ +command_line: nde simulate models/' "$tmp/out" || fail "inspect $f: no command line"
done
"$nde" inspect "$root/data/lotka_volterra.h5" >"$tmp/out"
grep -q '^series /: 21 times on \[0, 5\], uniform spacing 0.25; 2 of 2 states observed, 42 values observed, 0 missing (NaN)$' \
  "$tmp/out" || fail "inspect lv series line: $(cat "$tmp/out")"
grep -q '^  seed: 2020$' "$tmp/out" || fail "inspect lv seed"
grep -q '^  parameters: alpha=1.3, beta=0.9, gamma=0.8, delta=1.8$' "$tmp/out" || fail "inspect lv parameters"
"$nde" inspect "$root/data/spiral.h5" >"$tmp/out"
grep -q '^series /: 1000 times on \[0, 25\], uniform spacing 0.02502502503;' "$tmp/out" \
  || fail "inspect spiral: $(cat "$tmp/out")"

# inspect: a batch with a missing value and an unobserved column.
"$h5" mkbatch "$tmp/batch.h5" || fail "mkbatch"
"$nde" inspect "$tmp/batch.h5" >"$tmp/out" 2>"$tmp/err" || fail "inspect batch: exit $? ($(cat "$tmp/err"))"
grep -q "^$tmp/batch.h5: time-series data, 2 series, 2 states (x, y)$" "$tmp/out" || fail "batch header: $(cat "$tmp/out")"
grep -q '^series /run1: 3 times on \[0, 1.25\], non-uniform spacing from 0.5 to 0.75; 2 of 2 states observed, 5 values observed, 1 missing (NaN)$' \
  "$tmp/out" || fail "batch run1: $(cat "$tmp/out")"
grep -q '^series /run2: 2 times on \[0, 1\], uniform spacing 1; 1 of 2 states observed' "$tmp/out" || fail "batch run2"
grep -Eq '^x +4 +1 +1\.5 +0\.540062 +0\.75 +2$' "$tmp/out" || fail "batch x stats: $(cat "$tmp/out")"
grep -Eq '^y +3 +0 +3\.5 +1 +2\.5 +4\.5$' "$tmp/out" || fail "batch y stats: $(cat "$tmp/out")"

# inspect: a result file of nde fit, described through the result layer, with every attribute it
# holds listed; a file that only looks like one (hand-made) is described as plain HDF5.
"$nde" fit "$lv" "$root/data/lotka_volterra.h5" -o "$tmp/real.h5" --optim lbfgs:5 --quiet \
  || fail "a short fit for inspect"
"$nde" inspect "$tmp/real.h5" >"$tmp/out" 2>"$tmp/err" || fail "inspect result: exit $? ($(cat "$tmp/err"))"
grep -q "^$tmp/real.h5: result of nde fit, status done: " "$tmp/out" || fail "result header: $(cat "$tmp/out")"
grep -Eq '^  alpha +=' "$tmp/out" || fail "result parameters: $(cat "$tmp/out")"
grep -q '^loss history: 5 entries, first ' "$tmp/out" || fail "result history: $(cat "$tmp/out")"
grep -q '^  | # Lotka' "$tmp/out" || fail "result model source: $(cat "$tmp/out")"
for a in '@format: nde-fit' '@schema_version: 2' '@solver: rk4' '@schedule: lbfgs:5' '@seed: 1' \
         '@steps_per_interval: 5' '@command_line: nde fit ' '@hdf5_version: ' '@is_best: ' '@seconds: '; do
  grep -qF -- "$a" "$tmp/out" || fail "inspect result lacks attribute '$a': $(cat "$tmp/out")"
done
"$nde" inspect "$tmp/fit.h5" >"$tmp/out" 2>"$tmp/err" || fail "inspect hand-made: exit $?"
grep -q "^$tmp/fit.h5: HDF5 file, neither nde time-series data" "$tmp/out" || fail "hand-made header: $(cat "$tmp/out")"
grep -q '^    theta  float64 \[4\] = \[0.262364264467491, ' "$tmp/out" \
  && grep -q '^      alpha  float64 scalar = 1.3$' "$tmp/out" || fail "hand-made contents: $(cat "$tmp/out")"

# inspect: any other HDF5 file, and files that are not HDF5.
"$nde" inspect "$tmp/times.txt" >"$tmp/out" 2>"$tmp/err"
code=$?
[ $code -eq 2 ] || fail "inspect text file: exit $code, expected 2"
grep -q "^nde: error: $tmp/times.txt: not an HDF5 file" "$tmp/err" || fail "inspect text message: $(cat "$tmp/err")"
[ -s "$tmp/out" ] && fail "inspect text file printed a description"
"$nde" inspect "$tmp/nothing.h5" >/dev/null 2>"$tmp/err"
code=$?
[ $code -eq 2 ] || fail "inspect missing file: exit $code, expected 2"
grep -q "^nde: error: $tmp/nothing.h5: cannot open (No such file or directory)$" "$tmp/err" || fail "missing: $(cat "$tmp/err")"
echo "all simulate/inspect checks passed"
