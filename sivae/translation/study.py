"""What notebooks/05_translation.py runs: train VAE and Soft-IntroVAE on one architecture, evaluate, report.

Both models use the same two-encoder network (sivae.translation.models), initialisation, data
order and weights (beta_rec, beta_kl), and the one Trainer (sivae.train) unchanged; only the
method differs (a plain beta-VAE against Soft-IntroVAE, Eq. 7 with s = 1 / (C*H*W)).
The KL of each code is logged during training on a fixed set of training images (`CodeKLLog`),
which shows the posterior collapse of section 6.4 / Appendix 9.5: a VAE's KL can vanish, the
introspective model's should not. Evaluation: sivae.translation.metrics.
The stage's parameters arrive as one `TranslationConfig` (sivae.translation.config), checked once.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..errors import ConfigError
from ..paper import METHOD_TITLES, PAPER_TABLE4
from ..params import parse_bool
from ..runinfo import write_json, write_markdown
from ..runtime import check_device
from ..stats import seed_stats
from ..train import TrainConfig, Trainer
from . import metrics as M
from .config import MODELS, TranslationConfig, check_files
from .data import TranslationData, get_translation_data, make_batch_fn, to_float
from .models import build_translation_pair, code_kl
from .perceptual import FeatureTarget, PerceptualDecoder, resolve_rec_loss

__all__ = ["TranslationConfig", "check_files", "MODELS", "build_datas", "CodeKLLog", "TranslationRun",
           "train_translation", "train_seeds", "evaluate_run", "evaluate_seeds", "seed_dir", "seed_metrics", "average_seeds",
           "write_metrics", "PAPER_TABLE4", "write_table4", "n_iterations", "training_curves"]


def build_datas(cfg: TranslationConfig) -> dict[int, TranslationData]:
    """{seed: the dataset of that seed} for every seed of the config (what notebook 05 trains on, also for
    scripts that train it longer: experiments/budget_translation.py)."""
    return {s: get_translation_data(cfg.dataset, n_classes=cfg.n_classes, n_test_classes=cfg.n_test_classes,
                                    seed=s, data_root=cfg.data_root) for s in cfg.seeds}


def n_iterations(n_images: int, cfg: TranslationConfig) -> int:
    """Iterations of cfg.n_epochs passes over n_images at cfg.batch_size (incomplete batches dropped)."""
    return max(1, math.ceil(cfg.n_epochs * (n_images // cfg.batch_size)))


class CodeKLLog:
    """KL of each code on fixed training images every `every` iterations, saved beside the checkpoint.

    It runs inside the batch function, before the update of that step (so the record of step t
    is the model after t updates); the file is rewritten atomically at each record, so a resumed
    run keeps the earlier points and recomputes the later ones identically.
    """

    def __init__(self, encoder, images: Tensor, every: int, path: Path):
        self.encoder, self.images, self.every, self.path = encoder, images, every, Path(path)
        self.points: dict[int, dict] = {}
        if self.path.exists():
            self.points = {int(k): v for k, v in json.loads(self.path.read_text()).items()}

    def record(self, step: int):
        self.points[step] = code_kl(self.encoder, self.images)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({str(k): v for k, v in sorted(self.points.items())}))
        os.replace(tmp, self.path)

    def wrap(self, batch_fn):
        def fn(step, generator):
            if step % self.every == 0:
                self.record(step)
            return batch_fn(step, generator)
        return fn

    def curve(self) -> dict:
        """{"step": [...], "kl_class": [...], "kl_content": [...]} in step order."""
        steps = sorted(self.points)
        return {"step": steps, **{k: [self.points[s][k] for s in steps] for k in ("kl_class", "kl_content")}}


@dataclass
class TranslationRun:
    """A trained model: its networks, Trainer history, per-code KL curve and (later) metrics."""
    model: str
    encoder: torch.nn.Module
    decoder: torch.nn.Module
    history: list
    kl_curve: dict
    n_iter: int
    rec_loss: str = "mse"        # the reconstruction loss actually used: 'mse' or 'vgg'
    metrics: dict = field(default_factory=dict)


def train_translation(data: TranslationData, cfg: TranslationConfig, *, progress: bool = True) -> tuple[dict, str]:
    """Train each model of cfg.methods on `data` (same initialisation and data order, seeded by cfg.seed),
    resuming from <cfg.ckpt_dir>/<model>_<loss>/.

    Args:
        data: TranslationData (its channels must be the architecture's). cfg: the TranslationConfig (one seed:
            `cfg.for_seed`). progress: show progress bars.
    Returns:
        ({model: TranslationRun}, the sentence saying which reconstruction loss was used).

    What the config cannot know is checked (and every model's TrainConfig built) before anything is trained or
    written: the data's channels and size against the architecture and the batch size.
    """
    if not isinstance(cfg, TranslationConfig):
        raise ConfigError(f"cfg must be a TranslationConfig, got {type(cfg).__name__}")
    if not isinstance(data, TranslationData):
        raise ConfigError(f"data must be a TranslationData, got {type(data).__name__}")
    arch = cfg.arch
    if arch.in_channels != data.channels:
        raise ConfigError(f"the architecture expects {arch.in_channels} channel(s), dataset {data.name} has {data.channels}")
    if len(data.train) // cfg.batch_size < 1:
        raise ConfigError(f"batch_size {cfg.batch_size} is larger than the {len(data.train)} training images "
                          f"of {data.name}: lower batch_size")
    progress = parse_bool("progress", progress)
    dev = check_device(cfg.device)
    shape = tuple(data.train.shape[1:])
    n_iter = n_iterations(len(data.train), cfg)
    cfgs = {model: TrainConfig(method=model, n_iter=n_iter, batch_size=cfg.batch_size, lr=cfg.lr,
                               lr_milestones=cfg.lr_milestones, beta_rec=cfg.beta_rec, beta_kl=cfg.beta_kl,
                               beta_neg=cfg.beta_neg, gamma_r=cfg.gamma_r,
                               scale=1.0 / math.prod(shape),  # s = 1/d_x of the pixels
                               num_vae=cfg.num_vae if model != "vae" else 0, seed=cfg.seed,
                               progress=progress, checkpoint_every=max(1, min(1000, n_iter // 4)),
                               log_every=max(1, min(50, cfg.kl_every)))
            for model in cfg.methods}
    kind, extractor, loss_note = resolve_rec_loss(cfg.rec_loss, cfg.vgg_weights)
    kl_images = to_float(data.train[torch.randperm(len(data.train), generator=torch.Generator().manual_seed(
        cfg.seed))[:256]]).to(dev)
    target = FeatureTarget(extractor, shape, device=dev) if kind == "vgg" else None
    runs = {}
    for model in cfg.methods:
        enc, dec = build_translation_pair(arch, seed=cfg.seed)
        folder = Path(cfg.ckpt_dir) / f"{model}_{kind}"
        log = CodeKLLog(enc.to(dev), kl_images, cfg.kl_every, folder / "code_kl.json")
        batch_fn = make_batch_fn(data.train, cfg.batch_size, cfg.seed)
        if target is not None:
            batch_fn = (lambda f: lambda step, g: target(f(step, g)))(batch_fn)
        trainer = Trainer(enc, PerceptualDecoder(dec, target) if target is not None else dec, log.wrap(batch_fn),
                          cfgs[model], ckpt_dir=folder, device=dev, z_dim=arch.z_dim)
        history = trainer.fit(resume=True)
        if n_iter not in log.points:
            log.record(n_iter)
        runs[model] = TranslationRun(model, enc, dec, history, log.curve(), n_iter, kind)
    return runs, loss_note


def train_seeds(datas: dict[int, TranslationData], cfg: TranslationConfig, *,
                progress: bool = True) -> tuple[dict[int, dict], str]:
    """train_translation once per seed: seed k trains on datas[k] with `cfg.for_seed(k, seed_dir(cfg.ckpt_dir, k))`.

    Returns:
        ({seed: {model: TranslationRun}} in the order of datas, the reconstruction-loss sentence).
    """
    if not isinstance(datas, dict) or not datas:
        raise ConfigError(f"datas must map each seed to its TranslationData, got {datas!r}")
    if not isinstance(cfg, TranslationConfig):
        raise ConfigError(f"cfg must be a TranslationConfig, got {type(cfg).__name__}")
    seed_runs, note = {}, ""
    for s, data in datas.items():
        seed_runs[s], note = train_translation(data, cfg.for_seed(s, seed_dir(cfg.ckpt_dir, s)), progress=progress)
    return seed_runs, note


def evaluate_run(run: TranslationRun, data: TranslationData, *, n_pairs: int, seed: int, device="auto",
                 lpips_fn=None, max_probe_images: int = 3000) -> dict:
    """Every metric of one trained model (transfer on both splits where truth exists, leakage, KL, rec).

    Returns:
        a flat-ish dict, also stored in run.metrics.
    """
    dev = check_device(device)
    enc, dec = run.encoder.to(dev), run.decoder.to(dev)
    out = {"rec_mse_test": M.reconstruction_mse(enc, dec, data.test, dev),
           "kl_class": run.kl_curve["kl_class"][-1], "kl_content": run.kl_curve["kl_content"][-1],
           "n_iter": run.n_iter}
    if data.has_truth:
        for split in ("test", "train"):
            for k, v in M.evaluate_transfer(enc, dec, data, split, n_pairs, seed, dev, lpips_fn).items():
                out[f"transfer_{k}_{split}"] = v
    leakage = M.evaluate_leakage(enc, data, dev, seed, max_probe_images)
    for code, count in leakage.pop("active_units").items():
        out[f"active_units_{code}"] = count
    for name, v in leakage.items():
        out[f"probe_{name}"] = v["score"]
        out[f"probe_{name}_accuracy"] = v["accuracy"]
    run.metrics = out
    return out


def evaluate_seeds(seed_runs: dict[int, dict], datas: dict[int, TranslationData], *, n_pairs: int, device="auto",
                   lpips_fn=None) -> tuple[list[dict], dict]:
    """Evaluate every seed's models (evaluate_run) and the two model-free answers on that seed's data.

    Args:
        seed_runs: {seed: {model: TranslationRun}} (train_translation per seed). datas: {seed: TranslationData}.
    Returns:
        (each seed's `seed_metrics`, in seed order; the answers' scores averaged over seeds, {split: {name: scores}}).
    """
    missing = sorted(set(seed_runs) - set(datas))
    if missing:
        raise ConfigError(f"no data for seed(s) {missing}")
    per_seed, refs_all = [], []
    for s, runs in seed_runs.items():
        data = datas[s]
        for run in runs.values():
            evaluate_run(run, data, n_pairs=n_pairs, seed=s, device=device, lpips_fn=lpips_fn)
        refs = {sp: M.reference_scores(data, sp, n_pairs, s, lpips_fn) for sp in ("test", "train")} \
            if data.has_truth else {}
        per_seed.append(seed_metrics(runs, refs))
        refs_all.append(refs)
    return per_seed, average_seeds(refs_all)


def _sig(x):
    return float(f"{x:.5g}") if isinstance(x, float) else x


def seed_dir(ckpt_dir, seed: int) -> Path:
    """Where one seed's models are checkpointed: <ckpt_dir>/seed<k>/<model>_<loss>/."""
    return Path(ckpt_dir) / f"seed{int(seed)}"


def seed_metrics(runs: dict, references: dict) -> dict:
    """One seed's metrics as metrics.json holds them: {model: metrics, "reference": {"<answer>_<split>_<k>": v}}."""
    out = {m: dict(r.metrics) for m, r in runs.items()}
    out["reference"] = {f"{name}_{split}_{k}": v for split, ref in references.items()
                        for name, scores in ref.items() for k, v in scores.items()}
    return out


def average_seeds(trees: list[dict]) -> dict:
    """Seed means of nested metric dicts of one shape: each number becomes its mean, with `<key>_std` beside it
    (sivae.stats.seed_stats: ddof=1, 0.0 for one seed); a value equal in every seed that is not a float
    (an iteration count, a name) is kept as it is. Keys missing from some seed are an error, not skipped."""
    if not trees:
        raise ConfigError("average_seeds needs the metrics of at least one seed")
    first, out = trees[0], {}
    for k, v in first.items():
        vals = [t.get(k) if isinstance(t, dict) else None for t in trees]
        if any(k not in t for t in trees):
            raise ConfigError(f"metric {k!r} is missing from some seeds; every seed must be evaluated alike")
        if isinstance(v, dict):
            out[k] = average_seeds(vals)
        elif not isinstance(v, float) and all(x == v for x in vals):
            out[k] = v
        elif all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vals):
            st = seed_stats(vals)
            out[k], out[f"{k}_std"] = st["mean"], st["std"]
        else:
            raise ConfigError(f"metric {k!r} differs between seeds and is not a number: {vals!r}")
    return out


def write_metrics(path, seeds: list[dict], meta: dict) -> dict:
    """Write the DVC metrics file from each seed's `seed_metrics`: seed means with `<key>_std` (ddof=1),
    {model: metrics, "reference": copy-A/copy-B scores, "meta": ...}; 5 significant digits."""
    avg = average_seeds(seeds)
    out = {g: {k: _sig(v) for k, v in d.items()} for g, d in avg.items()}
    out["meta"] = meta
    write_json(out, path)
    return out


def write_table4(path, metrics: dict, references: dict, data: TranslationData, lpips_note: str, loss_note: str,
                 n_seeds: int = 1) -> str:
    """Write (and return) markdown: transfer scores beside Table 4's rows, then what each code holds.

    Args:
        path: markdown file. metrics: {model: evaluate_run's metrics} (seed means: average_seeds).
        references: reference_scores per split (seed means). data: the (first seed's) dataset.
        lpips_note, loss_note: the sentences of load_lpips and resolve_rec_loss. n_seeds: seeds averaged.
    """
    f = lambda v: "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
    u = lambda v: "-" if v is None else f"{v:g}"   # active units: a count, or its mean over seeds
    lines = [f"Content transfer (class of A, content of B) on `{data.name}`, mean over {n_seeds} seed(s): test split "
             f"({len(data.test_class.unique())} classes) and training split; per-pixel MSE and LPIPS lower, SSIM "
             f"higher is better. {lpips_note}. {loss_note}.", ""]
    if data.has_truth:
        lines += ["| model | labels used | data | MSE (test) | SSIM (test) | LPIPS (test) | MSE (train) "
                  "| SSIM (train) |", "|---|---|---|---|---|---|---|---|"]
        for m, x in metrics.items():
            lines.append(f"| {METHOD_TITLES[m]} (ours) | none | {data.name} | {f(x.get('transfer_mse_test'))} | "
                         f"{f(x.get('transfer_ssim_test'))} | {f(x.get('transfer_lpips_test'))} | "
                         f"{f(x.get('transfer_mse_train'))} | {f(x.get('transfer_ssim_train'))} |")
        for name in references.get("test", {}):
            te, tr = references["test"][name], references.get("train", {}).get(name, {})
            lines.append(f"| answer = {name.replace('_', ' ')} | - | {data.name} | {f(te['mse'])} | {f(te['ssim'])} | "
                         f"{f(te.get('lpips'))} | {f(tr.get('mse'))} | {f(tr.get('ssim'))} |")
        for name, v in PAPER_TABLE4.items():
            lines.append(f"| {name}, paper's Table 4 | | Cars3D | | | "
                         f"{f(v) if v is not None else 'not in our copy of the paper'} | | |")
    else:
        lines.append(f"No transfer ground truth in `{data.name}` (no content labels): see the grids.")
    lines += ["", "What each code holds (training identities): KL per image, active units (Var_x E[z_j|x] > 0.01), "
              "and linear-probe scores (acc - chance) / (1 - chance); the two 'leak' columns: lower is better.", "",
              "| model | KL class | KL content | active units class / content | identity from class | "
              "pose from content | leak: pose from class | leak: identity from content |",
              "|---|---|---|---|---|---|---|---|"]
    for m, x in metrics.items():
        lines.append(f"| {METHOD_TITLES[m]} | {f(x['kl_class'])} | {f(x['kl_content'])} | "
                     f"{u(x.get('active_units_class'))} / {u(x.get('active_units_content'))} | "
                     f"{f(x.get('probe_identity_from_class'))} | {f(x.get('probe_pose_from_content'))} | "
                     f"{f(x.get('probe_pose_from_class'))} | {f(x.get('probe_identity_from_content'))} |")
    return write_markdown(lines, path)


def training_curves(seed_runs: dict[int, dict[str, TranslationRun]]) -> dict[str, list]:
    """Per seed and model: "seed<k>/<model>/losses" (the Trainer's history) and "seed<k>/<model>/code_kl" (the KL
    of each code along training, the curve that shows the VAE's class code collapsing), for
    `sivae.runinfo.log_curves`. seed_runs: {seed: {model: TranslationRun}} (train_seeds)."""
    out = {}
    for seed, runs in seed_runs.items():
        for model, run in runs.items():
            out[f"seed{seed}/{model}/losses"] = run.history
            c = run.kl_curve
            out[f"seed{seed}/{model}/code_kl"] = [{"step": s, "kl_class": a, "kl_content": b}
                                                  for s, a, b in zip(c["step"], c["kl_class"], c["kl_content"])]
    return out
