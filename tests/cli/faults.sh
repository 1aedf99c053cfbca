#!/usr/bin/env bash
# Faults at the command line (issue 16): kill -9 at random moments of a fit, SIGINT and SIGTERM in
# every phase of the default kind of schedule (Adam with shooting, L-BFGS with shooting, L-BFGS on
# the trajectory loss), each followed by --resume and a bit-for-bit comparison of /params/theta
# with an uninterrupted run; and targets that cannot be written (a missing directory, a read-only
# directory, a read-only file system, a full one), refused with exit 4 before any training and
# with nothing written.  The random delays come from a fixed seed.
# usage: faults.sh NDE H5CHECK SOURCE_ROOT CASE
set -u
NDE=$1 H5=$2 ROOT=$3 CASE=$4
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
NDE=$(abs "$NDE") H5=$(abs "$H5")
T=$(mktemp -d)
trap 'chmod -R u+rwx "$T" 2>/dev/null; rm -rf "$T"' EXIT
cd "$T" || exit 1
DATA=$ROOT/data/lotka_volterra.h5
UDE=$ROOT/models/lotka_volterra_ude.nde
fail() { echo "FAIL: $*" >&2; exit 1; }
theta() { "$H5" get "$1" /params/theta; }
now() { date +%s.%N; }

# One schedule of the default kind, short: about 1000 iterations, a resume point every 20.
SCHED="shoot:adam:400@0.02,shoot:lbfgs:300,lbfgs:300"
RUN=(--optim "$SCHED" --checkpoint-every 20 --checkpoint-seconds 0)

straight() {
  "$NDE" fit "$UDE" "$DATA" -o straight.h5 "${RUN[@]}" --quiet || fail "the uninterrupted run"
  [ "$("$H5" attr straight.h5 / status)" = done ] || fail "the uninterrupted run did not finish"
  [ "$("$H5" attr straight.h5 / iteration)" = 1000 ] || fail "the schedule ended early"
}

case $CASE in
kill9_at_random_moments_resumes_bit_identically)
  straight
  RANDOM=1616
  resumed=0 mid=0
  for i in $(seq 10); do
    rm -f k.h5 .nde-* log.txt
    # A random moment of the run: once its progress lines (every 10 iterations) pass a random
    # iteration between 5 % and 95 % of the 1000, plus a random 0-20 ms.  Moments chosen by the
    # run's progress, not by the clock, land inside the run however loaded the machine is.
    target=$((50 + RANDOM % 900))
    extra=$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", 0.02 * r / 32767 }')
    "$NDE" fit "$UDE" "$DATA" -o k.h5 "${RUN[@]}" --progress-every 10 2> log.txt > /dev/null &
    pid=$!
    for _ in $(seq 20000); do
      at=$(grep -oE 'iter +[0-9]+' log.txt | tail -n 1 | tr -dc 0-9)
      [ -n "$at" ] && [ "$at" -ge "$target" ] && break
      kill -0 $pid 2>/dev/null || break
      sleep 0.002
    done
    sleep "$extra"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    if [ ! -e k.h5 ]; then
      echo "kill $i near iteration $target: before the first checkpoint"
      continue
    fi
    st=$("$H5" attr k.h5 / status) it=$("$H5" attr k.h5 / iteration)
    [ "$st" = running ] && mid=$((mid + 1))
    "$NDE" fit "$UDE" "$DATA" -o k.h5 "${RUN[@]}" --resume k.h5 --quiet > /dev/null ||
      fail "resume after kill $i (checkpoint at iteration $it, status $st)"
    [ "$(theta k.h5)" = "$(theta straight.h5)" ] ||
      fail "kill $i near iteration $target (checkpoint at iteration $it): resumed theta differs"
    [ "$("$H5" attr k.h5 / iteration)" = 1000 ] || fail "kill $i: the resumed run did not finish"
    resumed=$((resumed + 1))
    echo "kill $i near iteration $target: checkpoint at iteration $it ($st), resumed bit for bit"
  done
  # The kills must have landed inside runs, or the test proves nothing.
  [ $resumed -ge 7 ] || fail "only $resumed of 10 kills came after a checkpoint"
  [ $mid -ge 5 ] || fail "only $mid of 10 kills came in the middle of a run"
  ;;
signals_in_every_phase_resume_bit_identically)
  straight
  for ph in 1 2 3; do
    for sig in INT TERM; do
      rm -f s.h5 log.txt
      # Plain progress lines (not a terminal) every 10 iterations tell which phase is running;
      # the signal comes after the third line of the phase, inside an L-BFGS chunk of 20.
      "$NDE" fit "$UDE" "$DATA" -o s.h5 "${RUN[@]}" --progress-every 10 2> log.txt > /dev/null &
      pid=$!
      for _ in $(seq 4000); do
        [ "$(grep -c "phase $ph (" log.txt)" -ge 3 ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.005
      done
      [ "$(grep -c "phase $ph (" log.txt)" -ge 3 ] || fail "phase $ph never showed"
      kill -$sig $pid
      wait $pid
      rc=$?
      want=130
      [ $sig = TERM ] && want=143
      [ $rc -eq $want ] || { tail -3 log.txt; fail "SIG$sig in phase $ph: exit $rc, expected $want"; }
      grep -q "checkpoint written to s.h5" log.txt || fail "SIG$sig in phase $ph: no checkpoint message"
      [ "$("$H5" attr s.h5 / status)" = interrupted ] || fail "SIG$sig in phase $ph: status"
      ls -A | grep -q '^\.nde-' && fail "SIG$sig in phase $ph: a temporary file was left behind"
      it=$("$H5" attr s.h5 / iteration)
      "$NDE" fit "$UDE" "$DATA" -o s.h5 "${RUN[@]}" --resume s.h5 --quiet > /dev/null ||
        fail "resume after SIG$sig in phase $ph"
      [ "$(theta s.h5)" = "$(theta straight.h5)" ] ||
        fail "SIG$sig in phase $ph (checkpoint at iteration $it): resumed theta differs"
      echo "SIG$sig in phase $ph: exit $rc, checkpoint at iteration $it, resumed bit for bit"
    done
  done
  ;;
unwritable_targets_exit_4_before_training)
  chmod 755 "$T"
  # check CODE FRAGMENT DIR COMMAND...: exit CODE, FRAGMENT in the one-line message, no training
  # started (no "fitting" line), nothing written in DIR.
  check() {
    local code=$1 frag=$2 dir=$3
    shift 3
    "$@" > out.txt 2> err.txt
    local rc=$?
    [ $rc -eq "$code" ] || { cat err.txt; fail "'$*' exited $rc, expected $code"; }
    grep -qF -- "$frag" err.txt || { cat err.txt; fail "'$*': message lacks '$frag'"; }
    [ "$(wc -l < err.txt)" -eq 1 ] || { cat err.txt; fail "'$*': not one line"; }
    [ -z "$(ls -A "$dir" 2>/dev/null)" ] || fail "'$*' wrote into $dir"
    echo "ok ($rc): $(cat err.txt)"
  }
  "$NDE" fit "$UDE" "$DATA" -o fit.h5 --optim adam:5 --quiet || fail "a short fit"
  # A missing directory, for every command that writes.
  check 4 "none/out.h5: cannot write (directory $T/none does not exist) (for --out)" "$T/none" \
    "$NDE" fit "$UDE" "$DATA" -o "$T/none/out.h5" "${RUN[@]}"
  check 4 "none/p.svg: cannot write (directory $T/none does not exist) (for --plot)" "$T/none" \
    "$NDE" fit "$UDE" "$DATA" -o ok.h5 --plot "$T/none/p.svg" --optim adam:5
  [ -e ok.h5 ] && fail "a fit with an unwritable --plot wrote its result"
  check 4 "does not exist" "$T/none" "$NDE" simulate "$UDE" -o "$T/none/s.h5" --t1 1 --points 3
  check 4 "does not exist" "$T/none" "$NDE" grad "$UDE" "$DATA" --out "$T/none/g.h5"
  check 4 "does not exist" "$T/none" "$NDE" forecast fit.h5 --t1 5 -o "$T/none/f.csv"
  check 4 "does not exist" "$T/none" "$NDE" discover fit.h5 -o "$T/none/d.nde"
  # A directory where no file can be made although access() may say otherwise (/sys, for root
  # too): refused before the fit, not after it.
  if [ "$(id -u)" = 0 ] && [ -d /sys ] && [ -w /sys ] && ! touch /sys/nde-probe 2>/dev/null; then
    check 4 "/sys/out.h5: cannot create a temporary file in /sys" "$T/none" \
      "$NDE" fit "$UDE" "$DATA" -o /sys/out.h5 "${RUN[@]}"
  else
    echo "/sys: SKIPPED, not checked (it takes files here, or access() does not call it" \
      "writable: the case of root only; the full file system below is the same check for anyone)"
  fi
  # The same case for anyone: a directory that access() calls writable on a file system whose
  # inode table is full, so that no file can be made in it (a tmpfs of 2 inodes, its root and one
  # file, mounted in a mount namespace of its own: as root, or as a user in a user namespace
  # where those are allowed).
  mkdir full
  full_fit="mount -t tmpfs -o nr_inodes=2,size=64k none '$T/full' && : > '$T/full/fill' && \
    { '$NDE' fit '$UDE' '$DATA' -o '$T/full/out.h5' --optim '$SCHED' > '$T/out.txt' \
      2> '$T/err.txt'; echo \$? > '$T/rc.txt'; ls -A '$T/full' > '$T/ls.txt'; }"
  full_ns=
  for ns in "unshare -m" "unshare -rm"; do
    if $ns sh -c "mount -t tmpfs -o nr_inodes=2,size=64k none '$T/full'" 2> /dev/null; then
      full_ns=$ns
      break
    fi
  done
  if [ -n "$full_ns" ]; then
    rm -f rc.txt
    $full_ns sh -c "$full_fit" || fail "full file system: cannot set it up"
    [ "$(cat rc.txt)" = 4 ] || { cat err.txt; fail "full file system: exit $(cat rc.txt)"; }
    grep -qF "full/out.h5: cannot create a temporary file in $T/full (no space left on device)" \
      err.txt || { cat err.txt; fail "full file system: message"; }
    [ "$(wc -l < err.txt)" -eq 1 ] || { cat err.txt; fail "full file system: not one line"; }
    grep -q "fitting" out.txt err.txt && fail "full file system: training started"
    [ "$(cat ls.txt)" = fill ] || fail "full file system: wrote $(cat ls.txt)"
    echo "ok (4, $full_ns): $(cat err.txt)"
  else
    echo "full file system: SKIPPED, not checked (no mount namespace may be made here)"
  fi
  # A read-only directory: as nobody when root (root may write anywhere).
  mkdir ro
  chmod 555 ro
  as_user=()
  if [ "$(id -u)" -eq 0 ]; then
    if command -v setpriv > /dev/null; then
      as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    else
      echo "read-only directory: skipped (root without setpriv)"
      as_user=(skip)
    fi
  fi
  if [ "${as_user[0]:-}" != skip ]; then
    check 4 "ro/out.h5: cannot write (directory $T/ro is not writable) (for --out)" "$T/ro" \
      "${as_user[@]}" "$NDE" fit "$UDE" "$DATA" -o "$T/ro/out.h5" "${RUN[@]}"
    check 4 "is not writable" "$T/ro" \
      "${as_user[@]}" "$NDE" forecast fit.h5 --t1 5 -o "$T/ro/f.h5"
  fi
  # A read-only file system (root is refused too), where mounting is allowed.
  mkdir rofs
  if unshare -m sh -c "mount -t tmpfs -o ro,size=64k none '$T/rofs'" 2> /dev/null; then
    unshare -m sh -c "mount -t tmpfs -o ro,size=64k none '$T/rofs' && \
      '$NDE' fit '$UDE' '$DATA' -o '$T/rofs/out.h5' --optim '$SCHED' > '$T/out.txt' 2> '$T/err.txt'; \
      echo \$? > '$T/rc.txt'"
    [ "$(cat rc.txt)" = 4 ] || { cat err.txt; fail "read-only file system: exit $(cat rc.txt)"; }
    grep -q "rofs/out.h5: cannot write (directory .*/rofs is on a read-only file system)" err.txt ||
      { cat err.txt; fail "read-only file system: message"; }
    [ "$(wc -l < err.txt)" -eq 1 ] || fail "read-only file system: not one line"
    echo "ok (4): $(cat err.txt)"
  else
    echo "read-only file system: skipped (mounting is not allowed here)"
  fi
  ;;
*)
  fail "unknown case $CASE"
  ;;
esac
echo "ok: $CASE"
