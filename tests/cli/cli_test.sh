#!/bin/bash
# End-to-end checks of the ssmrl command line. Usage: cli_test.sh SSMRL_BINARY WORK_DIR PRETRAINED_DIR
set -u
ssmrl=$1
work=$2
pretrained=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect() {  # expect STATUS PATTERN COMMAND...: exit status and a line of the output matching PATTERN
  local status=$1 pattern=$2
  shift 2
  local out
  out=$("$@" 2>&1)
  local got=$?
  [ "$got" -eq "$status" ] || fail "$* exited with $got, expected $status: $out"
  grep -Eq -- "$pattern" <<<"$out" || fail "$* printed no line matching '$pattern': $out"
}

# Resuming: 2 iterations, then resumed to 3, equals 3 straight (parameters and log).
small=(--config navigation2d --tasks-per-batch 2 --no-eval --quiet)
expect 0 "meta-training: 3 iterations" "$ssmrl" train "${small[@]}" --outer-steps 3 --ckpt-dir straight
expect 0 "meta-training: 2 iterations" "$ssmrl" train "${small[@]}" --outer-steps 2 --ckpt-dir resumed
expect 0 "meta-iterations 2 to 3" "$ssmrl" train --config navigation2d --outer-steps 3 --ckpt-dir resumed --resume --no-eval --quiet
cmp -s straight/latest.safetensors resumed/latest.safetensors || fail "resumed parameters differ from the straight run's"
diff <(cut -d, -f1-5 straight/train.csv) <(cut -d, -f1-5 resumed/train.csv) > /dev/null || fail "resumed log differs"
for f in step_0 step_3 best latest; do [ -f "straight/$f.safetensors" ] || fail "no $f checkpoint"; done
grep -q "<polyline" straight/train.svg || fail "the plot has no curve"

# eval and adapt: a table, and one JSON object with the same figures.
expect 0 "^after 2 steps" "$ssmrl" adapt --checkpoint straight/latest.safetensors --episodes 2 --adapt-steps 2
expect 0 '^\{"checkpoint":.*"returns":\[\{"adaptation_steps":0,"mean_return":' \
  "$ssmrl" eval --checkpoint straight/latest.safetensors --episodes 2 --json

# Bad input: a clear message and nothing changed.
expect 1 "unknown config 'nope'; known: navigation2d" "$ssmrl" train --config nope
expect 1 "already holds a run; pass --resume" "$ssmrl" train "${small[@]}" --ckpt-dir straight
cmp -s straight/latest.safetensors resumed/latest.safetensors || fail "a refused train changed the run"
expect 1 "whose seed is 1, not 7" "$ssmrl" train --config navigation2d --ckpt-dir straight --resume --seed 7
expect 1 "unknown option '--bogus'" "$ssmrl" eval --checkpoint straight/latest.safetensors --bogus
expect 1 "cannot open 'missing.safetensors'" "$ssmrl" eval --checkpoint missing.safetensors
expect 2 "^usage" "$ssmrl"

# Plain training reaches Gymnasium's thresholds.
for config in cartpole-reinforce cartpole-a2c cartpole-ppo pendulum-ppo; do
  expect 0 "^solved after" "$ssmrl" train --config "$config" --ckpt-dir "$config" --quiet
done

# Test-time adaptation of a plain checkpoint on shifted dynamics: a table, one row per strategy.
expect 0 "^policy_gradient" "$ssmrl" adapt --checkpoint cartpole-ppo/latest.safetensors --strategy all --episodes 2 --adapt-steps 1
expect 0 '"strategies":\{"entropy"' "$ssmrl" adapt --checkpoint cartpole-ppo/latest.safetensors --strategy entropy --episodes 2 --json
expect 1 "unknown strategy 'tent'; known: entropy, hybrid, none, policy_gradient" \
  "$ssmrl" adapt --checkpoint cartpole-ppo/latest.safetensors --strategy tent
expect 1 "names no shifted dynamics for --strategy" "$ssmrl" adapt --checkpoint straight/latest.safetensors --strategy entropy

# Every shipped checkpoint loads into its configuration's policy and evaluates.
count=0
for file in "$pretrained"/*.safetensors; do
  expect 0 "mean return" "$ssmrl" eval --checkpoint "$file" --episodes 2
  count=$((count + 1))
done
[ "$count" -ge 8 ] || fail "only $count pretrained checkpoints in $pretrained"

[ "$failures" -eq 0 ] && echo "all command-line checks passed"
exit "$failures"
