"""The findings figure (how many findings hold, are inconclusive, fail or were not run, per paper section) and the
data of the DVC plots that compare methods across stages (`dvc plots show`; dvc.yaml's top-level `plots:`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plots import finish_figure
from ..runinfo import write_json
from .study import VERDICTS, Finding

__all__ = ["plot_verdicts", "margin_rows", "write_margin_rows"]

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


def _margin(key: str) -> float | None:
    """'m_0p1' -> 0.1 (the stability stage's margin keys)."""
    try:
        return float(key.removeprefix("m_").replace("p", "."))
    except ValueError:
        return None


def margin_rows(stability: dict | None) -> list[dict]:
    """One row per IntroVAE margin m of the stability stage (its seed means): IntroVAE's final KL(fake) and
    KL(data || samples), the margin itself (the hinge's target for KL(fake)), and Soft-IntroVAE's values,
    which have no m, repeated on every row so that `dvc plots show` draws them as flat lines beside IntroVAE's."""
    met = (stability or {}).get("metrics", {})
    sweep, sivae = met.get("margin_sweep") or {}, met.get("soft_intro_vae") or {}
    rows = []
    for key, entry in sweep.items():
        m = _margin(key)
        if m is None or not isinstance(entry, dict):
            continue
        row = {"m": m, "margin_m": m, "introvae_kl_fake": entry.get("kl_fake_final"), "introvae_kl": entry.get("kl"),
               "soft_intro_vae_kl_fake": sivae.get("kl_fake_final"), "soft_intro_vae_kl": sivae.get("kl")}
        rows.append({k: v for k, v in row.items() if v is not None})
    return sorted(rows, key=lambda r: r["m"])


def write_margin_rows(stability: dict | None, path) -> list[dict]:
    """margin_rows as a JSON list (a DVC plots file; empty when the stability stage has not run)."""
    rows = margin_rows(stability)
    write_json(rows, path)
    return rows
