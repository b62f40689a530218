"""Each loss against a direct transcription of docs/EQUATIONS.md on fixed tensors."""
import math

import pytest
import torch

from sivae import losses as L

torch.manual_seed(0)
B, DZ, DX = 5, 3, 4
MU, LOGVAR = torch.randn(B, DZ), torch.randn(B, DZ) * 0.5
X, XR = torch.randn(B, DX), torch.randn(B, DX)
T = {k: torch.rand(B) * 3 for k in ("rec", "kl", "rec_f", "kl_f", "rec_r", "kl_r")}


def test_kl_matches_formula_and_closed_form_cases():
    expected = torch.tensor([-0.5 * sum(1 + LOGVAR[i, j].item() - MU[i, j].item() ** 2 - math.exp(LOGVAR[i, j].item())
                                        for j in range(DZ)) for i in range(B)])
    torch.testing.assert_close(L.kl_divergence(MU, LOGVAR), expected)
    assert L.kl_divergence(torch.zeros(2, DZ), torch.zeros(2, DZ)).abs().max() == 0  # q = prior


def test_kl_equals_monte_carlo_estimate():
    mu, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[-0.3, 0.4]])
    g = torch.Generator().manual_seed(1)
    z = L.reparameterize(mu.expand(200_000, 2), logvar.expand(200_000, 2), g)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(0.0, 1.0)
    mc = (q.log_prob(z) - p.log_prob(z)).sum(1).mean()
    assert abs(mc.item() - L.kl_divergence(mu, logvar).item()) < 0.01


def test_reconstruction_is_summed_squared_error():
    expected = torch.tensor([sum((X[i, j].item() - XR[i, j].item()) ** 2 for j in range(DX)) for i in range(B)])
    torch.testing.assert_close(L.reconstruction_error(X, XR), expected)
    img = torch.rand(2, 3, 4, 4)
    assert L.reconstruction_error(img, img * 0).tolist() == pytest.approx(img.pow(2).sum((1, 2, 3)).tolist())


def test_vae_loss():
    got = L.vae_loss(T["rec"], T["kl"], 0.8, 0.05)
    assert got.item() == pytest.approx(sum(0.8 * T["rec"][i].item() + 0.05 * T["kl"][i].item() for i in range(B)) / B)


def test_introvae_losses_transcription():
    br, bk, bn, m = 0.3, 0.5, 1.0, 2.0
    got_e = L.introvae_encoder_loss(T["rec"], T["kl"], T["kl_f"], T["kl_r"], beta_rec=br, beta_kl=bk, beta_neg=bn, m=m)
    exp_e = sum(br * T["rec"][i] + bk * T["kl"][i] + bn * 0.5 * (max(0.0, m - T["kl_f"][i].item())
                                                              + max(0.0, m - T["kl_r"][i].item())) for i in range(B)) / B
    assert got_e.item() == pytest.approx(float(exp_e), rel=1e-6)
    got_d = L.introvae_decoder_loss(T["rec"], T["kl_f"], T["kl_r"], beta_rec=br, beta_neg=bn)
    exp_d = sum(br * T["rec"][i] + bn * 0.5 * (T["kl_f"][i] + T["kl_r"][i]) for i in range(B)) / B
    assert got_d.item() == pytest.approx(float(exp_d), rel=1e-6)


def test_soft_intro_encoder_loss_transcription():
    s, br, bk, bn = 1 / DX, 0.2, 0.3, 0.9
    got = L.soft_intro_encoder_loss(T["rec"], T["kl"], T["rec_f"], T["kl_f"], T["rec_r"], T["kl_r"],
                                    s=s, beta_rec=br, beta_kl=bk, beta_neg=bn, alpha=2.0)
    mean = lambda v: sum(v) / len(v)
    real = s * (br * mean(T["rec"].tolist()) + bk * mean(T["kl"].tolist()))
    ef = mean([math.exp(-2 * s * (br * T["rec_f"][i].item() + bn * T["kl_f"][i].item())) for i in range(B)])
    er = mean([math.exp(-2 * s * (br * T["rec_r"][i].item() + bn * T["kl_r"][i].item())) for i in range(B)])
    assert got.item() == pytest.approx(real + 0.25 * (ef + er), rel=1e-6)  # alpha = 2 -> factor 0.25
    got3 = L.soft_intro_encoder_loss(T["rec"], T["kl"], T["rec_f"], T["kl_f"], T["rec_r"], T["kl_r"],
                                     s=s, beta_rec=br, beta_kl=bk, beta_neg=bn, alpha=3.0)
    ef3 = mean([math.exp(-3 * s * (br * T["rec_f"][i].item() + bn * T["kl_f"][i].item())) for i in range(B)])
    er3 = mean([math.exp(-3 * s * (br * T["rec_r"][i].item() + bn * T["kl_r"][i].item())) for i in range(B)])
    assert got3.item() == pytest.approx(real + (1 / 3) * 0.5 * (ef3 + er3), rel=1e-6)


def test_soft_intro_decoder_loss_transcription():
    s, br, bk, gr = 0.5, 0.2, 0.3, 1e-8
    got = L.soft_intro_decoder_loss(T["rec"], T["kl_f"], T["kl_r"], T["rec_f"], T["rec_r"],
                                    s=s, beta_rec=br, beta_kl=bk, gamma_r=gr)
    exp = s * sum(br * T["rec"][i] + bk * 0.5 * (T["kl_f"][i] + T["kl_r"][i])
                  + gr * br * 0.5 * (T["rec_f"][i] + T["rec_r"][i]) for i in range(B)) / B
    assert got.item() == pytest.approx(float(exp), rel=1e-6)


def test_hinge_gradient_vanishes_above_margin_soft_term_never_does():
    kl_f = torch.tensor([3.0, 0.5], requires_grad=True)
    L.introvae_encoder_loss(torch.zeros(2), torch.zeros(2), kl_f, kl_f.detach(), beta_rec=1, beta_kl=1,
                            beta_neg=1, m=1.0).backward()
    assert kl_f.grad[0] == 0 and kl_f.grad[1] != 0  # KL(fake) > m: no adversarial signal
    kl_f2 = torch.tensor([3.0, 30.0], requires_grad=True)
    L.soft_intro_encoder_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), kl_f2, torch.zeros(2),
                              torch.zeros(2), s=0.5, beta_rec=1, beta_kl=1, beta_neg=1).backward()
    assert (kl_f2.grad != 0).all()
