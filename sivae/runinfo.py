"""Provenance: what produced an output (seed, parameters, package versions, git commit)."""
from __future__ import annotations

import json
import platform
import subprocess
import sys
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2, default=str) + "\n")
    return info
