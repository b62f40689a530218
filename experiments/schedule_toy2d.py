"""Schedule study for section 6.1 (issue #32): the 2D findings' verdicts against CPU-minutes, per training schedule.

A schedule is (batch, VAE warm-up iterations, n_iter, lr decay milestones as fractions of n_iter, lr, width).
One run = one (dataset, method, seed) at one schedule, trained with the project's Trainer (Table 5 weights,
s = 1/2, gamma_r 1e-8, decay x0.1 at each milestone, as the toy2d stage builds it), one torch thread:

    python experiments/schedule_toy2d.py run --dataset 8gaussians --method soft_intro_vae --seed 0 \\
        --batch 512 --num-vae 500 --n-iter 4000 --milestones 0.6,0.8 --lr 2e-4 --hidden 256

At each fraction of --points it appends one JSON line to docs/schedule_runs/<dataset>.jsonl (or --out):
the schedule, the step, KL and JSD (the stage's 5,000 samples, 100 bins, generator 10,000 + seed), and at the
fractions of --grid-points also gnELBO and the off-support share (the stage's 1024x1024 grid: exactly the
toy2d stage's evaluate_toy), with train_cpu_s (process CPU seconds spent training so far, evaluations
excluded), eval_cpu_s (that evaluation's) and wall_s. A run whose last point is already in the file is skipped.

    python experiments/schedule_toy2d.py judge [FILES...]
prints, per dataset, schedule and step, each 6.1 finding's verdict by the findings ledger's rule
(sivae.findings.study.compare over the seeds): Soft-IntroVAE below the VAE (and IntroVAE where run) in KL, JSD,
gnELBO, and the off-support share below the VAE's; where IntroVAE ran, its off-support share below the VAE's too
(each record's "model" is the mean of the model judged: IntroVAE's in that one, Soft-IntroVAE's elsewhere).
The VAE of a schedule is the VAE run with the same batch, n_iter, milestones, lr and width (its warm-up is
irrelevant: the VAE has none).

    python experiments/schedule_toy2d.py table [FILES...]
prints the same verdicts at each schedule's last step as a markdown table (docs/schedule_study.md).

    python experiments/schedule_toy2d.py levers [FILES...]
prints, per dataset and finding, every value each lever (batch, warm-up, length, decays, lr, width) took in a
judged schedule, with the best verdict reached at that value (H holds, I inconclusive, F fails), and the
cheapest schedule at which the finding holds: which levers were tried for a finding, read off the raw output.

    python experiments/schedule_toy2d.py plot [FILES...]
draws docs/figures/schedule_<dataset>.png: the margin mean(VAE) - mean(Soft-IntroVAE) of KL and JSD (shaded:
+- the combined seed spread sqrt(std_a^2 + std_b^2); the finding holds where margin > spread, a star) against
the Soft-IntroVAE run's training CPU-minutes (one core, mean over seeds), one line per schedule; a square marks
a schedule's last step (the points before it are the same run before its end, not shorter schedules).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:       # `python experiments/schedule_toy2d.py` from anywhere
    sys.path.insert(0, str(ROOT))

RUNS_DIR = ROOT / "docs" / "schedule_runs"
FIG_DIR = ROOT / "docs" / "figures"
# the levers a schedule is made of and the 6.1 findings it is judged on (verdicts' keys), with their labels
LEVERS = (("batch", "batch"), ("num_vae", "warm-up"), ("n_iter", "length"), ("milestones", "decays"),
          ("lr", "lr"), ("hidden", "width"))
FINDINGS = (("kl<vae", "KL < VAE"), ("jsd<vae", "JSD < VAE"), ("gnelbo<vae", "gnELBO < VAE"),
            ("off_support_mass<vae", "off-support < VAE"), ("kl<introvae", "KL < IntroVAE"),
            ("jsd<introvae", "JSD < IntroVAE"), ("introvae_off_support_mass<vae", "IntroVAE off-support < VAE"))
SCHEDULE_KEYS = tuple(k for k, _ in LEVERS)
BASE_SAMPLES = 1500 * 128     # "Nx samples": n_iter x batch over the earlier default's, the study's base
DECIDING = (("8gaussians", "kl"), ("8gaussians", "jsd"), ("spiral", "kl"), ("spiral", "jsd"))


def _milestones(ms) -> str:
    return ",".join(f"{m:g}" for m in ms)


def schedule_name(r: dict, with_warmup: bool = True) -> str:
    """A short name of a run's schedule, e.g. b512-wu500-n4000-d0.6,0.8-lr0.0002-w256."""
    ms = _milestones(r["milestones"])
    wu = f"-wu{r['num_vae']}" if with_warmup else ""
    return f"b{r['batch']}{wu}-n{r['n_iter']}-d{ms}-lr{r['lr']:g}-w{r['hidden']}"


# ------------------------------------------------------------------------------------------------- run
def _fractions(text: str) -> list[float]:
    return [float(f) for f in text.split(",") if f.strip()]


def run(args) -> None:
    import torch

    from sivae.toy2d.config import resolve_hparams
    from sivae.toy2d.data import get_toy_dataset
    from sivae.toy2d.models import MLPConfig, build_mlp_pair
    from sivae.toy2d.study import evaluate_toy, sample_metrics
    from sivae.train import TrainConfig, Trainer

    torch.set_num_threads(1)
    milestones = tuple(_fractions(args.milestones))
    num_vae = args.num_vae if args.method != "vae" else 0
    sched = {"batch": args.batch, "num_vae": num_vae, "n_iter": args.n_iter, "milestones": list(milestones),
             "lr": args.lr, "hidden": args.hidden}
    out = Path(args.out) if args.out else RUNS_DIR / f"{args.dataset}.jsonl"
    points = sorted({max(1, round(args.n_iter * f)) for f in _fractions(args.points)})
    grid_points = {max(1, round(args.n_iter * f)) for f in _fractions(args.grid_points)}
    ident = dict(d=args.dataset, m=args.method, seed=args.seed, **sched)
    if out.is_file():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            if r["step"] == points[-1] and all(r.get(k) == v for k, v in ident.items()):
                print(f"already in {out}: {ident}", file=sys.stderr)
                return
    data = get_toy_dataset(args.dataset)
    cfg = TrainConfig(method=args.method, n_iter=args.n_iter, batch_size=args.batch, lr=args.lr,
                      lr_milestones=milestones, num_vae=num_vae, seed=args.seed, progress=False, scale=0.5,
                      gamma_r=1e-8, **resolve_hparams(args.dataset, args.method))
    enc, dec = build_mlp_pair(MLPConfig(hidden=args.hidden), seed=args.seed)
    t = Trainer(enc, dec, lambda s, g: data.sample(args.batch, g), cfg, None, device="cpu")
    out.parent.mkdir(parents=True, exist_ok=True)
    train_cpu, wall0 = 0.0, time.time()
    while t.step < args.n_iter:
        c0 = time.process_time()
        t.train_step()
        train_cpu += time.process_time() - c0
        if t.step in points:
            c0 = time.process_time()
            if t.step in grid_points:
                met, *_ = evaluate_toy(t.enc, t.dec, args.dataset, args.seed, n_samples=5000, grid_size=1024,
                                       keep_density=False)
            else:
                met = sample_metrics(t.dec, args.dataset, args.seed, n_samples=5000)
            t.enc.train(), t.dec.train()
            rec = dict(ident, step=t.step, **{k: float(v) for k, v in met.items()},
                       train_cpu_s=round(train_cpu, 2), eval_cpu_s=round(time.process_time() - c0, 2),
                       wall_s=round(time.time() - wall0, 1))
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- judge
def load(paths) -> list[dict]:
    paths = [Path(p) for p in paths] or sorted(RUNS_DIR.glob("*.jsonl"))
    return [json.loads(line) for p in paths for line in p.read_text().splitlines() if line.strip()]


def _group(rows) -> dict:
    """{(dataset, method, schedule name with warm-up, step): [values rows over seeds]} (last row per seed)."""
    g: dict = defaultdict(dict)
    for r in rows:
        name = schedule_name(r, with_warmup=r["m"] != "vae")
        g[r["d"], r["m"], name, r["step"]][r["seed"]] = r
    return {k: list(v.values()) for k, v in g.items()}


def _stat(rows, key):
    from sivae.findings.study import Stat
    from sivae.stats import seed_stats
    vals = [r[key] for r in rows if key in r]
    return Stat(**seed_stats(vals)) if vals else None


def _judge_into(f: dict, key: str, a, b) -> None:
    """f[key]: the ledger's verdict on 'a below b' (key "<metric><<other>"), its margin and seed spread."""
    if a is None or b is None:
        return
    from sivae.findings.study import compare
    f[key] = {"verdict": compare(a, b), "margin": b.mean - a.mean, "spread": math.hypot(a.std, b.std),
              "model": a.mean, key.split("<")[1]: b.mean, "n": min(a.n, b.n)}


def verdicts(rows) -> list[dict]:
    """One record per (dataset, Soft-IntroVAE schedule, step): each finding's verdict, margin and spread."""
    g = _group(rows)
    out = []
    for (d, m, name, step), sv in sorted(g.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][3])):
        if m != "soft_intro_vae":
            continue
        r0 = sv[0]
        vae_name = schedule_name(r0, with_warmup=False)
        rec = {"d": d, "schedule": name, "sched": {k: r0[k] for k in SCHEDULE_KEYS}, "step": step,
               "samples_x_base": round(step * r0["batch"] / BASE_SAMPLES, 2),
               "cpu_min": sum(r["train_cpu_s"] for r in sv) / len(sv) / 60, "n_sivae": len(sv), "f": {}}
        others = {"vae": g.get((d, "vae", vae_name, step), [])}
        intro = [k for k in g if k[0] == d and k[1] == "introvae" and k[3] == step
                 and k[2] == name]
        if intro:
            others["introvae"] = g[intro[0]]
        for other, ov in others.items():
            if not ov:
                continue
            keys = ("kl", "jsd", "gnelbo", "off_support_mass") if other == "vae" else ("kl", "jsd", "gnelbo")
            for k in keys:
                _judge_into(rec["f"], f"{k}<{other}", _stat(sv, k), _stat(ov, k))
        # 6.1-vae-mass-off-support-vs-introvae: IntroVAE's density off the support below the VAE's
        _judge_into(rec["f"], "introvae_off_support_mass<vae", _stat(others.get("introvae", []), "off_support_mass"),
                    _stat(others["vae"], "off_support_mass"))
        out.append(rec)
    return out


def last_steps(recs) -> list[dict]:
    """The verdict records at each schedule's last step."""
    return [r for r in recs if r["step"] == r["sched"]["n_iter"]]


def judge(paths) -> None:
    for rec in verdicts(load(paths)):
        parts = [f"{k}: {v['verdict']} ({v['model']:.3g} vs {v[k.split('<')[1]]:.3g}, margin {v['margin']:+.3g}"
                 f" spread {v['spread']:.2g}, n={v['n']})" for k, v in rec["f"].items()]
        print(f"{rec['d']} {rec['schedule']} step {rec['step']} ({rec['samples_x_base']}x samples, "
              f"{rec['cpu_min']:.2f} CPU-min): " + "; ".join(parts or ["no VAE run"]))


def table(paths) -> None:
    """Markdown: one row per (dataset, schedule) at its last step, each finding's verdict with both means."""
    recs = last_steps(verdicts(load(paths)))
    print("| dataset | schedule (Soft-IntroVAE) | samples vs 1,500 x 128 | S-IntroVAE CPU-min | seeds | "
          + " | ".join(label for _, label in FINDINGS) + " |")
    print("|---|---|---|---|---|" + "---|" * len(FINDINGS))
    for r in recs:
        cells = []
        for k, _ in FINDINGS:
            v = r["f"].get(k)
            if v is None:
                cells.append("-")
                continue
            fmt = ".2e" if k.startswith("gnelbo") else ".3f" if "off" in k else ".1f"
            cells.append(f"**{v['verdict']}** ({v['model']:{fmt}} vs {v[k.split('<')[1]]:{fmt}})")
        print(f"| {r['d']} | {r['schedule']} | {r['samples_x_base']}x | {r['cpu_min']:.2f} | {r['n_sivae']} | "
              + " | ".join(cells) + " |")


def _value(key, v) -> str:
    return _milestones(v) if key == "milestones" else f"{v:g}"


def lever_coverage(rows) -> list[dict]:
    """Per (dataset, finding): every value each lever took in a judged schedule (at its last step) with the best
    verdict any schedule with that value reached, and the cheapest holding schedule: the fewest training samples
    (n_iter x batch; CPU-minutes were measured under other loads in other sessions, so they only break ties)."""
    from sivae.findings.study import VERDICT_CODES
    recs = last_steps(verdicts(rows))
    out = []
    for d in sorted({r["d"] for r in recs}):
        for key, label in FINDINGS:
            judged = [r for r in recs if r["d"] == d and key in r["f"]]
            if not judged:
                continue
            levers = {}
            for lk, _ in LEVERS:
                best: dict = {}
                for r in judged:
                    v = r["sched"][lk]
                    v = tuple(v) if isinstance(v, list) else v
                    verdict = r["f"][key]["verdict"]
                    if v not in best or VERDICT_CODES[verdict] > VERDICT_CODES[best[v]]:
                        best[v] = verdict
                levers[lk] = dict(sorted(best.items()))
            holding = [r for r in judged if r["f"][key]["verdict"] == "holds"]
            cheapest = min(holding, key=lambda r: (r["samples_x_base"], r["cpu_min"])) if holding else None
            out.append({"d": d, "finding": key, "label": label, "n_schedules": len(judged), "levers": levers,
                        "cheapest": None if cheapest is None else
                        {"schedule": cheapest["schedule"], "samples_x_base": cheapest["samples_x_base"],
                         "cpu_min": cheapest["cpu_min"]}})
    return out


def levers(paths) -> None:
    """Markdown: per dataset and finding, the values each lever took (H/I/F: the best verdict at that value)."""
    print("| dataset | finding | schedules | " + " | ".join(lab for _, lab in LEVERS)
          + " | cheapest holding (samples vs 1,500 x 128, CPU-min) |")
    print("|---|---|---|" + "---|" * len(LEVERS) + "---|")
    for c in lever_coverage(load(paths)):
        cells = [" ".join(f"{_value(lk, v)}&nbsp;{verdict[0].upper()}" for v, verdict in c["levers"][lk].items())
                 for lk, _ in LEVERS]
        ch = c["cheapest"]
        cheap = "none" if ch is None else f"{ch['schedule']} ({ch['samples_x_base']}x, {ch['cpu_min']:.1f} CPU-min)"
        print(f"| {c['d']} | {c['label']} | {c['n_schedules']} | " + " | ".join(cells) + f" | {cheap} |")


# ------------------------------------------------------------------------------------------------ plot
def plot(paths) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    recs = verdicts(load(paths))
    FIG_DIR.mkdir(parents=True, exist_ok=True)
    for d in sorted({r["d"] for r in recs}):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for ax, k in zip(axes, ("kl", "jsd")):
            by, top = defaultdict(list), 0.0
            for r in recs:
                if r["d"] == d and f"{k}<vae" in r["f"]:
                    by[r["schedule"]].append((r["cpu_min"], r["f"][f"{k}<vae"]))
            for i, (name, pts) in enumerate(sorted(by.items())):   # tab20: one colour per schedule (up to 20)
                pts.sort(key=lambda p: p[0])
                x = [p[0] for p in pts]
                y = [p[1]["margin"] for p in pts]
                s = [p[1]["spread"] for p in pts]
                n = min(p[1]["n"] for p in pts)
                top = max([top] + [abs(a) + b for a, b in zip(y, s)])
                line, = ax.plot(x, y, marker="o", color=plt.cm.tab20(i % 20), label=f"{name} (n={n})")
                ax.fill_between(x, [a - b for a, b in zip(y, s)], [a + b for a, b in zip(y, s)],
                                color=line.get_color(), alpha=0.12)
                for xx, p in zip(x, (q[1] for q in pts)):
                    if p["verdict"] == "holds":
                        ax.plot([xx], [p["margin"]], marker="*", ms=12, color=line.get_color())
                ax.plot([x[-1]], [y[-1]], marker="s", ms=8, mfc="none", color=line.get_color())
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xlabel("Soft-IntroVAE training CPU-minutes (one core, mean over seeds)")
            ax.set_ylabel(f"{k.upper()}(VAE) - {k.upper()}(Soft-IntroVAE)")
            ax.set_title(f"{d}: {k.upper()} finding margin (star: holds, margin > seed spread)")
            if top > 10:              # margins over decades: symlog (linear within +-1); else the linear axis
                ax.set_yscale("symlog", linthresh=1.0)
        axes[1].legend(fontsize=6, loc="lower right")
        fig.tight_layout()
        path = FIG_DIR / f"schedule_{d}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        print(path)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("run", help="train one (dataset, method, seed) at one schedule, append its metrics")
    r.add_argument("--dataset", required=True)
    r.add_argument("--method", required=True, choices=("vae", "introvae", "soft_intro_vae"))
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--batch", type=int, default=512)
    r.add_argument("--num-vae", type=int, default=500, help="VAE warm-up iterations (introspective models)")
    r.add_argument("--n-iter", type=int, default=4000)
    r.add_argument("--milestones", default="0.6,0.8", help="lr decay x0.1 at these fractions of n_iter")
    r.add_argument("--lr", type=float, default=2e-4)
    r.add_argument("--hidden", type=int, default=256)
    r.add_argument("--points", default="0.25,0.5,0.75,1", help="fractions of n_iter at which KL/JSD are measured")
    r.add_argument("--grid-points", default="1", help="fractions at which gnELBO and off-support are measured too")
    r.add_argument("--out", default=None)
    for name in ("judge", "table", "levers", "plot"):
        sub.add_parser(name).add_argument("files", nargs="*")
    args = p.parse_args(argv)
    if args.mode == "run":
        run(args)
    elif args.mode == "judge":
        judge(args.files)
    elif args.mode == "table":
        table(args.files)
    elif args.mode == "levers":
        levers(args.files)
    else:
        plot(args.files)


if __name__ == "__main__":
    main()
