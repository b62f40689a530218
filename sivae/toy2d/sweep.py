"""The grid searches behind Table 5 (paper sections 6.1 and 9.2.1), as DVC experiments.

No home-made runner: the `toy2d` stage already takes every hyper-parameter as a scalar
(`toy2d.beta_rec`, ..., each "table5" or a number), so a grid is one queued DVC command
whose comma lists DVC (with Hydra's sweep syntax) expands into one experiment per point:

    python -m sivae.toy2d.sweep queue --dataset 8gaussians --model soft_intro_vae        # print it
    python -m sivae.toy2d.sweep queue --dataset 8gaussians --model soft_intro_vae --run  # queue it
    dvc queue start --jobs 2          # run the queue, N in parallel (or: dvc exp run --run-all)
    dvc queue status                  # progress
    python -m sivae.toy2d.sweep collect     # dvc exp show --json -> best per dataset/model vs Table 5

Or a whole grid as ONE experiment (the `sweep_grid` stage): `train_grid` trains every point of a
(dataset, model) grid through the stack engine (sivae.stack, one stack per method of at most
STACK_MAX_RUNS runs), evaluates each run as the toy2d study does, and returns rows in the format of
`collect_experiments`, so `best_configurations` and `compare_with_table5` apply unchanged:

    python -m sivae.toy2d.sweep grid --dataset spiral --model soft_intro_vae --out outputs/sweep/spiral
    dvc exp run sweep_grid -S sweep_grid.dataset=spiral -S sweep_grid.beta_rec=sweep ...   # as a DVC experiment

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
import itertools
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from ..errors import ConfigError, SivaeError, check_choice
from ..paper import METHOD_TITLES, TABLE5
from ..params import parse_list, parse_numbers, read_section
from ..runinfo import metrics_file_key, write_json, write_markdown, write_text
from ..train import METHODS
from .config import TABLE5_SENTINEL, RunSpec, Toy2dConfig, resolve_hparams
from .data import TOY_DATASETS
from .study import flat_summary, summarize, train_and_evaluate

__all__ = ["BETA_GRID", "BETA_NEG_GRID", "M_GRID", "SWEEP_RANGES", "queue_command",
           "collect_experiments", "best_configurations", "compare_with_table5", "HPARAMS",
           "grid_points", "train_grid", "write_grid", "grid_settings", "run_sweep_grid", "GRID_PARAMS", "BASE_PARAMS",
           "SWEEP_SENTINEL", "GRID_METRICS"]

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
    metric = metrics_file_key(metric)  # rows hold metrics as the metrics files do (gnelbo as gnelbo_x1e7)
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
    metric = metrics_file_key(metric)
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


# ------------------------------------------------ a whole grid as one experiment

SWEEP_SENTINEL = "sweep"   # a range given as "sweep": SWEEP_RANGES's values for the model
GRID_METRICS = ("kl", "jsd", "gnelbo", "jsd_textbook")
# The `sweep_grid` section of params.yaml (profiles/*.yaml hold the same values) and its defaults: a 2x2 check
# that trains in seconds, so the default `dvc repro` pays next to nothing for the stage. A full Table 5 grid is
# an experiment: `-S sweep_grid.beta_rec=sweep ...` (docs/toy2d.md). Ranges: a list, a comma string or "sweep".
GRID_PARAMS = {
    "dataset": "8gaussians", "model": "soft_intro_vae",
    "beta_rec": [0.1, 0.2], "beta_kl": [0.1, 0.2], "beta_neg": [0.9], "m": SWEEP_SENTINEL,
    "n_seeds": 1, "n_iter": 100, "batch_size": 64, "lr": 0.0002, "lr_milestones": "0.6,0.8", "num_vae": 20,
    "gamma_r": 1.0e-08, "n_samples": 2000, "grid_size": 128, "engine": "stack", "metric": "kl",
    "ckpt_dir": "outputs/sweep_grid/checkpoints", "metrics_path": "outputs/sweep_grid/metrics.json",
    "points_path": "outputs/sweep_grid/points.json", "table_path": "outputs/sweep_grid/table5.md",
}
BASE_PARAMS = {"seed": 0, "device": "auto"}   # the `base` section keys the grid reads
OUT_FILES = {"ckpt_dir": "checkpoints", "metrics_path": "metrics.json", "points_path": "points.json",
             "table_path": "table5.md"}       # what --out DIR puts where


def grid_points(model: str, ranges: dict | None = None) -> list[dict]:
    """Every point of the model's grid: SWEEP_RANGES[model], each range replaced by the one in `ranges`.

    Args:
        ranges: {hparam: values}, values a comma string, a number or a sequence (each finite and >= 0;
            repeats dropped), or "sweep" (SWEEP_RANGES's). A hyper-parameter the model does not use
            (beta_neg and m for the VAE, m for Soft-IntroVAE) is checked but leaves its grid alone.
    Returns:
        [{hparam: value}] in itertools.product order (the last hyper-parameter varies fastest).
    """
    check_choice("model", model, METHODS)
    grid = dict(SWEEP_RANGES[model])
    for name, values in (ranges or {}).items():
        check_choice("hyper-parameter", name, HPARAMS)
        if isinstance(values, str) and values.strip() == SWEEP_SENTINEL:
            continue
        parsed = tuple(dict.fromkeys(parse_numbers(name, values, nonnegative=True)))
        if name in grid:
            grid[name] = parsed
    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def _point_label(hp: dict, sep: str = " ") -> str:
    return sep.join(f"{k}={hp[k]:.12g}" for k in HPARAMS if k in hp)


def _grid_specs(base: Toy2dConfig, ranges) -> list[RunSpec]:
    """The RunSpecs of every (dataset, model, point, seed) of base's datasets and methods; every point checked
    (its own Toy2dConfig) before anything trains. Checkpoints <ckpt_dir>/<dataset>/<model>/<point>/seed<k>."""
    points = {mo: grid_points(mo, ranges) for mo in base.methods}   # checks every range, also those a model ignores
    specs = []
    for d in base.datasets:
        for mo in base.methods:
            for pt in points[mo]:
                c = base.replace(datasets=d, methods=mo, **pt)
                hp = c.weights(d, mo)
                specs += [RunSpec(d, mo, seed, c.train_config(d, mo, seed),
                                  Path(base.ckpt_dir) / d / mo / _point_label(hp, "_") / f"seed{seed}", hparams=hp,
                                  mlp=base.mlp)
                          for seed in base.seeds]
    return specs


def train_grid(base: Toy2dConfig, ranges: dict | None = None) -> list[dict]:
    """Train and evaluate a whole grid in one process: one row per (dataset, model, grid point).

    base: the schedule, evaluation settings, seeds and checkpoint folder, and the grid's datasets and methods
    (its loss weights are replaced by each point's; `budget` is not used). The grid of each model is
    `grid_points(model, ranges)`, every point trained for each seed with the toy2d study's code
    (`train_and_evaluate`: engine "stack" trains each method's runs as stacks of at most STACK_MAX_RUNS, engine
    "single" one Trainer per run; same trajectories up to float rounding) and evaluated by `evaluate_toy`.
    All points are checked (one ConfigError naming the first bad one) before anything trains.

    Returns:
        rows as `collect_experiments` gives them: {"name": the point ("beta_rec=0.1 beta_kl=0.2 ..."),
        "rev": None, "dataset", "model", "hparams": the loss weights trained with, "metrics": mean over seeds
        and "<metric>_std", as the toy2d stage's metrics.json holds them}.
        Checkpoints: <ckpt_dir>/stacks/<method>-<runs>/ (stack) or <ckpt_dir>/<dataset>/<model>/<point>/seed<k>/.
    """
    base = base.replace(budget=False)
    runs = train_and_evaluate(_grid_specs(base, ranges), base)
    by_point: dict = {}
    for run in runs:
        by_point.setdefault((run.dataset, run.model, _point_label(run.hparams)), []).append(run)
    return [{"name": label, "rev": None, "dataset": d, "model": mo, "hparams": dict(rs[0].hparams),
             "metrics": flat_summary(summarize(rs))[d][mo]} for (d, mo, label), rs in by_point.items()]


def write_grid(rows: list[dict], metric: str, metrics_path, points_path, table_path, meta: dict | None = None) -> dict:
    """Write a grid's results; returns best_configurations(rows, metric).

    metrics_path: the DVC metrics file {dataset: {model: {the best point's metrics, "best_<hparam>": its
        weights, "n_points"}}}: nested dicts of numbers, which `dvc metrics show` / `dvc exp show` flatten.
    points_path: every row, [{"dataset", "model", <hparams>, <metrics>}] (a DVC plot: kl against beta_rec).
    table_path: compare_with_table5's markdown (our best point beside Table 5's), then the settings in `meta`.
    """
    check_choice("metric", metric, GRID_METRICS)
    best = best_configurations(rows, metric)
    flat: dict = {}
    for (d, mo), r in sorted(best.items()):
        flat.setdefault(d, {})[mo] = {**r["metrics"], **{f"best_{k}": v for k, v in r["hparams"].items()},
                                      "n_points": r["n_runs"]}
    write_json(flat, metrics_path)
    write_json([{"dataset": r["dataset"], "model": r["model"], **r["hparams"], **r["metrics"]} for r in rows],
               points_path)
    write_markdown(compare_with_table5(best, metric).rstrip("\n").split("\n"), table_path, meta=meta)
    return best


def grid_settings(section: str | None = None, params_file="params.yaml", overrides: dict | None = None) -> dict:
    """The grid's settings: GRID_PARAMS and BASE_PARAMS, then (if `section`) that section and `base` of
    params_file, then `overrides`. An unknown key (in the section or the overrides) is a ConfigError."""
    out = {**BASE_PARAMS, **GRID_PARAMS}
    layers = []
    if section is not None:
        base, sec = read_section(params_file, section)
        layers += [(f"{params_file} section base", {k: v for k, v in base.items() if k in BASE_PARAMS}),
                   (f"{params_file} section {section}", sec)]
    layers.append(("the overrides", overrides or {}))
    for where, layer in layers:
        unknown = sorted(set(layer) - set(out))
        if unknown:
            raise ConfigError(f"{where} has unknown keys {unknown}; the grid's parameters: {', '.join(out)}")
        out.update(layer)
    return out


def run_sweep_grid(settings: dict, progress: bool = False) -> tuple[list[dict], dict]:
    """train_grid with grid_settings' values, then write_grid; returns (rows, best)."""
    s = settings
    check_choice("metric", s["metric"], GRID_METRICS)   # before training, not after
    parse_list("dataset", s["dataset"], list(TOY_DATASETS))   # named as the grid's settings name them
    parse_list("model", s["model"], METHODS)
    base = Toy2dConfig.from_params({k: v for k, v in s.items() if k not in HPARAMS}, datasets=s["dataset"],
                                   methods=s["model"], n_iter_factor="", budget=False, progress=progress)
    rows = train_grid(base, {k: s[k] for k in HPARAMS})
    meta = {k: s[k] for k in ("n_iter", "batch_size", "n_seeds", "num_vae", "lr_milestones", "grid_size", "engine")}
    best = write_grid(rows, s["metric"], s["metrics_path"], s["points_path"], s["table_path"], meta=meta)
    return rows, best


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
    g = sub.add_parser("grid", help="train a whole grid as one job (a few stacks): metrics JSON + Table 5 comparison")
    g.add_argument("--section", help="read the settings from this section (and base) of --params, as the "
                                     "sweep_grid stage does: --section sweep_grid")
    g.add_argument("--params", type=Path, default=Path("params.yaml"), help="parameters file (default: params.yaml)")
    g.add_argument("--dataset", help="a dataset, a comma list or 'all' (default 8gaussians)")
    g.add_argument("--model", help="a model, a comma list or 'all' (default soft_intro_vae)")
    for k in HPARAMS:
        g.add_argument(f"--{k.replace('_', '-')}", dest=k, help=f"the {k} range: a comma list, or 'sweep' (SWEEP_RANGES)")
    g.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"any other setting, value read as YAML: {', '.join(list(BASE_PARAMS) + list(GRID_PARAMS))}")
    g.add_argument("--out", type=Path, help="write metrics.json, points.json, table5.md and checkpoints/ in this folder")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "grid":
            return _grid_main(args)
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
                write_text(table, args.out)   # atomic; an OutputError names the file
    except (SivaeError, RuntimeError, subprocess.CalledProcessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _grid_main(args) -> int:
    overrides = {}
    for kv in args.set:
        if "=" not in kv:
            raise ConfigError(f"-S takes KEY=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        overrides[k.strip()] = yaml.safe_load(v)
    overrides |= {k: getattr(args, k) for k in ("dataset", "model", *HPARAMS) if getattr(args, k) is not None}
    if args.out is not None:
        overrides |= {k: str(args.out / name) for k, name in OUT_FILES.items()}
    settings = grid_settings(args.section, args.params, overrides)
    if args.section:   # as under sivae.stage: a checkpoint of another configuration is retrained, not an error
        os.environ.setdefault("SIVAE_STAGE", args.section)
    _, best = run_sweep_grid(settings, progress=not args.no_progress)
    print(Path(settings["table_path"]).read_text())
    print(f"-> {settings['metrics_path']}, {settings['points_path']}, {settings['table_path']}", file=sys.stderr)
    return 0 if best else 1


if __name__ == "__main__":
    sys.exit(main())
