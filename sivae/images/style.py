"""The style-based encoder/decoder pair of the paper (Figure 4(c), Appendix 9.2.2), in plain PyTorch.

Resolutions are indexed by `lod` (level of detail): lod k is a 4 * 2^k pixel square, so `channels[k]` is the
width of the feature maps at that resolution and the final resolution is 4 * 2^(len(channels) - 1).

Decoder (StyleGAN-like): a mapping network (pixel norm, then `mapping_layers` fully connected layers with
LeakyReLU(0.2), the last one included) turns z into a style w, used by every layer (two per resolution).
Synthesis starts from a learned constant 4x4 map; each further resolution doubles the size (nearest
upsampling + 3x3 conv, or a stride-2 transposed conv with a 4x4 box-smoothed kernel from `fused_min_res`
on), blurs with a fixed [1, 2, 1] kernel, and each of its two layers adds per-channel-scaled Gaussian noise
and a bias, applies LeakyReLU(0.2) and instance norm, then AdaIN: x * (1 + a(w)) + b(w) with an affine map
of w. Every resolution has its own 1x1 to-RGB conv; while growing to lod k the output is
lerp(nearest_upsample(to_rgb[k-1](h_{k-1})), to_rgb[k](h_k), alpha). No output activation.

Encoder (ALAE-like, mirror image): a 1x1 from-RGB conv per resolution, then one block per resolution from
the input's down to 4x4; a block is conv3x3 + bias + LeakyReLU, the per-channel mean and std of that
activation (its instance-norm statistics) mapped affinely to a style contribution, instance norm, blur,
downsampling conv + bias + LeakyReLU, the second statistics and contribution, instance norm. The
contributions of all layers are summed into one style vector, mapped by `to_latent_layers` fully connected
layers (LeakyReLU after each, the last included) to 2 * z_dim numbers: (mu, logvar). While growing to lod k
the new block's contributions are scaled by alpha and its output is lerped with from_rgb[k-1] of the 2x
average-pooled image.

Both networks expose `lod` and `alpha` as attributes (defaults: the final resolution, 1.0) that `forward`
uses unless given as keyword arguments, so `encoder(x) -> (mu, logvar)` and `decoder(z) -> image` work
with sivae.train.Trainer unchanged. Neither has BatchNorm (instance norm is per image).

The computation follows the authors' released style model where it matters for importing their weights
(sivae.images.released): their from-RGB applies LeakyReLU(0.2) twice (kept, so the net slope is 0.04),
their AdaIN scale is 1 + the first half of the affine output, and the stride-2 kernels are built from 3x3
weights as described above. Differences: the std has an epsilon of 1e-8 under the square root (a finite
gradient on constant channels), noise="none" adds nothing (their noise-free path adds a fixed function of
x instead), and training here uses plain Adam (no equalised learning rate; weights are stored at their
effective scale, as in their checkpoints).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["StyleEncoder", "StyleDecoder", "StyleArch", "build_style_pair", "authors_channels", "NOISE_MODES"]

NOISE_MODES = ("random", "batch", "none")   # per-image noise, one noise map for the batch, no noise
_SLOPE = 0.2


def authors_channels(startf: int, maxf: int, layer_count: int) -> tuple[tuple[int, ...], int]:
    """(channels per lod, bottom width of the encoder) of the authors' style model with START_CHANNEL_COUNT
    `startf`, MAX_CHANNEL_COUNT `maxf` and LAYER_COUNT `layer_count` (7, 64, 512 at 256x256)."""
    channels = tuple(min(maxf, startf * 2 ** (layer_count - 1 - k)) for k in range(layer_count))
    return channels, min(maxf, startf * 2 ** layer_count)


def _check_channels(channels, resolution: int | None) -> tuple[int, ...]:
    try:
        channels = tuple(int(c) for c in channels)
    except (TypeError, ValueError):
        raise ConfigError(f"channels must be a sequence of positive widths, got {channels!r}") from None
    if not channels or min(channels) < 1:
        raise ConfigError(f"channels must be positive widths (one per resolution from 4x4 up), got {channels!r}")
    final = 4 * 2 ** (len(channels) - 1)
    if resolution is not None and int(resolution) != final:
        raise ConfigError(f"resolution {resolution} needs log2(resolution / 4) + 1 widths in channels; "
                          f"{len(channels)} widths give {final}x{final}")
    return channels


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _set_sizes(net: nn.Module, z_dim, w_dim, channels, resolution, image_channels) -> None:
    """The size attributes both networks share, checked: channels, z_dim, w_dim, image_channels, n_lods,
    resolution."""
    net.channels = _check_channels(channels, resolution)
    net.z_dim, net.w_dim = _positive("z_dim", z_dim), _positive("w_dim", w_dim)
    net.image_channels = _positive("image_channels", image_channels)
    net.n_lods = len(net.channels)
    net.resolution = 4 * 2 ** (net.n_lods - 1)


def _normal(shape, fan_in: int, gain: float) -> nn.Parameter:
    return nn.Parameter(torch.randn(shape) * (gain / math.sqrt(fan_in)))


def _box4(w: Tensor) -> Tensor:
    """3x3 kernels -> 4x4 kernels: the sum of the four one-pixel shifts (a 2x2 box filter of the kernel)."""
    w = F.pad(w, (1, 1, 1, 1))
    return w[..., 1:, 1:] + w[..., :-1, 1:] + w[..., 1:, :-1] + w[..., :-1, :-1]


class Blur(nn.Module):
    """Fixed depthwise 3x3 [1, 2, 1] x [1, 2, 1] / 16 smoothing (not a parameter, not saved)."""

    def __init__(self, channels: int):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None, :]) / 16.0
        self.register_buffer("kernel", k.expand(channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.kernel.to(x.dtype), padding=1, groups=x.shape[1])


class Dense(nn.Module):
    """Fully connected layer y = x W^T + b (He-style init scaled by `gain`, zero bias)."""

    def __init__(self, n_in: int, n_out: int, gain: float = math.sqrt(2.0)):
        super().__init__()
        self.weight = _normal((n_out, n_in), n_in, gain)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)


class MLP(nn.Module):
    """`n` Dense layers, each followed by LeakyReLU(0.2); optional pixel norm of the input."""

    def __init__(self, n_in: int, hidden: int, n_out: int, n: int, pixel_norm: bool):
        super().__init__()
        sizes = [n_in] + [hidden] * (n - 1) + [n_out]
        self.layers = nn.ModuleList(Dense(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.pixel_norm = pixel_norm

    def forward(self, x: Tensor) -> Tensor:
        if self.pixel_norm:
            x = x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), _SLOPE)
        return x


# ---------------------------------------------------------------------------------------------- decoder
class SynthesisBlock(nn.Module):
    """One resolution of the decoder: [2x up conv + blur], then two (noise, bias, LReLU, IN, AdaIN) layers."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, first: bool, fused: bool):
        super().__init__()
        self.first, self.fused = first, fused
        if not first:
            # transposed conv weights are (in, out, k, k), ordinary conv weights (out, in, k, k)
            shape = (c_in, c_out, 3, 3) if fused else (c_out, c_in, 3, 3)
            self.up_weight = _normal(shape, 9 * c_in, math.sqrt(2.0))
            self.blur = Blur(c_out)
        self.conv_weight = _normal((c_out, c_out, 3, 3), 9 * c_out, math.sqrt(2.0))
        self.noise_scale1 = nn.Parameter(torch.zeros(1, c_out, 1, 1))
        self.noise_scale2 = nn.Parameter(torch.zeros(1, c_out, 1, 1))
        self.bias1 = nn.Parameter(torch.zeros(1, c_out, 1, 1))
        self.bias2 = nn.Parameter(torch.zeros(1, c_out, 1, 1))
        self.style1 = Dense(w_dim, 2 * c_out, gain=1.0)
        self.style2 = Dense(w_dim, 2 * c_out, gain=1.0)

    def _layer(self, x: Tensor, noise_scale: Tensor, bias: Tensor, style: Dense, w: Tensor, noise) -> Tensor:
        if noise is not None:
            x = x + noise_scale * noise(x)
        x = F.leaky_relu(x + bias, _SLOPE)
        x = F.instance_norm(x, eps=1e-8)
        scale, shift = style(w).view(x.shape[0], 2, x.shape[1], 1, 1).unbind(1)
        return x * (scale + 1) + shift

    def forward(self, x: Tensor, w1: Tensor, w2: Tensor, noise) -> Tensor:
        if not self.first:
            if self.fused:
                x = F.conv_transpose2d(x, _box4(self.up_weight), stride=2, padding=1)
            else:
                x = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), self.up_weight, padding=1)
            x = self.blur(x)
        x = self._layer(x, self.noise_scale1, self.bias1, self.style1, w1, noise)
        x = F.conv2d(x, self.conv_weight, padding=1)
        return self._layer(x, self.noise_scale2, self.bias2, self.style2, w2, noise)


class StyleDecoder(nn.Module):
    """z (B, z_dim) -> image (B, image_channels, 4 * 2^lod, 4 * 2^lod).

    Args:
        z_dim: latent size (paper 512).  w_dim: style size (paper 512); also the mapping's hidden width.
        channels: feature width per resolution from 4x4 up (paper: 512, 512, 512, 512, 256, 128, 64).
        resolution: final resolution (checked against channels; None: implied by them).
        image_channels: 3 for RGB.  mapping_layers: paper 8.
        fused_min_res: resolutions >= this use the stride-2 transposed conv to grow (authors: 128).
        noise: one of NOISE_MODES.  truncation_psi / truncation_cutoff: optional truncation towards `w_avg`
            for the first `truncation_cutoff` layers (None: off; w_avg is imported with the authors' weights).
    Attributes `lod` (0 .. n_lods - 1) and `alpha` (fade-in weight in [0, 1]) select what `forward` renders;
    `noise_generator` (a torch.Generator or None: torch's global one) draws the noise.
    """

    def __init__(self, z_dim: int = 16, w_dim: int = 16, channels=(16, 16, 8, 8), resolution: int | None = None,
                 image_channels: int = 3, mapping_layers: int = 2, fused_min_res: int = 128, noise: str = "random",
                 truncation_psi: float | None = None, truncation_cutoff: int = 8):
        super().__init__()
        _set_sizes(self, z_dim, w_dim, channels, resolution, image_channels)
        self.n_styles = 2 * self.n_lods
        self.mapping = MLP(self.z_dim, self.w_dim, self.w_dim, _positive("mapping_layers", mapping_layers),
                           pixel_norm=True)
        self.const = nn.Parameter(torch.ones(1, self.channels[0], 4, 4))
        self.blocks = nn.ModuleList()
        self.to_rgb = nn.ModuleList()
        for k, c in enumerate(self.channels):
            c_in = self.channels[k - 1] if k else c
            self.blocks.append(SynthesisBlock(c_in, c, self.w_dim, first=k == 0, fused=4 * 2 ** k >= fused_min_res))
            rgb = nn.Conv2d(c, self.image_channels, 1)
            with torch.no_grad():
                rgb.weight.normal_(0.0, 0.03 / math.sqrt(c))
                rgb.bias.zero_()
            self.to_rgb.append(rgb)
        self.register_buffer("w_avg", torch.zeros(self.n_styles, self.w_dim))
        self.truncation_psi, self.truncation_cutoff = truncation_psi, int(truncation_cutoff)
        self.noise_generator: torch.Generator | None = None
        self.noise = noise
        self.lod, self.alpha = self.n_lods - 1, 1.0

    # ------------------------------------------------------------------ helpers
    @property
    def noise(self) -> str:
        return self._noise

    @noise.setter
    def noise(self, mode: str):
        if mode not in NOISE_MODES:
            raise ConfigError(f"unknown noise {mode!r}; choose one of: {', '.join(NOISE_MODES)}")
        self._noise = mode

    def _noise_fn(self):
        if self._noise == "none":
            return None

        def draw(x: Tensor) -> Tensor:
            n = x.shape[0] if self._noise == "random" else 1
            return torch.randn(n, 1, x.shape[2], x.shape[3], generator=self.noise_generator,
                               device=x.device if self.noise_generator is None else self.noise_generator.device
                               ).to(device=x.device, dtype=x.dtype)
        return draw

    def styles(self, z: Tensor) -> Tensor:
        """z -> per-layer styles (B, n_styles, w_dim): the mapped w for every layer, truncated if configured."""
        w = self.mapping(z)[:, None].expand(-1, self.n_styles, -1)
        if self.truncation_psi is not None:
            psi = torch.where(torch.arange(self.n_styles, device=w.device) < self.truncation_cutoff,
                              float(self.truncation_psi), 1.0).to(w.dtype)[None, :, None]
            w = torch.lerp(self.w_avg.to(w.dtype)[None], w, psi)
        return w

    # ------------------------------------------------------------------ forward
    def synthesize(self, ws: Tensor, lod: int | None = None, alpha: float | None = None) -> Tensor:
        """Per-layer styles (B, n_styles, w_dim) -> image at `lod` (style mixing: pass mixed styles)."""
        lod, alpha = _lod_alpha(self, lod, alpha)
        noise = self._noise_fn()
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        prev = None
        for k in range(lod + 1):
            if k == lod and lod > 0 and alpha < 1:
                prev = self.to_rgb[k - 1](x)
            x = self.blocks[k](x, ws[:, 2 * k], ws[:, 2 * k + 1], noise)
        out = self.to_rgb[lod](x)
        if prev is not None:
            out = torch.lerp(F.interpolate(prev, scale_factor=2, mode="nearest"), out, alpha)
        return out

    def forward(self, z: Tensor, y: Tensor | None = None, *, lod: int | None = None,
                alpha: float | None = None) -> Tensor:
        if y is not None:
            raise ConfigError("the style decoder is not class-conditional: do not pass labels")
        return self.synthesize(self.styles(z), lod, alpha)


# ---------------------------------------------------------------------------------------------- encoder
def _mean_std(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, 2C): per-channel means then standard deviations over the pixels."""
    m = x.mean(dim=(2, 3))
    s = ((x - m[..., None, None]).pow(2).mean(dim=(2, 3)) + 1e-8).sqrt()
    return torch.cat([m, s], dim=1)


class AnalysisBlock(nn.Module):
    """One resolution of the encoder: conv3x3 + bias + LReLU -> style 1 -> IN -> blur, 2x down conv + bias +
    LReLU -> style 2 -> IN. Returns (features at half the size, style1 + style2)."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, fused: bool):
        super().__init__()
        self.fused = fused
        self.conv_weight = _normal((c_in, c_in, 3, 3), 9 * c_in, math.sqrt(2.0))
        self.bias1 = nn.Parameter(torch.zeros(1, c_in, 1, 1))
        self.blur = Blur(c_in)
        self.down_weight = _normal((c_out, c_in, 3, 3), 9 * c_in, math.sqrt(2.0))
        self.bias2 = nn.Parameter(torch.zeros(1, c_out, 1, 1))
        self.style1 = Dense(2 * c_in, w_dim)
        self.style2 = Dense(2 * c_out, w_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = F.leaky_relu(F.conv2d(x, self.conv_weight, padding=1) + self.bias1, _SLOPE)
        s = self.style1(_mean_std(x))
        x = self.blur(F.instance_norm(x))
        if self.fused:
            x = F.conv2d(x, _box4(self.down_weight) * 0.25, stride=2, padding=1)
        else:
            x = F.avg_pool2d(F.conv2d(x, self.down_weight, padding=1), 2)
        x = F.leaky_relu(x + self.bias2, _SLOPE)
        s = s + self.style2(_mean_std(x))
        return F.instance_norm(x), s


class StyleEncoder(nn.Module):
    """image (B, image_channels, 4 * 2^lod, 4 * 2^lod) -> (mu, logvar), each (B, z_dim).

    Args as StyleDecoder, plus `bottom_channels` (width after the 4x4 block's downsampling; None: channels[0])
    and `to_latent_layers` (paper 3). Attributes `lod` and `alpha` as in StyleDecoder.
    """

    def __init__(self, z_dim: int = 16, w_dim: int = 16, channels=(16, 16, 8, 8), resolution: int | None = None,
                 image_channels: int = 3, to_latent_layers: int = 3, fused_min_res: int = 128,
                 bottom_channels: int | None = None):
        super().__init__()
        _set_sizes(self, z_dim, w_dim, channels, resolution, image_channels)
        bottom = self.channels[0] if bottom_channels is None else _positive("bottom_channels", bottom_channels)
        self.from_rgb = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for k, c in enumerate(self.channels):
            self.from_rgb.append(nn.Conv2d(self.image_channels, c, 1))
            c_out = self.channels[k - 1] if k else bottom
            self.blocks.append(AnalysisBlock(c, c_out, self.w_dim, fused=4 * 2 ** k >= fused_min_res))
        self.to_latent = MLP(self.w_dim, self.w_dim, 2 * self.z_dim, _positive("to_latent_layers", to_latent_layers),
                             pixel_norm=False)
        self.lod, self.alpha = self.n_lods - 1, 1.0

    def _from_rgb(self, k: int, x: Tensor) -> Tensor:
        # LeakyReLU twice, as in the authors' model (see the module docstring)
        return F.leaky_relu(F.leaky_relu(self.from_rgb[k](x), _SLOPE), _SLOPE)

    def style(self, x: Tensor, lod: int | None = None, alpha: float | None = None) -> Tensor:
        """The summed style contributions (B, w_dim) of image x at `lod`."""
        lod, alpha = _lod_alpha(self, lod, alpha)
        side = 4 * 2 ** lod
        if x.dim() != 4 or x.shape[1] != self.image_channels or x.shape[2:] != (side, side):
            raise ConfigError(f"the encoder at lod {lod} takes (B, {self.image_channels}, {side}, {side}) images, "
                              f"got {tuple(x.shape)}")
        h, total = self.blocks[lod](self._from_rgb(lod, x))
        if lod > 0 and alpha < 1:
            total = total * alpha
            h = torch.lerp(self._from_rgb(lod - 1, F.avg_pool2d(x, 2)), h, alpha)
        for k in range(lod - 1, -1, -1):
            h, s = self.blocks[k](h)
            total = total + s
        return total

    def forward(self, x: Tensor, y: Tensor | None = None, *, lod: int | None = None,
                alpha: float | None = None) -> tuple[Tensor, Tensor]:
        if y is not None:
            raise ConfigError("the style encoder is not class-conditional: do not pass labels")
        mu, logvar = self.to_latent(self.style(x, lod, alpha)).chunk(2, dim=1)
        return mu, logvar


def _lod_alpha(net, lod, alpha) -> tuple[int, float]:
    lod = net.lod if lod is None else lod
    alpha = net.alpha if alpha is None else alpha
    if isinstance(lod, bool) or int(lod) != lod or not 0 <= lod < net.n_lods:
        raise ConfigError(f"lod must be an integer in 0..{net.n_lods - 1}, got {lod!r}")
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], got {alpha!r}")
    return int(lod), alpha


def build_style_pair(seed: int = 0, **kwargs) -> tuple[StyleEncoder, StyleDecoder]:
    """Encoder and decoder under `seed`. kwargs: z_dim, w_dim, channels, resolution, image_channels,
    fused_min_res (both), mapping_layers / noise / truncation_* (decoder), to_latent_layers /
    bottom_channels (encoder)."""
    shared = {k: kwargs.pop(k) for k in ("z_dim", "w_dim", "channels", "resolution", "image_channels",
                                         "fused_min_res") if k in kwargs}
    enc_keys = {"to_latent_layers", "bottom_channels"}
    enc_kw = {k: v for k, v in kwargs.items() if k in enc_keys}
    dec_kw = {k: v for k, v in kwargs.items() if k not in enc_keys}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return StyleEncoder(**shared, **enc_kw), StyleDecoder(**shared, **dec_kw)


@dataclass
class StyleArch:
    """What a trained style-based pair needs to be rebuilt (stored with its checkpoints).

    The same attribute names as `ImageArch` where the image code reads them (`dataset`, `image_size`,
    `cdim`, `z_dim`, `conditional`, `n_classes`), so sampling, reconstruction and scoring take either.
    """
    dataset: str = "mnist"
    image_size: int = 32              # final resolution: 4 * 2^(len(channels) - 1)
    cdim: int = 1                     # image channels
    channels: tuple = (32, 32, 16, 16)   # feature widths from 4x4 up (paper: 512,512,512,512,256,128,64)
    z_dim: int = 32                   # latent size (paper 512)
    w_dim: int = 32                   # style size (paper 512)
    mapping_layers: int = 3           # paper 8
    conditional: bool = False         # the style pair is unconditional
    n_classes: int = 10

    def __post_init__(self):
        self.channels = _check_channels(self.channels, int(self.image_size))
        for k in ("image_size", "cdim", "z_dim", "w_dim", "mapping_layers"):
            setattr(self, k, _positive(k, getattr(self, k)))
        if self.conditional:
            raise ConfigError("the style-based pair is unconditional (conditional=False)")

    @property
    def n_lods(self) -> int:
        return len(self.channels)

    def to_dict(self) -> dict:
        return {**asdict(self), "channels": list(self.channels)}

    def build(self, seed: int = 0) -> tuple[StyleEncoder, StyleDecoder]:
        return build_style_pair(seed, z_dim=self.z_dim, w_dim=self.w_dim, channels=self.channels,
                                image_channels=self.cdim, mapping_layers=self.mapping_layers)
