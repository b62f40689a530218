"""The image-generation study of notebook 04: which runs to train, their scores and tables.

For every (dataset, method, seed) one model is trained (or resumed, or loaded when finished)
under <ckpt_dir>/<dataset>_<method>_seed<seed>/last.pt; optionally one class-conditional
Soft-IntroVAE per dataset (<dataset>_soft_intro_vae_cond_seed<seed>). Scores per model:
the Frechet score of `sivae.images.metrics` (FID when possible, else the labelled classifier-feature
distance), the per-pixel test reconstruction error and the test KL.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import CheckpointError, ConfigError, DataError, check_choice
from ..losses import kl_divergence
from ..paper import IMAGE_METHOD_TITLES, PAPER_FID, PAPER_TRAINING, RELEASED_KEY, STYLE_PREFIX
from ..params import (
    parse_bool,
    parse_int,
    parse_list,
    parse_number,
    parse_numbers,
    parse_seed,
    parse_seeds,
    seeds_from,
    split_items,
)
from ..runinfo import check_writable, write_json, write_markdown
from ..runtime import check_device, resolve_device
from ..stats import seed_stats
from ..train import AUTOCAST, MAX_BATCH_SIZE, METHODS
from . import metrics as fid
from . import released as weights
from .data import DATASETS, check_dataset, load_image_dataset, root_for
from .models import arch_for
from .style import StyleArch
from .training import (
    MAX_EPOCHS,
    TrainedModel,
    check_loss_settings,
    fixed_noise,
    history_rows,
    resize_images,
    run_name,
    sample_images,
    train_image_model,
    train_style_model,
)

__all__ = ["check_parameters", "check_style_args", "check_released",
           "IMAGE_METHODS", "train_runs", "check_train_args", "score_models", "check_score_args",
           "summarize_scores", "write_image_tables", "training_curves", "parse_datasets", "check_training_length",
           "train_style_runs", "STYLE_PREFIX", "RELEASED_KEY", "load_released_runs",
           "test_images_for", "scorable"]

IMAGE_METHODS = ("vae", "soft_intro_vae")


def paper_or(name: str, value, dataset: str):
    """`value`, or the paper's setting for `dataset` when value == "paper"."""
    if value != "paper":
        return value
    if dataset not in PAPER_TRAINING:
        raise ConfigError(f"{name}='paper' has no paper value for {dataset!r}; give a number")
    return PAPER_TRAINING[dataset][name]


MAX_CHANNELS = 4096          # widest residual stage (the paper: 256)
MAX_Z_DIM = 4096             # largest latent (the paper: 128)
MAX_N_TRAIN = 100_000_000    # training images kept (0: all)
MAX_FD_SAMPLES = 1_000_000   # generated images per Frechet score (the paper's FID: 50,000)
MAX_CLASSIFIER_EPOCHS = 100_000


def _check_path(name: str, value) -> None:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ConfigError(f"{name} must be a folder path, got {value!r}")


def check_training_length(datasets, *, epochs, batch_size, n_train=0, channels="paper", z_dim="paper") -> dict:
    """ConfigError naming the first bad one of the training-length and size settings of image models.

    epochs: a number in (0, MAX_EPOCHS] or 'paper'; batch_size: an integer in [1, MAX_BATCH_SIZE] or 'paper'
    ('paper' only for datasets with a paper value); n_train: an integer in [0, MAX_N_TRAIN] (0: all), at least
    one batch; channels: 'paper' or widths in [1, MAX_CHANNELS]; z_dim: 'paper' or an integer in [1, MAX_Z_DIM].

    Returns:
        {"per_dataset": {dataset: (epochs as float, batch_size as int)}, "n_train": int, "z_dim": 'paper' or int}.
    """
    n = parse_int("n_train", n_train, 0, MAX_N_TRAIN)
    per = {}
    for ds in datasets:
        e = paper_or("epochs", epochs, ds)
        e = parse_number("epochs" if e is epochs else f"epochs ('paper' for {ds})", e, positive=True, at_most=MAX_EPOCHS)
        b = parse_int("batch_size", paper_or("batch_size", batch_size, ds), 1, MAX_BATCH_SIZE)
        if 0 < n < b:
            raise ConfigError(f"n_train={n} is fewer than one batch of {ds} (batch_size {b}): "
                              f"lower batch_size or raise n_train")
        per[ds] = (e, b)
    if channels != "paper":
        for w in parse_numbers("channels ('paper' or widths like '16,32')", channels, integer=True, positive=True):
            if w > MAX_CHANNELS:
                raise ConfigError(f"channels must be widths <= {MAX_CHANNELS}, got {channels!r}")
    if z_dim != "paper":
        z_dim = parse_int("z_dim ('paper' or an integer)", z_dim, 1, MAX_Z_DIM)
    return {"per_dataset": per, "n_train": n, "z_dim": z_dim}


def check_train_args(datasets, methods, seeds, *, data_root, paper_data_root, n_train, epochs, batch_size, lr,
                     beta_rec, beta_kl, beta_neg, gamma_r, num_vae, channels, z_dim, ckpt_dir, device, autocast,
                     conditional: bool = False, progress: bool = True, log=print) -> dict:
    """Check every argument of train_runs without loading data or training: one ConfigError naming it.

    Returns:
        datasets, methods and seeds parsed, conditional and progress as booleans, and check_training_length's
        per_dataset, n_train and z_dim.
    """
    names = parse_datasets(datasets)
    ms = parse_list("methods", methods, METHODS)
    seed_list = parse_seeds("seeds", seeds)
    sizes = check_training_length(names, epochs=epochs, batch_size=batch_size, n_train=n_train, channels=channels,
                                  z_dim=z_dim)
    check_loss_settings(lr=lr, beta_rec=beta_rec, beta_kl=beta_kl, beta_neg=beta_neg, gamma_r=gamma_r)
    parse_number("num_vae", num_vae, at_most=MAX_EPOCHS)
    for name, v in (("data_root", data_root), ("paper_data_root", paper_data_root), ("ckpt_dir", ckpt_dir)):
        _check_path(name, v)
    check_choice("autocast", autocast, AUTOCAST)
    check_device(device)
    if not callable(log):
        raise ConfigError(f"log must be a function taking a message, got {log!r}")
    return dict(datasets=names, methods=ms, seeds=seed_list, conditional=parse_bool("conditional", conditional),
                progress=parse_bool("progress", progress), **sizes)


def parse_datasets(value) -> list[str]:
    """'mnist,fashionmnist' -> names, each checked (folders: 'folder:<path>' is allowed)."""
    return [v if v.startswith("folder:") else parse_list("datasets", v, DATASETS)[0]
            for v in split_items("datasets", value)]


def train_runs(datasets, methods, seeds, *, data_root, paper_data_root, n_train, epochs, batch_size, lr,
               beta_rec, beta_kl, beta_neg, gamma_r, num_vae, channels, z_dim, ckpt_dir, device, autocast,
               conditional: bool = False, progress: bool = True, log=print) -> dict:
    """Train every (dataset, method, seed); conditional=True adds a class-conditional Soft-IntroVAE.

    Returns:
        {(dataset, method_key, seed): TrainedModel}, method_key "soft_intro_vae_cond" for conditional runs.

    Every argument is checked (check_train_args), then every dataset is loaded and every architecture
    built, before the first model trains: a bad value or a missing dataset fails with nothing written.
    """
    ok = check_train_args(datasets, methods, seeds, data_root=data_root, paper_data_root=paper_data_root,
                          n_train=n_train, epochs=epochs, batch_size=batch_size, lr=lr, beta_rec=beta_rec,
                          beta_kl=beta_kl, beta_neg=beta_neg, gamma_r=gamma_r, num_vae=num_vae, channels=channels,
                          z_dim=z_dim, ckpt_dir=ckpt_dir, device=device, autocast=autocast, conditional=conditional,
                          progress=progress, log=log)
    datasets, methods, seeds = ok["datasets"], ok["methods"], ok["seeds"]
    conditional, progress, n, z_dim = ok["conditional"], ok["progress"], ok["n_train"], ok["z_dim"]
    loaded, archs = {}, {}
    for ds in datasets:
        data = loaded[ds] = load_image_dataset(ds, "train", root_for(ds, data_root, paper_data_root),
                                               None if n <= 0 else n)
        if len(data) < ok["per_dataset"][ds][1]:
            raise ConfigError(f"{ds} has {len(data)} training images, fewer than one batch "
                              f"(batch_size {ok['per_dataset'][ds][1]}): lower batch_size")
        jobs = [(m, False) for m in methods] + ([("soft_intro_vae", True)] if conditional else [])
        for method, cond in jobs:
            try:
                archs[(ds, method, cond)] = arch_for(ds, data.shape[1], data.shape[0], channels, z_dim, cond)
            except ConfigError as e:
                raise ConfigError(f"channels={channels!r}, z_dim={z_dim!r} do not fit {ds} "
                                  f"({data.shape[1]}x{data.shape[2]} images): {e}") from None
    runs = {}
    for ds in datasets:
        data = loaded[ds]
        jobs = [(m, False) for m in methods] + ([("soft_intro_vae", True)] if conditional else [])
        for method, cond in jobs:
            key = method + ("_cond" if cond else "")
            arch = archs[(ds, method, cond)]
            for seed in seeds:
                model = train_image_model(
                    data, arch, method, seed, epochs=ok["per_dataset"][ds][0],
                    batch_size=ok["per_dataset"][ds][1], lr=lr, beta_rec=beta_rec,
                    beta_kl=beta_kl, beta_neg=beta_neg, gamma_r=gamma_r, num_vae=num_vae,
                    ckpt_dir=Path(ckpt_dir) / run_name(ds, key, seed), device=device, autocast=autocast,
                    progress=progress)
                log(f"{ds} {key} seed {seed}: {model.step} steps")
                runs[(ds, key, seed)] = model
    return runs


def train_style_runs(datasets, methods, seeds, *, data_root, paper_data_root, n_train, resolution, channels, z_dim,
                     w_dim, mapping_layers, epochs_per_lod, fade, batch_size, lr, beta_rec, beta_kl, beta_neg, gamma_r,
                     ckpt_dir, device, autocast, progress: bool = True, log=print) -> dict:
    """Train the style-based pair (progressive growing up to `resolution`) for every (dataset, method, seed).

    methods: a comma list of METHODS, or "" / "none" for no style-based runs (returns {}).
    channels: widths per resolution from 4x4 up, one per doubling (e.g. "32,32,16,16" for 32x32).
    Returns:
        {(dataset, "style_<method>", seed): TrainedModel}; checkpoints <ckpt_dir>/<dataset>_style_<method>_seed<k>.
    Every argument is checked, every dataset loaded and every architecture built before any training.
    """
    if str(methods).strip().lower() in ("", "none"):
        return {}
    ok = check_style_args(datasets, methods, seeds, n_train=n_train, resolution=resolution, channels=channels,
                          z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers, epochs_per_lod=epochs_per_lod,
                          fade=fade, batch_size=batch_size, lr=lr, beta_rec=beta_rec, beta_kl=beta_kl,
                          beta_neg=beta_neg, gamma_r=gamma_r, data_root=data_root, paper_data_root=paper_data_root,
                          ckpt_dir=ckpt_dir, device=device, autocast=autocast)
    names, ms, seed_list, n, batch_size = ok["datasets"], ok["methods"], ok["seeds"], ok["n_train"], ok["batch_size"]
    fade, resolution = ok["fade"], ok["resolution"]
    loaded, archs = {}, {}
    for ds in names:
        folder_kw = {"size": resolution} if ds.startswith("folder:") else {}   # folders load at the final size
        data = loaded[ds] = load_image_dataset(ds, "train", root_for(ds, data_root, paper_data_root),
                                               None if n <= 0 else n, **folder_kw)
        if len(data) < batch_size:
            raise ConfigError(f"{ds} has {len(data)} training images, fewer than one batch "
                              f"(style_batch_size {batch_size}): lower style_batch_size")
        archs[ds] = ok["arch"](ds, data.shape[0])
    runs = {}
    for ds in names:
        for method in ms:
            key = STYLE_PREFIX + method
            for seed in seed_list:
                model = train_style_model(loaded[ds], archs[ds], method, seed, epochs_per_lod=epochs_per_lod,
                                          fade=fade, batch_size=batch_size, lr=lr, beta_rec=beta_rec,
                                          beta_kl=beta_kl, beta_neg=beta_neg, gamma_r=gamma_r,
                                          ckpt_dir=Path(ckpt_dir) / run_name(ds, key, seed), device=device,
                                          autocast=autocast, progress=progress)
                log(f"{ds} {key} seed {seed}: {model.step} steps, grown to {archs[ds].image_size}x{archs[ds].image_size}")
                runs[(ds, key, seed)] = model
    return runs


def check_style_args(datasets, methods, seeds, *, n_train, resolution, channels, z_dim, w_dim, mapping_layers,
                     epochs_per_lod, fade, batch_size, lr, beta_rec, beta_kl, beta_neg, gamma_r, data_root,
                     paper_data_root, ckpt_dir, device, autocast) -> dict:
    """Check every argument of train_style_runs without loading data: one ConfigError naming it (the style_*
    parameter). The architecture is built on paper for one image channel to prove that style_channels fit
    style_resolution (one width per resolution from 4x4 up).

    Returns:
        datasets, methods, seeds, n_train, batch_size, fade and resolution parsed, and arch(dataset, cdim) ->
        the StyleArch of a dataset with cdim image channels.
    """
    names = parse_datasets(datasets)
    ms = parse_list("style_methods", methods, METHODS)
    seed_list = parse_seeds("seeds", seeds)
    n = parse_int("style_n_train", n_train, 0, MAX_N_TRAIN)
    batch_size = parse_int("style_batch_size", batch_size, 1, MAX_BATCH_SIZE)
    widths = parse_numbers("style_channels (widths like '32,32,16,16')", channels, integer=True, positive=True)
    if max(widths) > MAX_CHANNELS:
        raise ConfigError(f"style_channels must be widths <= {MAX_CHANNELS}, got {channels!r}")
    parse_number("style_epochs_per_lod", epochs_per_lod, positive=True, at_most=MAX_EPOCHS)
    fade = parse_number("style_fade", fade)
    if fade > 1:
        raise ConfigError(f"style_fade must be in [0, 1], got {fade!r}")
    check_loss_settings(lr=lr, beta_rec=beta_rec, beta_kl=beta_kl, beta_neg=beta_neg, gamma_r=gamma_r)
    for name, v in (("data_root", data_root), ("paper_data_root", paper_data_root), ("ckpt_dir", ckpt_dir)):
        _check_path(name, v)
    check_choice("autocast", autocast, AUTOCAST)
    check_device(device)
    resolution = parse_int("style_resolution", resolution, 4, 4096)
    sizes = dict(z_dim=parse_int("style_z_dim", z_dim, 1, MAX_Z_DIM), w_dim=parse_int("style_w_dim", w_dim, 1, MAX_Z_DIM),
                 mapping_layers=parse_int("style_mapping_layers", mapping_layers, 1, 64))

    def arch(ds: str, cdim: int) -> StyleArch:
        try:
            return StyleArch(dataset=ds, image_size=resolution, cdim=cdim, channels=tuple(int(w) for w in widths),
                             **sizes)
        except ConfigError as e:
            raise ConfigError(f"style-based model for {ds} (style_resolution {resolution}, style_channels "
                              f"{channels!r}): {e}") from None

    arch(names[0], 1)
    return dict(datasets=names, methods=ms, seeds=seed_list, n_train=n, batch_size=batch_size, fade=fade,
                resolution=resolution, arch=arch)


def check_released(spec, config="", images="") -> list[tuple[str, str]]:
    """Check the released-weights parameters without loading them: every `released` entry <kind>:<path> with a
    known kind and a readable file, `released_config` a JSON object of {kind: {overrides}} (kinds of KINDS),
    `released_images` empty or a folder of images. Returns [(kind, path)]."""
    import json
    entries = []
    for item in split_items("released", spec, allow_empty=True):
        kind, sep, path = item.partition(":")
        kind, path = kind.strip(), path.strip()
        if not sep or not path:
            raise ConfigError(f"released entries are <kind>:<path>, got {item!r}")
        check_choice("released kind", kind, weights.KINDS)
        if not Path(path).is_file():
            raise CheckpointError(f"released weights file {path} (released {kind}) does not exist; the download "
                                  f"links are in the README")
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as e:
            raise CheckpointError(f"released weights file {path} cannot be read ({e.strerror})") from None
        entries.append((kind, path))
    try:
        overrides = json.loads(config) if str(config).strip() else {}
    except (json.JSONDecodeError, TypeError) as e:
        raise ConfigError(f"released_config must be a JSON object or empty, got {config!r} ({e})") from None
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise ConfigError(f"released_config must be a JSON object {{kind: {{...}}}}, got {config!r}")
    for kind in overrides:
        check_choice("released_config kind", kind, weights.KINDS)
    if str(images or "").strip():
        try:
            check_dataset(f"folder:{str(images).strip()}")
        except DataError as e:
            raise DataError(f"released_images: {e}") from None
    return entries


def check_parameters(*, seed, n_seeds, device, datasets, methods, conditional, n_train, epochs, batch_size, lr,
                     beta_rec, beta_kl, beta_neg, gamma_r, num_vae, channels, z_dim, autocast, n_fd_samples,
                     use_inception, classifier_epochs, fid_protocols, precision_recall_k, style_datasets,
                     style_methods, style_n_train, style_resolution, style_channels, style_z_dim, style_w_dim,
                     style_mapping_layers, style_epochs_per_lod, style_fade, style_batch_size, style_lr,
                     style_beta_rec, style_beta_kl, style_beta_neg, released, released_config, released_images,
                     data_root="data", paper_data_root="data_paper", ckpt_dir="outputs/images/checkpoints",
                     classifier_dir="outputs/images/classifiers", outputs=()) -> dict:
    """The images stage's preflight, in seconds, before anything is trained or written: every parameter of
    notebook 04 (one ConfigError naming it), every dataset present and readable (DataError, nothing loaded),
    every architecture fitting its images (residual: channels and z_dim at the dataset's size; style-based:
    style_channels at style_resolution), the released weights files readable and their config well-formed,
    the scoring settings (n_fd_samples, fid_protocols, ...), and the output folders writable (OutputError).

    Returns:
        check_train_args' parsed values (seeds: seed .. seed + n_seeds - 1).
    """
    seed_list = seeds_from(seed, n_seeds)
    ok = check_train_args(datasets, methods, seed_list, data_root=data_root, paper_data_root=paper_data_root,
                          n_train=n_train, epochs=epochs, batch_size=batch_size, lr=lr, beta_rec=beta_rec,
                          beta_kl=beta_kl, beta_neg=beta_neg, gamma_r=gamma_r, num_vae=num_vae, channels=channels,
                          z_dim=z_dim, ckpt_dir=ckpt_dir, device=device, autocast=autocast, conditional=conditional)
    parse_int("n_fd_samples", n_fd_samples, 1, MAX_FD_SAMPLES)
    parse_int("classifier_epochs", classifier_epochs, 0, MAX_CLASSIFIER_EPOCHS)
    parse_int("precision_recall_k", precision_recall_k, 0, 1000)
    parse_bool("use_inception", use_inception)
    parse_list("fid_protocols", fid_protocols, fid.FID_PROTOCOLS)
    _check_path("classifier_dir", classifier_dir)
    jobs = [(m, False) for m in ok["methods"]] + ([("soft_intro_vae", True)] if ok["conditional"] else [])
    for ds in ok["datasets"]:
        root = root_for(ds, data_root, paper_data_root)
        c, h, _w = check_dataset(ds, "train", root)
        if not ds.startswith("folder:"):
            check_dataset(ds, "test", root)
        for method, cond in jobs:
            try:
                arch_for(ds, h, c, channels, ok["z_dim"], cond)
            except ConfigError as e:
                raise ConfigError(f"channels={channels!r}, z_dim={z_dim!r} do not fit {ds} ({h}x{h} images): "
                                  f"{e}") from None
    if str(style_methods).strip().lower() not in ("", "none"):
        st = check_style_args(style_datasets, style_methods, [seed_list[0]], n_train=style_n_train,
                              resolution=style_resolution, channels=style_channels, z_dim=style_z_dim,
                              w_dim=style_w_dim, mapping_layers=style_mapping_layers,
                              epochs_per_lod=style_epochs_per_lod, fade=style_fade, batch_size=style_batch_size,
                              lr=style_lr, beta_rec=style_beta_rec, beta_kl=style_beta_kl, beta_neg=style_beta_neg,
                              gamma_r=gamma_r, data_root=data_root, paper_data_root=paper_data_root,
                              ckpt_dir=ckpt_dir, device=device, autocast=autocast)
        for ds in st["datasets"]:
            root = root_for(ds, data_root, paper_data_root)
            c, _h, _w = check_dataset(ds, "train", root, size=st["resolution"])
            if not ds.startswith("folder:"):
                check_dataset(ds, "test", root)
            st["arch"](ds, c)
    for kind, _path in check_released(released, released_config, released_images):
        if kind == "cifar10":   # scored against CIFAR-10 from paper_data_root
            for split in ("train", "test"):
                check_dataset("cifar10", split, paper_data_root)
    check_writable(ckpt_dir, classifier_dir, *outputs)
    return ok


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
    import json
    items = split_items("released", spec, allow_empty=True)
    try:
        overrides = json.loads(config) if str(config).strip() else {}
    except json.JSONDecodeError as e:
        raise ConfigError(f"released_config must be a JSON object or empty, got {config!r} ({e.msg})") from None
    if not isinstance(overrides, dict):
        raise ConfigError(f"released_config must be a JSON object {{kind: {{...}}}}, got {config!r}")
    dev = resolve_device(device)
    runs = {}
    for item in items:
        kind, sep, path = item.partition(":")
        kind, path = kind.strip(), path.strip()
        if not sep or not path:
            raise ConfigError(f"released entries are <kind>:<path>, got {item!r}")
        check_choice("released kind", kind, weights.KINDS)
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


def check_score_args(runs: dict, *, data_root, paper_data_root, n_fd_samples, classifier_dir, classifier_epochs,
                     use_inception, seed, device="cpu", log=print) -> dict:
    """Check every argument of score_models without loading data: one ConfigError naming the bad one.

    runs: a dict {(dataset, method, seed): TrainedModel}; n_fd_samples: an integer in [1, MAX_FD_SAMPLES];
    classifier_epochs: an integer in [0, MAX_CLASSIFIER_EPOCHS]; use_inception: a boolean; seed: a seed;
    data_root, paper_data_root, classifier_dir: paths; device: as everywhere.

    Returns:
        n_fd_samples, classifier_epochs, use_inception and seed parsed.
    """
    if not isinstance(runs, dict):
        raise ConfigError(f"runs must be the dict train_runs returns, got {type(runs).__name__}")
    for key, model in runs.items():
        if not (isinstance(key, tuple) and len(key) == 3) or not isinstance(model, TrainedModel):
            raise ConfigError(f"runs must map (dataset, method, seed) to TrainedModel, got {key!r}: "
                              f"{type(model).__name__}")
    for name, v in (("data_root", data_root), ("paper_data_root", paper_data_root),
                    ("classifier_dir", classifier_dir)):
        _check_path(name, v)
    check_device(device)
    if not callable(log):
        raise ConfigError(f"log must be a function taking a message, got {log!r}")
    return dict(n_fd_samples=parse_int("n_fd_samples", n_fd_samples, 1, MAX_FD_SAMPLES),
                classifier_epochs=parse_int("classifier_epochs", classifier_epochs, 0, MAX_CLASSIFIER_EPOCHS),
                use_inception=parse_bool("use_inception", use_inception), seed=parse_seed("seed", seed))


def score_models(runs: dict, *, data_root, paper_data_root, n_fd_samples: int, classifier_dir,
                 classifier_epochs: int, use_inception: bool, seed: int, device="cpu", log=print,
                 fid_protocols="paper", precision_recall_k: int = 3) -> dict:
    """Frechet score, k-NN precision / recall, test reconstruction error and test KL of every run;
    classifier accuracies.

    fid_protocols: comma list of sivae.images.metrics.FID_PROTOCOLS; the first gives "value", each further
    one (FID only: the classifier fallback has no protocol) "value_<protocol>" from the same samples.
    precision_recall_k: k of the precision / recall balls (0: none).

    Returns:
        {"runs": {(ds, method, seed): {...}}, "classifiers": {ds: test accuracy}}.

    Every argument is checked (check_score_args) before any data is loaded or classifier trained.
    """
    ok = check_score_args(runs, data_root=data_root, paper_data_root=paper_data_root, n_fd_samples=n_fd_samples,
                          classifier_dir=classifier_dir, classifier_epochs=classifier_epochs,
                          use_inception=use_inception, seed=seed, device=device, log=log)
    n_fd_samples, classifier_epochs, use_inception = ok["n_fd_samples"], ok["classifier_epochs"], ok["use_inception"]
    seed = ok["seed"]
    protocols = parse_list("fid_protocols", fid_protocols, fid.FID_PROTOCOLS)
    pr_k = parse_int("precision_recall_k", precision_recall_k, 0, 1000) or None
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
