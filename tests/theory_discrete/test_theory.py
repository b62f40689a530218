"""Tests of sivae.theory: d* (Eq. 6), Lemma 4, the exact objectives (Eq. 12/13) and the game."""
import json

import numpy as np
import pytest
import torch

from sivae import theory_discrete as T
from sivae.theory_discrete import plots as TP

K, M = 6, 4


def _random_pdata(rng, k, zeros=0):
    p = rng.dirichlet(np.ones(k))
    p[:zeros] = 0.0
    return p / p.sum()


def _mirror_descent_best(p, gamma, n_starts=64, n_iter=3000, lr=0.02, seed=0):
    """Best objective over many exponentiated-gradient runs on the support (reference)."""
    sup = p > 0
    ps = p[sup]
    d = np.random.default_rng(seed).dirichlet(np.ones(ps.size), size=n_starts)
    for _ in range(n_iter):
        grad = -ps / d - gamma * (np.log(d) + 1)
        d = d * np.exp(-lr * np.clip(grad, -50, 50))
        d = np.maximum(d / d.sum(1, keepdims=True), 1e-300)
    return min(T.dstar_objective(x, ps, gamma) for x in d)


# ---------------------------------------------------------------------- d*
@pytest.mark.parametrize("name", T.PDATA_NAMES)
def test_dstar_equals_pdata_at_gamma0(name):
    p = T.make_pdata(name, K)
    np.testing.assert_allclose(T.solve_dstar(p, 0.0), p, atol=1e-15)


@pytest.mark.parametrize("name", T.PDATA_NAMES)
def test_dstar_entropy_nonincreasing_in_gamma(name):
    path = T.dstar_path(T.make_pdata(name, K), np.linspace(0, 3, 31), [1.0])
    assert np.all(np.diff(path["entropy"]) <= 1e-12)
    assert np.all(path["tv"] <= path["pinsker"] + 1e-12)      # Theorem 7 via Pinsker


@pytest.mark.parametrize("gamma", [0.05, 0.3, 1.0, 2.5])
@pytest.mark.parametrize("name", T.PDATA_NAMES)
def test_dstar_satisfies_kkt(name, gamma):
    p = T.make_pdata(name, K)
    d = T.solve_dstar(p, gamma)
    rep = T.kkt_report(d, p, gamma)
    assert rep["stationarity"] < 1e-10
    assert rep["sum_residual"] < 1e-12
    assert rep["off_support_mass"] == 0.0
    assert rep["min_curvature"] > -1e-9
    assert np.all(d[p > 0] > 0)                                # no mode dropping


@pytest.mark.parametrize("gamma", [0.2, 0.8, 1.5, 4.0])
def test_dstar_is_global_minimum(gamma):
    rng = np.random.default_rng(1)
    for zeros in (0, 1):
        p = _random_pdata(rng, 5, zeros)
        d = T.solve_dstar(p, gamma)
        assert T.dstar_objective(d, p, gamma) <= _mirror_descent_best(p, gamma) + 1e-9


def test_assumption1_and_lemma4():
    p = T.make_pdata("sparse", K)
    assert T.assumption1_holds(p, T.solve_dstar(p, 0.0), alpha=1.0)   # Theorem 7 at gamma = 0
    assert not T.assumption1_holds(p, T.solve_dstar(p, 3.0), alpha=1.0)
    kl = T.lemma4_kl(p, p, alpha=2.0)
    assert np.all(kl[p > 0] == 0) and np.all(np.isinf(kl[p == 0]))
    pd = np.array([0.8, 0.0, 0.15, 0.0, 0.05, 0.0])
    assert T.lemma4_kl(p, pd, 1.0)[0] == pytest.approx(np.log(0.8 ** 2 / 0.5))


# --------------------------------------------------------------- exact model
def _random_players(seed, b=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, K, M, generator=g, dtype=torch.float64),
            torch.randn(b, M, K, generator=g, dtype=torch.float64))


def test_elbo_identity_and_posterior():
    enc, dec = _random_players(0)
    log_prior = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64))
    t = T.exact_terms(enc, dec, log_prior)
    assert torch.all(t["kl_post"] >= -1e-12) and torch.all(t["elbo"] <= t["log_pd"] + 1e-12)
    joint = torch.log_softmax(dec, -1).transpose(1, 2) + log_prior     # q := true posterior
    t2 = T.exact_terms(joint, dec, log_prior)
    torch.testing.assert_close(t2["elbo"], t2["log_pd"], atol=1e-12, rtol=0)


def test_decoder_objective_at_posterior_is_eq6():
    """With q = p_d(z|x), L_D = -(KL(p_data || p_d) + H(p_data) + gamma H(p_d)), so d* of Eq. 6."""
    enc, dec = _random_players(1)
    log_prior = torch.full((M,), -np.log(M), dtype=torch.float64)
    joint = torch.log_softmax(dec, -1).transpose(1, 2) + log_prior
    p = T.make_pdata("peaked", K)
    t = T.exact_terms(joint, dec, log_prior)
    pd = t["log_pd"].exp()[0].numpy()
    f64 = lambda v: torch.tensor([v], dtype=torch.float64)
    l_e, l_d = T.sintro_objectives(t, torch.tensor(p)[None], f64(2.0), f64(0.7))
    want = -(T.kl_divergence(p, pd) + T.entropy(p) + 0.7 * T.entropy(pd))
    assert float(l_d) == pytest.approx(want, abs=1e-12)
    assert float(l_e) == pytest.approx(-T.kl_divergence(p, pd) - T.entropy(p) - np.sum(pd ** 3) / 2, abs=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("alpha,gamma", [(1.0, 1.0), (2.0, 0.5)])
def test_exact_objectives_match_monte_carlo(alpha, gamma):
    enc, dec = _random_players(2)
    log_prior = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64))
    p = torch.tensor(T.make_pdata("smooth", K))
    l_e, l_d = T.sintro_objectives(T.exact_terms(enc, dec, log_prior), p[None],
                                   torch.tensor([alpha], dtype=torch.float64),
                                   torch.tensor([gamma], dtype=torch.float64))
    g = torch.Generator().manual_seed(3)
    mc = np.array([T.mc_sintro_objectives(enc[0], dec[0], log_prior, p, alpha, gamma, 20000, g)
                   for _ in range(20)])
    se = mc.std(0, ddof=1) / np.sqrt(len(mc))
    assert abs(mc[:, 0].mean() - float(l_e)) < 5 * se[0] + 1e-3    # + bias of exp(mean ELBO)
    assert abs(mc[:, 1].mean() - float(l_d)) < 5 * se[1]


def test_introvae_hinge_vanishes_beyond_margin():
    enc, dec = _random_players(4)
    t = T.exact_terms(enc, dec, torch.full((M,), -np.log(M), dtype=torch.float64))
    p = torch.tensor(T.make_pdata("smooth", K))[None]
    l_e, _ = T.introvae_objectives(t, p, margin=0.0)
    torch.testing.assert_close(l_e, (p * t["elbo"]).sum(-1))


# ------------------------------------------------------------------ dynamics
@pytest.mark.slow
@pytest.mark.parametrize("mode", T.MODES)
def test_game_reaches_dstar_and_posterior(mode):
    """Assumption 1 holds in both cases: Theorem 3 / 6 (fixed seed, stated tolerances)."""
    settings = T.build_settings(["peaked", "sparse"], [0.3], [2.0], K)
    assert all(s.holds for s in settings)
    res = T.run_groups({"g": T.settings_group(settings, mode)}, M, T.GameConfig(n_steps=2000), seed=0)["g"]
    met = T.setting_metrics(settings, res)
    for s in settings:
        assert met[s.key]["max_abs_pd_minus_dstar"] < 2e-3, s.key
        assert met[s.key]["max_kl_to_posterior"] < 1e-4, s.key
        assert np.abs(res["p_d"][settings.index(s)] - s.p_data).max() > 0.05  # d* != p_data
    sparse = met[settings[1].key]
    assert sparse["min_kl_off_support_end"] > sparse["min_kl_off_support_start"]


@pytest.mark.slow
def test_ablation_collapses_entropy():
    p = T.make_pdata("smooth", K)
    res = T.run_game(np.stack([p] * 4), 2.0, 0.5, M, T.GameConfig(n_steps=1500, objective="sintro_norec"))
    assert np.median([T.entropy(x) for x in res["p_d"]]) < 0.1 * T.entropy(p)


# ------------------------------------------------------------------- inputs
@pytest.mark.parametrize("call,pattern", [
    (lambda: T.solve_dstar([0.5, 0.4], 0.1), r"p_data must sum to 1, got sum=0\.9"),
    (lambda: T.solve_dstar([0.5, 0.5], -0.1), r"gamma .*-0\.1"),
    (lambda: T.solve_dstar([1.0], 0.1), r"K must be >= 2, got K=1"),
    (lambda: T.make_pdata("smooth", 1), r"K must be >= 2, got K=1"),
    (lambda: T.solve_dstar([1.2, -0.2], 0.1), r"p_data must be finite and non-negative"),
    (lambda: T.assumption1_holds([0.5, 0.5], [0.5, 0.5], 0.0), r"alpha must be > 0, got alpha=0"),
    (lambda: T.make_pdata("bimodal", K), r"name must be one of .*'bimodal'"),
    (lambda: T.run_game([[0.5, 0.5]], 1.0, 0.1, 2, T.GameConfig(mode="both")), r"mode must be in"),
    (lambda: T.run_game([[0.5, 0.5]], 1.0, -1.0, 2, T.GameConfig()), r"gamma .*-1\.0"),
])
def test_invalid_inputs_raise_value_error(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_save_json_keeps_old_file_on_error(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    T.save_json({"a": 1}, path)
    with pytest.raises(TypeError):
        T.save_json({"a": object()}, path)
    assert json.loads(path.read_text()) == {"a": 1}
    assert list(path.parent.iterdir()) == [path]


def test_slider_is_none_outside_a_live_kernel():
    assert TP.interactive_dstar(K, T.PDATA_NAMES, enabled=True) is None
    assert TP.interactive_dstar(K, T.PDATA_NAMES, enabled=False) is None
