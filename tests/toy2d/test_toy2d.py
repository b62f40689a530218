"""2D data, models and the Table 2 experiment code."""
import json
from pathlib import Path
from unittest import mock

import pytest
import torch

from sivae import ConfigError, DataError
from sivae.paper import TABLE5
from sivae.params import read_section
from sivae.toy2d.config import Toy2dConfig, resolve_hparams
from sivae.toy2d.data import TOY_DATASETS, get_toy_dataset, sample_toy
from sivae.toy2d.models import MLPConfig, build_mlp_pair
from sivae.toy2d.study import run_toy2d, summarize, write_table2

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", list(TOY_DATASETS))
def test_datasets_are_seeded_2d_and_within_the_plot_square(name):
    a, b = sample_toy(name, 1001, seed=3), sample_toy(name, 1001, seed=3)
    assert a.shape == (1001, 2) and torch.equal(a, b)
    lim = get_toy_dataset(name).limit
    assert (a.abs() < lim).float().mean() > 0.97


def test_dataset_scales_match_the_public_code():
    g8 = sample_toy("8gaussians", 20000)
    assert g8.norm(dim=1).mean().item() == pytest.approx(2 / 1.414, abs=0.01)
    rings = sample_toy("rings", 20000).norm(dim=1)
    assert rings.max().item() < 3.5 and rings.min().item() > 0.4
    cb = sample_toy("checkerboard", 20000)
    cell = (torch.floor(cb[:, 0] / 2) + torch.floor(cb[:, 1] / 2)) % 2
    assert (cell == 0).all() or (cell == 1).all()  # only one colour of the board is populated


def test_unknown_dataset_and_model():
    with pytest.raises(DataError, match="choose one of"):
        get_toy_dataset("moons")
    with pytest.raises(ConfigError, match="unknown model"):
        resolve_hparams("rings", "gan")


def test_model_shapes():
    enc, dec = build_mlp_pair(MLPConfig(), seed=0)
    mu, logvar = enc(torch.randn(7, 2))
    assert mu.shape == logvar.shape == (7, 2) and dec(mu).shape == (7, 2)
    assert sum(isinstance(m, torch.nn.Linear) for m in enc.modules()) == 5  # in, 3 hidden, out
    e2, d2 = build_mlp_pair(MLPConfig(), seed=0)
    assert torch.equal(enc.net[0].weight, e2.net[0].weight)


def test_table5_lookup_and_overrides():
    assert resolve_hparams("spiral", "introvae") == dict(beta_rec=0.2, beta_kl=0.5, beta_neg=0.5, m=2.0)
    assert resolve_hparams("rings", "vae", beta_kl=0.3) == dict(beta_rec=0.8, beta_kl=0.3)
    assert len(TABLE5) == 12
    for bad in (-0.1, float("nan"), "abc"):
        with pytest.raises(ConfigError, match="beta_neg"):
            resolve_hparams("rings", "soft_intro_vae", beta_neg=bad)


def test_bad_input_leaves_existing_outputs_untouched(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"old": 1}')
    ck = tmp_path / "ck"
    for bad in (dict(datasets="rings,moons"), dict(methods="gan"), dict(beta_kl=-1)):
        with pytest.raises(ConfigError):
            run_toy2d(Toy2dConfig(n_iter=5, batch_size=8, ckpt_dir=ck, **bad))
    assert metrics.read_text() == '{"old": 1}' and not ck.exists()


@pytest.mark.slow
def test_tiny_run_summary_and_table(tmp_path):
    cfg = Toy2dConfig(datasets="8gaussians", methods="vae,soft_intro_vae", n_seeds=2, n_iter=6, batch_size=32,
                      ckpt_dir=tmp_path / "ck", n_samples=300, grid_size=16, progress=False, engine="single")
    runs = run_toy2d(cfg)
    assert len(runs) == 4 and runs[0].density.shape == (16, 16) and runs[1].density is None
    s = summarize(runs)
    assert s["8gaussians"]["vae"]["kl"]["n"] == 2
    md = write_table2(s, tmp_path / "m.json", tmp_path / "t.md")
    flat = json.loads((tmp_path / "m.json").read_text())
    assert set(flat["8gaussians"]) == {"vae", "soft_intro_vae"}
    assert {"kl", "jsd", "gnelbo_x1e7", "gnelbo_x1e7_std", "jsd_textbook", "kl_std"} <= set(flat["8gaussians"]["vae"])
    assert "gnelbo" not in flat["8gaussians"]["vae"]   # ~1e-7: `dvc metrics show` would print 0.0
    assert flat["8gaussians"]["vae"]["gnelbo_x1e7"] == pytest.approx(s["8gaussians"]["vae"]["gnelbo"]["mean"] * 1e7,
                                                                      rel=1e-5)
    assert "8 Gaussians" in md and "6.72" in md  # the paper's number beside ours
    row = next(line for line in md.splitlines() if "| gnelbo" in line)   # Table 2 shows the metrics file's scale
    assert "| gnelbo_x1e7 |" in row and f"{flat['8gaussians']['vae']['gnelbo_x1e7']:.3f}" in row
    assert (tmp_path / "ck" / "8gaussians" / "vae" / "seed1" / "last.pt").exists()
    again = run_toy2d(cfg.replace(methods="vae", n_seeds=1))  # resumes: loads, no training
    assert again[0].metrics == runs[0].metrics


@pytest.mark.slow
def test_stack_engine_gives_the_single_engines_results(tmp_path):
    cfg = Toy2dConfig(datasets="8gaussians,rings", methods="soft_intro_vae,vae", n_seeds=2, n_iter=30, batch_size=32,
                      n_iter_factor="", num_vae=5, n_samples=500, grid_size=16, progress=False, budget=True,
                      lr_milestones="0.5")
    single = run_toy2d(cfg.replace(ckpt_dir=tmp_path / "a", engine="single"))
    stack = run_toy2d(cfg.replace(ckpt_dir=tmp_path / "b", engine="stack"))
    assert [(r.dataset, r.model, r.seed) for r in single] == [(r.dataset, r.model, r.seed) for r in stack]
    for a, b in zip(single, stack):   # float32: the same trajectory up to rounding of sums
        for k in ("kl", "jsd", "gnelbo", "off_support_mass"):
            assert b.metrics[k] == pytest.approx(a.metrics[k], rel=1e-3, abs=1e-9), (a.dataset, a.model, a.seed, k)
        assert b.budget.keys() == a.budget.keys()
        assert [h["step"] for h in b.history] == [h["step"] for h in a.history]
    # one stack per method, and no per-run folders
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "b" / "stacks").iterdir()) == ["soft_intro_vae", "vae"]
    assert not (tmp_path / "b" / "8gaussians").exists()
    with pytest.raises(ConfigError, match="engine"):
        cfg.replace(ckpt_dir=tmp_path / "c", engine="batched")


def test_config_is_built_once_from_params_and_checked_once():
    cfg = Toy2dConfig.from_params({"n_iter": "8", "datasets": "rings", "methods": "soft_intro_vae", "beta_neg": 0.5,
                                   "lr_milestones": "0.5", "seed": 3, "n_seeds": 2, "num_vae": 2, "not_a_parameter": object()})
    assert (cfg.n_iter, cfg.datasets, cfg.seeds, cfg.lr_milestones, cfg.beta_neg) == (8, ("rings",), (3, 4), (0.5,),
                                                                                      0.5)
    specs = cfg.specs()
    assert [(s.dataset, s.method, s.seed) for s in specs] == [("rings", "soft_intro_vae", 3),
                                                             ("rings", "soft_intro_vae", 4)]
    tc = specs[0].config   # the run's TrainConfig: Table 5's weights, the override, the schedule
    assert (tc.beta_rec, tc.beta_kl, tc.beta_neg, tc.n_iter, tc.num_vae, tc.scale) == (0.2, 0.2, 0.5, 8, 2, 0.5)
    assert specs[0].hparams == dict(beta_rec=0.2, beta_kl=0.2, beta_neg=0.5)
    assert cfg.train_config("rings", "soft_intro_vae", 4) is specs[1].config   # built once, not per call
    assert Toy2dConfig.from_params(cfg.as_params()) == cfg   # a run record rebuilds the same config
    assert cfg.replace(n_iter=9).lr_milestones == (0.5,)     # replace re-checks parsed values
    for bad, name in ((dict(n_iter=0), "n_iter"), (dict(beta_neg=-1), "beta_neg"), (dict(lr_milestones="2"),
                      "lr_milestones"), (dict(datasets="moons"), "datasets"), (dict(n_seeds=0), "n_seeds"),
                      (dict(ckpt_dir=""), "ckpt_dir"), (dict(budget="maybe"), "budget")):
        with pytest.raises(ConfigError, match=name):
            cfg.replace(**bad)
    with pytest.raises(ConfigError, match="not a run of this configuration"):
        cfg.train_config("rings", "vae", 3)


@pytest.mark.parametrize("engine", ["single", "stack"])
def test_a_run_of_another_width_is_another_run(tmp_path, engine, monkeypatch):
    """`hidden` is part of a run's identity: the checkpoint of a 256-wide run is never loaded into 64-wide networks
    (a shape error deep in torch) nor returned as trained; under a stage it is set aside, and going back reuses it."""
    monkeypatch.setenv("SIVAE_STAGE", "toy2d")   # as under `python -m sivae.stage`: set aside, not an error
    cfg = Toy2dConfig(datasets="rings", methods="vae", n_seeds=1, n_iter=3, batch_size=8, n_samples=50,
                      grid_size=4, progress=False, budget=False, engine=engine, ckpt_dir=tmp_path)
    wide = run_toy2d(cfg)[0]
    narrow = run_toy2d(cfg.replace(hidden=64))[0]
    assert narrow.metrics != wide.metrics
    assert list(tmp_path.rglob("other_configurations"))   # the 256-wide run was kept
    assert run_toy2d(cfg)[0].metrics == wide.metrics      # and brought back, not retrained differently


def test_n_iter_factor_lengthens_only_the_datasets_it_names():
    cfg = Toy2dConfig(datasets="8gaussians,spiral", methods="vae,soft_intro_vae", n_seeds=1, n_iter=100,
                      n_iter_factor="8gaussians:2.5", lr_milestones="0.5")
    assert cfg.n_iter_factor == {"8gaussians": 2.5} and (cfg.n_iter_of("8gaussians"), cfg.n_iter_of("spiral")) == (250, 100)
    by = {(s.dataset, s.method): s.config for s in cfg.specs()}
    assert by["8gaussians", "soft_intro_vae"].n_iter == 250 and by["spiral", "soft_intro_vae"].n_iter == 100
    assert by["8gaussians", "vae"].n_iter == 250 and by["8gaussians", "soft_intro_vae"].num_vae == cfg.num_vae
    assert Toy2dConfig.from_params(cfg.as_params()) == cfg            # the run record's mapping rebuilds it
    assert Toy2dConfig(n_iter_factor={"rings": 3}).n_iter_of("rings") == 6000
    assert Toy2dConfig(n_iter_factor="").n_iter_factor == {} == Toy2dConfig(n_iter_factor=None).n_iter_factor
    # a factor for a dataset this run does not train is allowed (a profile's value with -p datasets=spiral)
    assert Toy2dConfig(datasets="spiral", n_iter_factor="8gaussians:2").n_iter_of("spiral") == 2000
    for bad, says in (("moons:2", "unknown dataset 'moons'"), ("8gaussians:-1", "8gaussians"),
                      ("8gaussians:nan", "8gaussians"), ("8gaussians:0", "> 0"), ("8gaussians", "dataset:factor"),
                      ("8gaussians=2", "dataset:factor"), ("8gaussians:2,8gaussians:3", "twice"),
                      (["8gaussians"], "mapping"), ("8gaussians:1e9", "n_iter for 8gaussians")):
        with pytest.raises(ConfigError, match=says):
            cfg.replace(n_iter_factor=bad)


@pytest.mark.slow
def test_a_longer_dataset_leaves_the_others_runs_unchanged(tmp_path):
    """8 Gaussians at 2x n_iter trains in its own stack (its budget steps reach 2x); Rings' runs, stacked
    without it now, keep their schedule and their results up to rounding (a stack of another composition sums
    in another order: at the stage's size session 21's Rings KL moved 17.87 -> 17.94); the single engine gives
    the stack's numbers."""
    base = dict(datasets="8gaussians,rings", methods="vae", n_seeds=2, n_iter=40, batch_size=64, n_samples=300,
                grid_size=8, progress=False, budget=True)
    plain = run_toy2d(Toy2dConfig(ckpt_dir=tmp_path / "a", n_iter_factor="", **base))
    longer = run_toy2d(Toy2dConfig(ckpt_dir=tmp_path / "b", n_iter_factor="8gaussians:2", **base))
    single = run_toy2d(Toy2dConfig(ckpt_dir=tmp_path / "c", n_iter_factor="8gaussians:2", engine="single", **base))
    for p, lo, si in zip(plain, longer, single):
        assert si.metrics == pytest.approx(lo.metrics, rel=1e-3, abs=1e-9)
        if p.dataset == "rings":
            assert lo.metrics == pytest.approx(p.metrics, rel=1e-3, abs=1e-9) and max(lo.budget) == 40
            assert lo.budget.keys() == p.budget.keys() and lo.history[-1]["step"] == 40
        else:
            assert max(lo.budget) == 80 and lo.history[-1]["step"] == 80 and max(p.budget) == 40
    assert [r.metrics for r in longer if r.dataset == "8gaussians"] != [r.metrics for r in plain
                                                                       if r.dataset == "8gaussians"]
    assert len(list((tmp_path / "b" / "stacks").iterdir())) == 2   # one stack per schedule


def test_the_stability_and_sweep_grids_keep_their_own_n_iter():
    """The toy2d stage's n_iter_factor is not the stability section's nor the grid sweep's: their 8 Gaussians
    runs train their own n_iter."""
    from sivae.stability.config import StabilityConfig
    from sivae.toy2d import sweep
    st = StabilityConfig(dataset="8gaussians", n_iter=30)
    assert st.base.n_iter_factor == {} and {s.config.n_iter for g in st.grids.values() for c in g.values()
                                            for s in c.specs()} == {30}
    seen = {}

    def fake_train_grid(base, ranges):
        seen["n_iter"] = {s.config.n_iter for s in base.specs()}
        return []
    settings = {**read_section(ROOT / "params.yaml", "sweep_grid")[1], "dataset": "8gaussians", "n_iter": 30}
    with mock.patch.object(sweep, "train_grid", fake_train_grid), mock.patch.object(sweep, "write_grid",
                                                                                    lambda *a, **k: {}):
        sweep.run_sweep_grid(settings)
    assert seen["n_iter"] == {30}
