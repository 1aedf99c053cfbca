#!/bin/sh
# data/make_data.sh reproduces the committed data sets: /t bit for bit, /y to 1e-12 of its largest
# value (the same seed draws the same noise; a change of the noise recipe, seed, grid or solver
# shows at the 1e-3 level).  Identical bits are expected from the same build; a library change that
# reorders floating-point operations of the solve may move the last bits, which this reports
# without failing (regenerate data/ with data/make_data.sh when it does).
# usage: make_data.sh SOURCE_ROOT BUILD_ROOT H5CHECK
set -u
root=$1
build=$2
h5=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# meson passes the helper relative to the build directory: make it absolute before cd.
case $h5 in /*) ;; *) h5=$(pwd)/$h5 ;; esac
cd "$root" || fail "cannot cd to $root"
sh data/make_data.sh "$build" "$tmp" >"$tmp/log" 2>&1 || fail "make_data.sh: $(cat "$tmp/log")"
n=0
for f in data/*.h5; do
  name=$(basename "$f")
  [ -f "$tmp/$name" ] || fail "make_data.sh does not make $name"
  # A file of groups (a batch of series) is compared group by group.
  groups=/
  if ! "$h5" has "$f" /t; then
    groups=
    for k in $(seq -w 1 99); do
      "$h5" has "$f" "/traj$k/t" && groups="$groups /traj$k/"
    done
    [ -n "$groups" ] || fail "$name: neither /t nor groups /trajNN"
  fi
  for g in $groups; do
    "$h5" same "$f" "$tmp/$name" "${g}t" || fail "$name: ${g}t differs from the committed file"
    "$h5" close "$f" "$tmp/$name" 1e-12 "${g}y" || fail "$name: ${g}y differs from the committed file"
  done
  n=$((n + 1))
done
[ "$n" -ge 3 ] || fail "expected at least 3 data files in data/, found $n"
made=$(ls "$tmp"/*.h5 | wc -l)
[ "$made" -eq "$n" ] || fail "make_data.sh made $made files, data/ holds $n"
echo "data/make_data.sh reproduces $n files"
