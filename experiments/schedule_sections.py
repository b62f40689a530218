"""Schedule study for sections 6.2-6.5 (issue #32): the findings' verdicts when one lever of the default's schedule moves.

The runs are the budget experiments' own (their KEY=VALUE overrides set the lever), at the default's length,
2 seeds, one torch thread each; their raw JSON lines are committed under docs/schedule_runs/sections/, one file
per (section, dataset, lever), named <section>_<dataset>_<lever>.jsonl:

    python experiments/budget_ood.py 1 fashionmnist mnist 0,1 CK lr=0.002   > ood_fashionmnist_lr2e-3.jsonl
    python experiments/budget_images.py 1 fashionmnist 0,1 CK vae,soft_intro_vae lr=0.002 \\
                                                                           > images_fashionmnist_lr2e-3.jsonl
    python experiments/budget_stability.py 1200 CK lr=0.0005               > stability_8gaussians_lr5e-4.jsonl
    python experiments/budget_translation.py 4 0,1 CK lr=0.002             > translation_procedural_lr2e-3.jsonl

(CK: a checkpoint folder; budget_images reuses budget_ood's models when given the same one; MODELS may add
soft_intro_vae_cond. Session 19's levers: lr_milestones=0.6,0.8 or 0.333333,0.5, channels=16,32, translation
enc_channels/dec_channels; docs/schedule_runs/sections/cond/ holds the conditional model's runs at session 18's
levers, not read by default: pass them as FILES.) The default's own
verdicts are the ledger's, from the committed default run (outputs/findings/details.json).

    python experiments/schedule_sections.py table [--baseline DETAILS_JSON] [FILES...]
prints one markdown row per (file, finding): the lever, the verdict of the run whose schedule the lever moved
(default: the committed run's outputs/findings/details.json; --baseline another findings details file), the verdict by the
ledger's rule as the budget script printed it (sivae.findings.study), what was compared, and one Soft-IntroVAE
run's training wall-minutes (one torch thread) where the script measured it.

    python experiments/schedule_sections.py plot [FILES...]
draws docs/figures/schedule_sections.png: per 6.3 / 6.5 comparison (a panel each), the margin of Soft-IntroVAE
over the VAE (AUROC: sivae - vae; FD-classifier: vae - sivae; positive = the paper's direction) with +- the
combined seed spread, against one Soft-IntroVAE run's training wall-minutes (one torch thread), one point per lever; the default
(lever "default", from docs/budget_runs' epoch-1 rows) is drawn in black.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "docs" / "schedule_runs" / "sections"
OOD_FINDINGS = {("above", "fashionmnist->mnist"): "6.5-sivae-auroc-above-vae-fashionmnist-to-mnist",
                ("above", "mnist->fashionmnist"): "6.5-sivae-auroc-above-vae-mnist-to-fashionmnist",
                ("0.99", "fashionmnist->mnist"): "6.5-sivae-auroc-near-perfect-fashionmnist-to-mnist",
                ("0.99", "mnist->fashionmnist"): "6.5-sivae-auroc-near-perfect-mnist-to-fashionmnist"}
TRANSLATION_KL = {"vae_class_kl_vanishes": "6.4-vae-class-code-kl-vanishes",
                  "sivae_class_kl_above_vae": "6.4-sivae-class-code-kl-does-not-vanish"}
# the default schedule's 1-epoch models, scored by the same scripts (epoch-1 rows of the budget runs)
DEFAULT_RUNS = {"ood_fashionmnist_default": "docs/budget_runs/ood_fashionmnist_to_mnist_3epochs_2seeds.jsonl",
                "ood_mnist_default": "docs/budget_runs/ood_mnist_to_fashionmnist_3epochs_2seeds.jsonl",
                "images_fashionmnist_default": "docs/budget_runs/images_fashionmnist_3epochs_2seeds.jsonl",
                "images_mnist_default": "docs/budget_runs/images_mnist_3epochs_2seeds.jsonl"}


def read(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip().startswith("{")]


def name_parts(path) -> tuple[str, str, str]:
    """docs/schedule_runs/sections/ood_fashionmnist_lr2e-3.jsonl -> ("ood", "fashionmnist", "lr2e-3")."""
    section, dataset, lever = Path(path).stem.split("_", 2)
    return section, dataset, lever


def train_minutes(rows) -> float:
    """One Soft-IntroVAE run's training wall-minutes per epoch from budget_ood's per-run rows (their train_s
    covers all of a run's epochs); nan when the file has none (images files reuse the ood file's models)."""
    runs = [r for r in rows if r.get("method") == "soft_intro_vae" and "train_s" in r]
    n_ep = max([r["epoch"] for r in runs] or [1])
    runs = [r for r in runs if r["epoch"] == n_ep]          # one row per run
    return sum(r["train_s"] for r in runs) / len(runs) / 60 / n_ep if runs else math.nan


def verdicts(path) -> list[dict]:
    """Each finding's verdict at the run's last point: {finding, verdict, ours, cpu_min}."""
    section, _, _ = name_parts(path)
    rows, out = read(path), {}
    minutes = train_minutes(rows)
    cpu = None if math.isnan(minutes) else round(minutes, 1)
    for r in rows:
        if "verdict" in r:                                   # the ledger's own rows (images, stability, translation)
            f = r.get("finding", r.get("id"))
            out[f] = {"finding": f, "verdict": r["verdict"], "ours": r["ours"]}
        elif "sivae_above_vae" in r:                         # budget_ood's seed means, one per epoch: keep the last
            for key, col in (("above", "sivae_above_vae"), ("0.99", "sivae_at_least_0.99")):
                f = OOD_FINDINGS[(key, r["pair"])]
                ours = f"VAE {r['vae'][0]} ± {r['vae'][1]}, Soft-IntroVAE {r['soft_intro_vae'][0]} ± " \
                       f"{r['soft_intro_vae'][1]} (epoch {r['epoch']:g})"
                out[f] = {"finding": f, "verdict": r[col], "ours": ours}
        elif "vae_class_kl_vanishes" in r and section == "translation":
            # per epoch (the last wins); the ledger's rows, after them, override
            for col, f in TRANSLATION_KL.items():
                ours = f"class-code KL VAE {r['kl_class_vae']}, Soft-IntroVAE {r['kl_class_soft_intro_vae']} " \
                       f"(epoch {r['epoch']})"
                out[f] = {"finding": f, "verdict": r[col], "ours": ours}
    for v in out.values():
        v["cpu_min"] = cpu
    return sorted(out.values(), key=lambda v: v["finding"])


def default_verdicts(path=ROOT / "outputs" / "findings" / "details.json") -> dict:
    """{finding: verdict} of the committed default run (the findings stage's details)."""
    p = Path(path)
    return {k: v["verdict"] for k, v in json.loads(p.read_text())["details"].items()} if p.exists() else {}


def ood_cost(path) -> float | None:
    """budget_images reuses budget_ood's models (same checkpoint folder): an images file's training cost is its
    ood file's (ood_<dataset>_<lever>.jsonl beside it)."""
    section, dataset, lever = name_parts(path)
    twin = Path(path).with_name(f"ood_{dataset}_{lever}.jsonl")
    minutes = train_minutes(read(twin)) if section == "images" and twin.exists() else math.nan
    return None if math.isnan(minutes) else round(minutes, 1)


def table(files, default: dict | None = None) -> str:
    default = default_verdicts() if default is None else default
    lines = ["| section | dataset | lever | finding | baseline's verdict | verdict | ours | Soft-IntroVAE training "
             "min per run (wall, 1 thread) |", "|---|---|---|---|---|---|---|---|"]
    for path in files:
        section, dataset, lever = name_parts(path)
        for v in verdicts(path):
            ours = v["ours"] if isinstance(v["ours"], str) else "; ".join(f"{k}: {x}" for k, x in v["ours"].items())
            cost = ood_cost(path) if section == "images" else v["cpu_min"]
            lines.append(f"| {section} | {dataset} | {lever} | `{v['finding']}` | {default.get(v['finding'], '-')} | "
                         f"**{v['verdict']}** | {ours} | {'' if cost is None else cost} |")
    return "\n".join(lines)


def margins(path, section: str) -> tuple[dict, float]:
    """({comparison: (margin, spread)} at epoch 1 of an ood / images file, train_minutes of its rows)."""
    rows, out = read(path), {}
    cpu = train_minutes(rows)
    if section == "images":                              # per-run scores -> seed means, as the ledger takes them
        from sivae.stats import seed_stats
        scores = {m: [r["score"] for r in rows if r.get("model") == m and r.get("epoch") == 1 and "score" in r]
                  for m in ("vae", "soft_intro_vae")}
        if all(scores.values()):
            a, b = seed_stats(scores["vae"]), seed_stats(scores["soft_intro_vae"])
            out[rows[0]["dataset"]] = (a["mean"] - b["mean"], math.hypot(a["std"], b["std"]))
        return out, cpu
    for r in rows:
        if r.get("epoch") != 1 or "vae" not in r or "soft_intro_vae" not in r:
            continue
        (a, sa), (b, sb) = r["vae"], r["soft_intro_vae"]
        out[r["pair"]] = (b - a, math.hypot(sa, sb))
    return out, cpu


def plot(files, path=ROOT / "docs" / "figures" / "schedule_sections.png"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    named = [(*name_parts(f), f) for f in files]
    named += [(*k.split("_"), ROOT / v) for k, v in DEFAULT_RUNS.items()]
    cpu_of = {}                                           # budget_images reuses budget_ood's models: their cost
    for section, dataset, lever, f in named:
        if section == "ood":
            cpu_of[(dataset, lever)] = margins(f, section)[1]
    points = {}
    for section, dataset, lever, f in named:
        for key, (m, s) in margins(f, section)[0].items():
            points.setdefault((section, key), []).append((lever, m, s, cpu_of.get((dataset, lever), math.nan)))
    keys = sorted(points)
    levers = sorted({p[0] for pts in points.values() for p in pts} - {"default"})
    color = {"default": "black", **{lv: f"C{i}" for i, lv in enumerate(levers)}}    # one colour per lever
    fig, axes = plt.subplots(1, len(keys), figsize=(4.0 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for lever, m, s, cpu in sorted(points[key], key=lambda p: p[0] != "default"):
            ax.errorbar([cpu], [m], yerr=[s], marker="s" if lever == "default" else "o", capsize=3,
                        color=color[lever], label=lever)
        ax.axhline(0, color="gray", lw=0.8)
        ax.set_title(f"{key[0]}: {key[1]}" + (" (FD)" if key[0] == "images" else " (AUROC)"), fontsize=9)
        ax.set_xlabel("Soft-IntroVAE min per run\n(wall, 1 thread)", fontsize=9)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("margin in the paper's direction\n(+- combined seed spread)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(argv):
    if not argv or argv[0] not in ("table", "plot"):
        sys.exit(__doc__)
    args = argv[1:]
    baseline = None
    if args[:1] == ["--baseline"]:                      # the run whose schedule each lever moved one key of
        baseline, args = default_verdicts(args[1]), args[2:]
    files = args or sorted(str(p) for p in RUNS.glob("*.jsonl"))
    print(table(files, baseline) if argv[0] == "table" else plot([f for f in files if Path(f).stem.split("_")[0]
                                                         in ("ood", "images")]))


if __name__ == "__main__":
    main(sys.argv[1:])
