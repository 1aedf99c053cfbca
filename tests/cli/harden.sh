#!/usr/bin/env bash
# Issue 16 (hardening) reproductions outside the data layer, one case per class: the size limits
# of a model, --init with another model's parameters, messages that say what failed in the
# user's terms, non-finite results as numerical failures (exit 3, nothing written), integer
# options checked against their type and --resume refusing other settings.  Each
# command is checked for its exit code, its one-line message and what it left on disk.
# usage: harden.sh NDE H5CHECK SOURCE_ROOT CASE
set -u
NDE=$1 H5=$2 ROOT=$3 CASE=$4
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
NDE=$(abs "$NDE") H5=$(abs "$H5")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
DATA=$ROOT/data/lotka_volterra.h5
UDE=$ROOT/models/lotka_volterra_ude.nde
LV=$ROOT/models/lotka_volterra.nde
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect CODE FRAGMENT [--leaves FILE] -- COMMAND...: exit code CODE, FRAGMENT in the first line
# of stderr, at most one "nde: error:" line, no internal name in it; FILE (default none) must
# not exist afterwards.
expect() {
  local code=$1 frag=$2 leaves=""
  shift 2
  if [ "$1" = --leaves ]; then leaves=$2; shift 2; fi
  [ "$1" = -- ] && shift
  "$@" > out.txt 2> err.txt
  local rc=$?
  [ $rc -eq "$code" ] || { cat err.txt; fail "'$*' exited $rc, expected $code"; }
  grep -qF -- "$frag" err.txt || { cat err.txt; fail "'$*': message lacks '$frag'"; }
  [ "$(grep -c '^nde: error:' err.txt)" -le 1 ] || { cat err.txt; fail "'$*': more than one error"; }
  grep -Eq 'nde_[a-z_]+:|: cannot be written \(|^nde: error: :' err.txt &&
    { cat err.txt; fail "'$*': an internal name or an empty file name in the message"; }
  [ -n "$leaves" ] && [ -e "$leaves" ] && fail "'$*' wrote $leaves"
  echo "ok ($rc): $(grep -m1 'nde: error:' err.txt)"
  return 0
}

case $CASE in
model_size_limits_are_refused_by_check)
  # 50 M learnable values passed nde check, and 63 layers of 4096 made simulate allocate > 8 GB.
  printf 'state x = 1\nnet U : 1 -> 4096 tanh -> 4096 tanh -> 4096 tanh -> 4096 tanh -> 1\ndx/dt = U(x)\n' > big.nde
  expect 2 "big.nde:2:5: net 'U' has 50356225 weights and brings the model to 50356225 learnable values, more than the limit of 10000000" \
    -- "$NDE" check big.nde
  layers=$(for _ in $(seq 63); do printf ' -> 4096 tanh'; done)
  printf 'state x, y\nnet U : 2%s -> 2\nu = U(x, y)\ndx/dt = u[1]\ndy/dt = u[2]\n' "$layers" > deep.nde
  expect 2 "deep.nde:2:5: net 'U' has 1040461826 weights" --leaves deep.h5 \
    -- "$NDE" simulate deep.nde -o deep.h5 --t1 1 --points 3
  # 700 vector intermediates of 4096 values: 67 MB per batch row, refused where it crosses.
  { echo "state x[4096] = 0"; echo "a0 = sin(x)"
    for i in $(seq 1 699); do echo "a$i = sin(a$((i - 1)))"; done; echo "dx/dt = a699"; } > wide.nde
  expect 2 "wide.nde:684:8: evaluating the model up to here needs 64.1 MiB of workspace per batch row" \
    -- "$NDE" check wide.nde
  # Bounds whose width overflows made every value NaN at the first evaluation.
  printf 'state x = 1\nparam k = 1 (in [-1e308, 1e308])\ndx/dt = -k*x\n' > wide_bounds.nde
  expect 2 "wide_bounds.nde:2:14: bounds [-1e+308, 1e+308] of parameter 'k' are too wide" \
    -- "$NDE" check wide_bounds.nde
  ;;
init_refuses_the_parameters_of_another_model)
  # Two nets whose sizes are swapped: the same names in the same order and the same total length
  # (22 + 32 = 32 + 22), so only the recorded offsets and lengths tell them apart.
  cat > a.nde <<'EOF'
state x = 0.44, y = 4.63
net U : 2 -> 4 tanh -> 2
net V : 2 -> 6 tanh -> 2
u = U(x, y)
v = V(x, y)
dx/dt = 1.3*x + u[1] + 0.1*v[1]
dy/dt = -1.8*y + u[2] + 0.1*v[2]
EOF
  sed -e 's/^net U : 2 -> 4/net U : 2 -> 6/' -e 's/^net V : 2 -> 6/net V : 2 -> 4/' a.nde > b.nde
  "$NDE" fit a.nde "$DATA" -o a.h5 --optim adam:3 --quiet || fail "fit a"
  expect 2 "--init: a.h5:/params/layout: the parameters were made for another model: entry 1 is 'U' (22 values at theta[0]) in the file, 'U' (32 values at theta[0]) in b.nde" \
    --leaves b.h5 -- "$NDE" fit b.nde "$DATA" -o b.h5 --init a.h5 --optim adam:3
  expect 2 "entry 1 is 'U' (22 values at theta[0]) in the file, 'U' (32 values" \
    -- "$NDE" grad b.nde "$DATA" --init a.h5
  expect 2 "entry 1 is 'U' (22 values at theta[0]) in the file" --leaves s.h5 \
    -- "$NDE" simulate b.nde -o s.h5 --init a.h5 --t1 1 --points 3
  # A renamed net, and a model with a different number of entries.
  sed 's/\bV\b/W/g' a.nde > c.nde
  expect 2 "entry 2 is 'V' (32 values at theta[22]) in the file, 'W' (32 values at theta[22]) in c.nde" \
    -- "$NDE" grad c.nde "$DATA" --init a.h5
  expect 2 "entry 1 is 'U' (22 values at theta[0]) in the file, 'U' (87 values at theta[0])" \
    -- "$NDE" grad "$UDE" "$DATA" --init a.h5
  expect 2 "entry 1 is 'alpha' (1 value at theta[0]) in the file, 'U' (87 values" \
    -- "$NDE" grad "$UDE" "$DATA" --init "$("$NDE" fit "$LV" "$DATA" -o lv.h5 --optim lbfgs:2 --quiet >/dev/null && echo lv.h5)"
  # The same model is accepted, and starts where the file left off.
  "$NDE" grad a.nde "$DATA" --init a.h5 > g1.txt || fail "same model refused"
  # A plain /params/theta without a layout (another tool's) is taken as it is, its length checked.
  "$H5" mkresult plain.h5 || fail "mkresult"
  "$NDE" grad "$LV" "$DATA" --init plain.h5 > /dev/null || fail "a file without a layout was refused"
  expect 2 "plain.h5:/params/theta: expected 87 values for the model" \
    -- "$NDE" grad "$UDE" "$DATA" --init plain.h5
  "$NDE" grad "$UDE" "$DATA" --out gout.h5 > /dev/null || fail "grad --out"
  "$NDE" grad "$UDE" "$DATA" --init gout.h5 > /dev/null || fail "nde grad's own output (no layout) refused"
  ;;
messages_name_what_failed)
  # A model with nothing to learn: exit 2 and say so, for every kind of schedule.
  printf 'state x = 1\ndx/dt = -x\n' > decay.nde
  "$NDE" simulate decay.nde -o decay.h5 --t1 2 --points 11 --quiet || fail "decay data"
  for sched in adam:10 lbfgs:10 shoot:adam:10,lbfgs:5; do
    expect 2 "nothing to fit: the model has no learnable values" --leaves f.h5 \
      -- "$NDE" fit decay.nde decay.h5 -o f.h5 --optim "$sched"
  done
  expect 2 "nothing to fit: the model has no learnable values" --leaves f.h5 \
    -- "$NDE" fit decay.nde decay.h5 -o f.h5
  # Failures at iteration 0 say what failed, never "try a smaller --lr".
  expect 3 "cannot evaluate the objective at the start: solver rk4 stopped at t = 0.15 after 3 steps (step size 0.05): the step budget was used up; raise the step budget (--max-steps) or take fewer steps (--steps-per-interval, --dt)" \
    -- "$NDE" fit "$UDE" "$DATA" -o f.h5 --optim adam:10 --max-steps 3
  grep -q "smaller" err.txt && fail "a failure at the start blamed the learning rate"
  # The stop is said once; the explanation adds the series it happened in (it repeated the
  # whole stop sentence in parentheses).
  grep -q "budget was used up.*budget was used up" err.txt && fail "the stop is repeated"
  # ... and the progress line calls the start the start (it said "the accepted parameters").
  grep -qF "nde: phase 1, iteration 0: cannot evaluate the objective at the starting parameters: the solve stopped at t = 0.15" err.txt ||
    { cat err.txt; fail "the progress line on the start"; }
  grep -qF "(--steps-per-interval, --dt) (in the trajectory of $DATA:/); the starting parameters are in f.h5" err.txt \
    || fail "the series of the stop is not named"
  # What is made of that result says it is no finished fit (a forecast of the starting values
  # exited 0 without a word); a finished one gets no note.
  note="nde: note: f.h5 holds a fit that ended 'failed' after 0 iterations: its parameters are the starting values, not a finished fit's (nde inspect f.h5 says what stopped it)"
  "$NDE" forecast f.h5 --t1 6 -o fc.h5 --max-steps 1e5 > /dev/null 2> err.txt || { cat err.txt; fail "forecast"; }
  grep -qxF "$note" err.txt || { cat err.txt; fail "forecast of a failed fit without a note"; }
  "$NDE" discover f.h5 -o disc.nde > /dev/null 2> err.txt
  grep -qxF "$note" err.txt || { cat err.txt; fail "discover on a failed fit without a note"; }
  "$NDE" export f.h5 --text > /dev/null 2> err.txt || { cat err.txt; fail "export"; }
  grep -qxF "$note" err.txt || { cat err.txt; fail "export of a failed fit without a note"; }
  "$NDE" fit "$UDE" "$DATA" -o done.h5 --optim adam:3 --quiet || fail "a short fit"
  "$NDE" forecast done.h5 --t1 6 -o fc.h5 > /dev/null 2> err.txt || fail "forecast of done.h5"
  [ -s err.txt ] && { cat err.txt; fail "a note on a finished fit"; }
  # The checkpoint of a fit killed while running: nde inspect says what it is (it printed
  # "status running: " and nothing), and a forecast of it says it is unfinished.
  "$NDE" fit "$UDE" "$DATA" -o run.h5 --optim adam:100000000 --checkpoint-every 5 \
    --checkpoint-seconds 0 --quiet & pid=$!
  for _ in $(seq 400); do [ -e run.h5 ] && break; sleep 0.05; done
  kill -9 "$pid"
  wait "$pid" 2> /dev/null
  [ -e run.h5 ] || fail "no checkpoint within 20 s"
  "$NDE" inspect run.h5 > out.txt || fail "inspect of a checkpoint"
  grep -qxF "run.h5: result of nde fit, status running: a checkpoint of a fit that was still running (or was killed); nde fit ... --resume continues it" out.txt ||
    { head -2 out.txt; fail "inspect of a running fit's checkpoint"; }
  "$NDE" forecast run.h5 --t1 6 -o fc.h5 > /dev/null 2> err.txt || fail "forecast of run.h5"
  grep -q "^nde: note: run.h5 holds an unfinished fit (status 'running', [0-9]* iterations): its parameters are those so far (nde fit ... --resume run.h5 continues it)$" err.txt ||
    { cat err.txt; fail "forecast of a running fit's checkpoint without a note"; }
  expect 3 "simulation stopped: solver rk4 stopped at t = 1e-07 after 10 steps (step size 1e-08): the step budget was used up; raise the step budget (--max-steps) or take fewer steps (--steps-per-interval, --dt)" \
    --leaves s.h5 -- "$NDE" simulate "$LV" -o s.h5 --t1 1 --points 3 --dt 1e-8 --max-steps 10
  printf 'state x = 1\nparam k = 50\ndx/dt = k*x*x\n' > blowup.nde
  expect 3 "the step size became too small; the solution may blow up here, or the problem is stiff (try --solver cvode-bdf)" \
    -- "$NDE" fit blowup.nde decay.h5 -o f.h5 --optim adam:10 --solver dopri5
  grep -q "blow up here).*blow up here" err.txt && fail "the hint is repeated"
  # A non-finite loss at the start names the data value: data near 1e200 overflow the misfit.
  printf 'state x = 1e200\ndx/dt = 0\n' > const.nde
  printf 'state x = 1\nparam k = 1\ndx/dt = -k*x\n' > dec.nde
  "$NDE" simulate const.nde -o huge.h5 --t1 1 --points 5 --quiet || fail "huge data"
  expect 3 "cannot evaluate the objective at the start: the loss or its gradient is not finite (huge.h5:/ at t = 0.25, x: data 1e+200, model 7.788007936437542e+199: their squared difference overflows)" \
    -- "$NDE" fit dec.nde huge.h5 -o f.h5 --optim adam:3
  # ... and a model value without a logarithm under --log-loss.
  printf 'state x = 1\nparam k = 2\ndx/dt = -k\n' > neg.nde
  "$NDE" simulate dec.nde -o pos.h5 --t1 3 --points 7 --quiet || fail "pos data"
  expect 3 "pos.h5:/ at t = 1, x: data 0.3678794611475397, model -0.9999999999999998: the model's value has no logarithm (--log-loss)" \
    -- "$NDE" fit neg.nde pos.h5 -o f.h5 --log-loss --optim lbfgs:3
  # Subnormal numbers are numbers.
  "$NDE" simulate "$LV" -o s.h5 --t1 1 --points 3 --h0 4.9e-324 --atol 1e-310 --solver dopri5 \
    --quiet || fail "subnormal --h0/--atol refused"
  expect 3 "stopped at t = 4.94066e-321 after 1000 steps (step size 4.94e-324): the step budget was used up" \
    -- "$NDE" simulate "$LV" -o s2.h5 --t1 1 --points 3 --dt 4.9e-324 --max-steps 1000
  # Tolerances that double precision cannot meet, or that mean nothing, are refused at parse time.
  expect 2 "--rtol: expected a number in [1e-15, 0.5], got '1e300'" -- "$NDE" grad "$LV" "$DATA" --rtol 1e300
  expect 2 "--rtol: expected a number in [1e-15, 0.5], got '1'" -- "$NDE" grad "$LV" "$DATA" --rtol 1
  expect 2 "--rtol: expected a number in [1e-15, 0.5], got '1e-17'" -- "$NDE" grad "$LV" "$DATA" --rtol 1e-17
  # Options given twice, and names given twice, are refused.
  expect 2 "option --out given twice (expected it once)" --leaves a.h5 -- "$NDE" fit "$LV" "$DATA" -o a.h5 -o b.h5
  [ -e b.h5 ] && fail "-o A -o B wrote B"
  expect 2 "--u0: x is given twice (expected each name once)" --leaves s3.h5 \
    -- "$NDE" simulate "$LV" -o s3.h5 --t1 1 --points 3 --u0 x=1,x=2
  # Empty output names: the option is named, no internal function name.
  expect 2 "--out: the output file name is empty (expected a path)" -- "$NDE" fit "$LV" "$DATA" -o ""
  expect 2 "--out: the output file name is empty (expected a path)" -- "$NDE" simulate "$LV" -o "" --t1 1 --points 3
  expect 2 "--out: the output file name is empty (expected a path)" -- "$NDE" grad "$LV" "$DATA" --out ""
  expect 2 "--plot: '' must end in .svg, .png or .pdf" -- "$NDE" fit "$LV" "$DATA" -o a.h5 --plot ""
  # Discovery: --terms and --library errors name their option; a model without networks blames
  # neither.
  "$NDE" fit "$UDE" "$DATA" -o ude.h5 --optim adam:5 --quiet || fail "ude fit"
  "$NDE" fit "$LV" "$DATA" -o lv.h5 --optim lbfgs:2 --quiet || fail "lv fit"
  expect 2 "ude.h5: --terms: expression 'x*', column 3: unexpected end of line" -- "$NDE" discover ude.h5 -o d.nde --terms 'x*'
  expect 2 "ude.h5: --terms: term '[x, y]' is a vector of 2 values (expected a scalar)" -- "$NDE" discover ude.h5 -o d.nde --library poly:1 --terms 'x*y; [x, y]'
  # The first term's error comes first, before a later term repeats the library's.
  expect 2 "ude.h5: --terms: expression 'sin(x', column 6: unexpected end of line" -- "$NDE" discover ude.h5 -o d.nde --terms 'sin(x; x*y'
  expect 2 "--terms: expected .nde expressions separated by ';', got ' ; '" -- "$NDE" discover ude.h5 -o d.nde --terms ' ; '
  expect 2 "--library: library 'poly:x': bad degree" -- "$NDE" discover ude.h5 -o d.nde --library poly:x
  # A term given twice, or equal to a library term, has no coefficient of its own.
  expect 2 "user term 2 'x * y' is already a candidate (user term 'x*y')" --leaves d.nde \
    -- "$NDE" discover ude.h5 -o d.nde --library poly:1 --terms 'x*y; x * y'
  expect 2 "user term 1 'x*y' is already a candidate (the library's 'x*y')" --leaves d.nde \
    -- "$NDE" discover ude.h5 -o d.nde --terms 'x*y'
  expect 2 "candidate terms 'x*y' and 'y*x' have the same value at all 200 samples" --leaves d.nde \
    -- "$NDE" discover ude.h5 -o d.nde --library poly:2 --terms 'y*x'
  # Proportional ones (a constant input of 2 where 1 is a candidate is the same) were accepted,
  # one of them dropped without a word.
  expect 2 "candidate terms 'x*y' and '2*x*y' are proportional at all 200 samples ('2*x*y' = 2 x 'x*y')" \
    --leaves d.nde -- "$NDE" discover ude.h5 -o d.nde --library poly:2 --terms '2*x*y'
  expect 2 "candidate term '0*x' is zero at all 200 samples" --leaves d.nde \
    -- "$NDE" discover ude.h5 -o d.nde --library poly:1 --terms '0*x'
  expect 2 "nde: error: lv.h5: the model calls no network (nothing to discover)" -- "$NDE" discover lv.h5 -o d.nde --terms 'x*y'
  # The data file given in the model's place (arguments swapped) printed ~19 lines of its bytes
  # as "unexpected character" errors: one line says what it is and how the command is called.
  expect 2 "nde: error: $DATA: this is an HDF5 file, not a model file (expected the model text first: nde fit MODEL.nde DATA.h5)" \
    --leaves sw.h5 -- "$NDE" fit "$DATA" "$LV" -o sw.h5
  [ "$(wc -l < err.txt)" -eq 1 ] || fail "swapped arguments: more than one line: $(cat -v err.txt)"
  expect 2 "nde: error: $DATA: this is an HDF5 file, not a model file (expected the model text first: nde grad MODEL.nde DATA.h5)" \
    -- "$NDE" grad "$DATA" "$LV"
  expect 2 "nde: error: $DATA: this is an HDF5 file, not a model file (expected the model's text: nde simulate MODEL.nde -o DATA.h5)" \
    --leaves sw.h5 -- "$NDE" simulate "$DATA" -o sw.h5 --t1 1 --points 3
  expect 2 "nde: error: $DATA: this is an HDF5 file, not a model file (expected the model's text: nde check MODEL.nde)" \
    -- "$NDE" check "$DATA"
  [ "$(wc -l < err.txt)" -eq 1 ] || fail "nde check on data: more than one line: $(cat -v err.txt)"
  # An unknown --columns name was reported under "--solver rk4:"; it names --columns and the
  # names there are, and inputs that end too early name --inputs.
  printf 'state x = 1\nparam k = 0.5\nobserve h = 2*x\ndx/dt = -k*x\n' > obs.nde
  expect 2 "nde: error: --columns: 'zz' is neither a state component nor an observable of obs.nde (expected one of x, h)" \
    --leaves c.h5 -- "$NDE" simulate obs.nde -o c.h5 --t1 1 --points 3 --columns h,zz
  printf 'state x = 1\ninput u\ndx/dt = -x + u\n' > drv.nde
  printf 't,u\n0,1\n0.5,2\n' > u.csv
  expect 2 "nde: error: --inputs u.csv: the integration on [0, 1] needs the measured input 'u' beyond its samples on [0, 0.5] (expected inputs that cover it, or the input declared with hold)" \
    --leaves c.h5 -- "$NDE" simulate drv.nde -o c.h5 --t1 1 --points 3 --inputs u.csv
  grep -q -- "--solver" err.txt && fail "an input error blamed the solver"
  # A solve stopped by a value that is not finite names the state it is in (here the second).
  printf 'state y = 1, x = 1\ndx/dt = 1e308\ndy/dt = -y\n' > huge_rate.nde
  expect 3 "simulation stopped: solver rk4 stopped at t = 0, x not finite, after 0 steps (step size 10): the state became NaN or infinite" \
    --leaves c.h5 -- "$NDE" simulate huge_rate.nde -o c.h5 --t1 30 --points 4 --dt 10
  # A fixed-step implicit method whose Newton iteration fails is told to take smaller steps (it
  # has no tolerance to tighten).
  printf 'state x = 2, v = 0\nparam mu = 1000 (positive)\ndx/dt = v\ndv/dt = mu*(1 - x^2)*v - x\n' > vdp.nde
  "$NDE" simulate vdp.nde -o vdp.csv --t1 2000 --dt-out 10 --solver implicit-midpoint > /dev/null 2> err.txt
  [ $? -eq 3 ] || { cat err.txt; fail "a failed Newton iteration did not exit 3"; }
  grep -q "the Newton iteration failed to converge; take smaller steps (--steps-per-interval, --dt)" err.txt ||
    { cat err.txt; fail "the Newton failure's hint"; }
  [ -e vdp.csv ] && fail "a stopped simulation wrote vdp.csv"
  # The shipped stiff model under the default rk4 blows up in its first step: the hint names the
  # implicit solver (it said "try a smaller step or an adaptive solver", and dopri5 then stalls).
  expect 3 "after 1 steps (step size 0.4): the right-hand side reported a recoverable failure that could not be retried; the solution left the model's domain or blew up: check the parameters and the initial state, or take smaller steps (--steps-per-interval, --dt); if the model is stiff, use --solver cvode-bdf" \
    --leaves rob.h5 -- "$NDE" simulate "$ROOT/models/robertson.nde" -o rob.h5 --t1 40 --dt-out 4
  # --grad backsolve integrates the state backward, which a strongly damped model does not
  # survive: the stop says so and names the way out (it suggested "a smaller step or an adaptive
  # solver" to a run that was already on cvode-bdf).
  printf 'state x = 1, y = 0\nparam k = 200 (positive)\ndx/dt = -k*(x - y)\ndy/dt = k*(x - y) - y\n' > damp.nde
  "$NDE" simulate damp.nde -o damp.h5 --t1 5 --points 11 --solver cvode-bdf --quiet || fail "damp data"
  for cmd in "grad damp.nde damp.h5" "fit damp.nde damp.h5 -o dd.h5 --optim adam:3"; do
    # shellcheck disable=SC2086
    expect 3 "the backward (adjoint) solve stopped (solver cvode-bdf stopped at t = " \
      -- "$NDE" $cmd --solver cvode-bdf --grad backsolve --param k=150
    grep -qF "; --grad backsolve recomputes the state by integrating it backward in time, which is unstable for a stiff or strongly damped model: use --grad auto" err.txt ||
      { cat err.txt; fail "nde $cmd: the backsolve stop does not name the way out"; }
    # The backward step it stopped at, not "step size 0".
    grep -q "after [0-9]* steps (step size -[1-9]" err.txt ||
      { cat err.txt; fail "nde $cmd: the backward stop's step size"; }
  done
  "$NDE" grad damp.nde damp.h5 --solver cvode-bdf --grad auto --param k=150 > /dev/null ||
    fail "--grad auto on the damped model"
  # yoshida4 evaluates f before the start of its first step: a model undefined there is told why
  # and which methods stay inside their steps (it read "the solution left the model's domain").
  printf 'state q = 1, p = 0\ndq/dt = p\ndp/dt = -q + sqrt(t)\n' > sqrt_t.nde
  expect 3 "yoshida4 evaluates f up to 0.35 steps outside each step (here from t = -0.0175604 to 0.0675604): a model undefined there (sqrt(t) from t = 0, say) needs a method that stays inside its steps, such as leapfrog or rk4" \
    --leaves y4.csv -- "$NDE" simulate sqrt_t.nde -o y4.csv --t1 2 --points 5 --solver yoshida4
  "$NDE" simulate sqrt_t.nde -o lf.csv --t1 2 --points 5 --solver leapfrog --quiet || fail "leapfrog on sqrt(t)"
  # More minibatch windows than a series has are refused (a million made 9 iterations in 120 s).
  # The series is named by its file (and group), not by a position counted from 1.
  expect 2 "batch_windows is 1000000, above the 17 windows of 4 intervals that $DATA has" \
    --leaves bw.h5 -- "$NDE" fit "$LV" "$DATA" -o bw.h5 --batch-time 4 --batch-windows 1000000
  # File suffixes in either case: OUT.CSV is CSV.
  "$NDE" simulate "$LV" -o up.CSV --t1 1 --points 3 --quiet || fail "simulate -o up.CSV"
  head -1 up.CSV | grep -q '^t,x,y$' || { head -2 up.CSV; fail "up.CSV is not CSV"; }
  # Standard errors with nothing to estimate are refused before the fit, not after it.
  printf 'state x = 0.44, y = 4.6\nnet U : 2 -> 8 tanh -> 2\nu = U(x, y)\ndx/dt = u[1]\ndy/dt = u[2]\n' > nonly.nde
  expect 2 "nonly.nde: --uncertainty: nothing to estimate (no learnable parameters besides network weights" \
    --leaves nn.h5 -- "$NDE" fit nonly.nde "$DATA" -o nn.h5 --uncertainty --optim adam:100000
  grep -q "fitting" err.txt && { cat err.txt; fail "the refusal came after the fit started"; }
  # A gradient method that is not exact for a fixed-step solve is named as such (not silently).
  "$NDE" grad "$LV" "$DATA" --solver euler --grad backsolve > /dev/null 2> err.txt || fail "grad"
  grep -q "note: --grad backsolve with the fixed-step --solver euler approximates the gradient" err.txt ||
    { cat err.txt; fail "no note on an inexact gradient"; }
  "$NDE" grad "$LV" "$DATA" --solver rk4 --grad discrete > /dev/null 2> err.txt || fail "grad"
  [ -s err.txt ] && { cat err.txt; fail "a note on an exact gradient"; }
  # nde fit says it too, unless --quiet (and only rank 0 speaks under MPI: it is printed where
  # the fit knows its rank).
  "$NDE" fit "$LV" "$DATA" -o nb.h5 --solver euler --grad backsolve --optim adam:2 > /dev/null 2> err.txt || fail "fit backsolve"
  grep -q "note: --grad backsolve with the fixed-step --solver euler" err.txt || { cat err.txt; fail "fit: no note"; }
  "$NDE" fit "$LV" "$DATA" -o nb.h5 --solver euler --grad backsolve --optim adam:2 --quiet > /dev/null 2> err.txt || fail "fit backsolve quiet"
  grep -q "note:" err.txt && { cat err.txt; fail "fit --quiet printed the note"; }
  ;;
non_finite_results_exit_3)
  # nde grad printed 'loss inf' and 'grad_norm nan' before failing: now nothing is printed.
  printf 'state x = 1e200\ndx/dt = 0\n' > const.nde
  printf 'state x = 1\nparam k = 1\ndx/dt = -k*x\n' > dec.nde
  "$NDE" simulate const.nde -o huge.h5 --t1 1 --points 5 --quiet || fail "huge data"
  expect 3 "the loss is not finite (inf) at these parameters: huge.h5:/ at t = 0.25, x: data 1e+200" \
    --leaves g.h5 -- "$NDE" grad dec.nde huge.h5 --out g.h5
  [ -s out.txt ] && fail "nde grad printed a non-finite loss on stdout"
  # A finite loss with a gradient that is not finite (sqrt at 0) names the component.
  printf 'state x = 0\nparam k = 1\ndx/dt = k*sqrt(x)\n' > sq.nde
  "$NDE" simulate sq.nde -o sq.h5 --t1 1 --points 5 --quiet || fail "sq data"
  expect 3 "the gradient is not finite at these parameters (component 0 of theta, in parameter k): the backward (adjoint) solve stopped" \
    -- "$NDE" grad sq.nde sq.h5
  [ -s out.txt ] && fail "nde grad printed a non-finite gradient on stdout"
  # nde simulate: noise on values near the largest double overflowed to inf (the mean of |y|
  # overflowed first); exit 3, nothing written.  Moderate noise on such values is fine.
  printf 'state x = 1e308, y = 1e308\ndx/dt = 0\ndy/dt = 0\n' > top.nde
  "$NDE" simulate top.nde -o top.h5 --t1 1 --points 3 --noise 0.1 --quiet || fail "noise 0.1 on 1e308"
  expect 3 "top10.h5: the simulated value of x at t = 0 is not finite after noise of standard deviation inf (expected finite values: lower --noise)" \
    --leaves top10.h5 -- "$NDE" simulate top.nde -o top10.h5 --t1 1 --points 3 --noise 10
  # nde forecast --data wrote NaN rows after a held-out forecast stopped, with exit 0.
  printf 'state x = 0.5\nparam k = 1\ndx/dt = k*x*x\n' > bl.nde
  "$NDE" simulate bl.nde -o bl.h5 --t1 1 --points 11 --quiet || fail "bl data"
  "$NDE" fit bl.nde bl.h5 -o blfit.h5 --optim lbfgs:5 --quiet || fail "bl fit"
  "$NDE" simulate bl.nde -o held.h5 --t1 1 --points 11 --u0 x=1.5 --param k=0.1 --quiet || fail "held"
  for out in fc.h5 fc.csv; do
    expect 3 "the forecast of held-out series / stopped: solver rk4 stopped at t = 0.7" --leaves "$out" \
      -- "$NDE" forecast blfit.h5 --data held.h5 -o "$out"
    grep -q "the prediction stopped at t = 0.7" out.txt || fail "the scores were not printed"
  done
  expect 3 "the forecast of series / stopped: solver rk4 stopped at t = 2.04" --leaves fc2.csv \
    -- "$NDE" forecast blfit.h5 -o fc2.csv --t1 3
  ;;
options_are_range_checked_and_resume_refuses_other_settings)
  # Integer options were read as long and truncated to int: 2^32 + 1 steps ran 1 step, 2^32
  # series meant "all", 2^32 failures meant 0.
  expect 2 "--steps-per-interval: expected a whole number in [1, 1000000000], got '4294967297'" \
    --leaves s.h5 -- "$NDE" simulate "$LV" -o s.h5 --t1 1 --points 3 --steps-per-interval 4294967297
  expect 2 "--batch-series: expected a whole number in [0, 16777216], got '4294967296'" \
    --leaves f.h5 -- "$NDE" fit "$UDE" "$DATA" -o f.h5 --batch-series 4294967296
  expect 2 "--max-failures: expected a whole number in [0, 1000000], got '4294967296'" \
    --leaves f.h5 -- "$NDE" fit "$UDE" "$DATA" -o f.h5 --max-failures 4294967296
  # Whole-number options take integral values in any notation; fractions are refused.
  "$NDE" grad "$LV" "$DATA" --max-steps 1e3 > /dev/null || fail "--max-steps 1e3 refused"
  "$NDE" simulate "$LV" -o s.h5 --t1 1 --points 3.0 --seed 2e1 --quiet || fail "--points 3.0 refused"
  rm -f s.h5
  expect 2 "--max-steps: expected a whole number, got '1.5'" -- "$NDE" grad "$LV" "$DATA" --max-steps 1.5
  expect 2 "--max-steps: expected a whole number in [1, 1e+15], got '1e16'" -- "$NDE" grad "$LV" "$DATA" --max-steps 1e16
  # Every range the help prints is the one the parser applies: a coverage of 1 was printed as
  # allowed ("in (0, 1]") and refused, --dt 0 likewise.
  "$NDE" fit --help > help.txt
  "$NDE" forecast --help >> help.txt
  "$NDE" uncertainty --help >> help.txt
  for o in --level --band --resample-fraction; do
    grep -E -- "^  $o .*in \(0, 1\)\)\$" help.txt > /dev/null || fail "help of $o: $(grep -- "^  $o " help.txt)"
  done
  grep -E -- '^  --dt H .*\(in \(0, 1e\+300\]\)$' help.txt > /dev/null || fail "help of --dt: $(grep -- '^  --dt ' help.txt)"
  grep -qF -- "in (0, 1])" help.txt && fail "a range (0, 1] is printed: $(grep -F -- 'in (0, 1])' help.txt)"
  expect 2 "--level: expected a number in (0, 1), got '1'" -- "$NDE" fit "$LV" "$DATA" -o f.h5 --uncertainty --level 1
  expect 2 "--band: expected a number in (0, 1), got '1'" -- "$NDE" forecast f.h5 --t1 2 -o fc.h5 --band 1
  expect 2 "--resample-fraction: expected a number in (0, 1), got '1'" \
    -- "$NDE" fit "$LV" "$DATA" -o f.h5 --ensemble 2 --resample series --resample-fraction 1
  expect 2 "--dt: expected a number in (0, 1e+300], got '0'" -- "$NDE" grad "$LV" "$DATA" --dt 0
  # --dt 1e-20: span/dt overflowed a long and became one step per interval; now the budget stops it.
  expect 3 "the step budget was used up" --leaves s.h5 \
    -- "$NDE" simulate "$LV" -o s.h5 --t1 1 --points 3 --dt 1e-20 --max-steps 1000
  # --resume with other settings than the checkpoint's is refused, naming what differs (numbers
  # as written: rtol read 9.9999999999999995e-07).
  "$NDE" fit "$UDE" "$DATA" -o r.h5 --optim adam:5 --quiet || fail "short fit"
  for o in "--seed 2:the seed is 1 in the checkpoint, 2 now" \
           "--solver dopri5:the solver is 'rk4' in the checkpoint, 'dopri5' now" \
           "--dt 0.01:the step size (dt) is 0 in the checkpoint, 0.01 now" \
           "--loss sum:the loss reduction is mean in the checkpoint, sum now" \
           "--log-loss:the log-space loss is off in the checkpoint, on now" \
           "--scale std:the state scaling is none in the checkpoint, std now" \
           "--learn-u0:learning the initial states is off in the checkpoint, on now" \
           "--batch-segments:the segments of a series as one batch (--batch-segments) is off in the checkpoint, on now" \
           "--keep-last:keep-last is off in the checkpoint, on now" \
           "--shoot-weight 0.3:the shooting weight is 10 in the checkpoint, 0.3 now"; do
    # shellcheck disable=SC2086
    expect 2 "the checkpoint does not match the options: ${o#*:}" --leaves r2.h5 \
      -- "$NDE" fit "$UDE" "$DATA" -o r2.h5 --resume r.h5 --optim adam:5 ${o%%:*}
  done
  "$NDE" fit "$UDE" "$DATA" -o rd.h5 --optim adam:5 --solver dopri5 --quiet || fail "short dopri5 fit"
  expect 2 "the checkpoint does not match the options: rtol is 1e-06 in the checkpoint, 1e-07 now" \
    --leaves r2.h5 -- "$NDE" fit "$UDE" "$DATA" -o r2.h5 --resume rd.h5 --optim adam:5 \
    --solver dopri5 --rtol 1e-7
  # An option the solver does not read is refused, not ignored: a tolerance for a fixed-step
  # solver, a step for an adaptive one (both were accepted without effect).
  expect 2 "nde: error: --rtol: the solver rk4 takes fixed steps and reads no tolerance (expected --dt or --steps-per-interval" \
    --leaves r2.h5 -- "$NDE" fit "$UDE" "$DATA" -o r2.h5 --optim adam:5 --rtol 1e-8
  expect 2 "nde: error: --h0: the solver leapfrog takes fixed steps" \
    -- "$NDE" simulate "$LV" -o s2.h5 --t1 1 --points 3 --solver leapfrog --h0 0.1
  expect 2 "nde: error: --dt: the solver cvode-bdf chooses its own steps (expected --rtol and --atol" \
    -- "$NDE" grad "$UDE" "$DATA" --solver cvode-bdf --dt 0.1
  expect 2 "nde: error: --steps-per-interval: the solver dopri5 chooses its own steps" \
    -- "$NDE" forecast r.h5 --t1 2 -o f2.h5 --solver dopri5 --steps-per-interval 4
  # Without --solver a forecast runs the fit's method: the options are checked against it (a
  # --dt given to the forecast of a cvode-bdf fit was ignored with exit 0).
  "$NDE" fit "$LV" "$DATA" -o cv.h5 --solver cvode-bdf --optim lbfgs:3 --quiet || fail "cvode fit"
  expect 2 "nde: error: --dt: the solver cvode-bdf chooses its own steps" --leaves f2.h5 \
    -- "$NDE" forecast cv.h5 --t1 2 -o f2.h5 --dt 0.01
  "$NDE" forecast cv.h5 --t1 2 -o f3.h5 --rtol 1e-9 --quiet || fail "forecast of a cvode fit with --rtol"
  ;;
test_hooks_are_inert_outside_test_builds)
  # The NDE_TEST_* fault hooks exist only with -Dtest_hooks=true; elsewhere the variables do
  # nothing (a release binary aborted itself when NDE_TEST_ABORT_AFTER_CHECKPOINT was set).
  if "$NDE" --version | grep -q "test hooks: compiled in"; then
    echo "this build has the test hooks (-Dtest_hooks=true): nothing to check"
    exit 77
  fi
  NDE_TEST_ABORT_AFTER_CHECKPOINT=1 NDE_TEST_ABORT_DURING_CHECKPOINT=1 NDE_TEST_NAN_EVAL=2 \
    "$NDE" fit "$UDE" "$DATA" -o h.h5 --optim adam:30 --checkpoint-every 10 --checkpoint-seconds 0 \
    --quiet || fail "a hook acted in a build without them (exit $?)"
  [ "$("$H5" attr h.h5 / status)" = done ] || fail "status"
  ;;
*)
  fail "unknown case $CASE"
  ;;
esac
echo "ok: $CASE"
