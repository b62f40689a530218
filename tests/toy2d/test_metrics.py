"""2D metrics on cases with known answers."""
import math

import numpy as np
import pytest
import torch

from sivae.toy2d import metrics as M


def test_identical_samples_give_zero():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(2000, 2))
    h = M.density_histogram(s, 2.0)
    assert M.paper_kl(h, h) == pytest.approx(0, abs=1e-9)
    assert M.paper_jsd(h, h) == pytest.approx(0, abs=1e-9)
    assert M.textbook_jsd(h, h) == pytest.approx(0, abs=1e-12)


def test_hand_computed_histograms():
    # 2x2 bins over [-1, 1]^2, cell area 1. real: all in the lower-left cell (density 1);
    # fake: half lower-left, half upper-right (density 0.5 each).
    real = np.array([[-0.5, -0.5]] * 4)
    fake = np.array([[-0.5, -0.5]] * 2 + [[0.5, 0.5]] * 2)
    hr, hf = M.density_histogram(real, 1.0, bins=2), M.density_histogram(fake, 1.0, bins=2)
    assert hr.tolist() == [[1.0, 0.0], [0.0, 0.0]] and hf.tolist() == [[0.5, 0.0], [0.0, 0.5]]
    # KL = sum real*(log real - log fake) / rows = 1*log(1/0.5) / 2
    assert M.paper_kl(hr, hf) == pytest.approx(math.log(2) / 2)
    # M = [[0.75,0],[0,0.25]]; JSD = 1/2 [ (0.75 log(.75/1) + 0.25 log(.25/1e-14)) + (0.75 log(.75/.5) + 0.25 log(.25/.5)) ] / 2
    kl_mr = 0.75 * math.log(0.75 / 1) + 0.25 * (math.log(0.25) - math.log(1e-14))
    kl_mf = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert M.paper_jsd(hr, hf) == pytest.approx(0.5 * (kl_mr + kl_mf) / 2)
    # textbook JSD of (1, 0) vs (0.5, 0.5)
    m = [0.75, 0.25]
    tb = 0.5 * (1 * math.log(1 / m[0])) + 0.5 * (0.5 * math.log(0.5 / m[0]) + 0.5 * math.log(0.5 / m[1]))
    assert M.textbook_jsd(hr, hf) == pytest.approx(tb)


def test_paper_kl_matches_torch_kl_div_convention():
    rng = np.random.default_rng(1)
    hr = M.density_histogram(rng.normal(size=(3000, 2)), 2.0)
    hf = M.density_histogram(rng.normal(size=(3000, 2)) * 1.3, 2.0)
    ref = torch.nn.functional.kl_div(torch.log(torch.tensor(hf) + 1e-14), torch.tensor(hr), reduction="batchmean")
    assert M.paper_kl(hr, hf) == pytest.approx(ref.item(), rel=1e-9)
    mid = torch.tensor(0.5 * (hr + hf))
    ref_j = 0.5 * (torch.nn.functional.kl_div(torch.log(torch.tensor(hr) + 1e-14), mid, reduction="batchmean")
                   + torch.nn.functional.kl_div(torch.log(torch.tensor(hf) + 1e-14), mid, reduction="batchmean"))
    assert M.paper_jsd(hr, hf) == pytest.approx(ref_j.item(), rel=1e-9)


def test_grid_and_gnelbo():
    axis, pts = M.make_grid(2.0, 5)
    assert pts.shape == (25, 2) and axis[0] == -2 and axis[-1] == 2
    assert M.grid_normalized_elbo(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 4.0])) == pytest.approx(3 / 10)


def test_negative_elbo_points_is_rec_plus_kl_of_mean():
    class Enc(torch.nn.Module):
        def forward(self, x):
            return x * 0.5, torch.zeros_like(x)

    class Dec(torch.nn.Module):
        def forward(self, z):
            return z * 2

    x = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    # D(mu) = x exactly -> Rec = 0; KL = 1/2 * sum mu^2
    expected = 0.5 * (0.5 * x).pow(2).sum(1)
    torch.testing.assert_close(M.negative_elbo_points(Enc(), Dec(), x), expected.double())


def test_near_support_share_and_modes_covered_tell_the_modes_from_a_ring_and_a_blur():
    from sivae.toy2d.data import EIGHT_GAUSSIANS_MODES, sample_toy
    real, support = sample_toy("8gaussians", 4000, 1).numpy(), sample_toy("8gaussians", 20000, 2).numpy()
    t = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
    ring = 1.414 * np.stack([np.cos(t), np.sin(t)], axis=1)              # through the modes, as a failed model draws
    blur = real + 0.2 * np.random.default_rng(0).standard_normal(real.shape)
    assert M.near_support_share(real, support, 0.04) > 0.99 and M.modes_covered(real, EIGHT_GAUSSIANS_MODES, 0.1) == 8
    assert M.near_support_share(ring, support, 0.04) < 0.3 and M.modes_covered(ring, EIGHT_GAUSSIANS_MODES, 0.1) == 0
    assert M.near_support_share(blur, support, 0.04) < 0.3 and M.modes_covered(blur, EIGHT_GAUSSIANS_MODES, 0.1) == 0
    five = real[np.linalg.norm(real[:, None] - EIGHT_GAUSSIANS_MODES[None, :5], axis=2).min(axis=1) < 0.1]
    assert M.modes_covered(five, EIGHT_GAUSSIANS_MODES, 0.1) == 5      # three modes dropped
