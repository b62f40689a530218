"""Image generation (paper section 6.3): training and loading the image models (sampling, reconstruction and
interpolation of a trained model: sivae.images.sampling; the command line, also under torchrun: sivae.images.__main__).

Soft-IntroVAE and the VAE baseline are trained by the one `sivae.train.Trainer` on the IntroVAE
residual networks of `sivae.imagemodels`, with the paper's image settings (Eq. 7 with
s = 1 / (C*H*W), beta_neg near the latent size, gamma_r = 1e-8, Adam lr 2e-4, constant learning
rate as in the public code, whose milestone at epoch 350 is never reached; `lr_milestones` adds x0.1 decays).

Epochs: each epoch visits a permutation of the training set drawn from (seed, epoch) alone, so
a resumed run sees exactly the batches it would have seen; one checkpoint per epoch.
The style-based pair (sivae.images.style) trains through the same Trainer with progressive growing:
`train_style_model` gives it a batch function that, from the step alone, sets the networks' `lod` and
`alpha` (GrowthSchedule) and returns the batch at that resolution, faded as the networks are (real images
lerp from the 2x-upsampled half-resolution image to the full one), so a resumed run grows exactly as an
uninterrupted one. The Trainer keeps the decoder's weights at the end of every resolution.
Data parallel: `python -m torch.distributed.run --nproc_per_node N -m sivae.images ...` (sivae/images/__main__.py) runs N
processes; each takes its own `batch_size` slice of the same permutation (global batch
N * batch_size) and the Trainer averages gradients over processes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..batches import epoch_batches
from ..checkpoints import load_checkpoint
from ..errors import CheckpointError, ConfigError, check_choice
from ..params import parse_bool, parse_int, parse_number, parse_numbers, parse_seed
from ..runtime import check_device, resolve_device
from ..train import AUTOCAST, MAX_BATCH_SIZE, METHODS, TrainConfig, Trainer
from .data import ImageData
from .models import ImageArch, build_image_pair
from .style import StyleArch

__all__ = ["TrainedModel", "make_batch_fn", "train_image_model", "load_trained", "run_name",
           "GrowthSchedule", "resize_images", "train_style_model", "history_rows"]

HISTORY_KEYS = ("rec", "kl_real", "kl_fake", "kl_rec", "exp_elbo_fake", "exp_elbo_rec")
MAX_EPOCHS = 1_000_000   # epochs (and warm-up epochs) above this are a typo (the paper: 200 to 220)
MAX_WORLD = 65_536       # data-parallel processes


@dataclass
class TrainedModel:
    """A trained encoder/decoder pair (eval mode) and what produced it."""
    encoder: torch.nn.Module
    decoder: torch.nn.Module
    arch: ImageArch
    method: str
    seed: int
    beta_rec: float = 1.0
    history: list = field(default_factory=list)
    step: int = 0
    path: Path | None = None
    growth: "GrowthSchedule | None" = None   # style-based models: the progressive-growing schedule
    kept: dict = field(default_factory=dict)  # {step: weights}: style-based, the decoder at the end of each
    # resolution; keep_epochs, {"encoder": ..., "decoder": ...} after those epochs (budget curves)

    @property
    def device(self) -> torch.device:
        return next(self.decoder.parameters()).device


def run_name(dataset: str, method: str, seed: int) -> str:
    """Checkpoint folder name of one run: <dataset>_<method>_seed<seed>."""
    return f"{dataset}_{method}_seed{seed}"


def make_batch_fn(data: ImageData, batch_size: int, seed: int, conditional: bool = False,
                  rank: int = 0, world: int = 1, memory_format=torch.contiguous_format):
    """Batches of an epoch-wise permutation that depends on (seed, epoch) only.

    Args:
        data: the training set.
        batch_size: images per batch and process.
        seed: the run's seed.
        conditional: also return the labels.
        rank, world: this process and the number of processes (each takes its own slice).
    Returns:
        (batch_fn(step, generator) -> x or (x, y), steps per epoch).
    """
    indices, per_epoch = epoch_batches(len(data), batch_size, seed, rank=rank, world=world)

    def batch_fn(step: int, _gen: torch.Generator):
        idx = indices(step)
        x = data.x[idx].contiguous(memory_format=memory_format)
        return (x, data.y[idx]) if conditional else x

    return batch_fn, per_epoch


def train_image_model(data: ImageData, arch: ImageArch, method: str = "soft_intro_vae", seed: int = 0, *,
                      epochs: int = 1, batch_size: int = 32, lr: float = 2e-4, lr_milestones=(), beta_rec: float = 1.0,
                      beta_kl: float = 1.0, beta_neg: float = 256.0, gamma_r: float = 1e-8, num_vae: int = 0,
                      ckpt_dir=None, device="auto", autocast: str = "auto", channels_last: bool = True,
                      progress: bool = True, rank: int = 0, world: int = 1, keep_epochs=()) -> TrainedModel:
    """Train (or resume, or just load when finished) one image model.

    Args:
        data: training images, shaped like arch (channels, size).
        arch: the networks' ImageArch.
        method: "vae", "introvae" or "soft_intro_vae".
        seed: weight init, data order and noise.
        epochs: passes over `data`; num_vae: plain-VAE warm-up epochs.
        batch_size, lr, beta_rec, beta_kl, beta_neg, gamma_r: the paper's hyper-parameters.
        lr_milestones: fractions of the run at which lr drops x0.1 (default none: a constant lr).
        ckpt_dir: folder of this run's last.pt (saved every epoch); None: no checkpoints.
        device: "auto", "cpu" or "cuda"; autocast: "auto" (bf16 on CUDA), "none", "bf16", "fp16".
        channels_last: NHWC memory format (faster convolutions on CPU and GPU; same mathematics).
        rank, world: data-parallel process index and count (see the module docstring).
        keep_epochs: epochs (numbers in (0, epochs]) after which a copy of the weights is kept, in
            TrainedModel.kept[step] (budget curves along one run; the configuration, so resuming, is unchanged).
    Returns:
        TrainedModel in eval mode.

    Every argument is checked before any work: method, epochs (> 0, <= MAX_EPOCHS), num_vae (>= 0 epochs),
    batch_size (1..MAX_BATCH_SIZE), seed, rank / world, autocast and device here; lr and the loss weights by
    their one check, TrainConfig's (built before anything is written).
    """
    check_choice("method", method, METHODS)
    parse_number("epochs", epochs, positive=True, at_most=MAX_EPOCHS)
    parse_number("num_vae", num_vae, at_most=MAX_EPOCHS)
    batch_size = parse_int("batch_size", batch_size, 1, MAX_BATCH_SIZE)
    parse_seed("seed", seed)
    world = parse_int("world", world, 1, MAX_WORLD)
    rank = parse_int("rank", rank, 0, world - 1)
    check_choice("autocast", autocast, AUTOCAST)
    channels_last, progress = parse_bool("channels_last", channels_last), parse_bool("progress", progress)
    check_device(device)
    if not isinstance(data, ImageData):
        raise ConfigError(f"data must be an ImageData, got {type(data).__name__}")
    if not isinstance(arch, ImageArch):
        raise ConfigError(f"arch must be an ImageArch, got {type(arch).__name__}")
    if ckpt_dir is not None and (not isinstance(ckpt_dir, (str, os.PathLike)) or not str(ckpt_dir).strip()):
        raise ConfigError(f"ckpt_dir must be a folder path or None, got {ckpt_dir!r}")
    if tuple(data.shape) != (arch.cdim, arch.image_size, arch.image_size):
        raise ConfigError(f"images of {data.name} are {tuple(data.shape)}, the model expects "
                          f"{(arch.cdim, arch.image_size, arch.image_size)}")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    batch_fn, per_epoch = make_batch_fn(data, batch_size, seed, arch.conditional, rank, world, fmt)
    cfg = TrainConfig(method=method, n_iter=max(1, int(round(epochs * per_epoch))), batch_size=batch_size, lr=lr,
                      lr_milestones=lr_milestones, beta_rec=beta_rec, beta_kl=beta_kl, beta_neg=beta_neg, gamma_r=gamma_r,
                      scale=1.0 / (arch.cdim * arch.image_size ** 2), num_vae=int(round(num_vae * per_epoch)),
                      seed=seed, checkpoint_every=per_epoch, log_every=max(1, per_epoch // 10),
                      autocast=autocast, progress=progress,
                      extra={"kind": "image", "arch": arch.to_dict(), "steps_per_epoch": per_epoch,
                             "dataset": data.name, "n_train": len(data), "world": world})
    keep = sorted({max(1, int(round(e * per_epoch))) for e in parse_numbers(
        "keep_epochs", keep_epochs if keep_epochs is not None else (), positive=True, at_most=float(epochs),
        allow_empty=True)})
    enc, dec = build_image_pair(arch, seed)
    enc, dec = enc.to(memory_format=fmt), dec.to(memory_format=fmt)
    trainer = Trainer(enc, dec, batch_fn, cfg, ckpt_dir, device, keep_states_at=keep)
    trainer.fit(resume=True)
    enc.eval(), dec.eval()
    return TrainedModel(enc, dec, arch, method, seed, beta_rec, trainer.history, trainer.step,
                        trainer.ckpt_path, kept=dict(trainer.kept_states))


@dataclass(frozen=True)
class GrowthSchedule:
    """Progressive growing as a function of the step: `steps[k]` iterations at resolution lod k, the
    first `fade` share of each (lod > 0) fading the new resolution in (alpha 0 -> 1 linearly)."""
    steps: tuple
    fade: float = 0.5

    def __post_init__(self):
        if not self.steps or any(isinstance(n, bool) or int(n) != n or n < 1 for n in self.steps):
            raise ConfigError(f"steps per resolution must be positive integers, got {self.steps!r}")
        if not 0.0 <= float(self.fade) <= 1.0:
            raise ConfigError(f"the fade-in share must be in [0, 1], got {self.fade!r}")

    @property
    def total(self) -> int:
        return int(sum(self.steps))

    def ends(self) -> list[int]:
        """The step at which each resolution ends."""
        out, t = [], 0
        for n in self.steps:
            t += int(n)
            out.append(t)
        return out

    def at(self, step: int) -> tuple[int, float]:
        """(lod, alpha) of iteration `step` (0-based; steps past the end stay at the last resolution)."""
        start = 0
        for lod, n in enumerate(self.steps):
            if step < start + n or lod == len(self.steps) - 1:
                fade_steps = int(round(self.fade * n)) if lod > 0 else 0
                return lod, 1.0 if fade_steps == 0 else min(1.0, (step - start + 1) / fade_steps)
            start += n
        raise AssertionError("unreachable")


def resize_images(x: Tensor, size: int) -> Tensor:
    """Square images to size x size (antialiased bilinear; unchanged if already that size)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return torch.nn.functional.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True,
                                           align_corners=False).clamp_(0, 1)


def _at_lod(x: Tensor, lod: int, alpha: float, n_lods: int) -> Tensor:
    """Final-resolution images x as the networks take them at (lod, alpha): average-pooled to lod's
    resolution, and while fading in, lerped from the 2x-upsampled half-resolution image."""
    f = torch.nn.functional
    x = f.avg_pool2d(x, 2 ** (n_lods - 1 - lod)) if lod < n_lods - 1 else x
    if lod > 0 and alpha < 1:
        x = torch.lerp(f.interpolate(f.avg_pool2d(x, 2), scale_factor=2, mode="nearest"), x, alpha)
    return x


def train_style_model(data: ImageData, arch: StyleArch, method: str = "soft_intro_vae", seed: int = 0, *,
                      epochs_per_lod: float = 1.0, fade: float = 0.5, batch_size: int = 32, lr: float = 2e-4,
                      beta_rec: float = 1.0, beta_kl: float = 1.0, beta_neg: float = 256.0, gamma_r: float = 1e-8,
                      ckpt_dir=None, device="auto", autocast: str = "auto", progress: bool = True) -> TrainedModel:
    """Train (or resume, or load when finished) the style-based pair with progressive growing.

    Args:
        data: training images (any size: resized to arch.image_size once, antialiased).
        arch: the StyleArch (final resolution, widths, latent and style sizes).
        epochs_per_lod: passes over `data` at each resolution (the authors: a number of images per
            resolution); fade: share of each resolution's steps spent fading it in.
        the rest as train_image_model. Eq. 7's scale s is 1 / (C*H*W) of the current resolution.
    Returns:
        TrainedModel at the final resolution (lod = last, alpha = 1), eval mode; `kept` decoder weights at
        the end of every resolution are in the checkpoint (see `growth_samples`).
    """
    check_choice("method", method, METHODS)
    parse_number("epochs_per_lod", epochs_per_lod, positive=True, at_most=MAX_EPOCHS)
    batch_size = parse_int("batch_size", batch_size, 1, MAX_BATCH_SIZE)
    parse_seed("seed", seed)
    fade = parse_number("fade", fade)
    check_choice("autocast", autocast, AUTOCAST)
    progress = parse_bool("progress", progress)
    check_device(device)
    if not isinstance(data, ImageData):
        raise ConfigError(f"data must be an ImageData, got {type(data).__name__}")
    if not isinstance(arch, StyleArch):
        raise ConfigError(f"arch must be a StyleArch, got {type(arch).__name__}")
    if data.shape[0] != arch.cdim:
        raise ConfigError(f"images of {data.name} have {data.shape[0]} channels, the model expects {arch.cdim}")
    if ckpt_dir is not None and (not isinstance(ckpt_dir, (str, os.PathLike)) or not str(ckpt_dir).strip()):
        raise ConfigError(f"ckpt_dir must be a folder path or None, got {ckpt_dir!r}")
    images = resize_images(data.x, arch.image_size)
    indices, per_epoch = epoch_batches(len(images), batch_size, seed)
    schedule = GrowthSchedule(tuple([max(1, int(round(epochs_per_lod * per_epoch)))] * arch.n_lods), float(fade))
    enc, dec = arch.build(seed)

    def batch_fn(step: int, _gen: torch.Generator) -> Tensor:
        lod, alpha = schedule.at(step)
        for net in (enc, dec):
            net.lod, net.alpha = lod, alpha
        return _at_lod(images[indices(step)], lod, alpha, arch.n_lods)

    ends = schedule.ends()
    cfg = TrainConfig(method=method, n_iter=schedule.total, batch_size=batch_size, lr=lr, lr_milestones=(),
                      beta_rec=beta_rec, beta_kl=beta_kl, beta_neg=beta_neg, gamma_r=gamma_r, scale=None,
                      seed=seed, checkpoint_every=max(1, min(per_epoch, schedule.steps[0])),
                      log_every=max(1, min(per_epoch, schedule.steps[0]) // 10), autocast=autocast,
                      progress=progress,
                      extra={"kind": "style_image", "arch": arch.to_dict(), "steps_per_epoch": per_epoch,
                             "growth": {"steps": list(schedule.steps), "fade": schedule.fade}, "dataset": data.name,
                             "n_train": len(data)})
    trainer = Trainer(enc, dec, batch_fn, cfg, ckpt_dir, device, keep_states_at=ends)
    dec.noise_generator = trainer.noise_gen   # the decoder's noise inputs: checkpointed with the trainer's state
    try:
        trainer.fit(resume=True)
    finally:
        dec.noise_generator = None
    for net in (enc, dec):
        net.lod, net.alpha = arch.n_lods - 1, 1.0
    enc.eval(), dec.eval()
    model = TrainedModel(enc, dec, arch, method, seed, beta_rec, trainer.history, trainer.step, trainer.ckpt_path)
    model.kept = {int(k): v["decoder"] for k, v in trainer.kept_states.items()}
    model.growth = schedule
    return model


def load_trained(ckpt_path, device="cpu") -> TrainedModel:
    """Rebuild a trained image model from its checkpoint (eval mode), with clear errors."""
    state = load_checkpoint(ckpt_path, map_location="cpu")
    extra = state.get("extra") or {}
    if extra.get("kind") not in ("image", "style_image"):
        raise CheckpointError(f"{ckpt_path} is not an image-model checkpoint (written by another stage?)")
    try:
        arch = (StyleArch if extra["kind"] == "style_image" else ImageArch)(**extra["arch"])
    except (KeyError, TypeError, ConfigError) as e:
        raise CheckpointError(f"checkpoint {ckpt_path} has no valid architecture record ({e})") from None
    enc, dec = arch.build() if isinstance(arch, StyleArch) else build_image_pair(arch)
    try:
        enc.load_state_dict(state["encoder"])
        dec.load_state_dict(state["decoder"])
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {ckpt_path} does not fit its architecture: {str(e).splitlines()[0]}") from None
    dev = resolve_device(device)
    enc, dec = enc.to(dev).eval(), dec.to(dev).eval()
    cfg = state["config"]
    model = TrainedModel(enc, dec, arch, cfg["method"], cfg["seed"], cfg["beta_rec"], state["history"],
                         state["step"], Path(ckpt_path))
    if isinstance(arch, StyleArch):
        g = extra.get("growth") or {}
        model.growth = GrowthSchedule(tuple(g.get("steps") or [1] * arch.n_lods), float(g.get("fade", 0.5)))
        model.kept = {int(k): v["decoder"] for k, v in (state.get("kept_states") or {}).items()}
    return model


def history_rows(model: TrainedModel, dataset: str, method_key: str | None = None) -> list[dict]:
    """Training curves as flat rows (run, step, losses) for a DVC plots file."""
    return [{"run": run_name(dataset, method_key or model.method, model.seed), "step": h["step"],
             **{k: h[k] for k in HISTORY_KEYS if k in h}} for h in model.history]


