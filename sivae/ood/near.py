"""Beyond the paper (issue 34): near-OOD pairs built from the data at hand, scored by the paper's likelihood
and the corrected scores of sivae.ood.scores, for every scored model.

Pairs (`near_pairs`, one comma list, parsed by `parse_near_pairs`):
    heldout:<dataset>:<class>   models trained here on the other classes of <dataset> (the same settings as
                                the stage's other own models, on `heldout_n_train` images); OOD: the test
                                images of <class>; near_n_eval images of each of its sets (test, train,
                                the class). The only class-level near-OOD pair: a model trained on all
                                ten classes has seen the class, so scoring it there would not test OOD at all.
    blur:<dataset>:<sigma>      <dataset>'s test images blurred by a Gaussian of std sigma pixels
    shift:<dataset>:<pixels>    ... translated right and down by <pixels> (zero fill)
    contrast:<dataset>:<factor> ... with contrast scaled: x -> m + factor (x - m), m each image's mean
    noise                       uniform noise images (far-OOD sanity check), against every in_dist model
    constant                    images of one uniform grey level each (far-OOD), against every in_dist model
    folder:<path>               a folder of your images, against every in_dist model (read at its shape)
The transformed pairs are scored by the models trained on <dataset>, which must be one of `in_dist`.

Per model, every set gets every score of `scores` (sivae.ood.scores.SCORES): the paper's importance-weighted
log-likelihood (reused from the Table 7 run where that set was scored there; the training images get only it,
for the typicality test's mean), input complexity (PNG),
the likelihood ratio against a background VAE trained here on perturbed training images (one per in-distribution
set and seed, small widths: `bg_*`), likelihood regret and the typicality test. AUROC and FPR at 95% TPR
of each OOD set against the in-distribution test images.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import torch

from ..errors import ConfigError, DataError
from ..images.data import DATASETS, ImageData, load_image_dataset, root_for
from ..images.models import arch_for
from ..images.training import run_name, train_image_model
from ..paper import METHOD_TITLES
from ..params import split_items
from ..runinfo import write_markdown
from ..stats import seed_stats
from .metrics import PAPER_TABLE7, auroc, prepare_images, score_histograms, score_images
from .scores import (
    SCORE_TITLES,
    SCORES,
    complexity_score,
    fpr_at_tpr,
    likelihood_ratio,
    likelihood_regret,
    perturb_pixels,
    png_code_length_bits,
    typicality_score,
)

if TYPE_CHECKING:
    from .config import OodConfig

__all__ = ["NEAR_KINDS", "NearPair", "parse_near_pairs", "transform_images", "far_images", "BeyondRun",
           "PairKey", "run_beyond_study", "beyond_rows", "summarize_beyond", "beyond_metrics", "write_beyond_table",
           "most_telling_pair", "histograms_for", "KIND_OF"]

NEAR_KINDS = {
    "heldout": "heldout:<dataset>:<class>",
    "blur": "blur:<dataset>:<sigma in pixels>",
    "shift": "shift:<dataset>:<pixels>",
    "contrast": "contrast:<dataset>:<factor in (0, 1]>",
    "noise": "noise",
    "constant": "constant",
    "folder": "folder:<path>",
}
KIND_OF = {"heldout": "near", "blur": "near", "shift": "near", "contrast": "near", "noise": "far",
           "constant": "far", "folder": "yours", "paper": "paper"}


@dataclass(frozen=True)
class NearPair:
    """One parsed entry of near_pairs: kind, the dataset it is built from (None: every in_dist), its number."""
    spec: str
    kind: str
    dataset: str | None = None
    arg: float | int | str | None = None


def _number(spec: str, text: str, what: str, integer=False, lo=None, hi=None):
    try:
        v = float(text)
    except ValueError:
        raise ConfigError(f"near pair {spec!r}: {what} must be a number, got {text!r}") from None
    if not math.isfinite(v) or (integer and v != int(v)) or (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f" in [{lo:g}, {hi:g}]" if lo is not None and hi is not None else f" >= {lo:g}" if lo is not None else ""
        raise ConfigError(f"near pair {spec!r}: {what} must be {'an integer' if integer else 'a number'}{rng}, "
                          f"got {text!r}")
    return int(v) if integer else v


def parse_near_pairs(value, in_dists) -> list[NearPair]:
    """Parse the near_pairs parameter (a comma list or a sequence; "", "none" or an empty sequence: no pairs).

    Args:
        value: e.g. "heldout:fashionmnist:9, blur:mnist:1.0, noise, constant, folder:/my/images".
        in_dists: the study's in-distribution datasets; transformed pairs must name one of them.
    Returns:
        list of NearPair, in order. ConfigError naming the bad entry and the expected forms (NEAR_KINDS).
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")) or \
            (isinstance(value, (list, tuple)) and not value):
        return []
    forms = ", ".join(NEAR_KINDS.values())
    out, seen = [], set()
    for spec in split_items("near_pairs", value):
        kind, _, rest = spec.partition(":")
        if kind not in NEAR_KINDS:
            raise ConfigError(f"near pair {spec!r}: unknown kind {kind!r}; the forms are {forms}")
        if kind == "folder":
            if not rest:
                raise ConfigError(f"near pair {spec!r}: a folder needs a path: folder:<path>")
            if not Path(rest).is_dir():
                raise DataError(f"near pair {spec!r}: the folder {rest} does not exist")
            pair = NearPair(spec, kind, None, rest)
        elif kind in ("noise", "constant"):
            if rest:
                raise ConfigError(f"near pair {spec!r}: {kind} takes nothing after it (it is scored by every "
                                  f"in_dist model)")
            pair = NearPair(spec, kind)
        else:
            parts = rest.split(":")
            if len(parts) != 2 or not all(parts):
                raise ConfigError(f"near pair {spec!r}: expected {NEAR_KINDS[kind]}")
            ds, arg = parts
            if ds not in DATASETS:
                raise ConfigError(f"near pair {spec!r}: unknown dataset {ds!r}; choose one of {', '.join(DATASETS)}")
            if kind == "heldout":
                arg = _number(spec, arg, "the held-out class", integer=True, lo=0, hi=9)
            else:
                if ds not in in_dists:
                    raise ConfigError(f"near pair {spec!r} is scored by the models trained on {ds}, but in_dist "
                                      f"({', '.join(in_dists)}) has none: add {ds} to in_dist or drop the pair")
                arg = {"blur": lambda: _number(spec, arg, "sigma", lo=0.0),
                       "shift": lambda: _number(spec, arg, "the shift in pixels", integer=True, lo=1, hi=1000),
                       "contrast": lambda: _number(spec, arg, "the contrast factor", lo=0.0, hi=1.0)}[kind]()
                if kind in ("blur", "contrast") and (arg == 0 if kind == "blur" else arg in (0, 1)):
                    why = "sigma 0 blurs nothing" if kind == "blur" else "factor 0 or 1 is not a change of contrast"
                    raise ConfigError(f"near pair {spec!r}: {why}")
            pair = NearPair(spec, kind, ds, arg)
        if spec in seen:
            raise ConfigError(f"near pair {spec!r} is listed twice")
        seen.add(spec)
        out.append(pair)
    return out


# ------------------------------------------------------------------------ the sets
def transform_images(kind: str, x: torch.Tensor, arg) -> torch.Tensor:
    """Blur (Gaussian, std arg pixels), shift (arg pixels right and down, zero fill) or contrast (factor arg
    about each image's mean) of (N, C, H, W) images in [0, 1]; the result stays in [0, 1]."""
    if kind == "blur":
        from torchvision.transforms.functional import gaussian_blur
        k = 2 * int(math.ceil(3 * float(arg))) + 1
        return gaussian_blur(x, [k, k], [float(arg), float(arg)]).clamp(0, 1)
    if kind == "shift":
        s = int(arg)
        out = torch.zeros_like(x)
        if s < x.shape[-1] and s < x.shape[-2]:
            out[..., s:, s:] = x[..., :x.shape[-2] - s, :x.shape[-1] - s]
        return out
    if kind == "contrast":
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        return (m + float(arg) * (x - m)).clamp(0, 1)
    raise ConfigError(f"unknown transform {kind!r}; choose blur, shift or contrast")


def far_images(kind: str, n: int, shape: tuple, seed: int) -> torch.Tensor:
    """n images of `shape`: uniform noise, or one uniform grey level per image (constant)."""
    g = torch.Generator().manual_seed(int(seed))
    if kind == "noise":
        return torch.rand((n, *shape), generator=g)
    if kind == "constant":
        return torch.rand((n, 1, 1, 1), generator=g).expand(n, *shape).contiguous()
    raise ConfigError(f"unknown far-OOD set {kind!r}; choose noise or constant")


def _subset(x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    if 0 < int(n) < len(x):
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(int(seed)))[:int(n)]
        x = x[idx.sort().values]
    return x


# ------------------------------------------------------------------------ the study
@dataclass
class BeyondRun:
    """One model's scores on one in-distribution group and its OOD sets."""
    in_dist: str                 # group label: a dataset, or <dataset>_without_<class> for heldout models
    method: str
    seed: int
    kinds: dict                  # {ood set: paper / near / far / yours}
    scores: dict                 # {set: {score: (N,) array}}; sets "test", "train", then the OOD sets
    auroc: dict                  # {ood set: {score: float}}
    fpr95: dict                  # {ood set: {score: float}}
    seconds: dict = field(default_factory=dict)   # {score: seconds spent computing it for this model}


def _train_heldout(cfg: OodConfig, dataset: str, cls: int, method: str, seed: int, log):
    """A model trained here on the training images of `dataset` other than class `cls` (heldout_n_train of them,
    lr heldout_lr, the length of cfg.train_length(dataset) and the widths train_channels), and those images."""
    full = load_image_dataset(dataset, "train", root_for(dataset, cfg.data_root, cfg.paper_data_root))
    keep = full.y != cls
    x, y = full.x[keep], full.y[keep]
    if cfg.heldout_n_train > 0:
        x, y = x[:cfg.heldout_n_train], y[:cfg.heldout_n_train]
    if len(x) == 0:
        raise DataError(f"heldout:{dataset}:{cls}: no training images of the other classes")
    data = ImageData(x, y, dataset, "train")
    arch = arch_for(dataset, data.shape[1], data.shape[0], cfg.train_channels)
    length, lr = cfg.train_length(dataset), cfg.heldout_lr
    folder = Path(cfg.own_ckpt_dir) / "heldout" / run_name(f"{dataset}_without{cls}_n{len(x)}_lr{lr:g}", method, seed)
    log(f"heldout:{dataset}:{cls}: training {method} seed {seed} on {len(x)} images under {folder}")
    model = train_image_model(data, arch, method, seed, ckpt_dir=folder, device=cfg.run_device, progress=False,
                              epochs=length.epochs, batch_size=length.batch_size, lr=lr)
    for net in (model.encoder, model.decoder):
        net.to(memory_format=torch.channels_last)
    return model, data


def _train_background(cfg: OodConfig, label: str, data: ImageData, seed: int, log):
    """The likelihood ratio's background VAE of one group and seed: bg_n_train of `data`'s images, a share bg_mu
    of their values replaced (perturb_pixels), widths bg_channels, bg_epochs / bg_batch_size / bg_lr."""
    x = data.x[:cfg.bg_n_train] if cfg.bg_n_train > 0 else data.x
    pert = ImageData(perturb_pixels(x, cfg.bg_mu, seed=10_000 + int(seed)), data.y[:len(x)], data.name, "train")
    arch = arch_for(data.name if data.name in DATASETS else "folder", data.shape[1], data.shape[0], cfg.bg_channels)
    tag = f"{label}_mu{cfg.bg_mu:g}_n{len(x)}_c{'-'.join(map(str, arch.channels))}_e{cfg.bg_epochs:g}"
    folder = Path(cfg.own_ckpt_dir) / "background" / run_name(tag, "vae", seed)
    t0 = time.time()
    model = train_image_model(pert, arch, "vae", seed, ckpt_dir=folder, device=cfg.run_device, progress=False,
                              epochs=cfg.bg_epochs, batch_size=cfg.bg_batch_size, lr=cfg.bg_lr)
    log(f"background VAE for {label} seed {seed} (mu={cfg.bg_mu:g}, {len(x)} images, widths {arch.channels}): "
        f"{time.time() - t0:.1f} s")
    for net in (model.encoder, model.decoder):
        net.to(memory_format=torch.channels_last)
    return model


def run_beyond_study(cfg: OodConfig, runs, log=print) -> list[BeyondRun]:
    """Score every trained model of the Table 7 run (`runs`, sivae.ood.study.run_ood_study) and the heldout
    models on its in-distribution, paper OOD and near/far sets with every score of cfg.scores.

    Args:
        cfg: the stage's OodConfig (the same as the Table 7 run's): groups, pairs (near_pairs), methods, seeds,
            the scoring settings of the Table 7 run and those of the scores (bg_*, regret_*, typicality_batch,
            near_n_eval, heldout_*).
        runs: the OODRun list (their IW log-likelihoods are reused; released models are left out).
        log: progress messages.
    Returns:
        list of BeyondRun, one per (group, method, seed).
    """
    from .study import _config, find_or_train_model, load_eval_set
    cfg = _config(cfg, "run_beyond_study")
    sc, eval_seed, near_n, n_eval = cfg.scores, cfg.seed, cfg.near_n_eval, cfg.n_eval
    data_root, paper_data_root = cfg.data_root, cfg.paper_data_root
    data_kw = dict(data_root=data_root, paper_data_root=paper_data_root, seed=eval_seed)
    by_key = {(r.in_dist, r.method, r.seed): r for r in runs if not getattr(r, "released", False)}
    iw = dict(n_samples=cfg.n_importance, sigma2=cfg.sigma2, chunk_size=cfg.chunk_size, seed=eval_seed,
              device=cfg.run_device)
    out, png_cache, bg_cache, bg_models = [], {}, {}, {}

    def group_jobs():
        for in_ds, oods in cfg.groups:
            yield in_ds, in_ds, oods, None
        for p in cfg.pairs:
            if p.kind == "heldout":
                yield f"{p.dataset}_without_{p.arg}", p.dataset, [], p

    for label, in_ds, paper_oods, held in group_jobs():
        if held is not None:
            test_full = load_image_dataset(in_ds, "test", root_for(in_ds, data_root, paper_data_root))
            keep = test_full.y != held.arg
            base = {"test": _subset(test_full.x[keep], near_n, eval_seed),
                    held.spec: _subset(test_full.x[~keep], near_n, eval_seed)}
            if len(base[held.spec]) == 0:
                raise DataError(f"{held.spec}: the test split of {in_ds} has no images of class {held.arg}")
        else:
            base = {"test": load_eval_set(in_ds, "test", n_eval=n_eval, **data_kw),
                    "train": load_eval_set(in_ds, "train", n_eval=n_eval, **data_kw)}
        for method in cfg.methods:
            for seed in cfg.seeds:
                t_model = {s: 0.0 for s in sc}
                if held is not None:
                    model, hdata = _train_heldout(cfg, in_ds, held.arg, method, seed, log)
                    sets = dict(base, train=_subset(hdata.x, near_n, eval_seed))
                    prev = None
                else:
                    prev = by_key.get((in_ds, method, seed))
                    if prev is None:
                        raise ConfigError(f"no Table 7 run of {in_ds} {method} seed {seed} to extend")
                    model = find_or_train_model(cfg, in_ds, method, seed, ckpt_dir=Path(prev.ckpt).parents[1],
                                                train_missing=False, log=log)
                    shape = (model.arch.cdim, model.arch.image_size, model.arch.image_size)
                    sets = dict(base)
                    for o in paper_oods:
                        x = load_eval_set(o, "test", n_eval=n_eval, shape=shape, **data_kw)
                        sets[o] = prepare_images(o, x, shape, cfg.convert)
                    for p in cfg.pairs:
                        if p.kind in ("blur", "shift", "contrast") and p.dataset == in_ds:
                            src = load_eval_set(in_ds, "test", n_eval=near_n, **{**data_kw, "seed": eval_seed + 1})
                            sets[p.spec] = transform_images(p.kind, src, p.arg)
                        elif p.kind in ("noise", "constant"):
                            sets[p.spec] = far_images(p.kind, near_n or n_eval or 1000, shape, eval_seed + 2)
                        elif p.kind == "folder":
                            sets[p.spec] = load_eval_set(f"folder:{p.arg}", "test", n_eval=near_n, shape=shape,
                                                         **data_kw)
                kinds = {o: ("paper" if o in paper_oods and not o.startswith("folder:") else KIND_OF[o.split(":")[0]])
                         for o in sets if o not in ("test", "train")}
                scored = {k: v for k, v in sets.items() if k != "train"}   # train: only H of the typicality test
                per = {}
                t0 = time.time()
                for name, x in sets.items():
                    per[name] = {"loglik": prev.result.scores[name].loglik if prev is not None and name in
                                 prev.result.scores else score_images(model.encoder, model.decoder, x, **iw).loglik}
                t_model["loglik"] += time.time() - t0
                if "complexity" in sc:
                    t0 = time.time()
                    for name, x in scored.items():
                        key = (label, name, tuple(x.shape))
                        if key not in png_cache:
                            png_cache[key] = png_code_length_bits(x)
                        per[name]["complexity"] = complexity_score(per[name]["loglik"], png_cache[key], x[0].numel())
                    t_model["complexity"] += time.time() - t0
                if "ratio" in sc:
                    t0 = time.time()
                    if (label, seed) not in bg_models:
                        src = hdata if held is not None else load_image_dataset(
                            in_ds, "train", root_for(in_ds, data_root, paper_data_root),
                            cfg.bg_n_train if cfg.bg_n_train > 0 else None)
                        bg_models[(label, seed)] = _train_background(cfg, label, src, seed, log)
                    b = bg_models[(label, seed)]
                    for name, x in scored.items():
                        if (label, seed, name) not in bg_cache:
                            bg_cache[(label, seed, name)] = score_images(b.encoder, b.decoder, x, **iw).loglik
                        per[name]["ratio"] = likelihood_ratio(per[name]["loglik"], bg_cache[(label, seed, name)])
                    t_model["ratio"] += time.time() - t0
                if "regret" in sc:
                    t0 = time.time()
                    for name, x in scored.items():
                        per[name]["regret"] = -likelihood_regret(
                            model.encoder, model.decoder, x, steps=cfg.regret_steps, lr=cfg.regret_lr,
                            n_eval=cfg.regret_n_eval, sigma2=cfg.sigma2, chunk=max(1, cfg.chunk_size // 4),
                            seed=eval_seed, device=cfg.run_device)
                    t_model["regret"] += time.time() - t0
                if "typicality" in sc:
                    for name in scored:
                        per[name]["typicality"] = typicality_score(per[name]["loglik"], per["train"]["loglik"],
                                                                   cfg.typicality_batch, seed=eval_seed)
                au, fp = {}, {}
                for o in kinds:
                    au[o] = {s: auroc(per["test"][s], per[o][s]) for s in sc}
                    fp[o] = {s: fpr_at_tpr(per["test"][s], per[o][s]) for s in sc}
                log(f"{label} {method} seed {seed}: " + "; ".join(
                    f"{o}: " + ", ".join(f"{s} {au[o][s]:.3f}" for s in sc) for o in kinds))
                out.append(BeyondRun(label, method, seed, kinds, per, au, fp, {k: round(v, 2) for k, v in t_model.items()}))
    return out


# ------------------------------------------------------------------------ table, metrics, figure choice
def beyond_rows(runs: list[BeyondRun]) -> list[dict]:
    """One row per (run, OOD set): kind, auroc_<score>, fpr95_<score>."""
    return [{"in_dist": r.in_dist, "ood": o, "kind": k, "method": r.method, "seed": r.seed,
             **{f"auroc_{s}": v for s, v in r.auroc[o].items()}, **{f"fpr95_{s}": v for s, v in r.fpr95[o].items()}}
            for r in runs for o, k in r.kinds.items()]


def summarize_beyond(rows: list[dict]) -> dict:
    """{(in, ood): {"kind": kind, method: {metric: seed_stats}}}."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["in_dist"], r["ood"]), {"kind": r["kind"]}).setdefault(r["method"], []).append(r)
    out = {}
    for pair, per in groups.items():
        out[pair] = {"kind": per.pop("kind")}
        for method, rs in per.items():
            keys = [k for k in rs[0] if k.startswith(("auroc_", "fpr95_"))]
            out[pair][method] = {k: seed_stats([r[k] for r in rs]) for k in keys}
    return out


def beyond_metrics(summary: dict) -> dict:
    """The summary as DVC metrics: {"<in>-><ood>": {"kind": ..., method: {metric: mean, metric_std: std}}}."""
    return {f"{i}->{o}": {"kind": per["kind"], **{m: {k: round(v["mean"], 5) for k, v in mets.items()}
                                                  | {f"{k}_std": round(v["std"], 5) for k, v in mets.items()}
                                                  for m, mets in per.items() if m != "kind"}}
            for (i, o), per in summary.items()}


def write_beyond_table(summary: dict, path, meta: dict | None = None) -> str:
    """Markdown: one row per pair x score, AUROC and FPR at 95% TPR per method (mean ± std over seeds), the
    paper's AUROC beside its pairs (raw likelihood rows only: the paper scores nothing else)."""
    present = {m for per in summary.values() for m in per if m != "kind"}
    methods = [m for m in METHOD_TITLES if m in present] + sorted(present - set(METHOD_TITLES))
    scores = [s for s in SCORES if any(f"auroc_{s}" in per[m] for per in summary.values() for m in per if m != "kind")]
    fmt = lambda e: f"{e['mean']:.3f} ± {e['std']:.3f}" if e["n"] > 1 else f"{e['mean']:.3f}"  # noqa: E731
    head = [f"{METHOD_TITLES.get(m, m)} AUROC" for m in methods] + [f"{METHOD_TITLES.get(m, m)} FPR@95" for m in methods]
    lines = ["| in-distribution | OOD | kind | score | " + " | ".join(head) + " | paper VAE | paper Soft-IntroVAE |",
             "|---|---|---|---|" + "---|" * (len(head) + 2)]
    order = {"paper": 0, "near": 1, "yours": 2, "far": 3}
    for (i, o), per in sorted(summary.items(), key=lambda kv: order.get(kv[1]["kind"], 9)):
        for s in scores:
            cells = [fmt(per[m][f"{k}_{s}"]) if m in per and f"{k}_{s}" in per[m] else "-"
                     for k in ("auroc", "fpr95") for m in methods]
            paper = PAPER_TABLE7.get((i, o)) if s == "loglik" else None
            ref = [f"{paper[m][0]:g} ± {paper[m][1]:g}" if paper else "" for m in ("vae", "soft_intro_vae")]
            lines.append(f"| {i} | {o} | {per['kind']} | {SCORE_TITLES[s]} | " + " | ".join(cells) + " | "
                         + " | ".join(ref) + " |")
    note = ("\nAUROC: in-distribution test images as positives, every score oriented higher = more in-distribution "
            "(0.5 = chance, below 0.5 = the OOD images score as more in-distribution). FPR@95: share of OOD images "
            "accepted at the threshold keeping 95% of the in-distribution ones (lower is better). Mean ± std over "
            "seeds. Scores: sivae.ood.scores (module docstring); pairs: sivae.ood.near.\n")
    return write_markdown(lines, path, note=note, meta=meta)


class PairKey(NamedTuple):
    """One (in-distribution group, OOD set) pair: the key of summarize_beyond's summary, by name."""
    in_dist: str
    ood: str


def most_telling_pair(summary: dict) -> PairKey | None:
    """The non-far pair whose scores disagree most: the largest spread of seed-mean AUROCs over scores and
    methods (where picking the score matters most). None when there is no such pair."""
    best, key = -1.0, None
    for pair, per in summary.items():
        if per["kind"] == "far":
            continue
        vals = [e["mean"] for m, mets in per.items() if m != "kind" for k, e in mets.items() if k.startswith("auroc_")]
        if vals and max(vals) - min(vals) > best:
            best, key = max(vals) - min(vals), pair
    return None if key is None else PairKey(*key)


def histograms_for(runs: list[BeyondRun], pair: tuple, bins: int = 40) -> dict:
    """{method: {score: score_histograms({"in-dist. test": ..., <ood>: ...})}} of the first seed of each method;
    pair: (in-distribution group, OOD set), e.g. most_telling_pair's PairKey."""
    in_ds, ood = pair
    out = {}
    for r in runs:
        if r.in_dist == in_ds and r.method not in out and ood in r.scores:
            out[r.method] = {s: score_histograms({"in-dist. test": r.scores["test"][s], ood: r.scores[ood][s]},
                                                 bins=bins) | {"auroc": r.auroc[ood][s], "seed": r.seed}
                             for s in r.scores["test"]}
    return out
