"""Figure 2 (samples and densities), training curves and the ipywidgets explorer of the 2D section."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

from ..plots import finish_figure, in_live_kernel  # noqa: F401 (in_live_kernel: for the notebook)
from .data import get_toy_dataset

__all__ = ["plot_samples", "plot_density", "plot_figure2", "plot_toy_history", "plot_budget", "toy_explorer"]


def plot_samples(ax, samples: np.ndarray, limit: float, color="tab:blue", title: str | None = None):
    """Scatter of 2D samples on the square [-limit, limit]^2."""
    ax.scatter(samples[:, 0], samples[:, 1], s=1.5, c=color, alpha=0.6, linewidths=0)
    ax.set_xlim(-limit, limit), ax.set_ylim(-limit, limit)
    ax.set_aspect("equal"), ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def plot_density(ax, density: np.ndarray, limit: float, title: str | None = None):
    """exp(-negative ELBO) over the grid (Figure 2's density panels), jet colour map."""
    ax.imshow(density, origin="lower", extent=(-limit, limit, -limit, limit), cmap="jet",
              interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def plot_figure2(runs, models, path=None, titles=None):
    """Figure 2: per dataset a row: real samples, then samples and density of each model.

    Args:
        runs: ToyRun list (the first seed of each (dataset, model) carries the density).
        models: model keys in column order. path: where to save (None: don't).
        titles: {model: display name}.
    Returns:
        the matplotlib Figure.
    """
    first = {}
    for r in runs:
        if r.density is not None:
            first.setdefault((r.dataset, r.model), r)
    datasets = list(dict.fromkeys(d for d, _ in first))
    ncol = 1 + 2 * len(models)
    fig, axes = plt.subplots(len(datasets), ncol, figsize=(1.9 * ncol, 2.0 * len(datasets)), squeeze=False)
    for i, d in enumerate(datasets):
        data = get_toy_dataset(d)
        any_run = next(r for (dd, _), r in first.items() if dd == d)
        plot_samples(axes[i, 0], any_run.real, data.limit, "tab:blue", "real" if i == 0 else None)
        axes[i, 0].set_ylabel(data.title)
        for j, mo in enumerate(models):
            r, name = first.get((d, mo)), (titles or {}).get(mo, mo)
            ax_s, ax_d = axes[i, 1 + 2 * j], axes[i, 2 + 2 * j]
            if r is None:
                ax_s.axis("off"), ax_d.axis("off")
                continue
            plot_samples(ax_s, r.fake, data.limit, "tab:green", f"{name} samples" if i == 0 else None)
            plot_density(ax_d, r.density, data.limit, f"{name} density" if i == 0 else None)
    return finish_figure(fig, path)


def plot_toy_history(runs, keys=("rec", "kl_real", "kl_fake"), path=None):
    """Training curves (one panel per key) of every run's first seed, by dataset and model."""
    seen, sel = set(), []
    for r in runs:
        if (r.dataset, r.model) not in seen:
            seen.add((r.dataset, r.model)), sel.append(r)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
    for ax, k in zip(axes[0], keys):
        for r in sel:
            pts = [(h["step"], h[k]) for h in r.history if k in h]
            if pts:
                ax.plot(*zip(*pts), label=f"{r.dataset}/{r.model}", lw=1)
        ax.set_title(k), ax.set_xlabel("iteration"), ax.set_yscale("symlog", linthresh=1e-2)
    axes[0, -1].legend(fontsize=6, loc="best")
    return finish_figure(fig, path)


def toy_explorer(runs, titles=None):
    """ipywidgets: pick dataset and model, see real samples, model samples and density.

    Returns the widget box, or None when there is no live front end (papermill, plain Python).
    """
    try:
        import ipywidgets as w
    except ImportError:
        return None
    first = {}
    for r in runs:
        if r.density is not None:
            first.setdefault((r.dataset, r.model), r)
    ds = list(dict.fromkeys(d for d, _ in first))
    ms = list(dict.fromkeys(m for _, m in first))
    pick_d = w.Dropdown(options=ds, description="dataset")
    pick_m = w.Dropdown(options=[((titles or {}).get(m, m), m) for m in ms], description="model")
    out = w.Output()

    def draw(*_):
        r = first.get((pick_d.value, pick_m.value))
        with out:
            out.clear_output(wait=True)
            if r is None:
                print("not trained")
                return
            lim = get_toy_dataset(r.dataset).limit
            fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
            plot_samples(axes[0], r.real, lim, "tab:blue", "real")
            plot_samples(axes[1], r.fake, lim, "tab:green", "samples")
            plot_density(axes[2], r.density, lim, "density exp(-nELBO)")
            plt.show()
    pick_d.observe(draw, "value"), pick_m.observe(draw, "value")
    box = w.VBox([w.HBox([pick_d, pick_m]), out])
    draw()
    return box


def plot_budget(rows: list[dict], paper: dict | None = None, titles=None, path=None, metric: str = "kl"):
    """Budget curves: `metric` against training iterations, one panel per dataset, one line per method.

    Args:
        rows: study.write_budget records. paper: {dataset: {metric: [(mean, std) per method in
            ("vae", "introvae", "soft_intro_vae") order]}} (Table 2), drawn as dashed lines.
    """
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    order = ("vae", "introvae", "soft_intro_vae")
    colors = {"vae": "tab:red", "introvae": "tab:orange", "soft_intro_vae": "tab:green"}
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(3.4 * max(1, len(datasets)), 3.0), squeeze=False)
    for ax, d in zip(axes[0], datasets):
        for m in order:
            pts = [(r["step"], r[metric]) for r in rows if r["dataset"] == d and r["method"] == m]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, color=colors[m], label=(titles or {}).get(m, m))
                if paper and d in paper and metric in paper[d]:
                    ax.axhline(paper[d][metric][order.index(m)][0], color=colors[m], ls="--", lw=0.8)
        ax.set_xscale("log"), ax.set_yscale("log"), ax.set_xlabel("iteration"), ax.set_title(d, fontsize=9)
        ax.xaxis.set_minor_formatter(NullFormatter())   # labelled minor ticks overlap on a short log range
    axes[0, 0].set_ylabel(f"{metric.upper()} (dashed: paper, 30k iterations)")
    axes[0, -1].legend(fontsize=7)
    return finish_figure(fig, path)
