#!/usr/bin/env python3
"""The CUDA benchmarks' workloads in PyTorch on the same GPU, for scripts/cuda-device-check.

The same diagonal-SSM categorical policy (obs 4, state 64, hidden 64, actions 2, float32) as
bench/bench_cuda.cpp: REINFORCE loss forward and backward over batch 8 x 1000 and 64 x 4096 steps,
the recurrence as a loop over steps (as the Python prototypes run it), and one greedy step of 4096
environments. Prints milliseconds per iteration, the median of the repetitions.
"""
import statistics
import time

import torch

OBS, STATE, HIDDEN, ACTIONS = 4, 64, 64, 2


def make_params(device):
    g = torch.Generator().manual_seed(1)
    p = {
        "log_a": torch.log(torch.arange(1, STATE + 1, dtype=torch.float32)),
        "log_dt": torch.empty(STATE).uniform_(-6.9, -2.3, generator=g),
        "B": torch.full((STATE, OBS), OBS ** -0.5),
        "C": torch.randn(HIDDEN, STATE, generator=g) * STATE ** -0.5,
        "D": torch.randn(HIDDEN, OBS, generator=g) * 0.3,
        "c": torch.zeros(HIDDEN),
        "W": torch.randn(ACTIONS, HIDDEN, generator=g) * 0.01,
        "b": torch.zeros(ACTIONS),
    }
    return {k: v.to(device).requires_grad_() for k, v in p.items()}


def discretise(p):
    a = -torch.exp(p["log_a"])
    x = torch.exp(p["log_dt"]) * a
    return torch.exp(x), (torch.expm1(x) / a)[:, None] * p["B"]


def loss_of(p, obs, actions, adv):
    steps, batch, _ = obs.shape
    a_bar, b_bar = discretise(p)
    driven = obs @ b_bar.T
    h = torch.zeros(batch, STATE, device=obs.device)
    states = []
    for t in range(steps):
        h = a_bar * h + driven[t]
        states.append(h)
    hidden = torch.stack(states)
    y = torch.tanh(hidden @ p["C"].T + obs @ p["D"].T + p["c"])
    logits = y @ p["W"].T + p["b"]
    logp = torch.log_softmax(logits, -1).gather(-1, actions[..., None]).squeeze(-1)
    return -(logp * adv).mean()


def timed(fn, repetitions):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    device = torch.device("cuda")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    p = make_params(device)
    g = torch.Generator(device=device).manual_seed(2)
    for batch, steps, reps in ((8, 1000, 10), (64, 4096, 3)):
        obs = torch.randn(steps, batch, OBS, device=device, generator=g)
        actions = torch.randint(0, ACTIONS, (steps, batch), device=device, generator=g)
        adv = torch.randn(steps, batch, device=device, generator=g)

        def step():
            for v in p.values():
                v.grad = None
            loss_of(p, obs, actions, adv).backward()

        print(f"torch_DiagSsmSeqFwdBwd batch {batch} x {steps} steps: {timed(step, reps):.3f} ms")
    envs = 4096
    h = torch.zeros(envs, STATE, device=device)
    obs_host = torch.randn(envs, OBS)

    @torch.no_grad()
    def act():  # observations uploaded and actions downloaded, as in bench_cuda.cpp
        nonlocal h
        obs = obs_host.to(device)
        a_bar, b_bar = discretise(p)
        h = a_bar * h + obs @ b_bar.T
        y = torch.tanh(h @ p["C"].T + obs @ p["D"].T + p["c"])
        return torch.argmax(y @ p["W"].T + p["b"], -1).cpu()

    print(f"torch_PolicyStep_B4096 (actions to the host): {timed(act, 200) * 1e3:.1f} us")


if __name__ == "__main__":
    main()
