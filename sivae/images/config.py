"""The images stage's parameters as one typed object, parsed and checked once: `ImagesConfig`.

Notebook 04 builds it in one call from its parameters cell,

    cfg = ImagesConfig.from_params(globals())

and passes it whole to `sivae.images.study` (train_runs, train_style_runs, score_models, check_files). Every
field is a parameter of the notebook (the names of its `parameters` cell and of params.yaml's `images`
section, with the notebook's defaults); `__post_init__` parses each (one ConfigError naming the first bad
one) and derives the parts the study reads:

    seeds        seed .. seed + n_seeds - 1
    budgets      {dataset: DatasetBudget(epochs, batch_size)}: 'paper' resolved per dataset, n_train >= a batch
    style        StyleSettings of the style-based pair (None when style_methods is "none")
    released_entries, released_overrides: the `released` weights as (kind, path) and `released_config` parsed

The learning rates and loss weights are checked by the one check of them, `sivae.train.TrainConfig`'s
(`loss_weights`); the study and the image trainers do not check them again. What needs files (datasets
present, architectures fitting the images on disk, weights files readable, outputs writable) is
`sivae.images.study.check_files(cfg)`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..config import StageConfig, check_path
from ..errors import ConfigError, check_choice
from ..paper import PAPER_TRAINING
from ..params import (
    parse_bool,
    parse_int,
    parse_list,
    parse_number,
    parse_numbers,
    seeds_from,
    split_items,
)
from ..runtime import check_device
from ..train import AUTOCAST, MAX_BATCH_SIZE, METHODS, TrainConfig
from .data import DATASETS
from .metrics import FID_PROTOCOLS
from .released import KINDS
from .style import StyleArch
from .training import MAX_EPOCHS

__all__ = ["ImagesConfig", "StyleSettings", "DatasetBudget", "TrainingSizes", "training_sizes", "loss_weights",
           "parse_datasets", "parse_widths", "parse_released", "parse_released_config", "MAX_CHANNELS", "MAX_Z_DIM",
           "MAX_N_TRAIN",
           "MAX_FD_SAMPLES", "MAX_CLASSIFIER_EPOCHS"]

MAX_CHANNELS = 4096          # widest residual stage (the paper: 256)
MAX_Z_DIM = 4096             # largest latent (the paper: 128)
MAX_N_TRAIN = 100_000_000    # training images kept (0: all)
MAX_FD_SAMPLES = 1_000_000   # generated images per Frechet score (the paper's FID: 50,000)
MAX_CLASSIFIER_EPOCHS = 100_000
# each checked by TrainConfig only
LOSS_NAMES = ("lr", "lr_milestones", "beta_rec", "beta_kl", "beta_neg", "gamma_r")
STYLE_LOSS_NAMES = ("lr", "beta_rec", "beta_kl", "beta_neg")         # style_<name>; gamma_r is shared


# ---------------------------------------------------------------- parsers of this stage's value forms
def parse_datasets(value, name: str = "datasets") -> tuple[str, ...]:
    """'mnist,fashionmnist' (or a sequence) -> names, each checked (folders: 'folder:<path>' is allowed)."""
    return tuple(v if v.startswith("folder:") else parse_list(name, v, DATASETS)[0] for v in split_items(name, value))


def _paper_or(name: str, value, dataset: str):
    """`value`, or the paper's setting for `dataset` when value == "paper"."""
    if value != "paper":
        return value
    if dataset not in PAPER_TRAINING:
        raise ConfigError(f"{name}='paper' has no paper value for {dataset!r}; give a number")
    return PAPER_TRAINING[dataset][name]


def _number(name: str, value, **bounds):
    """parse_number, keeping a number given as an int an int (so run settings print as they were given)."""
    x = parse_number(name, value, **bounds)
    return value if isinstance(value, (int, float)) else x


def parse_widths(name: str, value) -> tuple[int, ...]:
    """Layer widths: 'a,b,...' or a sequence of positive integers, each <= MAX_CHANNELS (the ConfigError names
    the first word of `name`)."""
    label = name.split(" ")[0]
    widths = parse_numbers(name, value, integer=True, positive=True)
    if max(widths) > MAX_CHANNELS:
        raise ConfigError(f"{label} must be widths <= {MAX_CHANNELS}, got {value!r}")
    return tuple(int(w) for w in widths)


def loss_weights(prefix: str = "", **values) -> TrainConfig:
    """The learning rate, its decay positions and the loss weights (lr, lr_milestones, beta_rec, beta_kl,
    beta_neg, gamma_r) checked by their one check, TrainConfig's (finite numbers >= 0), as a TrainConfig holding
    them; the ConfigError names `prefix` + the setting (e.g. style_beta_kl)."""
    for name, v in values.items():   # TrainConfig would read True as 1.0
        if isinstance(v, bool):
            raise ConfigError(f"{prefix}{name} must be a number, got {v!r}")
    try:
        return TrainConfig(**values)
    except ConfigError as e:
        raise ConfigError(prefix + str(e) if prefix and str(e).startswith(tuple(values)) else str(e)) from None


def parse_released(value) -> tuple[tuple[str, str], ...]:
    """The `released` parameter: '' or a comma list of <kind>:<path> with kind in KINDS -> ((kind, path), ...)."""
    entries = []
    for item in split_items("released", value, allow_empty=True):
        kind, sep, path = item.partition(":")
        kind, path = kind.strip(), path.strip()
        if not sep or not path:
            raise ConfigError(f"released entries are <kind>:<path>, got {item!r}")
        check_choice("released kind", kind, KINDS)
        entries.append((kind, path))
    return tuple(entries)


def parse_released_config(value) -> dict:
    """`released_config`: '' or a JSON object {kind: {architecture overrides}} with kinds of KINDS."""
    if isinstance(value, dict):
        overrides = value
    else:
        try:
            overrides = json.loads(value) if str(value).strip() else {}
        except (json.JSONDecodeError, TypeError) as e:
            raise ConfigError(f"released_config must be a JSON object or empty, got {value!r} ({e})") from None
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise ConfigError(f"released_config must be a JSON object {{kind: {{...}}}}, got {value!r}")
    for kind in overrides:
        check_choice("released_config kind", kind, KINDS)
    return overrides


# ---------------------------------------------------------------- derived parts
@dataclass(frozen=True)
class DatasetBudget:
    """How one dataset's residual models train: epochs (a float) and batch_size ('paper' resolved)."""
    epochs: float
    batch_size: int


@dataclass(frozen=True)
class TrainingSizes:
    """training_sizes' result: the budget per dataset, n_train (0: all), channels ('paper' or the widths) and
    z_dim ('paper' or an int)."""
    per_dataset: dict
    n_train: int
    channels: tuple | str
    z_dim: int | str


def training_sizes(datasets, *, epochs, batch_size, n_train=0, channels="paper", z_dim="paper") -> TrainingSizes:
    """ConfigError naming the first bad one of the training-length and size settings of image models.

    epochs: a number in (0, MAX_EPOCHS] or 'paper'; batch_size: an integer in [1, MAX_BATCH_SIZE] or 'paper'
    ('paper' only for datasets with a paper value); n_train: an integer in [0, MAX_N_TRAIN] (0: all), at least
    one batch; channels: 'paper' or widths in [1, MAX_CHANNELS]; z_dim: 'paper' or an integer in [1, MAX_Z_DIM].
    """
    n = parse_int("n_train", n_train, 0, MAX_N_TRAIN)
    per = {}
    for ds in datasets:
        e = _paper_or("epochs", epochs, ds)
        e = parse_number("epochs" if e is epochs else f"epochs ('paper' for {ds})", e, positive=True,
                         at_most=MAX_EPOCHS)
        b = parse_int("batch_size", _paper_or("batch_size", batch_size, ds), 1, MAX_BATCH_SIZE)
        if 0 < n < b:
            raise ConfigError(f"n_train={n} is fewer than one batch of {ds} (batch_size {b}): "
                              f"lower batch_size or raise n_train")
        per[ds] = DatasetBudget(e, b)
    if channels != "paper":
        channels = parse_widths("channels ('paper' or widths like '16,32')", channels)
    if z_dim != "paper":
        z_dim = parse_int("z_dim ('paper' or an integer)", z_dim, 1, MAX_Z_DIM)
    return TrainingSizes(per, n, channels, z_dim)


@dataclass(frozen=True)
class StyleSettings:
    """The style-based pair's part of the config (the style_* parameters, parsed): what train_style_runs reads."""
    datasets: tuple
    methods: tuple
    n_train: int
    resolution: int
    channels: tuple
    z_dim: int
    w_dim: int
    mapping_layers: int
    epochs_per_lod: float
    fade: float
    batch_size: int      # (the style pair's lr and loss weights: ImagesConfig.style_loss_settings())

    def arch(self, dataset: str, cdim: int) -> StyleArch:
        """The StyleArch of `dataset` with cdim image channels; ConfigError naming style_resolution /
        style_channels when the widths do not fit the resolution."""
        try:
            return StyleArch(dataset=dataset, image_size=self.resolution, cdim=cdim, channels=self.channels,
                             z_dim=self.z_dim, w_dim=self.w_dim, mapping_layers=self.mapping_layers)
        except ConfigError as e:
            channels = ",".join(map(str, self.channels))
            raise ConfigError(f"style-based model for {dataset} (style_resolution {self.resolution}, style_channels "
                              f"{channels!r}): {e}") from None


# ---------------------------------------------------------------- the stage's config
@dataclass
class ImagesConfig(StageConfig):
    """Every parameter of notebook 04 (image generation), parsed and checked once (see the module docstring)."""
    seed: int = 0
    n_seeds: int = 2
    device: str = "auto"
    datasets: tuple = ("mnist", "fashionmnist")
    methods: tuple = ("vae", "soft_intro_vae")
    conditional: bool = True
    data_root: str = "data"
    paper_data_root: str = "data_paper"
    n_train: int = 0
    epochs: float | str = 1.0
    batch_size: int | str = 64
    lr: float = 1e-3
    lr_milestones: tuple | str = ""   # fractions of the run where lr drops x0.1 ("": constant, the public code)
    beta_rec: float = 1.0
    beta_kl: float = 1.0
    beta_neg: float = 256.0
    gamma_r: float = 1e-8
    num_vae: float = 0.0
    channels: tuple | str = (8, 16)
    z_dim: int | str = "paper"
    autocast: str = "auto"
    n_fd_samples: int = 5000
    use_inception: bool = True
    fid_protocols: tuple = ("paper", "authors_code")
    precision_recall_k: int = 3
    classifier_epochs: int = 1
    interactive: bool = True
    style_datasets: tuple = ("mnist",)
    style_methods: tuple = ("soft_intro_vae",)
    style_n_train: int = 6400
    style_resolution: int = 32
    style_channels: tuple = (32, 32, 16, 8)
    style_z_dim: int = 32
    style_w_dim: int = 32
    style_mapping_layers: int = 3
    style_epochs_per_lod: float = 1.0
    style_fade: float = 0.5
    style_batch_size: int = 32
    style_lr: float = 0.001
    style_beta_rec: float = 1.0
    style_beta_kl: float = 0.1
    style_beta_neg: float = 256.0
    released: tuple = ()
    released_config: str = ""
    released_images: str = ""
    ckpt_dir: str = "outputs/scratch/images/checkpoints"
    classifier_dir: str = "outputs/scratch/images/classifiers"
    fig_dir: str = "outputs/scratch/images/figures"
    metrics_path: str = "outputs/scratch/images/metrics.json"
    table_path: str = "outputs/scratch/images/scores.md"
    live_dir: str = "outputs/scratch/images/live"
    run_info_path: str = "outputs/scratch/images/run_info.json"
    # derived by __post_init__ (not parameters)
    seeds: tuple = field(init=False, default=())
    budgets: dict = field(init=False, default_factory=dict)
    style: StyleSettings | None = field(init=False, default=None)
    released_entries: tuple = field(init=False, default=())
    released_overrides: dict = field(init=False, default_factory=dict)

    def __post_init__(self):
        # the residual models (what train_runs trains)
        self.datasets = parse_datasets(self.datasets)
        self.methods = tuple(parse_list("methods", self.methods, METHODS))
        self.seeds = tuple(seeds_from(self.seed, self.n_seeds))
        self.seed, self.n_seeds = self.seeds[0], len(self.seeds)
        sizes = training_sizes(self.datasets, epochs=self.epochs, batch_size=self.batch_size, n_train=self.n_train,
                               channels=self.channels, z_dim=self.z_dim)
        self.budgets, self.n_train = sizes.per_dataset, sizes.n_train
        self.channels, self.z_dim = sizes.channels, sizes.z_dim
        if self.epochs != "paper":   # a number, as given (checked per dataset above)
            self.epochs = _number("epochs", self.epochs, positive=True, at_most=MAX_EPOCHS)
        if self.batch_size != "paper":
            self.batch_size = parse_int("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        loss = loss_weights(**{k: getattr(self, k) for k in LOSS_NAMES})
        for k in LOSS_NAMES:
            setattr(self, k, getattr(loss, k))
        self.num_vae = _number("num_vae", self.num_vae, at_most=MAX_EPOCHS)
        for name in ("data_root", "paper_data_root", "ckpt_dir"):
            setattr(self, name, check_path(name, getattr(self, name)))
        check_choice("autocast", self.autocast, AUTOCAST)
        check_device(self.device)
        self.device = "auto" if self.device is None else str(self.device)
        self.conditional = parse_bool("conditional", self.conditional)
        # scoring
        self.n_fd_samples = parse_int("n_fd_samples", self.n_fd_samples, 1, MAX_FD_SAMPLES)
        self.classifier_epochs = parse_int("classifier_epochs", self.classifier_epochs, 0, MAX_CLASSIFIER_EPOCHS)
        self.precision_recall_k = parse_int("precision_recall_k", self.precision_recall_k, 0, 1000)
        self.use_inception = parse_bool("use_inception", self.use_inception)
        self.fid_protocols = tuple(parse_list("fid_protocols", self.fid_protocols, FID_PROTOCOLS))
        self.interactive = parse_bool("interactive", self.interactive)
        # the style-based pair
        self.style = self._style()
        # the authors' released weights (their files: check_files)
        self.released_entries = parse_released(self.released)
        self.released = tuple(f"{k}:{p}" for k, p in self.released_entries)
        self.released_overrides = parse_released_config(self.released_config)
        if isinstance(self.released_config, dict):
            self.released_config = json.dumps(self.released_config)
        self.released_images = str(self.released_images or "").strip()
        for name in ("classifier_dir", "fig_dir", "metrics_path", "table_path", "live_dir", "run_info_path"):
            setattr(self, name, check_path(name, getattr(self, name)))

    def _style(self) -> StyleSettings | None:
        """Parse the style_* parameters; None when style_methods is "" / "none" (no style-based runs)."""
        off = (isinstance(self.style_methods, str) and self.style_methods.strip().lower() in ("", "none")) or (
            isinstance(self.style_methods, (list, tuple)) and not self.style_methods)
        if off:
            self.style_methods = ()
            return None
        self.style_datasets = parse_datasets(self.style_datasets)
        self.style_methods = tuple(parse_list("style_methods", self.style_methods, METHODS))
        self.style_n_train = parse_int("style_n_train", self.style_n_train, 0, MAX_N_TRAIN)
        self.style_batch_size = parse_int("style_batch_size", self.style_batch_size, 1, MAX_BATCH_SIZE)
        self.style_channels = parse_widths("style_channels (widths like '32,32,16,16')", self.style_channels)
        self.style_epochs_per_lod = _number("style_epochs_per_lod", self.style_epochs_per_lod, positive=True,
                                            at_most=MAX_EPOCHS)
        self.style_fade = parse_number("style_fade", self.style_fade)
        if self.style_fade > 1:
            raise ConfigError(f"style_fade must be in [0, 1], got {self.style_fade!r}")
        loss = loss_weights("style_", **{k: getattr(self, f"style_{k}") for k in STYLE_LOSS_NAMES},
                            gamma_r=self.gamma_r)   # the style pair shares gamma_r (no style_gamma_r)
        for k in STYLE_LOSS_NAMES:
            setattr(self, f"style_{k}", getattr(loss, k))
        self.style_resolution = parse_int("style_resolution", self.style_resolution, 4, 4096)
        self.style_z_dim = parse_int("style_z_dim", self.style_z_dim, 1, MAX_Z_DIM)
        self.style_w_dim = parse_int("style_w_dim", self.style_w_dim, 1, MAX_Z_DIM)
        self.style_mapping_layers = parse_int("style_mapping_layers", self.style_mapping_layers, 1, 64)
        style = StyleSettings(
            datasets=self.style_datasets, methods=self.style_methods, n_train=self.style_n_train,
            resolution=self.style_resolution, channels=self.style_channels, z_dim=self.style_z_dim,
            w_dim=self.style_w_dim, mapping_layers=self.style_mapping_layers,
            epochs_per_lod=float(self.style_epochs_per_lod), fade=self.style_fade, batch_size=self.style_batch_size)
        style.arch(self.style_datasets[0], 1)   # style_channels fit style_resolution (checked on paper)
        return style

    # ------------------------------------------------------------ read-outs
    @property
    def outputs(self) -> tuple[str, ...]:
        """The stage's output files and folders besides the checkpoints and classifiers."""
        return (self.fig_dir, self.metrics_path, self.table_path, self.live_dir, self.run_info_path)

    @property
    def channels_text(self) -> str:
        """channels as the parameter is written: 'paper' or '8,16'."""
        return self.channels if self.channels == "paper" else ",".join(map(str, self.channels))

    def loss_settings(self) -> dict:
        """The residual models' lr, its decays and the loss weights, as train_image_model takes them."""
        return {k: getattr(self, k) for k in LOSS_NAMES}

    def style_loss_settings(self) -> dict:
        """The style-based pair's lr and loss weights (style_*, and the shared gamma_r), as train_style_model
        takes them."""
        return {**{k: getattr(self, f"style_{k}") for k in STYLE_LOSS_NAMES}, "gamma_r": self.gamma_r}
