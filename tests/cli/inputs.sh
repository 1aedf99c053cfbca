#!/usr/bin/env bash
# Driven experiments (issue 11) through the program: measured inputs from a CSV into simulated
# data, fits that recover a rate through a step input, forecasts driven by future inputs (and
# refused beyond them), held-out experiments scored driven by their own inputs, several
# experiments merged into one batch with a per-series parameter and a constant from data, and
# every bad inputs file refused with its place.
# usage: inputs.sh NDE H5CHECK SOURCE_ROOT CASE
set -u
NDE=$1 H5=$2 ROOT=$3 CASE=$4
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
NDE=$(abs "$NDE") H5=$(abs "$H5")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
num_ok() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v + 0 == v && v >= lo && v <= hi) }'; }

# x' = -k x + g u with a step input u; the truth has k = 1.3.
cat > truth.nde <<'EOF'
state x = 1
input u (step)
const g (from data)
param k = 1.3
dx/dt = -k*x + g*u
EOF
sed 's/^param k = 1.3$/param k = 0.5 (positive)/' truth.nde > fit.nde
sed 's/^param k = 1.3$/param k = 0.5 (positive, per series)/' truth.nde > per.nde
# Switching times off the observation grid (every 0.25) and off the fit's steps.
printf 't,u\n0,0\n1.93,1\n4.61,0.5\n8,0.5\n' > u.csv
printf 't,u\n0,0\n1.93,1\n4.61,0.5\n9.3,2\n12,2\n' > u_long.csv
sim() { "$NDE" simulate truth.nde --quiet --t1 "$1" --dt-out 0.25 --inputs "$2" --const "g=$3" \
          --param "k=$4" --noise 0.01 --seed "$5" -o "$6" || fail "simulate $6"; }

case $CASE in
fit_through_a_step_input_and_forecast_with_future_inputs)
  sim 8 u.csv 1 1.3 1 d.h5
  "$NDE" inspect d.h5 > out.txt || fail "inspect"
  grep -q "measured inputs: u (4 samples on \[0, 8\])" out.txt || { cat out.txt; fail "inputs not shown"; }
  "$NDE" fit fit.nde d.h5 -o f.h5 --quiet || fail "fit exited $?"
  k=$("$H5" get f.h5 /params/values/k)
  echo "k = $k (truth 1.3)"
  num_ok "$k" 1.287 1.313 || fail "k = $k not within 1 %"
  # Beyond the inputs' samples: refused, naming the input and where its samples end.
  "$NDE" forecast f.h5 --t1 12 -o no.h5 2> err.txt
  [ $? -eq 2 ] || fail "a forecast beyond the inputs was not refused"
  grep -q "measured input 'u' beyond its samples on \[0, 8\]" err.txt || { cat err.txt; fail "message"; }
  [ -e no.h5 ] && fail "a refused forecast wrote a file"
  # With future inputs: the forecast against the truth driven by the same inputs.
  "$NDE" forecast f.h5 --t1 12 --inputs u_long.csv -o fc.h5 --quiet || fail "forecast --inputs"
  "$NDE" inspect fc.h5 | grep -q "measured inputs: u (5 samples on \[0, 12\])" || fail "forecast lacks its inputs"
  sim 12 u_long.csv 1 1.3 7 held.h5
  "$NDE" forecast f.h5 --data held.h5 -o scored.h5 > out.txt || fail "forecast --data"
  cat out.txt
  rmse=$(awk '/rmse all/ {print $3}' out.txt)
  noise=$("$H5" get held.h5 /y | awk '{s += ($1 < 0 ? -$1 : $1); n++} END {print 0.01 * s / n}')
  echo "held-out RMSE $rmse, noise std $noise"
  num_ok "$rmse" 0 "$(awk -v s="$noise" 'BEGIN {print 2 * s}')" || fail "held-out RMSE $rmse above 2x the noise"
  # With standard errors, a forecast has its linearised band by default, driven by the
  # series' own inputs (or the future ones) as the forecast itself is.
  "$NDE" uncertainty f.h5 -o fu.h5 --quiet || fail "uncertainty"
  "$NDE" forecast fu.h5 --t1 8 -o band.csv > out.txt || { cat out.txt; fail "forecast with a band"; }
  grep -q "linearised interval" out.txt || { cat out.txt; fail "no band"; }
  "$NDE" forecast fu.h5 --t1 12 --inputs u_long.csv -o band2.csv > /dev/null || fail "band with future inputs"
  head -1 band2.csv | grep -q "x_lower" || { head -2 band2.csv; fail "band columns"; }
  awk -F, 'NR > 2 && !($2 >= $3 - 1e-12 && $4 >= $2 - 1e-12) { bad = 1 } END { exit bad }' band2.csv ||
    { head -5 band2.csv; fail "the band does not hold the forecast"; }
  # An input declared hold keeps its last value: samples that end early are simulated and
  # fitted; without hold the fit refuses them, naming the input and its declaration.
  sed 's/^input u (step)$/input u (step, hold)/' truth.nde > hold.nde
  printf 't,u\n0,1\n2,0\n' > short.csv
  "$NDE" simulate hold.nde --quiet --t1 5 --dt-out 0.25 --inputs short.csv --const g=1 -o h.h5 ||
    fail "simulate with a hold input that ends early"
  sed 's/^param k = 1.3$/param k = 0.5 (positive)/' hold.nde > hold_fit.nde
  "$NDE" fit hold_fit.nde h.h5 -o hf.h5 --quiet || fail "fit with a hold input"
  "$NDE" fit fit.nde h.h5 -o nf.h5 > /dev/null 2> err.txt
  [ $? -eq 2 ] || { cat err.txt; fail "inputs that end early were taken without hold"; }
  grep -q "h.h5:/inputs/t: the samples of the measured input 'u' span \[0, 2\], which does not cover the observations on \[0, 5\] (expected samples over them, or the input declared with hold in fit.nde, line 2)" err.txt ||
    { cat err.txt; fail "message"; }
  [ -e nf.h5 ] && fail "a refused fit wrote nf.h5"
  ;;
experiments_with_per_series_rates_and_constants)
  sim 8 u.csv 2 1.3 1 a.h5
  sim 12 u_long.csv 0.5 0.8 2 b.h5
  # Names that cannot be groups of a batch (a root /t or /y makes a file one series) are
  # refused, given or taken from a file's name, and nothing is written.
  cp a.h5 t.h5
  "$NDE" merge -o bad.h5 t.h5 b.h5 2> err.txt && fail "merge of t.h5 exited 0"
  grep -q "t.h5: series / would be group /t, which cannot name a series in a batch (expected a non-empty name without '/', other than ., .., t and y: give --names)" err.txt \
    || { cat err.txt; fail "merge t.h5 message"; }
  "$NDE" merge -o bad.h5 a.h5 b.h5 --names y,b 2> err.txt && fail "merge --names y exited 0"
  grep -q -- "--names: 'y' is not a group name" err.txt || { cat err.txt; fail "merge --names y message"; }
  [ ! -e bad.h5 ] || fail "merge wrote bad.h5"
  "$NDE" merge -o batch.h5 a.h5 b.h5 --names low,high > out.txt || fail "merge"
  grep -q "batch.h5: 2 series (/low, /high)" out.txt || { cat out.txt; fail "merge summary"; }
  "$NDE" fit per.nde batch.h5 -o f.h5 --quiet || fail "fit exited $?"
  ks=$("$H5" get f.h5 /params/values/k | tr '\n' ' ')
  # Series come in group-name order: /high, then /low.
  echo "k per series (/high, /low): $ks (truth 0.8 1.3)"
  set -- $ks
  num_ok "$1" 0.784 0.816 || fail "k of /high = $1 not within 2 %"
  num_ok "$2" 1.274 1.326 || fail "k of /low = $2 not within 2 %"
  # The constants travelled with their experiments: g of each group, read by the fit.
  [ "$("$H5" get f.h5 /series/consts/values | tr '\n' ' ')" = "0.5 2 " ] || fail "constants"
  ;;
discovery_offers_the_inputs_as_candidate_variables)
  # A network of the state and the input in place of the driving term g*u (g = 1): discovery
  # regresses it on terms in states and inputs (SINDy with control) and finds u.
  sim 12 u_long.csv 1 1.3 3 d.h5
  sed -e 's/^param k = 1.3$/param k = 1.3 (fixed)/' -e 's/^const g (from data)$/net U : 2 -> 8 tanh -> 1/' \
      -e 's/^dx\/dt = -k\*x + g\*u$/dx\/dt = -k*x + U(x, u)[1]/' truth.nde > ude.nde
  grep -q 'U(x, u)' ude.nde || fail "ude model"
  "$NDE" fit ude.nde d.h5 -o f.h5 --quiet || fail "fit exited $?"
  "$NDE" discover f.h5 --library poly:1 -o found.nde > out.txt || { cat out.txt; fail "discover"; }
  cat out.txt
  grep -q "candidate terms (poly:1)" out.txt || fail "no summary"
  eq=$(grep '^  U\[1\](x, u) ≈' out.txt) || fail "no equation"
  c=$(echo "$eq" | sed -n 's/.*[ ≈+] \([0-9.]*\)·u$/\1/p')
  echo "coefficient of u: $c (truth 1)"
  num_ok "$c" 0.95 1.05 || fail "the coefficient of u is not within 5 % of 1: $eq"
  grep -q 'U1_u' found.nde || fail "the discovered model has no parameter of the term u"
  "$NDE" fit found.nde d.h5 -o refit.h5 --quiet || fail "the discovered model does not fit"
  ;;
observables_are_fitted_and_scored)
  # Lotka-Volterra seen only through one signal, gain*x + y: nde simulate writes that column,
  # nde fit compares the model's observable with it (the default schedule without multiple
  # shooting, since no state is measured), and a held-out record is scored on it.
  # The shipped LV model with a gain and the one quantity measured.
  { cat "$ROOT/models/lotka_volterra.nde"
    printf 'param gain = 2 (positive)\nobserve signal = gain*x + y\n'; } > lvo.nde
  "$NDE" simulate lvo.nde -o d.h5 --t1 8 --dt-out 0.2 --columns signal --noise 0.005 --seed 3 \
    --quiet || fail "simulate"
  "$NDE" inspect d.h5 | grep -q "^signal " || fail "the data have no column signal"
  sed -e 's/^param alpha = 1.3/param alpha = 1.0/' -e 's/^param gain = 2 (positive)/param gain = 1.5 (positive)/' \
    lvo.nde > start.nde
  "$NDE" fit start.nde d.h5 -o f.h5 --plot f.svg > out.txt 2> err.txt ||
    { cat out.txt err.txt; fail "fit exited $?"; }
  # The figure shows the measured observable: its 41 data points and, besides x and y, the
  # fitted model's signal.
  marks=$(grep -c 'stroke-width:1.1;' f.svg) lines=$(grep -c 'stroke-width:1.6;' f.svg)
  [ "$marks" -eq 41 ] && [ "$lines" -eq 3 ] || fail "the figure has $marks data marks and $lines curves (expected 41 and 3)"
  cat out.txt
  grep -q "schedule adam:3000@0.02,lbfgs:1000,lbfgs:1000" err.txt || fail "not the default for partly observed data"
  a=$("$H5" get f.h5 /params/values/alpha) g=$("$H5" get f.h5 /params/values/gain)
  echo "alpha = $a (truth 1.3), gain = $g (truth 2)"
  num_ok "$a" 1.287 1.313 || fail "alpha not within 1 %"
  num_ok "$g" 1.96 2.04 || fail "gain not within 2 %"
  num_ok "$("$H5" attr f.h5 /params/kept noise_ratio)" 0.5 1.5 || fail "not at the noise level"
  "$NDE" simulate lvo.nde -o held.h5 --t1 8 --dt-out 0.2 --columns signal --noise 0.005 --seed 4 \
    --quiet || fail "simulate held"
  "$NDE" forecast f.h5 --data held.h5 -o fc.h5 > fc.txt || { cat fc.txt; fail "forecast --data"; }
  cat fc.txt
  grep -qE "signal [0-9]" fc.txt || fail "the signal column is not scored (or not finite)"
  # Standard errors of a fit to an observable: through the observation model, the same by
  # forward sensitivities and by central differences, the truth inside the intervals, the noise
  # estimated for the signal column.  A known noise level: the data's noise_std of the signal
  # column (what simulate added), or --noise-std signal=S; one given for the states only is
  # refused for the signal column.
  "$NDE" uncertainty f.h5 -o u.h5 > u.txt 2> err.txt || { cat u.txt err.txt; fail "uncertainty exited $?"; }
  cat u.txt
  grep -q "residuals of each data column .* signal [0-9]" u.txt || fail "no noise level of the signal"
  "$NDE" uncertainty f.h5 -o ufd.h5 --finite-differences > /dev/null || fail "--finite-differences"
  for p in alpha beta gamma delta gain; do
    a=$("$H5" get u.h5 /params/se/$p) b=$("$H5" get ufd.h5 /params/se/$p)
    awk -v a="$a" -v b="$b" 'BEGIN { exit !(a > 0 && (a - b) ^ 2 <= (1e-5 * b) ^ 2) }' ||
      fail "se($p): $a by sensitivities, $b by differences"
  done
  for pv in alpha:1.3 beta:0.9 gamma:0.8 delta:1.8 gain:2; do
    p=${pv%%:*} v=${pv#*:}
    lo=$("$H5" get u.h5 /params/lower/$p) hi=$("$H5" get u.h5 /params/upper/$p)
    num_ok "$v" "$lo" "$hi" || fail "$p = $v outside [$lo, $hi]"
  done
  "$NDE" uncertainty f.h5 -o uk.h5 --noise-model known --noise-std x=0.01,y=0.01 > /dev/null 2> err.txt &&
    fail "a known noise level was taken for the observable"
  grep -q "the noise of observable 'signal' is not known" err.txt || { cat err.txt; fail "message"; }
  [ -e uk.h5 ] && fail "a refused uncertainty wrote uk.h5"
  sd=$("$H5" attr d.h5 /y noise_std)
  "$NDE" uncertainty f.h5 -o uk.h5 --noise-model known > uk.txt || { cat uk.txt; fail "known noise from the data"; }
  grep -q "noise known: signal " uk.txt || { cat uk.txt; fail "no known level of the signal"; }
  "$NDE" uncertainty f.h5 -o uk2.h5 --noise-model known --noise-std "signal=$(awk -v s="$sd" 'BEGIN { printf "%.17g", 2 * s }')" \
    > /dev/null || fail "--noise-std signal=S"
  for p in alpha gain; do
    a=$("$H5" get u.h5 /params/se/$p) k=$("$H5" get uk.h5 /params/se/$p) k2=$("$H5" get uk2.h5 /params/se/$p)
    echo "se($p): $a (estimated), $k (the data's noise_std $sd), $k2 (twice it)"
    # The estimated level (0.026) is near the one simulate added (0.023): so are the errors.
    awk -v a="$a" -v k="$k" 'BEGIN { exit !(k > 0.7 * a && k < 1.3 * a) }' || fail "se($p) known vs estimated"
    awk -v k="$k" -v k2="$k2" 'BEGIN { exit !((k2 - 2 * k) ^ 2 <= (1e-9 * k2) ^ 2) }' || fail "se($p) not linear in sigma"
  done
  "$NDE" forecast u.h5 --t1 10 -o band.h5 > band.txt || { cat band.txt; fail "forecast band"; }
  grep -q "linearised interval" band.txt || fail "no band from the standard errors"
  # A forecast writes the observables beside the states: signal = gain*x + y at every time.
  "$NDE" forecast f.h5 --t1 10 -o fo.csv --no-band > /dev/null || fail "forecast to CSV"
  [ "$(head -1 fo.csv)" = "t,x,y,signal" ] || { head -2 fo.csv; fail "forecast columns"; }
  awk -F, -v g="$g" 'NR > 1 { d = $4 - (g * $2 + $3); if (d < 0) d = -d; s = $4 < 0 ? -$4 : $4
    if (!(d <= 1e-12 * s)) bad = 1; n++ } END { exit bad || n != 251 }' fo.csv ||
    { head -4 fo.csv; fail "the forecast's signal is not gain*x + y"; }
  ;;
bad_inputs_are_refused_with_their_place)
  expect() { # code fragment args...
    local code=$1 frag=$2; shift 2
    "$NDE" "$@" > /dev/null 2> err.txt; local rc=$?
    [ $rc -eq "$code" ] || { cat err.txt; fail "'$*' exited $rc, expected $code"; }
    grep -qF -- "$frag" err.txt || { cat err.txt; fail "'$*': message lacks '$frag'"; }
    [ "$(wc -l < err.txt)" -le 2 ] || { cat err.txt; fail "'$*': more than one message"; }
    [ -e out.h5 ] && fail "'$*' wrote a file"
    return 0
  }
  S="simulate truth.nde --t1 8 --dt-out 0.25 --const g=1 -o out.h5"
  expect 2 "declares measured inputs: give their samples" $S
  printf 't,v\n0,1\n8,1\n' > bad1.csv
  expect 2 "bad1.csv:1:3: column 'v' is not an input of the model" $S --inputs bad1.csv
  printf 't,u\n0,1\n0,2\n' > bad2.csv
  expect 2 "bad2.csv:3: time 0 is not after 0" $S --inputs bad2.csv
  printf 't,u\n0,1\n1,abc\n' > bad3.csv
  expect 2 "bad3.csv:3:3: expected 2 finite numbers per row" $S --inputs bad3.csv
  printf 'time,u\n0,1\n' > bad4.csv
  expect 2 "bad4.csv:1:1: the first column must be 't'" $S --inputs bad4.csv
  printf 't,u\n0,1\n4,1\n' > short.csv
  expect 2 "needs the measured input 'u' beyond its samples on [0, 4]" $S --inputs short.csv
  expect 2 "--const: no value for the constant 'g'" simulate truth.nde --t1 8 --dt-out 0.25 --inputs u.csv -o out.h5
  expect 2 "--const: 'h=1' names no constant of the model" simulate truth.nde --t1 8 --dt-out 0.25 --inputs u.csv --const g=1,h=1 -o out.h5
  # Data without the input the model declares: the fit names the series.
  "$NDE" simulate "$ROOT/models/lotka_volterra.nde" -o lv.h5 --t1 2 --dt-out 0.25 --quiet || fail "lv"
  printf 'state x = 1\ninput u\ndx/dt = -x + u\n' > needs_u.nde
  printf 'state x = 1\ndx/dt = -x\n' > plain.nde
  "$NDE" simulate plain.nde -o plain.h5 --t1 2 --dt-out 0.25 --quiet || fail "plain"
  "$NDE" fit needs_u.nde plain.h5 -o out.h5 > /dev/null 2> err.txt
  [ $? -eq 2 ] && grep -q "plain.h5:/inputs/u: no such dataset" err.txt || { cat err.txt; fail "data without inputs"; }
  ;;
*) fail "unknown case $CASE" ;;
esac
echo "ok: $CASE"
