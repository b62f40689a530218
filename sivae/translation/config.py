"""The translation stage's parameters as one typed object, checked once (notebooks/05_translation.py).

    cfg = TranslationConfig.from_params(globals())   # right after the notebook's parameters cell
    check_files(cfg)                                 # the dataset's files, the VGG16 weights, the outputs

Every field is a parameter of the notebook (same name, same default as its parameters cell and
params.yaml's `translation` section). `__post_init__` parses each one once with `sivae.params`
(one ConfigError naming the first bad one), checks the cross-field rules (batch size against the
procedural images, a data folder for Cars3D/KTH) and builds the architecture (`cfg.arch`, an
ArchConfig). `check_files` does what is about files, not values. The study functions take the
config whole (`sivae.translation.study.train_seeds`): each model's `sivae.train.TrainConfig` is
built from it once per run, and nothing below re-parses a value it holds.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import StageConfig, check_path
from ..errors import ConfigError, DataError, check_choice, check_nonnegative
from ..params import MAX_ITERATIONS, parse_int, parse_list, parse_numbers, parse_seed, seeds_from
from ..runinfo import check_writable
from ..runtime import check_device
from ..train import MAX_BATCH_SIZE, check_milestones
from .data import DATASETS, channels_of
from .models import ArchConfig
from .perceptual import REC_LOSSES, find_vgg_weights, vgg_missing

__all__ = ["TranslationConfig", "check_files", "MODELS", "MAX_EPOCHS", "MAX_GRID", "MAX_PAIRS", "MAX_CLASSES",
           "OUTPUTS"]

MODELS = ("vae", "soft_intro_vae")

MAX_EPOCHS = 1_000_000       # n_epochs above this is a typo (the paper trains 400)
MAX_GRID = 64                # class x content sources of the translation grids (the paper's figures: < 10)
MAX_PAIRS = 1_000_000        # transfer pairs scored per split
MAX_CLASSES = 100_000        # procedural identities (Cars3D has 183 models)
IMAGES_PER_IDENTITY = 96     # procedural: every (elevation, azimuth) of one identity
OUTPUTS = ("ckpt_dir", "fig_dir", "metrics_path", "table_path", "run_info_path", "live_dir")   # written by the stage


@dataclass
class TranslationConfig(StageConfig):
    """Every parameter of notebook 05, parsed (see the notebook's parameters cell for what each means).

    After construction: seed, n_seeds, n_classes, n_test_classes, batch_size, num_vae, kl_every, n_pairs, n_grid
    and the layer sizes are ints; n_epochs, lr and the loss weights floats; lr_milestones a tuple of floats;
    methods a tuple of MODELS; enc_channels, dec_channels tuples of ints; `arch` the ArchConfig they describe
    (in_channels from the dataset); `seeds` the list seed, ..., seed + n_seeds - 1.
    """
    seed: int = 0                    # base seed; seed k draws the identities, the initialisation and the data order
    n_seeds: int = 2
    device: str = "auto"
    dataset: str = "procedural"      # "procedural", "cars3d" or "kth"
    data_root: str = "none"          # folder of the Cars3D .mat files / KTH frames (procedural needs none)
    n_classes: int = 40
    n_test_classes: int = 10
    methods: tuple = "all"           # "all" or a comma list of MODELS
    enc_channels: tuple = "8,16,32,32"
    dec_channels: tuple = "32,32,16,8"
    dec_hidden: int = 8
    fc_hidden: int = 256
    class_dim: int = 256
    content_dim: int = 128
    n_epochs: float = 4.0            # passes over the training images (Appendix 9.3: 400)
    batch_size: int = 16             # Appendix 9.3: 64
    lr: float = 0.001
    lr_milestones: tuple = ""        # fractions of the run where lr drops x0.1 ("": constant)
    beta_rec: float = 1.0
    beta_kl: float = 1.0
    beta_neg: float = 768.0          # ~2 x d_z (d_z = 384), like 256 for d_z = 128 in the public code
    gamma_r: float = 1e-8            # every experiment of the paper
    num_vae: int = 0                 # plain-VAE warm-up iterations of Soft-IntroVAE
    rec_loss: str = "auto"           # "mse", "vgg" or "auto" (sivae.translation.perceptual.resolve_rec_loss)
    vgg_weights: str = "auto"        # VGG16 weight file, or "auto" (torch hub cache)
    kl_every: int = 25               # iterations between the per-code KL records
    n_pairs: int = 500
    n_grid: int = 6
    ckpt_dir: str = "outputs/scratch/translation/checkpoints"
    fig_dir: str = "outputs/scratch/translation/figures"
    metrics_path: str = "outputs/scratch/translation/metrics.json"
    table_path: str = "outputs/scratch/translation/table4.md"
    run_info_path: str = "outputs/scratch/translation/run_info.json"
    live_dir: str = "outputs/scratch/translation/live"
    arch: ArchConfig = field(init=False, repr=False)   # built from the fields above

    def __post_init__(self):
        self.seed = seeds_from(self.seed, self.n_seeds)[0]
        self.n_seeds = int(self.n_seeds)
        check_choice("rec_loss", self.rec_loss, REC_LOSSES)
        self.methods = tuple(parse_list("method", self.methods, MODELS))
        check_device(self.device)
        if isinstance(self.device, torch.device):
            self.device = str(self.device)
        self._parse_training()
        self.enc_channels, self.dec_channels = (parse_numbers(k, getattr(self, k), integer=True, positive=True)
                                                for k in ("enc_channels", "dec_channels"))
        for name in ("dec_hidden", "fc_hidden", "class_dim", "content_dim"):
            setattr(self, name, parse_int(name, getattr(self, name), 1, 1 << 16))
        check_choice("dataset", self.dataset, tuple(DATASETS))
        self.arch = ArchConfig(in_channels=channels_of(self.dataset), enc_channels=self.enc_channels,
                               dec_channels=self.dec_channels, dec_hidden=self.dec_hidden, fc_hidden=self.fc_hidden,
                               class_dim=self.class_dim, content_dim=self.content_dim)
        self.n_classes = parse_int("n_classes", self.n_classes, 1, MAX_CLASSES)
        self.n_test_classes = parse_int("n_test_classes", self.n_test_classes, 1, MAX_CLASSES)
        self.n_pairs = parse_int("n_pairs", self.n_pairs, 1, MAX_PAIRS)
        self.n_grid = parse_int("n_grid", self.n_grid, 1, MAX_GRID)
        n_images = self.n_classes * IMAGES_PER_IDENTITY
        if self.dataset == "procedural" and self.batch_size > n_images:
            raise ConfigError(f"batch_size {self.batch_size} is larger than the {n_images} training images of "
                              f"{self.n_classes} procedural identities (n_classes): lower batch_size")
        if self.dataset != "procedural":
            if self.data_root in (None, "", "none"):
                raise ConfigError(f"dataset {self.dataset!r} needs data_root (the folder of its files)")
            self.data_root = check_path("data_root", self.data_root)
        if self.vgg_weights is not None and not isinstance(self.vgg_weights, (str, os.PathLike)):
            raise ConfigError(f"vgg_weights must be 'auto' or a file path, got {self.vgg_weights!r}")
        if isinstance(self.vgg_weights, os.PathLike):
            self.vgg_weights = os.fspath(self.vgg_weights)
        for name in OUTPUTS:
            setattr(self, name, check_path(name, getattr(self, name)))

    def _parse_training(self):
        """The training budget and loss weights (the values each run's TrainConfig is built from)."""
        for name in ("n_epochs", "lr", "beta_rec", "beta_kl", "beta_neg", "gamma_r"):
            setattr(self, name, check_nonnegative(name, getattr(self, name)))
        self.lr_milestones = check_milestones(self.lr_milestones)   # TrainConfig's own check
        for name, top in (("batch_size", MAX_BATCH_SIZE), ("kl_every", MAX_ITERATIONS)):
            setattr(self, name, parse_int(name, getattr(self, name), 1, top))
        if self.n_epochs == 0:
            raise ConfigError("n_epochs must be > 0")
        if self.n_epochs > MAX_EPOCHS:
            raise ConfigError(f"n_epochs must be at most {MAX_EPOCHS}, got {self.n_epochs!r}")
        self.num_vae = parse_int("num_vae", self.num_vae, 0, MAX_ITERATIONS)

    @property
    def seeds(self) -> list[int]:
        """The seeds of the run: seed, seed + 1, ..., seed + n_seeds - 1."""
        return [self.seed + i for i in range(self.n_seeds)]

    def for_seed(self, seed: int, ckpt_dir) -> TranslationConfig:
        """The one-seed config of seed `seed` (one of `seeds`), checkpointed under `ckpt_dir`."""
        return self.replace(seed=parse_seed("seed", seed), n_seeds=1, ckpt_dir=str(ckpt_dir))


def check_files(cfg: TranslationConfig) -> None:
    """The preflight of what is about files, before any data is built, anything trained or written: the
    dataset's folder (cars3d, kth: DataError), the VGG16 weights file when rec_loss is 'vgg' (DataError naming
    it: never a silent MSE), and every output path of the stage writable (OutputError)."""
    if not isinstance(cfg, TranslationConfig):
        raise ConfigError(f"check_files needs a TranslationConfig, got {type(cfg).__name__}")
    if cfg.dataset != "procedural":
        root = Path(cfg.data_root)
        if not root.is_dir():
            raise DataError(f"data_root {root} (dataset {cfg.dataset}) does not exist")
        n_mat = len(list(root.glob("*.mat")))
        if cfg.dataset == "cars3d" and n_mat <= cfg.n_test_classes:
            raise DataError(f"Cars3D folder {root} (data_root) holds {n_mat} .mat files; "
                            f"need more than n_test_classes={cfg.n_test_classes}")
    if cfg.rec_loss == "vgg" and find_vgg_weights(cfg.vgg_weights) is None:
        raise vgg_missing(cfg.vgg_weights)
    check_writable(*(getattr(cfg, name) for name in OUTPUTS))
