"""Section 6.1: train VAE, IntroVAE and Soft-IntroVAE on the 2D datasets; Figure 2 and Table 2.

`run_toy2d` is what notebooks/02_toy2d.py calls: for each dataset, model and seed it trains
with the Table 5 hyper-parameters (or overrides), checkpoints under ckpt_dir, evaluates the
paper's KL/JSD/gnELBO (plus the textbook JSD) and keeps samples and densities for plotting.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DivergenceError, check_choice, check_nonnegative
from ..paper import METHOD_TITLES, PAPER_TABLE2, TABLE5
from ..params import MAX_ITERATIONS, parse_bool, parse_int, parse_list, parse_number, parse_numbers, parse_seeds
from ..runinfo import write_json, write_markdown
from ..runtime import check_device, resolve_device
from ..stack import StackRun, StackTrainer, stack_groups
from ..stats import seed_stats
from ..train import MAX_BATCH_SIZE, METHODS, TrainConfig, Trainer
from . import metrics as M
from .data import TOY_DATASETS, get_toy_dataset
from .models import MLPConfig, build_mlp_pair

__all__ = ["resolve_hparams", "toy_config", "train_toy", "evaluate_toy", "check_toy2d",
           "run_toy2d", "MAX_GRID_SIZE", "MAX_SAMPLES",
           "summarize", "flat_summary", "write_table2", "budget_steps", "sample_metrics", "budget_curve",
           "write_budget", "RunSpec", "train_and_evaluate", "specs_from_check", "run_specs", "ENGINES", "STACK_MAX_RUNS",
           "training_curves"]

TABLE5_SENTINEL = "table5"
# The paper prints gnELBO rescaled; x1e7 puts our values (~1e-7, a 1024^2 grid) on its printed
# scale. Only the markdown table uses it; metrics.json holds the raw values.
GNELBO_DISPLAY_SCALE = 1e7
MAX_GRID_SIZE = 4096       # the gnELBO/density grid is grid_size^2 points (paper: 1024)
MAX_SAMPLES = 1_000_000    # samples per evaluation histogram, decoded in one pass (paper: 5000)
# How runs are trained: "single" = one Trainer per run; "stack" = runs of one method as one batched model
# (sivae.stack; every run's trajectory is its Trainer's, up to rounding). At most STACK_MAX_RUNS runs per stack:
# on a 2-core CPU (benchmarks/bench_stack.py) 12 runs of the default size train 1.4x faster as a stack than one by
# one, 36 runs only 1.05x (batch 128) and 0.73x (batch 512): the stack is compute-bound there and large stacks
# leave the caches.
ENGINES = ("single", "stack")
STACK_MAX_RUNS = 12


def resolve_hparams(dataset: str, model: str, beta_rec=TABLE5_SENTINEL, beta_kl=TABLE5_SENTINEL,
                    beta_neg=TABLE5_SENTINEL, m=TABLE5_SENTINEL) -> dict:
    """Table 5 values for (dataset, model), each replaced by the given number unless 'table5'.

    Raises ConfigError for unknown names and for negative or NaN values.
    """
    parse_list("dataset", dataset, list(TOY_DATASETS))
    parse_list("model", model, METHODS)
    defaults = dict(zip(("beta_rec", "beta_kl", "beta_neg", "m"), TABLE5[(dataset, model)]))
    given = dict(beta_rec=beta_rec, beta_kl=beta_kl, beta_neg=beta_neg, m=m)
    out = {}
    for name, value in given.items():
        if isinstance(value, str) and value == TABLE5_SENTINEL:
            value = defaults[name]
        if value is not None:
            out[name] = check_nonnegative(name, value)
    return out


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


def toy_config(model: str, seed: int, *, n_iter: int, batch_size: int, lr: float, lr_milestones, num_vae: int,
               gamma_r: float, progress, checkpoint_every: int, hparams: dict) -> TrainConfig:
    """The TrainConfig of one 2D run (Table 5 weights in `hparams`; s = 1/d_x = 1/2)."""
    return TrainConfig(method=model, n_iter=n_iter, batch_size=batch_size, lr=lr, gamma_r=gamma_r,
                       lr_milestones=parse_numbers("lr_milestones", lr_milestones, nonnegative=True, at_most=1,
                                                   allow_empty=True),
                       num_vae=num_vae if model != "vae" else 0, seed=seed, progress=progress,
                       checkpoint_every=checkpoint_every, scale=0.5, **hparams)


def train_toy(dataset: str, model: str, seed: int, *, n_iter: int, batch_size: int, lr: float = 2e-4,
              lr_milestones="0.333333,0.5", num_vae: int = 0, gamma_r: float = 1e-8, ckpt_dir=None, device="auto",
              progress=True,
              checkpoint_every: int = 1000, hparams: dict | None = None, keep_states_at=()):
    """Train one 2D model; returns (encoder, decoder, history, kept states). Resumes from ckpt_dir/last.pt.

    keep_states_at: steps whose weights are kept ({step: {"encoder", "decoder"}}) for budget curves.
    """
    data = get_toy_dataset(dataset)
    hp = hparams if hparams is not None else resolve_hparams(dataset, model)
    cfg = toy_config(model, seed, n_iter=n_iter, batch_size=batch_size, lr=lr, lr_milestones=lr_milestones,
                     num_vae=num_vae, gamma_r=gamma_r, progress=progress, checkpoint_every=checkpoint_every, hparams=hp)
    enc, dec = build_mlp_pair(MLPConfig(), seed=seed)
    trainer = Trainer(enc, dec, lambda step, g: data.sample(batch_size, g), cfg,
                      ckpt_dir=ckpt_dir, device=resolve_device(device), keep_states_at=keep_states_at)
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
               "jsd_textbook": M.textbook_jsd(h_real, h_fake),
               "off_support_mass": M.off_support_mass(grid, grid_nelbo, data.sample(200_000, torch.Generator().manual_seed(
                   20_000 + seed)).numpy(), data.limit)}
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


def budget_curve(kept: dict, dataset: str, seed: int, n_samples: int = 5000, device="cpu") -> dict:
    """{step: {"kl", "jsd"}} of the weights kept along one run (no retraining)."""
    _, dec = build_mlp_pair(MLPConfig(), seed=seed)
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


@dataclass
class RunSpec:
    """One 2D run to train: its data, method, seed, loss weights and checkpoint folder."""
    dataset: str
    method: str
    seed: int
    hparams: dict
    ckpt_dir: Path
    keep_density: bool = False


def _train_stacks(specs: list[RunSpec], cfgs: list[TrainConfig], *, batch_size: int, device, keep_states_at, stack_dir):
    """Train the specs as stacks of one method (at most STACK_MAX_RUNS each); the results in the specs' order."""
    names = [str(sp.ckpt_dir) for sp in specs]
    results: dict = {}
    for group in stack_groups(dict(zip(names, cfgs)), max_runs=STACK_MAX_RUNS):
        runs = []
        for name in group:
            k = names.index(name)
            data = get_toy_dataset(specs[k].dataset)
            enc, dec = build_mlp_pair(MLPConfig(), seed=specs[k].seed)
            runs.append(StackRun(name, enc, dec, lambda step, g, data=data: data.sample(batch_size, g), cfgs[k],
                                 keep_states_at=tuple(keep_states_at)))
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


def train_and_evaluate(specs: list[RunSpec], *, n_iter: int, batch_size: int, lr: float, lr_milestones, num_vae: int,
                       gamma_r: float, device, n_samples: int, grid_size: int, progress: bool, budget: bool,
                       engine: str = "single", stack_dir=None) -> list[ToyRun]:
    """Train every spec (one Trainer each, or as stacks: `engine`), then evaluate each (evaluate_toy).

    Arguments are those check_toy2d returns (already checked). stack_dir: where the stacks' checkpoints go
    (engine "stack"; one folder per stack, named after its method and its runs).
    """
    check_choice("engine", engine, ENGINES)
    cfgs = [toy_config(sp.method, sp.seed, n_iter=n_iter, batch_size=batch_size, lr=lr, lr_milestones=lr_milestones,
                       num_vae=num_vae, gamma_r=gamma_r, progress=progress, checkpoint_every=1000, hparams=sp.hparams)
            for sp in specs]
    keep = budget_steps(n_iter) if budget else ()
    if engine == "stack":
        trained = _train_stacks(specs, cfgs, batch_size=batch_size, device=device, keep_states_at=keep,
                                stack_dir=stack_dir)
    else:
        trained = [train_toy(sp.dataset, sp.method, sp.seed, n_iter=n_iter, batch_size=batch_size, lr=lr,
                             lr_milestones=lr_milestones, num_vae=num_vae, gamma_r=gamma_r, ckpt_dir=sp.ckpt_dir,
                             device=device, progress=progress, hparams=sp.hparams, keep_states_at=keep)
                   for sp in specs]
    runs = []
    for sp, (enc, dec, hist, kept) in zip(specs, trained):
        met, real, fake, dens = evaluate_toy(enc, dec, sp.dataset, sp.seed, n_samples=n_samples, grid_size=grid_size,
                                             device=device, keep_density=sp.keep_density)
        runs.append(ToyRun(sp.dataset, sp.method, sp.seed, sp.hparams, met, hist, fake, real, dens,
                           budget_curve(kept, sp.dataset, sp.seed, n_samples=n_samples, device=device)))
    return runs


def check_toy2d(datasets="all", methods="all", seeds=(0,), *, n_iter, batch_size, lr=2e-4,
                lr_milestones="0.333333,0.5", num_vae=0, gamma_r=1e-8, beta_rec=TABLE5_SENTINEL,
                beta_kl=TABLE5_SENTINEL, beta_neg=TABLE5_SENTINEL, m=TABLE5_SENTINEL,
                ckpt_dir="outputs/toy2d/checkpoints", device="auto", n_samples=5000, grid_size=1024, progress=True,
                budget=False, engine="single") -> dict:
    """Check every argument of run_toy2d without training: one ConfigError naming the first bad one.

    Checks: datasets / methods (known names), seeds (integers in [0, SEED_MAX]), n_iter (1..MAX_ITERATIONS),
    batch_size (1..MAX_BATCH_SIZE), num_vae (0..MAX_ITERATIONS), n_samples (1..MAX_SAMPLES), grid_size
    (2..MAX_GRID_SIZE), lr and gamma_r (finite, >= 0), lr_milestones (fractions in [0, 1]), the beta / m
    overrides (finite, >= 0, or 'table5'), ckpt_dir (a path), device, progress and budget (booleans),
    engine (one of ENGINES), and the TrainConfig of every run.

    Returns:
        the parsed values: datasets, methods, seeds, hparams {(dataset, method): dict}, device, and the
        integers n_iter, batch_size, num_vae, n_samples, grid_size, progress and budget.
    """
    ds, ms = parse_list("datasets", datasets, list(TOY_DATASETS)), parse_list("methods", methods, METHODS)
    seed_list = parse_seeds("seeds", seeds)
    ints = dict(n_iter=parse_int("n_iter", n_iter, 1, MAX_ITERATIONS),
                batch_size=parse_int("batch_size", batch_size, 1, MAX_BATCH_SIZE),
                num_vae=parse_int("num_vae", num_vae, 0, MAX_ITERATIONS),
                n_samples=parse_int("n_samples", n_samples, 1, MAX_SAMPLES),
                grid_size=parse_int("grid_size", grid_size, 2, MAX_GRID_SIZE))
    floats = dict(lr=parse_number("lr", lr), gamma_r=parse_number("gamma_r", gamma_r))
    parse_numbers("lr_milestones", lr_milestones, nonnegative=True, at_most=1, allow_empty=True)
    hps = {(d, mo): resolve_hparams(d, mo, beta_rec, beta_kl, beta_neg, m) for d in ds for mo in ms}
    if not isinstance(ckpt_dir, (str, os.PathLike)) or not str(ckpt_dir).strip():
        raise ConfigError(f"ckpt_dir must be a folder path, got {ckpt_dir!r}")
    flags = dict(progress=parse_bool("progress", progress), budget=parse_bool("budget", budget))
    dev = check_device(device)
    check_choice("engine", engine, ENGINES)
    for (d, mo), hp in hps.items():   # what TrainConfig checks too, before anything is trained
        for seed in seed_list:
            toy_config(mo, seed, n_iter=ints["n_iter"], batch_size=ints["batch_size"], lr=lr,
                       lr_milestones=lr_milestones, num_vae=ints["num_vae"], gamma_r=gamma_r,
                       progress=flags["progress"], checkpoint_every=1000, hparams=hp)
    return dict(datasets=ds, methods=ms, seeds=seed_list, hparams=hps, device=dev, engine=engine,
                lr_milestones=lr_milestones, **floats, **ints, **flags)


def specs_from_check(ok: dict, ckpt_dir) -> list[RunSpec]:
    """The RunSpecs of a check_toy2d result: every (dataset, method, seed), checkpoints under
    <ckpt_dir>/<dataset>/<method>/seed<k>, the density kept for the first seed."""
    return [RunSpec(d, mo, seed, ok["hparams"][(d, mo)], Path(ckpt_dir) / d / mo / f"seed{seed}", keep_density=(i == 0))
            for d in ok["datasets"] for mo in ok["methods"] for i, seed in enumerate(ok["seeds"])]


def run_specs(specs: list[RunSpec], ok: dict, stack_dir) -> list[ToyRun]:
    """train_and_evaluate with the training and evaluation settings of a check_toy2d result."""
    keys = ("n_iter", "batch_size", "lr", "lr_milestones", "num_vae", "gamma_r", "device", "n_samples", "grid_size",
            "progress", "budget", "engine")
    return train_and_evaluate(specs, **{k: ok[k] for k in keys}, stack_dir=stack_dir)


def run_toy2d(datasets="all", methods="all", seeds=(0,), *, n_iter: int, batch_size: int, lr: float = 2e-4,
              lr_milestones="0.333333,0.5", num_vae: int = 0, gamma_r: float = 1e-8,
              beta_rec=TABLE5_SENTINEL, beta_kl=TABLE5_SENTINEL,
              beta_neg=TABLE5_SENTINEL, m=TABLE5_SENTINEL, ckpt_dir="outputs/toy2d/checkpoints",
              device="auto", n_samples: int = 5000, grid_size: int = 1024, progress=True,
              budget: bool = False, engine: str = "single") -> list[ToyRun]:
    """Train and evaluate every (dataset, model, seed); densities are kept for the first seed.

    budget: also measure KL/JSD at log-spaced steps along each run (ToyRun.budget; see budget_steps).
    engine: "single" (one Trainer per run, checkpoints <ckpt_dir>/<dataset>/<model>/seed<k>/) or "stack"
    (the runs of each method as one batched model, checkpoints <ckpt_dir>/stacks/<method>-<runs>/).

    All inputs are validated (check_toy2d) before any training starts or any file is written, so a typo
    fails at once with one ConfigError naming the parameter.
    """
    ok = check_toy2d(datasets, methods, seeds, n_iter=n_iter, batch_size=batch_size, lr=lr,
                     lr_milestones=lr_milestones, num_vae=num_vae, gamma_r=gamma_r, beta_rec=beta_rec,
                     beta_kl=beta_kl, beta_neg=beta_neg, m=m, ckpt_dir=ckpt_dir, device=device,
                     n_samples=n_samples, grid_size=grid_size, progress=progress, budget=budget, engine=engine)
    return run_specs(specs_from_check(ok, ckpt_dir), ok, stack_dir=Path(ckpt_dir) / "stacks")


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
    {dataset: {model: {metric: mean, "<metric>_std": std}}}, 6 significant digits (gnELBO is ~1e-7)."""
    sig = lambda x: float(f"{x:.6g}")
    return {d: {mo: {k: sig(v["mean"]) for k, v in mets.items()} | {
        f"{k}_std": sig(v["std"]) for k, v in mets.items()} for mo, mets in per.items()}
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
        for k in ("kl", "jsd", "gnelbo", "jsd_textbook"):
            x = GNELBO_DISPLAY_SCALE if k == "gnelbo" else 1.0
            cells = [_fmt(x * per[m][k]["mean"], x * per[m][k]["std"]) if m in per else "-" for m in present]
            paper = " / ".join(f"{a:g} ± {b:g}" for a, b in PAPER_TABLE2[d][k]) if k in PAPER_TABLE2[d] else "n/a"
            name = "gnelbo ×1e7" if k == "gnelbo" else k
            lines.append(f"| {TOY_DATASETS[d].title} | {name} | " + " | ".join(cells) + f" | {paper} |")
    return write_markdown(lines, table_path, meta=meta)
