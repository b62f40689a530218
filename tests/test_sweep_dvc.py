"""The documented Table 5 sweep path, end to end, on a 2x2 grid with tiny runs (about 1-2 minutes).

In a `git clone` of the repository in a temp dir, overlaid with the working tree's code and
pipeline files and committed there: `python -m sivae.sweep queue --run` queues the grid with
`dvc exp run --queue`, `dvc queue start` runs it, and `python -m sivae.sweep collect` reads
`dvc exp show --json`. The developer's working tree is never touched.
Deselect with `pytest -k "not dvc_sweep"`.
"""
import json
import os
import shutil
import subprocess
import time

import pytest

from nbutil import BIN, ROOT
from sivae.sweep import best_configurations, collect_experiments

OVERLAY = ("sivae", "notebooks", "dvc.yaml", "params.yaml", "profiles", "pyproject.toml", ".dvcignore")
TINY = ("n_iter=3", "grid_size=16", "n_samples=200", "n_seeds=1", "batch_size=16", "num_vae=0")


def _run(args, cwd, timeout=300):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    res = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert res.returncode == 0, f"{' '.join(map(str, args))}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res.stdout


@pytest.fixture
def repo_copy(tmp_path):
    repo = tmp_path / "repo"
    _run(["git", "clone", "-q", str(ROOT), str(repo)], cwd=tmp_path)
    ignore = shutil.ignore_patterns("__pycache__", "*.ipynb", ".ipynb_checkpoints")
    for name in OVERLAY:
        src, dst = ROOT / name, repo / name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dst)
    _run(["git", "add", "-A"], cwd=repo)
    _run(["git", "commit", "-q", "--allow-empty", "-m", "working tree under test"], cwd=repo)
    yield repo
    subprocess.run([str(BIN / "dvc"), "queue", "stop", "--kill"], cwd=repo, capture_output=True, timeout=60)


def test_dvc_sweep_queue_run_and_collect(repo_copy):
    py = str(BIN / "python")
    sets = [a for kv in TINY for a in ("-S", kv)]
    out = _run([py, "-m", "sivae.sweep", "queue", "--dataset", "8gaussians", "--model", "soft_intro_vae",
                "--beta-rec", "0.1,0.2", "--beta-kl", "0.1,0.2", "--beta-neg", "0.9", *sets, "--run"], repo_copy)
    assert "4 experiments" in out
    _run([str(BIN / "dvc"), "queue", "start", "--jobs", "1"], repo_copy)
    deadline = time.time() + 600
    while time.time() < deadline:
        status = _run([str(BIN / "dvc"), "queue", "status"], repo_copy)
        if not any(w in status for w in ("Queued", "Running")):
            break
        time.sleep(5)
    assert status.count("Success") == 4, status
    rows = collect_experiments(json.loads(_run([str(BIN / "dvc"), "exp", "show", "--json"], repo_copy)))
    assert len(rows) == 4
    assert {(r["hparams"]["beta_rec"], r["hparams"]["beta_kl"]) for r in rows} == {
        (0.1, 0.1), (0.1, 0.2), (0.2, 0.1), (0.2, 0.2)}
    best = best_configurations(rows, "kl")[("8gaussians", "soft_intro_vae")]
    assert best["n_runs"] == 4 and best["metrics"]["kl"] == min(r["metrics"]["kl"] for r in rows)
    table = _run([py, "-m", "sivae.sweep", "collect"], repo_copy)
    assert best["name"] in table and "Soft-IntroVAE | 4 |" in table
