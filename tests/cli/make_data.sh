#!/bin/sh
# data/make_data.sh reproduces the committed data sets: /t bit for bit, /y to 1e-12 of its largest
# value (the same seed draws the same noise; a change of the noise recipe, seed, grid or solver
# shows at the 1e-3 level).  Identical bits are expected from the same build; a library change that
# reorders floating-point operations of the solve may move the last bits, which this reports
# without failing (regenerate data/ with data/make_data.sh when it does).  A batch file (groups
# of series, e.g. data/tanks.h5) is compared group by group, with its measured inputs bit for bit.
# usage: make_data.sh SOURCE_ROOT BUILD_ROOT H5CHECK NDE
set -u
root=$1
build=$2
h5=$3
nde=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# meson passes the helper relative to the build directory: make it absolute before cd.
case $h5 in /*) ;; *) h5=$(pwd)/$h5 ;; esac
case $nde in /*) ;; *) nde=$(pwd)/$nde ;; esac
cd "$root" || fail "cannot cd to $root"
sh data/make_data.sh "$build" "$tmp" >"$tmp/log" 2>&1 || fail "make_data.sh: $(cat "$tmp/log")"
n=0
for f in data/*.h5; do
  name=$(basename "$f")
  [ -f "$tmp/$name" ] || fail "make_data.sh does not make $name"
  if "$h5" has "$f" /t; then
    groups=/
  else
    # A batch: its groups as nde inspect lists them ("series /G: ...").
    groups=$("$nde" inspect "$f" | sed -n 's|^series \(/[^:]*\): .*|\1/|p')
    [ -n "$groups" ] || fail "$name: neither /t nor series groups"
  fi
  for g in $groups; do
    "$h5" same "$f" "$tmp/$name" "${g}t" || fail "$name: ${g}t differs from the committed file"
    "$h5" close "$f" "$tmp/$name" 1e-12 "${g}y" || fail "$name: ${g}y differs from the committed file"
    if "$h5" has "$f" "${g}inputs/t"; then
      "$h5" same "$f" "$tmp/$name" "${g}inputs/t" "${g}inputs/u" \
        || fail "$name: ${g}inputs differ from the committed file"
    fi
  done
  n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "expected at least 3 data files in data/, found $n"
made=$(ls "$tmp"/*.h5 | wc -l)
[ "$made" -eq "$n" ] || fail "make_data.sh made $made files, data/ holds $n"
echo "data/make_data.sh reproduces $n files"
