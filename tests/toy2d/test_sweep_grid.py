"""A whole Table 5 grid as one job (sivae.toy2d.sweep.train_grid) and as one DVC experiment (the sweep_grid stage).

Deselect the DVC part with `pytest -k "not dvc"`.
"""
import json

import pytest
from conftest import TINY
from conftest import run_in as _run
from nbutil import BIN

from sivae.errors import ConfigError
from sivae.toy2d import study
from sivae.toy2d.config import Toy2dConfig
from sivae.toy2d.study import run_toy2d
from sivae.toy2d.sweep import (
    GRID_PARAMS,
    best_configurations,
    compare_with_table5,
    grid_points,
    grid_settings,
    main,
    train_grid,
    write_grid,
)

KW = dict(n_iter=30, batch_size=32, num_vae=5, lr_milestones="0.5", n_samples=500, grid_size=16, n_seeds=1,
          device="cpu", progress=False, engine="stack")
RANGES = {"beta_rec": "0.1,0.2", "beta_kl": [0.1, 0.2], "beta_neg": 0.9}


def test_grid_points_expand_the_ranges():
    assert len(grid_points("soft_intro_vae")) == 8 * 8 * 5 and len(grid_points("introvae")) == 8 * 8 * 5 * 6
    pts = grid_points("soft_intro_vae", RANGES)
    assert pts == [dict(beta_rec=a, beta_kl=b, beta_neg=0.9) for a in (0.1, 0.2) for b in (0.1, 0.2)]
    # a weight the model does not use is checked but leaves its grid alone; repeats are dropped; "sweep" keeps it
    assert grid_points("vae", {**RANGES, "m": "1,2"}) == [dict(beta_rec=a, beta_kl=b) for a in (0.1, 0.2)
                                                          for b in (0.1, 0.2)]
    assert len(grid_points("vae", {"beta_rec": "0.1,0.1", "beta_kl": "sweep"})) == 8


def test_grid_rows_equal_single_runs_and_the_best_is_the_minimum(tmp_path, monkeypatch):
    # 3 runs per stack: the 4 points train as two stacks, split as at STACK_MAX_RUNS
    monkeypatch.setattr(study, "STACK_MAX_RUNS", 3)
    base = Toy2dConfig(datasets="8gaussians", methods="soft_intro_vae", ckpt_dir=tmp_path / "grid", **KW)
    rows = train_grid(base, RANGES)
    assert len(list((tmp_path / "grid" / "stacks").iterdir())) == 2
    assert len(rows) == 4 and {(r["hparams"]["beta_rec"], r["hparams"]["beta_kl"]) for r in rows} == {
        (0.1, 0.1), (0.1, 0.2), (0.2, 0.1), (0.2, 0.2)}
    for r in rows:
        # the same configuration, alone, through the toy2d stage's code and the single-run Trainer
        one = run_toy2d(base.replace(ckpt_dir=tmp_path / r["name"].replace(" ", "_"), engine="single",
                                     budget=False, **r["hparams"]))[0]
        assert one.hparams == r["hparams"]
        # float32 networks: the stack follows the Trainer up to the rounding of its batched sums (tests/test_stack.py:
        # 1e-10 in float64), after 30 steps well within the tolerance of test_toy2d's stack-vs-single check
        for k in ("kl", "jsd", "jsd_textbook", "off_support_mass"):
            assert r["metrics"][k] == pytest.approx(one.metrics[k], rel=1e-3, abs=1e-9), (r["name"], k)
        # gnELBO (~1e-7) is in the metrics file scaled by 1e7, so that `dvc metrics show` prints its digits
        assert r["metrics"]["gnelbo_x1e7"] == pytest.approx(one.metrics["gnelbo"] * 1e7, rel=1e-3), r["name"]
        assert r["metrics"]["kl_std"] == 0.0   # one seed
    best = best_configurations(rows, "kl")[("8gaussians", "soft_intro_vae")]
    assert best["n_runs"] == 4 and best["metrics"]["kl"] == min(r["metrics"]["kl"] for r in rows)
    out = write_grid(rows, "kl", tmp_path / "m.json", tmp_path / "p.json", tmp_path / "t.md", meta={"n_iter": 30})
    assert out[("8gaussians", "soft_intro_vae")]["name"] == best["name"]
    flat = json.loads((tmp_path / "m.json").read_text())["8gaussians"]["soft_intro_vae"]
    assert flat["kl"] == best["metrics"]["kl"] and flat["n_points"] == 4
    assert flat["best_beta_rec"] == best["hparams"]["beta_rec"] and flat["best_beta_neg"] == 0.9
    assert len(json.loads((tmp_path / "p.json").read_text())) == 4
    table = (tmp_path / "t.md").read_text()
    assert table.startswith(compare_with_table5(out, "kl")) and "| Soft-IntroVAE | 4 |" in table
    assert "0.2, 0.3, 0.9, -" in table   # Table 5 beside ours


@pytest.mark.parametrize("kw, message", [
    (dict(datasets="moons"), "unknown datasets 'moons'"),
    (dict(methods="gan"), "unknown methods 'gan'"),
    (dict(ranges={"beta_rec": "0.1,-0.2"}), "beta_rec must be a finite non-negative"),
    (dict(ranges={"beta_kl": "nan"}), "beta_kl must be finite"),
    (dict(ranges={"beta_kl": ""}), "beta_kl is empty"),
    (dict(ranges={"m": "x"}), "m must be comma-separated numbers"),   # checked though soft_intro_vae ignores m
    (dict(ranges={"gamma": "1"}), "unknown hyper-parameter 'gamma'"),
    (dict(n_iter=0), "n_iter"),
    (dict(lr=float("nan")), "lr"),
    (dict(engine="batched"), "unknown engine"),
])
def test_bad_grids_fail_before_training_with_one_config_error(kw, message, tmp_path):
    args = dict(datasets="8gaussians", methods="soft_intro_vae", ranges=RANGES, ckpt_dir=tmp_path / "g", **KW) | kw
    with pytest.raises(ConfigError, match=message):
        ranges = args.pop("ranges")
        train_grid(Toy2dConfig(**args), ranges)
    assert not (tmp_path / "g").exists()


def test_grid_settings_and_command_line_name_bad_input(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("base: {seed: 0, device: cpu}\nsweep_grid: {dataset: rings, n_itr: 3}\n")
    with pytest.raises(ConfigError, match=r"unknown keys \['n_itr'\]"):
        grid_settings("sweep_grid", params)
    with pytest.raises(ConfigError, match="no section 'grid'"):
        grid_settings("grid", params)
    assert grid_settings(overrides={"dataset": "rings"})["beta_rec"] == GRID_PARAMS["beta_rec"]
    for argv, message in ((["--model", "gan"], "unknown model 'gan'"), (["-S", "metric=mse"], "unknown metric"),
                          (["--beta-neg", "-1"], "beta_neg must be a finite non-negative"),
                          (["-S", "n_iter"], "-S takes KEY=VALUE")):
        assert main(["grid", "--out", str(tmp_path / "o"), *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


def test_dvc_grid_is_one_experiment_with_the_best_metric(repo_copy):
    sets = [a for kv in TINY for a in ("-S", f"sweep_grid.{kv}")]
    _run([str(BIN / "dvc"), "exp", "run", "sweep_grid", *sets, "-S", "sweep_grid.dataset=rings",
          "-S", "sweep_grid.beta_rec=[0.1,0.2]", "-S", "sweep_grid.beta_kl=[0.1,0.2]"], repo_copy)
    shown = json.loads(_run([str(BIN / "dvc"), "exp", "show", "--json"], repo_copy))
    exps = [rev for base in shown for group in base.get("experiments") or [] for rev in group.get("revs") or []]
    assert len(exps) == 1, exps
    data = exps[0]["data"]
    assert data["params"]["params.yaml"]["data"]["sweep_grid"]["beta_rec"] == [0.1, 0.2]
    best = data["metrics"]["outputs/sweep_grid/metrics.json"]["data"]["rings"]["soft_intro_vae"]
    points = json.loads((repo_copy / "outputs" / "sweep_grid" / "points.json").read_text())
    assert len(points) == 4 and best["n_points"] == 4
    assert best["kl"] == min(p["kl"] for p in points)
    assert "| Rings | Soft-IntroVAE | 4 |" in (repo_copy / "outputs" / "sweep_grid" / "table5.md").read_text()
