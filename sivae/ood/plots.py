"""Figure 8: histograms of the log-likelihood estimates of train, test and OOD images, per model."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..paper import METHOD_TITLES
from ..plots import finish_figure

__all__ = ["plot_figure8"]

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
