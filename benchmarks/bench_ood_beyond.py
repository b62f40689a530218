"""Cost of the beyond-the-paper OOD scores (issue 34) against the existing Table 7 scoring, timed in one run.

Times, per image and on the same images, with the networks of the profile's image models (sivae.images.models at
ood.train_channels / the images stage's widths, randomly initialised: the cost does not depend on the weights):
  - the importance-weighted log-likelihood (sivae.ood.metrics.score_images, M = ood.n_importance): the existing
    scoring, the baseline;
  - the PNG code length (input complexity), the background VAE's log-likelihood (likelihood ratio, widths
    ood.bg_channels), likelihood regret (ood.regret_steps), typicality (free: it reuses the log-likelihoods);
  - training steps of the image models (VAE, Soft-IntroVAE: the heldout models) and of the background VAE.
Then counts the images each part handles at the profile's parameters (pairs, near pairs, seeds, n_eval,
near_n_eval, heldout_n_train, bg_n_train) and prints the estimated seconds of each part and the ratio
`beyond / table7` of the added work to the existing scoring. The last line reads
`ratio=<beyond/table7> table7_s=<...> beyond_s=<...> device=cpu threads=<n>`.

    python benchmarks/bench_ood_beyond.py [--n 128] [--params params.yaml] [--threads 0] [KEY=VALUE ...]
(KEY=VALUE overrides the ood section, e.g. near_n_eval=250.)
"""
from __future__ import annotations

import argparse
import time

import torch

from sivae.images.data import ImageData
from sivae.images.models import arch_for, build_image_pair
from sivae.images.training import train_image_model
from sivae.ood.config import OodConfig
from sivae.ood.metrics import score_images
from sivae.ood.scores import likelihood_regret, png_code_length_bits
from sivae.stage import stage_parameters


def per_image(fn, n, repeats=2):
    fn()   # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best / n


def train_per_image(data, arch, method, batch_size, lr):
    t = time.perf_counter()
    train_image_model(data, arch, method, 0, epochs=1, batch_size=batch_size, lr=lr, device="cpu", autocast="none",
                      progress=False)
    return (time.perf_counter() - t) / len(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=128, help="images timed per score")
    ap.add_argument("--n-train", type=int, default=256, help="images of the timed training epochs")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("overrides", nargs="*", help="KEY=VALUE of the ood section")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    od, _ = stage_parameters("ood", args.params, overrides=dict(a.split("=", 1) for a in args.overrides))
    im, _ = stage_parameters("images", args.params)
    cfg = OodConfig.from_params(od)
    groups, pairs, methods = cfg.groups, cfg.pairs, cfg.methods
    n_models = len(methods) * cfg.n_seeds
    seeds, n_eval, near_n = cfg.n_seeds, cfg.n_eval or 10000, cfg.near_n_eval or 1000
    m, chunk, sigma2 = cfg.n_importance, cfg.chunk_size, cfg.sigma2

    arch = arch_for("mnist", channels=im["channels"])                  # the images stage's models (MNIST-sized)
    enc, dec = (n.to(memory_format=torch.channels_last).eval() for n in build_image_pair(arch, seed=0))
    bg_arch = arch_for("mnist", channels=cfg.bg_channels)
    benc, bdec = (n.to(memory_format=torch.channels_last).eval() for n in build_image_pair(bg_arch, seed=0))
    x = torch.rand(args.n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    cost = {
        "iw": per_image(lambda: score_images(enc, dec, x, n_samples=m, sigma2=sigma2, chunk_size=chunk), args.n),
        "png": per_image(lambda: png_code_length_bits(x), args.n),
        "bg_iw": per_image(lambda: score_images(benc, bdec, x, n_samples=m, sigma2=sigma2, chunk_size=chunk), args.n),
        "regret": per_image(lambda: likelihood_regret(enc, dec, x, steps=cfg.regret_steps, lr=cfg.regret_lr,
                                                      n_eval=cfg.regret_n_eval, sigma2=sigma2,
                                                      chunk=max(1, chunk // 4)), args.n),
    }
    data = ImageData(torch.rand(args.n_train, 1, 28, 28), torch.zeros(args.n_train, dtype=torch.long), "mnist", "train")
    heldout = [p for p in pairs if p.kind == "heldout"]
    train_methods = set(methods) if heldout else set()
    for meth in sorted(train_methods):   # at the batch size of the first heldout pair's models ("paper" resolved)
        cost[f"train_{meth}"] = train_per_image(data, arch, meth, cfg.train_length(heldout[0].dataset).batch_size,
                                                cfg.heldout_lr)
    if "ratio" in cfg.scores:
        cost["train_bg"] = train_per_image(data, bg_arch, "vae", cfg.bg_batch_size, cfg.bg_lr)

    # images each part handles at these parameters
    table7 = sum(n_models * (2 + len(oods)) * n_eval for _, oods in groups)   # test, train, paper OOD sets
    sets = {}
    for g, oods in groups:
        near_sets = [p for p in pairs if (p.kind in ("blur", "shift", "contrast") and p.dataset == g)
                     or p.kind in ("noise", "constant", "folder")]
        sets[g] = ((1 + len(oods)) * n_eval, len(near_sets) * near_n, n_eval)   # (already scored, new, train)
    for p in heldout:   # test, train and the held-out class: near_n_eval images each (the class: at most 1000)
        sets[f"{p.dataset}_without_{p.arg}"] = (0, near_n + min(near_n, 1000), near_n)
    new_iw = sum(n_models * (new + (train if old == 0 else 0)) for old, new, train in sets.values())
    all_imgs = sum(old + new for old, new, _ in sets.values())     # the other scores skip the training images
    est = {"iw (new sets)": new_iw * cost["iw"],
           "complexity (png)": all_imgs * cost["png"] if "complexity" in cfg.scores else 0.0,
           "ratio: background scoring": seeds * all_imgs * cost["bg_iw"] if "ratio" in cfg.scores else 0.0,
           "ratio: background training": len(sets) * seeds * (cfg.bg_n_train or 60000) * cfg.bg_epochs
           * cost.get("train_bg", 0.0),
           "regret": n_models * all_imgs * cost["regret"] if "regret" in cfg.scores else 0.0,
           "heldout models: training": sum(seeds * (cfg.heldout_n_train or 54000) * cfg.train_length(p.dataset).epochs
                                           * cost[f"train_{meth}"] for meth in train_methods for p in heldout)}
    t7 = table7 * cost["iw"]
    print(f"threads={torch.get_num_threads()} widths={arch.channels} bg_widths={bg_arch.channels} M={m} chunk={chunk} "
          f"regret_steps={cfg.regret_steps} n_eval={n_eval} near_n_eval={near_n} seeds={seeds} models/dataset={n_models}")
    for k, v in cost.items():
        print(f"  {k:20s} {1e3 * v:8.3f} ms/image  ({v / cost['iw']:.2f} x the IW log-likelihood)")
    print(f"Table 7 scoring (existing): {table7} images -> {t7:.0f} s")
    for k, v in est.items():
        print(f"  beyond: {k:28s} {v:7.0f} s")
    total = sum(est.values())
    print(f"ratio={total / t7:.2f} table7_s={t7:.0f} beyond_s={total:.0f} device=cpu threads={torch.get_num_threads()}")


if __name__ == "__main__":
    main()
