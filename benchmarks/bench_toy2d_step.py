"""Time one Soft-IntroVAE 2D training iteration at the paper's size (batch 512, 3x256 MLP, z=2).

Prints (a) ms per iteration of sivae's step and of a straightforward transcription of the
public code's iteration (sivae.reference), both from the same seed, with the largest loss
difference between them; (b) the fraction of this machine's float32 matmul throughput that
sivae's step achieves (its matmul FLOPs / time, over a large-GEMM rate measured in the same
run); (c) the ratio of the two. Optionally (--bf16) the same step under bfloat16 autocast.
The last line reads `ratio=<speedup> efficiency=<fraction>`.

    python benchmarks/bench_toy2d_step.py [--iters 60] [--bf16] [--metrics 1500]

--metrics N trains Soft-IntroVAE on each 2D dataset for N iterations (batch 256, Table 5
hyper-parameters, seed 0) in float32 and under bf16 autocast and prints the Table 2 metrics
of both, to show what bf16 does to the results.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from sivae.models import MLPConfig, build_mlp_pair
from sivae.reference import reference_soft_intro_step
from sivae.toy2d import TABLE5, evaluate_toy
from sivae.toydata import TOY_DATASETS, get_toy_dataset
from sivae.train import TrainConfig, Trainer

BATCH = 512


def make_trainer(autocast: str = "none") -> Trainer:
    data = get_toy_dataset("8gaussians")
    cfg = TrainConfig(method="soft_intro_vae", n_iter=10**6, batch_size=BATCH, beta_rec=0.2, beta_kl=0.3,
                      beta_neg=0.9, scale=0.5, progress=False, seed=0, autocast=autocast)
    enc, dec = build_mlp_pair(MLPConfig(), seed=0)
    return Trainer(enc, dec, lambda step, g: data.sample(BATCH, g), cfg, device="cpu")


def run(trainer: Trainer, step_fn, iters: int) -> tuple[float, list]:
    """Seconds per iteration (median of 5 blocks) and the losses of every iteration."""
    losses, blocks = [], []
    block = max(1, iters // 5)
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(block):
            x = trainer.batch_fn(trainer.step, trainer.data_gen)
            out = step_fn(x)
            trainer.step += 1
            losses.append((out["loss_e"], out["loss_d"]))
        blocks.append((time.perf_counter() - t) / block)
    return sorted(blocks)[2], losses


def matmul_flops_per_iter(trainer: Trainer, step_fn) -> float:
    x = trainer.batch_fn(trainer.step, trainer.data_gen)
    with FlopCounterMode(display=False) as fc:
        step_fn(x)
    return float(fc.get_total_flops())


def peak_matmul_rate(n: int = 2048, reps: int = 6) -> float:
    """float32 FLOP/s of a large square GEMM on this machine (best of reps)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def bf16_metrics(n_iter: int):
    """Table 2 metrics of Soft-IntroVAE trained in float32 and in bf16 autocast, per dataset."""
    for name in TOY_DATASETS:
        br, bk, bn, _ = TABLE5[(name, "soft_intro_vae")]
        data = get_toy_dataset(name)
        row = []
        for mode in ("none", "bf16"):
            cfg = TrainConfig(method="soft_intro_vae", n_iter=n_iter, batch_size=256, beta_rec=br, beta_kl=bk,
                              beta_neg=bn, scale=0.5, num_vae=n_iter // 13, progress=False, autocast=mode)
            enc, dec = build_mlp_pair(MLPConfig(), seed=0)
            tr = Trainer(enc, dec, lambda step, g: data.sample(256, g), cfg, device="cpu")
            t = time.perf_counter()
            tr.fit()
            m, *_ = evaluate_toy(tr.enc, tr.dec, name, 0, grid_size=512, keep_density=False)
            row.append(f"{'bf16' if mode == 'bf16' else 'fp32'}: kl={m['kl']:.3f} jsd={m['jsd']:.3f} "
                       f"gnelbo={m['gnelbo']:.3e} ({time.perf_counter() - t:.0f} s)")
        print(f"{name:13s} " + " | ".join(row))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--bf16", action="store_true", help="also time the step under bfloat16 autocast")
    ap.add_argument("--metrics", type=int, default=0, metavar="N",
                    help="also compare Table 2 metrics of float32 and bf16 training (N iterations)")
    args = ap.parse_args()
    if args.metrics:
        bf16_metrics(args.metrics)
    torch.manual_seed(0)
    print(f"threads={torch.get_num_threads()} batch={BATCH} mlp=3x256 z=2 iters={args.iters}")
    peak = peak_matmul_rate()
    ours, ref = make_trainer(), make_trainer()
    for t, fn in ((ours, ours.introspective_step), (ref, lambda x: reference_soft_intro_step(ref, x))):
        run(t, fn, 5)  # warm-up
    f_ours = matmul_flops_per_iter(ours, ours.introspective_step)
    f_ref = matmul_flops_per_iter(ref, lambda x: reference_soft_intro_step(ref, x))
    ours, ref = make_trainer(), make_trainer()  # same seed, same state for the timed runs
    t_ref, l_ref = run(ref, lambda x: reference_soft_intro_step(ref, x), args.iters)
    t_ours, l_ours = run(ours, ours.introspective_step, args.iters)
    diff = max(abs(a - b) / max(abs(b), 1e-12) for pa, pb in zip(l_ours, l_ref) for a, b in zip(pa, pb))
    eff = f_ours / t_ours / peak
    print(f"peak float32 matmul: {peak / 1e9:.1f} GFLOP/s")
    print(f"straightforward: {t_ref * 1e3:.2f} ms/iter, {f_ref / 1e9:.2f} GFLOP/iter, "
          f"{f_ref / t_ref / peak:.0%} of peak")
    print(f"sivae step:      {t_ours * 1e3:.2f} ms/iter, {f_ours / 1e9:.2f} GFLOP/iter, {eff:.0%} of peak")
    print(f"largest relative loss difference over {len(l_ours)} iterations (same seed): {diff:.2e}")
    if args.bf16:
        bf = make_trainer("bf16")
        run(bf, bf.introspective_step, 5)
        t_bf, _ = run(bf, bf.introspective_step, args.iters)
        print(f"sivae step, bf16 autocast: {t_bf * 1e3:.2f} ms/iter ({t_ours / t_bf:.2f}x the float32 step)")
    print(f"ratio={t_ref / t_ours:.3f} efficiency={eff:.3f}")


if __name__ == "__main__":
    main()
