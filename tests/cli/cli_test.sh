#!/bin/bash
# End-to-end checks of the ssmrl command line. Usage: cli_test.sh SSMRL_BINARY WORK_DIR PRETRAINED_DIR
set -u
ssmrl=$1
work=$2
pretrained=$3
source "$(dirname "${BASH_SOURCE[0]}")/../support/expect.sh"
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1

# Resuming: 2 iterations, then resumed to 3, equals 3 straight (parameters and log).
small=(--config navigation2d --tasks-per-batch 2 --no-eval --quiet)
expect 0 "meta-training: 3 iterations" "$ssmrl" train "${small[@]}" --outer-steps 3 --ckpt-dir straight
expect 0 "meta-training: 2 iterations" "$ssmrl" train "${small[@]}" --outer-steps 2 --ckpt-dir resumed
expect 0 "meta-iterations 2 to 3" "$ssmrl" train --config navigation2d --outer-steps 3 --ckpt-dir resumed --resume --no-eval --quiet
cmp -s straight/latest.safetensors resumed/latest.safetensors || fail "resumed parameters differ from the straight run's"
diff <(cut -d, -f1-5 straight/train.csv) <(cut -d, -f1-5 resumed/train.csv) > /dev/null || fail "resumed log differs"
for f in step_0 step_3 best latest; do [ -f "straight/$f.safetensors" ] || fail "no $f checkpoint"; done
grep -q "<polyline" straight/train.svg || fail "the plot has no curve"

# A configuration with MC actions: its action knobs, a short run with one of them off, eval and
# a checkpoint that the resumed run continues.
expect 0 "^mc_clear_state +bool +\{false, true\} +true " "$ssmrl" configs --knobs regime-switch-mc
expect 0 "^not solved after 2 updates" "$ssmrl" train --config regime-switch-mc --outer-steps 2 \
  --set mc_noise_high=false --ckpt-dir mc --quiet
expect 0 "updates 2 to at most 3" "$ssmrl" train --config regime-switch-mc --outer-steps 3 --ckpt-dir mc --resume --quiet
col=$(head -1 mc/train.csv | tr ',' '\n' | grep -n '^knob.mc_noise_high$' | cut -d: -f1)
[ -n "$col" ] && [ "$(tail -1 mc/train.csv | cut -d, -f"$col")" = 0 ] || fail "the resumed run lost mc_noise_high=false"
# The MC head's telemetry: its entropy and each action's share; an action turned off has share 0.
share=$(head -1 mc/train.csv | tr ',' '\n' | grep -n '^mc_share.noise_high$' | cut -d: -f1)
noop=$(head -1 mc/train.csv | tr ',' '\n' | grep -n '^mc_share.noop$' | cut -d: -f1)
head -1 mc/train.csv | grep -q ',mc_entropy,mc_share.noop,mc_share.clear_state,mc_share.noise_low,mc_share.noise_high,' ||
  fail "train.csv of regime-switch-mc lacks the MC columns"
[ -n "$share" ] && [ "$(tail -1 mc/train.csv | cut -d, -f"$share")" = 0 ] || fail "an MC action turned off was chosen"
awk -F, -v c="$noop" 'NR > 1 && !($c > 0.5 && $c < 1) { bad = 1 } END { exit bad }' mc/train.csv ||
  fail "the MC head did not start with noop near its initial probability 0.9"
grep -q "<svg" mc/mc_actions.svg && grep -q "clear_state" mc/mc_actions.svg || fail "no plot of the MC actions' shares"
expect 0 "\"config\":\"regime-switch-mc\"" "$ssmrl" eval --checkpoint mc/latest.safetensors --episodes 2 --json
expect 0 "^entropy " "$ssmrl" adapt --checkpoint mc/latest.safetensors --strategy entropy --episodes 2 --adapt-steps 1
expect 1 "hybrid replays buffered segments, which keep no MC actions" "$ssmrl" adapt \
  --checkpoint mc/latest.safetensors --strategy hybrid --episodes 2 --adapt-steps 1
# A POPGym task through env::OneOf: trained, and evaluated on the task its checkpoint names.
expect 0 "^not solved after 2 updates" "$ssmrl" train --config popgym-repeat-previous-medium-mc --outer-steps 2 \
  --ckpt-dir popgym --quiet
expect 0 "\"config\":\"popgym-repeat-previous-medium-mc\"" "$ssmrl" eval --checkpoint popgym/latest.safetensors \
  --episodes 2 --json
# Token observations with MC focus: a short run (no evaluation comes before update 25), and when
# its MC head chose each action, by the step of the episode and by the steps since the cue.
expect 0 "^no evaluation came \(one every 25 updates\), threshold 0.99" "$ssmrl" train --config cued-majority-mc \
  --outer-steps 2 --ckpt-dir cued --quiet
expect 0 "^MC choices by step of the episode: plot cued/when.svg, table cued/when.csv" "$ssmrl" eval \
  --checkpoint cued/latest.safetensors --episodes 3 --mc-when cued/when.svg
[ "$(head -1 cued/when.csv)" = "step,steps,share.noop,share.focus_short,share.focus_long" ] ||
  fail "when.csv has the header '$(head -1 cued/when.csv)'"
# 200 steps, each with the first episode of all 3 environments, the shares summing to 1.
awk -F, 'NR > 1 { rows++; if ($1 != NR - 2 || $2 != 3 || ($3 + $4 + $5 - 1)^2 > 1e-12) bad = 1 }
  END { exit bad || rows != 200 }' cued/when.csv || fail "when.csv is not 200 steps of 3 episodes' shares"
grep -q "<polyline" cued/when.svg && grep -q "focus_short" cued/when.svg || fail "when.svg has no curves"
expect 0 "^MC choices by steps since observation feature 95 exceeded 0.5" "$ssmrl" eval --json \
  --checkpoint cued/latest.safetensors --episodes 3 --mc-when since.svg --mc-when-since 95
head -1 since.csv | grep -q "^steps_since,steps,share.noop," || fail "since.csv lacks the steps_since column"
expect 1 "ssmrl eval --mc-when: 'when.png' does not end in .svg" "$ssmrl" eval --checkpoint cued/latest.safetensors \
  --mc-when when.png
expect 1 "since_feature 96 is not a feature of observations of 96" "$ssmrl" eval \
  --checkpoint cued/latest.safetensors --episodes 3 --mc-when far.svg --mc-when-since 96
expect 1 "ssmrl eval --mc-when: config 'navigation2d' has no MC actions" "$ssmrl" eval \
  --checkpoint straight/latest.safetensors --mc-when nav.svg
expect 2 "requires --mc-when" "$ssmrl" eval --checkpoint cued/latest.safetensors --mc-when-since 1
for f in when.png when.csv far.svg far.csv nav.svg nav.csv; do [ ! -e "$f" ] || fail "a refused eval wrote $f"; done
expect 0 "^popgym-noisy-cartpole-mc +POPGym's Noisy Position-only CartPole Easy" "$ssmrl" configs
expect 1 "unknown config 'popgym-cartpole'" "$ssmrl" configs --knobs popgym-cartpole
expect 1 "unknown config 'popgym-repeat-previous-hard-mc'" "$ssmrl" configs --knobs popgym-repeat-previous-hard-mc

# eval and adapt: a table, and one JSON object with the same figures.
expect 0 "^after 2 steps" "$ssmrl" adapt --checkpoint straight/latest.safetensors --episodes 2 --adapt-steps 2
expect 0 '^\{"checkpoint":.*"returns":\[\{"adaptation_steps":0,"mean_return":' \
  "$ssmrl" eval --checkpoint straight/latest.safetensors --episodes 2 --json

# Bad input: a clear message and nothing changed. Parse errors exit 2, refused work 1.
expect 1 "unknown config 'nope'; known: navigation2d" "$ssmrl" train --config nope
expect 1 "already holds a run; pass --resume" "$ssmrl" train "${small[@]}" --ckpt-dir straight
cmp -s straight/latest.safetensors resumed/latest.safetensors || fail "a refused train changed the run"
expect 1 "whose --seed is 1, not 7" "$ssmrl" train --config navigation2d --ckpt-dir straight --resume --seed 7
expect 0 "already at meta-iteration 3; --outer-steps 2 asks for no more: nothing to do" \
  "$ssmrl" train --config navigation2d --ckpt-dir straight --resume --outer-steps 2
cmp -s straight/latest.safetensors resumed/latest.safetensors || fail "a resume with nothing to do changed the run"
expect 2 "^ssmrl eval: The following argument was not expected: --bogus" "$ssmrl" eval --checkpoint straight/latest.safetensors --bogus
expect 2 "^ssmrl eval: --checkpoint: File does not exist: missing.safetensors" "$ssmrl" eval --checkpoint missing.safetensors
expect 2 "^ssmrl eval: --checkpoint: File is actually a directory: straight" "$ssmrl" eval --checkpoint straight
expect 2 "^ssmrl adapt: --lr: Failed parsing abc as a FLOAT" "$ssmrl" adapt --checkpoint straight/latest.safetensors --lr abc
expect 2 "^ssmrl adapt: --lr: value -1 is not in \(0, 10\]" "$ssmrl" adapt --checkpoint straight/latest.safetensors --lr -1
expect 2 "^ssmrl eval: --episodes: Value 3000000000 not in range 1 to 100000" \
  "$ssmrl" eval --checkpoint straight/latest.safetensors --episodes 3000000000
expect 2 "^ssmrl train: --seed: value -1 is not a whole number" "$ssmrl" train --config navigation2d --seed -1
expect 2 "^ssmrl train: --seed: At Most 1 required but received 2" "$ssmrl" train --config navigation2d --seed 1 --seed 2
expect 2 "^ssmrl train: --quiet: At Most 1 required but received 2" "$ssmrl" train --config navigation2d --quiet --quiet
expect 2 "^ssmrl train: --config is required" "$ssmrl" train
expect 2 "A subcommand is required" "$ssmrl"
expect 2 "^ssmrl: A subcommand is required" "$ssmrl" bogus
touch not-a-directory
expect 1 "^ssmrl train: --ckpt-dir 'not-a-directory/run': cannot create the run directory: Not a directory" \
  "$ssmrl" train --config cartpole-ppo --ckpt-dir not-a-directory/run
expect 1 "trains on one environment; --tasks-per-batch" "$ssmrl" train --config cartpole-ppo --ckpt-dir refused/run --tasks-per-batch 3
[ -e refused ] && fail "a refused train left a directory behind"
# A checkpoint holding a NaN weight is refused at load.
python3 - straight/latest.safetensors nan.safetensors <<'PY'
import json, struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
(length,) = struct.unpack("<Q", data[:8])
header = json.loads(data[8:8 + length])
begin = min(e["data_offsets"][0] for k, e in header.items() if k != "__metadata__")
data[8 + length + begin:8 + length + begin + 4] = struct.pack("<f", float("nan"))
open(sys.argv[2], "wb").write(data)
PY
expect 1 "nan.safetensors': tensor .* holds NaN or infinite values" "$ssmrl" eval --checkpoint nan.safetensors

# Help and version: each subcommand's options with their defaults, exit 0.
expect 0 "--outer-steps" "$ssmrl" train --help
expect 0 "--save-every INT:INT in \[1 - 1000000\]=50" "$ssmrl" train -h
expect 0 "--lr FLOAT:.*=0.001" "$ssmrl" adapt --help
expect 0 "^ssmrl [0-9]+\.[0-9]+\.[0-9]+$" "$ssmrl" --version
expect 0 "cartpole-ppo .*\(400 updates at most\)" "$ssmrl" configs
expect 0 "navigation2d .*\(500 meta-iterations\)" "$ssmrl" configs

# Logs count iterations from 1; the plot marks the best checkpoint and has round ticks.
[ "$(sed -n 2p straight/train.csv | cut -d, -f1)" = 1 ] || fail "the log's first iteration is not 1"
grep -q "best checkpoint (iteration" straight/train.svg || fail "the plot does not mark the best checkpoint"

# The held-out evaluation draws from --eval-seed alone: the same seed repeats, another differs.
"$ssmrl" eval --checkpoint straight/latest.safetensors --episodes 2 --json > eval-a.json || fail "eval exited with $?"
"$ssmrl" eval --checkpoint straight/latest.safetensors --episodes 2 --json > eval-b.json || fail "eval exited with $?"
"$ssmrl" eval --checkpoint straight/latest.safetensors --episodes 2 --eval-seed 7 --json > eval-c.json || fail "eval exited with $?"
cmp -s eval-a.json eval-b.json || fail "two evaluations with the same seed differ"
cmp -s eval-a.json eval-c.json && fail "evaluations with seeds 12345 and 7 are identical"

# Meta-SGD: the learned rates are saved beside the parameters, resumed and used by eval.
metasgd=(--config navigation2d-metasgd --tasks-per-batch 2 --no-eval --quiet)
expect 0 "meta-training: 2 iterations" "$ssmrl" train "${metasgd[@]}" --outer-steps 2 --ckpt-dir metasgd
grep -aq '"inner_lr.cell.layers.0.W"' metasgd/latest.safetensors || fail "no learned rates in the Meta-SGD checkpoint"
expect 0 "meta-iterations 2 to 3" "$ssmrl" train "${metasgd[@]}" --outer-steps 3 --ckpt-dir metasgd --resume
expect 0 "^after 1 step" "$ssmrl" adapt --checkpoint metasgd/latest.safetensors --episodes 2 --adapt-steps 1

# The threads share the tasks without changing a bit: runs resumed with 1 and with 3 threads agree.
cp -r straight threads1 && cp -r straight threads3
expect 0 "meta-iterations 3 to 4, 1 threads" "$ssmrl" train --config navigation2d --ckpt-dir threads1 --resume --outer-steps 4 --threads 1 --no-eval --quiet
expect 0 "meta-iterations 3 to 4, 3 threads" "$ssmrl" train --config navigation2d --ckpt-dir threads3 --resume --outer-steps 4 --threads 3 --no-eval --quiet
# The files differ in one byte: the recorded --threads ("1" and "3" in the metadata).
[ "$(cmp -l threads1/latest.safetensors threads3/latest.safetensors | wc -l)" = 1 ] ||
  fail "1 and 3 threads reached different parameters"
diff <(cut -d, -f1-5 threads1/train.csv) <(cut -d, -f1-5 threads3/train.csv) > /dev/null || fail "1 and 3 threads logged differently"

# One owner per run directory; SIGINT ends a run cleanly, with the command that resumes it.
"$ssmrl" train --config navigation2d --tasks-per-batch 2 --outer-steps 2000 --ckpt-dir interrupted --no-eval --quiet \
  > interrupted.out 2>&1 &
first=$!
for _ in $(seq 100); do [ -f interrupted/latest.safetensors ] && break; sleep 0.1; done
expect 1 "'interrupted' is in use by another process \(pid $first\)" \
  "$ssmrl" train --config navigation2d --ckpt-dir interrupted --resume --outer-steps 2000 --quiet
sleep 1
kill -INT "$first"
wait "$first"
status=$?
[ "$status" -eq 130 ] || fail "an interrupted run exited with $status, expected 130: $(cat interrupted.out)"
grep -q "^stopped by SIGINT after meta-iteration [0-9]* of 2000" interrupted.out || fail "no stop message: $(cat interrupted.out)"
grep -q "^continue with: ssmrl train --config navigation2d --ckpt-dir interrupted --resume --outer-steps 2000" interrupted.out ||
  fail "no resume command: $(cat interrupted.out)"
done_iterations=$(sed -n 's/^stopped by SIGINT after meta-iteration \([0-9]*\).*/\1/p' interrupted.out)
[ "$(($(wc -l < interrupted/train.csv) - 1))" = "$done_iterations" ] || fail "the log does not end at the stop"
# A temporary file of an interrupted write is removed at the next start, and the run goes on.
echo torn > interrupted/latest.safetensors.tmp-12345
expect 0 "removed 1 temporary file" "$ssmrl" train --config navigation2d --ckpt-dir interrupted --resume \
  --outer-steps $((done_iterations + 1)) --no-eval --quiet
[ -e interrupted/latest.safetensors.tmp-12345 ] && fail "the temporary file was left"
ls interrupted | grep -q "tmp-" && fail "temporary files left: $(ls interrupted)"

# Knobs: listed with bounds; a bad --set is refused before training, naming the knob and its range.
expect 0 "^epochs +int +\[1, 100\] +4 " "$ssmrl" configs --knobs cartpole-ppo
expect 0 "^fisher +choice +\{at_adapted, through_adaptation\}" "$ssmrl" configs --knobs navigation2d
expect 1 "unknown config 'nope'" "$ssmrl" configs --knobs nope
expect 1 "knob 'epochs' = 0 is outside its range \[1, 100\]" "$ssmrl" train --config cartpole-ppo --set epochs=0 --ckpt-dir refused/knobs
expect 1 "knob 'epochs' \(int, \[1, 100\]\): '2.5' is not a whole number" "$ssmrl" train --config cartpole-ppo --set epochs=2.5 --ckpt-dir refused/knobs
expect 1 "no knob 'bogus'; the knobs are lr, weight_decay, lr_decay" "$ssmrl" train --config cartpole-ppo --set bogus=1 --ckpt-dir refused/knobs
echo '{"epochs": 3.0}' > bad-config.json
expect 1 "bad-config.json': knob 'epochs' is int \[1, 100\], not JSON number 3.0" "$ssmrl" train --config cartpole-ppo --config-file bad-config.json --ckpt-dir refused/knobs
[ -e refused ] && fail "a refused --set left a directory behind"

# The override file: wins over the configuration, is re-applied after --resume (equal to the run
# that was not interrupted), and its removal reverts to the configured values.
echo '{"inner_lr": 0.05, "max_kl": 0.02}' > override.json
expect 0 "meta-training: 3 iterations" "$ssmrl" train "${small[@]}" --outer-steps 3 --set inner_lr=0.2 --override-file override.json --ckpt-dir knobs-straight
expect 0 "meta-training: 2 iterations" "$ssmrl" train "${small[@]}" --outer-steps 2 --set inner_lr=0.2 --override-file override.json --ckpt-dir knobs-resumed
expect 0 "meta-iterations 2 to 3" "$ssmrl" train --config navigation2d --outer-steps 3 --ckpt-dir knobs-resumed --resume --no-eval --quiet
cmp -s knobs-straight/latest.safetensors knobs-resumed/latest.safetensors || fail "the override was not re-applied after --resume"
column_of() { head -1 "$1" | tr , '\n' | grep -nx "$2" | cut -d: -f1; }
lr_column=$(column_of knobs-straight/train.csv knob.inner_lr)
[ "$(cut -d, -f"$lr_column" knobs-straight/train.csv | sort -u | tr '\n' ' ')" = "0.050000000000000003 knob.inner_lr " ] ||
  fail "train.csv's knob.inner_lr is not the override's 0.05: $(cut -d, -f"$lr_column" knobs-straight/train.csv)"
grep -qx "0,inner_lr,0.05,override" knobs-straight/knobs_audit.csv || fail "the audit log lacks the override: $(cat knobs-straight/knobs_audit.csv)"
grep -qx "0,inner_steps,1,default" knobs-straight/knobs_audit.csv || fail "the audit log lacks a default"
grep -aqF 'inner_steps\": 1,' knobs-straight/latest.safetensors || fail "the checkpoint does not hold the knobs in effect as ints"
diff knobs-straight/knobs_audit.csv knobs-resumed/knobs_audit.csv > /dev/null || fail "the resumed audit log differs"
rm override.json
expect 0 "meta-iterations 3 to 4" "$ssmrl" train --config navigation2d --outer-steps 4 --ckpt-dir knobs-straight --resume --no-eval --quiet
grep -qx "3,inner_lr,0.2,config" knobs-straight/knobs_audit.csv || fail "removing the override did not revert: $(cat knobs-straight/knobs_audit.csv)"
# A malformed override file is refused whole with one warning; the run keeps its values.
printf '{"inner_lr": 0.05, "max_kl": 2}' > override.json
expect 0 "override file ignored: .*override.json': knob 'max_kl' = 2 is outside its range \[1e-05, 1\] log; the run keeps its current values" \
  "$ssmrl" train --config navigation2d --outer-steps 6 --ckpt-dir knobs-straight --resume --no-eval --quiet
[ "$("$ssmrl" train --config navigation2d --outer-steps 8 --ckpt-dir knobs-straight --resume --no-eval --quiet 2>&1 | grep -c 'override file ignored')" = 1 ] ||
  fail "the refused override was not warned about exactly once per run"
[ "$(tail -n +2 knobs-straight/knobs_audit.csv | cut -d, -f4 | grep -c override)" = 2 ] || fail "a refused override reached the audit log"

# Controllers: a new one, a sweep with random schedules, offline pretraining on its logs, a run
# steered by the controller (its decisions in the audit log), and a steered run resumed exactly.
expect 0 "controller for cartpole-ppo: GRU with 8 hidden units steering lr, clip" \
  "$ssmrl" controller init --config cartpole-ppo --knobs lr,clip --hidden 8 --out ctl.safetensors
expect 1 "'knob.lr' is not a telemetry column of cartpole-ppo's train.csv" \
  "$ssmrl" controller init --config cartpole-ppo --knobs lr --telemetry knob.lr --out leak.safetensors
expect 1 "no knob 'bogus'" "$ssmrl" controller init --config cartpole-ppo --knobs bogus --out bad.safetensors
expect 0 "sweep done: 4 runs, 0 failed" "$ssmrl" sweep --config cartpole-ppo --dir sweep --sample lr=1e-4:3e-3 \
  --sample clip=0.1:0.3 --schedules 2 --segment 5 --seeds 1-2 --outer-steps 20 --threads 2
[ "$(ls -d sweep/run-*-seed* | wc -l)" = 4 ] || fail "the sweep did not write 4 runs: $(ls sweep)"
lr_column=$(column_of sweep/run-0000-seed1/train.csv knob.lr)
[ "$(tail -n +2 sweep/run-0000-seed1/train.csv | cut -d, -f"$lr_column" | sort -u | wc -l)" = 4 ] ||
  fail "a scheduled run did not change lr every 5 updates: $(cut -d, -f"$lr_column" sweep/run-0000-seed1/train.csv)"
grep -q ",lr,.*,controller$" sweep/run-0000-seed1/knobs_audit.csv || fail "the schedule is not in the audit log"
expect 0 "pretraining on 4 runs of cartpole-ppo \(12 decisions, windows of 5 rows, objective mean_return_last_100\), seeds: 1,2" \
  "$ssmrl" pretrain --controller ctl.safetensors --runs sweep --steps 20
expect 0 "^not solved after 30 updates" "$ssmrl" train --config cartpole-ppo --controller ctl.safetensors --controller-every 5 \
  --outer-steps 30 --ckpt-dir steered --quiet
grep -q "^5,.*,controller$" steered/knobs_audit.csv || fail "no controller decision at update 5: $(cat steered/knobs_audit.csv)"
ls steered/controller-30.safetensors > /dev/null || fail "the steered run's controller was not saved with its checkpoint"
expect 0 "controller: 2 REINFORCE steps" "$ssmrl" train --config cartpole-ppo --controller ctl.safetensors --controller-every 1 \
  --controller-learn --outer-steps 20 --ckpt-dir learning --quiet
same_parameters() {  # same_parameters A B: the param.* tensors of two controller files are equal
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
def params(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    return {k: data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in header.items() if k.startswith("param.")}
a, b = params(sys.argv[1]), params(sys.argv[2])
sys.exit(0 if a and a == b else 1)
PY
}
same_parameters ctl.safetensors learning/controller-20.safetensors && fail "the controller did not change by learning"
same_parameters ctl.safetensors steered/controller-30.safetensors || fail "the controller changed without --controller-learn"
steer=(--config navigation2d --tasks-per-batch 2 --no-eval --quiet --controller-every 1)
"$ssmrl" controller init --config navigation2d --knobs inner_lr,max_kl --hidden 8 --out nav-ctl.safetensors > /dev/null
expect 0 "meta-training: 10 iterations" "$ssmrl" train "${steer[@]}" --controller nav-ctl.safetensors --outer-steps 10 --ckpt-dir steer-straight
expect 0 "meta-training: 6 iterations" "$ssmrl" train "${steer[@]}" --controller nav-ctl.safetensors --outer-steps 6 --ckpt-dir steer-resumed
expect 0 "meta-iterations 6 to 10" "$ssmrl" train --config navigation2d --outer-steps 10 --ckpt-dir steer-resumed --resume --no-eval --quiet
cmp -s steer-straight/latest.safetensors steer-resumed/latest.safetensors || fail "a steered run resumed differently"
cmp -s steer-straight/controller-10.safetensors steer-resumed/controller-10.safetensors || fail "the resumed controller differs"
[ "$(ls steer-straight | grep -c '^controller-')" = 1 ] || fail "old controller files left: $(ls steer-straight)"
# Learning across a resume: the pending decisions, their rewards and Adam's moments carry over.
expect 0 "controller: 1 REINFORCE steps" "$ssmrl" train "${steer[@]}" --controller nav-ctl.safetensors --controller-learn \
  --outer-steps 10 --ckpt-dir learn-straight
"$ssmrl" train "${steer[@]}" --controller nav-ctl.safetensors --controller-learn --outer-steps 6 --ckpt-dir learn-resumed \
  > /dev/null
expect 0 "controller: 1 REINFORCE steps" "$ssmrl" train --config navigation2d --outer-steps 10 --ckpt-dir learn-resumed \
  --resume --no-eval --quiet
same_parameters nav-ctl.safetensors learn-straight/controller-10.safetensors && fail "the controller did not learn"
cmp -s learn-straight/controller-10.safetensors learn-resumed/controller-10.safetensors ||
  fail "a learning controller resumed differently"
cmp -s learn-straight/latest.safetensors learn-resumed/latest.safetensors || fail "a learning run resumed differently"
expect 1 "continues with its own controller" "$ssmrl" train --config navigation2d --outer-steps 12 --ckpt-dir steer-resumed --resume --controller nav-ctl.safetensors

# Optimisers and meta-optimizers: a gradient outer step steered by the RL meta-optimizer or the
# plateau rules resumes exactly (its state, the optimiser's moments and the knobs in the checkpoint);
# a plain run continues its optimiser's state; bad names and TRPO configs are refused.
adam=(--config navigation2d-adam --tasks-per-batch 2 --no-eval --quiet --optimizer adamw)
for meta in rl plateau; do
  expect 0 "meta-training: 10 iterations" "$ssmrl" train "${adam[@]}" --meta-optimizer "$meta" --outer-steps 10 \
    --ckpt-dir "meta-$meta-straight"
  expect 0 "meta-training: 6 iterations" "$ssmrl" train "${adam[@]}" --meta-optimizer "$meta" --outer-steps 6 \
    --ckpt-dir "meta-$meta-resumed"
  expect 0 "meta-iterations 6 to 10" "$ssmrl" train --config navigation2d-adam --outer-steps 10 \
    --ckpt-dir "meta-$meta-resumed" --resume --no-eval --quiet
  cmp -s "meta-$meta-straight/latest.safetensors" "meta-$meta-resumed/latest.safetensors" ||
    fail "a run steered by --meta-optimizer $meta resumed differently"
  grep -aq "ssmrl.meta_optimizer_state" "meta-$meta-straight/latest.safetensors" || fail "no $meta state in the checkpoint"
  grep -aq '"optimizer.0"' "meta-$meta-straight/latest.safetensors" || fail "no optimiser state in the checkpoint"
done
lr_column=$(column_of meta-rl-straight/train.csv knob.outer_lr)
[ "$(tail -n +2 meta-rl-straight/train.csv | cut -d, -f"$lr_column" | sort -u | wc -l)" -gt 2 ] ||
  fail "the RL meta-optimizer did not move outer_lr: $(cut -d, -f"$lr_column" meta-rl-straight/train.csv)"
grep -q ",outer_lr,.*,controller$" meta-rl-straight/knobs_audit.csv || fail "the meta-optimizer's lr is not in the audit log"
expect 1 "whose --meta-optimizer is rl, not plateau" "$ssmrl" train --config navigation2d-adam --outer-steps 12 \
  --ckpt-dir meta-rl-straight --resume --meta-optimizer plateau
expect 1 "whose --optimizer is adamw, not sgd" "$ssmrl" train --config navigation2d-adam --outer-steps 12 \
  --ckpt-dir meta-rl-straight --resume --optimizer sgd
expect 1 "takes TRPO outer steps; --optimizer and --meta-optimizer are" "$ssmrl" train --config navigation2d \
  --meta-optimizer rl --ckpt-dir refused/trpo
expect 1 "--meta-optimizer: 'bogus' is not one of none, plateau, advanced-plateau, rl" "$ssmrl" train \
  --config cartpole-ppo --meta-optimizer bogus --ckpt-dir refused/meta
expect 1 "--optimizer: optimizer 'rmsprop' is not one of sgd, adam, adamw" "$ssmrl" train --config cartpole-ppo \
  --optimizer rmsprop --ckpt-dir refused/optimizer
[ -e refused ] && fail "a refused optimiser or meta-optimizer left a directory behind"
expect 0 "optimiser sgd, meta-optimizer advanced-plateau" "$ssmrl" train --config cartpole-ppo --optimizer sgd \
  --meta-optimizer advanced-plateau --outer-steps 6 --ckpt-dir plain-meta --quiet
expect 0 "resumed: the optimiser's state continues" "$ssmrl" train --config cartpole-ppo --outer-steps 8 \
  --ckpt-dir plain-meta --resume --quiet
metadata_of() {  # metadata_of FILE KEY: one metadata value of a safetensors file
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", data[:8])
print(json.loads(data[8:8 + n])["__metadata__"][sys.argv[2]])
PY
}
expect 0 "optimiser sgd, meta-optimizer advanced-plateau" "$ssmrl" train --config cartpole-ppo --optimizer sgd \
  --meta-optimizer advanced-plateau --outer-steps 8 --ckpt-dir plain-meta-straight --quiet
[ "$(metadata_of plain-meta/latest.safetensors ssmrl.optimizer_steps)" = \
  "$(metadata_of plain-meta-straight/latest.safetensors ssmrl.optimizer_steps)" ] ||
  fail "the resumed plain run's optimiser did not continue its step count"
[ "$(metadata_of plain-meta/latest.safetensors ssmrl.optimizer)" = sgd ] || fail "the plain run's optimiser is not recorded"

# Resuming a plain configuration continues its counts, log and plot.
expect 0 "^not solved after 20 updates" "$ssmrl" train --config cartpole-reinforce --ckpt-dir plain --outer-steps 20 --quiet
expect 0 "^not solved after 40 updates" "$ssmrl" train --config cartpole-reinforce --ckpt-dir plain --outer-steps 40 --resume --quiet
grep -q "best checkpoint (update" plain/train.svg || fail "the plain plot does not mark the best checkpoint"
awk -F, 'NR > 1 { if ($1 != NR - 1) bad = 1; if (NR > 2 && $2 <= steps) bad = 1; steps = $2; if ($3 == "nan" && NR > 3) bad = 1 }
         END { exit bad || NR != 41 }' plain/train.csv || fail "the resumed plain log does not continue: $(cut -d, -f1-3 plain/train.csv)"

# Plain training reaches Gymnasium's thresholds, and reports an evaluation on seeds that did not
# decide the stop; a solved run is not trained further.
for config in cartpole-reinforce cartpole-a2c cartpole-ppo pendulum-ppo; do
  out=$("$ssmrl" train --config "$config" --ckpt-dir "$config" --quiet 2>&1) || fail "$config exited with $?: $out"
  grep -q "^solved after" <<<"$out" || fail "$config was not solved: $out"
  grep -Eq "^independent evaluation \(100 episodes on other seeds, (sampled|mean) actions\): mean return" <<<"$out" ||
    fail "$config: no independent evaluation: $out"
done
expect 0 "was solved after .* nothing to do" "$ssmrl" train --config cartpole-ppo --ckpt-dir cartpole-ppo --resume --quiet

# Test-time adaptation of a plain checkpoint on shifted dynamics: a table, one row per strategy.
expect 0 "^policy_gradient" "$ssmrl" adapt --checkpoint cartpole-ppo/latest.safetensors --strategy all --episodes 2 --adapt-steps 1
expect 0 '"strategies":\{"entropy"' "$ssmrl" adapt --checkpoint cartpole-ppo/latest.safetensors --strategy entropy --episodes 2 --json
expect 1 "unknown strategy 'tent'; known: entropy, hybrid, maml_step, none, policy_gradient" \
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
