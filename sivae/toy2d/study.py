"""Section 6.1: train VAE, IntroVAE and Soft-IntroVAE on the 2D datasets; Figure 2 and Table 2.

`run_toy2d` is what notebooks/02_toy2d.py calls: for each dataset, model and seed it trains
with the Table 5 hyper-parameters (or overrides), checkpoints under ckpt_dir, evaluates the
paper's KL/JSD/gnELBO (plus the textbook JSD) and keeps samples and densities for plotting.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import DivergenceError
from ..paper import METHOD_TITLES, PAPER_TABLE2
from ..runinfo import METRICS_FILE_SCALES, in_file_units, write_json, write_markdown
from ..runtime import resolve_device
from ..stack import StackRun, StackTrainer, stack_groups
from ..stats import seed_stats
from ..train import Trainer
from . import metrics as M
from .config import STACK_MAX_RUNS, RunSpec, Toy2dConfig
from .data import EIGHT_GAUSSIANS_MODES, TOY_DATASETS, get_toy_dataset
from .models import MLPConfig, build_mlp_pair

__all__ = ["ToyRun", "train_one", "evaluate_toy", "run_toy2d", "train_and_evaluate",
           "summarize", "flat_summary", "write_table2", "budget_steps", "sample_metrics", "budget_curve",
           "write_budget", "training_curves"]

@dataclass
class ToyRun:
    """What one trained (dataset, model, seed) leaves behind."""
    dataset: str
    model: str
    seed: int
    hparams: dict
    metrics: dict
    history: list
    fake: np.ndarray        # (n, 2) generated samples
    real: np.ndarray        # (n, 2) real samples
    density: np.ndarray | None  # (grid, grid) exp(-negative ELBO), None unless kept
    budget: dict = field(default_factory=dict)  # {step: {"kl", "jsd"}} along the run (budget curves)


def train_one(spec: RunSpec, device, keep_states_at=()):
    """Train one 2D run with its own Trainer; returns (encoder, decoder, history, kept states).
    Resumes from <spec.ckpt_dir>/last.pt. keep_states_at: steps whose weights are kept (budget curves)."""
    data, batch_size = get_toy_dataset(spec.dataset), spec.config.batch_size
    enc, dec = build_mlp_pair(spec.mlp, seed=spec.seed)
    trainer = Trainer(enc, dec, lambda step, g: data.sample(batch_size, g), spec.config,
                      ckpt_dir=spec.ckpt_dir, device=resolve_device(device), keep_states_at=keep_states_at)
    history = trainer.fit(resume=True)
    return trainer.enc, trainer.dec, history, trainer.kept_states


def _draw(decoder, dataset: str, seed: int, n_samples: int, device):
    """Real samples and decoder samples of an evaluation, from the generator seeded 10,000 + seed (returned too)."""
    data = get_toy_dataset(dataset)
    g = torch.Generator().manual_seed(10_000 + seed)
    real = data.sample(n_samples, g).numpy()
    decoder.eval()
    with torch.no_grad():
        fake = decoder(torch.randn(n_samples, decoder.z_dim, generator=g).to(device)).cpu().numpy()
    return data, g, real, fake


def evaluate_toy(encoder, decoder, dataset: str, seed: int, *, n_samples: int = 5000, grid_size: int = 1024,
                 bins: int = 100, device="cpu", keep_density: bool = True):
    """Table 2 metrics of a trained model, plus samples and the density grid for Figure 2.

    Returns:
        (metrics dict, real samples, fake samples, density or None)
    """
    data, g, real, fake = _draw(decoder, dataset, seed, n_samples, device)
    h_real, h_fake = M.density_histogram(real, data.limit, bins), M.density_histogram(fake, data.limit, bins)
    _, grid = M.make_grid(data.limit, grid_size)
    grid_nelbo = M.negative_elbo_points(encoder, decoder, grid, device=device)
    real_nelbo = M.negative_elbo_points(encoder, decoder, data.sample(100 * 128, g), device=device)
    metrics = {"kl": M.paper_kl(h_real, h_fake), "jsd": M.paper_jsd(h_real, h_fake),
               "gnelbo": M.grid_normalized_elbo(grid_nelbo, real_nelbo),
               "jsd_textbook": M.textbook_jsd(h_real, h_fake)}
    # one large draw of the data marks its support, for the density (its mass off the support) and for the
    # samples (Figure 2 in numbers: their share within one 100-bin histogram cell of a real point; on 8 Gaussians,
    # how many of the 8 modes get their samples, within 0.1: neighbouring modes are 1.08 apart)
    support = data.sample(200_000, torch.Generator().manual_seed(20_000 + seed)).numpy()
    metrics["off_support_mass"] = M.off_support_mass(grid, grid_nelbo, support, data.limit)
    metrics["near_support_share"] = M.near_support_share(fake, support, radius=2 * data.limit / bins)
    if dataset == "8gaussians":
        metrics["modes_covered"] = float(M.modes_covered(fake, EIGHT_GAUSSIANS_MODES, radius=0.1))
    density = torch.exp(-grid_nelbo).reshape(grid_size, grid_size).float().numpy() if keep_density else None
    return metrics, real, fake, density


def budget_steps(n_iter: int, points: int = 5) -> list[int]:
    """Log-spaced steps n_iter / 2^k (k = points-1 .. 0) at which the budget curves are measured."""
    return sorted({max(1, round(n_iter / 2 ** k)) for k in range(points)})


def sample_metrics(decoder, dataset: str, seed: int, n_samples: int = 5000, bins: int = 100, device="cpu") -> dict:
    """The paper's KL and JSD of a decoder's samples (the sample-based half of evaluate_toy, same draws)."""
    data, g, real, fake = _draw(decoder, dataset, seed, n_samples, device)
    h_real, h_fake = M.density_histogram(real, data.limit, bins), M.density_histogram(fake, data.limit, bins)
    return {"kl": M.paper_kl(h_real, h_fake), "jsd": M.paper_jsd(h_real, h_fake)}


def budget_curve(kept: dict, dataset: str, seed: int, n_samples: int = 5000, device="cpu",
                 mlp: MLPConfig | None = None) -> dict:
    """{step: {"kl", "jsd"}} of the weights kept along one run (no retraining; mlp: the run's shape)."""
    _, dec = build_mlp_pair(mlp or MLPConfig(), seed=seed)
    dec = dec.to(device)
    out = {}
    for step in sorted(kept):
        dec.load_state_dict(kept[step]["decoder"])
        out[int(step)] = sample_metrics(dec, dataset, seed, n_samples, device=device)
    return out


def write_budget(runs: list, path) -> list[dict]:
    """The budget curves as JSON records [{dataset, method, step, kl, jsd, n}] (means over seeds; a DVC plot)."""
    acc: dict = {}
    for r in runs:
        for step, met in r.budget.items():
            acc.setdefault((r.dataset, r.model, int(step)), []).append(met)
    rows = [{"dataset": d, "method": m, "step": st, "kl": float(np.mean([x["kl"] for x in v])),
             "jsd": float(np.mean([x["jsd"] for x in v])), "n": len(v)} for (d, m, st), v in sorted(acc.items())]
    write_json(rows, path)
    return rows


def _train_stacks(specs: list[RunSpec], *, device, keep_states_at, stack_dir):
    """Train the specs as stacks of one method and schedule (at most STACK_MAX_RUNS each); the results in the
    specs' order. keep_states_at: each spec's steps whose weights are kept."""
    names = [str(sp.ckpt_dir) for sp in specs]
    cfgs = [sp.config for sp in specs]
    results: dict = {}
    for group in stack_groups(dict(zip(names, cfgs)), max_runs=STACK_MAX_RUNS):
        runs = []
        for name in group:
            k = names.index(name)
            data = get_toy_dataset(specs[k].dataset)
            enc, dec = build_mlp_pair(specs[k].mlp, seed=specs[k].seed)
            runs.append(StackRun(name, enc, dec, lambda step, g, data=data, b=cfgs[k].batch_size: data.sample(b, g), cfgs[k],
                                 keep_states_at=tuple(keep_states_at[k])))
        # one folder per composition of the stack: another set of runs never meets this checkpoint
        key = hashlib.sha1("\n".join(group).encode()).hexdigest()[:12]
        stack = StackTrainer(runs, ckpt_dir=Path(stack_dir) / f"{cfgs[names.index(group[0])].method}-{key}", device=device)
        stack.fit(resume=True)
        if stack.diverged:
            raise DivergenceError("; ".join(f"run {n} diverged at step {d['step']} ({d['loss']} = {d['value']!r})"
                                            for n, d in stack.diverged.items())
                                  + f". The other runs of its stack finished (checkpoint {stack.ckpt_path}). Try a smaller "
                                    f"learning rate or beta_neg, or a larger warm-up (num_vae)")
        for name in group:
            enc, dec = stack.modules(name)
            results[name] = (enc, dec, stack.history[name], stack.kept_states[name])
    return [results[n] for n in names]


def train_and_evaluate(specs: list[RunSpec], cfg: Toy2dConfig, stack_dir=None) -> list[ToyRun]:
    """Train every spec (one Trainer each, or as stacks: `cfg.engine`), then evaluate each (evaluate_toy) with
    cfg's evaluation settings (n_samples, grid_size, device, budget).

    The specs may come from several configs of one schedule (a grid of loss weights: sivae.stability,
    sivae.toy2d.sweep); stack_dir: where the stacks' checkpoints go (default cfg.stack_dir).
    """
    keep = [tuple(budget_steps(sp.config.n_iter)) if cfg.budget else () for sp in specs]   # each run's own length
    device = resolve_device(cfg.device)
    if cfg.engine == "stack":
        trained = _train_stacks(specs, device=device, keep_states_at=keep,
                                stack_dir=stack_dir if stack_dir is not None else cfg.stack_dir)
    else:
        trained = [train_one(sp, device, keep_states_at=k) for sp, k in zip(specs, keep)]
    runs = []
    for sp, (enc, dec, hist, kept) in zip(specs, trained):
        met, real, fake, dens = evaluate_toy(enc, dec, sp.dataset, sp.seed, n_samples=cfg.n_samples,
                                             grid_size=cfg.grid_size, device=device, keep_density=sp.keep_density)
        runs.append(ToyRun(sp.dataset, sp.method, sp.seed, sp.hparams, met, hist, fake, real, dens,
                           budget_curve(kept, sp.dataset, sp.seed, n_samples=cfg.n_samples, device=device,
                                        mlp=sp.mlp)))
    return runs


def run_toy2d(cfg: Toy2dConfig) -> list[ToyRun]:
    """Train and evaluate every (dataset, model, seed) of cfg; densities are kept for the first seed.

    cfg.budget: also measure KL/JSD at log-spaced steps along each run (ToyRun.budget; see budget_steps).
    cfg.engine: "single" (one Trainer per run, checkpoints <ckpt_dir>/<dataset>/<model>/seed<k>/) or "stack"
    (the runs of each method as one batched model, checkpoints <ckpt_dir>/stacks/<method>-<runs>/).
    Every value was checked when cfg was built (Toy2dConfig), before any training or file.
    """
    return train_and_evaluate(cfg.specs(), cfg)


def training_curves(runs: list[ToyRun], prefix: str = "") -> dict[str, list]:
    """{"<prefix><dataset>/<model>/seed<k>": history} for `sivae.runinfo.log_curves` (DVCLive)."""
    return {f"{prefix}{r.dataset}/{r.model}/seed{r.seed}": r.history for r in runs}


def summarize(runs: list[ToyRun]) -> dict:
    """{dataset: {model: {metric: {"mean", "std", "n"}}}} over seeds (std with ddof=1; 0 for one seed)."""
    table: dict = {}
    for r in runs:
        table.setdefault(r.dataset, {}).setdefault(r.model, []).append(r.metrics)
    out = {}
    for d, per_model in table.items():
        for mo, mets in per_model.items():
            out.setdefault(d, {})[mo] = {k: seed_stats([x[k] for x in mets]) for k in mets[0]}
    return out


def flat_summary(summary: dict) -> dict:
    """summarize's {dataset: {model: {metric: {"mean", "std", "n"}}}} as metrics.json holds it:
    {dataset: {model: {metric: mean, "<metric>_std": std}}}, 6 significant digits; gnELBO (~1e-7) as
    "gnelbo_x1e7" (sivae.runinfo.in_file_units)."""
    sig = lambda x: float(f"{x:.6g}")
    return {d: {mo: in_file_units({k: sig(v["mean"]) for k, v in mets.items()} | {
        f"{k}_std": sig(v["std"]) for k, v in mets.items()}) for mo, mets in per.items()}
        for d, per in summary.items()}


def _fmt(mean: float, std: float) -> str:
    if mean != 0 and (abs(mean) < 1e-2 or abs(mean) >= 1e4):
        return f"{mean:.3e} ± {std:.1e}"
    return f"{mean:.3f} ± {std:.3f}"


def write_table2(summary: dict, metrics_path, table_path, meta: dict | None = None) -> str:
    """Write the DVC metrics JSON and a markdown Table 2 (ours beside the paper's). Returns the markdown."""
    write_json(flat_summary(summary), metrics_path)
    present = [m for m in METHOD_TITLES if any(m in per for per in summary.values())]
    lines = ["| dataset | metric | " + " | ".join(f"{METHOD_TITLES[m]} (ours)" for m in present)
             + " | paper VAE / IntroVAE / S-IntroVAE |", "|---|---|" + "---|" * (len(present) + 1)]
    for d, per in summary.items():
        # Table 2's metrics, then Figure 2 in numbers (ours only): the density's share off the data's support,
        # the samples' share on it, and on 8 Gaussians how many of the 8 modes are drawn
        shown = [k for k in ("kl", "jsd", "gnelbo", "jsd_textbook", "off_support_mass", "near_support_share",
                             "modes_covered") if any(k in per[m] for m in present if m in per)]
        for k in shown:
            name, x = METRICS_FILE_SCALES.get(k, (k, 1.0))   # gnELBO x1e7, the paper's printed scale
            cells = [_fmt(x * per[m][k]["mean"], x * per[m][k]["std"]) if m in per and k in per[m] else "-"
                     for m in present]
            paper = " / ".join(f"{a:g} ± {b:g}" for a, b in PAPER_TABLE2[d][k]) if k in PAPER_TABLE2[d] else "n/a"
            lines.append(f"| {TOY_DATASETS[d].title} | {name} | " + " | ".join(cells) + f" | {paper} |")
    return write_markdown(lines, table_path, meta=meta)
