"""Provenance: what produced an output (seed, parameters, package versions, git commit)."""
from __future__ import annotations

import json
import os
import platform
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
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}
    write_text(json.dumps(info, indent=2, default=str) + "\n", path)
    return info


def write_text(text: str, path: str | Path) -> Path:
    """Write `text` atomically (temp file + rename, parents created): an error leaves any old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


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


def log_curves(curves: dict[str, list[dict]], live_dir: str | Path) -> Path:
    """Write every run's training curve through DVCLive, one DVCLive folder per run.

    `curves` maps a run name (slashes make sub-folders, e.g. "8gaussians/soft_intro_vae/seed0") to
    its history: dicts with a "step" and numbers (the Trainer's `history`). Each run gets
    `<live_dir>/<run>/plots/metrics/<key>.tsv` (columns step, key): the files `dvc plots show` renders
    and the VS Code DVC extension reads.
    Written from the checkpointed histories after training, so a resumed run's curve is whole and
    identical to an uninterrupted one. The folder is replaced as a whole (a run that is no longer in
    `curves` does not linger), built beside it first so a failure leaves the old one in place.
    Non-numeric or non-finite entries are left out of the curve.
    """
    import math
    import shutil

    from dvclive import Live

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
            with Live(dir=str(tmp / run), save_dvc_exp=False, dvcyaml=None, report=None) as live:
                for row in history:
                    values = {k: float(v) for k, v in row.items() if k != "step" and isinstance(v, (int, float))
                              and not isinstance(v, bool) and math.isfinite(float(v))}
                    if not values:
                        continue
                    live.step = int(row["step"])
                    for k, v in values.items():
                        live.log_metric(k, v)
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
