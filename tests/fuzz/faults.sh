#!/usr/bin/env bash
# Fault tests of the atomic writer: a full disk at every write(2) and fsync(2) the writer makes
# (through the LD_PRELOAD shim fault_shim.so, with and without short writes), a missing directory
# and a read-only directory.  Each failure must give exit code 4 (NDE_ERR_IO) without a crash at
# exit, exactly one line on stderr naming the cause, no temporary file left, and the previous
# target untouched.
#   faults.sh FAULT_WRITE FAULT_SHIM_SO
set -u
drv=$1
shim=$2
T=$(mktemp -d)
trap 'chmod -R u+rwx "$T" 2>/dev/null; rm -rf "$T"' EXIT
chmod 755 "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"

"$drv" "$T/out.h5" || fail "a plain write failed"
points=0
for short in "" 65536; do
  rm -f "$T/log"
  NDE_FAULT=count NDE_FAULT_SHORT=$short NDE_FAULT_LOG="$T/log" LD_PRELOAD="$shim" \
    "$drv" "$T/out.h5" || fail "the counting run failed (short=$short)"
  read -r _ n_write _ n_pwrite _ n_fsync < "$T/log" || fail "no count from the shim"
  rm -f "$T/log"
  for call in write pwrite fsync; do
    eval "n=\$n_$call"
    for ((k = 1; k <= n; k++)); do
      before=$(cksum < "$T/out.h5")
      NDE_FAULT=$call:$k NDE_FAULT_SHORT=$short LD_PRELOAD="$shim" \
        "$drv" "$T/out.h5" 2> "$T/err"
      rc=$?
      what="$call #$k of $n (short writes: ${short:-no})"
      [ "$rc" -eq 4 ] || { cat "$T/err" >&2; fail "$what: exit $rc, expected 4"; }
      [ "$(wc -l < "$T/err")" -eq 1 ] || { cat "$T/err" >&2; fail "$what: not one line"; }
      grep -q "out.h5: cannot write.*(no space left on device)$" "$T/err" ||
        { cat "$T/err" >&2; fail "$what: message does not name the cause"; }
      [ "$(ls -A "$T")" = "$(printf 'err\nout.h5')" ] || { ls -A "$T" >&2; fail "$what: left files"; }
      [ "$(cksum < "$T/out.h5")" = "$before" ] || fail "$what: the previous target changed"
      points=$((points + 1))
    done
  done
done
[ "$points" -ge 10 ] || fail "only $points failure points were driven (expected short writes)"
echo "drove $points failure points"

# A missing directory.
"$drv" "$T/none/out.h5" 2> "$T/err"
rc=$?
[ "$rc" -eq 4 ] || fail "missing directory: exit $rc"
[ "$(wc -l < "$T/err")" -eq 1 ] || fail "missing directory: not one line"
grep -q "out.h5: cannot write (directory .*/none does not exist)" "$T/err" || { cat "$T/err"; fail "missing directory: message"; }

# A read-only directory (as nobody when root, since root may write anywhere).
mkdir "$T/ro"
chmod 555 "$T/ro"
as_user=()
if [ "$(id -u)" -eq 0 ]; then
  command -v setpriv > /dev/null || { echo "read-only directory: skipped (no setpriv)"; exit 0; }
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
"${as_user[@]}" "$drv" "$T/ro/out.h5" 2> "$T/err"
rc=$?
[ "$rc" -eq 4 ] || { cat "$T/err"; fail "read-only directory: exit $rc"; }
[ "$(wc -l < "$T/err")" -eq 1 ] || fail "read-only directory: not one line"
grep -q "out.h5: cannot write (directory .*/ro is not writable)" "$T/err" || { cat "$T/err"; fail "read-only directory: message"; }
[ -z "$(ls -A "$T/ro")" ] || fail "read-only directory: left files"
echo "ok"
