"""The findings figure: how many findings hold, are inconclusive, fail or were not run, per paper section."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plots import finish_figure
from .study import VERDICTS, Finding

__all__ = ["plot_verdicts"]

COLORS = {"holds": "tab:green", "inconclusive": "0.7", "fails": "tab:red", "not run": "white"}


def plot_verdicts(findings: list[Finding], path=None, title: str = ""):
    """Stacked horizontal bars: one per paper section, one colour per verdict."""
    sections = list(dict.fromkeys(f.section for f in findings))
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(sections)))
    left = np.zeros(len(sections))
    for v in VERDICTS:
        n = np.array([sum(f.section == s and f.verdict == v for f in findings) for s in sections])
        ax.barh(sections, n, left=left, color=COLORS[v], edgecolor="0.3", label=v)
        for i, (x, k) in enumerate(zip(left, n)):
            if k:
                ax.text(x + k / 2, i, str(k), ha="center", va="center", fontsize=8)
        left += n
    ax.invert_yaxis(), ax.set_xlabel("findings"), ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=4, loc="lower right")
    return finish_figure(fig, path)
