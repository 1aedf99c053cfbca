#!/usr/bin/env bash
# nde export --c of models with grad: the exported C (reverse-mode code over the expression, the
# networks' reverse passes written out) compiles on its own with -Werror and matches nde's f to
# 1e-12 at 200 states, for the shipped HNN, port-Hamiltonian and gradient-system models and for a
# model with every construct grad meets (nets of every smooth activation, matrices, an equation
# of several states, abs, min, clamp, ifelse, powers, intermediates); a grad of a grad is refused.
# usage: grad_export.sh NDE EXPORT_REF SOURCE_ROOT
set -u
NDE=$1 REF=$2 ROOT=$3
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
NDE=$(abs "$NDE") REF=$(abs "$REF")
CC=${CC:-cc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$T" || exit 1
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
# check MODEL N T1: a short fit on the model's own simulation, export, compile, compare with f.
check() {
  "$NDE" simulate "$1" -o d.h5 --t1 "$3" --points 5 --quiet || fail "simulate $1"
  "$NDE" fit "$1" d.h5 -o fit.h5 --optim adam:3 --quiet || fail "fit $1"
  "$NDE" export fit.h5 --c m.c --prefix mdl 2> /dev/null || fail "export --c $1"
  "$CC" -std=c11 -O2 -Wall -Wextra -pedantic -Werror -DNSTATE="$2" driver.c m.c -lm -o drv \
    || fail "the exported C of $1 does not compile"
  awk -v n="$2" 'BEGIN { srand(2385); for (i = 0; i < 200; i++) {
    printf "%.17g", 10 * rand(); for (j = 0; j < n; j++) printf " %.17g", -1.5 + 3 * rand(); printf "\n" } }' > states
  ./drv < states > c.txt || fail "driver failed"
  "$REF" fit.h5 < states > ref.txt || fail "reference failed"
  paste -d' ' c.txt ref.txt | awk -v n="$2" '{
    for (j = 1; j <= n + 1; j++) { a = $j; b = $(j + n + 1);
      s = (a < 0 ? -a : a); if ((b < 0 ? -b : b) > s) s = (b < 0 ? -b : b); if (s < 1) s = 1;
      d = (a - b) / s; if (d < 0) d = -d; if (d > e) e = d }
  } END { printf "%s: max relative difference %.3g over %d states\n", m, e, NR; exit !(NR == 200 && e <= 1e-12) }' \
    m="$(basename "$1")" || fail "the exported C of $1 does not match nde's f to 1e-12"
}
check "$ROOT/models/hnn.nde" 2 1
check "$ROOT/models/port_hamiltonian.nde" 2 1
check "$ROOT/models/gradient_system.nde" 2 1
cat > every.nde <<'MDL'
state q = 0.3, p = 0.2, y[2] = [0.1, -0.4]
param k = 0.7
param r = 0.3 (positive)
net H : 4 -> 5 gelu -> 4 sigmoid -> 1
net G : 2 -> 3 rbf -> 3 tanh -> 2
net S : 1 -> 3 softplus -> 1
J = [[0, 1], [-1, 0]]
R = [[0, 0], [0, r]]
A = [[q, p], [k, q*p]]
E = sin(H(q, p, y))*q^2 + exp(k*p)/(1 + p^2) + abs(q - y[1])*min(p, y[2]) + (A A [q, 1])[1] + clamp(y[1]*q, -0.2, 0.3) + ifelse(q > 0, G(q, p)[1], (abs(p) + 0.5)^1.5) + S(max(q, p))
V = q^4/4 + k*q^2*p + p^3
g = grad(V, [q, p])
d[q, p]/dt = (J - R) grad(E, [q, p]) + [g[2], g[1]*g[2]]
dy/dt = -grad(G(y)[2]*E + tanh(y[1]*y[2]) + sqrt(1 + y[2]^2) + log(2 + y[1]^2) + y[1]^-2, y)
MDL
check every.nde 4 0.2
# A grad of a grad is refused: exit 2 (the model is what export --c cannot write), saying what.
printf 'state q = 0.3, p = 0.2\nV = q^3*p\ndq/dt = grad(grad(V, q)[1], p)\ndp/dt = q\n' > nested.nde
"$NDE" export nested.nde --c n.c 2> err
rc=$?
[ $rc -eq 2 ] || fail "a grad of a grad: exit $rc, expected 2 ($(cat err))"
grep -q "^nde: error: nested.nde: --c does not support a grad of an expression that itself contains grad" err \
  || fail "no message for a grad of a grad: $(cat err)"
[ -e n.c ] && fail "a grad of a grad left n.c"
echo "a grad of a grad is refused: $(cat err)"
