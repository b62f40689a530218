"""The grid searches behind Table 5 (paper sections 6.1 and 9.2.1), as DVC experiments.

No home-made runner: the `toy2d` stage already takes every hyper-parameter as a scalar
(`toy2d.beta_rec`, ..., each "table5" or a number), so a grid is one queued DVC command
whose comma lists DVC (with Hydra's sweep syntax) expands into one experiment per point:

    python -m sivae.sweep queue --dataset 8gaussians --model soft_intro_vae        # print it
    python -m sivae.sweep queue --dataset 8gaussians --model soft_intro_vae --run  # queue it
    dvc queue start --jobs 2          # run the queue, N in parallel (or: dvc exp run --run-all)
    dvc queue status                  # progress
    python -m sivae.sweep collect     # dvc exp show --json -> best per dataset/model vs Table 5

`queue_command` builds the command line, `collect_experiments` parses `dvc exp show --json`,
`best_configurations` picks the lowest metric per (dataset, model) and `compare_with_table5`
writes the markdown comparison.

The ranges: the paper lists beta_rec, beta_kl in [0.05, 1.0] (81 VAE, 210 S-IntroVAE and
1,260 IntroVAE runs); its printed ranges did not survive in our copy of the text, so we use the
eight values of BETA_GRID for beta_rec and beta_kl, and for beta_neg and m the values of
Table 5 plus a neighbour or two (1,260 / 210 = 6 margins). Any range can be overridden.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from ..errors import ConfigError, check_choice
from ..params import parse_list, parse_numbers
from ..train import METHOD_TITLES, METHODS
from .data import TOY_DATASETS
from .study import TABLE5, TABLE5_SENTINEL, resolve_hparams

__all__ = ["BETA_GRID", "BETA_NEG_GRID", "M_GRID", "SWEEP_RANGES", "queue_command",
           "collect_experiments", "best_configurations", "compare_with_table5", "HPARAMS"]

HPARAMS = ("beta_rec", "beta_kl", "beta_neg", "m")
BETA_GRID = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.8, 1.0)   # beta_rec and beta_kl (section 9.2.1)
BETA_NEG_GRID = (0.1, 0.2, 0.5, 0.9, 1.0)              # Table 5 uses 0.2, 0.5, 0.9, 1.0
M_GRID = (0.5, 1.0, 2.0, 5.0, 8.0, 10.0)               # Table 5 uses 1, 2, 5, 8
SWEEP_RANGES = {
    "vae": {"beta_rec": BETA_GRID, "beta_kl": BETA_GRID},
    "soft_intro_vae": {"beta_rec": BETA_GRID, "beta_kl": BETA_GRID, "beta_neg": BETA_NEG_GRID},
    "introvae": {"beta_rec": BETA_GRID, "beta_kl": BETA_GRID, "beta_neg": BETA_NEG_GRID, "m": M_GRID},
}


def queue_command(dataset: str, model: str, ranges: dict | None = None, extra: dict | None = None,
                  section: str = "toy2d") -> list[str]:
    """`dvc exp run --queue` argv that queues the grid of one (dataset, model).

    Args:
        dataset, model: a key of TOY_DATASETS and of METHODS.
        ranges: {hparam: values} replacing SWEEP_RANGES[model] entries (e.g. a 2x2 test grid).
        extra: other params.yaml keys of the section to set in every run, e.g. {"n_iter": 3000}.
        section: the params.yaml section, which is also the name of the stage that is run.
    Returns:
        the argv list; DVC expands each comma list, so it queues prod(len(values)) experiments.
    """
    check_choice("dataset", dataset, TOY_DATASETS)
    check_choice("model", model, METHODS)
    grid = {**SWEEP_RANGES[model], **(ranges or {})}
    for name, values in grid.items():
        check_choice("hyper-parameter", name, HPARAMS)
        if not values:
            raise ConfigError(f"empty range for {name}")
    # a comma in a fixed value (lr_milestones) must be quoted, or Hydra reads it as one more sweep axis
    fixed = {k: f'"{v}"' if "," in str(v) else v for k, v in (extra or {}).items()}
    sets = {"datasets": dataset, "methods": model, **fixed,
            **{k: ",".join(f"{v:g}" for v in vals) for k, vals in grid.items()}}
    argv = ["dvc", "exp", "run", "--queue", section]  # the stage of that name (and its upstream) only
    for k, v in sets.items():
        argv += ["-S", f"{section}.{k}={v}"]
    return argv


def grid_size(model: str, ranges: dict | None = None) -> int:
    """Number of experiments `queue_command(..., model, ranges)` queues."""
    n = 1
    for values in {**SWEEP_RANGES[model], **(ranges or {})}.values():
        n *= len(values)
    return n


# ------------------------------------------------------------------ collection

def _experiment_records(exp_show: list):
    """Yield (name, rev, data) for every experiment in `dvc exp show --json` output (DVC 3 layout)."""
    for baseline in exp_show:
        for group in baseline.get("experiments") or []:
            for rec in group.get("revs") or []:
                yield rec.get("name") or group.get("name"), rec.get("rev"), rec.get("data") or {}


def collect_experiments(exp_show: list, section: str = "toy2d", params_file: str = "params.yaml") -> list[dict]:
    """One row per (experiment, dataset, model) that has metrics.

    Args:
        exp_show: parsed `dvc exp show --json` (a list of baselines with their experiments).
        section: params.yaml section of the stage; its `metrics_path` names the metrics file.
    Returns:
        rows {"name", "rev", "dataset", "model", "hparams": {beta_rec, ...}, "metrics": {...}};
        experiments that failed or have no metrics are left out.
    """
    rows = []
    for name, rev, data in _experiment_records(exp_show):
        params = (((data.get("params") or {}).get(params_file) or {}).get("data") or {}).get(section)
        if not params:
            continue
        metrics_file = ((data.get("metrics") or {}).get(params.get("metrics_path")) or {}).get("data")
        for dataset, per_model in (metrics_file or {}).items():
            for model, met in per_model.items():
                hp = resolve_hparams(dataset, model, *(params.get(k, TABLE5_SENTINEL) for k in HPARAMS))
                rows.append({"name": name, "rev": rev, "dataset": dataset, "model": model,
                             "hparams": hp, "metrics": met})
    return rows


def best_configurations(rows: list[dict], metric: str = "kl") -> dict:
    """The row with the lowest `metric` per (dataset, model), plus how many runs were compared.

    Returns:
        {(dataset, model): row | {"n_runs": n}}; rows lacking the metric (or NaN) are skipped.
    """
    best: dict = {}
    for r in rows:
        v = r["metrics"].get(metric)
        if v is None or v != v:
            continue
        key = (r["dataset"], r["model"])
        n = best.get(key, {}).get("n_runs", 0) + 1
        if key not in best or v < best[key]["metrics"][metric]:
            best[key] = dict(r)
        best[key]["n_runs"] = n
    return best


def compare_with_table5(best: dict, metric: str = "kl") -> str:
    """Markdown: per (dataset, model) our best (beta_rec, beta_kl, beta_neg, m) beside Table 5's."""
    def fmt(values):
        return ", ".join("-" if v is None else f"{v:g}" for v in values)
    lines = [f"| dataset | model | runs | best {metric} | ours (beta_rec, beta_kl, beta_neg, m) "
             "| Table 5 | experiment |", "|---|---|---|---|---|---|---|"]
    for (d, mo), r in sorted(best.items()):
        ours = [r["hparams"].get(k) for k in HPARAMS]
        lines.append(f"| {TOY_DATASETS[d].title} | {METHOD_TITLES[mo]} | {r['n_runs']} | "
                     f"{r['metrics'][metric]:.4g} | {fmt(ours)} | {fmt(TABLE5[(d, mo)])} | {r['name']} |")
    return "\n".join(lines) + "\n"


def read_exp_show(cwd: str | Path = ".") -> list:
    """Run `dvc exp show --json` in cwd and parse it."""
    res = subprocess.run(["dvc", "exp", "show", "--json"], cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"dvc exp show failed: {res.stderr.strip()}")
    return json.loads(res.stdout)


# ------------------------------------------------------------------------- CLI

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sivae.toy2d.sweep", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("queue", help="print (or, with --run, execute) the dvc exp run --queue command")
    q.add_argument("--dataset", default="all", help="'all' or a comma list of datasets")
    q.add_argument("--model", default="all", help="'all' or a comma list of models")
    for k in HPARAMS:
        q.add_argument(f"--{k.replace('_', '-')}", type=lambda v, k=k: parse_numbers(k, v),
                       help=f"override the {k} range (comma list)")
    q.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                   help="another toy2d key for every run, e.g. -S n_iter=3000")
    q.add_argument("--run", action="store_true", help="execute the commands instead of printing them")
    c = sub.add_parser("collect", help="best configuration per dataset/model from dvc exp show --json")
    c.add_argument("--json", type=Path, help="a saved `dvc exp show --json` (default: run it here)")
    c.add_argument("--metric", default="kl", choices=("kl", "jsd", "gnelbo", "jsd_textbook"))
    c.add_argument("--out", type=Path, help="also write the markdown table here")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "queue":
            datasets = parse_list("dataset", args.dataset, list(TOY_DATASETS))
            models = parse_list("model", args.model, METHODS)
            ranges = {k: getattr(args, k) for k in HPARAMS if getattr(args, k)}
            extra = dict(kv.split("=", 1) for kv in args.set)
            for d in datasets:
                for mo in models:
                    own = {k: v for k, v in ranges.items() if k in SWEEP_RANGES[mo]}
                    argv_ = queue_command(d, mo, own, extra)
                    print(f"# {d} / {mo}: {grid_size(mo, own)} experiments\n{shlex.join(argv_)}", flush=True)
                    if args.run:
                        subprocess.run(argv_, check=True)
        else:
            exp_show = json.loads(args.json.read_text()) if args.json else read_exp_show()
            best = best_configurations(collect_experiments(exp_show), args.metric)
            if not best:
                print("no finished experiments with metrics found", file=sys.stderr)
                return 1
            table = compare_with_table5(best, args.metric)
            print(table)
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(table)
    except (ConfigError, RuntimeError, subprocess.CalledProcessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
