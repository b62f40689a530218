"""Reconstruction loss of section 6.4: pixel MSE, or a VGG perceptual loss when VGG weights are present.

The paper (after LORD) replaces the pixel loss on Cars3D by the VGG perceptual loss of Johnson
et al. [25]. The one Trainer computes Rec as the squared error summed over whatever the decoder
returns, so the perceptual term enters through the data, not through the Trainer: the batch
becomes [pixels ; w * VGG16 relu2_2 features] and the decoder returns [D(z) ; w * features of
D(z)], both flat. Rec is then the pixel squared error plus the squared feature error, with
w^2 = vgg_weight * d_pixels / d_features (the feature term counts like `vgg_weight` times the
pixel term per element). The pixel term stays (the encoder reads the fakes' pixels), the VGG
net is frozen and stays out of the checkpoints.

Weights are never downloaded: without torchvision's VGG16 ImageNet file the run says so and
uses pixel MSE.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import DataError, check_choice

__all__ = ["REC_LOSSES", "VGG16_FILE", "find_vgg_weights", "vgg_features", "resolve_rec_loss", "vgg_missing",
           "FeatureTarget", "PerceptualDecoder"]

REC_LOSSES = ("mse", "vgg", "auto")
VGG16_FILE = "vgg16-397923af.pth"                 # torchvision's VGG16 ImageNet weights
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RELU2_2 = 9                                        # vgg16().features[:9] ends at relu2_2


def find_vgg_weights(vgg_weights: str = "auto") -> Path | None:
    """The VGG16 weight file: a given path, or ('auto') torch's hub cache; None when absent."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE if vgg_weights in ("auto", "", None) else Path(vgg_weights)
    return path if path.is_file() else None


def vgg_features(weights: Path) -> nn.Module:
    """Frozen VGG16 up to relu2_2 with ImageNet normalisation: (B, C, H, W) in [0, 1] -> (B, 128, H/2, W/2)."""
    from torchvision.models import vgg16
    net = vgg16()
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    feats = net.features[:RELU2_2].eval()
    for p in feats.parameters():
        p.requires_grad_(False)

    class Normalised(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
            self.body = feats

        def forward(self, x: Tensor) -> Tensor:
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x   # grayscale -> 3 channels
            return self.body((x - self.mean) / self.std)

    return Normalised().eval()


def vgg_missing(vgg_weights) -> DataError:
    """The error of rec_loss='vgg' without its weights file, naming the file and the way out."""
    where = (f"{VGG16_FILE} is not in the torch hub cache ({Path(torch.hub.get_dir()) / 'checkpoints'})"
             if vgg_weights in ("auto", "", None) else f"vgg_weights file {vgg_weights} does not exist")
    return DataError(f"rec_loss='vgg' needs the pretrained VGG16 weights, but {where}: put the file there "
                     f"(README), or use rec_loss=auto (falls back to pixel MSE, said in the outputs) or mse")


def resolve_rec_loss(rec_loss: str, vgg_weights: str = "auto") -> tuple[str, nn.Module | None, str]:
    """Decide the reconstruction loss; never falls back silently.

    Args:
        rec_loss: 'mse', 'vgg' (DataError when its weights are missing) or 'auto' (vgg when its weights are
            present, else mse, with a warning and a note in the outputs).
        vgg_weights: path of the VGG16 weight file, or 'auto' (torch hub cache).
    Returns:
        (kind used: 'mse' or 'vgg', the feature extractor or None, a sentence for the log and metrics).
    """
    check_choice("rec_loss", rec_loss, REC_LOSSES)
    if rec_loss == "mse":
        return "mse", None, "reconstruction loss: pixel MSE (as asked)"
    weights = find_vgg_weights(vgg_weights)
    if weights is None and rec_loss == "vgg":   # asked for by name: an error, never a silent (or loud) MSE
        raise vgg_missing(vgg_weights)
    if weights is None:
        # named without this machine's absolute paths: the message lands in run_info.json and table4.md
        where = (f"{VGG16_FILE} not in the torch hub cache (<torch.hub.get_dir()>/checkpoints)"
                 if vgg_weights in ("auto", "", None) else f"{vgg_weights} not found")
        msg = (f"reconstruction loss: pixel MSE, NOT the VGG perceptual loss the paper uses on Cars3D: "
               f"no pretrained VGG16 weights ({where}; rec_loss={rec_loss!r})")
        warnings.warn(msg, stacklevel=2)
        return "mse", None, msg
    return "vgg", vgg_features(weights), f"reconstruction loss: pixel MSE + VGG16 relu2_2 perceptual loss ({weights.name})"


class FeatureTarget:
    """x (B, C, H, W) -> [x flat ; w * VGG features flat] (B, d_pixels + d_features)."""

    def __init__(self, extractor: nn.Module, image_shape: tuple, vgg_weight: float = 1.0, device="cpu"):
        self.extractor = extractor.to(device)
        with torch.no_grad():
            d_feat = extractor(torch.zeros(1, *image_shape, device=device)).numel()
        self.d_pixels = math.prod(image_shape)
        self.w = math.sqrt(vgg_weight * self.d_pixels / d_feat)

    def __call__(self, x: Tensor) -> Tensor:
        x = x.to(next(iter([*self.extractor.buffers(), *self.extractor.parameters()])).device)
        return torch.cat([x.flatten(1), self.w * self.extractor(x).flatten(1)], dim=1)


class PerceptualDecoder(nn.Module):
    """Wraps a SplitDecoder for training: z -> [D(z) ; w * features of D(z)] (the VGG net is not a submodule)."""

    def __init__(self, decoder: nn.Module, target: FeatureTarget):
        super().__init__()
        self.inner = decoder
        self.z_dim = decoder.z_dim
        object.__setattr__(self, "_target", target)   # kept out of parameters() and state_dict()

    def forward(self, z: Tensor) -> Tensor:
        return self._target(self.inner(z))
