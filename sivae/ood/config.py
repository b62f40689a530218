"""The OOD stage's parameters as one typed object, parsed and checked once: `OodConfig`.

Notebook 06 builds it from its parameters cell (`OodConfig.from_params(globals())`), a script from the
params.yaml section `ood` (`sivae.stage.stage_parameters("ood")`); `run_ood_study` and `run_beyond_study`
take it whole. One field per notebook parameter, with the notebook's names and defaults. `__post_init__`
parses each (one ConfigError naming the first bad one, the messages of `sivae.params`) and derives what the
study reads: the (in-distribution, OOD) `groups`, the near-OOD `pairs`, the model `seeds`, the device, and the
training length of each model trained here (`train_length`). An OOD image folder (`ood`, `near_pairs`) must
exist. `released` / `released_config` are parsed where the weights are loaded (sivae.images.study.
load_released_runs), since that reads files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import StageConfig, check_path
from ..errors import ConfigError, DataError, check_choice, check_nonnegative
from ..images.config import DatasetBudget, parse_widths, training_sizes
from ..params import parse_bool, parse_int, parse_list, parse_number, seeds_from
from ..runtime import check_device
from ..train import METHODS
from .metrics import CONVERSIONS
from .near import NearPair, parse_near_pairs
from .scores import SCORES
from .study import parse_pairs

__all__ = ["OodConfig", "TrainLength", "MAX_EVAL", "MAX_IMPORTANCE", "MAX_CHUNK", "MAX_BINS", "MAX_NEAR_EVAL"]

MAX_EVAL = 100_000_000         # images per evaluation set (0: all)
MAX_IMPORTANCE = 1_000_000     # importance samples per image
MAX_CHUNK = 100_000_000        # latents per decoder call
MAX_BINS = 100_000             # histogram bins
MAX_NEAR_EVAL = 100_000_000    # images per near/far OOD set, training images of heldout / background models
MAX_STEPS = 1_000_000          # batch sizes and step counts of the beyond-the-paper scores


TrainLength = DatasetBudget   # epochs and batch size of a model the stage trains itself ("paper" resolved)


def _widths(name: str, value):
    """'paper' or residual widths (sivae.images.config.parse_widths) as a tuple."""
    return "paper" if value == "paper" else parse_widths(f"{name} ('paper' or widths like '16,32')", value)


@dataclass
class OodConfig(StageConfig):
    """Every parameter of notebook 06 (docs/ood.md; params.yaml's `ood` section comments each)."""
    # ---- Table 7 and Figure 8
    seed: int = 0                    # base seed: models seed .. seed+n_seeds-1; also seeds subsets and samples
    n_seeds: int = 2                 # models per (dataset, method)
    device: str = "auto"             # "auto", "cpu", "cuda" or "cuda:<index>" (checked: `run_device`)
    in_dist: tuple = "mnist,fashionmnist"   # datasets the models were trained on
    ood: tuple = "fashionmnist,mnist"       # one entry per in_dist entry; "+" joins sets; folder:<path>
    methods: tuple = "vae,soft_intro_vae"
    n_importance: int = 32           # M, importance samples per image
    sigma2: float = 0.5              # decoder variance of p(x|z)
    chunk_size: int = 256            # most latents per decoder call
    n_eval: int = 1000               # images per set (0: all)
    convert: str = "none"            # sivae.ood.metrics.CONVERSIONS
    bins: int = 60                   # histogram bins of Figure 8
    data_root: str = "data"
    paper_data_root: str = "data_paper"
    ckpt_dir: str = "outputs/images/checkpoints"
    train_missing: bool = True       # train the models the image stage lacks
    train_epochs: float | str = 1.0  # those models' (and the heldout models') epochs, or "paper"
    train_batch_size: int | str = 64
    train_channels: tuple | str = "8,16"
    train_n_train: int = 0
    own_ckpt_dir: str = "outputs/scratch/ood/checkpoints"
    # ---- beyond the paper (sivae.ood.near, sivae.ood.scores)
    near_pairs: tuple = "heldout:fashionmnist:9,blur:mnist:1.0,shift:mnist:3,contrast:mnist:0.3,noise,constant"
    scores: tuple = "loglik,complexity,ratio,regret,typicality"
    near_n_eval: int = 500
    heldout_n_train: int = 10000
    heldout_lr: float = 0.001
    bg_mu: float = 0.2
    bg_channels: tuple | str = "4,8"
    bg_epochs: float = 1.0
    bg_n_train: int = 10000
    bg_batch_size: int = 64
    bg_lr: float = 0.001
    regret_steps: int = 10
    regret_lr: float = 0.1
    regret_n_eval: int = 8
    typicality_batch: int = 1
    beyond_table_path: str = "outputs/scratch/ood/beyond.md"
    released: str = ""               # kind:path of the authors' weights (parsed by load_released_runs)
    released_config: str = ""        # JSON architecture overrides per kind (idem)
    # ---- outputs
    fig_dir: str = "outputs/scratch/ood/figures"
    metrics_path: str = "outputs/scratch/ood/metrics.json"
    table_path: str = "outputs/scratch/ood/table7.md"
    scores_path: str = "outputs/scratch/ood/scores.npz"
    run_info_path: str = "outputs/scratch/ood/run_info.json"
    # ---- derived in __post_init__ (not parameters)
    seeds: tuple = field(init=False)         # the models' seeds: seed .. seed + n_seeds - 1
    run_device: torch.device = field(init=False, repr=False)   # device resolved ("auto" -> cuda or cpu)
    groups: tuple = field(init=False)        # ((in-distribution dataset, (OOD sets, ...)), ...): parse_pairs
    pairs: tuple[NearPair, ...] = field(init=False)   # the parsed near_pairs entries
    train_lengths: dict = field(init=False, repr=False)   # {dataset: TrainLength} of every model trained here

    def __post_init__(self):
        self.seeds = tuple(seeds_from(self.seed, self.n_seeds))
        self.seed, self.n_seeds = self.seeds[0], len(self.seeds)
        self.run_device = check_device(self.device)
        self.device = "auto" if self.device in (None, "") else str(self.device)
        groups = parse_pairs(self.in_dist, self.ood)
        self.groups = tuple((i, tuple(oods)) for i, oods in groups)
        for o in (o for _, oods in groups for o in oods if o.startswith("folder:")):
            if not Path(o[len("folder:"):]).is_dir():
                raise DataError(f"OOD image folder {o[len('folder:'):]} does not exist")
        self.in_dist = tuple(i for i, _ in groups)
        self.ood = tuple("+".join(oods) for _, oods in groups)
        self.methods = tuple(parse_list("methods", self.methods, METHODS))
        self.n_importance = parse_int("n_importance", self.n_importance, 1, MAX_IMPORTANCE)
        if check_nonnegative("sigma2", self.sigma2) == 0:
            raise ConfigError("sigma2 (the decoder variance) must be positive, got 0")
        self.sigma2 = float(self.sigma2)
        self.chunk_size = parse_int("chunk_size", self.chunk_size, 1, MAX_CHUNK)
        self.n_eval = parse_int("n_eval", self.n_eval, 0, MAX_EVAL)
        self.convert = check_choice("convert", self.convert, CONVERSIONS)
        self.bins = parse_int("bins", self.bins, 1, MAX_BINS)
        for name in ("data_root", "paper_data_root", "ckpt_dir", "own_ckpt_dir", "beyond_table_path", "fig_dir",
                     "metrics_path", "table_path", "scores_path", "run_info_path"):
            setattr(self, name, check_path(name, getattr(self, name)))
        self.train_missing = parse_bool("train_missing", self.train_missing)
        self.pairs = tuple(parse_near_pairs(self.near_pairs, self.in_dist))
        self.near_pairs = tuple(p.spec for p in self.pairs)
        self._check_own_training()
        scores = parse_list("scores", self.scores, SCORES)
        self.scores = tuple(scores if "loglik" in scores else ["loglik", *scores])
        self.near_n_eval = parse_int("near_n_eval", self.near_n_eval, 0, MAX_NEAR_EVAL)
        self.heldout_n_train = parse_int("heldout_n_train", self.heldout_n_train, 0, MAX_NEAR_EVAL)
        self.heldout_lr = parse_number("heldout_lr", self.heldout_lr, positive=True)
        self.bg_mu = parse_number("bg_mu", self.bg_mu, at_most=1.0)
        self.bg_channels = _widths("bg_channels", self.bg_channels)
        self.bg_epochs = parse_number("bg_epochs", self.bg_epochs, positive=True, at_most=1e6)
        self.bg_n_train = parse_int("bg_n_train", self.bg_n_train, 0, MAX_NEAR_EVAL)
        self.bg_batch_size = parse_int("bg_batch_size", self.bg_batch_size, 1, MAX_STEPS)
        self.bg_lr = parse_number("bg_lr", self.bg_lr, positive=True)
        self.regret_steps = parse_int("regret_steps", self.regret_steps, 0, MAX_STEPS)
        self.regret_lr = parse_number("regret_lr", self.regret_lr, positive=True)
        self.regret_n_eval = parse_int("regret_n_eval", self.regret_n_eval, 1, MAX_STEPS)
        self.typicality_batch = parse_int("typicality_batch", self.typicality_batch, 1, MAX_STEPS)
        for name in ("released", "released_config"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a string (empty: none), got {getattr(self, name)!r}")

    def _check_own_training(self) -> None:
        """train_*: the length of every model the stage may train (the in_dist ones the image stage lacks when
        train_missing, the heldout pairs' ones), checked by sivae.images.config.training_sizes."""
        datasets = list(self.in_dist) if self.train_missing else []
        datasets += [p.dataset for p in self.pairs if p.kind == "heldout" and p.dataset not in datasets]
        sizes = training_sizes(datasets, epochs=self.train_epochs, batch_size=self.train_batch_size,
                               n_train=self.train_n_train, channels=self.train_channels)
        self.train_n_train = sizes.n_train
        self.train_channels = _widths("channels", self.train_channels)
        self.train_lengths = dict(sizes.per_dataset)

    def train_length(self, dataset: str) -> TrainLength:
        """Epochs and batch size of a model trained here on `dataset` (checked in the constructor)."""
        if dataset not in self.train_lengths:
            raise ConfigError(f"no model is trained on {dataset!r} with these parameters (train_missing "
                              f"{self.train_missing}, heldout pairs of {sorted(self.train_lengths) or 'none'})")
        return self.train_lengths[dataset]

    # ------------------------------------------------------------------ what the tables print under them
    def table7_meta(self) -> dict:
        """The settings printed under Table 7."""
        return dict(M=self.n_importance, sigma2=self.sigma2, images_per_set=self.n_eval or "all", seeds=self.n_seeds)

    def beyond_meta(self) -> dict:
        """The settings printed under the beyond-the-paper table."""
        widths = self.bg_channels if isinstance(self.bg_channels, str) else ",".join(map(str, self.bg_channels))
        return dict(M=self.n_importance, images_per_set=self.n_eval or "all",
                    near_images_per_set=self.near_n_eval or "all", seeds=self.n_seeds, bg_mu=self.bg_mu,
                    bg_channels=widths, regret_steps=self.regret_steps, typicality_batch=self.typicality_batch)
