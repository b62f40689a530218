"""Time one Soft-IntroVAE 2D training iteration at the paper's size (batch 512, 3x256 MLP, z=2).

Prints (a) ms per iteration of sivae's step and of a straightforward transcription of the
public code's iteration (tests/reference_step.py, with the public code's optimiser: torch's default
Adam), both from the same seed, and how far their losses and updated weights differ after one
iteration from the same state; (b) the
fraction of this machine's float32 matmul throughput that sivae's step achieves (its matmul
FLOPs / time, over a large-GEMM rate measured in the same run); (c) the ratio of the two.
The two iterations are timed in alternating blocks and the large GEMM between blocks (median
of each), so a machine whose speed drifts (shared cores, turbo) biases neither side.
Optionally (--bf16) the same step under bfloat16 autocast.
The last line reads `ratio=<speedup> efficiency=<fraction>`.

    python benchmarks/bench_toy2d_step.py [--iters 120] [--bf16] [--metrics 1500]

--metrics N trains Soft-IntroVAE on each 2D dataset for N iterations (batch 256, Table 5
hyper-parameters, seed 0) in float32 and under bf16 autocast and prints the Table 2 metrics
of both, to show what bf16 does to the results.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from sivae.paper import TABLE5
from sivae.toy2d.data import TOY_DATASETS, get_toy_dataset
from sivae.toy2d.models import MLPConfig, build_mlp_pair
from sivae.toy2d.study import evaluate_toy
from sivae.train import TrainConfig, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_step import reference_soft_intro_step  # noqa: E402  (the yardstick lives beside the tests)

BATCH = 512


def make_trainer(autocast: str = "none", public_adam: bool = False) -> Trainer:
    """The 8-Gaussians Soft-IntroVAE trainer at the paper's size; public_adam: torch's default
    Adam (as the public code builds it) instead of the Trainer's fused one."""
    data = get_toy_dataset("8gaussians")
    cfg = TrainConfig(method="soft_intro_vae", n_iter=10**6, batch_size=BATCH, beta_rec=0.2, beta_kl=0.3,
                      beta_neg=0.9, scale=0.5, progress=False, seed=0, autocast=autocast)
    enc, dec = build_mlp_pair(MLPConfig(), seed=0)
    t = Trainer(enc, dec, lambda step, g: data.sample(BATCH, g), cfg, device="cpu")
    if public_adam:
        t.opt_e = torch.optim.Adam(t.enc.parameters(), lr=cfg.lr)
        t.opt_d = torch.optim.Adam(t.dec.parameters(), lr=cfg.lr)
    return t


def block(trainer: Trainer, step_fn, n: int, losses: list) -> float:
    """Seconds per iteration over n iterations (their losses appended to `losses`)."""
    t = time.perf_counter()
    for _ in range(n):
        x = trainer.batch_fn(trainer.step, trainer.data_gen)
        out = step_fn(x)
        trainer.step += 1
        losses.append((out["loss_e"], out["loss_d"]))
    return (time.perf_counter() - t) / n


def run(runs: list, iters: int, blocks: int = 6, between=None) -> list:
    """Time each (trainer, step_fn) of `runs` in alternating blocks of iters // blocks iterations.

    Returns, per run, (median seconds per iteration, losses of every iteration); `between()`
    is called after each round of blocks (e.g. to measure the GEMM rate at the same moments).
    """
    n = max(1, iters // blocks)
    times, losses = [[] for _ in runs], [[] for _ in runs]
    for _ in range(blocks):
        for i, (trainer, step_fn) in enumerate(runs):
            times[i].append(block(trainer, step_fn, n, losses[i]))
        if between is not None:
            between()
    return [(statistics.median(t), loss) for t, loss in zip(times, losses)]


def lockstep_difference(iters: int = 20) -> tuple[float, float]:
    """Largest relative loss and weight differences of one iteration of each, from the same state.

    Before every iteration the straightforward trainer is given sivae's weights, Adam moments and
    generators, so each comparison is one step from one state (over many free-running steps tiny
    rounding differences grow, as in any chaotic training run).
    """
    ours, ref = make_trainer(), make_trainer(public_adam=True)
    worst_loss = worst_weight = 0.0
    for _ in range(iters):
        for a, b in ((ours.enc, ref.enc), (ours.dec, ref.dec)):
            b.load_state_dict(a.state_dict())
        for oa, ob in ((ours.opt_e, ref.opt_e), (ours.opt_d, ref.opt_d)):
            for pa, pb in zip(oa.param_groups[0]["params"], ob.param_groups[0]["params"]):
                if pa in oa.state:
                    ob.state[pb] = {k: v.clone() for k, v in oa.state[pa].items()}
        ref.data_gen.set_state(ours.data_gen.get_state())
        ref.noise_gen.set_state(ours.noise_gen.get_state())
        out_o = ours.introspective_step(ours.batch_fn(ours.step, ours.data_gen))
        out_r = reference_soft_intro_step(ref, ref.batch_fn(ref.step, ref.data_gen))
        ours.step += 1
        ref.step += 1
        worst_loss = max(worst_loss, *(abs(out_o[k] - out_r[k]) / max(abs(out_r[k]), 1e-12)
                                       for k in ("loss_e", "loss_d")))
        for a, b in ((ours.enc, ref.enc), (ours.dec, ref.dec)):
            for pa, pb in zip(a.parameters(), b.parameters()):
                pa, pb = pa.detach(), pb.detach()
                worst_weight = max(worst_weight, float((pa - pb).abs().max() / pb.abs().max()))
    return worst_loss, worst_weight


def matmul_flops_per_iter(trainer: Trainer, step_fn) -> float:
    x = trainer.batch_fn(trainer.step, trainer.data_gen)
    with FlopCounterMode(display=False) as fc:
        step_fn(x)
    return float(fc.get_total_flops())


def peak_matmul_rate(n: int = 2048, reps: int = 3) -> float:
    """float32 FLOP/s of a large square GEMM on this machine (best of reps, output preallocated)."""
    a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    torch.mm(a, b, out=c)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b, out=c)
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
    ap.add_argument("--iters", type=int, default=120)
    ap.add_argument("--bf16", action="store_true", help="also time the step under bfloat16 autocast")
    ap.add_argument("--metrics", type=int, default=0, metavar="N",
                    help="also compare Table 2 metrics of float32 and bf16 training (N iterations)")
    args = ap.parse_args()
    if args.metrics:
        bf16_metrics(args.metrics)
    torch.manual_seed(0)
    print(f"threads={torch.get_num_threads()} batch={BATCH} mlp=3x256 z=2 iters={args.iters}")
    ours, ref = make_trainer(), make_trainer(public_adam=True)
    ref_step = lambda x: reference_soft_intro_step(ref, x)  # noqa: E731
    run([(ours, ours.introspective_step), (ref, ref_step)], 10, blocks=2)  # warm-up
    f_ours = matmul_flops_per_iter(ours, ours.introspective_step)
    f_ref = matmul_flops_per_iter(ref, ref_step)
    ours, ref = make_trainer(), make_trainer(public_adam=True)  # same seed, same state for the timed runs
    ref_step = lambda x: reference_soft_intro_step(ref, x)  # noqa: E731
    peaks = [peak_matmul_rate()]
    (t_ours, l_ours), (t_ref, l_ref) = run([(ours, ours.introspective_step), (ref, ref_step)], args.iters,
                                           between=lambda: peaks.append(peak_matmul_rate()))
    peak = statistics.median(peaks)
    first = next((i for i, (pa, pb) in enumerate(zip(l_ours, l_ref)) if pa != pb), len(l_ours))
    d_loss, d_weight = lockstep_difference()
    eff = f_ours / t_ours / peak
    print(f"peak float32 matmul: {peak / 1e9:.1f} GFLOP/s (median of {len(peaks)}: "
          f"{min(peaks) / 1e9:.0f}..{max(peaks) / 1e9:.0f})")
    print(f"straightforward: {t_ref * 1e3:.2f} ms/iter, {f_ref / 1e9:.2f} GFLOP/iter, "
          f"{f_ref / t_ref / peak:.0%} of peak")
    print(f"sivae step:      {t_ours * 1e3:.2f} ms/iter, {f_ours / 1e9:.2f} GFLOP/iter, {eff:.0%} of peak")
    print(f"same state, one iteration each (20 times): largest relative difference of the losses {d_loss:.1e}, "
          f"of the weights {d_weight:.1e}")
    print(f"free-running from the same seed: losses bit-identical for the first {first} of {len(l_ours)} iterations")
    if args.bf16:
        bf, fp = make_trainer("bf16"), make_trainer()
        run([(bf, bf.introspective_step), (fp, fp.introspective_step)], 10, blocks=2)
        (t_bf, _), (t_fp, _) = run([(bf, bf.introspective_step), (fp, fp.introspective_step)], args.iters)
        print(f"sivae step, bf16 autocast: {t_bf * 1e3:.2f} ms/iter ({t_fp / t_bf:.2f}x the float32 step)")
    print(f"ratio={t_ref / t_ours:.3f} efficiency={eff:.3f}")


if __name__ == "__main__":
    main()
