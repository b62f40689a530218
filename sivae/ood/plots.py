"""Figure 8: histograms of the log-likelihood estimates of train, test and OOD images, per model."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..paper import METHOD_TITLES
from ..plots import finish_figure

__all__ = ["plot_figure8", "plot_score_histograms"]

COLORS = ("tab:blue", "tab:green", "tab:red", "tab:orange", "tab:purple", "tab:brown")


def _label(name: str, result) -> str:
    label = {"train": "in-dist. train", "test": "in-dist. test"}.get(name, f"OOD {name}")
    if name in result.auroc:
        label += f" (AUROC {result.auroc[name]['loglik']:.3f})"
    below, above = result.histograms["outside"][name]
    return label + (f" [{below + above} off the plotted range]" if below + above else "")


def plot_figure8(runs, in_dist: str, path=None, title_suffix: str = ""):
    """One panel per method: density histograms of log p(x) estimates (nats) of every set.

    Args:
        runs: sivae.oodstudy.OODRun list; the first seed of each method trained on in_dist is drawn.
        in_dist: the in-distribution dataset whose models are shown.
        path: where to save (None: don't). title_suffix: appended to each panel title.
    Returns:
        the matplotlib Figure.
    """
    first = {}
    for r in runs:
        if r.in_dist == in_dist:
            first.setdefault(r.method, r)
    fig, axes = plt.subplots(1, len(first), figsize=(5.2 * len(first), 3.6), squeeze=False)
    for ax, (method, r) in zip(axes[0], first.items()):
        h = r.result.histograms
        edges = np.asarray(h["edges"])
        for color, (name, dens) in zip(COLORS, h["density"].items()):
            ax.stairs(dens, edges, fill=True, alpha=0.35, color=color, label=_label(name, r.result))
            ax.stairs(dens, edges, color=color, lw=1)
        ax.set_title(f"{METHOD_TITLES.get(method, method)} trained on {in_dist} (seed {r.seed}){title_suffix}",
                     fontsize=9)
        ax.set_xlabel("log-likelihood estimate (nats)"), ax.set_ylabel("density")
        ax.legend(fontsize=7, loc="best")
    return finish_figure(fig, path)


def plot_score_histograms(hists: dict, pair: tuple, path=None):
    """The beyond-the-paper figure: one row per method, one panel per score, density histograms of the
    in-distribution test images and the OOD set of one pair (sivae.ood.near.histograms_for).

    Args:
        hists: {method: {score: histogram dict with "edges", "density", "outside", "auroc", "seed"}}.
        pair: (in-distribution label, OOD set). path: where to save (None: don't).
    Returns:
        the matplotlib Figure.
    """
    from .scores import SCORE_TITLES
    methods = list(hists)
    scores = list(next(iter(hists.values()))) if hists else []
    fig, axes = plt.subplots(max(1, len(methods)), max(1, len(scores)), figsize=(3.3 * max(1, len(scores)),
                                                                               2.7 * max(1, len(methods))),
                             squeeze=False)
    for row, m in zip(axes, methods):
        for ax, s in zip(row, scores):
            h = hists[m][s]
            edges = np.asarray(h["edges"])
            for color, (name, dens) in zip(COLORS[1:], h["density"].items()):
                off = sum(h["outside"][name])
                ax.stairs(dens, edges, fill=True, alpha=0.35, color=color,
                          label=name + (f" [{off} off range]" if off else ""))
                ax.stairs(dens, edges, color=color, lw=1)
            ax.set_title(f"{METHOD_TITLES.get(m, m)} (seed {h['seed']})\n{SCORE_TITLES.get(s, s)}: "
                         f"AUROC {h['auroc']:.3f}", fontsize=8)
            ax.set_xlabel("score (higher = more in-distribution)", fontsize=7)
            ax.tick_params(labelsize=6)
            ax.legend(fontsize=6, loc="best")
    in_ds, ood = pair
    fig.suptitle(f"trained on {in_ds}, OOD: {ood}", fontsize=9)
    return finish_figure(fig, path)
