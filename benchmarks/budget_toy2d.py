"""2D budget experiment: KL/JSD at six points of one run per (dataset, method, seed), for other widths, batches, lr.

    LR=2e-4 OMP_NUM_THREADS=1 python benchmarks/budget_toy2d.py HIDDEN BATCH N_ITER DATASETS METHODS SEEDS [MILESTONES]
    e.g. python benchmarks/budget_toy2d.py 256 128 6000 8gaussians,spiral soft_intro_vae,vae 0,1

Prints one JSON line per run: curve = [[step, KL, JSD, gnELBO on a GRIDxGRID grid (not Table 2's scale), seconds,
share of the density's mass off the data support (as the toy2d stage's off_support_mass, on that grid)], ...].
GRID (environment, default 64; the stage uses 1024) sets the density grid.
The README's "budget it needs" numbers come from this script.
"""
import json
import os
import sys
import time

import torch

from sivae.toy2d.data import get_toy_dataset
from sivae.toy2d.models import MLPConfig, build_mlp_pair
from sivae.toy2d.study import evaluate_toy, resolve_hparams
from sivae.train import TrainConfig, Trainer


def main(argv):
    torch.set_num_threads(1)
    hidden, batch, n_iter = int(argv[0]), int(argv[1]), int(argv[2])
    datasets, methods = argv[3].split(","), argv[4].split(",")
    seeds = [int(s) for s in argv[5].split(",")]
    milestones = tuple(float(f) for f in argv[6].split(",")) if len(argv) > 6 else (0.6, 0.8)
    lr = float(os.environ.get("LR", "2e-4"))
    grid = int(os.environ.get("GRID", "64"))
    points = sorted({int(n_iter * f) for f in (0.1, 0.2, 0.35, 0.5, 0.7, 1.0)})
    for d in datasets:
        data = get_toy_dataset(d)
        for mo in methods:
            for seed in seeds:
                cfg = TrainConfig(method=mo, n_iter=n_iter, batch_size=batch, lr=lr, lr_milestones=milestones,
                                  num_vae=100 if mo != "vae" else 0, seed=seed, progress=False, scale=0.5,
                                  **resolve_hparams(d, mo))
                enc, dec = build_mlp_pair(MLPConfig(hidden=hidden), seed=seed)
                t = Trainer(enc, dec, lambda s, g: data.sample(batch, g), cfg, None, device="cpu")
                t0, curve = time.time(), []
                while t.step < n_iter:
                    t.train_step()
                    if t.step in points:
                        took = time.time() - t0
                        m, *_ = evaluate_toy(t.enc, t.dec, d, seed, n_samples=5000, grid_size=grid, keep_density=False)
                        curve.append((t.step, round(m["kl"], 2), round(m["jsd"], 2),
                                      round(m["gnelbo"] * 1e7 * (grid / 1024) ** 2, 3), round(took, 1),
                                      round(m["off_support_mass"], 4)))
                print(json.dumps({"d": d, "m": mo, "seed": seed, "hidden": hidden, "batch": batch, "lr": lr,
                                  "curve": curve}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
