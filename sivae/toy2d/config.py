"""The toy2d stage's parameters as one typed object (`Toy2dConfig`), and what one run of it is (`RunSpec`).

The route of a parameter, e.g. beta_neg:
params.yaml `toy2d.beta_neg` -> the notebook's parameters cell (sivae.stage injects it) ->
`Toy2dConfig.from_params(globals())` (parsed once; Table 5 filled in per dataset and method) ->
one `sivae.train.TrainConfig` per run, built once here and carried by its `RunSpec` (where the loss
weights are checked) -> the losses (`sivae.engine`, `sivae.losses`).

The stability section and the grid sweeps derive their runs from a Toy2dConfig with `replace`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..config import StageConfig, check_path
from ..errors import ConfigError, check_choice, check_nonnegative
from ..paper import TABLE5
from ..params import MAX_ITERATIONS, parse_bool, parse_int, parse_list, parse_number, parse_numbers, seeds_from
from ..runtime import check_device
from ..train import MAX_BATCH_SIZE, METHODS, TrainConfig
from .data import TOY_DATASETS
from .models import MLPConfig

__all__ = ["Toy2dConfig", "RunSpec", "resolve_hparams", "TABLE5_SENTINEL", "WEIGHTS", "ENGINES", "STACK_MAX_RUNS",
           "MAX_GRID_SIZE", "MAX_SAMPLES", "MAX_HIDDEN", "CHECKPOINT_EVERY"]

TABLE5_SENTINEL = "table5"
WEIGHTS = ("beta_rec", "beta_kl", "beta_neg", "m")   # the loss weights Table 5 sets per (dataset, method)
MAX_GRID_SIZE = 4096       # the gnELBO/density grid is grid_size^2 points (paper: 1024)
MAX_SAMPLES = 1_000_000    # samples per evaluation histogram, decoded in one pass (paper: 5000)
MAX_HIDDEN = 8192          # widest hidden layer of the 2D MLPs (paper: 256)
CHECKPOINT_EVERY = 1000    # iterations between a run's checkpoints
# How runs are trained: "single" = one Trainer per run; "stack" = runs of one method as one batched model
# (sivae.stack; every run's trajectory is its Trainer's, up to rounding). At most STACK_MAX_RUNS runs per stack:
# on a 2-core CPU (benchmarks/bench_stack.py) 12 runs of the default size train 1.4x faster as a stack than one by
# one, 36 runs only 1.05x (batch 128) and 0.73x (batch 512): the stack is compute-bound there and large stacks
# leave the caches.
ENGINES = ("single", "stack")
STACK_MAX_RUNS = 12


def resolve_hparams(dataset: str, model: str, beta_rec=TABLE5_SENTINEL, beta_kl=TABLE5_SENTINEL,
                    beta_neg=TABLE5_SENTINEL, m=TABLE5_SENTINEL) -> dict:
    """Table 5 values for (dataset, model), each replaced by the given number unless 'table5'.

    Raises ConfigError for unknown names and for negative or NaN values.
    """
    parse_list("dataset", dataset, list(TOY_DATASETS))
    parse_list("model", model, METHODS)
    defaults = dict(zip(WEIGHTS, TABLE5[(dataset, model)]))
    given = dict(beta_rec=beta_rec, beta_kl=beta_kl, beta_neg=beta_neg, m=m)
    out = {}
    for name, value in given.items():
        if isinstance(value, str) and value == TABLE5_SENTINEL:
            value = defaults[name]
        if value is not None:
            out[name] = check_nonnegative(name, value)
    return out


@dataclass(frozen=True)
class RunSpec:
    """One 2D run to train: its data, method, seed, its TrainConfig (loss weights, schedule) and checkpoint folder."""
    dataset: str
    method: str
    seed: int
    config: TrainConfig
    ckpt_dir: Path
    keep_density: bool = False
    hparams: dict = field(default_factory=dict)   # the loss weights Table 5 (or an override) sets for the run
    mlp: MLPConfig = field(default_factory=MLPConfig)   # the encoder's and decoder's shape


def parse_factors(name: str, value, choices) -> dict[str, float]:
    """{dataset: factor > 0} from "dataset:factor,..." (or a mapping; "" or None: none), or ConfigError naming
    the parameter and the bad entry (an unknown dataset, a repeated one, a factor that is not a number > 0)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        items = []
        for part in value.split(","):
            key, sep, num = part.partition(":")
            if not sep or not key.strip():
                raise ConfigError(f"{name} must be a comma list of dataset:factor (e.g. 8gaussians:2), got {value!r}")
            items.append((key.strip(), num.strip()))
    elif isinstance(value, dict):
        items = list(value.items())
    else:
        raise ConfigError(f"{name} must be a comma list of dataset:factor or a mapping, got {value!r}")
    out = {}
    for key, num in items:
        if key not in choices:
            raise ConfigError(f"{name}: unknown dataset {key!r} (choose from {', '.join(choices)})")
        if key in out:
            raise ConfigError(f"{name}: {key!r} is given twice")
        out[key] = parse_number(f"{name} of {key}", num, positive=True)
    return out


def _weight(name: str, value):
    """A loss-weight override: 'table5' as it is, a number through check_nonnegative (the value TrainConfig gets)."""
    if isinstance(value, str) and value.strip() == TABLE5_SENTINEL:
        return TABLE5_SENTINEL
    return check_nonnegative(name, value)


@dataclass
class Toy2dConfig(StageConfig):
    """Every parameter of the toy2d stage (notebooks/02_toy2d.py), parsed and checked once.

    Defaults are the notebook's. After construction every field holds its parsed value (tuples of names and
    numbers, ints, floats, 'table5' or a float per loss weight) and every run's TrainConfig exists: a bad value
    of any run fails here, with one ConfigError naming it, before anything trains or is written.
    """
    seed: int = 0                    # base seed; the seeds are seed, ..., seed + n_seeds - 1
    n_seeds: int = 2
    device: str = "auto"             # "auto", "cpu", "cuda" or "cuda:<i>"
    datasets: tuple = "all"          # "all" or a comma list of TOY_DATASETS
    methods: tuple = "all"           # "all" or a comma list of METHODS
    n_iter: int = 2000               # training iterations per run (paper: 30000)
    n_iter_factor: dict | str = "8gaussians:2"   # "dataset:factor,...": those datasets train factor x n_iter
    batch_size: int = 512            # paper: 512
    lr: float = 2e-4
    lr_milestones: tuple = "0.6,0.8"  # MultiStepLR milestones, fractions of n_iter
    num_vae: int = 500               # plain-VAE warm-up of the introspective models (paper: 2000)
    gamma_r: float = 1e-8
    beta_rec: float | str = TABLE5_SENTINEL   # "table5" or a number for every run
    beta_kl: float | str = TABLE5_SENTINEL
    beta_neg: float | str = TABLE5_SENTINEL
    m: float | str = TABLE5_SENTINEL
    n_samples: int = 5000            # samples of the KL/JSD histograms
    grid_size: int = 1024            # the gnELBO/density grid is grid_size x grid_size
    engine: str = "stack"            # ENGINES
    hidden: int = 256                # width of the MLPs' hidden layers (paper: 256)
    ckpt_dir: str = "outputs/scratch/toy2d/checkpoints"   # <ckpt_dir>/<dataset>/<model>/seed<k>/ or .../stacks/
    progress: bool = True            # live progress lines (sivae.progress)
    budget: bool = True              # keep weights along each run for the budget curves
    seeds: tuple = field(init=False, repr=False)
    _weights: dict = field(init=False, repr=False, compare=False)
    _train: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        self.datasets = tuple(parse_list("datasets", self.datasets, list(TOY_DATASETS)))
        self.methods = tuple(parse_list("methods", self.methods, METHODS))
        self.seeds = tuple(seeds_from(self.seed, self.n_seeds))
        self.seed, self.n_seeds = self.seeds[0], len(self.seeds)
        self.n_iter = parse_int("n_iter", self.n_iter, 1, MAX_ITERATIONS)
        self.n_iter_factor = parse_factors("n_iter_factor", self.n_iter_factor, list(TOY_DATASETS))
        for d in self.datasets:
            parse_int(f"n_iter for {d} (n_iter x n_iter_factor)", self.n_iter_of(d), 1, MAX_ITERATIONS)
        self.batch_size = parse_int("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        self.num_vae = parse_int("num_vae", self.num_vae, 0, MAX_ITERATIONS)
        self.n_samples = parse_int("n_samples", self.n_samples, 1, MAX_SAMPLES)
        self.grid_size = parse_int("grid_size", self.grid_size, 2, MAX_GRID_SIZE)
        self.lr, self.gamma_r = parse_number("lr", self.lr), parse_number("gamma_r", self.gamma_r)
        self.lr_milestones = parse_numbers("lr_milestones", self.lr_milestones, nonnegative=True, at_most=1,
                                           allow_empty=True)
        for name in WEIGHTS:
            setattr(self, name, _weight(name, getattr(self, name)))
        self.ckpt_dir = check_path("ckpt_dir", self.ckpt_dir)
        self.progress, self.budget = parse_bool("progress", self.progress), parse_bool("budget", self.budget)
        check_device(self.device)
        check_choice("engine", self.engine, ENGINES)
        self.hidden = parse_int("hidden", self.hidden, 1, MAX_HIDDEN)
        self._weights = {(d, mo): resolve_hparams(d, mo, **{k: getattr(self, k) for k in WEIGHTS})
                         for d in self.datasets for mo in self.methods}
        self._train = {(d, mo, s): self._train_config(d, mo, s)
                       for d in self.datasets for mo in self.methods for s in self.seeds}

    # ------------------------------------------------------------------ runs
    def n_iter_of(self, dataset: str) -> int:
        """The iterations of `dataset`'s runs: n_iter, times its n_iter_factor if it has one (the decays and the
        budget steps are fractions of it; the warm-up num_vae stays as it is)."""
        return max(1, round(self.n_iter * self.n_iter_factor.get(dataset, 1.0)))

    def weights(self, dataset: str, method: str) -> dict:
        """The loss weights of (dataset, method): Table 5's, each replaced by this config's override (resolved once,
        by the constructor, for its datasets and methods)."""
        return dict(self._weights[(dataset, method)])

    def _train_config(self, dataset: str, method: str, seed: int) -> TrainConfig:
        weights = self.weights(dataset, method)
        return TrainConfig(method=method, n_iter=self.n_iter_of(dataset), batch_size=self.batch_size, lr=self.lr,
                           gamma_r=self.gamma_r, lr_milestones=self.lr_milestones,
                           num_vae=self.num_vae if method != "vae" else 0, seed=seed, progress=self.progress,
                           checkpoint_every=CHECKPOINT_EVERY, scale=0.5, extra={"arch": {"hidden": self.hidden}},
                           **weights)

    def train_config(self, dataset: str, method: str, seed: int) -> TrainConfig:
        """The TrainConfig of one run (built and checked once, by the constructor; s = 1/d_x = 1/2)."""
        try:
            return self._train[(dataset, method, seed)]
        except KeyError:
            raise ConfigError(f"({dataset}, {method}, seed {seed}) is not a run of this configuration "
                              f"(datasets {list(self.datasets)}, methods {list(self.methods)}, "
                              f"seeds {list(self.seeds)})") from None

    def specs(self, ckpt_dir: str | os.PathLike | None = None) -> list[RunSpec]:
        """Every (dataset, method, seed) as a RunSpec, checkpoints under <ckpt_dir>/<dataset>/<method>/seed<k>
        (ckpt_dir: this config's unless given); the density is kept for the first seed."""
        root = Path(ckpt_dir if ckpt_dir is not None else self.ckpt_dir)
        return [RunSpec(d, mo, s, self._train[(d, mo, s)], root / d / mo / f"seed{s}", keep_density=(i == 0),
                        hparams=self.weights(d, mo), mlp=self.mlp)
                for d in self.datasets for mo in self.methods for i, s in enumerate(self.seeds)]

    @property
    def mlp(self) -> MLPConfig:
        """The shape of every run's encoder and decoder."""
        return MLPConfig(hidden=self.hidden)

    @property
    def stack_dir(self) -> Path:
        """Where the stacks' checkpoints go (engine 'stack'): <ckpt_dir>/stacks/<method>-<runs>/."""
        return Path(self.ckpt_dir) / "stacks"
