"""Section 6.2 (Figure 3), Appendix 9.5 (Figure 21) and the beta_neg sensitivity of Soft-IntroVAE.

Everything trains and evaluates through `sivae.toy2d.run_toy2d` (the Table 2 code path:
same trainer, losses, data and metrics); this module only chooses which hyper-parameter to
vary, groups the runs and draws the figures.

- `run_grid`: one hyper-parameter (the IntroVAE margin m, or Soft-IntroVAE's beta_neg) over a
  list of values, every other one from Table 5. A value gets its own checkpoint folder, so a
  value that appears twice (the Table 5 beta_neg in the band and in the sensitivity grid)
  trains once and is reloaded the second time.
- `summarize_grid`: KL/JSD mean and std over seeds per value, plus, for the margin sweep, how
  often the batch-mean KL(fake) sat above m: there the encoder's hinge
  beta_neg * [m - KL(x_f)]^+ (Eq. 2) is zero and passes no adversarial gradient.
- `run_collapse`: a beta-VAE with beta_kl >> beta_rec against Soft-IntroVAE with the same
  beta_rec, beta_kl (Appendix 9.5): the VAE's KL(real) should vanish.
"""
from __future__ import annotations

import inspect
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError, check_choice
from ..paper import TABLE5
from ..params import parse_number, parse_numbers, seeds_from
from ..runinfo import check_writable, write_json
from ..stats import seed_stats
from ..toy2d.study import ToyRun, check_toy2d, run_specs, specs_from_check, summarize
from ..toy2d.study import training_curves as toy_curves

__all__ = ["check_parameters", "GRID_NAMES", "value_key", "run_grid", "summarize_grid", "run_collapse", "summarize_collapse",
           "spread_ratio", "write_metrics", "table5_value", "check_subset", "margin_table",
           "training_curves"]


def check_subset(name: str, values, allowed):
    """Raise ConfigError unless every value is one of `allowed` (e.g. curve_margins within margins)."""
    missing = [v for v in values if v not in allowed]
    if missing:
        raise ConfigError(f"{name} {missing} are not among {allowed}")


GRID_NAMES = ("m", "beta_neg", "beta_rec", "beta_kl")   # the hyper-parameters run_grid can vary


def check_parameters(*, seed, device, dataset, n_seeds, n_iter, batch_size, lr, lr_milestones, num_vae, gamma_r,
                     margins, curve_margins, beta_negs, collapse_beta_rec, collapse_beta_kl, collapse_beta_neg,
                     n_samples, grid_size, engine, ckpt_dir="outputs/stability/checkpoints", outputs=()) -> dict:
    """The stage's preflight: every parameter of notebook 03 checked in a second, before anything is trained or
    written: one ConfigError naming the bad one (the margin grid, the beta_neg grid and both collapse runs, each
    through check_toy2d as run_grid / run_collapse will), then OutputError if ckpt_dir or one of `outputs`
    (figure folder, metrics, run info, live folder) cannot be written.

    Returns:
        seeds, margins, curve_margins and beta_negs parsed.
    """
    ms, curve_ms, bnegs = (list(parse_numbers(k, v, positive=True)) for k, v in
                           (("margins", margins), ("curve_margins", curve_margins), ("beta_negs", beta_negs)))
    check_subset("curve_margins", curve_ms, ms)
    seeds = seeds_from(seed, n_seeds)
    kw = dict(n_iter=n_iter, batch_size=batch_size, lr=lr, lr_milestones=lr_milestones, num_vae=num_vae,
              gamma_r=gamma_r, device=device, n_samples=n_samples, grid_size=grid_size, engine=engine,
              ckpt_dir=ckpt_dir)
    for m in ms:
        check_toy2d(dataset, "introvae", seeds, m=m, **kw)
    for b in bnegs:
        check_toy2d(dataset, "soft_intro_vae", seeds, beta_neg=b, **kw)
    collapse = {"beta_rec": collapse_beta_rec, "beta_kl": collapse_beta_kl}
    for name, v in (*collapse.items(), ("beta_neg", collapse_beta_neg)):   # named as the notebook's parameters
        parse_number(f"collapse_{name}", v)
    check_toy2d(dataset, "vae", seeds, **collapse, **kw)
    check_toy2d(dataset, "soft_intro_vae", seeds, **collapse, beta_neg=collapse_beta_neg, **kw)
    check_writable(ckpt_dir, *outputs)
    return dict(seeds=seeds, margins=ms, curve_margins=curve_ms, beta_negs=bnegs)



def _check_run_args(kw: dict, fixed: tuple, ckpt_dir) -> None:
    """ConfigError unless kw holds only run_toy2d's training/evaluation arguments, none of `fixed`."""
    allowed = set(inspect.signature(check_toy2d).parameters) - {"datasets", "methods", "seeds", "ckpt_dir", *fixed}
    given_twice = sorted(set(kw) & set(fixed))
    if given_twice:
        raise ConfigError(f"{', '.join(given_twice)}: set by this function's own arguments; do not pass it again")
    unknown = sorted(set(kw) - allowed)
    if unknown:
        raise ConfigError(f"unknown argument(s) {', '.join(unknown)}; give run_toy2d's: {', '.join(sorted(allowed))}")
    missing = [k for k in ("n_iter", "batch_size") if k not in kw]
    if missing:
        raise ConfigError(f"missing argument(s) {', '.join(missing)}: give n_iter and batch_size")
    if not isinstance(ckpt_dir, (str, os.PathLike)) or not str(ckpt_dir).strip():
        raise ConfigError(f"ckpt_dir must be a folder path, got {ckpt_dir!r}")


def value_key(name: str, value: float) -> str:
    """A metrics/folder key without dots (DVC flattens nested metrics on '.'): m=0.1 -> 'm_0p1'."""
    return f"{name}_{value:g}".replace(".", "p").replace("+", "")


def run_grid(dataset: str, model: str, name: str, values, seeds, *, ckpt_dir, **kw) -> dict[float, list[ToyRun]]:
    """Train and evaluate `model` on `dataset` for each value of one hyper-parameter.

    Args:
        name: "m" or "beta_neg" (or "beta_rec", "beta_kl"); the others come from Table 5.
        values: the values of `name`. seeds: the seeds of every value.
        ckpt_dir: checkpoints go to <ckpt_dir>/<model>_<value_key>/...
        kw: run_toy2d's training and evaluation arguments (n_iter, batch_size, lr, device, ...).
    Returns:
        {value: [ToyRun per seed]} in the order given.

    Every value and argument is checked (check_toy2d) before the first run trains.
    """
    check_choice("name", name, GRID_NAMES)
    others = sorted(set(kw) & (set(GRID_NAMES) - {name}))
    if others:
        raise ConfigError(f"{', '.join(others)}: run_grid varies {name} and takes Table 5's value for the other "
                          "loss weights; do not pass them")
    _check_run_args(kw, (name,), ckpt_dir)
    if not isinstance(values, (str, int, float)):
        try:
            values = list(values)
        except TypeError:
            raise ConfigError(f"{name} values must be a list of numbers, got {values!r}") from None
    values = parse_numbers(f"{name} values", values, nonnegative=True)
    dirs = [Path(ckpt_dir) / f"{model}_{value_key(name, v)}" for v in values]
    oks = [check_toy2d(dataset, model, seeds, **{name: v}, ckpt_dir=d, **kw) for v, d in zip(values, dirs)]
    # one list of runs, so that engine="stack" trains the whole grid as a few stacks
    runs = run_specs([sp for ok, d in zip(oks, dirs) for sp in specs_from_check(ok, d)], oks[0],
                     stack_dir=Path(ckpt_dir) / "stacks")
    n = len(oks[0]["seeds"])
    return {v: runs[i * n:(i + 1) * n] for i, v in enumerate(values)}


def _last(history: list, key: str) -> float:
    vals = [h[key] for h in history if key in h]
    return float(vals[-1]) if vals else float("nan")


def summarize_grid(grid: dict[float, list[ToyRun]]) -> dict[float, dict]:
    """Per value: kl, jsd, gnelbo (mean and *_std over seeds), final KL(fake), and for IntroVAE
    the fraction of logged iterations (all seeds) at which the batch-mean KL(fake) exceeded m."""
    out = {}
    for v, runs in grid.items():
        s = summarize(runs)[runs[0].dataset][runs[0].model]
        row = {k: s[k]["mean"] for k in ("kl", "jsd", "gnelbo")} | {f"{k}_std": s[k]["std"] for k in ("kl", "jsd")}
        row["kl_fake_final"] = float(np.mean([_last(r.history, "kl_fake") for r in runs]))
        if runs[0].model == "introvae":
            above = [h["kl_fake"] > r.hparams["m"] for r in runs for h in r.history if "kl_fake" in h]
            row["frac_kl_fake_above_m"] = float(np.mean(above)) if above else float("nan")
        out[v] = row
    return out


def spread_ratio(summary: dict[float, dict], metric: str = "kl") -> float:
    """max / min over the grid of the mean `metric`: how much the choice of the value matters."""
    vals = [row[metric] for row in summary.values()]
    return float(max(vals) / min(vals)) if min(vals) > 0 else float("inf")


def run_collapse(dataset: str, seeds, *, beta_rec: float, beta_kl: float, beta_neg: float, ckpt_dir,
                 **kw) -> dict[str, list[ToyRun]]:
    """Appendix 9.5: beta-VAE and Soft-IntroVAE with the same beta_rec, beta_kl (beta_kl >> beta_rec).

    Returns:
        {"vae": [ToyRun per seed], "soft_intro_vae": [...]}.

    Both runs' arguments are checked (check_toy2d) before the first one trains.
    """
    _check_run_args(kw, ("beta_rec", "beta_kl", "beta_neg", "m"), ckpt_dir)
    hp = dict(beta_rec=beta_rec, beta_kl=beta_kl)
    vae = check_toy2d(dataset, "vae", seeds, **hp, ckpt_dir=Path(ckpt_dir) / "collapse_vae", **kw)
    soft = check_toy2d(dataset, "soft_intro_vae", seeds, **hp, beta_neg=beta_neg,
                       ckpt_dir=Path(ckpt_dir) / "collapse_soft_intro_vae", **kw)
    stacks = Path(ckpt_dir) / "stacks"
    return {"vae": run_specs(specs_from_check(vae, Path(ckpt_dir) / "collapse_vae"), vae, stack_dir=stacks),
            "soft_intro_vae": run_specs(specs_from_check(soft, Path(ckpt_dir) / "collapse_soft_intro_vae"), soft,
                                        stack_dir=stacks)}


def summarize_collapse(runs: dict[str, list[ToyRun]]) -> dict[str, dict]:
    """Per model: KL(real) at the end of training (collapse: ~0), its peak, and KL/JSD of the samples."""
    out = {}
    for model, rs in runs.items():
        s = summarize(rs)[rs[0].dataset][model]
        final = seed_stats([_last(r.history, "kl_real") for r in rs])
        out[model] = {"kl_real_final": final["mean"], "kl_real_final_std": final["std"],
                      "kl_real_max": float(np.mean([max(h["kl_real"] for h in r.history) for r in rs])),
                      "kl": s["kl"]["mean"], "jsd": s["jsd"]["mean"]}
    return out


def margin_table(margin: dict[float, dict]) -> str:
    """Markdown: per m, KL and JSD (mean ± std), final KL(fake) and how often KL(fake) > m."""
    lines = ["| m | KL | JSD | final KL(fake) | share of training with KL(fake) > m |", "|---|---|---|---|---|"]
    for m in sorted(margin):
        r = margin[m]
        lines.append(f"| {m:g} | {r['kl']:.3g} ± {r['kl_std']:.2g} | {r['jsd']:.3g} ± {r['jsd_std']:.2g} | "
                     f"{r['kl_fake_final']:.3g} | {r.get('frac_kl_fake_above_m', float('nan')):.0%} |")
    return "\n".join(lines) + "\n"


def write_metrics(path, margin: dict, soft: dict, beta_neg: dict, collapse: dict, meta: dict) -> dict:
    """The DVC metrics file: margin sweep, Soft-IntroVAE band, beta_neg sweep, collapse, spreads."""
    def rnd(d):
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in d.items()}
    out = {"margin_sweep": {value_key("m", v): rnd(r) for v, r in margin.items()},
           "soft_intro_vae": rnd(soft),
           "beta_neg_sweep": {value_key("beta_neg", v): rnd(r) for v, r in beta_neg.items()},
           "collapse": {k: rnd(v) for k, v in collapse.items()},
           "sensitivity": {"introvae_kl_max_over_min": round(spread_ratio(margin), 4),
                           "soft_intro_vae_kl_max_over_min": round(spread_ratio(beta_neg), 4)},
           "meta": meta}
    write_json(out, path)
    return out


def table5_value(dataset: str, model: str, name: str) -> float | None:
    """One Table 5 entry, e.g. table5_value('8gaussians', 'introvae', 'm') -> 1.0."""
    return dict(zip(("beta_rec", "beta_kl", "beta_neg", "m"), TABLE5[(dataset, model)]))[name]


def training_curves(margin_runs: dict, beta_neg_runs: dict, collapse_runs: dict) -> dict[str, list]:
    """Every stability run's history under "introvae_m<m>/...", "soft_intro_vae_beta_neg<b>/..." and
    "collapse/...", for `sivae.runinfo.log_curves` (the KL(fake)-against-m curves among them)."""
    out = {}
    for value, runs in margin_runs.items():
        out.update(toy_curves(runs, f"introvae_m{value:g}/"))
    for value, runs in beta_neg_runs.items():
        out.update(toy_curves(runs, f"soft_intro_vae_beta_neg{value:g}/"))
    for runs in collapse_runs.values():
        out.update(toy_curves(runs, "collapse/"))
    return out
