#!/bin/sh
# Run README's library example (extracted from README.md at build time) where its relative paths
# resolve: a temporary directory holding links to the repository's models/ and data/.  Checks
# that it exits 0, prints the discovered law and writes refit.h5.
set -eu
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") root=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ln -s "$root/models" "$dir/models"
ln -s "$root/data" "$dir/data"
cd "$dir"
out=$("$bin") || { echo "the README example failed:"; echo "$out"; exit 1; }
echo "$out"
echo "$out" | grep -q '^fit done: ' || { echo "no 'fit done' line"; exit 1; }
echo "$out" | grep -q '^U\[1\] = −0\.9[0-9]*·x·y$' || { echo "U[1] is not -0.9x·y"; exit 1; }
echo "$out" | grep -q '^U\[2\] = 0\.8[0-9]*·x·y$' || { echo "U[2] is not 0.8x·y"; exit 1; }
[ -s refit.h5 ] || { echo "refit.h5 was not written"; exit 1; }
