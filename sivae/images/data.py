"""Image datasets: torchvision's classes and on-disk layouts, a folder loader, and `fetch`.

The default profile uses MNIST and Fashion-MNIST, stored in `data/` exactly as torchvision's
`MNIST`/`FashionMNIST` classes keep them (`data/<Name>/raw/<idx file>`, uncompressed) and pinned
by `data.dvc`. `python -m sivae.images.data fetch` fills that folder from torchvision's downloads when
online, or from a local mirror of `.npz` files when not (see ../shared/data/README.md for the
format); either way the files are checked against the official md5s of the uncompressed IDX
files, so both paths produce byte-identical `data/`.

Datasets only the `paper` profile needs (CIFAR-10, SVHN, folders such as CelebA-HQ) live in a
separate root (`data_paper/` by default), so a default user's `dvc status` stays clean; they
are checked against torchvision's own md5 lists when loaded.

Preprocessing is the paper's (public code): pixels to [0, 1] (ToTensor), no augmentation;
splits are the datasets' official train/test splits; a folder is split by sorted file name.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, DataError, check_choice

__all__ = ["ImageData", "DATASETS", "DEFAULT_DATASETS", "load_image_dataset", "fetch", "verify",
           "load_image_folder", "root_for", "write_idx"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
SPLITS = ("train", "test")


@dataclass
class ImageData:
    """Images as float32 N x C x H x W in [0, 1] with int64 labels (-1 where there are none)."""
    x: Tensor
    y: Tensor
    name: str
    split: str

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def shape(self) -> tuple:
        """(C, H, W) of one image."""
        return tuple(self.x.shape[1:])


@dataclass(frozen=True)
class IdxSpec:
    """An MNIST-format dataset: torchvision class name, the four raw files and their official md5s."""
    folder: str
    md5: dict  # raw file name -> md5 of the uncompressed file
    mirror: str  # prefix of the mirror's npz files: <mirror>_train.npz, <mirror>_test.npz
    url: str


IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

IDX_DATASETS = {
    "mnist": IdxSpec("MNIST", {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"}, "mnist", "http://yann.lecun.com/exdb/mnist/"),
    "fashionmnist": IdxSpec("FashionMNIST", {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965"}, "fashionmnist",
        "https://github.com/zalandoresearch/fashion-mnist"),
}
PAPER_DATASETS = ("cifar10", "svhn")
DATASETS = (*IDX_DATASETS, *PAPER_DATASETS)   # plus "folder:<path>"
DEFAULT_DATASETS = tuple(IDX_DATASETS)       # the ones data.dvc pins


def root_for(name: str, data_root: str | os.PathLike, paper_data_root: str | os.PathLike) -> Path:
    """The root a dataset is read from: data_root for the DVC-pinned ones, else paper_data_root."""
    return Path(data_root if name in DEFAULT_DATASETS else paper_data_root)


def md5sum(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """md5 hex digest of a file."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ loading
def load_image_dataset(name: str, split: str = "train", root: str | os.PathLike = "data",
                       limit: int | None = None, **folder_kw) -> ImageData:
    """Load a dataset split as an ImageData.

    Args:
        name: one of DATASETS, or "folder:<path>" for a folder of image files.
        split: "train" or "test" ("all" too for a folder).
        root: the data root (torchvision layout); ignored for folders.
        limit: keep only the first `limit` images.
        **folder_kw: size, channels, test_fraction for folders (see load_image_folder).
    Returns:
        ImageData with x in [0, 1].
    """
    if name.startswith("folder:"):
        data = load_image_folder(name[len("folder:"):], split=split, **folder_kw)
    else:
        check_choice("dataset", name, DATASETS + ("folder:<path>",))
        check_choice("split", split, SPLITS)
        loader = _load_idx if name in IDX_DATASETS else _load_torchvision
        data = loader(name, split, Path(root))
    if limit is not None:
        if int(limit) < 1:
            raise ConfigError(f"limit must be a positive integer, got {limit!r}")
        data = ImageData(data.x[:int(limit)], data.y[:int(limit)], data.name, data.split)
    return data


SHAPES = {"mnist": (1, 28, 28), "fashionmnist": (1, 28, 28), "cifar10": (3, 32, 32), "svhn": (3, 32, 32)}
TORCHVISION_FILES = {"cifar10": {"train": [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)],
                                 "test": ["cifar-10-batches-py/test_batch"]},
                     "svhn": {"train": ["train_32x32.mat"], "test": ["test_32x32.mat"]}}


def _readable(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False


def check_dataset(name: str, split: str = "train", root: str | os.PathLike = "data", size: int = 64,
                  channels: int = 3) -> tuple:
    """A stage's preflight: DataError unless the split is present and readable, in a fraction of a second
    (MNIST-format: files complete and of the official md5, cached; CIFAR-10 / SVHN: torchvision's files
    present and readable; a folder: it exists and holds image files). Nothing is loaded.

    Returns:
        the (C, H, W) of the images load_image_dataset will give (a folder: channels, size, size).
    """
    if name.startswith("folder:"):
        folder = Path(name[len("folder:"):])
        if not folder.is_dir():
            raise DataError(f"image folder {folder} does not exist")
        if not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.rglob("*")):
            raise DataError(f"image folder {folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
        check_choice("channels", channels, (1, 3))
        return (int(channels), int(size), int(size))
    check_choice("dataset", name, DATASETS + ("folder:<path>",))
    check_choice("split", split, SPLITS)
    root = Path(root)
    if name in IDX_DATASETS:
        files = [root / IDX_DATASETS[name].folder / "raw" / f for f in IDX_FILES[split]]
    else:
        files = [root / f for f in TORCHVISION_FILES[name][split]]
    missing = [f for f in files if not f.is_file()]
    if missing:
        if name in IDX_DATASETS:
            raise _missing(name, root, missing)
        raise DataError(f"dataset {name!r} ({split}) is missing under {root}: {', '.join(map(str, missing))} not "
                        f"found. Download it with `python -m sivae.images.data fetch {name} --root {root}`")
    unreadable = [f for f in files if not _readable(f)]
    if unreadable:
        raise DataError(f"dataset {name!r}: {', '.join(map(str, unreadable))} cannot be read (permissions?)")
    if name in IDX_DATASETS:
        for f in files:
            check_idx_file(f)
            check_official_md5(name, f, root)
    return SHAPES[name]


def _missing(name: str, root: Path, files) -> DataError:
    return DataError(f"dataset {name!r} is missing from {root}: {', '.join(str(f) for f in files)} not found. "
                     f"Fill it with `python -m sivae.images.data fetch {name} --root {root}` (online), or "
                     f"`python -m sivae.images.data fetch {name} --root {root} --mirror DIR` with a local mirror folder "
                     f"(format: ../shared/data/README.md)")


def _load_idx(name: str, split: str, root: Path) -> ImageData:
    """MNIST-format files through torchvision's own class (its raw/ layout), with clear errors."""
    from torchvision import datasets
    spec = IDX_DATASETS[name]
    raw = root / spec.folder / "raw"
    files = [raw / f for f in IDX_FILES[split]]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise _missing(name, root, missing)
    for f in files:
        check_idx_file(f)
        check_official_md5(name, f, root)
    cls = getattr(datasets, spec.folder)
    try:
        ds = cls(str(root), train=split == "train", download=False)
    except Exception as e:  # torchvision raises RuntimeError/ValueError for bad files
        raise DataError(f"could not read {name} from {raw}: {e}. Re-fetch it with "
                        f"`python -m sivae.images.data fetch {name} --root {root}`") from None
    x = ds.data.unsqueeze(1).float().div_(255)
    return ImageData(x, ds.targets.long(), name, split)


def check_idx_file(path: Path):
    """Raise DataError unless `path` is a complete IDX file (ubyte, header consistent with size)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] != 0x08 or head[3] not in (1, 3):
            raise DataError(f"{path} is not an IDX ubyte file (bad header); re-fetch the dataset "
                            f"with `python -m sivae.images.data fetch`")
        dims = struct.unpack(">" + "I" * head[3], f.read(4 * head[3]))
    expected = 4 + 4 * len(dims) + int(np.prod(dims))
    if size != expected:
        raise DataError(f"{path} is truncated or corrupt: {size} bytes, its header says {expected}; "
                        f"re-fetch the dataset with `python -m sivae.images.data fetch`")


# The official files' sizes in bytes (from their IDX headers): a file of this size must have the official md5.
OFFICIAL_SIZES = {"train-images-idx3-ubyte": 47_040_016, "train-labels-idx1-ubyte": 60_008,
                  "t10k-images-idx3-ubyte": 7_840_016, "t10k-labels-idx1-ubyte": 10_008}
_md5_memo: dict = {}


def _md5_cache_file() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sivae" / "md5.json"


def cached_md5(path: Path) -> str:
    """md5 of a file, remembered in memory and in ~/.cache/sivae/md5.json by (absolute path, size, mtime,
    inode, ctime).

    The mtime alone can be put back (`touch -d`, `os.utime`, `cp -p`, `rsync -t`, tar): the ctime cannot, as
    every write and every change of the mtime sets it to now, and a copy is a new inode. So a file whose
    bytes changed after its md5 was remembered is hashed again, whatever its mtime says.
    """
    import json
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_ctime_ns}"
    if key in _md5_memo:
        return _md5_memo[key]
    cache_file = _md5_cache_file()
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key not in cache:
        cache[key] = md5sum(path)
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache))
            os.replace(tmp, cache_file)
        except OSError:
            pass  # a read-only home: the check still ran, only its memo is lost
    _md5_memo[key] = cache[key]
    return cache[key]


def check_official_md5(name: str, path: Path, root: Path):
    """Refuse a damaged copy of an official file: a file of the official size must have the official md5.

    IDX files of other sizes (small self-made sets, e.g. in tests) are not the official files and are
    used as they are (check_idx_file has already checked that they are complete).
    """
    expected = IDX_DATASETS[name].md5.get(path.name)
    if expected is None or path.stat().st_size != OFFICIAL_SIZES.get(path.name):
        return
    if cached_md5(path) != expected:
        raise DataError(f"{path} is corrupt: its md5 is not the official {expected}. Repair it with "
                        f"`python -m sivae.images.data fetch {name} --root {root}` (add --mirror DIR offline), "
                        f"or `dvc checkout data.dvc` if your DVC cache holds it")


def _load_torchvision(name: str, split: str, root: Path, verify_md5: bool = True) -> ImageData:
    """CIFAR-10 / SVHN through torchvision's classes; their md5 checks run unless verify_md5=False."""
    from torchvision import datasets
    cls = {"cifar10": datasets.CIFAR10, "svhn": datasets.SVHN}[name]
    if not verify_md5:  # self-written test files cannot carry the official md5s
        cls = type(cls.__name__, (cls,), {"_check_integrity": lambda self: True, "_load_meta": _meta_unchecked})
    kw = {"train": split == "train"} if name == "cifar10" else {"split": split}
    try:
        ds = cls(str(root), download=False, **kw)
    except RuntimeError as e:
        raise DataError(f"dataset {name!r} ({split}) is missing or corrupt under {root} ({e}). Download it with "
                        f"`python -m sivae.images.data fetch {name} --root {root}` (needs internet: torchvision fetches "
                        f"it), or copy torchvision's files for it there") from None
    except Exception as e:
        raise DataError(f"could not read {name} ({split}) under {root}: {type(e).__name__}: {e}") from None
    x = torch.as_tensor(np.asarray(ds.data))
    x = x.permute(0, 3, 1, 2) if name == "cifar10" else x  # CIFAR: N H W C; SVHN: N C H W
    y = torch.as_tensor(np.asarray(ds.targets if name == "cifar10" else ds.labels)).long()
    return ImageData(x.float().div_(255), y, name, split)


def _meta_unchecked(self):
    """CIFAR's class names without torchvision's md5 check (verify_md5=False only)."""
    import pickle
    with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
        self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]


def load_image_folder(path: str | os.PathLike, split: str = "all", size: int = 64, channels: int = 3,
                      test_fraction: float = 0.1) -> ImageData:
    """Every image file in a folder (recursively), center-cropped to a square, resized to size x size.

    Args:
        path: the folder.
        split: "all", or "train"/"test": files sorted by path, the last test_fraction are the test split.
        size: output height and width.
        channels: 1 (grayscale) or 3 (RGB).
        test_fraction: share of the files in the test split.
    Returns:
        ImageData with labels -1.
    """
    from PIL import Image, UnidentifiedImageError
    check_choice("split", split, SPLITS + ("all",))
    check_choice("channels", channels, (1, 3))
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"image folder {folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    n_test = int(round(len(files) * test_fraction))
    files = {"all": files, "train": files[:len(files) - n_test], "test": files[len(files) - n_test:]}[split]
    if not files:
        raise DataError(f"the {split} split of {folder} is empty ({test_fraction=}, {len(files)} files)")
    out = np.empty((len(files), size, size, channels), dtype=np.uint8)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                im = im.convert("L" if channels == 1 else "RGB")
                w, h = im.size
                s = min(w, h)
                im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
                im = im.resize((size, size), Image.BILINEAR)
                out[i] = np.asarray(im).reshape(size, size, channels)
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"{f} is not a readable image ({type(e).__name__}); remove it from {folder}") from None
    x = torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255)
    return ImageData(x, torch.full((len(files),), -1, dtype=torch.long), f"folder:{folder}", split)


# ------------------------------------------------------------------ fetching
def write_idx(path: str | os.PathLike, array: np.ndarray):
    """Write a uint8 array as an IDX file (big-endian header, raw bytes), as MNIST ships them."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, a.ndim]) + struct.pack(">" + "I" * a.ndim, *a.shape))
        f.write(a.tobytes())


def _fill_from_mirror(name: str, raw: Path, mirror: Path):
    spec = IDX_DATASETS[name]
    for split, (img_file, lbl_file) in IDX_FILES.items():
        src = mirror / f"{spec.mirror}_{split}.npz"
        if not src.is_file():
            raise DataError(f"mirror {mirror} has no {src.name} (needed for {name} {split}); see "
                            f"../shared/data/README.md for the format (x: uint8 N x H x W, y: int64 N)")
        with np.load(src) as d:
            write_idx(raw / img_file, d["x"])
            write_idx(raw / lbl_file, d["y"].astype(np.uint8))


def _fill_from_download(name: str, raw: Path):
    from torchvision import datasets
    spec = IDX_DATASETS[name]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            getattr(datasets, spec.folder)(tmp, train=True, download=True)
            getattr(datasets, spec.folder)(tmp, train=False, download=True)
        except Exception as e:
            raise DataError(f"could not download {name} ({type(e).__name__}: {str(e)[:200]}). Without internet, "
                            f"point at a local mirror: `python -m sivae.images.data fetch {name} --mirror DIR` where DIR "
                            f"holds {spec.mirror}_train.npz and {spec.mirror}_test.npz "
                            f"(format: ../shared/data/README.md; original source: {spec.url})") from None
        for f in spec.md5:  # keep only the uncompressed files: the same bytes as the mirror path
            shutil.copyfile(Path(tmp) / spec.folder / "raw" / f, raw / f)


def fetch(names=DEFAULT_DATASETS, root: str | os.PathLike = "data", mirror: str | os.PathLike | None = None,
          log=print) -> list[Path]:
    """Fill `root` with the named datasets in torchvision's layout, verifying official md5s.

    Files already present with the right md5 are kept; the others are written to a temporary
    folder first and moved in only once verified, so a failed fetch never damages `root`.

    Args:
        names: dataset names (MNIST-format ones from the mirror or a download; CIFAR-10/SVHN download).
        root: destination (data/ for the default datasets, data_paper/ for the others).
        mirror: a folder of `<name>_{train,test}.npz` files (offline), or None to download.
    Returns:
        the paths of the verified files.
    """
    root, done = Path(root), []
    for name in names:
        check_choice("dataset", name, DATASETS)
        if name in PAPER_DATASETS:
            done += _fetch_torchvision(name, root, log)
            continue
        spec = IDX_DATASETS[name]
        raw = root / spec.folder / "raw"
        if all((raw / f).is_file() and md5sum(raw / f) == m for f, m in spec.md5.items()):
            log(f"{name}: already present and verified in {raw}")
            done += [raw / f for f in spec.md5]
            continue
        with tempfile.TemporaryDirectory(dir=root.parent if root.parent.exists() else None) as tmp:
            stage = Path(tmp)
            _fill_from_mirror(name, stage, Path(mirror)) if mirror else _fill_from_download(name, stage)
            bad = [f for f, m in spec.md5.items() if md5sum(stage / f) != m]
            if bad:
                raise DataError(f"{name}: {', '.join(bad)} do not have the official md5 "
                                f"({'mirror ' + str(mirror) if mirror else 'download'} is not the genuine dataset); "
                                f"{raw} was left unchanged")
            raw.mkdir(parents=True, exist_ok=True)
            for f in spec.md5:
                os.replace(stage / f, raw / f)
        log(f"{name}: {len(spec.md5)} files written to {raw}, md5s verified")
        done += [raw / f for f in spec.md5]
    return done


def _fetch_torchvision(name: str, root: Path, log) -> list[Path]:
    from torchvision import datasets
    root.mkdir(parents=True, exist_ok=True)
    try:
        for split in SPLITS:
            if name == "cifar10":
                datasets.CIFAR10(str(root), train=split == "train", download=True)
            else:
                datasets.SVHN(str(root), split=split, download=True)
    except Exception as e:
        raise DataError(f"could not download {name} ({type(e).__name__}: {str(e)[:200]}). It is used only by "
                        f"the paper profile; copy torchvision's files for it into {root} by hand "
                        f"(CIFAR-10: cifar-10-batches-py/, SVHN: train_32x32.mat, test_32x32.mat)") from None
    log(f"{name}: downloaded and verified by torchvision in {root}")
    return [root]


def verify(names=DEFAULT_DATASETS, root: str | os.PathLike = "data") -> dict:
    """{file: True/False} for the official md5 of every raw file of the named MNIST-format datasets."""
    out = {}
    for name in names:
        spec = IDX_DATASETS[name]
        for f, m in spec.md5.items():
            p = Path(root) / spec.folder / "raw" / f
            out[str(p)] = p.is_file() and md5sum(p) == m
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m sivae.images.data", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="fill the data root (download, or copy from --mirror), verifying md5s")
    f.add_argument("names", nargs="*", default=list(DEFAULT_DATASETS))
    f.add_argument("--root", default=None, help="default: data (data_paper for CIFAR-10/SVHN)")
    f.add_argument("--mirror", default=os.environ.get("SIVAE_DATA_MIRROR"),
                   help="offline mirror folder of .npz files (or set SIVAE_DATA_MIRROR)")
    v = sub.add_parser("verify", help="check the md5s of the default datasets")
    v.add_argument("--root", default="data")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "fetch":
            for name in args.names:
                root = args.root or ("data_paper" if name in PAPER_DATASETS else "data")
                fetch([name], root, None if name in PAPER_DATASETS else args.mirror)
        else:
            res = verify(root=args.root)
            for p, ok in res.items():
                print(("ok   " if ok else "BAD  ") + p)
            return 0 if all(res.values()) else 1
    except (DataError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
