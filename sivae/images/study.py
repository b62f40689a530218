"""The image-generation study of notebook 04: which runs to train, their scores and tables.

For every (dataset, method, seed) one model is trained (or resumed, or loaded when finished)
under <ckpt_dir>/<dataset>_<method>_seed<seed>/last.pt; optionally one class-conditional
Soft-IntroVAE per dataset (<dataset>_soft_intro_vae_cond_seed<seed>). Scores per model:
the Frechet score of `sivae.fid` (FID when possible, else the labelled classifier-feature
distance), the per-pixel test reconstruction error and the test KL.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..losses import kl_divergence
from ..params import parse_list, split_items
from ..runinfo import write_json, write_markdown
from ..train import METHOD_TITLES
from . import metrics as fid
from .data import DATASETS, load_image_dataset, root_for
from .models import arch_for
from .training import TrainedModel, history_rows, run_name, sample_images, train_image_model

__all__ = ["IMAGE_METHODS", "PAPER_FID", "train_runs", "score_models", "summarize_scores", "write_image_tables",
           "write_history_csv", "parse_datasets"]

IMAGE_METHODS = ("vae", "soft_intro_vae")
# The paper's image FIDs (section 6.3 and 9.4.1; 50,000 samples vs the training set). The paper
# reports none for MNIST / Fashion-MNIST.
PAPER_FID = {("cifar10", "soft_intro_vae"): 4.6, ("cifar10", "soft_intro_vae_cond"): 4.07}
# Per-dataset training length and batch of the paper (Appendix 9.2.2: CIFAR-10 220 epochs, batch
# 32) and the public code's recommended settings (MNIST / Fashion-MNIST: 200 epochs, batch 128;
# SVHN: batch 32, trained like CIFAR-10). Used where the parameters say "paper".
PAPER_TRAINING = {"mnist": {"epochs": 200, "batch_size": 128}, "fashionmnist": {"epochs": 200, "batch_size": 128},
                  "cifar10": {"epochs": 220, "batch_size": 32}, "svhn": {"epochs": 220, "batch_size": 32}}


def paper_or(name: str, value, dataset: str):
    """`value`, or the paper's setting for `dataset` when value == "paper"."""
    if value != "paper":
        return value
    if dataset not in PAPER_TRAINING:
        raise ConfigError(f"{name}='paper' has no paper value for {dataset!r}; give a number")
    return PAPER_TRAINING[dataset][name]


def parse_datasets(value) -> list[str]:
    """'mnist,fashionmnist' -> names, each checked (folders: 'folder:<path>' is allowed)."""
    return [v if v.startswith("folder:") else parse_list("datasets", v, DATASETS)[0]
            for v in split_items("datasets", value)]


def train_runs(datasets, methods, seeds, *, data_root, paper_data_root, n_train, epochs, batch_size, lr,
               beta_rec, beta_kl, beta_neg, gamma_r, num_vae, channels, z_dim, ckpt_dir, device, autocast,
               conditional: bool = False, progress: bool = True, log=print) -> dict:
    """Train every (dataset, method, seed); conditional=True adds a class-conditional Soft-IntroVAE.

    Returns:
        {(dataset, method_key, seed): TrainedModel}, method_key "soft_intro_vae_cond" for conditional runs.
    """
    runs = {}
    for ds in datasets:
        data = load_image_dataset(ds, "train", root_for(ds, data_root, paper_data_root),
                                  None if int(n_train) <= 0 else int(n_train))
        jobs = [(m, False) for m in methods] + ([("soft_intro_vae", True)] if conditional else [])
        for method, cond in jobs:
            key = method + ("_cond" if cond else "")
            arch = arch_for(ds, data.shape[1], data.shape[0], channels, z_dim, cond)
            for seed in seeds:
                model = train_image_model(
                    data, arch, method, seed, epochs=float(paper_or("epochs", epochs, ds)),
                    batch_size=int(paper_or("batch_size", batch_size, ds)), lr=lr, beta_rec=beta_rec,
                    beta_kl=beta_kl, beta_neg=beta_neg, gamma_r=gamma_r, num_vae=num_vae,
                    ckpt_dir=Path(ckpt_dir) / run_name(ds, key, seed), device=device, autocast=autocast,
                    progress=progress)
                log(f"{ds} {key} seed {seed}: {model.step} steps")
                runs[(ds, key, seed)] = model
    return runs


@torch.no_grad()
def test_errors(model: TrainedModel, test_x, test_y=None, batch: int = 500) -> dict:
    """Mean per-pixel squared error of D(mu(x)) and mean KL(q(z|x) || p(z)) on test images."""
    mse, kl = [], []
    for i in range(0, len(test_x), batch):
        x = test_x[i:i + batch].to(model.device)
        y = () if not model.arch.conditional else (test_y[i:i + batch].to(model.device),)
        mu, logvar = model.encoder(x, *y)
        mse.append(((model.decoder(mu, *y).float() - x) ** 2).flatten(1).mean(1).cpu())
        kl.append(kl_divergence(mu.float(), logvar.float()).cpu())
    return {"test_mse": float(torch.cat(mse).mean()), "test_kl": float(torch.cat(kl).mean())}


def score_models(runs: dict, *, data_root, paper_data_root, n_fd_samples: int, classifier_dir,
                 classifier_epochs: int, use_inception: bool, seed: int, device="cpu", log=print) -> dict:
    """Frechet score, test reconstruction error and test KL of every run; classifier accuracies.

    Returns:
        {"runs": {(ds, method, seed): {...}}, "classifiers": {ds: test accuracy}}.
    """
    out, accs = {}, {}
    inception = fid.inception_extractor(device) if use_inception else None
    for ds in sorted({k[0] for k in runs}):
        root = root_for(ds, data_root, paper_data_root)
        train, test = load_image_dataset(ds, "train", root), load_image_dataset(ds, "test", root)
        clf, accs[ds] = fid.train_classifier(train, test, Path(classifier_dir) / f"{ds}.pt",
                                             epochs=classifier_epochs, seed=seed, device=device)
        ref = train.x[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n_fd_samples]]
        for key, model in ((k, m) for k, m in runs.items() if k[0] == ds):
            n = int(n_fd_samples)
            y = torch.arange(n) % model.arch.n_classes if model.arch.conditional else None
            gen = sample_images(model, n, seed=seed + 1, y=y)
            score = fid.frechet_score(gen, ref, clf, use_inception=use_inception, device=device, log=log,
                                       inception=inception)
            out[key] = {**score, **test_errors(model, test.x, test.y)}
            log(f"{ds} {key[1]} seed {key[2]}: {score['kind'].split(' ')[0]} {score['value']:.3f}")
    return {"runs": out, "classifiers": accs}


def summarize_scores(scores: dict) -> dict:
    """Mean and std over seeds: {dataset: {method: {metric: value, metric_std: value, kind: ...}}}."""
    groups = {}
    for (ds, method, _seed), s in scores["runs"].items():
        groups.setdefault(ds, {}).setdefault(method, []).append(s)
    summary = {}
    for ds, per in groups.items():
        for method, rows in per.items():
            entry = {"kind": rows[0]["kind"], "n_seeds": len(rows), "n_samples": rows[0]["n_generated"]}
            for k in ("value", "test_mse", "test_kl"):
                v = np.array([r[k] for r in rows], dtype=float)
                entry[k], entry[f"{k}_std"] = float(v.mean()), float(v.std())
            summary.setdefault(ds, {})[method] = entry
    return summary


def write_image_tables(summary: dict, classifiers: dict, metrics_path, table_path, meta: dict | None = None) -> str:
    """DVC metrics JSON (Frechet score under its kind's key) and a markdown table beside the paper's FID."""
    flat = {}
    for ds, per in summary.items():
        flat[ds] = {"classifier_test_accuracy": round(classifiers.get(ds, float("nan")), 4)}
        for method, e in per.items():
            name = "fid" if e["kind"].startswith("FID") else "fd_classifier"
            flat[ds][method] = {name: round(e["value"], 4), f"{name}_std": round(e["value_std"], 4),
                                "test_mse": round(e["test_mse"], 6), "test_kl": round(e["test_kl"], 4)}
    write_json(flat, metrics_path)
    lines = ["| dataset | model | score kind | ours (mean ± std over seeds) | paper FID | test MSE/pixel | test KL |",
             "|---|---|---|---|---|---|---|"]
    for ds, per in summary.items():
        for method, e in per.items():
            paper = PAPER_FID.get((ds, method))
            kind = "FID" if e["kind"].startswith("FID") else "FD-classifier (not FID)"
            lines.append(f"| {ds} | {METHOD_TITLES.get(method, method)} | {kind}, n={e['n_samples']} | "
                         f"{e['value']:.3f} ± {e['value_std']:.3f} | {paper if paper is not None else 'not reported'} | "
                         f"{e['test_mse']:.4f} | {e['test_kl']:.1f} |")
    return write_markdown(lines, table_path, meta=meta)


def write_history_csv(runs: dict, path) -> Path:
    """Training curves of every run in one CSV (a DVC plots file)."""
    rows = [r for (ds, key, seed), m in runs.items() for r in history_rows(m, ds, key)]
    if not rows:
        raise ConfigError("no training history to write")
    keys = ["run", "step", *sorted({k for r in rows for k in r} - {"run", "step"})]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)
    return path
