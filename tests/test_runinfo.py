"""Output writers (atomic text/JSON, markdown tables), shared parameter parsing, curve smoothing."""
import json

import numpy as np
import pytest

from sivae.errors import ConfigError
from sivae.images.plots import smooth
from sivae.params import parse_bool, seeds_from
from sivae.runinfo import write_json, write_markdown, write_run_info, write_text
from sivae.stats import seed_stats


def test_write_json_and_markdown(tmp_path):
    write_json({"b": 1, "a": [1.5]}, tmp_path / "sub" / "m.json")
    assert json.loads((tmp_path / "sub" / "m.json").read_text()) == {"b": 1, "a": [1.5]}
    text = write_markdown(["| a |", "|---|", "| 1 |"], tmp_path / "t.md", note="\nnote\n", meta={"seed": 0, "n": 2})
    assert text == "| a |\n|---|\n| 1 |\n\nnote\n\nseed=0, n=2\n"
    assert (tmp_path / "t.md").read_text() == text


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "m.json"
    write_json({"ok": 1}, path)
    with pytest.raises(TypeError):
        write_json({"bad": object()}, path)
    assert json.loads(path.read_text()) == {"ok": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]
    write_text("new\n", path)
    assert path.read_text() == "new\n"


def test_run_info_records_seed_params_versions(tmp_path):
    info = write_run_info(tmp_path / "run_info.json", {"n_iter": 3}, seed=7, device="cpu")
    saved = json.loads((tmp_path / "run_info.json").read_text())
    assert saved["seed"] == 7 and saved["params"] == {"n_iter": 3} and saved["device"] == "cpu"
    assert saved["packages"]["torch"] == info["packages"]["torch"] and "commit" in saved["git"]


def test_parse_bool_and_seeds():
    assert parse_bool("f", "false") is False and parse_bool("f", " True ") is True and parse_bool("f", True)
    with pytest.raises(ConfigError, match="f must be true or false"):
        parse_bool("f", "0")
    assert seeds_from(3, 2) == [3, 4]
    for bad in (0, -1, 1.5):
        with pytest.raises(ConfigError, match="n_seeds"):
            seeds_from(0, bad)


def test_smooth_moving_average():
    assert np.allclose(smooth([0, 0, 3, 0, 0], 3), [0, 1, 1, 1, 0])
    assert np.allclose(smooth([2.0] * 7, 5), 2.0)
    assert np.allclose(smooth([1, 5, 2], 1), [1, 5, 2])


def test_log_curves_writes_one_dvclive_folder_per_run_and_replaces_the_old_one(tmp_path):
    from sivae.runinfo import log_curves
    live = tmp_path / "live"
    (live / "stale_run").mkdir(parents=True)
    hist = [{"step": 0, "kl": 2.0, "rec": 1.0}, {"step": 50, "kl": 1.5, "rec": float("nan")},
            {"step": 100, "kl": 0.5, "rec": 0.25, "note": "x"}]
    log_curves({"8gaussians/vae/seed0": hist, "rings/vae/seed0": hist[:1]}, live)
    assert not (live / "stale_run").exists(), "a run that is no longer logged lingers"
    run = live / "8gaussians/vae/seed0"
    kl = (run / "plots/metrics/kl.tsv").read_text().splitlines()
    assert kl == ["step\tkl", "0\t2.0", "50\t1.5", "100\t0.5"]
    rec = (run / "plots/metrics/rec.tsv").read_text().splitlines()
    assert rec == ["step\trec", "0\t1.0", "100\t0.25"], "a NaN entry must be left out of the curve"
    assert not (run / "plots/metrics/note.tsv").exists()
    assert [p.name for p in run.iterdir()] == ["plots"], "only plot files (dvc plots reads the whole folder)"
    assert not list(tmp_path.glob(".live*")), "temporary folders left behind"
    # same histories -> byte-identical files (what a resumed run must reproduce)
    first = {p.relative_to(live): p.read_bytes() for p in live.rglob("*") if p.is_file()}
    log_curves({"8gaussians/vae/seed0": hist, "rings/vae/seed0": hist[:1]}, live)
    assert {p.relative_to(live): p.read_bytes() for p in live.rglob("*") if p.is_file()} == first


@pytest.mark.parametrize("bad", [{}, {"../escape": [{"step": 0, "kl": 1.0}]}, {"/abs": [{"step": 0, "kl": 1.0}]}])
def test_log_curves_refuses_bad_input_and_keeps_the_old_folder(tmp_path, bad):
    from sivae import ConfigError
    from sivae.runinfo import log_curves
    live = tmp_path / "live"
    log_curves({"a": [{"step": 0, "kl": 1.0}]}, live)
    with pytest.raises(ConfigError):
        log_curves(bad, live)
    assert (live / "a/plots/metrics/kl.tsv").exists()
    assert not (tmp_path / "escape").exists()


def test_seed_stats_is_the_sample_spread_the_ledger_compares():
    st = seed_stats([1.0, 3.0, 5.0])
    assert st["mean"] == 3.0 and st["n"] == 3 and st["std"] == pytest.approx(float(np.std([1, 3, 5], ddof=1)))
    assert seed_stats([2.5]) == {"mean": 2.5, "std": 0.0, "n": 1}
    with pytest.raises(ValueError):
        seed_stats([])


def test_metrics_files_hold_gnelbo_scaled_so_dvc_metrics_show_prints_its_digits():
    from sivae.runinfo import in_file_units, metrics_file_key
    flat = {"kl": 11.55, "gnelbo": 7.39041e-07, "kl_std": 1.3, "gnelbo_std": 1.10677e-08, "n": 2}
    out = in_file_units(flat)
    assert list(out) == ["kl", "gnelbo_x1e7", "kl_std", "gnelbo_x1e7_std", "n"]
    assert out["gnelbo_x1e7"] == 7.39041 and out["gnelbo_x1e7_std"] == 0.110677 and out["kl"] == 11.55
    assert metrics_file_key("gnelbo") == "gnelbo_x1e7" and metrics_file_key("kl") == "kl"
