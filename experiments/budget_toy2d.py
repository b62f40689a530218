"""2D budget experiment: KL/JSD at six points of one run per (dataset, method, seed), for other widths, batches, lr.

    LR=2e-4 NUM_VAE=100 python experiments/budget_toy2d.py HIDDEN BATCH N_ITER DATASETS METHODS SEEDS [MILESTONES]
    e.g. python experiments/budget_toy2d.py 256 128 6000 8gaussians,spiral soft_intro_vae,vae 0,1
    the paper's schedule cut at 15,000: NUM_VAE=2000 python experiments/budget_toy2d.py 256 512 15000 spiral vae 0,1 0.666667

Prints one JSON line per run: curve = [[step, KL, JSD, gnELBO on a GRIDxGRID grid (not Table 2's scale), seconds,
share of the density's mass off the data support (as the toy2d stage's off_support_mass, on that grid)], ...].
GRID (environment, default 64; the stage uses 1024) sets the density grid.
The README's "budget it needs" numbers come from this script.

    python experiments/budget_toy2d.py judge RUNS.jsonl [...]
judges every step the runs share with the findings ledger's rule (sivae.findings.study.compare, over seeds):
Soft-IntroVAE below the VAE and IntroVAE in KL, JSD, gnELBO, and each introspective model's off-support share
below the VAE's, per dataset.
"""
import json
import os
import sys
import time

import torch

from sivae.toy2d.config import resolve_hparams
from sivae.toy2d.data import get_toy_dataset
from sivae.toy2d.models import MLPConfig, build_mlp_pair
from sivae.toy2d.study import evaluate_toy
from sivae.train import TrainConfig, Trainer


def judge(paths) -> None:
    """Print, per dataset and step, the ledger's verdicts over the seeds of the runs in the jsonl files."""
    from collections import defaultdict

    from sivae.findings.study import Stat, compare
    from sivae.stats import seed_stats
    runs = defaultdict(list)   # (d, m) -> curves
    for path in paths:
        for line in open(path):
            r = json.loads(line)
            runs[r["d"], r["m"]].append({p[0]: p for p in r["curve"]})

    def stat(d, m, step, col):
        vals = [c[step][col] for c in runs.get((d, m), []) if step in c and len(c[step]) > col]
        return Stat(**seed_stats(vals)) if vals else None

    for d in sorted({d for d, _ in runs}):
        steps = sorted(set.intersection(*(set(c) for (dd, _), cs in runs.items() if dd == d for c in cs)))
        for step in steps:
            out = []
            for name, col in (("kl", 1), ("jsd", 2), ("gnelbo", 3)):
                s = stat(d, "soft_intro_vae", step, col)
                for other in ("vae", "introvae"):
                    o = stat(d, other, step, col)
                    if s and o:
                        out.append(f"{name} sivae<{other}: {compare(s, o)} "
                                   f"({s.mean:.3g}±{s.std:.2g} vs {o.mean:.3g}±{o.std:.2g})")
            for m in ("soft_intro_vae", "introvae"):
                s, v = stat(d, m, step, 5), stat(d, "vae", step, 5)
                if s and v:
                    out.append(f"off-support {m}<vae: {compare(s, v)} ({s.mean:.3g}±{s.std:.2g} vs {v.mean:.3g}±{v.std:.2g})")
            print(f"{d} step {step}: " + "; ".join(out))


def main(argv):
    if argv and argv[0] == "judge":
        return judge(argv[1:])
    torch.set_num_threads(1)
    hidden, batch, n_iter = int(argv[0]), int(argv[1]), int(argv[2])
    datasets, methods = argv[3].split(","), argv[4].split(",")
    seeds = [int(s) for s in argv[5].split(",")]
    milestones = tuple(float(f) for f in argv[6].split(",")) if len(argv) > 6 else (0.6, 0.8)
    lr = float(os.environ.get("LR", "2e-4"))
    num_vae = int(os.environ.get("NUM_VAE", "100"))  # VAE warm-up of the introspective models (the paper: 2000)
    grid = int(os.environ.get("GRID", "64"))
    points = sorted({int(n_iter * f) for f in (0.1, 0.2, 0.35, 0.5, 0.7, 1.0)})
    for d in datasets:
        data = get_toy_dataset(d)
        for mo in methods:
            for seed in seeds:
                cfg = TrainConfig(method=mo, n_iter=n_iter, batch_size=batch, lr=lr, lr_milestones=milestones,
                                  num_vae=num_vae if mo != "vae" else 0, seed=seed, progress=False, scale=0.5,
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
                        print(d, mo, seed, curve[-1], file=sys.stderr, flush=True)
                print(json.dumps({"d": d, "m": mo, "seed": seed, "hidden": hidden, "batch": batch, "lr": lr, "num_vae": num_vae,
                                  "milestones": milestones,
                                  "curve": curve}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
