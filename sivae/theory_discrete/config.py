"""The theory stage's parameters as one typed object, checked once (notebooks/01_theory_discrete.py).

    cfg = TheoryConfig.from_params(globals())     # right after the notebook's parameters cell

Every field is a parameter of the notebook (same name, same default as its parameters cell and
params.yaml's `theory_discrete` section); `__post_init__` parses each one with `sivae.params`
(one ConfigError naming the first bad one) before any figure or file. Nothing below re-parses:
the notebook reads `cfg.<field>`, the games take `cfg.game` (a GameConfig).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import StageConfig, check_path
from ..errors import ConfigError, check_choice
from ..params import parse_bool, parse_int, parse_list, parse_number, parse_numbers, parse_seed
from .dstar import PDATA_NAMES
from .game import GameConfig

__all__ = ["TheoryConfig", "MAX_STATES", "MAX_GAMMA_GRID", "MAX_GAME_STEPS", "MAX_ABLATION_SEEDS"]

MAX_STATES = 1000          # K and M: the game is exact (sums over K * M cells per game)
MAX_GAMMA_GRID = 10_000    # points of the d* sweep over gamma
MAX_GAME_STEPS = 10_000_000
MAX_ABLATION_SEEDS = 10_000


@dataclass
class TheoryConfig(StageConfig):
    """Every parameter of the theory notebook, parsed.

    K: an integer in [2, MAX_STATES]; M: in [1, MAX_STATES]; pdatas: 'all' or names of PDATA_NAMES (a tuple
    once parsed); gammas: finite numbers >= 0; alphas: finite numbers > 0 (tuples of floats); gamma_max: a
    finite number > 0; n_gamma_grid: an integer in [2, MAX_GAMMA_GRID]; n_steps: in [1, MAX_GAME_STEPS]; lr:
    a finite number > 0; log_every: an integer in [1, MAX_GAME_STEPS]; n_ablation_seeds: in
    [1, MAX_ABLATION_SEEDS]; ablation_pdata: one of PDATA_NAMES; ablation_gamma, introvae_margin: finite,
    >= 0; ablation_alpha: finite, > 0; tol_*: finite, >= 0; seed: an integer in [0, SEED_MAX]; device: a
    string (everything runs on the CPU); interactive: a boolean; the three output paths: non-empty paths.
    """
    seed: int = 0
    device: str = "auto"
    K: int = 6
    M: int = 4
    pdatas: tuple = "smooth,peaked,sparse"
    gammas: tuple = "0.0,0.1,0.3,0.5,1.0"
    alphas: tuple = "1.0,2.0"
    gamma_max: float = 2.0
    n_gamma_grid: int = 25
    n_steps: int = 4000
    lr: float = 0.05
    log_every: int = 25
    n_ablation_seeds: int = 8
    ablation_pdata: str = "smooth"
    ablation_gamma: float = 0.5
    ablation_alpha: float = 2.0
    introvae_margin: float = 1.0
    tol_pd: float = 1e-3
    tol_kl: float = 1e-4
    tol_lemma4: float = 1e-2
    interactive: bool = True
    fig_dir: str = "outputs/scratch/theory_discrete/figures"
    metrics_path: str = "outputs/scratch/theory_discrete/metrics.json"
    run_info_path: str = "outputs/scratch/theory_discrete/run_info.json"

    def __post_init__(self):
        self.K = parse_int("K", self.K, 2, MAX_STATES)
        self.M = parse_int("M", self.M, 1, MAX_STATES)
        self.pdatas = tuple(parse_list("pdatas", self.pdatas, PDATA_NAMES))
        self.gammas = parse_numbers("gammas", self.gammas, nonnegative=True)
        self.alphas = parse_numbers("alphas", self.alphas, positive=True)
        self.gamma_max = parse_number("gamma_max", self.gamma_max, positive=True)
        self.n_gamma_grid = parse_int("n_gamma_grid", self.n_gamma_grid, 2, MAX_GAMMA_GRID)
        self.n_steps = parse_int("n_steps", self.n_steps, 1, MAX_GAME_STEPS)
        self.lr = parse_number("lr", self.lr, positive=True)
        self.n_ablation_seeds = parse_int("n_ablation_seeds", self.n_ablation_seeds, 1, MAX_ABLATION_SEEDS)
        self.ablation_pdata = check_choice("ablation_pdata", self.ablation_pdata, PDATA_NAMES)
        self.ablation_gamma = parse_number("ablation_gamma", self.ablation_gamma)
        self.ablation_alpha = parse_number("ablation_alpha", self.ablation_alpha, positive=True)
        self.introvae_margin = parse_number("introvae_margin", self.introvae_margin)
        for name in ("tol_pd", "tol_kl", "tol_lemma4"):
            setattr(self, name, parse_number(name, getattr(self, name)))
        self.seed = parse_seed("seed", self.seed)
        self.interactive = parse_bool("interactive", self.interactive)   # papermill -p interactive false: a string
        self.log_every = parse_int("log_every", self.log_every, 1, MAX_GAME_STEPS)
        if not isinstance(self.device, str):
            raise ConfigError(f"device must be a string ('auto', 'cpu' or 'cuda'; this section runs on the CPU), "
                              f"got {self.device!r}")
        for name in ("fig_dir", "metrics_path", "run_info_path"):
            setattr(self, name, check_path(name, getattr(self, name)))

    @property
    def game(self) -> GameConfig:
        """The settings shared by every game of the notebook's batch (Adam steps, lr, history stride, margin)."""
        return GameConfig(n_steps=self.n_steps, lr=self.lr, log_every=self.log_every, margin=self.introvae_margin)
