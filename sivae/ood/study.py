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

The study functions take the stage's parameters as one `sivae.ood.config.OodConfig`, parsed and checked when
it is built; `parse_pairs` is the parser of `in_dist` / `ood` it uses.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError, check_choice
from ..images.data import DATASETS, load_image_dataset, root_for
from ..images.models import arch_for
from ..images.study import load_released_runs
from ..images.training import TrainedModel, load_trained, run_name, train_image_model
from ..params import split_items
from ..runinfo import atomic_path
from .metrics import OODResult, evaluate_ood

if TYPE_CHECKING:
    from .config import OodConfig

__all__ = ["parse_pairs", "load_eval_set", "find_or_train_model", "OODRun", "run_ood_study", "aurocs_rows",
           "save_scores", "load_released_runs"]


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


def _config(cfg, caller: str):
    """cfg itself if it is an OodConfig, else ConfigError (the study functions take the stage's parsed config)."""
    from .config import OodConfig
    if not isinstance(cfg, OodConfig):
        raise ConfigError(f"{caller} takes an OodConfig (sivae.ood.config: OodConfig.from_params(params)), "
                          f"got {type(cfg).__name__}")
    return cfg


def find_or_train_model(cfg: OodConfig, dataset: str, method: str, seed: int, *, ckpt_dir=None,
                        train_missing: bool | None = None, log=print) -> TrainedModel:
    """The image stage's checkpoint of (dataset, method, seed), or one trained here if allowed.

    Args:
        cfg: the stage's OodConfig: own_ckpt_dir (where missing models are trained), their length
            (cfg.train_length(dataset): train_epochs / train_batch_size, "paper" resolved), train_channels,
            train_n_train (0: all), data_root, paper_data_root, device; the other hyper-parameters are the
            paper's image settings (sivae.images.train_image_model defaults).
        dataset, method, seed: the run.
        ckpt_dir, train_missing: the image stage's checkpoints and whether a missing one is trained here
            (None: cfg's).
        log: progress messages.
    Returns:
        TrainedModel in eval mode on cfg's device.
    """
    cfg = _config(cfg, "find_or_train_model")
    ckpt_dir = cfg.ckpt_dir if ckpt_dir is None else ckpt_dir
    train_missing = cfg.train_missing if train_missing is None else train_missing
    path = Path(ckpt_dir) / run_name(dataset, method, seed) / "last.pt"
    if path.is_file():
        model = load_trained(path, cfg.run_device)
    elif not train_missing:
        raise CheckpointError(f"no checkpoint {path}: run the images stage for {dataset} / {method} with enough "
                              f"seeds, point ckpt_dir at it, or set train_missing True")
    else:
        own = Path(cfg.own_ckpt_dir) / run_name(dataset, method, seed)
        length = cfg.train_length(dataset)
        log(f"no checkpoint {path}; training {dataset} {method} seed {seed} under {own}")
        n_train = cfg.train_n_train
        data = load_image_dataset(dataset, "train", root_for(dataset, cfg.data_root, cfg.paper_data_root),
                                  n_train if n_train > 0 else None)
        arch = arch_for(dataset, data.shape[1], data.shape[0], cfg.train_channels)
        model = train_image_model(data, arch, method, seed, ckpt_dir=own, device=cfg.run_device, progress=False,
                                  epochs=length.epochs, batch_size=length.batch_size)
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


def run_ood_study(cfg: OodConfig, *, released: dict | None = None, log=print) -> list[OODRun]:
    """Score every (in-distribution dataset, method, seed) model on its test, train and OOD sets.

    Args:
        cfg: the stage's OodConfig: groups (in_dist / ood), methods, seeds, seed (it also seeds the subsets and
            the importance samples, the same for every model), n_eval, n_importance, sigma2, chunk_size,
            convert, bins, device; the models: see find_or_train_model; the sets: load_eval_set.
        released: {(dataset, method, seed): TrainedModel} of models loaded, not trained (the authors' weights,
            load_released_runs(cfg.released, config=cfg.released_config)); each is scored on the pairs whose
            in-distribution set is its dataset, beside the trained ones.
        log: progress messages.
    Returns:
        list of OODRun.

    Every in-distribution and named OOD set is loaded before any model is loaded or trained (the values were
    checked when cfg was built): a missing dataset fails with nothing written.
    """
    cfg = _config(cfg, "run_ood_study")
    eval_seed, sigma2 = cfg.seed, cfg.sigma2
    data_kw = dict(data_root=cfg.data_root, paper_data_root=cfg.paper_data_root, n_eval=cfg.n_eval, seed=eval_seed)
    cache, runs = {}, []
    evals = {in_ds: tuple(load_eval_set(in_ds, s, **data_kw) for s in ("test", "train")) for in_ds, _ in cfg.groups}
    for in_ds, oods in cfg.groups:   # named OOD sets do not depend on the model's shape: load them now too
        for o in oods:
            if not o.startswith("folder:"):
                cache[(o, None)] = load_eval_set(o, "test", **data_kw)
    released = dict(released or {})
    for key, model in released.items():
        if not (isinstance(key, tuple) and len(key) == 3) or not isinstance(model, TrainedModel):
            raise ConfigError(f"released must map (dataset, method, seed) to TrainedModel, got {key!r}")
    for in_ds, oods in cfg.groups:
        test, train = evals[in_ds]
        jobs = [(method, seed, None) for method in cfg.methods for seed in cfg.seeds] + \
            [(k[1], k[2], m) for k, m in released.items() if k[0] == in_ds]
        for method, seed, given in jobs:
            model = given if given is not None else find_or_train_model(cfg, in_ds, method, seed, log=log)
            shape = (model.arch.cdim, model.arch.image_size, model.arch.image_size)
            for o in oods:
                if (o, shape) not in cache:
                    cache[(o, shape)] = cache[(o, None)] if (o, None) in cache else \
                        load_eval_set(o, "test", shape=shape, **data_kw)
            if abs(2 * sigma2 * model.beta_rec - 1) > 1e-6:
                log(f"note: {model.path} was trained with beta_rec={model.beta_rec}, which matches "
                    f"sigma2={1 / (2 * model.beta_rec):g}, not the sigma2={sigma2:g} used here")
            res = evaluate_ood(model.encoder, model.decoder, test, {o: cache[(o, shape)] for o in oods}, train,
                               image_shape=shape, convert=cfg.convert, n_samples=cfg.n_importance, sigma2=sigma2,
                               chunk_size=cfg.chunk_size, seed=eval_seed, device=cfg.run_device, bins=cfg.bins)
            log(f"{in_ds} {method} seed {seed}: " + ", ".join(
                f"AUROC vs {o} {a['loglik']:.4f} (IW) / {a['elbo']:.4f} (ELBO)" for o, a in res.auroc.items()))
            runs.append(OODRun(in_ds, method, seed, res, str(model.path), released=given is not None))
    unused = sorted({k[0] for k in released} - {in_ds for in_ds, _ in cfg.groups})
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
