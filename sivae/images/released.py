"""Import of the authors' released weights into our networks, through an explicit key map.

Kinds:
    "celeba-hq", "ffhq": the style-based models (256x256, z = w = 512) of the authors' style_soft_intro_vae code,
        into sivae.images.style (StyleEncoder, StyleDecoder). Download links in the authors' README
        (style_soft_intro_vae/README.md, "Pretrained models"):
          CelebA-HQ 256, celebahq_fid_18.63_epoch_230.pth:
            https://mega.nz/file/sJkS2BAC#aGFwJIPvOTIP147GwBGHOJgwRMC_NYKHT_QK7abb0VE
            https://www.mediafire.com/file/fgf0a85z5d0jtu5/celebahq_fid_18.63_epoch_230.pth/file
          FFHQ 256, ffhq_fid_17.55_epoch_270.pth:
            https://mega.nz/file/YJ1SkBwI#9t0ZEZTC0WWG0NUsJg2OwZujOuUXKn_ehP6fba1pV7o
            https://www.mediafire.com/file/x6jkyg4rlkqc4hl/ffhq_fid_17.55_epoch_270.pth/file
    "cifar10": a checkpoint of the authors' residual image model (soft_intro_vae/train_soft_intro_vae.py, written
        as {"epoch": ..., "model": state_dict}) into sivae.images.models (ImageEncoder, ImageDecoder). Their README
        links no released CIFAR-10 file; this reads what their training script writes. Module for module the two
        residual networks correspond one to one, with the same tensor shapes; only the names differ.

NOTHING HERE HAS BEEN CHECKED AGAINST THE REAL FILES (they cannot be downloaded in this environment). The layout was
read from the authors' source code (see STYLE_LAYOUT_NOTES) and the tests use synthetic files in that layout.

Files are read with torch.load(weights_only=True) only: nothing in the file is executed. The authors' full training
checkpoints also hold their loss tracker, whose pickled objects are instances of `tracker.RunningMeanTorch` /
`tracker.RunningMean`; those two names (and only those) are resolved to inert local stand-ins so that such a
file can still be opened without running any of its code. Any other object in the file is refused.
A missing, corrupt or foreign file raises one sivae.errors.CheckpointError naming the file and the first tensor
that does not fit (its key, the expected shape and the found one).
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import CheckpointError, ConfigError
from .models import ImageDecoder, ImageEncoder, arch_for
from .style import StyleDecoder, StyleEncoder, authors_channels

__all__ = ["KINDS", "STYLE_CONFIGS", "load_released", "read_checkpoint", "style_key_map", "residual_key_map",
           "build_style_for", "STYLE_LAYOUT_NOTES"]

# The authors' configuration of both released style models (configs/celeba-hq256.yaml, configs/ffhq256.yaml,
# model.py): LAYER_COUNT 7, START_CHANNEL_COUNT 64, MAX_CHANNEL_COUNT 512, LATENT_SPACE_SIZE 512,
# MAPPING_LAYERS 8; the style-to-latent mapping has 3 layers; stride-2 convs from 128x128 on.
STYLE_CONFIGS = {
    "celeba-hq": dict(layer_count=7, startf=64, maxf=512, latent=512, mapping_layers=8, to_latent_layers=3,
                      image_channels=3, fused_min_res=128),
    "ffhq": dict(layer_count=7, startf=64, maxf=512, latent=512, mapping_layers=8, to_latent_layers=3,
                 image_channels=3, fused_min_res=128),
}
KINDS = (*STYLE_CONFIGS, "cifar10")

STYLE_LAYOUT_NOTES = """\
checkpoint: torch.save of {"models": {name: state_dict}, "auxiliary": {...optimiser/scheduler/tracker states}}
  (checkpointer.py); model names (train_style_soft_intro_vae.py): discriminator, generator, mapping_fl, mapping_tl,
  dlatent_avg, and the evaluation copies discriminator_s, generator_s, mapping_fl_s, mapping_tl_s (the figure
  scripts load the *_s ones and dlatent_avg).
generator: const (1, C0, 4, 4); decode_block.{i}: conv_1.weight (i > 0; transposed (in, out, 3, 3) from 128 px,
  else (out, in, 3, 3)), conv_2.weight, noise_weight_{1,2} / bias_{1,2} (1, C, 1, 1), style_{1,2}.{weight,bias}
  (2C, w), blur.weight (C, 1, 3, 3) fixed; to_rgb.{i}.to_rgb.{weight,bias}. Block i renders 4 * 2^i pixels.
discriminator: from_rgb.{i}.from_rgb.{weight,bias}; encode_block.{i}: conv_1.weight, bias_1, conv_2.weight, bias_2,
  style_1 (w, 2 C_in), style_2 (w, 2 C_out), blur.weight fixed. Block i reads 2^(L + 1 - i) pixels (0 = largest).
mapping_fl: map_blocks.{i}.fc.{weight,bias}; mapping_tl: map_blocks.{i}.fc.{weight,bias} (last: 2 z rows, mu then
  logvar); dlatent_avg: buff (2 L, w)."""


class _InertTrackerObject:
    """Stand-in for the authors' loss-tracker objects: receives their pickled attributes, runs nothing."""


class _InertRunningMean(_InertTrackerObject):
    pass


class _InertRunningMeanTorch(_InertTrackerObject):
    pass


_STAND_INS = [(_InertRunningMean, "tracker.RunningMean"), (_InertRunningMeanTorch, "tracker.RunningMeanTorch")]


def read_checkpoint(path: str | os.PathLike):
    """torch.load(path, weights_only=True) on the CPU, or CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        with torch.serialization.safe_globals(_STAND_INS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint {path} was refused: it holds objects that loading would have to run code "
                              f"for (only tensors and plain containers are read): {first}") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, AttributeError,
            TypeError, ImportError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch checkpoint: {first}") from None


# ------------------------------------------------------------------------------------------- style models
def build_style_for(cfg: dict, noise: str = "random") -> tuple[StyleEncoder, StyleDecoder]:
    """Our encoder and decoder sized like the authors' model of configuration `cfg` (see STYLE_CONFIGS)."""
    channels, bottom = authors_channels(cfg["startf"], cfg["maxf"], cfg["layer_count"])
    shared = dict(z_dim=cfg["latent"], w_dim=cfg["latent"], channels=channels, image_channels=cfg["image_channels"],
                  fused_min_res=cfg["fused_min_res"])
    return (StyleEncoder(**shared, to_latent_layers=cfg["to_latent_layers"], bottom_channels=bottom),
            StyleDecoder(**shared, mapping_layers=cfg["mapping_layers"], noise=noise))


def style_key_map(encoder: StyleEncoder, decoder: StyleDecoder, smoothed: bool = True) -> dict:
    """{"encoder" | "decoder": {our key: (their model name, their key)}} for the authors' style checkpoints.
    `smoothed`: take the evaluation copies (*_s), as the authors' figure scripts do."""
    s = "_s" if smoothed else ""
    n = encoder.n_lods
    enc, dec = {}, {}
    for k in range(n):
        theirs = n - 1 - k   # their encoder counts blocks from the largest resolution down
        enc[f"from_rgb.{k}.weight"] = (f"discriminator{s}", f"from_rgb.{theirs}.from_rgb.weight")
        enc[f"from_rgb.{k}.bias"] = (f"discriminator{s}", f"from_rgb.{theirs}.from_rgb.bias")
        for ours, their in (("conv_weight", "conv_1.weight"), ("bias1", "bias_1"), ("down_weight", "conv_2.weight"),
                            ("bias2", "bias_2"), ("style1.weight", "style_1.weight"), ("style1.bias", "style_1.bias"),
                            ("style2.weight", "style_2.weight"), ("style2.bias", "style_2.bias")):
            enc[f"blocks.{k}.{ours}"] = (f"discriminator{s}", f"encode_block.{theirs}.{their}")
    for j in range(len(encoder.to_latent.layers)):
        for p in ("weight", "bias"):
            enc[f"to_latent.layers.{j}.{p}"] = (f"mapping_tl{s}", f"map_blocks.{j}.fc.{p}")
    for j in range(len(decoder.mapping.layers)):
        for p in ("weight", "bias"):
            dec[f"mapping.layers.{j}.{p}"] = (f"mapping_fl{s}", f"map_blocks.{j}.fc.{p}")
    dec["const"] = (f"generator{s}", "const")
    for k in range(decoder.n_lods):
        pairs = [("conv_weight", "conv_2.weight"), ("noise_scale1", "noise_weight_1"), ("noise_scale2", "noise_weight_2"),
                 ("bias1", "bias_1"), ("bias2", "bias_2"), ("style1.weight", "style_1.weight"),
                 ("style1.bias", "style_1.bias"), ("style2.weight", "style_2.weight"), ("style2.bias", "style_2.bias")]
        if k > 0:
            pairs.insert(0, ("up_weight", "conv_1.weight"))
        for ours, their in pairs:
            dec[f"blocks.{k}.{ours}"] = (f"generator{s}", f"decode_block.{k}.{their}")
        dec[f"to_rgb.{k}.weight"] = (f"generator{s}", f"to_rgb.{k}.to_rgb.weight")
        dec[f"to_rgb.{k}.bias"] = (f"generator{s}", f"to_rgb.{k}.to_rgb.bias")
    dec["w_avg"] = ("dlatent_avg", "buff")
    return {"encoder": enc, "decoder": dec}


def _style_fixed_keys(encoder: StyleEncoder, decoder: StyleDecoder, smoothed: bool) -> dict:
    """Their tensors that we know and do not load ({(model, key): expected shape}): the fixed blur kernels."""
    s = "_s" if smoothed else ""
    n = encoder.n_lods
    fixed = {(f"discriminator{s}", f"encode_block.{n - 1 - k}.blur.weight"): (c, 1, 3, 3)
             for k, c in enumerate(encoder.channels)}
    fixed.update({(f"generator{s}", f"decode_block.{k}.blur.weight"): (c, 1, 3, 3) for k, c in enumerate(decoder.channels)})
    return fixed


# ------------------------------------------------------------------------------------------ residual model
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _residual_block(ours: str, theirs: str, expand: bool) -> dict:
    m = {f"{ours}.body.0.weight": f"{theirs}.conv1.weight", f"{ours}.body.3.weight": f"{theirs}.conv2.weight"}
    m.update({f"{ours}.body.1.{p}": f"{theirs}.bn1.{p}" for p in _BN})
    m.update({f"{ours}.body.4.{p}": f"{theirs}.bn2.{p}" for p in _BN})
    if expand:
        m[f"{ours}.shortcut.weight"] = f"{theirs}.conv_expand.weight"
    return m


def residual_key_map(encoder: ImageEncoder, decoder: ImageDecoder) -> dict:
    """{"encoder" | "decoder": {our key: ("model", their key)}} for the authors' residual image model
    (their SoftIntroVAE: encoder.main / encoder.fc, decoder.fc / decoder.main, blocks named res_in_<size>)."""
    arch = encoder.arch
    if arch.conditional:
        raise ConfigError("the residual key map covers the unconditional model only")
    w, n, size = arch.channels, len(arch.channels), arch.image_size
    enc = {"features.0.weight": "encoder.main.0.weight"}
    enc.update({f"features.1.{p}": f"encoder.main.1.{p}" for p in _BN})
    for j in range(n - 1):
        enc.update(_residual_block(f"features.{4 + 2 * j}", f"encoder.main.res_in_{size // 2 ** (j + 1)}",
                                   w[j] != w[j + 1]))
    enc.update(_residual_block(f"features.{4 + 2 * (n - 1)}", f"encoder.main.res_in_{size // 2 ** n}", False))
    enc.update({"fc.weight": "encoder.fc.weight", "fc.bias": "encoder.fc.bias"})
    dec = {"fc.0.weight": "decoder.fc.0.weight", "fc.0.bias": "decoder.fc.0.bias"}
    side, c = size // 2 ** n, w[-1]
    for j, b in enumerate(reversed(w)):
        dec.update(_residual_block(f"body.{2 * j}", f"decoder.main.res_in_{side * 2 ** j}", c != b))
        c = b
    dec.update(_residual_block(f"body.{2 * n}", f"decoder.main.res_in_{side * 2 ** n}", False))
    dec.update({f"body.{2 * n + 1}.weight": "decoder.main.predict.weight",
                f"body.{2 * n + 1}.bias": "decoder.main.predict.bias"})
    return {"encoder": {k: ("model", v) for k, v in enc.items()}, "decoder": {k: ("model", v) for k, v in dec.items()}}


# ------------------------------------------------------------------------------------------------ loading
def _fill(path: Path, nets: dict, key_map: dict, groups: dict, fixed: dict):
    """Copy every mapped tensor into `nets`, checking presence and shape in map order, then that nothing is left."""
    used = set(fixed)
    for (group, key), shape in fixed.items():
        t = groups[group].get(key)
        if not isinstance(t, Tensor) or tuple(t.shape) != shape:
            found = tuple(t.shape) if isinstance(t, Tensor) else ("missing" if t is None else type(t).__name__)
            raise CheckpointError(f"checkpoint {path}: tensor {group}/{key} does not fit: expected shape {shape}, "
                                  f"found {found}")
    for name, net in nets.items():
        ours = net.state_dict()
        if set(ours) != set(key_map[name]):   # a bug of the map itself, not of the file
            raise RuntimeError(f"key map of the {name} does not cover {sorted(set(ours) ^ set(key_map[name]))}")
        new = {}
        for our_key, (group, key) in key_map[name].items():
            expected = tuple(ours[our_key].shape)
            t = groups[group].get(key)
            if not isinstance(t, Tensor):
                found = "missing" if t is None else f"a {type(t).__name__}, not a tensor"
                raise CheckpointError(f"checkpoint {path}: tensor {group}/{key} (our {name} {our_key}) does not fit: "
                                      f"expected shape {expected}, found {found}")
            if tuple(t.shape) != expected:
                raise CheckpointError(f"checkpoint {path}: tensor {group}/{key} (our {name} {our_key}) does not fit: "
                                      f"expected shape {expected}, found {tuple(t.shape)}")
            new[our_key] = t.detach().to(ours[our_key].dtype).clone()
            used.add((group, key))
        net.load_state_dict(new, strict=True)
    for group, sd in groups.items():
        for key, t in sd.items():
            if (group, key) not in used:
                found = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise CheckpointError(f"checkpoint {path}: tensor {group}/{key} does not fit: this layout has no such "
                                      f"tensor (expected shape: none, found {found})")


def _group(path: Path, container, name: str) -> dict:
    sd = container.get(name) if isinstance(container, dict) else None
    if not isinstance(sd, dict):
        raise CheckpointError(f"checkpoint {path}: no state dict {name!r} (found entries: "
                              f"{sorted(container) if isinstance(container, dict) else type(container).__name__}); "
                              f"is it a checkpoint of another kind?")
    return sd


def load_released(path: str | os.PathLike, kind: str = "ffhq", *, smoothed: bool = True, config: dict | None = None,
                  noise: str = "random") -> tuple[nn.Module, nn.Module]:
    """The authors' released weights in our networks, in eval mode: (encoder, decoder).

    Args:
        path: the .pth file.  kind: one of KINDS.
        smoothed: style kinds: the evaluation copies (*_s) rather than the last training state.
        config: style kinds: overrides of STYLE_CONFIGS[kind] (tests: tiny models); cifar10: kwargs of
            sivae.images.models.arch_for (default: the paper's CIFAR-10 model, 32x32, widths 64-128-256, z 128).
        noise: style decoder noise mode (the authors' figures render with noise on).
    Raises:
        CheckpointError (file missing, corrupt, refused, or a tensor that does not fit), ConfigError (kind).
    """
    path = Path(path)
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    data = read_checkpoint(path)
    if kind == "cifar10":
        arch = arch_for("cifar10", **(config or {}))
        enc, dec = ImageEncoder(arch), ImageDecoder(arch)
        groups = {"model": _group(path, data, "model")}
        _fill(path, {"encoder": enc, "decoder": dec}, residual_key_map(enc, dec), groups, {})
    else:
        cfg = {**STYLE_CONFIGS[kind], **(config or {})}
        enc, dec = build_style_for(cfg, noise=noise)
        models = _group(path, data, "models")
        key_map = style_key_map(enc, dec, smoothed)
        fixed = _style_fixed_keys(enc, dec, smoothed)
        names = sorted({g for m in key_map.values() for g, _ in m.values()} | {g for g, _ in fixed})
        groups = {name: _group(path, models, name) for name in names}
        _fill(path, {"encoder": enc, "decoder": dec}, key_map, groups, fixed)
    return enc.eval(), dec.eval()
