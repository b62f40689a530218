"""Figures of the section 4.1 notebook, and the live-kernel d* slider (ipywidgets).

Every ``plot_*`` function draws one figure, saves it as PNG through
``sivae.plots.save_figure`` when given a path, and returns the figure.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plots import finish_figure, in_live_kernel
from .dstar import assumption1_holds, entropy, make_pdata, solve_dstar, tv_distance

COLORS = {"p_data": "0.6", "d*": "tab:orange", "p_d": "tab:blue"}


def _finish(fig, path):
    return finish_figure(fig, path)


def _bars(ax, dists, title=None):
    """Grouped bars of several distributions {label: (K,)} over the states."""
    k = np.arange(len(next(iter(dists.values()))))
    w = 0.8 / len(dists)
    for i, (lab, p) in enumerate(dists.items()):
        ax.bar(k + (i - (len(dists) - 1) / 2) * w, p, w, label=lab, color=COLORS.get(lab))
    ax.set_xticks(k)
    ax.set_xlabel("x")
    if title:
        ax.set_title(title, fontsize=9)


def plot_dstar_paths(paths, path=None):
    """Theorem 7 and the 'sharper' claim: TV(d*, p_data) and H(d*) against gamma.

    Args:
        paths: {name: ``dstar_path`` output}; path: PNG file or None.
    Returns:
        the figure. Shaded: gamma where Assumption 1 holds, per alpha.
    """
    fig, axes = plt.subplots(2, len(paths), figsize=(3.6 * len(paths), 5.6), squeeze=False)
    for j, (name, pt) in enumerate(paths.items()):
        g = pt["gammas"]
        ax = axes[0, j]
        ax.plot(g, pt["tv"], "k", label="TV(d*, p_data)")
        ax.plot(g, pt["pinsker"], "k:", label="Pinsker: sqrt(gamma H(p_data)/2)")
        for (a, holds), c in zip(pt["holds"].items(), ("tab:green", "tab:purple")):
            ax.fill_between(g, 0, 1, where=holds, color=c, alpha=0.15, step="mid",
                            transform=ax.get_xaxis_transform(), label=f"Assumption 1 holds, alpha={a:g}")
        ax.set_ylim(0, max(pt["tv"].max() * 1.3, 0.05))
        ax.set_title(f"p_data = {name}", fontsize=10)
        ax.set_xlabel("gamma")
        axes[1, j].plot(g, pt["entropy"], "tab:orange", label="H(d*)")
        axes[1, j].axhline(entropy(pt["p_data"]), color="0.5", ls="--", label="H(p_data)")
        axes[1, j].set_xlabel("gamma")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[1, 0].legend(fontsize=7)
    return _finish(fig, path)


def plot_learned(settings, result, alpha, path=None):
    """p_data, d* and the learned p_d for every (p_data, gamma) at one alpha."""
    sel = [(b, s) for b, s in enumerate(settings) if s.alpha == alpha]
    names = list(dict.fromkeys(s.name for _, s in sel))
    gammas = list(dict.fromkeys(s.gamma for _, s in sel))
    fig, axes = plt.subplots(len(names), len(gammas), figsize=(2.5 * len(gammas), 2.2 * len(names)),
                             squeeze=False, sharey="row")
    for b, s in sel:
        ax = axes[names.index(s.name), gammas.index(s.gamma)]
        flag = "A1 holds" if s.holds else "A1 FAILS"
        _bars(ax, {"p_data": s.p_data, "d*": s.dstar, "p_d": result["p_d"][b]},
              f"{s.name}, gamma={s.gamma:g} ({flag})")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"learned p_d vs d* vs p_data (alpha = {alpha:g})", fontsize=11)
    return _finish(fig, path)


def plot_training(settings, dist, path=None):
    """Over training: max|p_d - d*|, max KL(q || p_d(z|x)) on the support, min KL off it."""
    names = list(dict.fromkeys(s.name for s in settings))
    gammas = sorted({s.gamma for s in settings})
    alphas = sorted({s.alpha for s in settings})
    cmap = plt.get_cmap("viridis", max(len(gammas), 2))
    rows = [("pd_dstar", "max |p_d - d*|"), ("kl_support", "max KL to posterior\n(p_data > 0)"),
            ("kl_off", "min KL to posterior\n(p_data = 0)")]
    fig, axes = plt.subplots(3, len(names), figsize=(3.6 * len(names), 7.5), squeeze=False, sharex=True)
    for b, s in enumerate(settings):
        j = names.index(s.name)
        style = dict(color=cmap(gammas.index(s.gamma)), ls=["-", "--", ":"][alphas.index(s.alpha) % 3],
                     lw=1.2 if s.holds else 2.2, label=f"gamma={s.gamma:g}, alpha={s.alpha:g}")
        for i, (key, _) in enumerate(rows):
            y = dist[key][:, b]
            if np.all(np.isnan(y)):
                axes[i, j].text(0.5, 0.5, "p_data has full support", ha="center", transform=axes[i, j].transAxes)
                continue
            axes[i, j].plot(dist["step"], np.maximum(y, 1e-16) if i < 2 else y, **style)
    for j, name in enumerate(names):
        axes[0, j].set_title(f"p_data = {name}", fontsize=10)
        for i, (_, lab) in enumerate(rows):
            axes[i, j].set_yscale("log" if i < 2 else "linear")
            axes[i, 0].set_ylabel(lab, fontsize=9)
        axes[2, j].set_xlabel("step")
    axes[0, -1].legend(fontsize=6, ncol=2, title="thick: Assumption 1 fails", title_fontsize=6)
    return _finish(fig, path)


def plot_failures(settings, result, lemma_kl, path=None):
    """Where Assumption 1 fails: learned p_d vs d*, and encoder KL vs Lemma 4.

    Args:
        settings, result: the game; lemma_kl: (B, K) Lemma 4 best-response KL of
            each setting at the learned p_d; path: PNG file or None.
    """
    bad = [b for b, s in enumerate(settings) if not s.holds]
    if not bad:
        return None
    fig, axes = plt.subplots(2, len(bad), figsize=(2.6 * len(bad), 4.6), squeeze=False)
    for j, b in enumerate(bad):
        s, sup = settings[b], settings[b].p_data > 0
        _bars(axes[0, j], {"p_data": s.p_data, "d*": s.dstar, "p_d": result["p_d"][b]},
              f"{s.name}\ngamma={s.gamma:g}, alpha={s.alpha:g}")
        x = np.flatnonzero(sup)
        axes[1, j].bar(x, result["kl_post"][b][sup], color="tab:blue", label="KL(q || p_d(z|x))")
        axes[1, j].plot(x, lemma_kl[b][sup], "r_", ms=14, mew=2, label="Lemma 4 best response")
        axes[1, j].set_xticks(x)
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    return _finish(fig, path)


def plot_ablation(p_data, full, ablation, dstar=None, path=None):
    """Entropy of p_d over training with and without L_D's reconstruction term, and final p_d.

    Args:
        p_data: (K,); full, ablation: ``run_game`` results over seeds; dstar: (K,) or None.
        path: PNG file or None.
    """
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 3.4), gridspec_kw={"width_ratios": [1.2, 1, 1.2]})
    for res, c, lab in ((full, "tab:blue", "full L_D"), (ablation, "tab:red", "no reconstruction")):
        pd = res["history"]["p_d"]
        ent = -np.sum(np.where(pd > 0, pd * np.log(np.maximum(pd, 1e-300)), 0), -1)
        axes[0].plot(res["history"]["step"], ent, color=c, alpha=0.6, label=[lab] + [None] * (ent.shape[1] - 1))
    axes[0].axhline(entropy(p_data), color="0.4", ls="--", label="H(p_data)")
    if dstar is not None:
        axes[0].axhline(entropy(dstar), color="tab:orange", ls=":", label="H(d*)")
    axes[0].set(xlabel="step", ylabel="H(p_d)", title="entropy of the decoder's distribution")
    axes[0].legend(fontsize=7)
    for ax, res, lab in ((axes[1], full, "full L_D"), (axes[2], ablation, "no reconstruction")):
        im = ax.imshow(res["p_d"], vmin=0, vmax=1, cmap="Blues", aspect="auto")
        ax.set(xlabel="x", ylabel="seed", title=f"final p_d per seed: {lab}")
    fig.colorbar(im, ax=axes[2], label="p_d(x)")
    return _finish(fig, path)


def plot_dstar_bars(p_data, gammas, path=None):
    """Static stand-in for the slider: d* against p_data for a few gammas."""
    fig, axes = plt.subplots(1, len(gammas), figsize=(2.6 * len(gammas), 2.6), squeeze=False, sharey=True)
    for ax, g in zip(axes[0], gammas):
        d = solve_dstar(p_data, g)
        _bars(ax, {"p_data": p_data, "d*": d}, f"gamma={g:g}: TV={tv_distance(d, p_data):.2f}, H={entropy(d):.2f}")
    axes[0, 0].legend(fontsize=7)
    return _finish(fig, path)


def interactive_dstar(K, names, enabled=True):
    """ipywidgets sliders for gamma and alpha that redraw d* against p_data.

    Args:
        K: states; names: p_data names for the dropdown; enabled: the notebook's
            ``interactive`` parameter (False under papermill).
    Returns:
        the widget, or None without a live kernel or ipywidgets.
    """
    if not (enabled and in_live_kernel()):
        return None
    try:
        import ipywidgets as w
    except ImportError:
        return None

    def draw(name, gamma, alpha):
        p = make_pdata(name, K)
        d = solve_dstar(p, gamma)
        fig, ax = plt.subplots(figsize=(5.5, 3))
        _bars(ax, {"p_data": p, "d*": d})
        flag = "holds" if assumption1_holds(p, d, alpha) else "FAILS"
        ax.set_title(f"TV = {tv_distance(d, p):.3f}, H(d*) = {entropy(d):.3f}, Assumption 1 {flag}",
                     fontsize=9)
        ax.legend(fontsize=8)
        plt.show()

    return w.interactive(draw, name=w.Dropdown(options=list(names)),
                         gamma=w.FloatSlider(value=0.3, min=0.0, max=3.0, step=0.05),
                         alpha=w.FloatSlider(value=2.0, min=0.25, max=4.0, step=0.25))
