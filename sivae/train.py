"""The single-run trainer of VAE, IntroVAE and Soft-IntroVAE on any encoder/decoder pair, and its configuration.

`Trainer` runs the algorithm of sivae.engine.Engine (the paper's Algorithm 2: encoder update,
then decoder update; optional beta-VAE warm-up; Adam per network with MultiStepLR, the public 2D
code's milestones at 1/3 and 1/2 of the run, x0.1) on one (encoder, decoder) pair; sivae.stack
runs the same lines on R stacked MLP pairs. The run's lifecycle (lock, resume, signals) is
sivae.lifecycle. Adam is torch's fused (single-kernel) implementation where the device has one
(CPU, CUDA): the same update rule, without a chain of small tensor operations per parameter.

Networks with BatchNorm layers (the image models) are never fed concatenated batches: batch
statistics would mix real, reconstructed and fake images. For them every kind of input goes
through its own call, in the public code's order; BatchNorm-free networks (the 2D MLPs) get the
larger fused batches. D(z) and D(z_p) are two calls (not one fused batch): the encoder update
back-propagates through D(z) only, and a fused call would make it carry a zero gradient through
the D(z_p) half.

Class-conditional models: when batch_fn returns (x, y), y is passed to every encoder and
decoder call as `enc(x, y)` / `dec(z, y)` (fakes use the batch's labels).

Mixed precision (`autocast`): "bf16" or "fp16" runs the networks under autocast while every
loss term (errors, KLs, and so the exponent of the expELBO) is computed from float32 copies
of the network outputs; fp16 also uses a gradient scaler. "auto" = bf16 on a CUDA device that
supports it, none on the CPU.

Data parallel: when torch.distributed is initialised (e.g. by `torchrun`), the initial weights
are broadcast from rank 0, each rank draws its own noise, every gradient is averaged over
ranks before each optimiser step and buffers (BatchNorm statistics) are rank 0's after each step
(what DistributedDataParallel does, done by hand because each iteration runs several forward
passes per network and takes per-network gradients).

Runs are seeded and resumable: a checkpoint holds weights, optimiser and scheduler states,
both generators (per rank) and the loss history; resuming gives bit-identical results on the CPU.
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

from . import losses as L
from .checkpoints import identity_changes, load_checkpoint
from .engine import Engine
from .errors import CheckpointError, ConfigError, DivergenceError, check_choice, check_nonnegative
from .lifecycle import ConfigurationChanged
from .paper import METHODS
from .params import SEED_MAX, parse_bool, parse_numbers
from .progress import run_label
from .runinfo import live_curve
from .runtime import resolve_device

__all__ = ["TrainConfig", "Trainer", "METHODS", "MAX_BATCH_SIZE", "MAX_STEPS"]

AUTOCAST = ("none", "bf16", "fp16", "auto")
MAX_BATCH_SIZE = 1_000_000   # larger batches only fail deep in torch (allocation)
MAX_STEPS = 10**12           # bound of n_iter, num_vae, checkpoint_every and log_every


def _check_int_field(name: str, value, minimum: int, maximum: int) -> int:
    """int(value) for an integer-valued TrainConfig field, or ConfigError naming it and the allowed range."""
    kind = "a positive integer" if minimum == 1 else "a non-negative integer"
    try:
        whole = not isinstance(value, (bool, str)) and int(value) == value
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or value < minimum:
        raise ConfigError(f"{name} must be {kind}, got {value!r}")
    if value > maximum:
        raise ConfigError(f"{name} must be {kind} <= {maximum}, got {value!r}")
    return int(value)


def check_milestones(value) -> tuple:
    """lr_milestones as a tuple of floats, each finite and >= 0 (fractions of n_iter), or ConfigError."""
    if isinstance(value, str):
        return parse_numbers("lr_milestones", value, nonnegative=True, allow_empty=True)
    try:
        items = tuple(value)
    except TypeError:
        raise ConfigError(f"lr_milestones must be a sequence of fractions of n_iter, got {value!r}") from None
    return tuple(check_nonnegative("lr_milestones", f) for f in items)


@dataclass
class TrainConfig:
    method: str = "soft_intro_vae"   # one of METHODS
    n_iter: int = 30_000             # training iterations (paper, 2D: 30,000)
    batch_size: int = 512            # paper, 2D: 512
    lr: float = 2e-4                 # Adam learning rate of encoder and decoder
    lr_milestones: tuple = (1 / 3, 1 / 2)  # MultiStepLR milestones as fractions of n_iter
    lr_gamma: float = 0.1            # MultiStepLR factor
    beta_rec: float = 1.0            # weight of the reconstruction error
    beta_kl: float = 1.0             # weight of the KL of real data
    beta_neg: float = 1.0            # KL weight inside the expELBO (Soft-IntroVAE) / hinge weight (IntroVAE)
    gamma_r: float = 1e-8            # weight of the fakes' reconstruction in the decoder loss
    alpha: float = 2.0               # exponent of the expELBO (Eq. 4)
    m: float = 1.0                   # IntroVAE hard margin
    scale: float | None = None       # s in Eq. 7; None -> 1 / d_x
    num_vae: int = 0                 # warm-up iterations of plain VAE training
    seed: int = 0                    # seeds the data and noise generators
    checkpoint_every: int = 1000     # iterations between checkpoints (also saved at the end)
    log_every: int = 50              # iterations between history records
    max_loss: float = 1e10           # |loss| above this counts as divergence
    autocast: str = "none"           # "none", "bf16", "fp16" or "auto" (bf16 on CUDA, none on CPU)
    progress: bool = True            # show a progress bar (sivae.progress)
    extra: dict = field(default_factory=dict)  # free-form metadata stored with checkpoints

    def __post_init__(self):
        check_choice("method", self.method, METHODS)
        check_choice("autocast", self.autocast, AUTOCAST)
        for name in ("beta_rec", "beta_kl", "beta_neg", "gamma_r", "m", "lr", "lr_gamma"):
            if isinstance(getattr(self, name), bool):   # float(True) would pass as 1.0
                raise ConfigError(f"{name} must be a number, got {getattr(self, name)!r}")
            setattr(self, name, check_nonnegative(name, getattr(self, name)))
        if check_nonnegative("alpha", self.alpha) == 0:
            raise ConfigError("alpha must be > 0 (the expELBO divides by it)")
        if self.scale is not None and check_nonnegative("scale", self.scale) == 0:
            raise ConfigError("scale must be > 0")
        for name in ("n_iter", "batch_size", "checkpoint_every", "log_every"):
            setattr(self, name, _check_int_field(name, getattr(self, name), 1,
                                                 MAX_BATCH_SIZE if name == "batch_size" else MAX_STEPS))
        _check_int_field("num_vae", self.num_vae, 0, MAX_STEPS)
        _check_int_field("seed", self.seed, 0, SEED_MAX)
        if isinstance(self.max_loss, bool) or not isinstance(self.max_loss, numbers.Real) or not self.max_loss > 0:
            raise ConfigError(f"max_loss must be a number > 0 (inf: never diverges), got {self.max_loss!r}")
        if not isinstance(self.extra, dict):
            raise ConfigError(f"extra must be a dict, got {self.extra!r}")
        self.progress = parse_bool("progress", self.progress)
        self.lr_milestones = check_milestones(self.lr_milestones)

    def fingerprint(self) -> dict:
        """The fields that must match for a checkpoint to be resumed (all but progress/logging)."""
        d = asdict(self)
        for k in ("progress", "checkpoint_every", "log_every", "extra", "max_loss"):
            d.pop(k)
        d["lr_milestones"] = list(d["lr_milestones"])
        return d



BatchFn = Callable[[int, torch.Generator], "Tensor | tuple[Tensor, Tensor]"]


def has_batch_statistics(*nets: nn.Module) -> bool:
    """True if any network normalises with batch statistics (BatchNorm in training mode)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for net in nets for m in net.modules())


def _world() -> tuple[int, int]:
    """(rank, world size) of the initialised process group, or (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Trainer(Engine):
    """Trains (encoder, decoder) with one of METHODS (the step, loop and checkpoints: sivae.engine.Engine).

    Args:
        encoder: module x -> (mu, logvar)  (or (x, y) -> (mu, logvar) for conditional data).
        decoder: module z -> D(z)  (or (z, y) -> D(z)); its latent size is `decoder.z_dim`
            unless `z_dim` is given.
        batch_fn: (step, generator) -> batch tensor x, or a pair (x, y) of images and labels;
            it must draw its randomness from `generator` (or be a function of step alone).
        config: TrainConfig.
        ckpt_dir: folder for `last.pt` (None: no checkpoints).
        keep_states_at: steps at which a copy of the encoder's and decoder's weights is kept (in `kept_states`,
            and in the checkpoints), so that metrics can be taken along the run afterwards (budget curves).
        device: torch device (resolve_device picks one).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, batch_fn: BatchFn, config: TrainConfig,
                 ckpt_dir: str | os.PathLike | None = None, device: str | torch.device = "auto",
                 z_dim: int | None = None, keep_states_at=()):
        self.cfg = config
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        self.enc, self.dec = encoder.to(self.device), decoder.to(self.device)
        self.z_dim = z_dim if z_dim is not None else decoder.z_dim
        self.batch_fn = batch_fn
        self.rank, self.world = _world()
        self.ckpt_path = Path(ckpt_dir) / "last.pt" if ckpt_dir is not None else None
        self.fuse = not has_batch_statistics(self.enc, self.dec)
        amp_dtype = self._amp_dtype(config.autocast)
        if self.world > 1:  # every rank starts from rank 0's weights
            for t in [*self.enc.state_dict().values(), *self.dec.state_dict().values()]:
                dist.broadcast(t, src=0)
        self._setup_training(config.lr, config.n_iter, config.lr_milestones, config.lr_gamma, amp_dtype)
        self.data_gen = torch.Generator().manual_seed(config.seed)
        self.noise_gen = torch.Generator(device=self.device).manual_seed(config.seed + 1 + 7919 * self.rank)
        self.history: list[dict] = []
        # copies of the decoder's weights at these steps (budget curves: sample metrics along one run)
        self.keep_states_at = frozenset(int(s) for s in keep_states_at)
        self.kept_states: dict[int, dict] = {}
        self.y: Tensor | None = None  # labels of the current batch (conditional models)

    @property
    def progress(self) -> bool:
        return self.cfg.progress

    # ---------------------------------------------------------------- networks
    def _amp_dtype(self, mode: str):
        if mode == "auto":
            ok = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
            return torch.bfloat16 if ok else None
        if mode == "fp16" and self.device.type != "cuda":
            raise ConfigError("autocast='fp16' needs a CUDA device; use 'bf16' or 'none' on the CPU")
        return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[mode]

    def _labels(self, n: int):
        if self.y is None:
            return ()
        k = n // self.y.shape[0]  # fused calls carry k batches: repeat the labels k times
        return (self.y if k == 1 else self.y.repeat(k, *([1] * (self.y.dim() - 1))),)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, logvar) in float32 (labels of the current batch appended for conditional models)."""
        mu, logvar = self.enc(x, *self._labels(x.shape[0]))
        return L.full_precision(mu), L.full_precision(logvar)

    def decode(self, z: Tensor) -> Tensor:
        """D(z) in float32."""
        return L.full_precision(self.dec(z, *self._labels(z.shape[0])))

    def _noise(self, shape, dtype=None) -> Tensor:
        """Standard normal noise, by default in the dtype of the networks' weights (float32 under autocast too)."""
        dtype = dtype or next(self.enc.parameters()).dtype
        return torch.randn(shape, generator=self.noise_gen, device=self.device, dtype=dtype)

    def _scale(self, x: Tensor) -> float:
        return self.cfg.scale if self.cfg.scale is not None else 1.0 / x[0].numel()

    def _weights(self) -> dict:
        c = self.cfg
        return {"beta_rec": c.beta_rec, "beta_kl": c.beta_kl, "beta_neg": c.beta_neg, "m": c.m}

    def _summary(self, terms: dict) -> dict:
        return {k: v.item() for k, v in terms.items()}

    def _check(self, name: str, value: Tensor):
        v = value.item()
        if not math.isfinite(v) or abs(v) > self.cfg.max_loss:
            raise DivergenceError(f"training diverged at step {self.step}: {name} = {v!r} "
                                  f"(method {self.cfg.method}). Last good checkpoint: {self._last_good()}. "
                                  f"Try a smaller learning rate or beta_neg, or a larger warm-up (num_vae).")

    # -------------------------------------------------------------------- loop
    def _next_batch(self) -> Tensor:
        data_state = self.data_gen.get_state()
        try:
            batch = self.batch_fn(self.step, self.data_gen)
            x, self.y = batch if isinstance(batch, (tuple, list)) else (batch, None)
            x = x.to(self.device, non_blocking=True)
            self.y = None if self.y is None else self.y.to(self.device, non_blocking=True)
        except KeyboardInterrupt:  # killed before any update: the state is still that of the last step
            self.data_gen.set_state(data_state)
            raise
        return x

    def _progress_desc(self) -> str:
        return run_label(self.ckpt_path, f"{self.cfg.method} seed {self.cfg.seed}")

    def _open_live(self):
        c = self.cfg
        return live_curve(self.ckpt_path.parent if self.ckpt_path is not None else f"{c.method}_seed{c.seed}",
                          self.history)

    def _keep_states(self):
        if self.step in self.keep_states_at:
            self.kept_states[self.step] = {name: {k: v.detach().clone() for k, v in net.state_dict().items()}
                                           for name, net in (("encoder", self.enc), ("decoder", self.dec))}

    def _record(self, out: dict, live) -> dict:
        self.history.append({"step": self.step, **out})
        if live is not None:
            live.log(self.history[-1])
        return {k: float(v) for k, v in out.items() if k in ("rec", "kl_real", "kl_fake")}

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {"format": "sivae-checkpoint-v1", "step": self.step, "config": self.cfg.fingerprint(),
                **self._training_state(),
                "data_gen": self.data_gen.get_state(), "noise_gen": self.noise_gen.get_state(),
                "noise_gens": self._gather_noise_states(), "world_size": self.world,
                "scaler": self.scaler.state_dict(), "history": self.history, "extra": self.cfg.extra,
                "kept_states": self.kept_states}

    def _gather_noise_states(self) -> list:
        """Every rank's noise-generator state (a collective call when data-parallel)."""
        mine = self.noise_gen.get_state().cpu()
        if self.world == 1:
            return [mine]
        states = [None] * self.world
        dist.all_gather_object(states, mine)
        return states

    def load(self, path: str | os.PathLike):
        """Restore everything from a checkpoint written by `save`, with clear errors."""
        state = load_checkpoint(path, map_location=self.device)
        changed = identity_changes(state.get("extra"), self.cfg.extra)   # the model and data (image runs)
        if state["config"] != self.cfg.fingerprint() or changed:
            diff = {k: (state["config"].get(k), v) for k, v in self.cfg.fingerprint().items()
                    if state["config"].get(k) != v} | changed
            raise ConfigurationChanged(f"checkpoint {path} was written by another configuration "
                                       f"(checkpoint vs now: {diff}); delete it or use another ckpt_dir")
        self._load_training_state(state, path, "these networks")
        saved_world = state.get("world_size", 1)
        if saved_world != self.world:
            raise CheckpointError(f"checkpoint {path} was written by {saved_world} process(es), now {self.world}: "
                                  f"resume with the same number of processes, or use another ckpt_dir")
        self.data_gen.set_state(state["data_gen"])
        self.noise_gen.set_state(state.get("noise_gens", [state["noise_gen"]])[self.rank].to(
            self.noise_gen.get_state().device))
        if "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.history = state["step"], state["history"]
        self.kept_states = dict(state.get("kept_states") or {})
        self.last_good_step = self.step
