"""Section 6.2 / Appendix 9.5 code (sivae.stability.study) and the Table 5 sweep tools (sivae.toy2d.sweep)."""
import json

import numpy as np
import pytest
import torch

from sivae import ConfigError
from sivae import losses as L
from sivae.stability import config as C
from sivae.stability import study as S
from sivae.toy2d import sweep as W
from sivae.toy2d.config import Toy2dConfig
from sivae.toy2d.models import MLPConfig, MLPDecoder, MLPEncoder
from sivae.toy2d.study import ToyRun

# ------------------------------------------------------ the hinge, at the parameter level

def _encoder_grads(loss, enc):
    return torch.autograd.grad(loss, list(enc.parameters()), allow_unused=True, retain_graph=True)


def _fake_terms(enc, dec, x_f):
    mu, logvar = enc(x_f)
    kl_f = L.kl_divergence(mu, logvar)
    rec_f = L.reconstruction_error(x_f, dec(L.reparameterize(mu, logvar, torch.Generator().manual_seed(1))))
    return kl_f, rec_f


def test_introvae_encoder_gradient_of_the_fake_term_is_zero_above_m_soft_term_never():
    torch.manual_seed(0)
    cfg = MLPConfig(hidden=16, n_hidden=1)
    enc, dec = MLPEncoder(cfg), MLPDecoder(cfg)
    x_f = dec(torch.randn(32, 2)).detach() * 5          # decoded fakes, as the trainer feeds them
    kl_f, rec_f = _fake_terms(enc, dec, x_f)
    zeros = torch.zeros(32)
    hp = dict(beta_rec=0.3, beta_kl=0.5, beta_neg=1.0)
    # real terms zero: the loss holds only the hinge on the fakes (KL(x_r) term set inactive)
    above = L.introvae_encoder_loss(zeros, zeros, kl_f, kl_f.detach(), m=0.5 * kl_f.min().item(), **hp)
    g = _encoder_grads(above, enc)
    assert all(gi is None or torch.count_nonzero(gi) == 0 for gi in g), "hinge must pass no gradient once KL(fake) > m"
    below = L.introvae_encoder_loss(zeros, zeros, kl_f, kl_f.detach(), m=2 * kl_f.max().item(), **hp)
    assert sum(torch.count_nonzero(gi) for gi in _encoder_grads(below, enc) if gi is not None) > 0
    # Soft-IntroVAE's expELBO term on the same fakes, with the same KL(fake) > m: never exactly zero
    soft = L.soft_intro_encoder_loss(zeros, zeros, rec_f, kl_f, rec_f.detach(), kl_f.detach(), s=0.5,
                                     beta_rec=0.2, beta_kl=0.3, beta_neg=0.9)
    assert sum(torch.count_nonzero(gi) for gi in _encoder_grads(soft, enc) if gi is not None) > 0


# ------------------------------------------------------------------- stability helpers

def _run(model, m, kl_fakes, kl=1.0, seed=0):
    hist = [{"step": 50 * (i + 1), "kl_fake": v, "kl_real": 1.0 / (i + 1)} for i, v in enumerate(kl_fakes)]
    hp = {"beta_rec": 0.3, "beta_kl": 0.5, "beta_neg": 1.0} | ({"m": m} if m is not None else {})
    met = {"kl": kl, "jsd": kl / 2, "gnelbo": 1e-5, "jsd_textbook": 0.1}
    return ToyRun("8gaussians", model, seed, hp, met, hist, np.zeros((4, 2)), np.zeros((4, 2)), None)


def test_summarize_grid_counts_how_often_kl_fake_is_above_m():
    grid = {1.0: [_run("introvae", 1.0, [0.5, 2.0, 3.0, 0.1], kl=2.0), _run("introvae", 1.0, [2.0] * 4, kl=4.0, seed=1)],
            10.0: [_run("introvae", 10.0, [0.5] * 4, kl=8.0)]}
    s = S.summarize_grid(grid)
    assert s[1.0]["frac_kl_fake_above_m"] == pytest.approx(6 / 8)
    assert s[10.0]["frac_kl_fake_above_m"] == 0
    assert s[1.0]["kl"] == pytest.approx(3.0) and s[1.0]["kl_std"] == pytest.approx(np.std([2, 4], ddof=1))
    assert s[1.0]["kl_fake_final"] == pytest.approx((0.1 + 2.0) / 2)
    assert S.spread_ratio(s) == pytest.approx(8 / 3)
    assert "| 10 |" in S.margin_table(s)


def test_subset_check_and_value_keys():
    with pytest.raises(ConfigError, match="curve_margins"):
        C.check_subset("curve_margins", [3.0], [1.0, 2.0])
    assert C.value_key("m", 0.1) == "m_0p1" and C.value_key("beta_neg", 50.0) == "beta_neg_50"
    assert C.table5_value("8gaussians", "introvae", "m") == 1.0


def test_config_derives_every_grid_point_once(tmp_path):
    cfg = C.StabilityConfig.from_params({"margins": "0.5,5", "curve_margins": "5", "beta_negs": "3", "n_seeds": 1,
                                         "n_iter": "4", "ckpt_dir": str(tmp_path), "lr_milestones": "0.5"})
    assert list(cfg.grids["m"]) == [0.5, 5.0] and list(cfg.grids["beta_neg"]) == [0.9, 3.0]   # Table 5's added
    point = cfg.grids["beta_neg"][3.0]
    assert point.methods == ("soft_intro_vae",) and point.beta_neg == 3.0 and point.n_iter == 4
    assert point.specs()[0].config.beta_neg == 3.0 and point.specs()[0].config.lr_milestones == (0.5,)
    assert point.ckpt_dir == str(tmp_path / "soft_intro_vae_beta_neg_3")
    assert cfg.collapse["soft_intro_vae"].specs()[0].hparams == dict(beta_rec=0.1, beta_kl=1.0, beta_neg=0.9)
    assert C.StabilityConfig.from_params(cfg.as_params()) == cfg
    for bad, name in ((dict(curve_margins="0.3"), "curve_margins"), (dict(margins="0,1"), "margins"),
                      (dict(collapse_beta_kl=-1), "collapse_beta_kl"), (dict(dataset="moons"), "dataset"),
                      (dict(n_iter="1e9"), "n_iter")):
        with pytest.raises(ConfigError, match=name):
            cfg.replace(**bad)


@pytest.mark.slow
def test_run_grid_trains_each_value_once_and_reloads_it(tmp_path):
    base = Toy2dConfig(datasets="8gaussians", n_seeds=1, n_iter=3, batch_size=8, device="cpu", n_samples=100,
                       grid_size=8, progress=False, budget=False, ckpt_dir=tmp_path, engine="single")
    grid = S.run_grid(C.grid_configs(base, "introvae", "m", [0.5, 5.0]), tmp_path / "stacks")
    assert [r[0].hparams["m"] for r in grid.values()] == [0.5, 5.0]
    assert (tmp_path / "introvae_m_0p5" / "8gaussians" / "introvae" / "seed0" / "last.pt").exists()
    again = S.run_grid(C.grid_configs(base, "introvae", "m", [0.5]), tmp_path / "stacks")
    assert again[0.5][0].metrics == grid[0.5][0].metrics  # reloaded from the checkpoint


# ----------------------------------------------------------------------------- sweeps

def test_queue_command_is_one_dvc_grid_per_dataset_and_model():
    argv = W.queue_command("8gaussians", "soft_intro_vae", ranges={"beta_rec": (0.1, 0.2)},
                             extra={"n_iter": 3, "lr_milestones": "0.3,0.5"})
    assert argv[:5] == ["dvc", "exp", "run", "--queue", "toy2d"]
    sets = dict(a.split("=", 1) for a in argv[6::2])
    assert sets["toy2d.methods"] == "soft_intro_vae" and sets["toy2d.beta_rec"] == "0.1,0.2"
    assert sets["toy2d.beta_kl"] == "0.05,0.1,0.2,0.3,0.4,0.5,0.8,1" and sets["toy2d.n_iter"] == "3"
    assert sets["toy2d.lr_milestones"] == '"0.3,0.5"'  # a fixed value, not a sweep axis
    assert "toy2d.m" not in sets
    assert W.grid_size("vae") == 64 and W.grid_size("introvae") == 64 * 5 * 6
    with pytest.raises(ConfigError):
        W.queue_command("moons", "vae")


def _exp(name, beta_rec, beta_kl, kl, models=("soft_intro_vae",)):
    params = {"toy2d": {"datasets": "8gaussians", "methods": ",".join(models), "beta_rec": beta_rec, "beta_kl": beta_kl,
                        "beta_neg": "table5", "m": "table5", "metrics_path": "outputs/toy2d/metrics.json"}}
    metrics = {"8gaussians": {mo: {"kl": kl, "jsd": kl / 2} for mo in models}}
    data = {"params": {"params.yaml": {"data": params}},
            "metrics": {"outputs/toy2d/metrics.json": {"data": metrics}}}
    return {"revs": [{"rev": f"{name}sha", "name": name, "data": data, "experiments": None}], "name": name}


def hand_made_exp_show():
    failed = {"revs": [{"rev": "badsha", "name": "failed-exp", "error": {"msg": "failed"},
                        "data": {"params": {"params.yaml": {"data": {"toy2d": {"metrics_path": "m.json"}}}}}}]}
    workspace = {"rev": "workspace", "name": None, "data": {"params": {}}, "experiments": None}
    return [workspace, {"rev": "abc", "name": "main", "data": {}, "experiments": [
        _exp("exp-a", 0.1, 0.1, 9.0), _exp("exp-b", 0.1, 0.2, 3.0), _exp("exp-c", 0.2, 0.1, 5.0),
        _exp("exp-d", 0.2, 0.2, 4.0), failed, _exp("exp-e", 0.5, 0.5, 1.0, models=("vae", "introvae"))]}]


def test_collector_picks_the_best_configuration_per_dataset_and_model(tmp_path, capsys):
    rows = W.collect_experiments(hand_made_exp_show())
    assert len(rows) == 6  # 4 Soft-IntroVAE + VAE and IntroVAE of exp-e; the failed one is skipped
    best = W.best_configurations(rows, "kl")
    b = best[("8gaussians", "soft_intro_vae")]
    assert b["name"] == "exp-b" and b["n_runs"] == 4
    assert b["hparams"] == {"beta_rec": 0.1, "beta_kl": 0.2, "beta_neg": 0.9}  # beta_neg from Table 5
    assert best[("8gaussians", "introvae")]["hparams"]["m"] == 1.0
    assert W.best_configurations(rows, "jsd")[("8gaussians", "soft_intro_vae")]["name"] == "exp-b"
    table = W.compare_with_table5(best)
    assert "| 8 Gaussians | Soft-IntroVAE | 4 | 3 | 0.1, 0.2, 0.9, - | 0.2, 0.3, 0.9, - | exp-b |" in table
    path = tmp_path / "show.json"
    path.write_text(json.dumps(hand_made_exp_show()))
    assert W.main(["collect", "--json", str(path), "--out", str(tmp_path / "best.md")]) == 0
    assert "exp-b" in capsys.readouterr().out and (tmp_path / "best.md").exists()
