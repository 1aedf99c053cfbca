#!/usr/bin/env bash
# End-to-end tests of `nde export`: the standalone C of a trained model compiles on its own (cc,
# -std=c11 -Wall -Wextra -pedantic -Werror, only -lm) and matches nde's f to 1e-12 at 200 states,
# for the UDE (rbf network), the discovered model, and the other shipped models (tanh, gelu...,
# vector states, functions); --text and --latex print the equations; bad input exits 2.
# usage: export.sh NDE H5CHECK EXPORT_REF SOURCE_ROOT CASE
set -u
NDE=$1 H5=$2 REF=$3 ROOT=$4 CASE=$5
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
NDE=$(abs "$NDE") H5=$(abs "$H5") REF=$(abs "$REF")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
DATA=$ROOT/data/lotka_volterra.h5
UDE=$ROOT/models/lotka_volterra_ude.nde
CC=${CC:-cc}
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$T" || exit 1

# check_c FIT.h5 N_STATE: export, compile with a driver, compare with nde's f.
check_c() {
  "$NDE" export "$1" --c m.c --prefix mdl 2> /dev/null || fail "export --c $1"
  cat > driver.c <<'DRV'
#include <stdio.h>
int mdl_rhs(double t, const double *u, double *du);
#define N NSTATE
int main(void) {
  double t, u[N], du[N];
  while (scanf("%lf", &t) == 1) {
    for (int j = 0; j < N; j++)
      if (scanf("%lf", &u[j]) != 1) return 2;
    int rc = mdl_rhs(t, u, du);
    for (int j = 0; j < N; j++) printf("%.17g%s", du[j], j + 1 < N ? " " : "");
    printf(" %d\n", rc);
  }
  return 0;
}
DRV
  "$CC" -std=c11 -O2 -Wall -Wextra -pedantic -Werror -DNSTATE="$2" driver.c m.c -lm -o drv \
    || fail "the exported C of $1 does not compile"
  awk -v n="$2" 'BEGIN { srand(2385); for (i = 0; i < 200; i++) {
    printf "%.17g", 10 * rand(); for (j = 0; j < n; j++) printf " %.17g", 0.05 + 4.9 * rand(); printf "\n" } }' > states
  ./drv < states > c.txt || fail "driver failed"
  "$REF" "$1" < states > ref.txt || fail "reference failed"
  paste -d' ' c.txt ref.txt | awk -v n="$2" '{
    for (j = 1; j <= n + 1; j++) { a = $j; b = $(j + n + 1);
      s = (a < 0 ? -a : a); if ((b < 0 ? -b : b) > s) s = (b < 0 ? -b : b); if (s < 1) s = 1;
      d = (a - b) / s; if (d < 0) d = -d; if (d > e) e = d }
  } END { printf "max relative difference %.3g over %d states\n", e, NR; exit !(NR == 200 && e <= 1e-12) }' \
    || fail "the exported C of $1 does not match nde's f to 1e-12"
}

case $CASE in
exported_c_matches_f_to_1e-12)
  "$NDE" fit "$UDE" "$DATA" -o fit.h5 --quiet || fail "fit"
  echo "UDE:"; check_c fit.h5 2
  "$NDE" discover fit.h5 --quiet > /dev/null || fail "discover"
  "$NDE" fit lotka_volterra_ude_discovered.nde "$DATA" -o refit.h5 --quiet || fail "refit"
  echo "discovered model:"; check_c refit.h5 2
  # Models with other activations, vector states, powers and functions, at their initial
  # parameters (a short fit on their own model's data is not needed for the C to be checked).
  cat > zoo.nde <<'MDL'
state y[2] = [2, 0], z = 0.5
param k = 0.7 (positive)
param c = 0.2 (in [0, 1])
net f : 3 -> 6 tanh -> 5 gelu -> 4 softplus -> 4 sigmoid -> 3 relu -> 3
net g : 1 -> 4 identity -> 1
v = f([y^3, sin(z)])
dy/dt = [v[1], v[2]] - k*y/(1 + z^2) + exp(-abs(y))*sqrt(z^2 + 1)
dz/dt = g(log(1 + z^2))[1] + c*cos(t)*v[3] - z^1.5*0.1 + (y[1] - y[2])^-2*1e-3
MDL
  "$NDE" simulate zoo.nde -o zoo.h5 --t1 1 --dt-out 0.5 --quiet || fail "simulate zoo"
  "$NDE" fit zoo.nde zoo.h5 -o zoofit.h5 --quiet --optim adam:3 || fail "fit zoo"
  echo "zoo:"; check_c zoofit.h5 3
  "$NDE" simulate "$ROOT/models/pendulum.nde" -o p.h5 --t1 1 --dt-out 0.5 --quiet || fail "simulate pendulum"
  "$NDE" fit "$ROOT/models/pendulum.nde" p.h5 -o pfit.h5 --quiet --optim adam:3 || fail "fit pendulum"
  echo "pendulum:"; check_c pfit.h5 2
  ;;
equations_as_text_and_latex)
  "$NDE" fit "$UDE" "$DATA" -o fit.h5 --quiet || fail "fit"
  "$NDE" discover fit.h5 --quiet > /dev/null || fail "discover"
  "$NDE" fit lotka_volterra_ude_discovered.nde "$DATA" -o refit.h5 --quiet || fail "refit"
  "$NDE" export refit.h5 > text.txt || fail "export text"
  cat text.txt
  grep -q '^u = \[U1_xy\*x\*y, U2_xy\*x\*y\]$' text.txt || fail "text: intermediate"
  grep -q '^dx/dt = alpha\*x + u\[1\]$' text.txt || fail "text: equation"
  grep -q '^where alpha = 1.3, delta = 1.8, U1_xy = -0.89' text.txt || fail "text: values"
  "$NDE" export refit.h5 --latex --values > tex.txt || fail "export latex"
  cat tex.txt
  grep -q '\\begin{aligned}' tex.txt || fail "latex: environment"
  grep -q '\\frac{dy}{dt} &= -1.8 \\, y + u_{2}' tex.txt || fail "latex: equation with values"
  grep -q 'u &= \\left\[\\left(-0.89[0-9]*\\right) \\, x \\, y, 0.80[0-9]* \\, x \\, y\\right\]' tex.txt \
    || fail "latex: discovered terms"
  # A .nde file exports too (declared parameters).
  "$NDE" export "$ROOT/models/lotka_volterra.nde" --latex | grep -q '\\beta \\, x \\, y' || fail "latex of a .nde"
  # Per-series parameters: their fitted values, one line per series named by its group (--values
  # printed only "k is per series").
  printf 'state x = 1\nparam k = 1 (positive, per series)\nparam c = 0.1\ndx/dt = -k*x + c\n' > ps.nde
  "$NDE" simulate ps.nde -o a.h5 --t1 2 --points 9 --param k=0.6,c=0.25 --quiet || fail "simulate a"
  "$NDE" simulate ps.nde -o b.h5 --t1 2 --points 9 --param k=1.7,c=0.25 --quiet || fail "simulate b"
  "$NDE" merge -o ab.h5 a.h5 b.h5 --names run_a,run_b > /dev/null || fail "merge"
  "$NDE" fit ps.nde ab.h5 -o psfit.h5 --optim lbfgs:200 --quiet || fail "per-series fit"
  for v in "" --values; do
    # shellcheck disable=SC2086
    "$NDE" export psfit.h5 $v > ps.txt || fail "export $v of a per-series fit"
    cat ps.txt
    grep -q "is per series" ps.txt && fail "export $v: the values per series are not printed"
    awk '/^  \/run_a: k = / { a = $4 } /^  \/run_b: k = / { b = $4 }
         END { exit !(a > 0.5999 && a < 0.6001 && b > 1.6999 && b < 1.7001) }' ps.txt \
      || fail "export $v: the fitted k of each series"
  done
  grep -qx 'dx/dt = -k\*x + 0.25[0-9]*' ps.txt || fail "--values: the shared value"
  grep -qx 'where, per series:' ps.txt || fail "--values: the per-series block"
  "$NDE" export psfit.h5 --latex --values | grep -q '^%   /run_b: k = 1.7' || fail "latex: per-series values"
  ;;
bad_input_exits_2_with_a_message)
  "$NDE" export nope.h5 2> e.txt; [ $? -eq 2 ] && grep -q nope.h5 e.txt || fail "missing file"
  "$NDE" export "$DATA" 2> e.txt; [ $? -eq 2 ] && grep -q "expected a result file of nde fit" e.txt || fail "data file"
  "$NDE" export "$UDE" --c x.c --prefix 9x 2> e.txt; [ $? -eq 2 ] && grep -q "is not a C identifier" e.txt || fail "prefix"
  [ -e x.c ] && fail "written on bad input"
  # Models that read values per series: refused before anything is done, exit 2, naming the
  # file, the line and the declaration (it was "export failed: operation not supported", exit 1).
  printf 'state x = 1\ninput u (hold)\nparam k = 0.5\ndx/dt = -k*x + u\n' > inp.nde
  printf 'state x = 1\nparam k = 0.5 (per series)\ndx/dt = -k*x\n' > ps.nde
  printf 'state x = 1\nconst g (from data)\nparam k = 0.5\ndx/dt = -k*x + g\n' > cd.nde
  for m in "inp.nde:2: export --c does not support the measured input 'u'" \
           "ps.nde:2: export --c does not support the per-series parameter 'k'" \
           "cd.nde:2: export --c does not support the constant from data 'g'"; do
    f=${m%%:*}
    "$NDE" export "$f" --c x.c 2> e.txt > o.txt
    rc=$?
    [ $rc -eq 2 ] || fail "$f: exit $rc, expected 2 ($(cat e.txt))"
    grep -qF "nde: error: $m: the exported rhs(t, u, du) has no series to take its value from" e.txt \
      || fail "$f: $(cat e.txt)"
    [ -e x.c ] && fail "$f: x.c written"
    [ -s o.txt ] && fail "$f: printed $(cat o.txt)"
    "$NDE" export "$f" --text > /dev/null || fail "$f: --text refused"
  done
  "$NDE" export "$ROOT/models/tanks_ude.nde" --c x.c 2> e.txt
  [ $? -eq 2 ] && grep -qF "tanks_ude.nde:9: export --c does not support the measured input 'V' and the per-series parameter 'gain' (line 11)" e.txt \
    || fail "tanks: $(cat e.txt)"
  # ... and a fit of one names the result and the model.
  "$NDE" simulate ps.nde -o ps.h5 --t1 1 --points 5 --quiet || fail "simulate ps"
  "$NDE" fit ps.nde ps.h5 -o psfit.h5 --optim adam:2 --quiet || fail "fit ps"
  "$NDE" export psfit.h5 --c x.c 2> e.txt
  [ $? -eq 2 ] && grep -qF "nde: error: psfit.h5: model ps.nde:2: export --c does not support the per-series parameter 'k'" e.txt \
    || fail "result with a per-series parameter: $(cat e.txt)"
  [ -e x.c ] && fail "written for a result with per-series parameters"
  ;;
*) fail "unknown case $CASE" ;;
esac
echo "ok: $CASE"
