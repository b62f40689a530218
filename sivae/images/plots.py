"""Figures of the image section: sample/reconstruction/interpolation grids, curves, a latent slider."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from torch import Tensor

from ..plots import finish_figure, image_grid, in_live_kernel

__all__ = ["plot_grids", "smooth", "plot_training_curves", "interpolation_explorer"]


def plot_grids(panels: dict, nrow: int, path=None, panel_width: float = 3.2):
    """One image grid per panel, side by side.

    Args:
        panels: title -> (N, C, H, W) images.
        nrow: images per row of each grid.
        path: where to save the figure (None: don't).
    Returns:
        the figure.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(panel_width * len(panels), panel_width), squeeze=False)
    for ax, (title, imgs) in zip(axes[0], panels.items()):
        ax.imshow(image_grid(imgs, nrow), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return finish_figure(fig, path)


def smooth(values, window: int) -> np.ndarray:
    """Centred moving average (window shrinks at the ends); window 1 returns the values."""
    v = np.asarray(values, dtype=float)
    if window <= 1 or len(v) < 3:
        return v
    c = np.concatenate([[0.0], np.cumsum(v)])
    h = window // 2
    lo, hi = np.maximum(np.arange(len(v)) - h, 0), np.minimum(np.arange(len(v)) + h + 1, len(v))
    return (c[hi] - c[lo]) / (hi - lo)


def plot_training_curves(rows: list[dict], keys=("rec", "kl_real", "kl_fake", "kl_rec", "exp_elbo_fake"),
                         path=None, window: int = 9):
    """Per-run curves of the logged losses against the training step (one panel per key).

    The logged values are single-batch losses, so each run is drawn faint as logged and solid as a
    `window`-point moving average; a run keeps one colour in every panel.
    """
    runs = sorted({r["run"] for r in rows})
    colors = {run: f"C{i % 10}" for i, run in enumerate(runs)}
    keys = [k for k in keys if any(k in r for r in rows)]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.3 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for run in runs:
            pts = [(r["step"], r[key]) for r in rows if r["run"] == run and key in r]
            if pts:
                steps, vals = zip(*pts)
                ax.plot(steps, vals, color=colors[run], alpha=0.25, lw=0.8)
                ax.plot(steps, smooth(vals, window), color=colors[run], lw=1.4, label=run)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
        ax.set_yscale("log" if key.startswith(("rec", "kl")) else "linear")
    axes[0][0].legend(fontsize=6)
    return finish_figure(fig, path)


def interpolation_explorer(models: dict, test_x: Tensor):
    """ipywidgets: pick two test images and slide between their latents (live kernel only).

    Args:
        models: title -> TrainedModel (same dataset).
        test_x: test images to pick from.
    Returns:
        the widget, or None outside a live kernel.
    """
    if not in_live_kernel():
        return None
    import ipywidgets as W
    from IPython.display import display

    from .training import interpolate
    a = W.IntSlider(0, 0, len(test_x) - 1, description="image A")
    b = W.IntSlider(1, 0, len(test_x) - 1, description="image B")
    t = W.FloatSlider(0.5, min=0, max=1, step=0.05, description="t")
    out = W.Output()

    def draw(*_):
        with out:
            out.clear_output(wait=True)
            fig, axes = plt.subplots(1, len(models) + 2, figsize=(2.2 * (len(models) + 2), 2.4))
            for ax, img, title in ((axes[0], test_x[a.value], "A"), (axes[-1], test_x[b.value], "B")):
                ax.imshow(image_grid(img[None], 1), cmap="gray", vmin=0, vmax=1)
                ax.set_title(title)
            for ax, (name, m) in zip(axes[1:-1], models.items()):
                frames = interpolate(m, test_x[a.value], test_x[b.value], steps=21)
                ax.imshow(image_grid(frames[round(t.value * 20)][None], 1), cmap="gray", vmin=0, vmax=1)
                ax.set_title(f"{name}, t={t.value:.2f}", fontsize=8)
            for ax in axes:
                ax.axis("off")
            plt.show()

    for w in (a, b, t):
        w.observe(draw, names="value")
    draw()
    box = W.VBox([W.HBox([a, b, t]), out])
    display(box)
    return box
