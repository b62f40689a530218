"""Figures of section 6.4: translation grids (Figures 7, 19, 20) and the KL of both codes over training."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from ..plots import finish_figure, image_grid
from . import metrics as M
from .data import TranslationData, to_float

__all__ = ["pick_sources", "transfer_grid", "plot_translation_grids", "plot_code_kl"]


def pick_sources(data: TranslationData, split: str, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """n class sources with distinct classes and n content sources (distinct poses where known).

    Returns:
        (indices of class sources, indices of content sources) into the split.
    """
    classes = getattr(data, f"{split}_class")
    contents = getattr(data, f"{split}_content")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(classes), generator=g)
    first_of_class = {}
    for i in order.tolist():
        first_of_class.setdefault(int(classes[i]), i)
    rows = torch.tensor(list(first_of_class.values())[:n])
    key = contents if contents is not None else classes
    seen, cols = set(), []
    for i in torch.randperm(len(classes), generator=g).tolist():  # varied content sources
        if int(key[i]) not in seen or contents is None:
            seen.add(int(key[i])), cols.append(i)
        if len(cols) == n:
            break
    return rows, torch.tensor(cols)


def transfer_grid(encoder, decoder, images: Tensor, rows: Tensor, cols: Tensor, device) -> Tensor:
    """(R, K, C, H, W): cell (i, j) decodes the class code of image rows[i] with the content code of cols[j]."""
    zc, _ = M.encode_means(encoder, images[rows], device)
    _, zs = M.encode_means(encoder, images[cols], device)
    r, k = len(rows), len(cols)
    out = M.transfer(decoder, zc.repeat_interleave(k, 0), zs.repeat(r, 1), device)
    return out.reshape(r, k, *out.shape[1:])


def _mosaic(grid: Tensor, row_src: Tensor, col_src: Tensor, pad: int = 2) -> np.ndarray:
    """One (H', W', 3) array: the content sources on top, the class sources on the left, transfers inside."""
    r, k, c, h, w = grid.shape
    blank = torch.ones(1, 3, h, w)
    rgb = lambda t: t.expand(t.shape[0], 3, h, w)
    rows = [torch.cat([blank, rgb(col_src)])] + [torch.cat([rgb(row_src[i:i + 1]), rgb(grid[i])]) for i in range(r)]
    return image_grid(torch.cat(rows), nrow=k + 1, pad=pad)


def plot_translation_grids(runs: dict, data: TranslationData, titles: dict, path=None, *, split: str = "test",
                           n: int = 6, seed: int = 0, device="cpu"):
    """Figures 7/19/20 style: per panel, rows = class sources, columns = content sources.

    One panel per model, plus the true images where the dataset has them (procedural, Cars3D).
    Returns:
        the matplotlib Figure (saved to path when given).
    """
    images = getattr(data, split)
    rows, cols = pick_sources(data, split, n, seed)
    src_r, src_c = to_float(images[rows]), to_float(images[cols])
    panels = {}
    if data.has_truth:
        lookup, cls, con = data.lookup(split), getattr(data, f"{split}_class"), getattr(data, f"{split}_content")
        idx = torch.tensor([[lookup[(int(cls[a]), int(con[b]))] for b in cols] for a in rows])
        panels["ground truth"] = to_float(images[idx.flatten()]).reshape(len(rows), len(cols), *images.shape[1:])
    for m, run in runs.items():
        panels[titles.get(m, m)] = transfer_grid(run.encoder, run.decoder, images, rows, cols, device)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.6), squeeze=False)
    for ax, (name, grid) in zip(axes[0], panels.items()):
        ax.imshow(_mosaic(grid, src_r, src_c), interpolation="nearest")
        ax.set_title(name, fontsize=10), ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_ylabel("class source  ->", fontsize=8)
    fig.suptitle(f"content transfer on {split} images of {data.name}: row = class source, "
                 f"column = content source", fontsize=9)
    return finish_figure(fig, path)


def plot_code_kl(runs: dict, titles: dict, path=None):
    """KL of the class code and of the content code over training, per model (log scale), and Rec.

    Returns:
        the matplotlib Figure (saved to path when given).
    """
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 3.3))
    for m, run in runs.items():
        c = run.kl_curve
        for ax, key in zip(axes[:2], ("kl_class", "kl_content")):
            ax.plot(c["step"], np.maximum(c[key], 1e-6), label=titles.get(m, m), lw=1.3)
        pts = [(h["step"], h["rec"]) for h in run.history if "rec" in h]
        if pts:
            axes[2].plot(*zip(*pts), label=titles.get(m, m), lw=1)
    for ax, title in zip(axes, ("KL(q(z_class|x) || N(0, I))", "KL(q(z_content|x) || N(0, I))",
                                "Rec(x, D(z)) (sum over pixels)")):
        ax.set_title(title, fontsize=9), ax.set_xlabel("iteration"), ax.set_yscale("log")
    axes[0].set_ylabel("nats per image (fixed training images)")
    axes[2].legend(fontsize=8)
    return finish_figure(fig, path)
