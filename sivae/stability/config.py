"""The stability stage's parameters as one typed object (`StabilityConfig`).

Every run of the section is a 2D run of the toy2d study (one schedule, `base`); the config derives
each grid point's `sivae.toy2d.config.Toy2dConfig` from it once, so a bad margin, beta_neg or
collapse weight fails at construction, before the first run trains:

params.yaml `stability.beta_negs` -> the notebook's parameters cell -> `StabilityConfig.from_params(globals())`
-> `grids["beta_neg"][value]` (a Toy2dConfig with that beta_neg) -> its runs' TrainConfig -> the losses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import StageConfig, check_path
from ..errors import ConfigError, check_choice
from ..paper import TABLE5
from ..params import parse_number, parse_numbers
from ..toy2d.config import WEIGHTS, Toy2dConfig
from ..toy2d.data import TOY_DATASETS

__all__ = ["StabilityConfig", "GRID_NAMES", "grid_configs", "value_key", "table5_value", "check_subset"]

GRID_NAMES = WEIGHTS   # the hyper-parameters a grid can vary: m, beta_neg, beta_rec, beta_kl


def check_subset(name: str, values, allowed):
    """Raise ConfigError unless every value is one of `allowed` (e.g. curve_margins within margins)."""
    missing = [v for v in values if v not in allowed]
    if missing:
        raise ConfigError(f"{name} {missing} are not among {allowed}")


def value_key(name: str, value: float) -> str:
    """A metrics/folder key without dots (DVC flattens nested metrics on '.'): m=0.1 -> 'm_0p1'."""
    return f"{name}_{value:g}".replace(".", "p").replace("+", "")


def table5_value(dataset: str, model: str, name: str) -> float | None:
    """One Table 5 entry, e.g. table5_value('8gaussians', 'introvae', 'm') -> 1.0."""
    check_choice("dataset", dataset, TOY_DATASETS)
    return dict(zip(WEIGHTS, TABLE5[(dataset, model)]))[name]


def grid_configs(base: Toy2dConfig, model: str, name: str, values) -> dict[float, Toy2dConfig]:
    """One Toy2dConfig per value of the hyper-parameter `name` for `model` (the other loss weights: base's),
    checkpoints under <base.ckpt_dir>/<model>_<value_key>/; every value checked before any is trained."""
    check_choice("name", name, GRID_NAMES)
    if not isinstance(values, (str, int, float)):
        try:
            values = list(values)
        except TypeError:
            raise ConfigError(f"{name} values must be a list of numbers, got {values!r}") from None
    values = parse_numbers(f"{name} values", values, nonnegative=True)
    return {v: base.replace(methods=model, **{name: v},
                            ckpt_dir=str(Path(base.ckpt_dir) / f"{model}_{value_key(name, v)}")) for v in values}


@dataclass
class StabilityConfig(StageConfig):
    """Every parameter of notebooks/03_stability.py, parsed and checked once (defaults: the notebook's).

    Derived at construction: `seeds`; `base` (the shared schedule as a Toy2dConfig); `grids` {"m": {m:
    Toy2dConfig of IntroVAE}, "beta_neg": {beta_neg: Toy2dConfig of Soft-IntroVAE}} (the beta_neg grid always
    holds Table 5's value); `collapse` {"vae", "soft_intro_vae": Toy2dConfig} (Figure 21).
    """
    seed: int = 0
    device: str = "auto"
    dataset: str = "8gaussians"
    n_seeds: int = 4
    n_iter: int = 1200
    batch_size: int = 128
    lr: float = 2e-4
    lr_milestones: tuple = "0.333333,0.5"
    num_vae: int = 0
    gamma_r: float = 1e-8
    margins: tuple = "0.1,0.2,0.5,1,2,5,10,20,50"   # IntroVAE margins m
    curve_margins: tuple = "0.2,1,10"                # margins whose KL(fake) curves are drawn (within margins)
    beta_negs: tuple = "0.3,0.9,3"                   # Soft-IntroVAE beta_neg grid (Table 5's added)
    collapse_beta_rec: float = 0.1
    collapse_beta_kl: float = 1.0
    collapse_beta_neg: float = 0.9
    n_samples: int = 5000
    grid_size: int = 128
    engine: str = "stack"
    hidden: int = 256
    ckpt_dir: str = "outputs/scratch/stability/checkpoints"
    progress: bool = True
    seeds: tuple = field(init=False, repr=False)
    base: Toy2dConfig = field(init=False, repr=False)
    grids: dict = field(init=False, repr=False)
    collapse: dict = field(init=False, repr=False)

    def __post_init__(self):
        check_choice("dataset", self.dataset, TOY_DATASETS)
        self.margins, self.curve_margins, self.beta_negs = (
            parse_numbers(k, getattr(self, k), positive=True) for k in ("margins", "curve_margins", "beta_negs"))
        check_subset("curve_margins", list(self.curve_margins), list(self.margins))
        for name in ("collapse_beta_rec", "collapse_beta_kl", "collapse_beta_neg"):
            setattr(self, name, parse_number(name, getattr(self, name)))
        self.ckpt_dir = check_path("ckpt_dir", self.ckpt_dir)
        self.base = Toy2dConfig(seed=self.seed, n_seeds=self.n_seeds, device=self.device, datasets=self.dataset,
                                methods="vae", n_iter=self.n_iter, n_iter_factor="", batch_size=self.batch_size,
                                lr=self.lr,
                                lr_milestones=self.lr_milestones, num_vae=self.num_vae, gamma_r=self.gamma_r,
                                n_samples=self.n_samples, grid_size=self.grid_size, engine=self.engine,
                                hidden=self.hidden, ckpt_dir=self.ckpt_dir, progress=self.progress, budget=False)
        b = self.base
        self.seeds, self.n_seeds, self.lr_milestones, self.hidden = b.seeds, b.n_seeds, b.lr_milestones, b.hidden
        soft = table5_value(self.dataset, "soft_intro_vae", "beta_neg")
        self.grids = {"m": grid_configs(b, "introvae", "m", self.margins),
                      "beta_neg": grid_configs(b, "soft_intro_vae", "beta_neg", sorted(set(self.beta_negs) | {soft}))}
        root = Path(self.ckpt_dir)
        self.collapse = {
            "vae": b.replace(methods="vae", beta_rec=self.collapse_beta_rec, beta_kl=self.collapse_beta_kl,
                             ckpt_dir=str(root / "collapse_vae")),
            "soft_intro_vae": b.replace(methods="soft_intro_vae", beta_rec=self.collapse_beta_rec,
                                        beta_kl=self.collapse_beta_kl, beta_neg=self.collapse_beta_neg,
                                        ckpt_dir=str(root / "collapse_soft_intro_vae"))}

    @property
    def stack_dir(self) -> Path:
        """Where the stacks' checkpoints go (engine 'stack'): <ckpt_dir>/stacks/<method>-<runs>/."""
        return Path(self.ckpt_dir) / "stacks"

    def table5(self, model: str, name: str) -> float | None:
        """Table 5's value of `name` for `model` on this config's dataset."""
        return table5_value(self.dataset, model, name)
