"""Settings grid, metrics and claim checks of the section 4.1 notebook.

A *setting* is (p_data, gamma, alpha). For each one we know d* (Eq. 6 / 16) and
whether Assumption 1 / 5 holds; the game (Eq. 12/13) is run for all settings at
once and compared with Theorem 3 / 6 (p_d -> d*, q -> p_d(z|x) on the support),
Lemma 4 (encoder best response) and Theorem 7 (TV(d*, p_data) small for small gamma).
The notebook's parameters are parsed once by ``sivae.theory_discrete.config.TheoryConfig``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..runinfo import write_json
from .dstar import assumption1_holds, entropy, kkt_report, lemma4_kl, make_pdata, solve_dstar
from .game import run_game


@dataclass
class Setting:
    """One (p_data, gamma, alpha) case with its d* and Assumption 1's verdict."""
    name: str
    gamma: float
    alpha: float
    p_data: np.ndarray
    dstar: np.ndarray
    holds: bool

    @property
    def key(self) -> str:
        return f"pdata={self.name},gamma={self.gamma:g},alpha={self.alpha:g}"


def build_settings(pdata_names, gammas, alphas, K):
    """Every combination of the named p_data, gammas and alphas.

    Args:
        pdata_names: names for ``make_pdata``; gammas, alphas: lists of floats; K: states.
    Returns:
        list of Setting (d* solved once per (p_data, gamma)).
    """
    out = []
    for name in pdata_names:
        p = make_pdata(name, K)
        for g in gammas:
            d = solve_dstar(p, g)
            out += [Setting(name, g, a, p, d, assumption1_holds(p, d, a)) for a in alphas]
    return out


def settings_group(settings, mode="alternating", objective="sintro"):
    """The games of ``settings`` as a group for ``run_groups``."""
    return {"p_data": np.stack([s.p_data for s in settings]), "alpha": [s.alpha for s in settings],
            "gamma": [s.gamma for s in settings], "objective": objective, "mode": mode}


def run_groups(groups, M, cfg, seed=0):
    """Run several groups of games in one batch (one Python loop for all).

    Args:
        groups: {label: dict(p_data (b, K), alpha, gamma (scalars or (b,)),
            objective, mode)}; M: latent states; cfg: GameConfig; seed: init seed.
    Returns:
        {label: ``run_game``-style result restricted to that group's games}.
    """
    sizes = [len(np.atleast_2d(g["p_data"])) for g in groups.values()]
    cat = lambda key: np.concatenate([np.broadcast_to(np.asarray(g[key]), (n,))
                                      for g, n in zip(groups.values(), sizes)])
    res = run_game(np.concatenate([np.atleast_2d(g["p_data"]) for g in groups.values()]),
                   cat("alpha"), cat("gamma"), M, cfg, seed=seed,
                   objective=cat("objective"), mode=cat("mode"))
    out, start = {}, 0
    for label, n in zip(groups, sizes):
        sl = slice(start, start + n)
        hist = {"step": res["history"]["step"],
                **{k: v[:, sl] for k, v in res["history"].items() if k != "step"}}
        out[label] = {"p_d": res["p_d"][sl], "kl_post": res["kl_post"][sl], "enc": res["enc"][sl],
                      "dec": res["dec"][sl], "history": hist}
        start += n
    return out


def history_distances(settings, result):
    """Distances over training, each (T, B).

    Returns:
        dict: step (T,), pd_dstar = max_x |p_d - d*|, pd_pdata = max_x |p_d - p_data|,
        kl_support = max over p_data > 0 of KL(q || p_d(z|x)), kl_off = min of it
        over p_data = 0 (nan where p_data has full support), entropy = H(p_d).
    """
    h = result["history"]
    pd, kl = h["p_d"], h["kl_post"]                                   # (T, B, K)
    ds = np.stack([s.dstar for s in settings])
    sup = np.stack([s.p_data for s in settings]) > 0
    off = np.where(~sup, kl, np.inf).min(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.sum(np.where(pd > 0, pd * np.log(pd), 0.0), -1)
    return {"step": h["step"], "pd_dstar": np.abs(pd - ds).max(-1),
            "pd_pdata": np.abs(pd - np.stack([s.p_data for s in settings])).max(-1),
            "kl_support": np.where(sup, kl, -np.inf).max(-1),
            "kl_off": np.where(np.isinf(off), np.nan, off), "entropy": ent}


def setting_metrics(settings, result):
    """Per-setting end-of-training numbers, keyed by ``Setting.key`` (JSON-ready)."""
    dist = history_distances(settings, result)
    out = {}
    for b, s in enumerate(settings):
        sup = s.p_data > 0
        l4 = lemma4_kl(s.p_data, result["p_d"][b], s.alpha)[sup]
        kl_off0, kl_off1 = dist["kl_off"][0, b], dist["kl_off"][-1, b]
        out[s.key] = {"assumption1_holds": s.holds,
                      "max_abs_pd_minus_dstar": float(dist["pd_dstar"][-1, b]),
                      "max_abs_pd_minus_pdata": float(dist["pd_pdata"][-1, b]),
                      "max_kl_to_posterior": float(dist["kl_support"][-1, b]),
                      "max_abs_kl_minus_lemma4": float(np.abs(result["kl_post"][b][sup] - l4).max())}
        if not np.isnan(kl_off0):                     # only where p_data has zero states
            out[s.key].update(min_kl_off_support_start=float(kl_off0), min_kl_off_support_end=float(kl_off1))
    return out


def save_json(obj, path):
    """Write JSON atomically (parents created; an existing file survives errors), keys sorted."""
    return write_json(obj, path, sort_keys=True)


# -------------------------------------------------------------------- claims
def _row(claim, value, ok):
    return {"claim": claim, "value": value, "confirmed": bool(ok)}


def claims_dstar(paths, tol=1e-6):
    """Checks on d* along gamma sweeps (Eq. 6, Theorem 7, the 'sharper' claim).

    Args:
        paths: {name: output of ``dstar_path``}, gammas sorted, starting at 0.
        tol: tolerance on d*(0) = p_data, monotonicity and KKT stationarity.
    Returns:
        list of claim rows {claim, value, confirmed}.
    """
    d0 = max(np.abs(pt["dstar"][pt["gammas"] == 0] - pt["p_data"]).max(initial=0.0) for pt in paths.values())
    rise = max(np.diff(pt["entropy"]).max() for pt in paths.values())
    kkt = [kkt_report(d, pt["p_data"], g) for pt in paths.values()
           for d, g in zip(pt["dstar"], pt["gammas"])]
    stat = max(r["stationarity"] for r in kkt)
    curv = min(r["min_curvature"] for r in kkt)
    small = {f"{n}, alpha={a:g}": bool(h[1]) for n, pt in paths.items() for a, h in pt["holds"].items()}
    pinsk = min((pt["pinsker"] - pt["tv"]).min() for pt in paths.values())
    keep = min((pt["dstar"][-1][pt["p_data"] > 0] / pt["p_data"][pt["p_data"] > 0]).min()
               for pt in paths.values())                 # largest gamma of each sweep
    g1 = min(pt["gammas"][1] for pt in paths.values())
    return [_row("d* = p_data at gamma = 0", f"max |d* - p_data| = {d0:.1e}", d0 <= tol),
            _row("H(d*) non-increasing in gamma", f"largest rise = {rise:.1e}", rise <= tol),
            _row("d* meets KKT (stationary, local min)",
                 f"stationarity {stat:.1e}, min curvature {curv:.2g}", stat <= tol and curv >= -tol),
            _row(f"Thm 7: Assumption 1 holds at the smallest gamma > 0 ({g1:g})",
                 ", ".join(k for k, v in small.items() if not v) or "all cases", all(small.values())),
            _row("Thm 7: TV(d*, p_data) <= sqrt(gamma H(p_data)/2) (Pinsker)",
                 f"min slack = {pinsk:.2g}", pinsk >= -tol),
            _row("no mode dropping: d* > 0 on p_data's support, even at the largest gamma",
                 f"min d*/p_data = {keep:.2g}", keep > 0)]


def claims_game(settings, metrics, tol_pd, tol_kl, label, tol_lemma4=1e-2):
    """Theorem 3 / 6 and Lemma 4 on the learned players.

    Args:
        settings, metrics: from ``build_settings`` / ``setting_metrics``.
        tol_pd: tolerance on max |p_d - d*|; tol_kl: on KL to the posterior.
        label: the run's name in the rows (e.g. "alternating").
        tol_lemma4: tolerance (nats) on the encoder's KL vs Lemma 4 where Assumption 1 fails.
    Returns:
        list of claim rows.
    """
    ok = [metrics[s.key] for s in settings if s.holds]
    bad = [metrics[s.key] for s in settings if not s.holds]
    off = [m for m in metrics.values() if "min_kl_off_support_end" in m]
    rows = []
    if ok:
        e_pd = max(m["max_abs_pd_minus_dstar"] for m in ok)
        e_kl = max(m["max_kl_to_posterior"] for m in ok)
        rows += [_row(f"[{label}] Assumption 1 holds ({len(ok)} cases): p_d -> d*",
                      f"max |p_d - d*| = {e_pd:.1e} (tol {tol_pd:g})", e_pd <= tol_pd),
                 _row(f"[{label}] ... and q -> true posterior on the support",
                      f"max KL = {e_kl:.1e} (tol {tol_kl:g})", e_kl <= tol_kl)]
    if off:
        gain = min(m["min_kl_off_support_end"] - m["min_kl_off_support_start"] for m in off)
        rows.append(_row(f"[{label}] encoder raises KL off the support ({len(off)} cases)",
                         f"smallest rise of min KL = {gain:.2f} nats", gain > 0))
    if bad:
        gap = min(m["max_abs_pd_minus_dstar"] for m in bad)
        l4 = max(m["max_abs_kl_minus_lemma4"] for m in bad)
        rows += [_row(f"[{label}] Assumption 1 fails ({len(bad)} cases): p_d misses d*",
                      f"min max|p_d - d*| = {gap:.1e}", gap > tol_pd),
                 _row(f"[{label}] ... encoder there = Lemma 4 best response",
                      f"max |KL - Lemma 4| = {l4:.1e} (tol {tol_lemma4:g})", l4 <= tol_lemma4)]
    return rows


def claims_ablation(p_data, ablation, full, h_tol=0.05):
    """No reconstruction term in L_D: the decoder only lowers entropy.

    Args:
        p_data: (K,); ablation, full: ``run_game`` results over seeds (same p_data).
        h_tol: entropy below which p_d counts as collapsed onto one state.
    Returns:
        list of claim rows.
    """
    h_abl = np.array([entropy(p) for p in ablation["p_d"]])
    h_full = np.array([entropy(p) for p in full["p_d"]])
    modes = ablation["p_d"].argmax(1)
    on_mode = np.mean(modes == p_data.argmax())
    off = ablation["p_d"][:, p_data == 0].sum(1).max() if np.any(p_data == 0) else 0.0
    return [_row("ablation: H(p_d) collapses without the reconstruction term",
                 f"median H = {np.median(h_abl):.3f} vs {np.median(h_full):.3f} with it "
                 f"(H(p_data) = {entropy(p_data):.3f}); {np.mean(h_abl < h_tol):.0%} of seeds < {h_tol}",
                 np.median(h_abl) < h_tol),
            _row("ablation: the surviving state is not pulled to p_data's mode",
                 f"{on_mode:.0%} of seeds end on the mode (chance {1 / np.sum(p_data > 0):.0%}); "
                 f"max mass off support {off:.1e}", on_mode < 1.0)]


def claims_introvae(p_datas, result, margin):
    """Contrast row: where IntroVAE's exact game (Eq. 2) ends, against p_data.

    Args:
        p_datas: (n, K); result: its ``run_game`` result; margin: the hinge m.
    """
    gap = np.abs(result["p_d"] - p_datas).max()
    return [_row(f"(contrast) IntroVAE, Eq. 2 with m={margin:g}: p_d -> p_data "
                 "(shown for IntroVAE's simplified Eq. 3 only)", f"max |p_d - p_data| = {gap:.2g}", gap <= 1e-2)]


def failure_lines(settings, result):
    """One line per setting where Assumption 1 fails: where p_d and d* put their
    largest mass, how much, and Assumption 1's ceiling p_data^(1/(alpha+1)) there."""
    lines = []
    for b, s in enumerate(settings):
        if s.holds:
            continue
        pd = result["p_d"][b]
        i, j = int(pd.argmax()), int(s.dstar.argmax())
        lines.append(f"{s.key}: p_d tops x={i} ({pd[i]:.3f}; ceiling {s.p_data[i] ** (1 / (s.alpha + 1)):.3f}, "
                     f"p_data {s.p_data[i]:.3f}), d* tops x={j} ({s.dstar[j]:.3f}), "
                     f"encoder KL there {result['kl_post'][b][i]:.4f}")
    return lines


def metrics_report(runs, rows):
    """The DVC metrics dict: per setting key, the first run's numbers, then the
    other runs' numbers prefixed by their label; plus a claims summary.

    Args:
        runs: {label: ``setting_metrics`` output}, the first one is the main run.
        rows: all claim rows.
    """
    labels = list(runs)
    out = {key: dict(vals) for key, vals in runs[labels[0]].items()}
    for lab in labels[1:]:
        for key, vals in runs[lab].items():
            out[key].update({f"{lab}_{k}": v for k, v in vals.items() if k != "assumption1_holds"})
    n_ok = sum(r["confirmed"] for r in rows)          # numbers only: DVC metrics skip lists
    out["claims"] = {"n_claims": len(rows), "n_confirmed": n_ok, "all_confirmed": n_ok == len(rows)}
    out["claim_verdicts"] = {r["claim"]: bool(r["confirmed"]) for r in rows}  # read by the findings ledger
    return out


def claims_markdown(rows):
    """Markdown table of claim rows."""
    lines = ["| claim | measured | confirmed |", "|---|---|---|"]
    lines += [f"| {r['claim']} | {r['value']} | {'yes' if r['confirmed'] else '**no**'} |" for r in rows]
    return "\n".join(lines)
