"""Figures of the stability section: Figure 3 (KL/JSD against m), KL(fake) curves, Figure 21, beta_neg."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..paper import METHOD_TITLES
from ..plots import finish_figure
from ..toy2d.data import get_toy_dataset
from ..toy2d.plots import plot_samples
from ..toy2d.study import ToyRun

__all__ = ["plot_margin_sweep", "plot_kl_fake_curves", "plot_collapse", "plot_beta_neg_sweep"]


def _band(ax, row: dict, metric: str, label: str):
    mean, std = row[metric], row[f"{metric}_std"]
    ax.axhspan(mean - std, mean + std, color="tab:green", alpha=0.2, lw=0)
    ax.axhline(mean, color="tab:green", lw=1.5, label=label)


def plot_margin_sweep(margin: dict, soft: dict, paper_m: float | None = None, path=None, soft_label=None):
    """Figure 3: IntroVAE KL and JSD against m (mean ± std over seeds); Soft-IntroVAE as a band."""
    ms = sorted(margin)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric in zip(axes, ("kl", "jsd")):
        ax.errorbar(ms, [margin[m][metric] for m in ms], yerr=[margin[m][f"{metric}_std"] for m in ms],
                    marker="o", capsize=3, color="tab:red", label="IntroVAE")
        _band(ax, soft, metric, soft_label or "Soft-IntroVAE (no m)")
        if paper_m is not None:
            ax.axvline(paper_m, color="gray", ls=":", lw=1, label=f"Table 5 m = {paper_m:g}")
        ax.set_xscale("log"), ax.set_yscale("log")
        ax.set_xlabel("margin m"), ax.set_title(f"{metric.upper()} (lower is better)")
    axes[0].legend(fontsize=7)
    return finish_figure(fig, path)


def plot_kl_fake_curves(grid: dict[float, list[ToyRun]], show, path=None):
    """KL(fake) over training for a few margins (first seed), each with its m as a dashed line.

    Above its line the hinge [m - KL(x_f)]^+ is zero: the encoder gets no adversarial gradient.
    """
    fig, ax = plt.subplots(figsize=(6, 3.6))
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(show)))
    for m, c in zip(show, colors):
        r = grid[m][0]
        steps, kl_f = zip(*[(h["step"], h["kl_fake"]) for h in r.history if "kl_fake" in h])
        ax.plot(steps, kl_f, color=c, lw=1.5, label=f"KL(fake), m = {m:g}")
        ax.axhline(m, color=c, ls="--", lw=1)
        ax.fill_between(steps, m, kl_f, where=np.asarray(kl_f) > m, color=c, alpha=0.15, lw=0)
    ax.set_yscale("log"), ax.set_xlabel("iteration"), ax.set_ylabel("batch mean KL(q(z|x_f) || p(z))")
    ax.set_title("IntroVAE: shaded = KL(fake) > m, hinge gradient zero", fontsize=9)
    ax.legend(fontsize=7)
    return finish_figure(fig, path)


def plot_collapse(runs: dict[str, list[ToyRun]], path=None):
    """Figure 21: KL(real) over training (every seed) and the first seed's samples of each model."""
    first = {k: v[0] for k, v in runs.items()}
    fig, axes = plt.subplots(1, 2 + len(runs), figsize=(4.2 + 2.8 * (1 + len(runs)), 3.2),
                             gridspec_kw={"width_ratios": [1.5] + [1] * (1 + len(runs))})
    colors = {"vae": "tab:red", "soft_intro_vae": "tab:green"}
    for model, rs in runs.items():
        for i, r in enumerate(rs):
            ax_steps, kl = zip(*[(h["step"], h["kl_real"]) for h in r.history])
            axes[0].plot(ax_steps, kl, color=colors.get(model), lw=1, alpha=1 if i == 0 else 0.5,
                         label=METHOD_TITLES[model] if i == 0 else None)
    hp = first["vae"].hparams
    axes[0].set_yscale("symlog", linthresh=1e-3), axes[0].set_xlabel("iteration")
    axes[0].set_title(f"KL(real), beta_rec={hp['beta_rec']:g}, beta_kl={hp['beta_kl']:g}", fontsize=9)
    axes[0].legend(fontsize=7)
    lim = get_toy_dataset(first["vae"].dataset).limit
    plot_samples(axes[1], first["vae"].real, lim, "tab:blue", "real")
    for ax, (model, r) in zip(axes[2:], first.items()):
        plot_samples(ax, r.fake, lim, colors.get(model), f"{METHOD_TITLES[model]} samples")
    return finish_figure(fig, path)


def plot_beta_neg_sweep(summary: dict[float, dict], margin: dict | None = None, table5_beta_neg=None, path=None):
    """Soft-IntroVAE KL and JSD against beta_neg; the IntroVAE range over m drawn for scale."""
    bs = sorted(summary)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric in zip(axes, ("kl", "jsd")):
        ax.errorbar(bs, [summary[b][metric] for b in bs], yerr=[summary[b][f"{metric}_std"] for b in bs],
                    marker="o", capsize=3, color="tab:green", label="Soft-IntroVAE")
        if margin:
            vals = [r[metric] for r in margin.values()]
            ax.axhspan(min(vals), max(vals), color="tab:red", alpha=0.12, lw=0, label="IntroVAE range over m")
        if table5_beta_neg is not None:
            ax.axvline(table5_beta_neg, color="gray", ls=":", lw=1, label=f"Table 5 beta_neg = {table5_beta_neg:g}")
        ax.set_xscale("log"), ax.set_yscale("log")
        ax.set_xticks(bs, [f"{b:g}" for b in bs]), ax.minorticks_off()
        ax.set_xlabel("beta_neg"), ax.set_title(f"{metric.upper()} (lower is better)")
    axes[0].legend(fontsize=7)
    return finish_figure(fig, path)


