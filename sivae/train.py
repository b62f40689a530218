"""One training loop for VAE, IntroVAE and Soft-IntroVAE on any encoder/decoder pair.

Each iteration follows the paper's Algorithm 2: an encoder update (decoder frozen), then a
decoder update (encoder frozen) that sees the updated encoder. The first `num_vae`
iterations optionally train a plain beta-VAE (warm-up). Adam per network with MultiStepLR
(the public 2D code: milestones at 1/3 and 1/2 of the run, i.e. 10k and 15k of 30k, x0.1).

The introspective step computes x_f = D(z_p) and x_r = D(z) once, with the decoder's graph,
and reuses them for both updates: the decoder is unchanged by the encoder step, so the values
are identical to recomputing them, and the decoder's gradient of Rec(x, D(z)) does not depend
on z being detached. Gradients are taken with torch.autograd.grad for exactly one network at
a time, so no weight gradient of the frozen network is ever computed. D(z) and D(z_p) are two
calls (not one fused batch): the encoder update back-propagates through D(z) only, and a fused
call would make it carry a zero gradient through the D(z_p) half. Adam is torch's fused
(single-kernel) implementation where the device has one (CPU, CUDA): the same update rule,
without a chain of small tensor operations per parameter. Random numbers are drawn
in the public code's order (z_p, z, z_f, z_rr, then the decoder step's z_rr, z_f).

Networks with BatchNorm layers (the image models) are never fed concatenated batches: batch
statistics would mix real, reconstructed and fake images. For them every kind of input goes
through its own call, in the public code's order; BatchNorm-free networks (the 2D MLPs) get the
larger fused batches.

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
import signal
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

from . import losses as L
from .checkpoints import FolderLock, load_checkpoint, save_checkpoint
from .errors import CheckpointError, ConfigError, DivergenceError, check_choice, check_nonnegative
from .params import SEED_MAX, parse_bool, parse_numbers
from .progress import progress, run_label
from .runinfo import live_curve
from .runtime import resolve_device

__all__ = ["TrainConfig", "Trainer", "METHODS", "METHOD_TITLES", "resolve_device", "check_device",
           "epoch_batches", "MAX_BATCH_SIZE", "MAX_STEPS"]

METHODS = ("vae", "introvae", "soft_intro_vae")
# Display names of the methods (and of the class-conditional Soft-IntroVAE of the images section).
METHOD_TITLES = {"vae": "VAE", "introvae": "IntroVAE", "soft_intro_vae": "Soft-IntroVAE",
                 "soft_intro_vae_cond": "Soft-IntroVAE (cond.)"}
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


def _check_milestones(value) -> tuple:
    """lr_milestones as a tuple of floats, each finite and >= 0 (fractions of n_iter), or ConfigError."""
    if isinstance(value, str):
        return parse_numbers("lr_milestones", value, nonnegative=True, allow_empty=True)
    try:
        items = tuple(value)
    except TypeError:
        raise ConfigError(f"lr_milestones must be a sequence of fractions of n_iter, got {value!r}") from None
    return tuple(check_nonnegative("lr_milestones", f) for f in items)


def check_device(device) -> torch.device:
    """resolve_device for a device parameter of any type, limited to the devices sivae trains on.

    'auto', None, 'cpu', 'cuda' or 'cuda:<index>' (an existing GPU), 'mps' where available; anything
    else raises ConfigError naming `device`, before any work.
    """
    allowed = "use 'auto', 'cpu', 'cuda' or 'cuda:<index>'"
    if device is not None and not isinstance(device, (str, torch.device)):
        raise ConfigError(f"device must be a string; {allowed}, got {device!r}")
    dev = resolve_device(str(device) if isinstance(device, torch.device) else device)
    mps = dev.type == "mps" and torch.backends.mps.is_available()
    if dev.type not in ("cpu", "cuda") and not mps:
        raise ConfigError(f"unsupported device {device!r}; {allowed}")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: there are only {torch.cuda.device_count()} CUDA device(s) here")
    return dev


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
        self.lr_milestones = _check_milestones(self.lr_milestones)

    def fingerprint(self) -> dict:
        """The fields that must match for a checkpoint to be resumed (all but progress/logging)."""
        d = asdict(self)
        for k in ("progress", "checkpoint_every", "log_every", "extra", "max_loss"):
            d.pop(k)
        d["lr_milestones"] = list(d["lr_milestones"])
        return d



def epoch_batches(n: int, batch_size: int, seed: int, *, seed_stride: int = 1_000_003, rank: int = 0,
                  world: int = 1) -> tuple[Callable[[int], Tensor], int]:
    """Indices of the batch of each step: epoch e visits 0..n-1 in a permutation drawn from (seed, e).

    The batch of step t depends on t only (not on the generator the Trainer passes), so a resumed
    run draws exactly the batches the uninterrupted one would have drawn. The incomplete last
    batch of an epoch is dropped. With `world` processes each takes its own slice (rank).
    `seed_stride`: the permutation of epoch e is seeded with seed_stride * seed + e (the images
    section uses 1,000,003, the translation section 100,003; kept so that results stay as published).

    Returns:
        (indices(step) -> LongTensor of batch_size indices, steps per epoch).
    """
    per_epoch = n // (batch_size * world)
    if per_epoch < 1:
        raise ConfigError(f"{n} training images are fewer than one batch ({batch_size} x {world} processes): "
                          f"lower batch_size or give more data")
    cache: dict[int, Tensor] = {}

    def indices(step: int) -> Tensor:
        epoch, i = divmod(step, per_epoch)
        if epoch not in cache:
            cache.clear()
            cache[epoch] = torch.randperm(n, generator=torch.Generator().manual_seed(seed_stride * seed + epoch))
        start = (i * world + rank) * batch_size
        return cache[epoch][start:start + batch_size]

    return indices, per_epoch


BatchFn = Callable[[int, torch.Generator], "Tensor | tuple[Tensor, Tensor]"]


def has_batch_statistics(*nets: nn.Module) -> bool:
    """True if any network normalises with batch statistics (BatchNorm in training mode)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for net in nets for m in net.modules())


def _world() -> tuple[int, int]:
    """(rank, world size) of the initialised process group, or (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Trainer:
    """Trains (encoder, decoder) with one of METHODS.

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
        self.amp_dtype = self._amp_dtype(config.autocast)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        if self.world > 1:  # every rank starts from rank 0's weights
            for t in [*self.enc.state_dict().values(), *self.dec.state_dict().values()]:
                dist.broadcast(t, src=0)
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        self.opt_e = torch.optim.Adam(self.enc.parameters(), lr=config.lr, **fused)
        self.opt_d = torch.optim.Adam(self.dec.parameters(), lr=config.lr, **fused)
        milestones = [round(f * config.n_iter) for f in config.lr_milestones]
        self.sched_e = torch.optim.lr_scheduler.MultiStepLR(self.opt_e, milestones, config.lr_gamma)
        self.sched_d = torch.optim.lr_scheduler.MultiStepLR(self.opt_d, milestones, config.lr_gamma)
        self.data_gen = torch.Generator().manual_seed(config.seed)
        self.noise_gen = torch.Generator(device=self.device).manual_seed(config.seed + 1 + 7919 * self.rank)
        self.step = 0
        self.history: list[dict] = []
        self.last_good_step: int | None = None
        # copies of the decoder's weights at these steps (budget curves: sample metrics along one run)
        self.keep_states_at = frozenset(int(s) for s in keep_states_at)
        self.kept_states: dict[int, dict] = {}
        self.y: Tensor | None = None  # labels of the current batch (conditional models)
        self._clean = True  # False while an iteration is half done (a kill then must not save)

    # ---------------------------------------------------------------- networks
    def _amp_dtype(self, mode: str):
        if mode == "auto":
            ok = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
            return torch.bfloat16 if ok else None
        if mode == "fp16" and self.device.type != "cuda":
            raise ConfigError("autocast='fp16' needs a CUDA device; use 'bf16' or 'none' on the CPU")
        return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[mode]

    def _amp(self):
        """Autocast of the forward passes in the configured precision (losses stay float32)."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16,
                              enabled=self.amp_dtype is not None)

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

    def _decode_pair(self, za: Tensor, zb: Tensor) -> tuple[Tensor, Tensor]:
        """D(za), D(zb): one fused call for batch-statistics-free networks, else two calls."""
        if self.fuse:
            return self.decode(torch.cat([za, zb])).split(za.shape[0])
        return self.decode(za), self.decode(zb)

    def _encode_pair(self, xa: Tensor, xb: Tensor):
        if self.fuse:
            mu, logvar = self.encode(torch.cat([xa, xb]))
            return mu.split(xa.shape[0]), logvar.split(xa.shape[0])
        (mu_a, lv_a), (mu_b, lv_b) = self.encode(xa), self.encode(xb)
        return (mu_a, mu_b), (lv_a, lv_b)

    def _noise(self, shape) -> Tensor:
        """Standard normal noise in the dtype of the networks' weights (float32 under autocast too)."""
        dtype = next(self.enc.parameters()).dtype
        return torch.randn(shape, generator=self.noise_gen, device=self.device, dtype=dtype)

    def _scale(self, x: Tensor) -> float:
        return self.cfg.scale if self.cfg.scale is not None else 1.0 / x[0].numel()

    # ------------------------------------------------------------------ losses
    def vae_step(self, x: Tensor) -> dict:
        """One beta-VAE update of both networks on batch x."""
        c = self.cfg
        with self._amp():
            mu, logvar = self.encode(x)
            x_r = self.decode(L.reparameterize(mu, logvar, self.noise_gen))
            rec, kl = L.reconstruction_error(x, x_r), L.kl_divergence(mu, logvar)
            loss = L.vae_loss(rec, kl, c.beta_rec, c.beta_kl)
        self._check(loss=loss)
        self.opt_e.zero_grad(set_to_none=True)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        for opt, net in ((self.opt_e, self.enc), (self.opt_d, self.dec)):
            self._average_grads(net)
            self.scaler.step(opt)
        self.scaler.update()
        return {"loss": loss.item(), "rec": rec.mean().item(), "kl_real": kl.mean().item()}

    def introspective_step(self, x: Tensor) -> dict:
        """One Soft-IntroVAE or IntroVAE iteration: encoder update, then decoder update."""
        c, soft = self.cfg, self.cfg.method == "soft_intro_vae"
        s = self._scale(x)
        with self._amp():
            z_p = self._noise((x.shape[0], self.z_dim))
            mu, logvar = self.encode(x)
            z = L.reparameterize(mu, logvar, self.noise_gen)
            x_r, x_f = self.decode(z), self.decode(z_p)  # kept with the decoder's graph
            rec, kl = L.reconstruction_error(x, x_r), L.kl_divergence(mu, logvar)
            # ---- encoder step: fakes detached, only encoder gradients computed
            f = self._fake_terms(x_f.detach(), x_r.detach(), decode=soft)
            if soft:
                loss_e = L.soft_intro_encoder_loss(rec, kl, f["rec_f"], f["kl_f"], f["rec_r"], f["kl_r"], s=s,
                                                   beta_rec=c.beta_rec, beta_kl=c.beta_kl,
                                                   beta_neg=c.beta_neg, alpha=c.alpha)
            else:
                loss_e = L.introvae_encoder_loss(rec, kl, f["kl_f"], f["kl_r"], beta_rec=c.beta_rec,
                                                 beta_kl=c.beta_kl, beta_neg=c.beta_neg, m=c.m)
        self._check(loss_e=loss_e)
        self._apply(self.opt_e, self.enc, loss_e, retain_graph=True)
        # ---- decoder step: updated encoder, its weights get no gradient; fake latents detached
        with self._amp():
            g = self._fake_terms(x_f, x_r, decode=soft, detach_z=True, order=("r", "f"))
            if soft:
                loss_d = L.soft_intro_decoder_loss(rec, g["kl_f"], g["kl_r"], g["rec_f"], g["rec_r"], s=s,
                                                   beta_rec=c.beta_rec, beta_kl=c.beta_kl, gamma_r=c.gamma_r)
            else:
                loss_d = L.introvae_decoder_loss(rec, g["kl_f"], g["kl_r"], beta_rec=c.beta_rec,
                                                 beta_neg=c.beta_neg)
        self._check(loss_d=loss_d)
        self._apply(self.opt_d, self.dec, loss_d)
        self.scaler.update()
        out = {"loss_e": loss_e.item(), "loss_d": loss_d.item(), "rec": rec.mean().item(),
               "kl_real": kl.mean().item(), "kl_fake": f["kl_f"].mean().item(), "kl_rec": f["kl_r"].mean().item()}
        if soft:
            w = dict(s=s, beta_rec=c.beta_rec, beta_neg=c.beta_neg, alpha=c.alpha)
            out["exp_elbo_fake"] = L.exp_elbo(f["rec_f"], f["kl_f"], **w).item()
            out["exp_elbo_rec"] = L.exp_elbo(f["rec_r"], f["kl_r"], **w).item()
        return out

    def _fake_terms(self, x_f: Tensor, x_r: Tensor, decode: bool, detach_z: bool = False,
                    order=("f", "r")) -> dict:
        """KL (and, if decode, reconstruction error) of the encoder on both kinds of fakes.

        Without batch statistics both kinds go through each network as one batch of 2B (larger
        matmuls); the noise is drawn per kind in `order`, as separate calls would draw it.
        """
        (mu_f, mu_r), (lv_f, lv_r) = self._encode_pair(x_f, x_r)
        out = {"kl_f": L.kl_divergence(mu_f, lv_f), "kl_r": L.kl_divergence(mu_r, lv_r)}
        if decode:
            eps = {k: self._noise(mu_f.shape) for k in order}
            z_f = mu_f + eps["f"] * torch.exp(0.5 * lv_f)
            z_r = mu_r + eps["r"] * torch.exp(0.5 * lv_r)
            if detach_z:
                z_f, z_r = z_f.detach(), z_r.detach()
            d_f, d_r = self._decode_pair(z_f, z_r)
            out["rec_f"] = L.reconstruction_error(x_f.detach(), d_f)
            out["rec_r"] = L.reconstruction_error(x_r.detach(), d_r)
        return out

    def _average_grads(self, net: nn.Module):
        """Average .grad over ranks (one flat all-reduce per network); no-op on one process."""
        if self.world == 1:
            return
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        if grads:
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= self.world
            for g, v in zip(grads, flat.split([g.numel() for g in grads])):
                g.copy_(v.view_as(g))

    def _apply(self, opt: torch.optim.Optimizer, net: nn.Module, loss: Tensor, retain_graph: bool = False):
        params = [p for p in net.parameters() if p.requires_grad]
        grads = torch.autograd.grad(self.scaler.scale(loss), params, retain_graph=retain_graph, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = g  # None for a parameter the loss does not use: Adam skips it
        self._average_grads(net)
        self.scaler.step(opt)

    def _check(self, **named: Tensor):
        for name, value in named.items():
            v = value.item()
            if not math.isfinite(v) or abs(v) > self.cfg.max_loss:
                last = (f"{self.ckpt_path} (step {self.last_good_step})" if self.last_good_step is not None
                        else "none (no checkpoint saved yet)")
                raise DivergenceError(f"training diverged at step {self.step}: {name} = {v!r} "
                                      f"(method {self.cfg.method}). Last good checkpoint: {last}. "
                                      f"Try a smaller learning rate or beta_neg, or a larger warm-up (num_vae).")

    # -------------------------------------------------------------------- loop
    def train_step(self) -> dict:
        """Draw the next batch and run one iteration of the configured method."""
        self.enc.train(), self.dec.train()
        data_state = self.data_gen.get_state()
        try:
            batch = self.batch_fn(self.step, self.data_gen)
            x, self.y = batch if isinstance(batch, (tuple, list)) else (batch, None)
            x = x.to(self.device, non_blocking=True)
            self.y = None if self.y is None else self.y.to(self.device, non_blocking=True)
        except KeyboardInterrupt:  # killed before any update: the state is still that of the last step
            self.data_gen.set_state(data_state)
            raise
        self._clean = False
        if self.cfg.method == "vae" or self.step < self.cfg.num_vae:
            out = self.vae_step(x)
        else:
            out = self.introspective_step(x)
        self.sched_e.step()
        self.sched_d.step()
        if self.world > 1:  # BatchNorm running statistics: rank 0's, as DDP's broadcast_buffers
            for b in [*self.enc.buffers(), *self.dec.buffers()]:
                dist.broadcast(b, src=0)
        self.step += 1
        self._clean = True
        return out

    def fit(self, resume: bool = True) -> list[dict]:
        """Train up to cfg.n_iter iterations, resuming from ckpt_dir/last.pt if it exists.

        The checkpoint folder is locked for the run (a second trainer on it gets CheckpointError).
        SIGINT (Ctrl-C) and SIGTERM end the run at the next step boundary: that step's history is
        recorded, a checkpoint saved, and KeyboardInterrupt raised with a message naming the step;
        a second signal stops at once.

        Returns:
            the history: one dict of losses every `log_every` iterations (and the last one).
        """
        return fit_in_folder(self, resume, locked=self.ckpt_path is not None and self.rank == 0)

    def _loop(self, stop: "_StopOnSignal"):
        c = self.cfg
        bar = progress(c.n_iter, run_label(self.ckpt_path, f"{c.method} seed {c.seed}"), initial=self.step,
                       enabled=c.progress, events=self.rank == 0)
        stopped = True
        live = None
        if self.rank == 0 and self.step < c.n_iter:  # the curve as it grows (sivae.runinfo.live_training)
            live = live_curve(self.ckpt_path.parent if self.ckpt_path is not None else f"{c.method}_seed{c.seed}",
                              self.history)
        try:
            while self.step < c.n_iter:
                out = self.train_step()
                if self.step in self.keep_states_at:
                    self.kept_states[self.step] = {name: {k: v.detach().clone() for k, v in net.state_dict().items()}
                                                   for name, net in (("encoder", self.enc), ("decoder", self.dec))}
                logged = self.step % c.log_every == 0 or self.step == c.n_iter
                if logged:
                    self.history.append({"step": self.step, **out})
                    if live is not None:
                        live.log(self.history[-1])
                    bar.set_postfix({k: float(v) for k, v in out.items() if k in ("rec", "kl_real", "kl_fake")})
                if self.step % c.checkpoint_every == 0:
                    self.save()
                    if self.ckpt_path is not None:
                        bar.saved(self.step, self.ckpt_path)
                bar.update(1)
                if stop.signum is not None and self.step < c.n_iter:
                    if self.world == 1 and self.ckpt_path is not None:
                        self.save()  # the history keeps only log_every steps: a resumed run's equals an uninterrupted one's
                        bar.saved(self.step, self.ckpt_path)
                        where = f"checkpoint saved: {self.ckpt_path}"
                    else:
                        where = "no checkpoint folder: nothing saved" if self.ckpt_path is None else \
                            "data-parallel: resume from the last periodic checkpoint"
                    raise _Stopped(f"{stop.name} received: training stopped after step {self.step} "
                                   f"of {c.n_iter} ({where}); run again to resume")
            stopped = False
        except _Stopped:
            raise
        except KeyboardInterrupt:
            # an interrupt that did not come through our handler (a second signal, a raise from batch_fn):
            # between iterations the state is consistent, so keep it
            if self._clean and self.world == 1:
                self.save()
                if self.ckpt_path is not None:
                    bar.saved(self.step, self.ckpt_path)
            raise
        finally:
            bar.close(stopped=stopped)

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {"format": "sivae-checkpoint-v1", "step": self.step, "config": self.cfg.fingerprint(),
                "encoder": self.enc.state_dict(), "decoder": self.dec.state_dict(),
                "opt_e": self.opt_e.state_dict(), "opt_d": self.opt_d.state_dict(),
                "sched_e": self.sched_e.state_dict(), "sched_d": self.sched_d.state_dict(),
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

    def save(self, path: str | os.PathLike | None = None):
        """Write a checkpoint atomically (temp file + rename), so a kill never leaves half a file."""
        path = Path(path) if path is not None else self.ckpt_path
        if path is None:
            return
        state = self.state_dict()  # every rank takes part (it gathers the noise states)
        self.last_good_step = self.step
        if self.rank != 0:
            return
        save_checkpoint(state, path)

    def load(self, path: str | os.PathLike):
        """Restore everything from a checkpoint written by `save`, with clear errors."""
        state = load_checkpoint(path, map_location=self.device)
        if state["config"] != self.cfg.fingerprint():
            diff = {k: (state["config"].get(k), v) for k, v in self.cfg.fingerprint().items()
                    if state["config"].get(k) != v}
            raise ConfigurationChanged(f"checkpoint {path} was written by another configuration "
                                       f"(checkpoint vs now: {diff}); delete it or use another ckpt_dir")
        try:
            self.enc.load_state_dict(state["encoder"])
            self.dec.load_state_dict(state["decoder"])
        except RuntimeError as e:
            raise CheckpointError(f"checkpoint {path} does not fit these networks: {str(e).splitlines()[0]}") from None
        for name in ("opt_e", "opt_d", "sched_e", "sched_d"):
            getattr(self, name).load_state_dict(state[name])
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



def fit_in_folder(trainer, resume: bool, locked: bool) -> list | dict:
    """What Trainer.fit and StackTrainer.fit share: lock the checkpoint folder, resume (or, under a pipeline
    stage, restart when the checkpoint is of another configuration), run `trainer._loop` under the signal
    handler, save; returns trainer.history."""
    lock = FolderLock(trainer.ckpt_path.parent).acquire() if locked else None
    try:
        if resume and trainer.ckpt_path is not None and trainer.ckpt_path.exists():
            resume_or_restart(trainer)
        with _StopOnSignal() as stop:
            trainer._loop(stop)
        trainer.save()
    finally:
        if lock is not None:
            lock.release()
    return trainer.history


def resume_or_restart(trainer):
    """Load trainer.ckpt_path. Under a pipeline stage (SIVAE_STAGE set by sivae.stage) a checkpoint of another
    configuration is removed and training starts fresh instead of failing."""
    try:
        trainer.load(trainer.ckpt_path)
    except ConfigurationChanged as e:
        if not os.environ.get("SIVAE_STAGE"):
            raise
        print(f"{e}: stage {os.environ['SIVAE_STAGE']} retrains from step 0", flush=True)
        trainer.ckpt_path.unlink()


class _Stopped(KeyboardInterrupt):
    """Training ended on SIGINT/SIGTERM at a step boundary (its checkpoint already saved)."""


class ConfigurationChanged(CheckpointError):
    """The checkpoint was written by another training configuration."""


class _StopOnSignal:
    """While active (main thread only), the first SIGINT/SIGTERM is recorded for the loop to act on at
    the next step boundary; a second one raises KeyboardInterrupt at once."""

    def __init__(self):
        self.signum: int | None = None
        self._old: dict = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum, _frame):
        if self.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopped at once")
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: stopping after this step (signal again to stop at once)",
              file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
