"""Helpers for the notebook and pipeline tests."""
import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NOT_A_PARAMETER = {"executed_notebook"}   # papermill's output path, not a notebook variable
NOT_IN_PARAMS_YAML = {"interactive"}      # fixed to False by the pipeline command


def notebook_parameters(path: Path) -> dict:
    """Names and default values of the cell tagged `parameters` of a jupytext percent notebook."""
    text = path.read_text()
    m = re.search(r'^# %% tags=\["parameters"\]\n(.*?)(?=^# %%)', text, re.S | re.M)
    assert m, f"{path} has no cell tagged parameters"
    tree = ast.parse(m.group(1))
    return {t.targets[0].id: ast.literal_eval(t.value) for t in tree.body if isinstance(t, ast.Assign)}


def load_yaml(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def stage_notebook(stage: str) -> Path:
    hits = sorted((ROOT / "notebooks").glob(f"[0-9][0-9]_{stage}.py"))
    assert len(hits) == 1, f"stage {stage}: expected one notebooks/NN_{stage}.py, found {hits}"
    return hits[0]


def run_notebook(nb: Path, out: Path, params: dict, cwd: Path = ROOT, timeout: int = 600):
    """jupytext | papermill by hand (the README's recipe); returns the CompletedProcess. MPLBACKEND=Agg, as
    `make repro` exports it: the notebooks draw their figures inline all the same (sivae.plots.inline_figures)."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)  # as the stage's `mkdir -p` does
    args = " ".join(f"-p {k} {shlex.quote(str(v))}" for k, v in params.items())
    cmd = (f"{BIN}/jupytext --to ipynb --set-kernel - {nb} -o - | "
           f"{BIN}/papermill --no-progress-bar - {out} {args}")
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(Path.home()),
           "MPLBACKEND": "Agg"}
    return subprocess.run(cmd, shell=True, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def write_tiny_idx(root, name: str = "mnist", n_train: int = 64, n_test: int = 32, seed: int = 0):
    """Small MNIST-format files (torchvision's raw/ layout) with blob-like images, for tests."""
    import numpy as np

    from sivae.images.data import IDX_DATASETS, IDX_FILES, write_idx
    raw = Path(root) / IDX_DATASETS[name].folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, n)
        cx, cy = 6 + 1.6 * labels + rng.normal(0, 1, n), 14 + rng.normal(0, 2, n)
        img = np.exp(-((xx[None] - cx[:, None, None]) ** 2 + (yy[None] - cy[:, None, None]) ** 2) / 18)
        write_idx(raw / IDX_FILES[split][0], (255 * img).astype(np.uint8))
        write_idx(raw / IDX_FILES[split][1], labels.astype(np.uint8))
    return raw
