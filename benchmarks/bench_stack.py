"""Aggregate run-iterations per second: R 2D runs as one stack (sivae.stack) vs one Trainer per run.

For each size ("default": batch 128, the default profile's 2D batch until session 17; "paper": batch 512,
the paper's and now the default profile's; both 3x256 MLPs, z = 2)
and R in (12, 36) Soft-IntroVAE runs (different seeds and datasets), times `iters` iterations of
the stack and `iters` iterations of single-run Trainers (the per-run loop's rate does not depend on
R, so it is measured on min(R, 3) runs and taken per run-iteration), in alternating blocks (median
of each). Also prints the stack's matmul FLOP rate against a large float32 GEMM timed in the same
run, which shows whether the device is compute-bound at that size.
The last line reads `ratio=<speedup at the default profile's sizes, R=12> device=<cpu|cuda>`.

    python benchmarks/bench_stack.py [--iters 6] [--device auto] [--sizes default,paper] [--runs 12,36]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from sivae.runtime import resolve_device
from sivae.stack import StackRun, StackTrainer
from sivae.toy2d.data import TOY_DATASETS, get_toy_dataset
from sivae.toy2d.models import MLPConfig, build_mlp_pair
from sivae.train import TrainConfig, Trainer

SIZES = {"default": 128, "paper": 512}
HP = dict(beta_rec=0.2, beta_kl=0.3, beta_neg=0.9)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _run(i: int, batch: int):
    ds = list(TOY_DATASETS)[i % len(TOY_DATASETS)]
    data = get_toy_dataset(ds)
    cfg = TrainConfig(method="soft_intro_vae", n_iter=10**6, batch_size=batch, scale=0.5, progress=False, seed=i, **HP)
    enc, dec = build_mlp_pair(MLPConfig(), seed=i)
    return f"{ds}-{i}", enc, dec, (lambda step, g, data=data: data.sample(batch, g)), cfg


def _time(fn, n: int, device) -> float:
    _sync(device)
    t = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return time.perf_counter() - t


def gemm_rate(device, n=2048) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    dt = _time(lambda: a @ b, 5, device)
    return 2 * n ** 3 * 5 / dt


def measure(batch: int, R: int, iters: int, device, blocks: int = 3) -> dict:
    runs = [_run(i, batch) for i in range(R)]
    stack = StackTrainer([StackRun(n, e, d, f, c) for n, e, d, f, c in runs], device=device)
    singles = [Trainer(*build_mlp_pair(MLPConfig(), seed=i), runs[i][3], runs[i][4], device=device)
               for i in range(min(R, 3))]
    stack.train_step()
    for t in singles:
        t.train_step()
    with FlopCounterMode(display=False) as fc:
        stack.train_step()
    flops = fc.get_total_flops()
    st, sg = [], []
    for _ in range(blocks):
        st.append(_time(stack.train_step, iters, device) / (iters * R))
        sg.append(_time(lambda: [t.train_step() for t in singles], iters, device) / (iters * len(singles)))
    s_stack, s_single = statistics.median(st), statistics.median(sg)
    return {"batch": batch, "R": R, "stack_run_it_s": 1 / s_stack, "single_run_it_s": 1 / s_single,
            "ratio": s_single / s_stack, "stack_flop_rate": flops / (s_stack * R)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--sizes", default="default,paper")
    ap.add_argument("--runs", default="12,36")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    peak = gemm_rate(device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, large float32 GEMM {peak / 1e9:.1f} GFLOP/s")
    print("| size | batch | R | stack run-it/s | per-run Trainer run-it/s | speedup | stack GFLOP/s (share of GEMM) |")
    print("|---|---|---|---|---|---|---|")
    first = None
    for size in args.sizes.split(","):
        for R in (int(r) for r in args.runs.split(",")):
            m = measure(SIZES[size], R, args.iters, device)
            first = first or m
            print(f"| {size} | {m['batch']} | {R} | {m['stack_run_it_s']:.1f} | {m['single_run_it_s']:.1f} | "
                  f"{m['ratio']:.2f}x | {m['stack_flop_rate'] / 1e9:.1f} ({m['stack_flop_rate'] / peak:.0%}) |", flush=True)
    print(f"ratio={first['ratio']:.2f} device={device.type}")


if __name__ == "__main__":
    main()
