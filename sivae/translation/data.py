"""Data of section 6.4: a procedural dataset with known factors, and loaders for Cars3D and KTH.

Every dataset is a `TranslationData`: 64x64 uint8 images split into train and test, each image
with its class (object identity / car model / person) and, where known, its content (pose).
- `procedural`: generated here (`sivae.translation.render`): toy cars whose identity (body
  proportions, cabin, wheels, colours) is the class and whose pose (24 azimuths x 4 elevations,
  Cars3D's grid) is the content. Every (identity, pose) is rendered, so the truth of any content
  transfer is an image of the dataset, and `render_truth` re-renders it exactly.
- `cars3d`: the .mat release of Reed et al. (2015): one file per car model, `car_*_mesh.mat`,
  whose variable `im` is a uint8 array (H, W, 3, 24 azimuths, 4 elevations) (128x128 in the
  release). 183 models: the first 163 in sorted file order train, the other 20 test (the paper
  gives the 163/20 split, not which models; this choice is ours).
- `kth`: grayscale frames per person, extracted from the KTH videos (the .avi files are not
  read here): any .png/.jpg under the root whose path names `personNN` (e.g.
  `person01_boxing_d1/0001.png`). No content labels. 10% of each person's frames (a seeded
  choice) are held out for testing, as in Appendix 9.3.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..batches import epoch_batches
from ..errors import ConfigError, DataError
from .render import N_AZIMUTH, N_ELEVATION, render_identities, sample_identities

__all__ = ["TranslationData", "DATASETS", "get_translation_data", "make_procedural", "load_cars3d", "load_kth",
           "make_batch_fn", "to_float", "render_truth", "channels_of", "IMAGE_SIZE"]

IMAGE_SIZE = 64  # Appendix 9.3: all images resized to 64x64


@dataclass
class TranslationData:
    """Images (uint8, (N, C, 64, 64)) with class and, where known, content labels, per split."""
    name: str
    train: Tensor
    train_class: Tensor
    train_content: Tensor | None
    test: Tensor
    test_class: Tensor
    test_content: Tensor | None
    n_content: int | None = None          # size of the content grid (96 for Cars3D / procedural)
    identities: dict | None = None        # procedural only: class id -> identity parameters (for rendering)

    @property
    def channels(self) -> int:
        return int(self.train.shape[1])

    @property
    def has_truth(self) -> bool:
        """True when every (class, content) of a split is an image of it (transfer truth by lookup)."""
        return self.train_content is not None and self.n_content is not None

    def lookup(self, split: str) -> dict:
        """{(class, content): index} of a split's images."""
        cls, con = getattr(self, f"{split}_class"), getattr(self, f"{split}_content")
        if con is None:
            raise DataError(f"dataset {self.name!r} has no content labels, so no transfer ground truth")
        return {(int(a), int(b)): i for i, (a, b) in enumerate(zip(cls.tolist(), con.tolist()))}

    def summary(self) -> str:
        n_tr, n_te = len(self.train_class.unique()), len(self.test_class.unique())
        return (f"{self.name}: {len(self.train)} train images ({n_tr} classes), {len(self.test)} test images "
                f"({n_te} classes), {self.channels} channel(s), 64x64")


def to_float(x: Tensor) -> Tensor:
    """uint8 images -> float32 in [0, 1]."""
    return x.float().div_(255.0)


def _pose_index(azimuth: int, elevation: int) -> int:
    return azimuth * N_ELEVATION + elevation


# ------------------------------------------------------------------- procedural

def make_procedural(n_classes: int, n_test_classes: int, seed: int) -> TranslationData:
    """The procedural toy-car dataset: every identity at all 24 x 4 poses, rendered at 64x64.

    Args:
        n_classes: identities in the training split. n_test_classes: held-out identities.
        seed: identities are drawn from this seed (same seed, same images, bit for bit).
    Returns:
        TranslationData; content = azimuth * 4 + elevation, classes numbered 0.. over both splits.
    """
    for name, v in (("n_classes", n_classes), ("n_test_classes", n_test_classes)):
        if int(v) != v or v < 1:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}")
    n_classes, n_test_classes = int(n_classes), int(n_test_classes)
    idents = sample_identities(n_classes + n_test_classes, seed)
    images = render_identities(idents)                                  # (I, 96, 3, 64, 64) uint8
    n_pose = N_AZIMUTH * N_ELEVATION
    cls = torch.arange(len(idents)).repeat_interleave(n_pose)
    con = torch.arange(n_pose).repeat(len(idents))
    flat = images.reshape(-1, *images.shape[2:])
    cut = n_classes * n_pose
    return TranslationData("procedural", flat[:cut], cls[:cut], con[:cut], flat[cut:], cls[cut:], con[cut:],
                           n_content=n_pose, identities=dict(enumerate(idents)))


def render_truth(data: TranslationData, classes: Tensor, contents: Tensor) -> Tensor:
    """Render, from the identity parameters, the image of each (class, content) pair (procedural only).

    Args:
        data: a procedural TranslationData. classes, contents: (P,) class ids and pose indices.
    Returns:
        (P, 3, 64, 64) uint8, identical to the dataset's image of that pair.
    """
    if data.identities is None:
        raise DataError(f"dataset {data.name!r} has no renderer; only 'procedural' does")
    idents = [data.identities[int(c)] for c in classes]
    az, el = contents // N_ELEVATION, contents % N_ELEVATION
    return render_identities(idents, azimuths=az.tolist(), elevations=el.tolist())


# ----------------------------------------------------------------------- Cars3D

def _resize(img: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 -> (C, 64, 64) uint8, antialiased (PIL), centre-cropped to a square first."""
    from PIL import Image
    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    pil = Image.fromarray(np.ascontiguousarray(img[..., 0] if img.shape[2] == 1 else img))  # L or RGB
    out = np.asarray(pil.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS))
    return (out[None] if out.ndim == 2 else out.transpose(2, 0, 1)).copy()


def _read_mesh(path: Path) -> np.ndarray:
    """One Cars3D file -> (24 * 4, 3, 64, 64) uint8 in content order azimuth * 4 + elevation."""
    from scipy.io import loadmat
    try:
        mat = loadmat(str(path))
    except Exception as e:  # scipy raises several kinds for truncated or foreign files
        raise DataError(f"Cars3D file {path} is not a readable .mat file ({type(e).__name__}: {e})") from None
    if "im" not in mat:
        raise DataError(f"Cars3D file {path} has no variable 'im' (found: {sorted(k for k in mat if not k.startswith('__'))})")
    im = mat["im"]
    if im.ndim != 5 or im.shape[2] != 3 or im.shape[3:] != (N_AZIMUTH, N_ELEVATION):
        raise DataError(f"Cars3D file {path}: 'im' has shape {im.shape}, expected (H, W, 3, {N_AZIMUTH}, {N_ELEVATION})")
    if im.dtype != np.uint8:
        raise DataError(f"Cars3D file {path}: 'im' has dtype {im.dtype}, expected uint8")
    return np.stack([_resize(im[:, :, :, a, e]) for a in range(N_AZIMUTH) for e in range(N_ELEVATION)])


def load_cars3d(root, n_test_classes: int = 20, max_classes: int | None = None) -> TranslationData:
    """Cars3D from the folder of `*.mat` files of Reed et al. (e.g. data/cars/ of their archive).

    Args:
        root: folder holding the car_*_mesh.mat files. n_test_classes: the last models (sorted by file
        name) held out (paper: 20 of 183). max_classes: read only the first files (quick tests).
    Returns:
        TranslationData with class = model index, content = azimuth * 4 + elevation.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Cars3D folder {root} does not exist; download the .mat release of Reed et al. "
                        f"(nips2015-analogy-data) and point data_root at its cars/ folder")
    files = sorted(root.glob("*.mat"))[:max_classes]
    if len(files) <= n_test_classes:
        raise DataError(f"Cars3D folder {root} holds {len(files)} .mat files; need more than n_test_classes={n_test_classes}")
    images = torch.from_numpy(np.stack([_read_mesh(f) for f in files]))  # (M, 96, 3, 64, 64)
    n_pose = N_AZIMUTH * N_ELEVATION
    cls = torch.arange(len(files)).repeat_interleave(n_pose)
    con = torch.arange(n_pose).repeat(len(files))
    flat, cut = images.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE), (len(files) - n_test_classes) * n_pose
    return TranslationData("cars3d", flat[:cut], cls[:cut], con[:cut], flat[cut:], cls[cut:], con[cut:],
                           n_content=n_pose)


# -------------------------------------------------------------------------- KTH

PERSON = re.compile(r"person(\d+)", re.IGNORECASE)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _read_frame(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            gray = np.asarray(im.convert("L"))
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"KTH frame {path} is not a readable image ({type(e).__name__})") from None
    return _resize(gray[..., None])


def load_kth(root, test_fraction: float = 0.1, seed: int = 0, max_frames: int | None = None) -> TranslationData:
    """KTH frames (grayscale) from a folder tree; the class is the person, there is no content label.

    Args:
        root: folder with frames whose path contains personNN (e.g. person07_walking_d2/0001.png).
        test_fraction: share of each person's frames held out (paper: 10%). seed: the held-out choice.
        max_frames: keep at most this many frames per person (evenly spaced; None: all).
    Returns:
        TranslationData with 1 channel, classes = person numbers, content None.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"KTH folder {root} does not exist; extract the videos' frames to "
                        f"<root>/personNN_<action>_<scenario>/NNNN.png (e.g. with ffmpeg)")
    per_person: dict[int, list[Path]] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            m = PERSON.search(str(p.relative_to(root)))
            if m is None:
                raise DataError(f"KTH frame {p} has no personNN in its path, so its person is unknown")
            per_person.setdefault(int(m.group(1)), []).append(p)
    if len(per_person) < 2:
        raise DataError(f"KTH folder {root} holds frames of {len(per_person)} person(s); need at least 2")
    rng = np.random.default_rng(seed)
    parts = {"train": ([], []), "test": ([], [])}
    for person, paths in sorted(per_person.items()):
        if max_frames is not None and len(paths) > max_frames:
            paths = [paths[i] for i in np.linspace(0, len(paths) - 1, max_frames).round().astype(int)]
        test = set(rng.choice(len(paths), max(1, round(test_fraction * len(paths))), replace=False).tolist())
        for i, p in enumerate(paths):
            imgs, labels = parts["test" if i in test else "train"]
            imgs.append(_read_frame(p)), labels.append(person)
    tr, te = (tuple(torch.from_numpy(np.stack(v)) if v else None for v in parts[k]) for k in ("train", "test"))
    return TranslationData("kth", tr[0], tr[1], None, te[0], te[1], None)


# -------------------------------------------------------------------- registry

DATASETS = {
    "procedural": lambda cfg: make_procedural(cfg["n_classes"], cfg["n_test_classes"], cfg["seed"]),
    "cars3d": lambda cfg: load_cars3d(_root(cfg, "cars3d")),
    "kth": lambda cfg: load_kth(_root(cfg, "kth"), seed=cfg["seed"]),
}


CHANNELS = {"procedural": 3, "cars3d": 3, "kth": 1}


def channels_of(name: str) -> int:
    """Image channels of a dataset (raises ConfigError for an unknown name)."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of: {', '.join(sorted(DATASETS))}")
    return CHANNELS[name]


def _root(cfg: dict, name: str) -> str:
    if cfg.get("data_root") in (None, "", "none"):
        raise ConfigError(f"dataset {name!r} needs data_root (the folder of its files)")
    return cfg["data_root"]


def get_translation_data(name: str, *, n_classes: int = 40, n_test_classes: int = 10, seed: int = 0,
                         data_root: str = "none") -> TranslationData:
    """Build or load a dataset by name; unknown names raise ConfigError.

    Args:
        name: 'procedural', 'cars3d' or 'kth'. n_classes, n_test_classes: procedural identities per split.
        seed: procedural identities, KTH held-out frames. data_root: folder of the Cars3D/KTH files.
    Returns:
        TranslationData.
    """
    channels_of(name)  # checks the name
    return DATASETS[name](dict(n_classes=n_classes, n_test_classes=n_test_classes, seed=seed, data_root=data_root))


def make_batch_fn(images: Tensor, batch_size: int, seed: int):
    """A Trainer batch function: epoch e visits the images in a permutation drawn from (seed, e).

    The batch of step t depends on t only (not on the generator the Trainer passes), so a resumed
    run draws exactly the batches the uninterrupted run would have drawn.

    Args:
        images: (N, C, H, W) uint8. batch_size: images per batch. seed: permutation seed.
    Returns:
        batch_fn(step, generator) -> (batch_size, C, H, W) float32 in [0, 1].
    """
    indices, _ = epoch_batches(len(images), batch_size, seed, seed_stride=100_003)

    def batch_fn(step: int, generator: torch.Generator | None = None) -> Tensor:
        return to_float(images[indices(step)])

    return batch_fn
