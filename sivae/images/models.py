"""The IntroVAE residual encoder/decoder for images (paper Table 6, Figure 4(a), section 9.4.1).

Encoder: 5x5 conv -> BN -> LeakyReLU(0.2) -> 2x average pool, then for each further width a
residual block and a 2x average pool, a last residual block, and one linear layer to
(mu, logvar). Decoder: linear + ReLU to the encoder's final feature map, then for each width
(in reverse) a residual block and 2x nearest upsampling, a last residual block and a 5x5 conv
to the image (no output activation: the loss is a squared error on [0, 1] pixels).
Residual block: conv3x3-BN-LeakyReLU-conv3x3-BN, added to the input (1x1 conv when the width
changes), then LeakyReLU.

Sizes per dataset follow the paper and the public code: 28x28 (MNIST, Fashion-MNIST) widths
(64, 128) and z = 32; 32x32 (CIFAR-10, SVHN) widths (64, 128, 256) and z = 128; larger square
images one more stage per doubling: (64, 128, 256, 512, 512, ...) down to a 4x4 map.
The class-conditional variant appends a one-hot class vector to the encoder's flattened
features and to the decoder's latent input.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..params import parse_numbers

__all__ = ["ImageArch", "arch_for", "ImageEncoder", "ImageDecoder", "build_image_pair", "PAPER_ARCHS"]

# dataset -> (image size, channels of the image, widths, z_dim) as in the paper / public code
PAPER_ARCHS = {
    "mnist": (28, 1, (64, 128), 32),
    "fashionmnist": (28, 1, (64, 128), 32),
    "cifar10": (32, 3, (64, 128, 256), 128),
    "svhn": (32, 3, (64, 128, 256), 128),
}


@dataclass
class ImageArch:
    dataset: str = "cifar10"          # the data it is built for (names the checkpoint)
    image_size: int = 32              # square images, pixels per side
    cdim: int = 3                     # image channels
    channels: tuple = (64, 128, 256)  # residual stage widths
    z_dim: int = 128                  # latent size
    conditional: bool = False         # one-hot class input to encoder and decoder
    n_classes: int = 10               # one-hot length when conditional

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        if not self.channels or min(self.channels) < 1:
            raise ConfigError(f"channels must be positive widths, got {self.channels!r}")
        if self.image_size % (2 ** len(self.channels)):
            raise ConfigError(f"image_size {self.image_size} is not divisible by 2^{len(self.channels)} "
                              f"(one halving per width in {self.channels})")
        for k in ("image_size", "cdim", "z_dim", "n_classes"):
            if int(getattr(self, k)) < 1:
                raise ConfigError(f"{k} must be a positive integer, got {getattr(self, k)!r}")

    def to_dict(self) -> dict:
        return {**asdict(self), "channels": list(self.channels)}


def arch_for(dataset: str, image_size: int | None = None, cdim: int | None = None, channels="paper",
             z_dim: int | str = "paper", conditional: bool = False, n_classes: int = 10) -> ImageArch:
    """The paper's architecture for a dataset, optionally narrowed (channels) or resized.

    Args:
        dataset: a name in PAPER_ARCHS, or anything else with image_size and cdim given.
        image_size, cdim: needed for datasets outside PAPER_ARCHS (e.g. image folders).
        channels: "paper", a comma list "16,32", or a tuple of widths.
        z_dim: "paper" or an integer.
    Returns:
        ImageArch.
    """
    if dataset in PAPER_ARCHS:
        size, c, widths, z = PAPER_ARCHS[dataset]
    else:
        if image_size is None or cdim is None:
            raise ConfigError(f"dataset {dataset!r} has no paper architecture: give image_size and cdim")
        size, c = int(image_size), int(cdim)
        n = int(round(math.log2(size / 4)))
        if n < 1 or 4 * 2 ** n != size:
            raise ConfigError(f"image_size {size} must be 4 * 2^k (8, 16, 32, 64, 128, 256, ...)")
        widths, z = (64, 128, 256, 512, 512, 512, 512, 512)[:n], (128 if size <= 64 else 256)
    size, c = int(image_size or size), int(cdim or c)
    if channels != "paper":
        widths = parse_numbers("channels ('paper' or widths like '16,32')", channels, integer=True, positive=True)
    return ImageArch(dataset, size, c, widths, z if z_dim == "paper" else int(z_dim), bool(conditional), n_classes)


class ResidualBlock(nn.Module):
    """conv3x3-BN-LReLU-conv3x3-BN + shortcut (1x1 conv if widths differ), then LReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(self.body(x) + self.shortcut(x), 0.2)


def _one_hot(y: Tensor | None, arch: ImageArch, n: int, ref: Tensor) -> list:
    if not arch.conditional:
        return []
    if y is None:
        raise ConfigError("this model is class-conditional: pass the labels y")
    y = F.one_hot(y.long(), arch.n_classes) if y.dim() == 1 else y
    return [y.to(ref.dtype).view(n, -1)]


class ImageEncoder(nn.Module):
    """x (B, C, H, W) [, y (B,)] -> (mu, logvar), each (B, z_dim)."""

    def __init__(self, arch: ImageArch):
        super().__init__()
        self.arch, w = arch, arch.channels
        layers = [nn.Conv2d(arch.cdim, w[0], 5, padding=2, bias=False), nn.BatchNorm2d(w[0]),
                  nn.LeakyReLU(0.2), nn.AvgPool2d(2)]
        for a, b in zip(w[:-1], w[1:]):
            layers += [ResidualBlock(a, b), nn.AvgPool2d(2)]
        layers.append(ResidualBlock(w[-1], w[-1]))
        self.features = nn.Sequential(*layers)
        side = arch.image_size // 2 ** len(w)
        self.feature_shape = (w[-1], side, side)
        n_in = w[-1] * side * side + (arch.n_classes if arch.conditional else 0)
        self.fc = nn.Linear(n_in, 2 * arch.z_dim)

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.features(x).flatten(1)                        # (B, C' * h * w)
        mu, logvar = self.fc(torch.cat([h, *_one_hot(y, self.arch, x.shape[0], h)], 1)).chunk(2, dim=1)
        return mu, logvar


class ImageDecoder(nn.Module):
    """z (B, z_dim) [, y (B,)] -> image (B, C, H, W)."""

    def __init__(self, arch: ImageArch):
        super().__init__()
        self.arch, self.z_dim, w = arch, arch.z_dim, arch.channels
        side = arch.image_size // 2 ** len(w)
        self.feature_shape = (w[-1], side, side)
        n_in = arch.z_dim + (arch.n_classes if arch.conditional else 0)
        self.fc = nn.Sequential(nn.Linear(n_in, w[-1] * side * side), nn.ReLU())
        layers, c = [], w[-1]
        for b in reversed(w):
            layers += [ResidualBlock(c, b), nn.Upsample(scale_factor=2, mode="nearest")]
            c = b
        layers += [ResidualBlock(c, c), nn.Conv2d(c, arch.cdim, 5, padding=2)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.fc(torch.cat([z, *_one_hot(y, self.arch, z.shape[0], z)], 1))
        return self.body(h.view(z.shape[0], *self.feature_shape))


def build_image_pair(arch: ImageArch, seed: int = 0) -> tuple[ImageEncoder, ImageDecoder]:
    """Encoder and decoder with weights drawn from torch's default init under `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ImageEncoder(arch), ImageDecoder(arch)
