"""The documented Table 5 sweep path, end to end, on a 2x2 grid with tiny runs (about 1-2 minutes).

In a `git clone` of the repository in a temp dir, overlaid with the working tree's code and
pipeline files and committed there: `python -m sivae.toy2d.sweep queue --run` queues the grid with
`dvc exp run --queue`, `dvc queue start` runs it, and `python -m sivae.toy2d.sweep collect` reads
`dvc exp show --json`. The developer's working tree is never touched.
Deselect with `pytest -k "not dvc_sweep"`.
"""
import json
import time

from conftest import TINY
from conftest import run_in as _run
from nbutil import BIN

from sivae.toy2d.sweep import best_configurations, collect_experiments


def test_dvc_sweep_queue_run_and_collect(repo_copy):
    py = str(BIN / "python")
    sets = [a for kv in TINY for a in ("-S", kv)]
    out = _run([py, "-m", "sivae.toy2d.sweep", "queue", "--dataset", "8gaussians", "--model", "soft_intro_vae",
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
    table = _run([py, "-m", "sivae.toy2d.sweep", "collect"], repo_copy)
    assert best["name"] in table and "Soft-IntroVAE | 4 |" in table
