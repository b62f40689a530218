"""Plotting helpers every section uses: saving figures (Agg-safe), image grids, live-kernel detection."""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["save_figure", "finish_figure", "image_grid", "in_live_kernel", "inline_figures"]


def save_figure(fig, path) -> Path:
    """Save `fig` to `path` (parents created, 120 dpi, tight) and return the path.

    Written to a temporary file beside it and moved into place (sivae.runinfo.atomic_path): a full disk leaves
    the previous figure intact and raises one OutputError naming the file."""
    from .runinfo import atomic_path
    path = Path(path)
    fmt = path.suffix[1:].lower() or None
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=fmt)
    return path


def finish_figure(fig, path=None):
    """Tighten `fig`'s layout, save it to `path` when given (see save_figure) and return it."""
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def in_live_kernel() -> bool:
    """True inside a Jupyter/IPython kernel (where widgets can be shown).

    papermill also runs a kernel, with no front end: notebooks therefore also take an
    `interactive` parameter that the pipeline sets to False, and widgets are harmless there.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and hasattr(ip, "kernel")


def inline_figures() -> None:
    """Draw the figures into the notebook (matplotlib's inline backend) whatever MPLBACKEND says.

    `make repro` exports MPLBACKEND=Agg and a papermill kernel inherits it: under Agg, plt.show() draws
    nothing into the executed notebook and the report's pages would have no figures. Every notebook calls
    this once after its imports; outside a Jupyter kernel (plain python) it does nothing.
    """
    if in_live_kernel():
        from IPython import get_ipython
        get_ipython().run_line_magic("matplotlib", "inline")


def image_grid(images, nrow: int, pad: int = 1) -> np.ndarray:
    """(N, C, H, W) images in [0, 1] -> one (rows*H, nrow*W[, 3]) array for imshow, white padding.

    torchvision's make_grid does the tiling; this only clamps, moves to the CPU and drops the
    channel axis of grey images.
    """
    from torchvision.utils import make_grid
    x = images.detach().float().cpu().clamp(0, 1)
    c = x.shape[1]
    grid = make_grid(x, nrow=nrow, padding=pad, pad_value=1.0)
    if pad:
        grid = grid[:, pad:-pad, pad:-pad]  # make_grid also pads the outer border
    return grid[0].numpy() if c == 1 else grid.permute(1, 2, 0).numpy()
