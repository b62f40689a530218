"""The OOD scores beyond the paper (sivae.ood.scores) on constructed cases whose right answer is known,
and the near-OOD pairs' parser and sets (sivae.ood.near)."""
import math

import numpy as np
import pytest
import torch
from test_ood import LinearGaussian

from sivae.errors import ConfigError, DataError
from sivae.ood import scores as S
from sivae.ood.metrics import auroc


# ------------------------------------------------------------------ AUROC / FPR at 95% TPR
def test_auroc_and_fpr_of_separated_equal_and_reversed_scores():
    a, b = np.arange(100.0) + 1000, np.arange(100.0)
    assert auroc(a, b) == 1.0 and S.fpr_at_tpr(a, b) == 0.0          # perfectly separated
    assert auroc(b, a) == 0.0 and S.fpr_at_tpr(b, a) == 1.0          # reversed
    assert auroc(b, b) == 0.5 and S.fpr_at_tpr(b, b) == pytest.approx(0.95, abs=0.011)   # chance
    # the threshold keeps at least 95% of the in-distribution scores
    a = np.arange(20.0)
    assert S.fpr_at_tpr(a, np.array([0.5, 0.99, 1.0, 1.5])) == 0.5    # threshold = a[1] = 1.0
    with pytest.raises(DataError, match="both sides"):
        S.fpr_at_tpr([], [1.0])
    with pytest.raises(ConfigError, match="tpr"):
        S.fpr_at_tpr([1.0], [1.0], tpr=0)


# ------------------------------------------------------------------ input complexity
def test_png_code_length_constant_image_is_short_and_noise_is_long():
    g = torch.Generator().manual_seed(0)
    const = torch.full((3, 1, 28, 28), 0.5)
    noise = torch.rand(3, 1, 28, 28, generator=g)
    lc, ln = S.png_code_length_bits(const), S.png_code_length_bits(noise)
    assert (lc < 8 * 120).all()                   # a few dozen bytes: header + a tiny zlib stream
    assert (ln > 8 * 28 * 28 * 0.9).all()         # uniform 8-bit noise does not compress (~784 bytes + header)
    assert lc[0] == lc[1] == lc[2]
    rgb = S.png_code_length_bits(torch.rand(2, 3, 8, 8, generator=g))
    assert rgb.shape == (2,) and (rgb > 8 * 3 * 64 * 0.9).all()
    with pytest.raises(DataError, match="1- or 3-channel"):
        S.png_code_length_bits(torch.rand(1, 2, 4, 4))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        S.png_code_length_bits(torch.full((1, 1, 4, 4), 2.0))


def test_png_code_length_is_the_file_size_pillow_writes():
    import io

    from PIL import Image
    x = torch.rand(1, 1, 10, 10, generator=torch.Generator().manual_seed(1))
    buf = io.BytesIO()
    Image.fromarray((x[0, 0].numpy() * 255).round().astype(np.uint8)).save(buf, format="PNG", compress_level=9)
    assert S.png_code_length_bits(x)[0] == 8 * len(buf.getvalue())


def test_input_complexity_units_and_the_score_it_gives():
    d = 16
    # log p in nats of a continuous density on [0,1]^d -> -log2 P of 8-bit pixels = -ll/ln2 + 8 d
    s = S.input_complexity([-math.log(2) * 10], [30.0], d)
    assert s[0] == pytest.approx(10 + 8 * d - 30)
    # two images of equal likelihood: the one that compresses worse (complex) is the more in-distribution
    sc = S.complexity_score([-50.0, -50.0], [100.0, 900.0], d)
    assert sc[1] > sc[0] and sc[1] - sc[0] == pytest.approx(800.0)
    with pytest.raises(DataError, match="one of each"):
        S.input_complexity([1.0, 2.0], [1.0], d)


def test_complexity_corrects_a_model_that_prefers_simple_images():
    # a "model" whose log-likelihood is minus the PNG code length plus a bonus for being in-distribution:
    # raw likelihood ranks constant images (simple, short code) above real ones; the complexity score
    # cancels the code length and leaves the bonus
    g = torch.Generator().manual_seed(0)
    real = (torch.rand(50, 1, 12, 12, generator=g) > 0.5).float()     # in-distribution: binary textures
    const = torch.rand(50, 1, 1, 1, generator=g).expand(50, 1, 12, 12).contiguous()
    ll = lambda x, bonus: -math.log(2) * S.png_code_length_bits(x) + bonus   # noqa: E731
    ll_in, ll_out = ll(real, 20.0), ll(const, 0.0)
    assert auroc(ll_in, ll_out) == 0.0
    d = 144
    c_in = S.complexity_score(ll_in, S.png_code_length_bits(real), d)
    c_out = S.complexity_score(ll_out, S.png_code_length_bits(const), d)
    assert auroc(c_in, c_out) == 1.0


# ------------------------------------------------------------------ likelihood ratio
def test_likelihood_ratio_cancels_the_background_of_a_known_gaussian_model():
    # x = (semantic x1, background x2). Model: N(0, 1) on x1, N(0, I) on x2. Background model: broad N(0, 3^2)
    # on x1, the same N(0, I) on x2. OOD: x1 shifted by 3, x2 very simple (std 0.1): the raw likelihood
    # prefers the OOD inputs (their x2 is near the mode); the ratio does not depend on x2 at all.
    from scipy.stats import norm
    rng = np.random.default_rng(0)
    n, d2 = 400, 50
    x_in = np.c_[rng.normal(0, 1, n), rng.normal(0, 1, (n, d2))]
    x_ood = np.c_[rng.normal(3, 1, n), rng.normal(0, 0.1, (n, d2))]
    model = lambda x: norm.logpdf(x[:, 0]) + norm.logpdf(x[:, 1:]).sum(1)            # noqa: E731
    background = lambda x: norm.logpdf(x[:, 0], 0, 3) + norm.logpdf(x[:, 1:]).sum(1)  # noqa: E731
    assert auroc(model(x_in), model(x_ood)) < 0.05
    lr_in, lr_out = S.likelihood_ratio(model(x_in), background(x_in)), S.likelihood_ratio(model(x_ood), background(x_ood))
    assert np.allclose(lr_in, norm.logpdf(x_in[:, 0]) - norm.logpdf(x_in[:, 0], 0, 3))   # x2 cancelled exactly
    assert auroc(lr_in, lr_out) > 0.95
    with pytest.raises(DataError, match="differ in shape"):
        S.likelihood_ratio([1.0], [1.0, 2.0])


def test_perturb_pixels_rate_levels_and_identity():
    x = torch.rand(200, 1, 10, 10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(S.perturb_pixels(x, 0.0), x)
    y = S.perturb_pixels(x, 0.2, seed=3)
    changed = (y != x)
    assert changed.float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert torch.allclose(y[changed] * 255, (y[changed] * 255).round(), atol=1e-4)   # uniform 8-bit levels
    assert 0 <= y.min() and y.max() <= 1 and torch.equal(y, S.perturb_pixels(x, 0.2, seed=3))
    with pytest.raises(ConfigError, match="mu must lie"):
        S.perturb_pixels(x, 1.5)


# ------------------------------------------------------------------ likelihood regret
def test_regret_is_zero_at_the_true_posterior_and_the_kl_gap_otherwise():
    # linear-Gaussian model (tests/ood/test_ood.py): with q = the true posterior the ELBO cannot rise (regret ~ 0);
    # with the posterior mean shifted by s, the ELBO rises by KL(q || posterior) = 1/2 sum_j s^2 / var_j
    lg = LinearGaussian(sigma2=0.3)
    x = lg.sample(40)
    enc, dec = lg.nets()
    r0 = S.likelihood_regret(enc, dec, x, steps=60, lr=0.05, n_eval=64, sigma2=lg.sigma2)
    assert r0.shape == (40,) and (r0 >= 0).all() and r0.mean() < 0.01
    enc, dec = lg.nets(mean_shift=0.5)
    gap = 0.5 * (0.25 / torch.diagonal(lg.post_cov)).sum().item()
    r = S.likelihood_regret(enc, dec, x, steps=60, lr=0.05, n_eval=64, sigma2=lg.sigma2, chunk=7)
    assert r.mean() == pytest.approx(gap, rel=0.1)
    assert np.array_equal(r, S.likelihood_regret(enc, dec, x, steps=60, lr=0.05, n_eval=64, sigma2=lg.sigma2,
                                                 chunk=7))                                    # seeded
    assert (S.likelihood_regret(enc, dec, x, steps=0, sigma2=lg.sigma2) == 0).all()
    with pytest.raises(ConfigError, match="regret needs"):
        S.likelihood_regret(enc, dec, x, steps=-1)


def test_regret_leaves_the_decoder_untouched():
    from torch import nn

    class Enc(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(16, 4)

        def forward(self, x):
            return self.lin(x.flatten(1)).chunk(2, 1)
    dec = nn.Sequential(nn.Linear(2, 16), nn.Sigmoid(), nn.Unflatten(1, (1, 4, 4)))
    before = [p.detach().clone() for p in dec.parameters()]
    S.likelihood_regret(Enc(), dec, torch.rand(5, 1, 4, 4), steps=3)
    assert all(torch.equal(a, b) for a, b in zip(before, dec.parameters()))
    assert all(p.grad is None for p in dec.parameters())


# ------------------------------------------------------------------ typicality
def test_typicality_flags_the_atypical_mode_of_a_high_dimensional_gaussian():
    # N(0, I_100): the mode x = 0 has the highest density but is atypical (|x|^2 ~ 100 for real samples);
    # inputs near the mode get a higher likelihood (AUROC ~ 0) and a lower typicality score (AUROC ~ 1)
    rng = np.random.default_rng(0)
    d = 100
    logp = lambda x: -0.5 * (x ** 2).sum(1) - 0.5 * d * math.log(2 * math.pi)   # noqa: E731
    train, test, ood = rng.normal(0, 1, (500, d)), rng.normal(0, 1, (300, d)), rng.normal(0, 0.3, (300, d))
    assert auroc(logp(test), logp(ood)) < 0.01
    t_in, t_out = S.typicality_score(logp(test), logp(train)), S.typicality_score(logp(ood), logp(train))
    assert auroc(t_in, t_out) > 0.99
    tb = S.typicality_score(logp(test), logp(train), batch_size=10, seed=1)
    assert tb.shape == (30,) and auroc(tb, S.typicality_score(logp(ood), logp(train), batch_size=10)) == 1.0
    assert S.typicality_score([-5.0], [-5.0, -3.0, -7.0])[0] == 0.0          # exactly the training mean
    with pytest.raises(ConfigError, match="batch_size"):
        S.typicality_score([1.0], [1.0], batch_size=0)


# ------------------------------------------------------------------ the findings ledger's rows of our own
def test_beyond_findings_are_judged_by_the_ledgers_rule():
    from sivae.findings import study as F

    def entry(v, s, v_reg):
        return {"kind": "near", "vae": {"auroc_loglik": v, "auroc_loglik_std": s, "auroc_regret": v_reg,
                                        "auroc_regret_std": s},
                "soft_intro_vae": {"auroc_loglik": v + 0.1, "auroc_loglik_std": s, "auroc_regret": v_reg - 0.1,
                                   "auroc_regret_std": s}}
    beyond = {"mnist->blur:mnist:1.0": entry(0.6, 0.01, 0.9), "f_without_9->heldout:f:9": entry(0.5, 0.01, 0.8),
              "mnist->constant": {"kind": "far", "vae": {"auroc_loglik": 0.1, "auroc_loglik_std": 0.01},
                                  "soft_intro_vae": {"auroc_loglik": 0.3, "auroc_loglik_std": 0.01}},
              "mnist->noise": {"kind": "far", "vae": {"auroc_loglik": 0.9, "auroc_loglik_std": 0.01}}}
    st = {"ood": {"metrics": {"beyond": beyond}, "params": {"n_seeds": 2}}}
    led = {f.id: f for f in F.build_ledger(st)}
    assert led["beyond-6.5-sivae-auroc-above-vae-near-loglik"].verdict == "holds"     # +0.1 >> spread
    assert led["beyond-6.5-sivae-auroc-above-vae-near-regret"].verdict == "fails"     # -0.1
    assert led["beyond-6.5-sivae-auroc-above-vae-near-ratio"].verdict == "not run"    # not scored
    assert led["beyond-6.5-regret-above-loglik-near"].verdict == "holds"    # every pair and model: +0.1 or more
    beyond["mnist->blur:mnist:1.0"]["vae"]["auroc_regret"] = 0.4            # one case reversed: the row fails
    led = {f.id: f for f in F.build_ledger(st)}
    assert led["beyond-6.5-regret-above-loglik-near"].verdict == "fails"
    assert led["beyond-6.5-constant-images-score-higher-loglik"].verdict == "holds"
    assert all(f.section == "6.5 (beyond the paper)" and f.statement.startswith("(Beyond the paper)")
               for f in led.values() if f.id.startswith("beyond-"))
    one_seed = {"ood": {"metrics": {"beyond": beyond}, "params": {"n_seeds": 1}}}
    assert {f.id: f for f in F.build_ledger(one_seed)}["beyond-6.5-sivae-auroc-above-vae-near-loglik"].verdict \
        == "inconclusive"
    assert {f.id: f for f in F.build_ledger({})}["beyond-6.5-sivae-auroc-above-vae-near-loglik"].verdict == "not run"


# ------------------------------------------------------------------ near-OOD pairs: one parser, named errors
def test_parse_near_pairs_forms_and_errors(tmp_path):
    from sivae.ood.near import NearPair, parse_near_pairs
    got = parse_near_pairs(f"heldout:fashionmnist:9, blur:mnist:1.0,shift:mnist:3, contrast:mnist:0.3, noise, constant,"
                           f"folder:{tmp_path}", ["mnist", "fashionmnist"])
    assert got == [NearPair("heldout:fashionmnist:9", "heldout", "fashionmnist", 9),
                   NearPair("blur:mnist:1.0", "blur", "mnist", 1.0), NearPair("shift:mnist:3", "shift", "mnist", 3),
                   NearPair("contrast:mnist:0.3", "contrast", "mnist", 0.3), NearPair("noise", "noise"),
                   NearPair("constant", "constant"), NearPair(f"folder:{tmp_path}", "folder", None, str(tmp_path))]
    assert parse_near_pairs("", ["mnist"]) == [] == parse_near_pairs("none", ["mnist"])
    assert parse_near_pairs(["noise"], ["mnist"]) == [NearPair("noise", "noise")]     # a YAML list works too
    assert parse_near_pairs("heldout:mnist:0", ["fashionmnist"])[0].dataset == "mnist"   # trains its own models
    bad = {"rotate:mnist:3": "unknown kind 'rotate'; the forms are heldout:<dataset>:<class>",
           "blur:mnist": r"expected blur:<dataset>:<sigma in pixels>",
           "blur:mnst:1": "unknown dataset 'mnst'",
           "blur:mnist:wide": "sigma must be a number, got 'wide'",
           "blur:mnist:0": "sigma 0 blurs nothing",
           "shift:mnist:1.5": "the shift in pixels must be an integer",
           "contrast:mnist:2": r"contrast factor must be a number in \[0, 1\]",
           "heldout:fashionmnist:10": r"held-out class must be an integer in \[0, 9\]",
           "blur:fashionmnist:1.0": "scored by the models trained on fashionmnist, but in_dist \\(mnist\\) has none",
           "noise:mnist": "noise takes nothing after it",
           "folder:": "a folder needs a path",
           "noise,noise": "listed twice"}
    for spec, msg in bad.items():
        with pytest.raises(ConfigError, match=msg):
            parse_near_pairs(spec, ["mnist"])
    with pytest.raises(DataError, match="does not exist"):
        parse_near_pairs(f"folder:{tmp_path / 'nope'}", ["mnist"])


def test_transformed_and_far_sets():
    from sivae.ood.near import far_images, transform_images
    x = torch.zeros(2, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    b = transform_images("blur", x, 1.0)
    assert b.shape == x.shape and b[0, 0, 4, 4] < 1 and float(b.sum()) == pytest.approx(float(x.sum()), rel=1e-4)   # mass kept
    s = transform_images("shift", x, 2)
    assert s[0, 0, 6, 6] == 1 and float(s.sum()) == float(x.sum())
    assert float(transform_images("shift", x, 9).sum()) == 0
    c = transform_images("contrast", torch.tensor([[[[0.0, 1.0]]]]), 0.5)
    assert torch.allclose(c, torch.tensor([[[[0.25, 0.75]]]]))
    const = far_images("constant", 5, (1, 4, 4), 0)
    assert const.shape == (5, 1, 4, 4) and (const.amax((1, 2, 3)) == const.amin((1, 2, 3))).all()
    noise = far_images("noise", 5, (3, 4, 4), 0)
    assert noise.shape == (5, 3, 4, 4) and torch.equal(noise, far_images("noise", 5, (3, 4, 4), 0))
    with pytest.raises(ConfigError, match="unknown transform"):
        transform_images("rotate", x, 1)


def test_most_telling_pair_and_the_table(tmp_path):
    from sivae.ood.near import beyond_metrics, most_telling_pair, summarize_beyond, write_beyond_table
    rows = [dict(in_dist="mnist", ood=o, kind=k, method=m, seed=s, auroc_loglik=a, auroc_regret=a + d, fpr95_loglik=0.5,
                 fpr95_regret=0.4)
            for o, k, a, d in (("fashionmnist", "paper", 0.9, 0.05), ("blur:mnist:1.0", "near", 0.4, 0.5),
                               ("constant", "far", 0.0, 1.0))
            for m in ("vae", "soft_intro_vae") for s in (0, 1)]
    summary = summarize_beyond(rows)
    telling = most_telling_pair(summary)
    assert telling == ("mnist", "blur:mnist:1.0") and telling.ood == "blur:mnist:1.0"   # far pairs are not candidates
    met = beyond_metrics(summary)
    assert met["mnist->blur:mnist:1.0"]["kind"] == "near" and met["mnist->constant"]["vae"]["auroc_regret"] == 1.0
    text = write_beyond_table(summary, tmp_path / "b.md")
    paper_row = next(ln for ln in text.splitlines() if "| fashionmnist | paper | IW log-likelihood" in ln)
    assert "0.992 ± 0.002" in paper_row                                     # the paper's number beside its pair
    assert text.index("| paper |") < text.index("| near |") < text.index("| far |")
