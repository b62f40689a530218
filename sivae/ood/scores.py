"""OOD scores beyond the paper's likelihood (issue 34): the corrections the field uses since Nalisnick et al.

Every score here follows sivae.ood.metrics' convention: **higher = more in-distribution**, so the AUROC
(in-distribution test images as positives) of every score reads the same way; the papers' own OOD scores
(higher = more OOD) are the negatives of these. Log-likelihoods are in nats (sivae.ood.metrics: the
continuous density of images in [0, 1]^d, Gaussian decoder, normalising constant included).

- input complexity (Serra et al., ICLR 2020): S(x) = -log2 P(x) - L(x), in **bits**, L(x) the code length
  of x in bits under a lossless image codec. Here the codec is PNG through Pillow (`png_code_length_bits`:
  8-bit pixels, x quantised by round(255 x), grayscale "L" or "RGB", zlib level 9, the default adaptive
  filter, no `optimize` pass), so L(x) counts every byte of the file, headers included (a constant ~60
  bytes at 28x28, the same for every image). Serra's -log2 P(x) is the code length of the 8-bit pixels;
  our density is continuous on [0, 1]^d, whose bins have width 1/256, so -log2 P(x) ~= -log p(x) / ln 2 +
  8 d. The score is -S(x) (`complexity_score`); the constant 8 d shifts every image alike and changes no
  AUROC.
- likelihood ratio (Ren et al., NeurIPS 2019): log p_model(x) - log p_background(x), the background model
  trained on inputs perturbed by `perturb_pixels` (each value replaced, with probability mu, by a uniform
  draw of the 256 8-bit levels). It cancels what both models explain alike (background statistics).
- likelihood regret (Xiao et al., NeurIPS 2020): how much the ELBO of x rises when the posterior of x alone
  is optimised with the decoder fixed. Xiao et al. optimise the encoder's weights per image; here the
  per-image posterior parameters (mu, log var) are optimised, initialised at the encoder's output
  (`likelihood_regret`), which needs no copy of the encoder per image and runs every image of a chunk at
  once (Adam is elementwise, so each image's optimisation is independent of the others). Score: -regret.
- typicality (Nalisnick et al., 2019, "Detecting out-of-distribution inputs to deep generative models using
  typicality"): -| -mean_batch log p(x) - H |, H the mean of -log p over the training images; batch size 1
  scores single inputs (`typicality_score`).

`fpr_at_tpr`: the share of OOD inputs accepted at the threshold that keeps 95% of the in-distribution ones.
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, DataError
from ..losses import kl_divergence
from .metrics import _eval_mode, gaussian_log_likelihood

__all__ = ["SCORES", "SCORE_TITLES", "CODEC", "png_code_length_bits", "input_complexity", "complexity_score",
           "likelihood_ratio", "perturb_pixels", "likelihood_regret", "typicality_score", "fpr_at_tpr"]

# The scores of the beyond-the-paper table, in its column order (loglik: the paper's own score).
SCORES = ("loglik", "complexity", "ratio", "regret", "typicality")
SCORE_TITLES = {"loglik": "IW log-likelihood (paper)", "complexity": "input complexity (PNG)",
                "ratio": "likelihood ratio (background VAE)", "regret": "likelihood regret",
                "typicality": "typicality test"}
CODEC = "PNG via Pillow: 8-bit pixels (round(255 x)), mode L or RGB, zlib compress_level=9, no optimize pass"


def _check_images(x) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise DataError(f"images must be a float tensor N x C x H x W, got {got}")
    if x.numel() and (not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1):
        raise DataError("images must lie in [0, 1]")
    return x


def png_code_length_bits(x: Tensor, compress_level: int = 9) -> np.ndarray:
    """Code length L(x) in bits of each image as a PNG file (CODEC), headers included.

    Args:
        x: (N, C, H, W) images in [0, 1], C = 1 or 3. compress_level: zlib level 0..9.
    Returns:
        (N,) float64 array: 8 x the file size in bytes.
    """
    from PIL import Image
    x = _check_images(x)
    if x.shape[1] not in (1, 3):
        raise DataError(f"PNG codes 1- or 3-channel images, got {x.shape[1]} channels")
    if not (isinstance(compress_level, int) and 0 <= compress_level <= 9):
        raise ConfigError(f"compress_level must be an integer 0..9, got {compress_level!r}")
    u8 = (x.detach().cpu().float() * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = np.empty(len(u8))
    for i, img in enumerate(u8):
        buf = io.BytesIO()
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buf, format="PNG",
                                                                         compress_level=compress_level)
        out[i] = 8 * buf.tell()
    return out


def input_complexity(loglik, code_bits, dim: int) -> np.ndarray:
    """Serra et al.'s S(x) = -log2 P(x) - L(x) in bits (higher = more OOD).

    Args:
        loglik: (N,) log p(x) in nats of the continuous density on [0, 1]^dim.
        code_bits: (N,) L(x) in bits (png_code_length_bits). dim: d, values per image.
    Returns:
        (N,) S(x) in bits, with -log2 P(x) = -loglik / ln 2 + 8 dim (8-bit bins of width 1/256).
    """
    ll, lb = np.asarray(loglik, np.float64), np.asarray(code_bits, np.float64)
    if ll.shape != lb.shape:
        raise DataError(f"{ll.shape[0] if ll.ndim else 0} log-likelihoods but {lb.shape[0] if lb.ndim else 0} "
                        f"code lengths: one of each per image")
    return -ll / math.log(2) + 8 * int(dim) - lb


def complexity_score(loglik, code_bits, dim: int) -> np.ndarray:
    """-S(x) (bits): the input-complexity score with higher = more in-distribution."""
    return -input_complexity(loglik, code_bits, dim)


def likelihood_ratio(loglik, loglik_background) -> np.ndarray:
    """Ren et al.'s log p_model(x) - log p_background(x), nats (higher = more in-distribution)."""
    a, b = np.asarray(loglik, np.float64), np.asarray(loglik_background, np.float64)
    if a.shape != b.shape:
        raise DataError(f"model and background scores differ in shape: {a.shape} vs {b.shape}")
    return a - b


def perturb_pixels(x: Tensor, mu: float, seed: int = 0) -> Tensor:
    """Ren et al.'s background training inputs: each value replaced, with probability mu, by one of the 256
    8-bit levels drawn uniformly (k / 255). mu = 0 returns x unchanged; the images stay in [0, 1]."""
    x = _check_images(x)
    mu = float(mu)
    if not (0 <= mu <= 1):
        raise ConfigError(f"the perturbation rate mu must lie in [0, 1], got {mu!r}")
    g = torch.Generator().manual_seed(int(seed))
    flip = torch.rand(x.shape, generator=g) < mu
    levels = torch.randint(0, 256, x.shape, generator=g).to(x.dtype) / 255
    return torch.where(flip.to(x.device), levels.to(x.device), x)


def likelihood_regret(encoder, decoder, x: Tensor, *, steps: int = 10, lr: float = 0.1, n_eval: int = 8,
                      sigma2: float = 0.5, chunk: int = 256, seed: int = 0, device=None) -> np.ndarray:
    """Likelihood regret: ELBO(x; mu*, logvar*) - ELBO(x; encoder(x)), nats, >= 0 up to Monte Carlo noise.

    Per image, (mu, log var) start at the encoder's output and take `steps` Adam steps (learning rate lr) on
    the one-sample ELBO, decoder fixed and in eval mode. Both ELBOs are E_q[log p(x|z)] over the same n_eval
    standard-normal draws (common random numbers) minus the closed-form KL; the regret reported is the larger
    of the two ELBOs minus the first, as Xiao et al. keep the best of their optimisation.

    Args:
        encoder: x -> (mu, logvar). decoder: z -> D(z). x: (N, ...) inputs.
        steps, lr: the optimisation. n_eval: Monte Carlo draws of each ELBO. sigma2: decoder variance.
        chunk: images optimised together. seed: the draws. device: None = the decoder's.
    Returns:
        (N,) float64 regrets (the score is their negative).
    """
    steps, n_eval, chunk = int(steps), int(n_eval), int(chunk)
    if steps < 0 or n_eval < 1 or chunk < 1 or not (math.isfinite(float(lr)) and lr > 0):
        raise ConfigError(f"regret needs steps >= 0, n_eval >= 1, chunk >= 1 and lr > 0; got steps={steps}, "
                          f"n_eval={n_eval}, chunk={chunk}, lr={lr}")
    if len(x) == 0:
        raise DataError("no inputs to score: the image set is empty")
    device = torch.device(device) if device is not None else next(decoder.parameters(), torch.empty(0)).device
    gen = torch.Generator(device=device).manual_seed(int(seed))
    d = x[0].numel()

    def elbo(xb, mu, logvar, eps):                                    # (b,) for eps (b, m, d_z)
        b, m, dz = eps.shape
        z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * eps
        rec = decoder(z.reshape(b * m, dz)).reshape(b, m, d).float()
        sq = (rec - xb.reshape(b, 1, d)).pow(2).sum(-1)
        return gaussian_log_likelihood(sq, d, sigma2).mean(1) - kl_divergence(mu, logvar)

    out = []
    with _eval_mode(encoder, decoder):
        for xb in x.split(chunk):
            xb = xb.to(device, torch.float32)
            with torch.no_grad():
                mu0, lv0 = (t.float() for t in encoder(xb))
                eps = torch.randn((len(xb), n_eval, mu0.shape[1]), generator=gen, device=device)
                before = elbo(xb, mu0, lv0, eps).double()
            mu, lv = mu0.clone().requires_grad_(True), lv0.clone().requires_grad_(True)
            opt = torch.optim.Adam([mu, lv], lr=float(lr))
            for _ in range(steps):
                e1 = torch.randn((len(xb), 1, mu0.shape[1]), generator=gen, device=device)
                loss = -elbo(xb, mu, lv, e1).sum()
                mu.grad, lv.grad = torch.autograd.grad(loss, [mu, lv])   # the decoder's weights get no gradient
                opt.step()
            with torch.no_grad():
                after = elbo(xb, mu.detach(), lv.detach(), eps).double()
            out.append((torch.maximum(after, before) - before).cpu())
    return torch.cat(out).numpy()


def typicality_score(loglik, train_loglik, batch_size: int = 1, seed: int = 0) -> np.ndarray:
    """Nalisnick et al.'s typicality test as a score: -| mean over a batch of (-log p(x)) - H |.

    Args:
        loglik: (N,) log p(x) of the inputs (nats). train_loglik: log p of training images; H = mean(-train).
        batch_size: 1 scores every input; B > 1 shuffles the inputs (seeded) and scores N // B disjoint batches.
    Returns:
        (N // batch_size,) scores, higher = more typical of the training data.
    """
    ll, tr = np.asarray(loglik, np.float64).ravel(), np.asarray(train_loglik, np.float64).ravel()
    b = int(batch_size)
    if b < 1:
        raise ConfigError(f"typicality batch_size must be a positive integer, got {batch_size!r}")
    if tr.size == 0 or ll.size < b:
        raise DataError(f"typicality needs training scores and at least {b} inputs; got {tr.size} and {ll.size}")
    h = float(np.mean(-tr))
    if b > 1:
        ll = ll[np.random.default_rng(int(seed)).permutation(ll.size)][: ll.size // b * b].reshape(-1, b).mean(1)
    return -np.abs(-ll - h)


def fpr_at_tpr(in_scores, ood_scores, tpr: float = 0.95) -> float:
    """Share of OOD inputs scoring at or above the threshold that keeps a share `tpr` of the in-distribution
    inputs (higher = more in-distribution): 0 = perfect, ~tpr = chance."""
    a, b = np.sort(np.asarray(in_scores, np.float64).ravel()), np.asarray(ood_scores, np.float64).ravel()
    if a.size == 0 or b.size == 0:
        raise DataError(f"FPR needs scores on both sides, got {a.size} in-distribution and {b.size} OOD")
    if not 0 < tpr <= 1:
        raise ConfigError(f"tpr must lie in (0, 1], got {tpr!r}")
    thr = a[int(math.floor(a.size * (1 - tpr) + 1e-9))]
    return float(np.mean(b >= thr))
