#!/bin/sh
# `nde check`: exit 0 and a summary on every shipped model, exit 2 with FILE:LINE:COL messages
# on a bad file, exit 2 on a missing file (bad input, as every command), exit 2 on bad usage.
# usage: check.sh NDE MODELS_DIR
set -u
nde=$1
models=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

for f in "$models"/*.nde; do
  "$nde" check "$f" >"$tmp/out" 2>"$tmp/err" || fail "nde check $f exited $? ($(cat "$tmp/err"))"
  [ -s "$tmp/err" ] && fail "nde check $f wrote to stderr: $(cat "$tmp/err")"
  grep -q '^learnable parameters: ' "$tmp/out" || fail "no summary for $f"
done

"$nde" check "$models/lotka_volterra_ude.nde" >"$tmp/out" || fail "lv ude"
grep -qx 'learnable parameters: 87' "$tmp/out" || fail "LV UDE should have 87 learnable parameters: $(cat "$tmp/out")"
grep -qx '  alpha = 1.3  fixed' "$tmp/out" || fail "alpha line: $(cat "$tmp/out")"
grep -qx '  U : 2 -> 5 rbf -> 5 rbf -> 5 rbf -> 2  (87 parameters, theta\[0..86\], init glorot)' "$tmp/out" \
  || fail "net line: $(cat "$tmp/out")"

# Per-series parameters in their series' blocks, inputs, constants and observables are listed.
"$nde" check "$models/heated_room.nde" >"$tmp/out" || fail "heated room"
for line in '  k = 0.25  positive  per series: theta[26 + s*1 + 0] = log(value) for series s' \
    'inputs (2, given per series with the data):' '  heater  step' '  T_out  cubic, hold' \
    'constants (1):' '  P  from data (one value per series)' 'observables (1):' '  sensor' \
    'learnable parameters: 26, and 1 per series'; do
  grep -qxF -- "$line" "$tmp/out" || fail "heated room lacks '$line': $(cat "$tmp/out")"
done

printf 'state x, y\nparam alpha = 1.3 (positive)\ndx/dt = alpah*x\ndy/dt = -y\n' >"$tmp/bad.nde"
"$nde" check "$tmp/bad.nde" >"$tmp/out" 2>"$tmp/err"
code=$?
[ $code -eq 2 ] || fail "bad model: exit $code, expected 2"
[ -s "$tmp/out" ] && fail "bad model wrote a summary"
first=$(head -n 1 "$tmp/err")
[ "$first" = "nde: error: $tmp/bad.nde:3:9: unknown name 'alpah' (did you mean 'alpha'?)" ] \
  || fail "first line: $first"
[ "$(sed -n 2p "$tmp/err")" = "    3 | dx/dt = alpah*x" ] || fail "source line: $(sed -n 2p "$tmp/err")"
[ "$(sed -n 3p "$tmp/err")" = "      |         ^" ] || fail "caret line: $(sed -n 3p "$tmp/err")"

"$nde" check "$tmp/missing.nde" >/dev/null 2>"$tmp/err"
code=$?
[ $code -eq 2 ] || fail "missing file: exit $code, expected 2"
grep -q "^nde: error: $tmp/missing.nde: cannot read: " "$tmp/err" || fail "missing file message: $(cat "$tmp/err")"

"$nde" check >/dev/null 2>&1
code=$?
[ $code -eq 2 ] || fail "no file: exit $code, expected 2"
"$nde" check --frobnicate "$models/spiral.nde" >/dev/null 2>&1
code=$?
[ $code -eq 2 ] || fail "unknown option: exit $code, expected 2"
echo "ok"
