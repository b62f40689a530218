"""The OOD study of notebook 06: which (in-distribution, OOD) pairs, which models, their scores.

Pairs come from two parameters: `in_dist` and `ood`, comma lists zipped entry by entry (one
in-distribution dataset may also face every OOD entry); one OOD entry may hold several sets
joined by "+". OOD sets are test splits of mnist, fashionmnist, cifar10, svhn, or
"folder:<path>", a folder of image files, which is always read at the model's size and channel
count (centre crop, bilinear resize, PIL's grayscale conversion): its files share no shape.

Models: the image stage's checkpoints <ckpt_dir>/<dataset>_<method>_seed<seed>/last.pt; where
one is missing and train_missing is true, the study trains its own (sivae.images, the paper's
image hyper-parameters) under <own_ckpt_dir>, e.g. CIFAR-10 / SVHN in the paper profile.
`released` adds models loaded from the authors' released weights (sivae.images.study.load_released_runs),
scored on every pair whose in-distribution set is theirs (Table 7's CIFAR-10 -> SVHN with their CIFAR-10 file).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError, DataError, check_choice, check_nonnegative
from ..images.data import DATASETS, load_image_dataset, root_for
from ..images.models import arch_for
from ..images.study import check_training_length, load_released_runs
from ..images.training import TrainedModel, load_trained, run_name, train_image_model
from ..params import parse_bool, parse_int, parse_list, parse_seed, parse_seeds, split_items
from ..runinfo import atomic_path
from ..runtime import check_device
from ..train import METHODS
from .metrics import CONVERSIONS, OODResult, evaluate_ood

__all__ = ["parse_pairs", "load_eval_set", "find_or_train_model", "OODRun", "run_ood_study", "check_study_args",
           "aurocs_rows", "save_scores",
           "load_released_runs"]

TRAIN_KW = ("epochs", "batch_size", "channels", "n_train")   # the settings of models trained here
MAX_EVAL = 100_000_000         # images per evaluation set (0: all)
MAX_IMPORTANCE = 1_000_000     # importance samples per image
MAX_CHUNK = 100_000_000        # latents per decoder call
MAX_BINS = 100_000             # histogram bins


def _check_dataset(role: str, name: str, allow_folder: bool) -> str:
    if allow_folder and name.startswith("folder:"):
        if not name[len("folder:"):]:
            raise ConfigError("an OOD folder needs a path: folder:<path>")
        return name
    return check_choice(f"{role} dataset", name, DATASETS + (("folder:<path>",) if allow_folder else ()))


def parse_pairs(in_dist, ood) -> list[tuple[str, list[str]]]:
    """Parse the in_dist and ood parameters into [(in-distribution dataset, [OOD sets])].

    Args:
        in_dist: comma list of datasets the models were trained on, e.g. "mnist,fashionmnist".
        ood: comma list, one entry per in_dist entry (or any number if in_dist has one); an entry
            may join several OOD sets with "+", e.g. "fashionmnist+folder:my_images".
    Returns:
        one (in, oods) per distinct in-distribution dataset, in order.
    """
    ins, oods = split_items("in_dist", in_dist), [e.split("+") for e in split_items("ood", ood)]
    if len(ins) == 1:
        entries = [(ins[0], [o for e in oods for o in e])]
    elif len(ins) == len(oods):
        entries = list(zip(ins, oods))
    else:
        raise ConfigError(f"in_dist has {len(ins)} datasets and ood {len(oods)} entries: give one OOD entry per "
                          f"in-distribution dataset (join several sets of one entry with '+'), or one in_dist")
    groups: dict = {}
    for i, os_ in entries:
        _check_dataset("in_dist", i, allow_folder=False)
        for o in (o.strip() for o in os_):
            _check_dataset("ood", o, allow_folder=True)
            if o == i:
                raise ConfigError(f"{o!r} is both the in-distribution and an OOD dataset")
            if o not in groups.setdefault(i, []):
                groups[i].append(o)
    return list(groups.items())


def load_eval_set(name: str, split: str, *, data_root, paper_data_root, n_eval: int, seed: int,
                  shape: tuple | None = None) -> torch.Tensor:
    """Images of one evaluation set: a seeded random subset of n_eval images (all if n_eval <= 0).

    Args:
        name: dataset name or "folder:<path>". split: "train" or "test" (a folder: all its files).
        data_root, paper_data_root: see sivae.images.data.root_for. seed: draws the subset.
        shape: (C, H, W) of the model; required for folders, which are read at that shape.
    Returns:
        (N, C, H, W) float tensor in [0, 1].
    """
    if name.startswith("folder:"):
        data = load_image_dataset(name, "all", size=int(shape[1]), channels=int(shape[0]))
    else:
        data = load_image_dataset(name, split, root_for(name, data_root, paper_data_root))
    x = data.x
    if 0 < int(n_eval) < len(x):
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(int(seed)))[:int(n_eval)]
        x = x[idx.sort().values]
    return x


def _check_train_kw(train_kw, datasets) -> dict:
    """check_training_length of the settings of models trained here (TRAIN_KW), naming train_kw's bad entry."""
    if not isinstance(train_kw, dict):
        raise ConfigError(f"train_kw must be a dict with {', '.join(TRAIN_KW)}, got {train_kw!r}")
    missing, unknown = [k for k in TRAIN_KW if k not in train_kw], sorted(set(train_kw) - set(TRAIN_KW))
    if missing or unknown:
        raise ConfigError(f"train_kw must hold exactly {', '.join(TRAIN_KW)}; missing: {missing}, unknown: {unknown}")
    return check_training_length(datasets, epochs=train_kw["epochs"], batch_size=train_kw["batch_size"],
                                 n_train=train_kw["n_train"], channels=train_kw["channels"])


def _check_path(name: str, value) -> None:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ConfigError(f"{name} must be a folder path, got {value!r}")


def check_study_args(groups, methods, seeds, *, eval_seed, data_root, paper_data_root, ckpt_dir, own_ckpt_dir,
                     train_missing, train_kw, n_eval, n_importance, sigma2, chunk_size, convert, bins, device="auto",
                     log=print) -> dict:
    """Check every argument of run_ood_study without loading or training anything: one ConfigError naming it.

    groups: parse_pairs output (known in-distribution datasets; OOD names or existing folders); methods: known
    methods; seeds, eval_seed: seeds; n_eval: an integer in [0, MAX_EVAL] (0: all); n_importance, chunk_size,
    bins: positive integers (<= MAX_IMPORTANCE, MAX_CHUNK, MAX_BINS); sigma2: a finite number > 0; convert: one
    of CONVERSIONS; train_missing: a boolean, and then train_kw: TRAIN_KW checked by check_training_length.

    Returns:
        the parsed values: groups, methods, seeds, eval_seed, n_eval, n_importance, chunk_size, bins, sigma2,
        train_missing, device.
    """
    check_choice("convert", convert, CONVERSIONS)
    train_missing = parse_bool("train_missing", train_missing)
    ints = {}
    for name, v, top in (("n_importance", n_importance, MAX_IMPORTANCE), ("chunk_size", chunk_size, MAX_CHUNK),
                         ("bins", bins, MAX_BINS)):
        ints[name] = parse_int(name, v, 1, top)
    if check_nonnegative("sigma2", sigma2) == 0:
        raise ConfigError("sigma2 (the decoder variance) must be positive, got 0")
    ints["n_eval"] = parse_int("n_eval", n_eval, 0, MAX_EVAL)
    if not isinstance(groups, (list, tuple)) or not groups:
        raise ConfigError(f"groups must be parse_pairs' non-empty list of (in_dist, [ood sets]), got {groups!r}")
    checked = []
    for g in groups:
        if not (isinstance(g, (list, tuple)) and len(g) == 2 and isinstance(g[1], (list, tuple)) and g[1]):
            raise ConfigError(f"groups must be parse_pairs' list of (in_dist, [ood sets]), got the entry {g!r}")
        in_ds = _check_dataset("in_dist", g[0], allow_folder=False)
        oods = [_check_dataset("ood", o, allow_folder=True) for o in g[1]]
        if in_ds in oods:
            raise ConfigError(f"{in_ds!r} is both the in-distribution and an OOD dataset")
        for o in oods:
            if o.startswith("folder:") and not Path(o[len("folder:"):]).is_dir():
                raise DataError(f"OOD image folder {o[len('folder:'):]} does not exist")
        checked.append((in_ds, list(oods)))
    ms = parse_list("methods", methods, METHODS)
    seed_list = parse_seeds("seeds", seeds)
    for name, v in (("data_root", data_root), ("paper_data_root", paper_data_root), ("ckpt_dir", ckpt_dir),
                    ("own_ckpt_dir", own_ckpt_dir)):
        _check_path(name, v)
    if train_missing:
        _check_train_kw(train_kw, [i for i, _ in checked])
    if not callable(log):
        raise ConfigError(f"log must be a function taking a message, got {log!r}")
    return dict(groups=checked, methods=ms, seeds=seed_list, eval_seed=parse_seed("eval_seed", eval_seed),
                sigma2=float(sigma2), train_missing=train_missing, device=check_device(device), **ints)


def find_or_train_model(dataset: str, method: str, seed: int, *, ckpt_dir, own_ckpt_dir, train_missing: bool,
                        train_kw: dict, data_root, paper_data_root, device, log=print) -> TrainedModel:
    """The image stage's checkpoint of (dataset, method, seed), or one trained here if allowed.

    Args:
        dataset, method, seed: the run. ckpt_dir: the image stage's checkpoints.
        own_ckpt_dir: where missing models are trained (when train_missing).
        train_kw: epochs, batch_size (numbers or "paper": the paper's per-dataset values), channels
            ("paper" or widths) and n_train (0: all) of those; the other hyper-parameters are the
            paper's image settings (sivae.images.train_image_model defaults).
        data_root, paper_data_root, device: as elsewhere. log: progress messages.
    Returns:
        TrainedModel in eval mode on `device`.
    """
    path = Path(ckpt_dir) / run_name(dataset, method, seed) / "last.pt"
    if path.is_file():
        model = load_trained(path, device)
    elif not parse_bool("train_missing", train_missing):
        raise CheckpointError(f"no checkpoint {path}: run the images stage for {dataset} / {method} with enough "
                              f"seeds, point ckpt_dir at it, or set train_missing True")
    else:
        own = Path(own_ckpt_dir) / run_name(dataset, method, seed)
        sizes = _check_train_kw(train_kw, [dataset])
        log(f"no checkpoint {path}; training {dataset} {method} seed {seed} under {own}")
        n_train = sizes["n_train"]
        data = load_image_dataset(dataset, "train", root_for(dataset, data_root, paper_data_root),
                                  n_train if n_train > 0 else None)
        arch = arch_for(dataset, data.shape[1], data.shape[0], train_kw["channels"])
        epochs, batch_size = sizes["per_dataset"][dataset]
        model = train_image_model(data, arch, method, seed, ckpt_dir=own, device=device, progress=False,
                                  epochs=epochs, batch_size=batch_size)
    if model.method != method or model.arch.dataset != dataset:
        raise CheckpointError(f"{model.path} holds a {model.arch.dataset} {model.method} model, "
                              f"not {dataset} {method}")
    if model.arch.conditional:
        raise CheckpointError(f"{model.path} is class-conditional; OOD scoring needs an unconditional model")
    for net in (model.encoder, model.decoder):  # NHWC convolutions: ~1.7x faster scoring on CPU, same mathematics
        net.to(memory_format=torch.channels_last)
    return model


@dataclass
class OODRun:
    """One trained model's OOD evaluation."""
    in_dist: str
    method: str
    seed: int
    result: OODResult
    ckpt: str
    released: bool = False       # loaded from the authors' weights (`released`), not trained


def run_ood_study(groups, methods, seeds, *, eval_seed: int, data_root, paper_data_root, ckpt_dir, own_ckpt_dir,
                  train_missing: bool, train_kw: dict, n_eval: int, n_importance: int, sigma2: float,
                  chunk_size: int, convert: str, bins: int, device="auto", log=print,
                  released: dict | None = None) -> list[OODRun]:
    """Score every (in-distribution dataset, method, seed) model on its test, train and OOD sets.

    Args:
        groups: parse_pairs output. methods, seeds: lists. eval_seed: seeds the subsets and the
            importance samples (the same for every model). The rest: see find_or_train_model,
            load_eval_set and sivae.ood.evaluate_ood.
        released: {(dataset, method, seed): TrainedModel} of models loaded, not trained (the authors' weights);
            each is scored on the pairs whose in-distribution set is its dataset, beside the trained ones.
    Returns:
        list of OODRun.

    Settings first (check_study_args), then every in-distribution and named OOD set is loaded, before any
    model is loaded or trained: a bad value or a missing dataset fails with nothing written.
    """
    ok = check_study_args(groups, methods, seeds, eval_seed=eval_seed, data_root=data_root,
                          paper_data_root=paper_data_root, ckpt_dir=ckpt_dir, own_ckpt_dir=own_ckpt_dir,
                          train_missing=train_missing, train_kw=train_kw, n_eval=n_eval, n_importance=n_importance,
                          sigma2=sigma2, chunk_size=chunk_size, convert=convert, bins=bins, device=device, log=log)
    groups, methods, seeds, device, train_missing = (ok[k] for k in ("groups", "methods", "seeds", "device",
                                                                      "train_missing"))
    n_importance, chunk_size, bins, eval_seed = ok["n_importance"], ok["chunk_size"], ok["bins"], ok["eval_seed"]
    data_kw = dict(data_root=data_root, paper_data_root=paper_data_root, n_eval=ok["n_eval"], seed=eval_seed)
    cache, runs = {}, []
    evals = {in_ds: tuple(load_eval_set(in_ds, s, **data_kw) for s in ("test", "train")) for in_ds, _ in groups}
    for in_ds, oods in groups:   # named OOD sets do not depend on the model's shape: load them now too
        for o in oods:
            if not o.startswith("folder:"):
                cache[(o, None)] = load_eval_set(o, "test", **data_kw)
    released = dict(released or {})
    for key, model in released.items():
        if not (isinstance(key, tuple) and len(key) == 3) or not isinstance(model, TrainedModel):
            raise ConfigError(f"released must map (dataset, method, seed) to TrainedModel, got {key!r}")
    for in_ds, oods in groups:
        test, train = evals[in_ds]
        jobs = [(method, seed, None) for method in methods for seed in seeds] + \
            [(k[1], k[2], m) for k, m in released.items() if k[0] == in_ds]
        for method, seed, given in jobs:
            model = given if given is not None else find_or_train_model(
                in_ds, method, seed, ckpt_dir=ckpt_dir, own_ckpt_dir=own_ckpt_dir, train_missing=train_missing,
                train_kw=train_kw, data_root=data_root, paper_data_root=paper_data_root, device=device, log=log)
            shape = (model.arch.cdim, model.arch.image_size, model.arch.image_size)
            for o in oods:
                if (o, shape) not in cache:
                    cache[(o, shape)] = cache[(o, None)] if (o, None) in cache else \
                        load_eval_set(o, "test", shape=shape, **data_kw)
            if abs(2 * sigma2 * model.beta_rec - 1) > 1e-6:
                log(f"note: {model.path} was trained with beta_rec={model.beta_rec}, which matches "
                    f"sigma2={1 / (2 * model.beta_rec):g}, not the sigma2={sigma2:g} used here")
            res = evaluate_ood(model.encoder, model.decoder, test, {o: cache[(o, shape)] for o in oods}, train,
                               image_shape=shape, convert=convert, n_samples=n_importance, sigma2=sigma2,
                               chunk_size=chunk_size, seed=eval_seed, device=device, bins=bins)
            log(f"{in_ds} {method} seed {seed}: " + ", ".join(
                f"AUROC vs {o} {a['loglik']:.4f} (IW) / {a['elbo']:.4f} (ELBO)" for o, a in res.auroc.items()))
            runs.append(OODRun(in_ds, method, seed, res, str(model.path), released=given is not None))
    unused = sorted({k[0] for k in released} - {in_ds for in_ds, _ in groups})
    if unused:
        log(f"note: released weights for {', '.join(unused)} not scored: no pair has that in-distribution set")
    return runs


def aurocs_rows(runs: list[OODRun]) -> list[dict]:
    """One row per (run, OOD set): AUROCs and mean bits/dim, for sivae.ood.summarize_aurocs."""
    rows = []
    for r in runs:
        bpd = r.result.mean_bits_per_dim()
        for o, a in r.result.auroc.items():
            rows.append({"in_dist": r.in_dist, "ood": o, "method": r.method, "seed": r.seed,
                         "auroc_loglik": a["loglik"], "auroc_elbo": a["elbo"], "bpd_test": bpd["test"],
                         "bpd_ood": bpd[o], **({"bpd_train": bpd["train"]} if "train" in bpd else {})})
    return rows


def save_scores(runs: list[OODRun], path) -> Path:
    """Every per-image score in one .npz: key <in>__<method>__seed<k>__<set>__<loglik|elbo> (nats)."""
    slug = lambda s: re.sub(r"[^A-Za-z0-9_.-]+", "_", s)
    arrays = {f"{slug(r.in_dist)}__{r.method}__seed{r.seed}__{slug(name)}__{kind}": getattr(s, kind)
              for r in runs for name, s in r.result.scores.items() for kind in ("loglik", "elbo")}
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:   # written whole or not at all (the old file kept)
        np.savez_compressed(f, **arrays)
    return path
