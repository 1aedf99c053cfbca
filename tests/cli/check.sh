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

# A state named t, or a name declared twice, is one error (with a note at the first
# declaration), not a cascade of "no equation" and "did you mean 't'?".
printf 'state t = 1\nparam k = 0.5\ndt/dt = -k*t\n' >"$tmp/t.nde"
"$nde" check "$tmp/t.nde" >/dev/null 2>"$tmp/err"
code=$?
[ $code -eq 2 ] || fail "state t: exit $code, expected 2"
[ "$(grep -c '^nde: ' "$tmp/err")" -eq 1 ] || fail "state t: more than one message: $(cat "$tmp/err")"
[ "$(head -n 1 "$tmp/err")" = "nde: error: $tmp/t.nde:1:7: 't' is a reserved name (the time)" ] \
  || fail "state t: $(cat "$tmp/err")"
printf 'state x = 1, x = 2\nparam k = 0.5\ndx/dt = -k*x\n' >"$tmp/dup.nde"
"$nde" check "$tmp/dup.nde" >/dev/null 2>"$tmp/err"
code=$?
[ $code -eq 2 ] || fail "state x twice: exit $code, expected 2"
[ "$(grep -c '^nde: error: ' "$tmp/err")" -eq 1 ] || fail "state x twice: more than one error: $(cat "$tmp/err")"
[ "$(grep '^nde: ' "$tmp/err" | tr '\n' '|')" = "nde: error: $tmp/dup.nde:1:14: 'x' is already declared (as a state)|nde: note: $tmp/dup.nde:1:7: 'x' was first declared here|" ] \
  || fail "state x twice: $(cat "$tmp/err")"
printf 'param k = 0.5\nstate k = 1\ndk/dt = -k\n' >"$tmp/dup2.nde"
"$nde" check "$tmp/dup2.nde" >/dev/null 2>"$tmp/err"
[ "$(grep -c '^nde: error: ' "$tmp/err")" -eq 1 ] || fail "state named like a parameter: $(cat "$tmp/err")"

# A file that is not text: one message, and no byte of it echoed raw (control bytes and bytes
# that are not UTF-8 would act on the terminal).
raw() { LC_ALL=C tr -d '\n -~' <"$1" | wc -c; }
printf '\211HDF\r\n\032\n\0\0\0\0\0\010\010\0\004\0\020\0\0\0\0\0\377\377\n\033[2Jjunk\n' >"$tmp/data.h5"
"$nde" check "$tmp/data.h5" >/dev/null 2>"$tmp/err"
code=$?
[ $code -eq 2 ] || fail "HDF5 file as a model: exit $code, expected 2"
[ "$(cat "$tmp/err")" = "nde: error: $tmp/data.h5: this is an HDF5 file, not a model file (expected the model's text: nde check MODEL.nde)" ] \
  || fail "HDF5 file as a model: $(cat "$tmp/err")"
printf 'state x = 1\ndx/dt = -x\n\033[2J\0\001\002\377\n\177\200\n' >"$tmp/nul.nde"
"$nde" check "$tmp/nul.nde" >/dev/null 2>"$tmp/err"
code=$?
[ $code -eq 2 ] || fail "NUL bytes: exit $code, expected 2"
[ "$(grep -c '^nde: ' "$tmp/err")" -eq 1 ] || fail "NUL bytes: more than one message: $(cat -v "$tmp/err")"
grep -qxF "nde: error: $tmp/nul.nde:3:5: this is not a text file: it holds a NUL byte (0x00) (expected the model's text, UTF-8)" "$tmp/err" \
  || fail "NUL bytes: $(cat -v "$tmp/err")"
[ "$(raw "$tmp/err")" -eq 0 ] || fail "NUL bytes: raw bytes echoed: $(cat -v "$tmp/err")"
# Latin-1 text, a C1 control and an escape sequence: each line its message, bytes escaped, the
# caret still under its column.
printf 'state x\351 = 1 # caf\351\ndx/dt = -x\302\205 + 3\377\ny = \033[2J 1\n' >"$tmp/latin1.nde"
"$nde" check "$tmp/latin1.nde" >/dev/null 2>"$tmp/err"
code=$?
[ $code -eq 2 ] || fail "latin-1: exit $code, expected 2"
[ "$(raw "$tmp/err")" -eq 0 ] || fail "latin-1: raw bytes echoed: $(cat -v "$tmp/err")"
[ "$(grep '^nde: error: ' "$tmp/err" | tr '\n' '|')" = "nde: error: $tmp/latin1.nde:1:8: invalid UTF-8 (byte 0xe9; expected UTF-8 text)|nde: error: $tmp/latin1.nde:2:11: unexpected control character U+0085|nde: error: $tmp/latin1.nde:3:5: unexpected character (byte 0x1b)|" ] \
  || fail "latin-1 messages: $(cat -v "$tmp/err")"
[ "$(sed -n 2,3p "$tmp/err" | tr '\n' '|')" = "    1 | state x? = 1 # caf?|      |        ^|" ] \
  || fail "latin-1 source line: $(sed -n 2,3p "$tmp/err" | cat -v)"

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
