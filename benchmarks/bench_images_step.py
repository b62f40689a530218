"""Training throughput of one Soft-IntroVAE image iteration on the CIFAR-10 architecture (batch 32).

Times, from the same seed and weights, (a) sivae's `Trainer.introspective_step` (reuses D(z) and
D(z_p) across the two updates, per-network gradients, channels-last convolutions, and on a GPU
bf16 autocast with float32 losses) and (b) `tests/reference_step.py.reference_soft_intro_step`, a
straightforward iteration with the public code's pass structure (requires_grad toggling, every
decoder pass recomputed, the extra deterministic pass, float32, default memory format, torch's
default Adam; sivae uses the fused Adam).
Each variant runs in its own process, so its peak memory is its own: peak RSS on the CPU,
torch.cuda.max_memory_allocated on a GPU.
The last line reads `ratio=<speedup> device=<cpu|cuda>`.

    python benchmarks/bench_images_step.py [--iters 20] [--device auto] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from sivae.images.models import arch_for, build_image_pair
from sivae.runtime import resolve_device
from sivae.train import TrainConfig, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_step import reference_soft_intro_step  # noqa: E402  (the yardstick lives beside the tests)

BATCH = 32


def measure(variant: str, iters: int, device: str) -> dict:
    """Images/second and peak memory of one variant (run in a fresh process)."""
    dev = resolve_device(device)
    ours = variant == "sivae"
    arch = arch_for("cifar10")
    enc, dec = build_image_pair(arch, seed=0)
    fmt = torch.channels_last if ours else torch.contiguous_format
    enc, dec = enc.to(memory_format=fmt), dec.to(memory_format=fmt)
    x_all = torch.rand(4 * BATCH, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    cfg = TrainConfig(n_iter=10**6, batch_size=BATCH, beta_neg=256, scale=1 / 3072, progress=False,
                      autocast="auto" if ours else "none")
    t = Trainer(enc, dec, lambda s, g: x_all[(s % 4) * BATCH:(s % 4 + 1) * BATCH], cfg, None, dev)
    if not ours:  # the public code's optimiser: torch's default Adam (the Trainer's is the fused one)
        t.opt_e, t.opt_d = (torch.optim.Adam(n.parameters(), lr=cfg.lr) for n in (t.enc, t.dec))
    step = t.introspective_step if ours else (lambda x: reference_soft_intro_step(t, x))

    def one(i):
        step(t.batch_fn(i, None).to(dev).contiguous(memory_format=fmt))
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for i in range(3):  # warm-up (allocator, kernels)
        one(i)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    blocks, per = [], max(1, iters // 5)
    for b in range(5):
        t0 = time.perf_counter()
        for i in range(per):
            one(b * per + i)
        blocks.append((time.perf_counter() - t0) / per)
    sec = sorted(blocks)[2]
    peak = (torch.cuda.max_memory_allocated() if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"variant": variant, "device": dev.type, "sec_per_iter": sec, "images_per_s": BATCH / sec,
            "peak_mib": peak / 2**20, "memory": "cuda max allocated" if dev.type == "cuda" else "peak RSS"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--variant", choices=["sivae", "reference"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.variant:
        print(json.dumps(measure(args.variant, args.iters, args.device)))
        return
    res = {}
    for variant in ("reference", "sivae"):
        cmd = [sys.executable, __file__, "--variant", variant, "--iters", str(args.iters), "--device", args.device,
               "--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        res[variant] = r = json.loads(out)
        print(f"{variant:9s}: {r['sec_per_iter'] * 1e3:8.1f} ms/iter  {r['images_per_s']:7.1f} images/s  "
              f"{r['memory']} {r['peak_mib']:.0f} MiB")
    dev = res["sivae"]["device"]
    print(f"threads={torch.get_num_threads()} batch={BATCH} arch=CIFAR-10 (64,128,256), z=128")
    print(f"ratio={res['reference']['sec_per_iter'] / res['sivae']['sec_per_iter']:.3f} device={dev}")


if __name__ == "__main__":
    main()
