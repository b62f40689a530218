"""Section 6.2 (Figure 3), Appendix 9.5 (Figure 21) and the beta_neg sensitivity of Soft-IntroVAE.

Everything trains and evaluates through `sivae.toy2d.study.train_and_evaluate` (the Table 2 code
path: same trainer, losses, data and metrics); `sivae.stability.config` chooses which
hyper-parameter to vary (one Toy2dConfig per value); this module trains the grids and sums them up.

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

import numpy as np

from ..runinfo import in_file_units, write_json
from ..stats import seed_stats
from ..toy2d.config import Toy2dConfig
from ..toy2d.study import ToyRun, summarize, train_and_evaluate
from ..toy2d.study import training_curves as toy_curves
from .config import StabilityConfig, value_key

__all__ = ["run_grid", "summarize_grid", "run_collapse", "summarize_collapse", "spread_ratio", "write_metrics",
           "margin_table", "training_curves"]


def run_grid(configs: dict[float, Toy2dConfig], stack_dir) -> dict[float, list[ToyRun]]:
    """Train and evaluate the runs of a grid (`sivae.stability.config.grid_configs`, or StabilityConfig.grids).

    Every value's runs go into one list, so that engine "stack" trains the whole grid as a few stacks
    (their checkpoints under stack_dir). Returns {value: [ToyRun per seed]} in the order given.
    """
    values = list(configs)
    first = configs[values[0]]
    runs = train_and_evaluate([sp for v in values for sp in configs[v].specs()], first, stack_dir=stack_dir)
    n = first.n_seeds
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


def run_collapse(cfg: StabilityConfig) -> dict[str, list[ToyRun]]:
    """Appendix 9.5: beta-VAE and Soft-IntroVAE with the same beta_rec, beta_kl (beta_kl >> beta_rec):
    cfg.collapse's two configurations. Returns {"vae": [ToyRun per seed], "soft_intro_vae": [...]}."""
    return {model: train_and_evaluate(c.specs(), c, stack_dir=cfg.stack_dir) for model, c in cfg.collapse.items()}


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
    def rnd(d):   # scaled metrics first (gnELBO ~1e-7 would round to 0), then 6 decimals
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in in_file_units(d).items()}
    out = {"margin_sweep": {value_key("m", v): rnd(r) for v, r in margin.items()},
           "soft_intro_vae": rnd(soft),
           "beta_neg_sweep": {value_key("beta_neg", v): rnd(r) for v, r in beta_neg.items()},
           "collapse": {k: rnd(v) for k, v in collapse.items()},
           "sensitivity": {"introvae_kl_max_over_min": round(spread_ratio(margin), 4),
                           "soft_intro_vae_kl_max_over_min": round(spread_ratio(beta_neg), 4)},
           "meta": meta}
    write_json(out, path)
    return out


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
