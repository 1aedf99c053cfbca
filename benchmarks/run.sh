#!/bin/sh
# Build (if needed) and run every benchmark program, then print one table.
#
#   benchmarks/run.sh [BUILDDIR]
#
# BUILDDIR defaults to build-bench in the source tree.  Benchmarks need an optimised build: when
# BUILDDIR is not buildtype=release, build-bench is used instead (set up with
# `meson setup build-bench --buildtype=release` when missing).
#
# The programs are every executable defined in benchmarks/meson.build, in the order defined there:
# adding a program is one executable() (+ benchmark()) line there.  A program prints its table rows
# on stdout as
#   row|benchmark|case|time|rate|reference|ratio|target|result
# and anything else as notes, which are printed under the table.  A program that exits non-zero
# (for example a gradient that disagrees with its reference) makes this script exit 1 after the
# table; a missed performance target does not.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-bench}

buildtype() {
  meson introspect "$1" --buildoptions |
    python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"))'
}

if [ -f "$build/build.ninja" ] && [ "$(buildtype "$build")" != release ]; then
  echo "run.sh: $build is buildtype=$(buildtype "$build"), not release; using $src/build-bench" >&2
  build=$src/build-bench
fi
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$src" --buildtype=release >/dev/null
fi

# Executables defined in benchmarks/meson.build, as paths relative to the build directory.
programs=$(meson introspect "$build" --targets | python3 -c '
import json, os, sys
for t in json.load(sys.stdin):
    if t["type"] == "executable" and os.path.basename(os.path.dirname(t["defined_in"])) == "benchmarks":
        print(os.path.relpath(t["filename"][0], sys.argv[1]))
' "$build")
if [ -z "$programs" ]; then
  echo "run.sh: no benchmark programs in $build" >&2
  exit 1
fi
log=$(mktemp)
# shellcheck disable=SC2086 # one word per program
if ! ninja -C "$build" $programs src/cli/nde >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "run.sh: building the benchmarks in $build failed" >&2
  exit 1
fi
rm -f "$log"

# One thread everywhere: the targets are stated for one thread, and OpenBLAS and an OpenMP
# runtime competing for the cores distort every number.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 GOTO_NUM_THREADS=1

out=$(mktemp)
trap 'rm -f "$out" "$out.rows"' EXIT
status=0
for p in $programs; do
  name=$(basename "$p")
  echo "run.sh: running $name ..." >&2
  if ! "$build/$p" >>"$out"; then
    echo "run.sh: $name FAILED (exit status above)" >&2
    echo "$name: FAILED" >>"$out"
    status=1
  fi
done

# The table: columns aligned to their widest entry, numbers in the ratio column right-aligned.
{
  echo "row|benchmark|case|time|rate|reference|ratio|target|result"
  grep '^row|' "$out" || true
} | awk -F'|' '
  { n++; for (i = 2; i <= NF; i++) { cell[n, i] = $i; if (length($i) > w[i]) w[i] = length($i) }
    if (NF > nf) nf = NF }
  END {
    for (r = 1; r <= n; r++) {
      line = ""
      for (i = 2; i <= nf; i++) line = line sprintf("%-*s  ", w[i], cell[r, i])
      sub(/ +$/, "", line); print line
      if (r == 1) { rule = ""; for (i = 2; i <= nf; i++) rule = rule sprintf("%s  ", substr("------------------------------------------------------------", 1, w[i]))
                    sub(/ +$/, "", rule); print rule }
    }
  }'

# OpenBLAS picks its kernels for the CPU at load time (OPENBLAS_CORETYPE overrides it): a 2-64-64-2
# tanh net's forward + VJP at B = 2-256 took 1.5-2.9x as long with its Haswell kernels as with its
# SkylakeX ones on this machine, and concurrent small dgemm calls contend under the Haswell ones
# (docs/scaling.md).
blas_core=$(OPENBLAS_VERBOSE=2 "$build/src/cli/nde" --version 2>&1 | sed -n 's/^Core: //p' | head -n 1)
echo
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(getconf _NPROCESSORS_ONLN) cores online;" \
  "OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS OMP_NUM_THREADS=$OMP_NUM_THREADS;" \
  "OpenBLAS kernels ${blas_core:-unknown} (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset});" \
  "build $build ($(buildtype "$build")); load average $(cut -d' ' -f1-3 /proc/loadavg)"
grep -v '^row|' "$out" || true
exit $status
