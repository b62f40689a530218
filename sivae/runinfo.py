"""Provenance: what produced an output (seed, parameters, package versions, git commit)."""
from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "torchvision", "numpy", "matplotlib", "scikit-learn", "papermill", "jupytext", "dvc")


def git_commit(cwd: str | Path = ".") -> dict:
    """HEAD commit and whether the work tree has uncommitted changes (None outside git)."""
    def run(*args):
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    try:
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = bool(run("status", "--porcelain", "--untracked-files=no").stdout.strip())
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}


def package_versions() -> dict:
    """Installed versions of the packages that shape the results."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_run_info(path: str | Path, params: dict, seed: int | None = None, **extra) -> dict:
    """Write run_info.json next to the outputs: parameters, seed, versions, commit, time.

    Args:
        path: file to write (parent folders are created).
        params: the parameters of the run (e.g. the notebook's parameter cell values).
        seed: the base seed. extra: anything else worth recording (device, wall time, ...).
    Returns:
        the dict written.
    """
    import torch
    info = {"seed": seed, "params": params, "packages": package_versions(), "git": git_commit(),
            "device": extra.pop("device", None), "cuda": torch.cuda.is_available(),
            "torch_threads": torch.get_num_threads(),   # CPU results are bit-identical only at equal counts
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}
    write_text(json.dumps(info, indent=2, default=str) + "\n", path)
    return info


def _reason(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path` to write; on success it replaces `path` (os.replace, atomic).

    On any error the temporary file is removed and the old `path`, if any, is left as it was: a full disk
    or a kill never leaves a truncated output where a good one was. An OSError (disk full, read-only folder,
    a file where a folder should be) becomes one OutputError naming `path`.
    """
    from .errors import OutputError
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600 files: give the output the mode open() would
    except OSError as e:
        raise OutputError(f"cannot write {path}: its folder {path.parent} is not writable ({_reason(e)})") from None
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"could not write {path} ({_reason(e)}); the previous {path.name}, if any, is "
                          f"unchanged") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(text: str, path: str | Path) -> Path:
    """Write `text` atomically (temp file + rename, parents created): an error leaves any old file intact
    and is one OutputError naming the file (see atomic_path)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
    return path


MIN_FREE_BYTES = 1 << 20   # check_writable: a disk with less free space is full (a figure alone takes ~100 kB)


def check_writable(*paths) -> None:
    """Before any work: OutputError naming the first output path that could not be written.

    Each path is a file or folder to be (re)written. Nothing is created: the nearest existing folder above it
    must be a writable folder (a temporary file is made there and removed at once) on a disk with at least
    MIN_FREE_BYTES free, and nothing on the way may be a file.
    """
    from .errors import ConfigError, OutputError
    for p in paths:
        if not isinstance(p, (str, os.PathLike)) or not str(p).strip():
            raise ConfigError(f"an output path must be a file or folder name, got {p!r}")
        path = Path(p)
        probe = path if path.is_dir() else path.parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise OutputError(f"cannot write {path}: {probe} is a file, not a folder")
        try:
            fd, tmp = tempfile.mkstemp(dir=probe, prefix=".sivae-writable.", suffix=".tmp")
            os.close(fd)
            os.unlink(tmp)
            free = shutil.disk_usage(probe).free
        except OSError as e:
            raise OutputError(f"cannot write {path}: folder {probe} is not writable ({_reason(e)})") from None
        if free < MIN_FREE_BYTES:
            raise OutputError(f"cannot write {path}: the disk of {probe} is full ({free} bytes free); free some "
                              f"space or choose another folder")


# Metrics written to a DVC metrics file in scaled units, under a key that says so: `dvc metrics show` prints
# 5 decimals, and gnELBO (~1e-7) would print as 0.0.
METRICS_FILE_SCALES = {"gnelbo": ("gnelbo_x1e7", 1e7)}


def metrics_file_key(name: str) -> str:
    """The key metric `name` has in a DVC metrics file ("gnelbo" -> "gnelbo_x1e7"; others unchanged)."""
    return METRICS_FILE_SCALES.get(name, (name, 1.0))[0]


def in_file_units(metrics: dict) -> dict:
    """A flat {metric: value, "<metric>_std": value, ...} dict with each scaled metric (and its spread) renamed
    and multiplied as METRICS_FILE_SCALES says; the key order is kept."""
    out = {}
    for k, v in metrics.items():
        base, std = (k[:-4], "_std") if k.endswith("_std") else (k, "")
        if base in METRICS_FILE_SCALES and isinstance(v, (int, float)) and not isinstance(v, bool):
            key, scale = METRICS_FILE_SCALES[base]
            out[key + std] = float(f"{v * scale:.6g}")
        else:
            out[k] = v
    return out


def write_json(obj, path: str | Path, sort_keys: bool = False) -> Path:
    """Write `obj` as indented JSON (a DVC metrics file), atomically like write_text."""
    return write_text(json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n", path)


def write_markdown(lines: list[str], path: str | Path, note: str = "", meta: dict | None = None) -> str:
    """Write table `lines`, then `note` and a `k=v, ...` line of `meta` (run settings); return the text."""
    text = "\n".join(lines) + "\n" + note
    if meta:
        text += "\n" + ", ".join(f"{k}={v}" for k, v in meta.items()) + "\n"
    write_text(text, path)
    return text


def _curve_values(row: dict) -> dict:
    """The numbers of one history row a curve plots: finite ints and floats, "step" and bools left out."""
    return {k: float(v) for k, v in row.items() if k != "step" and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(float(v))}


def _live(path: Path):
    from dvclive import Live
    return Live(dir=str(path), save_dvc_exp=False, dvcyaml=None, report=None)


def _log_row(live, row: dict) -> None:
    values = _curve_values(row)
    if values:
        live.step = int(row["step"])
        for k, v in values.items():
            live.log_metric(k, v)


# Where the trainers of this process write their curves while they train (live_training sets it)
_LIVE: dict = {"dir": None, "root": None}


def live_training(live_dir: str | Path | None, ckpt_root: str | Path | None = None) -> None:
    """Make every Trainer and StackTrainer of this process write its curve through DVCLive as it trains.

    Each run writes `<live_dir>/<name>/plots/metrics/<key>.tsv` at every history record, so the VS Code
    DVC extension and `dvc plots show` see the curves grow during a long stage. `<name>` is the run's
    checkpoint folder relative to `ckpt_root` (its last component if it is not below it). A resumed run
    rewrites its files from its checkpointed history first, so its curve stays whole. At the end of the
    stage `log_curves` replaces the folder with the runs' final curves under the study's names.
    `live_training(None)` turns it off (the default).
    """
    _LIVE["dir"] = Path(live_dir) if live_dir is not None else None
    _LIVE["root"] = Path(ckpt_root).resolve() if ckpt_root is not None else None


class LiveCurve:
    """One run's curve written through DVCLive while it trains (see live_training)."""

    def __init__(self, path: Path, history: list[dict]):
        self.path = path
        self.live = _live(path)  # a fresh folder: DVCLive removes what a previous attempt left
        for row in history:
            self.log(row)

    def log(self, row: dict) -> None:
        _log_row(self.live, row)


def live_curve(name: str | os.PathLike, history: list[dict]) -> LiveCurve | None:
    """The live writer of run `name` (a checkpoint folder or a stack's run name), or None when off."""
    if _LIVE["dir"] is None:
        return None
    p = Path(name)
    rel = None
    if _LIVE["root"] is not None:
        try:
            rel = p.resolve().relative_to(_LIVE["root"])
        except ValueError:
            rel = None
    if rel is None or not rel.parts:
        rel = Path(p.name or "run")
    return LiveCurve(_LIVE["dir"] / rel, history)


def log_curves(curves: dict[str, list[dict]], live_dir: str | Path) -> Path:
    """Write every run's training curve through DVCLive, one DVCLive folder per run.

    `curves` maps a run name (slashes make sub-folders, e.g. "8gaussians/soft_intro_vae/seed0") to
    its history: dicts with a "step" and numbers (the Trainer's `history`). Each run gets
    `<live_dir>/<run>/plots/metrics/<key>.tsv` (columns step, key): the files `dvc plots show` renders
    and the VS Code DVC extension reads.
    Written from the checkpointed histories after training, so a resumed run's curve is whole and
    identical to an uninterrupted one (during training, `live_training` shows the curves as they grow).
    The folder is replaced as a whole (a run that is no longer in `curves` does not linger), built
    beside it first so a failure leaves the old one in place.
    Non-numeric or non-finite entries are left out of the curve.
    """
    import shutil

    from .errors import ConfigError
    live_dir = Path(live_dir)
    if not curves:
        raise ConfigError(f"no training curves to write to {live_dir}")
    live_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{live_dir.name}.", dir=live_dir.parent))
    try:
        for run, history in curves.items():
            parts = Path(run).parts
            if not parts or any(p in ("..", ".") for p in parts) or Path(run).is_absolute():
                raise ConfigError(f"run name {run!r} is not a relative folder name")
            with _live(tmp / run) as live:
                for row in history:
                    _log_row(live, row)
            # DVCLive's per-run summary would sit among the declared plot files, which `dvc plots`
            # then fails to parse; the stage's metrics.json is the summary
            (tmp / run / "metrics.json").unlink(missing_ok=True)
        old = live_dir.with_name(f".{live_dir.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if live_dir.exists():
            live_dir.rename(old)
        tmp.rename(live_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return live_dir
