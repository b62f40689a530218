import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # as sivae.stage sets it: no spinning threads on a shared CPU

import shutil  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402
from nbutil import BIN, ROOT  # noqa: E402

# Two tiers: `make test` runs everything (what CI runs); `make test-fast` (pytest -m "not slow") leaves out the
# tests marked slow: whole files that run notebooks, `dvc repro`, a browser or killed subprocesses, every test
# that clones the repository (the repo_copy fixture), and single tests marked @pytest.mark.slow in their file.
# The section studies' tests (images, ood, translation, style training) train and score whole tiny studies.
SLOW_FILES = {"test_notebooks.py", "test_pipeline.py", "test_report.py", "test_reliability.py", "test_sweep_dvc.py",
              "test_sweep_grid.py", "test_cuda.py", "test_images.py", "test_ood.py", "test_translation.py",
              "test_style_training.py", "test_stage_runner.py", "test_jupyter.py"}
OVERLAY = ("sivae", "notebooks", "dvc.yaml", "params.yaml", "profiles", "pyproject.toml", ".dvcignore")
TINY = ("n_iter=3", "grid_size=16", "n_samples=200", "n_seeds=1", "batch_size=16", "num_vae=0")


def run_in(args, cwd, timeout=300, check=True):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1", "SIVAE_THREADS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    res = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if check:
        assert res.returncode == 0, f"{' '.join(map(str, args))}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res.stdout if check else res


@pytest.fixture
def repo_copy(tmp_path):
    repo = tmp_path / "repo"
    run_in(["git", "clone", "-q", str(ROOT), str(repo)], cwd=tmp_path)
    ignore = shutil.ignore_patterns("__pycache__", "*.ipynb", ".ipynb_checkpoints")
    for name in OVERLAY:
        src, dst = ROOT / name, repo / name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dst)
    run_in(["git", "add", "-A"], cwd=repo)
    run_in(["git", "commit", "-q", "--allow-empty", "-m", "working tree under test"], cwd=repo)
    yield repo
    subprocess.run([str(BIN / "dvc"), "queue", "stop", "--kill"], cwd=repo, capture_output=True, timeout=60)




def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_FILES or "repo_copy" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def browser_starts():
    """Skip (with the reason) where Chromium is installed but cannot start at all in this environment."""
    from browser import browser_start_failure
    why = browser_start_failure()
    if why:
        pytest.skip(why)
