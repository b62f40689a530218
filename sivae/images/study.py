"""The image-generation study of notebook 04: which runs to train, their scores and tables.

For every (dataset, method, seed) one model is trained (or resumed, or loaded when finished)
under <ckpt_dir>/<dataset>_<method>_seed<seed>/last.pt; optionally one class-conditional
Soft-IntroVAE per dataset (<dataset>_soft_intro_vae_cond_seed<seed>). Scores per model:
the Frechet score of `sivae.images.metrics` (FID when possible, else the labelled classifier-feature
distance), the per-pixel test reconstruction error and the test KL.

Every function here takes the stage's parameters whole, as one `ImagesConfig` (sivae.images.config, checked
when built); `check_files(cfg)` is the preflight of what is on disk.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import CheckpointError, ConfigError, DataError
from ..losses import kl_divergence
from ..paper import IMAGE_METHOD_TITLES, PAPER_FID, RELEASED_KEY, STYLE_PREFIX
from ..params import parse_bool
from ..runinfo import check_writable, write_json, write_markdown
from ..runtime import check_device, resolve_device
from ..stats import seed_stats
from . import metrics as fid
from . import released as weights
from .config import (
    MAX_CHANNELS,
    MAX_CLASSIFIER_EPOCHS,
    MAX_FD_SAMPLES,
    MAX_N_TRAIN,
    MAX_Z_DIM,
    DatasetBudget,
    ImagesConfig,
    StyleSettings,
    parse_datasets,
    parse_released,
    parse_released_config,
    training_sizes,
)
from .data import DATASETS, check_dataset, load_image_dataset, root_for
from .models import arch_for
from .sampling import fixed_noise, sample_images
from .style import StyleArch
from .training import TrainedModel, history_rows, resize_images, run_name, train_image_model, train_style_model

__all__ = ["ImagesConfig", "check_files", "IMAGE_METHODS", "train_runs", "score_models", "summarize_scores",
           "write_image_tables", "training_curves", "parse_datasets", "train_style_runs",
           "STYLE_PREFIX", "RELEASED_KEY", "load_released_runs", "test_images_for", "scorable", "DatasetBudget",
           "StyleSettings", "training_sizes", "MAX_CHANNELS", "MAX_Z_DIM", "MAX_N_TRAIN", "MAX_FD_SAMPLES",
           "MAX_CLASSIFIER_EPOCHS"]

IMAGE_METHODS = ("vae", "soft_intro_vae")


def _check_cfg(cfg) -> ImagesConfig:
    if not isinstance(cfg, ImagesConfig):
        raise ConfigError(f"cfg must be an ImagesConfig (ImagesConfig.from_params), got {type(cfg).__name__}")
    return cfg


def _check_log(log) -> None:
    if not callable(log):
        raise ConfigError(f"log must be a function taking a message, got {log!r}")


def _jobs(cfg: ImagesConfig) -> list[tuple[str, bool]]:
    """(method, conditional) of every residual model per dataset and seed."""
    return [(m, False) for m in cfg.methods] + ([("soft_intro_vae", True)] if cfg.conditional else [])


def _residual_arch(cfg: ImagesConfig, ds: str, size: int, cdim: int, cond: bool):
    try:
        return arch_for(ds, size, cdim, cfg.channels, cfg.z_dim, cond)
    except ConfigError as e:
        raise ConfigError(f"channels={cfg.channels_text!r}, z_dim={cfg.z_dim!r} do not fit {ds} "
                          f"({size}x{size} images): {e}") from None


def train_runs(cfg: ImagesConfig, *, progress: bool = True, log=print) -> dict:
    """Train every (dataset, method, seed) of cfg; cfg.conditional adds a class-conditional Soft-IntroVAE.

    Returns:
        {(dataset, method_key, seed): TrainedModel}, method_key "soft_intro_vae_cond" for conditional runs.

    The values were checked by ImagesConfig; every dataset is loaded and every architecture built before the
    first model trains: a missing dataset or an architecture that does not fit fails with nothing written.
    """
    _check_cfg(cfg)
    progress = parse_bool("progress", progress)
    _check_log(log)
    n = cfg.n_train
    loaded, archs = {}, {}
    for ds in cfg.datasets:
        data = loaded[ds] = load_image_dataset(ds, "train", root_for(ds, cfg.data_root, cfg.paper_data_root),
                                               None if n <= 0 else n)
        budget = cfg.budgets[ds]
        if len(data) < budget.batch_size:
            raise ConfigError(f"{ds} has {len(data)} training images, fewer than one batch "
                              f"(batch_size {budget.batch_size}): lower batch_size")
        for method, cond in _jobs(cfg):
            archs[(ds, method, cond)] = _residual_arch(cfg, ds, data.shape[1], data.shape[0], cond)
    runs = {}
    for ds in cfg.datasets:
        budget = cfg.budgets[ds]
        for method, cond in _jobs(cfg):
            key = method + ("_cond" if cond else "")
            for seed in cfg.seeds:
                model = train_image_model(
                    loaded[ds], archs[(ds, method, cond)], method, seed, epochs=budget.epochs,
                    batch_size=budget.batch_size, **cfg.loss_settings(), num_vae=cfg.num_vae,
                    ckpt_dir=Path(cfg.ckpt_dir) / run_name(ds, key, seed), device=cfg.device,
                    autocast=cfg.autocast, progress=progress)
                log(f"{ds} {key} seed {seed}: {model.step} steps")
                runs[(ds, key, seed)] = model
    return runs


def train_style_runs(cfg: ImagesConfig, *, progress: bool = True, log=print) -> dict:
    """Train the style-based pair of cfg.style (progressive growing up to style_resolution) for every
    (style dataset, style method) with seed cfg.seed; {} when style_methods is "none".

    Returns:
        {(dataset, "style_<method>", seed): TrainedModel}; checkpoints <ckpt_dir>/<dataset>_style_<method>_seed<k>.
    Every dataset is loaded and every architecture built before any training.
    """
    _check_cfg(cfg)
    progress = parse_bool("progress", progress)
    _check_log(log)
    st = cfg.style
    if st is None:
        return {}
    loaded, archs = {}, {}
    for ds in st.datasets:
        folder_kw = {"size": st.resolution} if ds.startswith("folder:") else {}   # folders load at the final size
        data = loaded[ds] = load_image_dataset(ds, "train", root_for(ds, cfg.data_root, cfg.paper_data_root),
                                               None if st.n_train <= 0 else st.n_train, **folder_kw)
        if len(data) < st.batch_size:
            raise ConfigError(f"{ds} has {len(data)} training images, fewer than one batch "
                              f"(style_batch_size {st.batch_size}): lower style_batch_size")
        archs[ds] = st.arch(ds, data.shape[0])
    runs = {}
    for ds in st.datasets:
        for method in st.methods:
            key = STYLE_PREFIX + method
            for seed in (cfg.seed,):
                model = train_style_model(loaded[ds], archs[ds], method, seed, epochs_per_lod=st.epochs_per_lod,
                                          fade=st.fade, batch_size=st.batch_size, **cfg.style_loss_settings(),
                                          ckpt_dir=Path(cfg.ckpt_dir) / run_name(ds, key, seed), device=cfg.device,
                                          autocast=cfg.autocast, progress=progress)
                log(f"{ds} {key} seed {seed}: {model.step} steps, grown to {archs[ds].image_size}x{archs[ds].image_size}")
                runs[(ds, key, seed)] = model
    return runs


def check_released_files(cfg: ImagesConfig) -> None:
    """The released weights files readable (CheckpointError naming the file) and released_images, when given,
    a folder of images (DataError); their kinds and released_config were checked by ImagesConfig."""
    for kind, path in cfg.released_entries:
        if not Path(path).is_file():
            raise CheckpointError(f"released weights file {path} (released {kind}) does not exist; the download "
                                  f"links are in the README")
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as e:
            raise CheckpointError(f"released weights file {path} cannot be read ({e.strerror})") from None
    if cfg.released_images:
        try:
            check_dataset(f"folder:{cfg.released_images}")
        except DataError as e:
            raise DataError(f"released_images: {e}") from None


def check_files(cfg: ImagesConfig) -> ImagesConfig:
    """The images stage's preflight of what is on disk, in seconds, before anything is trained or written (the
    values were checked by ImagesConfig): every dataset present and readable (DataError, nothing loaded), every
    architecture fitting its images (residual: channels and z_dim at the dataset's size; style-based:
    style_channels at style_resolution with the images' channels), the released weights files readable, and the
    output folders writable (OutputError). Returns cfg."""
    _check_cfg(cfg)
    for ds in cfg.datasets:
        root = root_for(ds, cfg.data_root, cfg.paper_data_root)
        c, h, _w = check_dataset(ds, "train", root)
        if not ds.startswith("folder:"):
            check_dataset(ds, "test", root)
        for _method, cond in _jobs(cfg):
            _residual_arch(cfg, ds, h, c, cond)
    if cfg.style is not None:
        for ds in cfg.style.datasets:
            root = root_for(ds, cfg.data_root, cfg.paper_data_root)
            c, _h, _w = check_dataset(ds, "train", root, size=cfg.style.resolution)
            if not ds.startswith("folder:"):
                check_dataset(ds, "test", root)
            cfg.style.arch(ds, c)
    check_released_files(cfg)
    for kind, _path in cfg.released_entries:
        if kind == "cifar10":   # scored against CIFAR-10 from paper_data_root
            for split in ("train", "test"):
                check_dataset("cifar10", split, cfg.paper_data_root)
    check_writable(cfg.ckpt_dir, cfg.classifier_dir, *cfg.outputs)
    return cfg


def load_released_runs(spec, *, config="", device="cpu", log=print) -> dict:
    """The authors' released weights as runs to evaluate without training.

    spec: "" (none) or a comma list of <kind>:<path> with kind one of sivae.images.released.KINDS, e.g.
        "ffhq:weights/ffhq_fid_17.55_epoch_270.pth,cifar10:weights/cifar10.pth" (download links: README).
    config: "" or a JSON object {kind: overrides of the released architecture} (tests: tiny models).
    Returns:
        {(dataset, RELEASED_KEY, 0): TrainedModel}, dataset "cifar10", "celeba-hq" or "ffhq". Only CIFAR-10 is
        a dataset the scorer can load (from paper_data_root); the style models are drawn, not scored, unless
        their images are provided (see the README).
    """
    entries, overrides = parse_released(spec), parse_released_config(config)
    dev = resolve_device(device)
    runs = {}
    for kind, path in entries:
        cfg = overrides.get(kind)
        enc, dec = weights.load_released(path, kind, config=cfg)
        if kind == "cifar10":
            arch = arch_for("cifar10", **(cfg or {}))
        else:
            arch = StyleArch(dataset=kind, image_size=dec.resolution, cdim=dec.image_channels, channels=dec.channels,
                             z_dim=dec.z_dim, w_dim=dec.w_dim,
                             mapping_layers={**weights.STYLE_CONFIGS[kind], **(cfg or {})}["mapping_layers"])
        model = TrainedModel(enc.to(dev).eval(), dec.to(dev).eval(), arch, "soft_intro_vae", 0, path=Path(path))
        runs[(kind, RELEASED_KEY, 0)] = model   # the kind names the dataset: cifar10, celeba-hq, ffhq
        log(f"{kind}: the authors' weights from {path} ({arch.image_size}x{arch.image_size}, z {arch.z_dim})")
    return runs


def test_images_for(model: TrainedModel, dataset: str, *, data_root, paper_data_root, folder: str = "",
                    n: int = 32):
    """The first n test images of `dataset` at the model's size (folders load at it), or, for a dataset the
    project cannot load (the released style models' CelebA-HQ / FFHQ), the images of `folder`; None if neither."""
    if dataset in DATASETS or dataset.startswith("folder:"):
        kw = {"size": model.arch.image_size, "channels": model.arch.cdim} if dataset.startswith("folder:") else {}
        x = load_image_dataset(dataset, "test", root_for(dataset, data_root, paper_data_root), n, **kw).x
    elif str(folder).strip():
        x = load_image_dataset(f"folder:{folder}", "all", limit=n, size=model.arch.image_size,
                               channels=model.arch.cdim).x
    else:
        return None
    return resize_images(x, model.arch.image_size)


def scorable(runs: dict) -> dict:
    """The runs whose dataset the scorer can load (not the released style models' CelebA-HQ / FFHQ)."""
    return {k: m for k, m in runs.items() if k[0] in DATASETS or k[0].startswith("folder:")}


@torch.no_grad()
def test_errors(model: TrainedModel, test_x, test_y=None, batch: int = 500) -> dict:
    """Mean per-pixel squared error of D(mu(x)) and mean KL(q(z|x) || p(z)) on test images."""
    mse, kl = [], []
    test_x = resize_images(test_x, model.arch.image_size)   # style-based models work at their own resolution
    for i in range(0, len(test_x), batch):
        x = test_x[i:i + batch].to(model.device)
        y = () if not model.arch.conditional else (test_y[i:i + batch].to(model.device),)
        mu, logvar = model.encoder(x, *y)
        with fixed_noise(model):
            mse.append(((model.decoder(mu, *y).float() - x) ** 2).flatten(1).mean(1).cpu())
        kl.append(kl_divergence(mu.float(), logvar.float()).cpu())
    return {"test_mse": float(torch.cat(mse).mean()), "test_kl": float(torch.cat(kl).mean())}


def score_models(runs: dict, cfg: ImagesConfig, *, device=None, log=print) -> dict:
    """Frechet score, k-NN precision / recall, test reconstruction error and test KL of every run;
    classifier accuracies. From cfg: data_root, paper_data_root, n_fd_samples, classifier_dir,
    classifier_epochs, use_inception, seed, fid_protocols (the first gives "value", each further one, FID
    only: the classifier fallback has no protocol, "value_<protocol>" from the same samples) and
    precision_recall_k (k of the precision / recall balls; 0: none).

    runs: {(dataset, method, seed): TrainedModel}; device: where the scoring networks run (None: cfg.device).
    Returns:
        {"runs": {(ds, method, seed): {...}}, "classifiers": {ds: test accuracy}}.

    runs, device and log are checked before any data is loaded or classifier trained.
    """
    _check_cfg(cfg)
    if not isinstance(runs, dict):
        raise ConfigError(f"runs must be the dict train_runs returns, got {type(runs).__name__}")
    for key, model in runs.items():
        if not (isinstance(key, tuple) and len(key) == 3) or not isinstance(model, TrainedModel):
            raise ConfigError(f"runs must map (dataset, method, seed) to TrainedModel, got {key!r}: "
                              f"{type(model).__name__}")
    device = check_device(cfg.device if device is None else device)
    _check_log(log)
    n_fd_samples, classifier_epochs, use_inception = cfg.n_fd_samples, cfg.classifier_epochs, cfg.use_inception
    seed, protocols, pr_k = cfg.seed, cfg.fid_protocols, cfg.precision_recall_k or None
    data_root, paper_data_root, classifier_dir = cfg.data_root, cfg.paper_data_root, cfg.classifier_dir
    out, accs = {}, {}
    inception = fid.inception_extractor(device, protocol=protocols[0]) if use_inception else None
    for ds in sorted({k[0] for k in runs}):
        root = root_for(ds, data_root, paper_data_root)
        train, test = load_image_dataset(ds, "train", root), load_image_dataset(ds, "test", root)
        clf, accs[ds] = fid.train_classifier(train, test, Path(classifier_dir) / f"{ds}.pt",
                                             epochs=classifier_epochs, seed=seed, device=device)
        ref = train.x[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n_fd_samples]]
        for key, model in ((k, m) for k, m in runs.items() if k[0] == ds):
            n = int(n_fd_samples)
            y = torch.arange(n) % model.arch.n_classes if model.arch.conditional else None
            gen = resize_images(sample_images(model, n, seed=seed + 1, y=y), train.shape[-1])  # scored at the data's size
            score = fid.frechet_score(gen, ref, clf, use_inception=use_inception, device=device, log=log,
                                       inception=inception, protocol=protocols[0], precision_recall_k=pr_k)
            if score["kind"] == fid.FID_KIND:
                for other in protocols[1:]:
                    score[f"value_{other}"] = fid.frechet_score(gen, ref, clf, use_inception=True, device=device,
                                                                log=log, inception=inception, protocol=other)["value"]
            out[key] = {**score, **test_errors(model, test.x, test.y)}
            log(f"{ds} {key[1]} seed {key[2]}: {score['kind'].split(' ')[0]} {score['value']:.3f}")
    return {"runs": out, "classifiers": accs}


def summarize_scores(scores: dict) -> dict:
    """Mean and std over seeds: {dataset: {method: {metric: value, metric_std: value, kind: ...}}}."""
    groups = {}
    for (ds, method, _seed), s in scores["runs"].items():
        groups.setdefault(ds, {}).setdefault(method, []).append(s)
    summary = {}
    for ds, per in groups.items():
        for method, rows in per.items():
            entry = {"kind": rows[0]["kind"], "n_seeds": len(rows), "n_samples": rows[0]["n_generated"],
                     "protocol": rows[0].get("protocol", "paper")}
            extra = sorted(k for k in rows[0] if k.startswith("value_") or k in ("precision", "recall"))
            for k in ("value", "test_mse", "test_kl", *extra):
                st = seed_stats([r[k] for r in rows])
                entry[k], entry[f"{k}_std"] = st["mean"], st["std"]
            summary.setdefault(ds, {})[method] = entry
    return summary


def write_image_tables(summary: dict, classifiers: dict, metrics_path, table_path, meta: dict | None = None) -> str:
    """DVC metrics JSON (Frechet score under its kind's key) and a markdown table beside the paper's FID."""
    flat = {}
    for ds, per in summary.items():
        flat[ds] = {"classifier_test_accuracy": round(classifiers.get(ds, float("nan")), 4)}
        for method, e in per.items():
            name = "fid" if e["kind"].startswith("FID") else "fd_classifier"
            flat[ds][method] = {name: round(e["value"], 4), f"{name}_std": round(e["value_std"], 4),
                                "test_mse": round(e["test_mse"], 6), "test_kl": round(e["test_kl"], 4)}
            for k in ("precision", "recall"):
                if k in e:
                    flat[ds][method][k] = round(e[k], 4)
            for k in (k for k in e if k.startswith("value_") and not k.endswith("_std")):
                flat[ds][method][f"fid_{k[len('value_'):]}"] = round(e[k], 4)   # e.g. fid_authors_code
    write_json(flat, metrics_path)
    lines = ["| dataset | model | score kind | ours (mean ± std over seeds) | other FID protocol | paper FID | "
             "precision / recall | test MSE/pixel | test KL |",
             "|---|---|---|---|---|---|---|---|---|"]
    for ds, per in summary.items():
        for method, e in per.items():
            paper = PAPER_FID.get((ds, method))
            kind = f"FID ({e['protocol']} protocol)" if e["kind"].startswith("FID") else "FD-classifier (not FID)"
            others = "; ".join(f"{k[len('value_'):]}: {e[k]:.3f}" for k in e
                               if k.startswith("value_") and not k.endswith("_std")) or "-"
            pr = f"{e['precision']:.3f} / {e['recall']:.3f}" if "precision" in e else "-"
            lines.append(f"| {ds} | {IMAGE_METHOD_TITLES.get(method, method)} | {kind}, n={e['n_samples']} | "
                         f"{e['value']:.3f} ± {e['value_std']:.3f} | {others} | "
                         f"{paper if paper is not None else 'not reported'} | {pr} | "
                         f"{e['test_mse']:.4f} | {e['test_kl']:.1f} |")
    return write_markdown(lines, table_path, meta=meta)


def training_curves(runs: dict) -> dict[str, list]:
    """{"<dataset>_<method>_seed<k>": history} of every run, for `sivae.runinfo.log_curves` (DVCLive)."""
    out = {}
    for (ds, key, seed), m in runs.items():
        rows = history_rows(m, ds, key)
        if rows:
            out[rows[0]["run"]] = [{k: v for k, v in r.items() if k != "run"} for r in rows]
    if not out:
        raise ConfigError("no training history to write")
    return out
