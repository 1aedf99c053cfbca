#!/usr/bin/env bash
# The MPI test of data-parallel fits (issue 13), run by .ci/run when the build has MPI: a fit of
# the LV UDE to 48 series with mpirun at 1, 2 and 3 ranks (one machine, --oversubscribe) gives the
# same theta, history and optimiser state bit for bit, and the same as one process on 3 threads;
# rank 0 alone prints and writes one result file; a checkpoint written by 2 ranks (killed right
# after it, as kill -9 would) resumes on 3 ranks to the uninterrupted result; an ensemble is
# refused under 2 ranks.  Prints one line per
# check, "PASS name" or "FAIL name" (with the log), and exits non-zero on a failure.
# usage: tests/mpi/run.sh BUILD_DIR
set -uo pipefail
cd "$(dirname "$0")/../.."
build=$1
NDE=$build/src/cli/nde
H5=$build/tests/cli/h5check
MK=$build/tests/mpi/mkdata
work=$(mktemp -d /tmp/nde-mpi.XXXXXX)
trap 'rm -rf "$work"' EXIT
export OPENBLAS_NUM_THREADS=1
MPIRUN=(mpirun --oversubscribe --allow-run-as-root --bind-to none)
status=0
check() { # name command...
  local name=$1; shift
  if "$@" >"$work/$name.log" 2>&1; then echo "PASS $name"; else echo "FAIL $name"; cat "$work/$name.log"; status=1; fi
}
same() { "$H5" same "$1" "$2" /params/theta /train/x /train/history /train/state /train/words; }

UDE=models/lotka_volterra_ude.nde
DATA=$work/lv48.h5
FIT=(--optim "shoot:adam:150@0.02,shoot:lbfgs:50,lbfgs:50" --checkpoint-every 50 --quiet
     --learn-u0)

check mkdata "$MK" models/lotka_volterra.nde "$DATA" 48

ranks() { # K OUT [options...]: a fit on K ranks, one thread each
  local k=$1 out=$2; shift 2
  "${MPIRUN[@]}" -np "$k" "$NDE" fit "$UDE" "$DATA" -o "$out" "${FIT[@]}" --threads 1 "$@"
}
mkdir -p "$work/r1" "$work/r2" "$work/r3"
check fit-1-rank ranks 1 "$work/r1/fit.h5"
check fit-2-ranks ranks 2 "$work/r2/fit.h5"
check fit-3-ranks ranks 3 "$work/r3/fit.h5"
check same-theta-1-2-3-ranks eval 'same "$work/r1/fit.h5" "$work/r2/fit.h5" && same "$work/r1/fit.h5" "$work/r3/fit.h5"'
threads3() {
  "$NDE" fit "$UDE" "$DATA" -o "$work/t3.h5" "${FIT[@]}" --threads 3 && same "$work/r1/fit.h5" "$work/t3.h5"
}
check same-theta-3-threads threads3

# Rank 0 alone writes and prints: one file in the directory, one summary, the ranks recorded.
one_writer() {
  local d=$work/one
  mkdir -p "$d"
  "${MPIRUN[@]}" -np 3 "$NDE" fit "$UDE" "$DATA" -o "$d/fit.h5" --optim adam:60 --threads 1 \
    --checkpoint-every 20 --checkpoint-seconds 0 --progress-every 1000 >"$d.out" 2>&1 || return 1
  [ "$(ls "$d")" = fit.h5 ] || { ls -l "$d"; return 1; }
  [ "$(grep -c '^result written to' "$d.out")" = 1 ] || { cat "$d.out"; return 1; }
  grep -q 'x 3 MPI rank(s)' "$d.out" || { cat "$d.out"; return 1; }
  [ "$("$H5" attr "$d/fit.h5" /provenance mpi_ranks)" = 3 ]
}
check one-result-file one_writer

# The note that a gradient method is not exact for a fixed-step solve is printed once, by rank 0
# (the command prints it where it knows its rank; each rank printed it before).
one_note() {
  local d=$work/note
  mkdir -p "$d"
  "${MPIRUN[@]}" -np 2 "$NDE" fit models/lotka_volterra.nde "$DATA" -o "$d/n.h5" --solver euler \
    --grad backsolve --optim adam:3 --threads 1 --progress-every 1000 >"$d.out" 2>&1 || return 1
  [ "$(grep -c 'note: --grad backsolve with the fixed-step --solver euler approximates the gradient' "$d.out")" = 1 ] ||
    { cat "$d.out"; return 1; }
}
check inexact-gradient-note-once-under-2-ranks one_note

# An ensemble runs in one process: under 2 ranks it is refused up front (exit 2, one message,
# nothing written) instead of hanging or mixing members.
ensemble_refused() {
  local d=$work/ens
  mkdir -p "$d"
  timeout 120 "${MPIRUN[@]}" -np 2 "$NDE" fit models/lotka_volterra.nde "$DATA" -o "$d/e.h5" \
    --ensemble 3 --optim lbfgs:5 --quiet >"$d.out" 2>&1
  local rc=$?
  cat "$d.out"
  [ $rc -eq 2 ] || { echo "exit $rc, expected 2"; return 1; }
  [ "$(grep -c 'an ensemble is not distributed over MPI ranks (this launch has 2)' "$d.out")" = 1 ] &&
    [ -z "$(ls "$d")" ]
}
check ensemble-refused-under-2-ranks ensemble_refused

# A checkpoint written by 2 ranks, the job killed right after it (rank 0 exits 137), resumed on 3.
resume_2_on_3() {
  local c=(--checkpoint-seconds 0)
  NDE_TEST_ABORT_AFTER_CHECKPOINT=2 "${MPIRUN[@]}" -x NDE_TEST_ABORT_AFTER_CHECKPOINT -np 2 \
    "$NDE" fit "$UDE" "$DATA" -o "$work/ck.h5" "${FIT[@]}" --threads 1 "${c[@]}"
  local it
  it=$("$H5" attr "$work/ck.h5" / iteration) || return 1
  echo "checkpoint of 2 ranks at iteration $it"
  [ "$it" = 100 ] || return 1
  ranks 3 "$work/ck.h5" --resume "$work/ck.h5" "${c[@]}" || return 1
  same "$work/r1/fit.h5" "$work/ck.h5"
}
if grep -q "NDE_TEST_HOOKS" "$build/build.ninja" 2>/dev/null; then
  check resume-2-ranks-on-3 resume_2_on_3
else
  echo "mpi: resume-2-ranks-on-3 needs a build with -Dtest_hooks=true (skipped)"
fi
exit $status
