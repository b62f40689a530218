"""Throughput of the importance-weighted log-likelihood (sivae.ood.metrics.score_images) against loops.

Scores images with M importance samples each, using the paper's MNIST encoder/decoder
(sivae.images.models, randomly initialised: the cost does not depend on the weights; channels_last
as sivae.oodstudy uses them, --contiguous for NCHW), three ways:
  - per-sample loop: one input through the encoder, then its M latents through the decoder one
    at a time (the straightforward transcription of the estimator's sum);
  - per-input loop: one input at a time, its M latents decoded together;
  - sivae: `score_images`, inputs and samples batched together, at most --chunk latents per
    decoder call, and on the CPU its allocator setting (sivae.runtime.keep_freed_memory);
    "sivae, default allocator" is the same without that setting (--keep-memory off).
Before timing, the three are checked to give the same log-weights from the same noise. Each
variant runs in its own process (the allocator setting is process-wide, so the loops keep the
default one), is warmed up, then timed --repeats times; the median is reported. Prints
images/second of each and the speed-up of sivae over the per-sample loop; the last line reads
`ratio=<speedup> device=<cpu|cuda>`.

    python benchmarks/bench_ood_scoring.py [--m 100] [--n 64] [--chunk 256] [--channels paper]
        [--device auto] [--contiguous] [--repeats 3] [--sweep-chunks 64,256,1024]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

import torch

from sivae.images.models import arch_for, build_image_pair
from sivae.ood.metrics import log_importance_weights, score_images
from sivae.runtime import resolve_device

SIGMA2 = 0.5


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def loop_scores(enc, dec, x, m, gen, device, per_sample: bool) -> torch.Tensor:
    """log p(x) estimates one input at a time; per_sample decodes each latent in its own call."""
    out = []
    for xi in x.split(1):
        xi = xi.to(device)
        mu, logvar = enc(xi)
        eps = torch.randn((1, m, mu.shape[1]), generator=gen, device=device)
        if per_sample:
            lw = torch.cat([log_importance_weights(dec, xi, mu, logvar, eps[:, i:i + 1], SIGMA2)[0]
                            for i in range(m)], 1)
        else:
            lw = log_importance_weights(dec, xi, mu, logvar, eps, SIGMA2)[0]
        out.append(torch.logsumexp(lw, 1) - math.log(m))
    return torch.cat(out)


@torch.no_grad()
def check_agreement(enc, dec, x, m, device) -> float:
    """Largest |difference| of the log-weights: all inputs and samples at once vs one by one."""
    x = x[:4].to(device)
    mu, logvar = enc(x)
    eps = torch.randn((4, m, mu.shape[1]), generator=torch.Generator(device=device).manual_seed(0), device=device)
    batched = log_importance_weights(dec, x, mu, logvar, eps, SIGMA2)[0]
    single = torch.stack([torch.cat([log_importance_weights(dec, x[b:b + 1], mu[b:b + 1], logvar[b:b + 1],
                                                            eps[b:b + 1, i:i + 1], SIGMA2)[0] for i in range(m)], 1)[0]
                          for b in range(4)])
    return float((batched - single).abs().max())


def timed(fn, device) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def measure(args, variant: str) -> dict:
    """Images/second of one variant over --repeats timed runs (after one warm-up run)."""
    device = resolve_device(args.device)
    arch = arch_for("mnist", channels=args.channels)
    fmt = torch.contiguous_format if args.contiguous else torch.channels_last  # as sivae.oodstudy scores
    enc, dec = (n.to(device, memory_format=fmt).eval() for n in build_image_pair(arch, seed=0))
    x = torch.rand(max(args.n, args.n_loop), 1, 28, 28, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator(device=device).manual_seed(0)
    kind, _, chunk = variant.partition(":")
    if kind in ("sample", "input"):
        n, fn = args.n_loop, lambda: loop_scores(enc, dec, x[:args.n_loop], args.m, gen, device, kind == "sample")
    else:
        n, fn = args.n, lambda: score_images(enc, dec, x[:args.n], n_samples=args.m, chunk_size=int(chunk),
                                             device=device, keep_memory=kind == "sivae")
    fn()  # warm-up (allocator, kernels)
    runs = [n / timed(fn, device) for _ in range(args.repeats)]
    out = {"variant": variant, "images_per_s": statistics.median(runs), "runs": runs, "device": device.type}
    if args.check:
        out["agreement"] = check_agreement(enc, dec, x, args.m, device)
        out["header"] = (f"device={device} threads={torch.get_num_threads()} arch=mnist widths={arch.channels} "
                         f"z={arch.z_dim} M={args.m} chunk={args.chunk} "
                         f"memory_format={'NCHW' if args.contiguous else 'channels_last'}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=100, help="importance samples per image")
    ap.add_argument("--n", type=int, default=64, help="images scored by sivae (the loops score fewer)")
    ap.add_argument("--n-loop", type=int, default=4, help="images scored by each loop")
    ap.add_argument("--chunk", type=int, default=256, help="sivae's chunk_size (latents per decoder call)")
    ap.add_argument("--channels", default="paper", help="encoder/decoder widths: 'paper' (64,128) or e.g. '16,32'")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--contiguous", action="store_true", help="NCHW networks instead of channels_last")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each variant (median reported)")
    ap.add_argument("--sweep-chunks", default="", help="also time sivae at these chunk sizes, e.g. 64,256,1024")
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(measure(args, args.variant)))
        return
    names = {"sample": "per-sample loop", "input": "per-input loop", f"sivae:{args.chunk}": "sivae (batched)",
             f"plain:{args.chunk}": "sivae, default allocator"}
    names.update({f"sivae:{c}": f"sivae chunk_size={c}" for c in args.sweep_chunks.split(",") if c.strip()})
    rate = {}
    for i, variant in enumerate(names):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--variant", variant] + (["--check"] if i == 0 else [])
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        if i == 0:
            print(res["header"])
            print(f"agreement batched vs one-by-one, max |log w difference|: {res['agreement']:.2e}")
        rate[variant], dev = res["images_per_s"], res["device"]
        spread = ", ".join(f"{r:.1f}" for r in res["runs"])
        print(f"{names[variant]:26s} {rate[variant]:9.2f} images/s at M={args.m} "
              f"({rate[variant] * args.m:,.0f} decoded latents/s; runs: {spread})", flush=True)
    print(f"ratio={rate[f'sivae:{args.chunk}'] / rate['sample']:.2f} device={dev}")


if __name__ == "__main__":
    main()
