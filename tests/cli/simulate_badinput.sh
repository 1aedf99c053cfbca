#!/bin/sh
# `nde simulate` on bad input: every class exits with its code (2 usage/model/data, 4 files that
# cannot be read) and one line naming the option or file and what was expected, and leaves no
# output file and no temporary file behind.
# usage: simulate_badinput.sh NDE MODELS_DIR
set -u
nde=$1
models=$2
lv=$models/lotka_volterra.nde
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
out=$tmp/out/d.h5
mkdir "$tmp/out"

# expect CODE 'MESSAGE (a grep -F fixed string of the one stderr line)' ARGS...
expect() {
  want=$1
  msg=$2
  shift 2
  "$nde" simulate "$@" >"$tmp/stdout" 2>"$tmp/err"
  code=$?
  [ $code -eq "$want" ] || fail "simulate $*: exit $code, expected $want ($(cat "$tmp/err"))"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "simulate $*: expected one line on stderr, got: $(cat "$tmp/err")"
  grep -qF -- "nde: error: $msg" "$tmp/err" || fail "simulate $*: message '$(cat "$tmp/err")', expected 'nde: error: $msg'"
  [ -s "$tmp/stdout" ] && fail "simulate $*: printed on stdout: $(cat "$tmp/stdout")"
  [ -z "$(ls -A "$tmp/out")" ] && return 0
  fail "simulate $*: left files behind: $(ls -A "$tmp/out")"
}

expect 2 "unknown option '--frobnicate' (see simulate --help)" "$lv" -o "$out" --t1 5 --dt-out 0.25 --frobnicate
expect 2 "--t1: expected a number, got '5x'" "$lv" -o "$out" --t1 5x --dt-out 0.25
expect 2 "--dt-out: expected a number, got 'fast'" "$lv" -o "$out" --t1 5 --dt-out fast
expect 2 "--seed: expected a whole number, got '1.5'" "$lv" -o "$out" --t1 5 --dt-out 0.25 --seed 1.5
expect 2 "--noise: expected a number, got 'nan'" "$lv" -o "$out" --t1 5 --dt-out 0.25 --noise nan
expect 2 "--noise: expected a number in [0, 1000000], got '-0.01'" "$lv" -o "$out" --t1 5 --dt-out 0.25 --noise -0.01
expect 2 "no output file (expected -o DATA.h5 or DATA.csv)" "$lv" --t1 5 --dt-out 0.25
expect 2 "missing arguments (usage: nde simulate MODEL.nde -o DATA.h5" -o "$out" --t1 5 --dt-out 0.25
expect 2 "--t1: expected a final time after t0 = 0, got 0" "$lv" -o "$out" --t1 0 --dt-out 0.25
expect 2 "--t1: expected a final time after t0 = 3, got 2.5" "$lv" -o "$out" --t0 3 --t1 2.5 --dt-out 0.25
expect 2 "no final time (expected --t1 T1 with --dt-out H or --points N, or --times FILE)" "$lv" -o "$out" --dt-out 0.25
expect 2 "no output spacing (expected exactly one of --dt-out H or --points N)" "$lv" -o "$out" --t1 5
expect 2 "--dt-out: expected a number in (0, 1e+300], got '-0.25'" "$lv" -o "$out" --t1 5 --dt-out -0.25
expect 2 "--points: expected a whole number in [2, 100000000], got '1'" "$lv" -o "$out" --t1 5 --points 1
expect 2 "--times: cannot be combined with --t0/--t1/--dt-out/--points" "$lv" -o "$out" --t1 5 --times "$lv"
expect 2 "--solver: unknown method 'rk5' (expected one of euler, rk4" "$lv" -o "$out" --t1 5 --dt-out 0.25 --solver rk5
expect 2 "--dt: expected a number in (0, 1e+300], got '0'" "$lv" -o "$out" --t1 5 --dt-out 0.25 --dt 0
expect 2 "--u0: 'z' is not a state component of $lv (expected one of x, y)" "$lv" -o "$out" --t1 5 --dt-out 0.25 --u0 x=1,z=2
expect 2 "--u0: x: expected a finite number, got '1;5'" "$lv" -o "$out" --t1 5 --dt-out 0.25 --u0 'x=1;5'
expect 2 "--u0: expected NAME=VALUE items separated by commas, got 'x'" "$lv" -o "$out" --t1 5 --dt-out 0.25 --u0 x
expect 2 "--u0: 'y' is not a state component of $models/spiral_truth.nde (expected one of y[1], y[2])" \
  "$models/spiral_truth.nde" -o "$out" --t1 5 --dt-out 0.25 --u0 y=1
expect 2 "--param: 'alhpa' is not a parameter of $lv (expected one of alpha, beta, gamma, delta)" "$lv" -o "$out" --t1 5 --dt-out 0.25 --param alhpa=1.3
expect 2 "--param: beta: expected a finite number, got 'O.9'" "$lv" -o "$out" --t1 5 --dt-out 0.25 --param beta=O.9
expect 2 "--param: alpha = -1.3 is outside its domain (expected a positive value)" "$lv" -o "$out" --t1 5 --dt-out 0.25 --param alpha=-1.3
expect 2 "--param: alpha is fixed in $models/lotka_volterra_ude.nde (line 6) and cannot be overridden" \
  "$models/lotka_volterra_ude.nde" -o "$out" --t1 5 --dt-out 0.25 --param alpha=1.4
expect 2 "$tmp/none.nde: cannot read: " "$tmp/none.nde" -o "$out" --t1 5 --dt-out 0.25

# A model with errors: its diagnostics (first line FILE:LINE:COL) and exit 2, nothing written.
printf 'state x, y\nparam alpha = 1.3 (positive)\ndx/dt = alpah*x\ndy/dt = -y\n' >"$tmp/bad.nde"
"$nde" simulate "$tmp/bad.nde" -o "$out" --t1 5 --dt-out 0.25 >/dev/null 2>"$tmp/err"
code=$?
[ $code -eq 2 ] || fail "model with errors: exit $code, expected 2"
[ "$(head -n 1 "$tmp/err")" = "nde: error: $tmp/bad.nde:3:9: unknown name 'alpah' (did you mean 'alpha'?)" ] \
  || fail "model with errors: $(cat "$tmp/err")"
[ -z "$(ls -A "$tmp/out")" ] || fail "model with errors left files behind"

# --times files with errors.
printf '0\n0.5\n0.5\n1\n' >"$tmp/dup.txt"
expect 2 "--times: $tmp/dup.txt: times not strictly increasing at index 2 (expected t[2] > 0.5, got 0.5)" "$lv" -o "$out" --times "$tmp/dup.txt"
printf '0\n1 2\n' >"$tmp/two.txt"
expect 2 "--times: $tmp/two.txt:2: expected one time (a finite number) per line, got '1 2'" "$lv" -o "$out" --times "$tmp/two.txt"
expect 2 "--times: $tmp/nofile.txt: cannot open (No such file or directory)" "$lv" -o "$out" --times "$tmp/nofile.txt"

# --init whose theta does not fit the model; a missing --init file.
"$nde" simulate "$lv" -o "$tmp/lv.h5" --t1 1 --dt-out 0.5 --quiet || fail "simulate for --init"
expect 2 "--init: $tmp/lv.h5:/params/theta: no such dataset" "$lv" -o "$out" --t1 5 --dt-out 0.25 --init "$tmp/lv.h5"

# Output directory that does not exist: exit 4, nothing written.
expect 4 "$tmp/out/sub/d.h5" "$lv" -o "$tmp/out/sub/d.h5" --t1 5 --dt-out 0.25

# A failed run leaves an existing file untouched.
"$nde" simulate "$lv" -o "$out" --t1 1 --dt-out 0.5 --quiet || fail "simulate to out"
cp "$out" "$tmp/before.h5"
"$nde" simulate "$lv" -o "$out" --t1 1 --dt-out 0.5 --param alhpa=2 2>/dev/null && fail "bad --param succeeded"
cmp -s "$out" "$tmp/before.h5" || fail "a failed run changed the existing output file"
[ "$(ls -A "$tmp/out")" = "d.h5" ] || fail "a failed run left files: $(ls -A "$tmp/out")"
echo "all simulate bad-input checks passed"
