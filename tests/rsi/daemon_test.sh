#!/bin/bash
# The self-improvement daemon end to end: refusals that write nothing; start, status, logs, stop
# (graceful, then forced), restart, and a second daemon refused; crash safety: SIGKILL 20 times or
# more within a minute, at random moments and while a checkpoint is being written, each followed by
# a restart. The killed run must end with the history and checkpoints of an uninterrupted run of as
# many cycles.
# Usage: daemon_test.sh SSMRL_BINARY WORK_DIR PYTHON
set -u
ssmrl=$1
work=$2
python=$3
source "$(dirname "${BASH_SOURCE[0]}")/../support/expect.sh"
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
is_running() { "$ssmrl" rsi status --dir "$1" 2>/dev/null | grep -q '^running'; }
# Every line of DIR/history.jsonl is a whole JSON object, cycles 0, 1, 2, ... each once.
check_history() {
  "$python" - "$1/history.jsonl" <<'EOF' || fail "$1/history.jsonl is torn, out of order or repeats a cycle"
import json, sys
text = open(sys.argv[1]).read()
assert text.endswith("\n"), "a torn last line"
cycles = [json.loads(line)["cycle"] for line in text.splitlines()]
assert cycles == list(range(len(cycles))), cycles
EOF
}

# The crash-safety run starts normalised and switches the norm in some cycles, so that resuming
# reads checkpoints with the norm on and off.
small=(--hidden 8,8 --tasks-per-batch 2 --budget 1 --eval-seeds 5 --heldout-seeds 5 --tasks-per-seed 3
       --degradation 10 --replicates 2 --normalised --norm-probability 0.4)

# Bad input: a clear error, and no directory written.
expect 1 "holds no run \(no rsi.json\)" "$ssmrl" rsi status --dir none
expect 1 "each width must be a whole number from 1 to 4096" "$ssmrl" rsi start --dir bad --hidden 8,0
expect 1 "no knob 'nope'" "$ssmrl" rsi start --dir bad --set nope=1
expect 1 "inner_lr' = 100 is outside its range" "$ssmrl" rsi start --dir bad --set inner_lr=100
expect 1 "is not a MAML configuration with an MLP policy" "$ssmrl" rsi start --dir bad --config cartpole-ppo
expect 1 "no knob 'outer_lr'" "$ssmrl" rsi start --dir bad --proposal-knobs inner_lr,outer_lr
expect 1 "add up to more than 1" "$ssmrl" rsi start --dir bad --widen-probability 0.6 --shrink-probability 0.6
expect 1 "and --norm-probability 0.8 add up to more than 1" "$ssmrl" rsi start --dir bad --norm-probability 0.8
[ ! -e bad ] && [ ! -e none ] || fail "a refused command wrote its directory"

# Shrinking proposals: a layer loses 1 to 20% of its units.
expect 0 "^cycle 1: shrink layer [01] 10 -> (8|9): " "$ssmrl" rsi start --foreground --dir shrink --hidden 10,10 \
  --tasks-per-batch 2 --budget 1 --eval-seeds 5 --heldout-seeds 5 --tasks-per-seed 2 --replicates 1 \
  --widen-probability 0 --shrink-probability 1 --cycles 1
grep -q '"function_preserving":false' shrink/history.jsonl || fail "a shrink is not marked as changing the function"

# Normalisation proposals: switched on from a plain start, off from a normalised one.
one_cycle=(--hidden 8,8 --tasks-per-batch 2 --budget 1 --eval-seeds 5 --heldout-seeds 5 --tasks-per-seed 2
           --replicates 1 --widen-probability 0 --norm-probability 1 --cycles 1)
expect 0 "^cycle 1: normalisation off -> on: " "$ssmrl" rsi start --foreground --dir norm-on "${one_cycle[@]}"
expect 0 "^cycle 1: normalisation on -> off: " "$ssmrl" rsi start --foreground --dir norm-off "${one_cycle[@]}" \
  --normalised
expect 0 "hidden 8,8 \(normalised\)" "$ssmrl" rsi status --dir norm-off

# The daemon: a second one refused, a graceful stop, a forced one, a restart; logs and status.
expect 0 "^self-improvement daemon started \(pid [0-9]+\) in d" "$ssmrl" rsi start --dir d "${small[@]}" --cycles 0
expect 1 "'d' is in use by another process \(pid [0-9]+\)" "$ssmrl" rsi start --dir d
expect 0 "^running \(pid [0-9]+\) in d" "$ssmrl" rsi status --dir d
sleep 1
expect 0 "stopped after its cycle" "$ssmrl" rsi stop --dir d
expect 0 "^not running" "$ssmrl" rsi status --dir d
[ ! -e d/stop ] || fail "the stop file stayed after the stop"
expect 0 "stop asked for: ending before cycle" "$ssmrl" rsi logs --dir d --no-follow
check_history d
expect 0 "^self-improvement daemon started" "$ssmrl" rsi start --dir d
expect 0 "did not stop within 0 s: killed" "$ssmrl" rsi stop --dir d --timeout 0
expect 0 "^self-improvement daemon started" "$ssmrl" rsi restart --dir d
expect 0 "stopped after its cycle" "$ssmrl" rsi stop --dir d
expect 0 "resumed at cycle" "$ssmrl" rsi logs --dir d
check_history d
expect 0 "no daemon runs in d" "$ssmrl" rsi stop --dir d

# Crash safety: SIGKILL, alternately after a random pause and as soon as a checkpoint's temporary
# file appears (the write is then under way), then a restart; at least 24 kills, and on until the
# run has reached cycle 10 (how long that takes depends on the machine), within two minutes.
expect 0 "^self-improvement daemon started" "$ssmrl" rsi start --dir k "${small[@]}" --cycles 0
kills=0
during_write=0
begin=$SECONDS
reached() { [ -f k/history.jsonl ] && echo $(($(wc -l < k/history.jsonl) - 1)) || echo 0; }
while { [ $kills -lt 24 ] || [ "$(reached)" -lt 10 ]; } && [ $((SECONDS - begin)) -lt 120 ]; do
  if is_running k; then
    how=$("$python" - k $((kills % 2)) <<'EOF'
import os, random, signal, sys, time
run, mode = sys.argv[1], int(sys.argv[2])
pid = int(open(os.path.join(run, "rsi.pid")).read())
ring = os.path.join(run, "checkpoints")
deadline = time.monotonic() + (1.0 if mode else random.uniform(0.05, 0.6))
seen = None
while time.monotonic() < deadline:
    if mode:
        seen = next((n for n in os.listdir(ring) if ".tmp-" in n), None)
        if seen:
            break
os.kill(pid, signal.SIGKILL)
print("write" if seen and os.path.exists(os.path.join(ring, seen)) else "random")
EOF
)
    [ "$how" = write ] && during_write=$((during_write + 1))
    kills=$((kills + 1))
    for _ in $(seq 100); do is_running k || break; sleep 0.02; done
  fi
  out=$("$ssmrl" rsi start --dir k 2>&1) || fail "restart after a kill: $out"
done
echo "killed the daemon $kills times in $((SECONDS - begin)) s, $during_write of them during a checkpoint write"
[ $kills -ge 20 ] || fail "only $kills kills within two minutes"
expect 0 "stopped after its cycle" "$ssmrl" rsi stop --dir k
check_history k
ls k/checkpoints | grep -q '\.tmp-' && fail "a temporary file of an interrupted write stayed"
cycles=$(($(wc -l < k/history.jsonl) - 1))
echo "the killed run reached cycle $cycles"
[ $cycles -ge 10 ] || fail "the killed run reached only $cycles cycles"

# The reference: an uninterrupted run of as many cycles, in the foreground, ends where the killed
# run did.
expect 0 "^done: $cycles cycles" "$ssmrl" rsi start --foreground --dir ref "${small[@]}" --cycles $cycles
cmp -s ref/history.jsonl k/history.jsonl || fail "the killed run's history differs from the uninterrupted run's"
for f in best "cycle_$cycles"; do
  cmp -s "ref/checkpoints/$f.safetensors" "k/checkpoints/$f.safetensors" || fail "checkpoint $f differs"
done
expect 0 "^cycles done: $cycles \(accepted [0-9]+, rejected [0-9]+" "$ssmrl" rsi status --dir ref
expect 0 "^not running" "$ssmrl" rsi status --dir ref
expect 1 "holds a run with its settings .*; --budget is for a new run's directory" "$ssmrl" rsi start --dir ref \
  --budget 2
grep -q '"proposal"' ref/history.jsonl && grep -q '"iqm_ci95"' ref/history.jsonl ||
  fail "the history lacks proposals or intervals"
grep -q '"kind":"normalisation"' ref/history.jsonl || fail "the crash-safety run switched no norm"

# The baseline of the results: plain training of the starting configuration with the loop's compute.
expect 0 "^plain training of the starting configuration: 8 meta-iterations" "$ssmrl" rsi plain --dir ref --iterations 8
grep -q '"report_seeds"' ref/plain-8.json || fail "rsi plain wrote no result"
expect 0 "^the loop.s policy after cycle $cycles: hidden \[" "$ssmrl" rsi evaluate --dir ref

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all self-improvement daemon checks passed"
