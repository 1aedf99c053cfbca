#!/bin/bash
# `nde simulate --series TABLE.csv` (issue 13): every group of the batch is, bit for bit, the file
# one `nde simulate` run with that row's values writes (data, inputs, constants, provenance), on
# any --threads; series without a seed column get distinct seeds from --seed and their index,
# recorded so that one series can be made again alone; nde inspect and nde fit read the batch;
# every bad table is one message with its file:line:column, exit 2, nothing written.
# usage: simulate_series.sh NDE H5CHECK SOURCE_ROOT CASE
set -u
nde=$1
h5=$2
root=$3
case_=$4
models=$root/models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
lv=$models/lotka_volterra.nde
room=$models/heated_room.nde
grid="--t1 5 --dt-out 0.25"

# Dataset PATH of file A equals dataset PATH2 of file B, bit for bit (%.17g round-trips).
same_ds() {
  local a b
  a=$("$h5" get "$1" "$2") || fail "$1:$2 unreadable"
  b=$("$h5" get "$3" "$4") || fail "$3:$4 unreadable"
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "$1:$2 differs from $3:$4"
}

series_agree_with_single_runs_on_any_thread_count() {
  cat >"$tmp/t.csv" <<'EOF'
# three experiments of the shipped LV model
name, x, y, alpha, delta, seed
calm, 0.5, 4.625, 1.3, 1.8, 11
bloom, 0.75, 3.5, 1.45, 1.625, 12
crash, 1.125, 2.0, 1.1, 2.125, 13
EOF
  "$nde" simulate "$lv" -o "$tmp/b2.h5" --series "$tmp/t.csv" $grid --noise 0.01 --threads 2 \
    >"$tmp/out" 2>"$tmp/err" || fail "simulate --series: exit $? ($(cat "$tmp/err"))"
  [ -s "$tmp/err" ] && fail "wrote to stderr: $(cat "$tmp/err")"
  grep -qx "$tmp/b2.h5: 3 series, 21 times each on \[0, 5\], 2 states, noise 0.01 of each column's mean (rk4, 600 steps in all)" "$tmp/out" \
    || fail "summary line: $(cat "$tmp/out")"
  # Each group is the single run with the row's values.
  local row=0
  while IFS=, read -r name x y alpha delta seed; do
    row=$((row + 1))
    name=${name// /}
    "$nde" simulate "$lv" -o "$tmp/$name.h5" $grid --noise 0.01 --u0 "x=${x// /},y=${y// /}" \
      --param "alpha=${alpha// /},delta=${delta// /}" --seed "${seed// /}" --quiet \
      || fail "single run $name: exit $?"
    for d in t y; do same_ds "$tmp/$name.h5" /$d "$tmp/b2.h5" /$name/$d; done
    [ "$("$h5" noise "$tmp/$name.h5")" = "$("$h5" noise "$tmp/b2.h5:/$name")" ] \
      || fail "noise_std of $name differs"
    for a in parameters initial_state seed noise solver solver_step model_source created_by; do
      [ "$("$h5" attr "$tmp/$name.h5" / $a)" = "$("$h5" attr "$tmp/b2.h5" /$name $a)" ] \
        || fail "attribute $a of /$name differs from the single run's"
    done
    [ "$("$h5" attr "$tmp/b2.h5" /$name series_table)" = "$tmp/t.csv:$((row + 2))" ] \
      || fail "series_table of /$name: $("$h5" attr "$tmp/b2.h5" /$name series_table)"
  done < <(grep -v '^#' "$tmp/t.csv" | tail -n +2)
  [ "$row" -eq 3 ] || fail "read $row rows of the table"
  # The series differ from each other.
  "$h5" same "$tmp/calm.h5" "$tmp/bloom.h5" /y 2>/dev/null && fail "two series are equal"
  # One thread and three give the same bits.
  for n in 1 3; do
    "$nde" simulate "$lv" -o "$tmp/b$n.h5" --series "$tmp/t.csv" $grid --noise 0.01 \
      --threads $n --quiet || fail "--threads $n: exit $?"
    "$h5" same "$tmp/b2.h5" "$tmp/b$n.h5" /calm/y /bloom/y /crash/y /calm/t \
      || fail "--threads $n differs from --threads 2"
  done
  # nde inspect sees a batch of three, nde fit fits it.
  "$nde" inspect "$tmp/b2.h5" >"$tmp/insp" || fail "inspect: exit $?"
  grep -q "time-series data, 3 series, 2 states (x, y)" "$tmp/insp" || fail "inspect: $(head -3 "$tmp/insp")"
  grep -q "^series /bloom: 21 times" "$tmp/insp" || fail "inspect lists no /bloom"
  "$nde" fit "$lv" "$tmp/b2.h5" -o "$tmp/fit.h5" --optim lbfgs:5 --quiet || fail "fit of the batch: exit $?"
  "$nde" inspect "$tmp/fit.h5" | grep -q "series (3)" || fail "the fit did not see 3 series"
}

seeds_without_a_column_are_distinct_and_reproducible() {
  printf 'x\n0.5\n0.5\n0.5\n' >"$tmp/t.csv"
  "$nde" simulate "$lv" -o "$tmp/s1.h5" --series "$tmp/t.csv" $grid --noise 0.05 --seed 1 \
    --quiet || fail "seed 1: exit $?"
  "$nde" simulate "$lv" -o "$tmp/s2.h5" --series "$tmp/t.csv" $grid --noise 0.05 --seed 2 \
    --quiet || fail "seed 2: exit $?"
  # Default names, zero-padded; every series its own noise; another --seed other noise.
  for g in s01 s02 s03; do "$h5" has "$tmp/s1.h5" /$g/y || fail "no group /$g"; done
  [ "$("$h5" get "$tmp/s1.h5" /s01/y)" = "$("$h5" get "$tmp/s1.h5" /s02/y)" ] \
    && fail "two series without seeds drew the same noise"
  local seeds=""
  for f in s1 s2; do
    for g in s01 s02 s03; do
      s=$("$h5" attr "$tmp/$f.h5" /$g seed)
      case " $seeds " in *" $s "*) fail "seed $s recorded twice" ;; esac
      seeds="$seeds $s"
      [ "$s" = 1 ] || [ "$s" = 2 ] && fail "series $g of $f drew with the base seed"
      # The recorded seed makes the series again alone.
      "$nde" simulate "$lv" -o "$tmp/one.h5" $grid --noise 0.05 --u0 x=0.5 --seed "$s" --quiet \
        || fail "--seed $s: exit $?"
      same_ds "$tmp/one.h5" /y "$tmp/$f.h5" /$g/y
    done
  done
  # 100 rows: names s001 ... s100, read back in row order.
  { echo x; for i in $(seq 1 100); do echo "0.$i"; done; } >"$tmp/t100.csv"
  "$nde" simulate "$lv" -o "$tmp/s100.h5" --series "$tmp/t100.csv" --t1 1 --points 3 --quiet \
    || fail "100 series: exit $?"
  "$h5" has "$tmp/s100.h5" /s001/y && "$h5" has "$tmp/s100.h5" /s100/y || fail "names of 100 series"
  [ "$("$h5" get "$tmp/s100.h5" /s010/y | head -n 1)" = 0.10000000000000001 ] || fail "row 10 is not /s010"
}

inputs_and_constants_come_from_the_table() {
  mkdir -p "$tmp/exp/in"
  printf 't,heater,T_out\n0,1,4.5\n2.25,0,6.25\n9,1,2.75\n' >"$tmp/exp/in/a.csv"
  printf 't,T_out,heater\n0,9.5,0\n1.125,8.75,1\n9,11,0.5\n' >"$tmp/exp/in/b.csv"
  # Paths relative to the table's directory; P from the table or from --const; k per series.
  printf 'name,T,k,P,inputs,seed\nwarm,21.5,0.3,1.25,in/a.csv,7\ncold,12.25,0.125,0.5,in/b.csv,8\n' \
    >"$tmp/exp/table.csv"
  "$nde" simulate "$room" -o "$tmp/room.h5" --series "$tmp/exp/table.csv" --t1 8 --dt-out 0.5 \
    --noise 0.02 --columns T,sensor --quiet || fail "room batch: exit $?"
  "$nde" simulate "$room" -o "$tmp/room1.h5" --series "$tmp/exp/table.csv" --t1 8 --dt-out 0.5 \
    --noise 0.02 --columns T,sensor --threads 1 --quiet || fail "room batch, 1 thread: exit $?"
  "$h5" same "$tmp/room.h5" "$tmp/room1.h5" /warm/y /cold/y || fail "room: threads change the bits"
  # Noise-free, the cold series is the single run with its inputs, constant and parameters
  # (the nets initialised from --seed 1 in both).
  "$nde" simulate "$room" -o "$tmp/room0.h5" --series "$tmp/exp/table.csv" --t1 8 --dt-out 0.5 \
    --columns T,sensor --quiet || fail "room batch without noise: exit $?"
  "$nde" simulate "$room" -o "$tmp/cold.h5" --inputs "$tmp/exp/in/b.csv" --const P=0.5 \
    --param k=0.125 --u0 T=12.25 --t1 8 --dt-out 0.5 --columns T,sensor --quiet \
    || fail "cold alone: exit $?"
  for d in t y inputs/t inputs/u; do same_ds "$tmp/cold.h5" /$d "$tmp/room0.h5" /cold/$d; done
  [ "$("$h5" attr "$tmp/room0.h5" /cold P)" = 0.5 ] || fail "constant P of /cold"
  [ "$("$h5" attr "$tmp/room0.h5" /warm P)" = 1.25 ] || fail "constant P of /warm"
  # Defaults from the options: --inputs and --const for a table without those columns.
  printf 'T\n15\n19.5\n' >"$tmp/exp/t2.csv"
  "$nde" simulate "$room" -o "$tmp/r2.h5" --series "$tmp/exp/t2.csv" --inputs "$tmp/exp/in/a.csv" \
    --const P=2 --t1 8 --dt-out 0.5 --quiet || fail "defaults: exit $?"
  [ "$("$h5" attr "$tmp/r2.h5" /s02 P)" = 2 ] || fail "--const default"
  same_ds "$tmp/room0.h5" /warm/inputs/u "$tmp/r2.h5" /s01/inputs/u
  # A table and an inputs file saved with a UTF-8 byte order mark (as spreadsheets do) read as
  # without it.
  printf '\357\273\277T\n15\n19.5\n' >"$tmp/exp/t2bom.csv"
  printf '\357\273\277' | cat - "$tmp/exp/in/a.csv" >"$tmp/exp/in/abom.csv"
  "$nde" simulate "$room" -o "$tmp/r2bom.h5" --series "$tmp/exp/t2bom.csv" \
    --inputs "$tmp/exp/in/abom.csv" --const P=2 --t1 8 --dt-out 0.5 --quiet || fail "BOM: exit $?"
  for g in s01 s02; do same_ds "$tmp/r2.h5" /$g/y "$tmp/r2bom.h5" /$g/y; done
  # So does a --times file (it was refused: "expected one time (a finite number) per line").
  printf '0\n0.5\n1\n' >"$tmp/times.txt"
  printf '\357\273\277' | cat - "$tmp/times.txt" >"$tmp/times_bom.txt"
  "$nde" simulate "$room" -o "$tmp/tt.csv" --times "$tmp/times.txt" --inputs "$tmp/exp/in/a.csv" \
    --const P=2 --quiet || fail "--times: exit $?"
  "$nde" simulate "$room" -o "$tmp/ttbom.csv" --times "$tmp/times_bom.txt" \
    --inputs "$tmp/exp/in/a.csv" --const P=2 --quiet || fail "--times with a BOM: exit $?"
  cmp -s "$tmp/tt.csv" "$tmp/ttbom.csv" || fail "--times with a BOM gives other values"
  "$nde" fit "$room" "$tmp/room.h5" -o "$tmp/rf.h5" --optim lbfgs:3 --quiet || fail "fit room batch: exit $?"
}

# Every bad table: exit 2, the exact message, nothing written and an existing output untouched.
bad_tables_exit_2_with_file_line_column_and_write_nothing() {
  echo keep >"$tmp/old.h5"
  expect() { # MESSAGE TABLE_CONTENT [options...]
    local msg=$1 content=$2
    shift 2
    printf '%b' "$content" >"$tmp/bad.csv"
    "$nde" simulate "$lv" -o "$tmp/new.h5" --series "$tmp/bad.csv" $grid "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ $rc -eq 2 ] || fail "[$content]: exit $rc, expected 2 ($(cat "$tmp/err"))"
    [ "$(cat "$tmp/err")" = "nde: error: $msg" ] || fail "[$content]: message '$(cat "$tmp/err")', expected 'nde: error: $msg'"
    [ -e "$tmp/new.h5" ] && fail "[$content]: an output was written"
    "$nde" simulate "$lv" -o "$tmp/old.h5" --series "$tmp/bad.csv" $grid "$@" 2>/dev/null
    [ "$(cat "$tmp/old.h5")" = keep ] || fail "[$content]: an existing output was changed"
  }
  local b=$tmp/bad.csv
  expect "--series $b:2:8: unknown column 'bogus' (expected one of name, seed, x, y, alpha, beta, gamma, delta)" \
    '# c\nname,x,bogus\na,1,2\n'
  expect "--series $b:3:1: the name 'a' is already the series of line 2 (expected a distinct group name per series)" \
    'name,x\na,1\na,2\n'
  expect "--series $b:2:5: alpha: expected a finite number, got 'zz'" 'name,x,alpha\na,1,zz\n'
  expect "--series $b:2:1: x: expected a finite number, got ''" 'x,y\n,2\n'
  expect "--series $b:2:4: 2 fields (expected 3, one per column of the header name,x,alpha)" \
    'name,x,alpha\na,1\n'
  expect "--series $b:3:9: 4 fields (expected 3, one per column of the header name,x,alpha)" \
    'name,x,alpha\na,1,2\nb,1.5,2,3\n'
  expect "--series $b: empty (expected a header of columns, e.g. name,x,seed, and one row per series)" ''
  expect "--series $b: empty (expected a header of columns, e.g. name,x,seed, and one row per series)" \
    '# only a comment\n\n'
  expect "--series $b: no series (expected at least one row after the header x,y)" 'x,y\n'
  expect "--series $b:2:3: alpha = -2 is outside its domain (expected a positive value)" 'x,alpha\n1,-2\n'
  expect "--series $b:2:3: seed: expected a whole number in [0, 9007199254740992], got '1.5'" \
    'x,seed\n1,1.5\n'
  expect "--series $b:1:3: column 'x' is repeated (first at column 1; expected each column once)" \
    'x,x\n1,1.5\n'
  expect "--series $b:1:1: an empty column name (expected a name for every column of the header)" \
    ',x\n1,1.5\n'
  expect "--series $b:2:1: 'a/b' is not a group name (expected a non-empty name without '/', other than ., .., t and y)" \
    'name,x\na/b,1\n'
  # /t or /y at the root would make the file one series: nde fit and nde inspect could not read it.
  expect "--series $b:3:1: 't' is not a group name (expected a non-empty name without '/', other than ., .., t and y)" \
    'name,x\na,1\nt,2\n'
  expect "--series $b:2:1: 'y' is not a group name (expected a non-empty name without '/', other than ., .., t and y)" \
    'name,x\ny,1\n'
  expect "--series $b:2:1: '..' is not a group name (expected a non-empty name without '/', other than ., .., t and y)" \
    'name,x\n..,1\n'
  # A seed just above 2^53 is refused, not rounded to 2^53.
  expect "--series $b:2:3: seed: expected a whole number in [0, 9007199254740992], got '9007199254740993'" \
    'x,seed\n1,9007199254740993\n'
  expect "--series $b:1:3: column 'inputs', but $lv declares no measured inputs (expected 'input NAME' in the model, or no such column)" \
    'x,inputs\n1,a.csv\n'
  # A CSV output cannot hold a batch.
  printf 'x\n1\n' >"$tmp/ok.csv"
  "$nde" simulate "$lv" -o "$tmp/new.csv" --series "$tmp/ok.csv" $grid 2>"$tmp/err"
  [ $? -eq 2 ] || fail "CSV output: expected exit 2"
  [ "$(cat "$tmp/err")" = "nde: error: --series: $tmp/new.csv: a batch of series is written as HDF5, one group per series (expected -o BATCH.h5; CSV holds one series)" ] \
    || fail "CSV output: $(cat "$tmp/err")"
  [ -e "$tmp/new.csv" ] && fail "a CSV was written"
  # --threads is for a table's series: without --series it is refused, not ignored.
  "$nde" simulate "$lv" -o "$tmp/one.h5" --threads 2 $grid 2>"$tmp/err"
  [ $? -eq 2 ] || fail "--threads without --series: expected exit 2"
  grep -q -- "--threads: one series is one integration (expected --series TABLE.csv, whose series run on the threads)" "$tmp/err" \
    || fail "--threads without --series: $(cat "$tmp/err")"
  [ -e "$tmp/one.h5" ] && fail "--threads without --series wrote a file"
  # A row that stops the solver: exit 3, the series named, nothing written.
  printf 'state x = 1\nparam r = 0.5\ndx/dt = r*x^2\n' >"$tmp/blow.nde"
  printf 'r\n0.125\n4.5\n0.25\n' >"$tmp/r.csv"
  "$nde" simulate "$tmp/blow.nde" -o "$tmp/new.h5" --series "$tmp/r.csv" --t1 1 --dt-out 0.25 \
    2>"$tmp/err"
  [ $? -eq 3 ] || fail "blow-up: expected exit 3"
  grep -q "^nde: error: --series $tmp/r.csv:3: series s02: simulation stopped: solver rk4 stopped at t = 0.275" "$tmp/err" \
    || fail "blow-up message: $(cat "$tmp/err")"
  [ -e "$tmp/new.h5" ] && fail "blow-up: an output was written"
  # Inputs: a file that is not there (relative to the table), a constant without a value.
  printf 'T,inputs\n15,in/none.csv\n' >"$tmp/room.csv"
  "$nde" simulate "$room" -o "$tmp/new.h5" --series "$tmp/room.csv" --const P=1 --t1 8 \
    --dt-out 0.5 2>"$tmp/err"
  [ $? -eq 2 ] || fail "missing inputs: expected exit 2"
  [ "$(cat "$tmp/err")" = "nde: error: --series $tmp/room.csv:2:2: $tmp/in/none.csv: cannot open (No such file or directory)" ] \
    || fail "missing inputs message: $(cat "$tmp/err")"
  printf 't,heater,T_out\n0,1,4.5\n9,0,6.25\n' >"$tmp/in.csv"
  printf 'T\n15\n' >"$tmp/room.csv"
  "$nde" simulate "$room" -o "$tmp/new.h5" --series "$tmp/room.csv" --t1 8 --dt-out 0.5 \
    --inputs "$tmp/in.csv" 2>"$tmp/err"
  [ $? -eq 2 ] || fail "no constant: expected exit 2 ($(cat "$tmp/err"))"
  [ "$(cat "$tmp/err")" = "nde: error: --const: no value for the constant 'P' (expected P=VALUE, or a column P in $tmp/room.csv: it is declared '(from data)')" ] \
    || fail "no constant: $(cat "$tmp/err")"
  [ -e "$tmp/new.h5" ] && fail "an output was written"
  return 0
}

"$case_" || exit 1
echo "ok: $case_"
