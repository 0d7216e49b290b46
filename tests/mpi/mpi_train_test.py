#!/usr/bin/env python3
"""`mpirun -np 2 ssmrl train` against one process: the same parameters, bit for bit, and the same log.

Usage: mpi_train_test.py SSMRL MPIRUN WORK_DIR [PBT_OVER_MPI]

On loopback only (shared memory between the ranks), as root too. Checks, for a TRPO and an Adam
configuration with a meta-batch that two ranks split unevenly (5 tasks: 2 and 3):
  - the parameters of latest.safetensors and best.safetensors, and every column of train.csv but
    the seconds, equal those of the single process (with 1 and with 2 threads) and of `mpirun -np 1`;
  - an override file read by rank 0 reaches rank 1 (the same result as one process given it), and
    the audit log is the one process's;
  - a run stopped after 2 iterations and resumed under mpirun ends where the uninterrupted run does;
  - rank 0 alone prints and writes;
that a PBT population (PBT_OVER_MPI) spread over 2 and 3 ranks makes the one process's steps, copies
(some across ranks) and parameters; and that a job whose ranks disagree, that cannot split, or one of whose ranks fails or is killed, ends
with its message instead of hanging.
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io"))
from interop import read_safetensors  # noqa: E402  (the tests' own safetensors reader)

ssmrl, mpirun, work = os.path.abspath(sys.argv[1]), sys.argv[2], os.path.abspath(sys.argv[3])
pbt_program = os.path.abspath(sys.argv[4]) if len(sys.argv) > 4 else None
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


env = dict(os.environ)
env.update({
    # mpirun refuses root unless asked twice; containers often lack the kernel's cross-memory attach.
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_btl_vader_single_copy_mechanism": "none",
    # Shared memory between the ranks of this host, nothing over the network.
    "OMPI_MCA_btl": "self,vader",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
})
mpi = [mpirun, "--oversubscribe"]


def run(argv, timeout=300):
    started = time.monotonic()
    try:
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return None, (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout", timeout
    return p.returncode, p.stdout, p.stderr, time.monotonic() - started


def tensors(path):
    """name -> (shape, raw bytes) of a safetensors file: bytes, so that bit-identical means it."""
    return {name: (array.shape, array.tobytes()) for name, array in read_safetensors(path)[1].items()}


def log_without_seconds(path):
    with open(path) as f:
        rows = [line.rstrip("\n").split(",") for line in f if line.strip()]
    drop = rows[0].index("seconds")
    return [r[:drop] + r[drop + 1:] for r in rows]


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
common = ["--outer-steps", "3", "--tasks-per-batch", "5", "--seed", "7", "--no-eval", "--quiet"]


def train(config, name, ranks=None, threads=1, extra=()):
    argv = [ssmrl, "train", "--config", config, "--ckpt-dir", os.path.join(work, name), "--threads", str(threads)]
    argv += common + list(extra)
    if ranks is not None:
        argv = mpi + ["-np", str(ranks)] + argv
    code, out, err, seconds = run(argv)
    check(code == 0, f"{name}: exit 0 (got {code}, {seconds:.1f} s){'' if code == 0 else ': ' + err[-2000:]}")
    return out


def same_run(a, b, what):
    for file in ("latest.safetensors", "best.safetensors"):
        ta = tensors(os.path.join(work, a, file))
        tb = tensors(os.path.join(work, b, file))
        check(ta.keys() == tb.keys() and len(ta) > 0, f"{what}: {file} has the same {len(ta)} tensors")
        differing = [k for k in ta if ta[k] != tb.get(k)]
        check(not differing, f"{what}: {file}'s parameters bit-identical" +
              (f" (differ: {differing[:4]})" if differing else ""))
    la = log_without_seconds(os.path.join(work, a, "train.csv"))
    lb = log_without_seconds(os.path.join(work, b, "train.csv"))
    check(la == lb and len(la) == 4, f"{what}: train.csv's {len(la) - 1} rows equal, every column but the seconds")


override = os.path.join(work, "override.json")
with open(override, "w") as f:
    f.write('{"max_kl": 0.02}\n')

for config in ("navigation2d", "navigation2d-adam"):
    trpo = config == "navigation2d"
    single = train(config, f"{config}-single")
    train(config, f"{config}-single-2-threads", threads=2)
    np2 = train(config, f"{config}-np2", ranks=2)
    train(config, f"{config}-np1", ranks=1)
    same_run(f"{config}-single", f"{config}-np2", f"{config}: -np 2 against one process")
    same_run(f"{config}-single-2-threads", f"{config}-np2", f"{config}: -np 2 against one process on 2 threads")
    same_run(f"{config}-single", f"{config}-np1", f"{config}: -np 1 against one process")
    check("on each of 2 MPI ranks" in np2 and np2.count(config + ":") == 1,
          f"{config}: rank 0 alone prints the banner, which names the 2 ranks")
    # The steps were taken: a run whose parameters never moved would pass the comparison above.
    first = tensors(os.path.join(work, f"{config}-np2", "step_0.safetensors"))
    last = tensors(os.path.join(work, f"{config}-np2", "latest.safetensors"))
    check(any(first[k] != last[k] for k in first), f"{config}: the parameters changed in 3 iterations")
    if trpo:
        train(config, f"{config}-override-single", extra=["--override-file", override])
        train(config, f"{config}-override-np2", ranks=2, extra=["--override-file", override])
        same_run(f"{config}-override-single", f"{config}-override-np2", f"{config}: rank 0's override on both ranks")
        with open(os.path.join(work, f"{config}-override-single", "knobs_audit.csv")) as a, \
                open(os.path.join(work, f"{config}-override-np2", "knobs_audit.csv")) as b:
            audit = a.read()
            check(audit == b.read() and "max_kl,0.02,override" in audit,
                  f"{config}: the audit log of -np 2 is the one process's and records the override")
        # Stopped after 2 iterations, resumed under mpirun (rank 1 reads the run rank 0 wrote).
        name = f"{config}-resumed-np2"
        code, _, err, _ = run(mpi + ["-np", "2", ssmrl, "train", "--config", config, "--ckpt-dir",
                                     os.path.join(work, name), "--threads", "1"] + common[:1] + ["2"] + common[2:])
        check(code == 0, f"{name}: the first 2 iterations (exit {code}) {err[-500:] if code else ''}")
        code, _, err, _ = run(mpi + ["-np", "2", ssmrl, "train", "--config", config, "--ckpt-dir",
                                     os.path.join(work, name), "--resume", "--outer-steps", "3", "--no-eval",
                                     "--quiet"])
        check(code == 0, f"{name}: resumed to 3 (exit {code}) {err[-500:] if code else ''}")
        same_run(f"{config}-single", name, f"{config}: stopped at 2 and resumed under -np 2, against one process")

# Failures end the job with their message, not a hang.
def refused(argv, needle, what):
    code, out, err, seconds = run(argv, timeout=120)
    check(code not in (0, None) and needle in err, f"{what}: refused in {seconds:.1f} s (exit {code}), "
          f"with '{needle}'{'' if needle in err else ': ' + err[-1500:]}")


base = [ssmrl, "train", "--config", "navigation2d", "--threads", "1"] + common
refused(mpi + ["-np", "1"] + base + ["--ckpt-dir", os.path.join(work, "mismatch")] +
        [":", "-np", "1"] + base + ["--ckpt-dir", os.path.join(work, "mismatch-other")],
        "the command line of rank 1 differs from rank 0's", "ranks with different command lines")
check(not os.path.exists(os.path.join(work, "mismatch")) and not os.path.exists(os.path.join(work, "mismatch-other")),
      "ranks with different command lines: no rank started the run (no directory)")
refused(mpi + ["-np", "2", ssmrl, "train", "--config", "navigation2d", "--ckpt-dir", os.path.join(work, "small"),
               "--tasks-per-batch", "1", "--outer-steps", "1", "--no-eval", "--quiet"],
        "2 MPI ranks share a meta-batch of 1 tasks", "a meta-batch smaller than the ranks")
refused(mpi + ["-np", "2", ssmrl, "train", "--config", "cartpole-ppo", "--ckpt-dir", os.path.join(work, "plain"),
               "--outer-steps", "1", "--no-eval", "--quiet"],
        "only meta-training configs share their tasks over MPI ranks", "a plain configuration under -np 2")
refused(mpi + ["-np", "2", ssmrl, "configs"], "only `ssmrl train` runs over several MPI ranks",
        "another command under -np 2")


# A rank that fails at the start (here: it resumes in another working directory, as without a
# shared file system) ends the job while rank 0 waits for it.
for d in ("here", "elsewhere"):
    os.makedirs(os.path.join(work, d), exist_ok=True)
code, _, err, _ = run([ssmrl, "train", "--config", "navigation2d", "--ckpt-dir", os.path.join(work, "here", "run")] +
                      ["--threads", "1"] + common[:1] + ["1"] + common[2:])
check(code == 0, f"a run to resume (exit {code})")
resume = [ssmrl, "train", "--config", "navigation2d", "--ckpt-dir", "run", "--resume", "--outer-steps", "3",
          "--no-eval", "--quiet"]
refused(mpi + ["-np", "1", "-wdir", os.path.join(work, "here")] + resume +
        [":", "-np", "1", "-wdir", os.path.join(work, "elsewhere")] + resume,
        "rank 1: ssmrl train: --resume, but the run directory 'run' does not exist",
        "a rank that cannot read the run")

# A rank killed during training ends the job: mpirun notices and stops the others.
job_dir = os.path.join(work, "killed")
job = subprocess.Popen(mpi + ["-np", "2", ssmrl, "train", "--config", "navigation2d", "--ckpt-dir", job_dir,
                              "--threads", "1", "--tasks-per-batch", "4", "--outer-steps", "100000", "--no-eval",
                              "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rank_pids():
    """rank -> pid of this job's ranks (the children of mpirun, by OMPI_COMM_WORLD_RANK)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != job.pid:
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                for item in f.read().split(b"\0"):
                    if item.startswith(b"OMPI_COMM_WORLD_RANK="):
                        out[int(item.split(b"=")[1])] = int(entry)
        except (OSError, ValueError, IndexError):
            continue
    return out


deadline = time.monotonic() + 120
while time.monotonic() < deadline:  # training: two rows logged past the header and the first checkpoint
    csv = os.path.join(job_dir, "train.csv")
    if os.path.exists(csv) and sum(1 for _ in open(csv)) >= 3:
        break
    time.sleep(0.2)
pids = rank_pids()
check(sorted(pids) == [0, 1], f"the job's two ranks are found ({pids})")
if 1 in pids:
    os.kill(pids[1], 9)
try:
    _, err = job.communicate(timeout=60)
    check(job.returncode != 0 and "rank 1" in err, f"rank 1 killed: the job ended (exit {job.returncode}) and "
          f"mpirun names the rank{'' if 'rank 1' in err else ': ' + err[-1500:]}")
except subprocess.TimeoutExpired:
    job.kill()
    job.communicate()
    check(False, "rank 1 killed: the job did not end within 60 s")
check(os.path.exists(os.path.join(job_dir, "latest.safetensors")), "rank 1 killed: rank 0's last checkpoint is there")

# PBT over ranks: 5 members, 10 steps, an exploit round every 2; every line but the banner equal.
if pbt_program:
    outputs = {}
    for ranks in (None, 2, 3):
        argv = [pbt_program, "5", "10"]
        code, out, err, seconds = run(argv if ranks is None else mpi + ["-np", str(ranks)] + argv)
        check(code == 0, f"PBT over {ranks or 1} rank(s): exit 0 (got {code}, {seconds:.1f} s) {err[-800:] if code else ''}")
        outputs[ranks] = out.splitlines()[1:]
    one = outputs[None]
    copies = sum(line.count(" copies ") for line in one)
    check(copies >= 3 and len(one) == 16, f"PBT: 10 steps with {copies} copies, 5 hashes and the best's evaluation")
    for ranks in (2, 3):
        check(outputs[ranks] == one, f"PBT over {ranks} ranks: scores, copies, parameter hashes and the best member's "
              "evaluation equal one process's")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
