"""2D metrics of section 6.1 (Table 2), exactly as docs/EQUATIONS.md and the public code define them.

- `paper_kl`, `paper_jsd`: on 100x100 numpy density histograms (density=True, so cells hold
  densities) of real and generated samples over [-limit, limit]^2, with torch's
  kl_div(..., reduction="batchmean") convention (sum / number of histogram rows).
  paper_kl = KL(real || fake) / rows; paper_jsd = mean of KL(M || real) and KL(M || fake)
  (note the direction: this is *not* the textbook JSD).
- `textbook_jsd`: the usual JSD (nats) of the two histograms as probability vectors; reported
  beside the paper's numbers, labelled as such.
- `negative_elbo_points` and `grid_normalized_elbo` (gnELBO): the beta = 1 negative ELBO
  (Rec + KL, decoding mu) on a 1024x1024 grid and on 100 batches of 128 real samples; each real
  value is divided by the sum over grid and real values together, and the mean is reported.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .. import losses as L

__all__ = ["density_histogram", "paper_kl", "paper_jsd", "textbook_jsd", "make_grid",
           "negative_elbo_points", "grid_normalized_elbo", "off_support_mass", "near_support_share",
           "modes_covered"]

EPS = 1e-14  # the public code's floor inside the logs


def density_histogram(samples, limit: float, bins: int = 100) -> np.ndarray:
    """numpy histogram2d with density=True over [-limit, limit]^2; (bins, bins) array."""
    s = np.asarray(samples, dtype=np.float64)
    hist, _, _ = np.histogram2d(s[:, 0], s[:, 1], bins=bins, density=True,
                                range=[[-limit, limit], [-limit, limit]])
    return hist


def _kl_div_batchmean(log_input: np.ndarray, target: np.ndarray) -> float:
    """torch.nn.functional.kl_div(log_input, target, reduction='batchmean') in numpy:
    sum target * (log target - log_input) over cells with target > 0, divided by the rows."""
    pos = target > 0
    return float((target[pos] * (np.log(target[pos]) - log_input[pos])).sum() / target.shape[0])


def paper_kl(real: np.ndarray, fake: np.ndarray) -> float:
    """The paper's KL: kl_div(log(fake + 1e-14), real, batchmean) on density histograms."""
    return _kl_div_batchmean(np.log(fake + EPS), real)


def paper_jsd(real: np.ndarray, fake: np.ndarray) -> float:
    """The paper's JSD: 1/2 (kl_div(log(real+eps), M) + kl_div(log(fake+eps), M)), M = (real+fake)/2."""
    m = 0.5 * (real + fake)
    return 0.5 * (_kl_div_batchmean(np.log(real + EPS), m) + _kl_div_batchmean(np.log(fake + EPS), m))


def textbook_jsd(real: np.ndarray, fake: np.ndarray) -> float:
    """Textbook Jensen-Shannon divergence (nats, in [0, log 2]) of two histograms as distributions."""
    p, q = real / real.sum(), fake / fake.sum()
    m = 0.5 * (p + q)

    def kl(a, b):
        pos = a > 0
        return float((a[pos] * np.log(a[pos] / b[pos])).sum())
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def make_grid(limit: float, n: int = 1024) -> tuple[Tensor, Tensor]:
    """An n x n grid over [-limit, limit]^2: the axis (n,) and the points (n*n, 2), row-major in y."""
    axis = torch.linspace(-limit, limit, n)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return axis, torch.stack([xx.flatten(), yy.flatten()], dim=1)


@torch.no_grad()
def negative_elbo_points(encoder, decoder, points: Tensor, batch_size: int = 65536,
                         device: str | torch.device = "cpu") -> Tensor:
    """beta=1 negative ELBO (Rec(x, D(mu)) + KL) of every point, decoding the posterior mean.

    Args:
        encoder, decoder: the networks (put in eval mode here).
        points: (N, d_x). batch_size: points per forward pass.
    Returns:
        (N,) float64 tensor on the CPU.
    """
    encoder.eval(), decoder.eval()
    out = []
    for chunk in points.split(batch_size):
        chunk = chunk.to(device)
        mu, logvar = encoder(chunk)
        nelbo = L.reconstruction_error(chunk, decoder(mu)) + L.kl_divergence(mu, logvar)
        out.append(nelbo.double().cpu())
    return torch.cat(out)


def grid_normalized_elbo(grid_nelbo: Tensor, real_nelbo: Tensor) -> float:
    """gnELBO: mean over real samples of nelbo / (sum of grid nelbo + sum of real nelbo)."""
    total = grid_nelbo.sum() + real_nelbo.sum()
    return float((real_nelbo / total).mean())


def off_support_mass(grid_points: Tensor, grid_nelbo: Tensor, real: np.ndarray, limit: float, cells: int = 32,
                     min_mass: float = 1e-4) -> float:
    """Share of the model's density exp(-nELBO) that lies where the data has (almost) no mass.

    The square [-limit, limit]^2 is cut into cells x cells; a cell is off the support when the real
    samples put less than `min_mass` of their mass in it. The model's density over the grid points
    is normalised to 1 and summed over those cells. Figure 2's claim in one number: the VAE spreads
    mass between the modes, the introspective models keep it on the support.
    """
    def cell_of(xy):
        idx = np.clip(((np.asarray(xy) + limit) / (2 * limit) * cells).astype(int), 0, cells - 1)
        return idx[:, 1] * cells + idx[:, 0]
    true = np.bincount(cell_of(real), minlength=cells * cells) / len(real)
    w = torch.exp(-(grid_nelbo - grid_nelbo.min())).numpy()
    model = np.bincount(cell_of(grid_points.numpy()), weights=w, minlength=cells * cells)
    model = model / model.sum()
    return float(model[true < min_mass].sum())


def near_support_share(fake: np.ndarray, real: np.ndarray, radius: float) -> float:
    """Share of the generated samples within `radius` of some real sample (a sample-based precision): 1 when
    every sample lands on the data, low for a blur or a ring drawn between the modes."""
    from scipy.spatial import cKDTree
    dist, _ = cKDTree(np.asarray(real)).query(np.asarray(fake), k=1)
    return float(np.mean(dist <= radius))


def modes_covered(fake: np.ndarray, centres: np.ndarray, radius: float, min_share: float = 0.5) -> int:
    """How many modes hold at least `min_share` of their fair share (1 / number of modes) of the generated
    samples within `radius` of their centre: 8 for a model that draws every 8 Gaussians mode."""
    centres = np.asarray(centres)
    d = np.linalg.norm(np.asarray(fake)[:, None, :] - centres[None, :, :], axis=2)
    near = d.min(axis=1) <= radius
    counts = np.bincount(d.argmin(axis=1)[near], minlength=len(centres))
    return int(np.sum(counts / len(fake) >= min_share / len(centres)))
