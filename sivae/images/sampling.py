"""What a trained image model does (paper section 6.3's figures): samples from fixed noise, reconstructions, latent
interpolations and walks, and the style-based model's samples at each resolution it grew through."""
from __future__ import annotations

import contextlib

import torch
from torch import Tensor

from ..errors import ConfigError
from .training import TrainedModel

__all__ = ["growth_samples", "fixed_noise", "sample_images", "encode_mean", "reconstruct", "interpolate",
           "latent_walk", "square_interpolation"]


@torch.no_grad()
def growth_samples(model: TrainedModel, n: int = 16, seed: int = 0) -> dict[int, Tensor]:
    """{resolution: n samples of the decoder as it was at the end of that resolution} (same z for all),
    each upsampled (nearest) to the final resolution for side-by-side display."""
    schedule, kept = getattr(model, "growth", None), getattr(model, "kept", None)
    if schedule is None or not kept:
        raise ConfigError("growth samples need a style-based model trained with progressive growing")
    dec = model.decoder
    saved = {k: v.clone() for k, v in dec.state_dict().items()}
    z = torch.randn(n, model.arch.z_dim, generator=torch.Generator().manual_seed(seed)).to(model.device)
    out = {}
    try:
        for lod, end in enumerate(schedule.ends()):
            if end not in kept:
                continue
            dec.load_state_dict(kept[end])
            with fixed_noise(model, seed):
                x = dec(z, lod=lod, alpha=1.0).float().cpu().clamp_(0, 1)
            out[4 * 2 ** lod] = torch.nn.functional.interpolate(x, size=model.arch.image_size, mode="nearest")
    finally:
        dec.load_state_dict(saved)
    return out


@contextlib.contextmanager
def fixed_noise(model: "TrainedModel", seed: int = 0):
    """Within the block, a decoder with noise inputs (the style-based one) draws them from a generator
    seeded with `seed`, so samples and reconstructions are reproducible; other decoders are untouched."""
    dec = model.decoder
    if not hasattr(dec, "noise_generator"):
        yield
        return
    saved = dec.noise_generator
    dec.noise_generator = torch.Generator(device=model.device).manual_seed(int(seed) + 104_729)
    try:
        yield
    finally:
        dec.noise_generator = saved


def _labels(model: TrainedModel, y, n: int):
    if not model.arch.conditional:
        return ()
    if y is None:
        raise ConfigError("this model is class-conditional: give the classes y")
    return (torch.as_tensor(y, device=model.device).long().expand(n) if torch.as_tensor(y).dim() == 0
            else torch.as_tensor(y, device=model.device).long(),)


@torch.no_grad()
def sample_images(model: TrainedModel, n: int, seed: int = 0, y=None, batch: int = 500) -> Tensor:
    """n images D(z), z ~ N(0, I) from a seeded generator, clamped to [0, 1] (on the CPU)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, model.arch.z_dim, generator=gen)
    labels = _labels(model, y, n)
    with fixed_noise(model, seed):
        out = [model.decoder(zb.to(model.device), *[lb[i:i + batch] for lb in labels]).float().cpu()
               for i, zb in zip(range(0, n, batch), z.split(batch))]
    return torch.cat(out).clamp_(0, 1)


@torch.no_grad()
def encode_mean(model: TrainedModel, x: Tensor, y=None) -> Tensor:
    """mu(x), the posterior mean (deterministic encoding)."""
    return model.encoder(x.to(model.device), *_labels(model, y, x.shape[0]))[0]


@torch.no_grad()
def reconstruct(model: TrainedModel, x: Tensor, y=None) -> Tensor:
    """D(mu(x)) clamped to [0, 1] (on the CPU)."""
    labels = _labels(model, y, x.shape[0])
    with fixed_noise(model):
        return model.decoder(encode_mean(model, x, y), *labels).float().cpu().clamp_(0, 1)


@torch.no_grad()
def interpolate(model: TrainedModel, x_a: Tensor, x_b: Tensor, steps: int = 8) -> Tensor:
    """Decodings of (1-t) mu(x_a) + t mu(x_b) for t in linspace(0, 1, steps): (steps, C, H, W)."""
    z = encode_mean(model, torch.stack([x_a, x_b]))
    t = torch.linspace(0, 1, steps, device=z.device)[:, None]
    with fixed_noise(model):
        return model.decoder((1 - t) * z[0] + t * z[1]).float().cpu().clamp_(0, 1)


@torch.no_grad()
def latent_walk(model: TrainedModel, steps: int = 10, seed: int = 0) -> Tensor:
    """Decodings along the line between two seeded random latents z ~ N(0, I): (steps, C, H, W)."""
    z = torch.randn(2, model.arch.z_dim, generator=torch.Generator().manual_seed(seed)).to(model.device)
    t = torch.linspace(0, 1, steps, device=z.device)[:, None]
    with fixed_noise(model, seed):
        return model.decoder((1 - t) * z[0] + t * z[1]).float().cpu().clamp_(0, 1)


@torch.no_grad()
def square_interpolation(model: TrainedModel, corners: Tensor, n: int = 6) -> Tensor:
    """Bilinear interpolation between the latents of 4 images (top-left, top-right, bottom-left,
    bottom-right), section 9.4.2: (n * n, C, H, W), row-major."""
    if corners.shape[0] != 4:
        raise ConfigError(f"square interpolation needs 4 corner images, got {corners.shape[0]}")
    z = encode_mean(model, corners)
    u = torch.linspace(0, 1, n, device=z.device)
    a, b = u[:, None, None], u[None, :, None]   # a: down, b: right
    grid = (1 - a) * (1 - b) * z[0] + (1 - a) * b * z[1] + a * (1 - b) * z[2] + a * b * z[3]
    with fixed_noise(model):
        return model.decoder(grid.reshape(n * n, -1)).float().cpu().clamp_(0, 1)


