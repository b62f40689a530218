"""The losses of the paper, once, for every model and notebook.

Per-sample building blocks (no batch reduction; see docs/EQUATIONS.md, "Building blocks"):
    kl_divergence          KL(q(z|x) || N(0, I)) of a diagonal Gaussian posterior
    reconstruction_error   squared error summed over every data dimension
    beta_negative_elbo     beta_rec * Rec + beta_kl * KL   (-ELBO_b of the paper)

Objectives that are minimised (batch means over the last dimension, so (R, B) terms of R stacked
runs with (R, 1) weights give the R losses at once; see sivae.stack), each in its practical form:
    vae_loss                         beta-VAE, Eq. 1
    introvae_encoder_loss / _decoder_loss          IntroVAE, Eq. 2 (hinge, margin m)
    soft_intro_encoder_loss / _decoder_loss        Soft-IntroVAE, Eq. 7 (Appendix 9.1.1)
Reconstructions x_r = D(z) and prior samples x_f = D(z_p) are both "fake".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "kl_divergence", "reconstruction_error", "beta_negative_elbo", "vae_loss",
    "introvae_encoder_loss", "introvae_decoder_loss",
    "soft_intro_encoder_loss", "soft_intro_decoder_loss", "exp_elbo", "reparameterize", "full_precision",
]


def full_precision(t: Tensor) -> Tensor:
    """t as float32 when it is half precision (autocast) or not floating point; float32/float64 unchanged."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None,
                   eps: Tensor | None = None) -> Tensor:
    """Draw z = mu + sigma * eps, eps ~ N(0, I), with an optional explicit generator.

    Args:
        mu, logvar: (B, d_z) posterior mean and log-variance (or (R, B, d_z) for R stacked runs).
        generator: torch.Generator on mu's device (None: the global one).
        eps: the standard normal noise, if already drawn (then `generator` is not used).
    Returns:
        samples of mu's shape, differentiable in mu and logvar.
    """
    if eps is None:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + eps * torch.exp(0.5 * logvar)


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample.

    Args:
        mu, logvar: (B, d_z).
    Returns:
        (B,) = -1/2 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j)).
    """
    mu, logvar = full_precision(mu), full_precision(logvar)  # float32 even when the network ran in bfloat16
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)


def reconstruction_error(x: Tensor, x_rec: Tensor) -> Tensor:
    """Squared error summed over all data dimensions, per sample.

    Args:
        x, x_rec: (B, ...) with the same number of elements per sample.
    Returns:
        (B,) = sum over dims of (x - x_rec)^2.
    """
    b = x.shape[0]
    return F.mse_loss(full_precision(x_rec.reshape(b, -1)), full_precision(x.reshape(b, -1)), reduction="none").sum(dim=1)


def beta_negative_elbo(rec: Tensor, kl: Tensor, beta_rec: float = 1.0, beta_kl: float = 1.0) -> Tensor:
    """beta-weighted negative ELBO per sample: beta_rec * Rec + beta_kl * KL.

    Args:
        rec, kl: (B,) per-sample reconstruction errors and KL terms.
    Returns:
        (B,) -ELBO_b; beta_rec = beta_kl = 1 gives the plain negative ELBO.
    """
    return beta_rec * rec + beta_kl * kl


def vae_loss(rec: Tensor, kl: Tensor, beta_rec: float, beta_kl: float) -> Tensor:
    """beta-VAE objective (Eq. 1, minimised), batch mean of beta_rec*Rec + beta_kl*KL."""
    return beta_negative_elbo(rec, kl, beta_rec, beta_kl).mean(-1)


# ---------------------------------------------------------------- IntroVAE (Eq. 2)

def introvae_encoder_loss(rec: Tensor, kl: Tensor, kl_fake: Tensor, kl_rec: Tensor, *,
                          beta_rec: float, beta_kl: float, beta_neg: float, m: float) -> Tensor:
    """IntroVAE encoder loss: the real ELBO plus the hinge on both kinds of fakes.

    beta_rec*Rec(x) + beta_kl*KL(x) + beta_neg * 1/2 * ([m - KL(x_f)]^+ + [m - KL(x_r)]^+),
    with the hinge applied per sample and every term averaged over the batch.

    Args:
        rec, kl: (B,) reconstruction error and KL of the real batch.
        kl_fake, kl_rec: (B,) KL of the encoder on x_f = D(z_p) and x_r = D(z) (detached inputs).
        beta_rec, beta_kl, beta_neg, m: weights and hard margin.
    Returns:
        scalar loss.
    """
    hinge = 0.5 * (F.relu(m - kl_fake) + F.relu(m - kl_rec))
    return (beta_rec * rec + beta_kl * kl + beta_neg * hinge).mean(-1)


def introvae_decoder_loss(rec: Tensor, kl_fake: Tensor, kl_rec: Tensor, *,
                          beta_rec: float, beta_neg: float) -> Tensor:
    """IntroVAE decoder loss (encoder frozen): beta_rec*Rec(x) + beta_neg/2 * (KL(x_f) + KL(x_r))."""
    return (beta_rec * rec + beta_neg * 0.5 * (kl_fake + kl_rec)).mean(-1)


# ----------------------------------------------------------- Soft-IntroVAE (Eq. 7)

def soft_intro_encoder_loss(rec: Tensor, kl: Tensor, rec_fake: Tensor, kl_fake: Tensor,
                            rec_rec: Tensor, kl_rec: Tensor, *, s: float, beta_rec: float,
                            beta_kl: float, beta_neg: float, alpha: float = 2.0) -> Tensor:
    """Soft-IntroVAE encoder loss (Eq. 7, decoder frozen, fakes detached).

    s*(beta_rec*Rec(x) + beta_kl*KL(x))
      + (1/alpha) * 1/2 * sum_{x' in {x_f, x_r}} mean_B exp(-alpha*s*(beta_rec*Rec(x') + beta_neg*KL(x')))
    (alpha = 2 gives the factor 0.25 of the public code).

    Args:
        rec, kl: (B,) real batch terms.
        rec_fake, kl_fake: (B,) Rec(x_f, D(z_f)) and KL(x_f), z_f ~ q(z|x_f).
        rec_rec, kl_rec: (B,) Rec(x_r, D(z_rr)) and KL(x_r), z_rr ~ q(z|x_r).
        s: scale, 1/d_x. beta_*: weights. alpha: exponent of the expELBO (Eq. 4).
    Returns:
        scalar loss.
    """
    real = s * beta_negative_elbo(rec, kl, beta_rec, beta_kl).mean(-1)
    weights = dict(s=s, beta_rec=beta_rec, beta_neg=beta_neg, alpha=alpha)
    return real + (1.0 / alpha) * 0.5 * (exp_elbo(rec_fake, kl_fake, **weights)
                                         + exp_elbo(rec_rec, kl_rec, **weights))


def soft_intro_decoder_loss(rec: Tensor, kl_fake: Tensor, kl_rec: Tensor, rec_fake: Tensor,
                            rec_rec: Tensor, *, s: float, beta_rec: float, beta_kl: float,
                            gamma_r: float) -> Tensor:
    """Soft-IntroVAE decoder loss (Eq. 7, encoder frozen, fake latents detached).

    s*( beta_rec*Rec(x) + beta_kl/2 * (KL(x_f) + KL(x_r))
        + gamma_r*beta_rec/2 * (Rec(x_f, D(z_f)) + Rec(x_r, D(z_rr))) ), batch means.

    Args:
        rec: (B,) Rec(x, D(z)) of the real batch.
        kl_fake, kl_rec: (B,) KL of the (updated) encoder on x_f and x_r.
        rec_fake, rec_rec: (B,) reconstruction errors of the fakes.
        s, beta_rec, beta_kl, gamma_r: as in the paper (gamma_r = 1e-8 everywhere).
    Returns:
        scalar loss.
    """
    total = (beta_rec * rec + beta_kl * 0.5 * (kl_fake + kl_rec)
             + gamma_r * beta_rec * 0.5 * (rec_fake + rec_rec))
    return s * total.mean(-1)


def exp_elbo(rec: Tensor, kl: Tensor, *, s: float, beta_rec: float, beta_neg: float,
             alpha: float = 2.0) -> Tensor:
    """Batch mean of exp(-alpha*s*(beta_rec*Rec + beta_neg*KL)): the expELBO term, for logging."""
    return torch.exp(-alpha * s * beta_negative_elbo(rec, kl, beta_rec, beta_neg)).mean(-1)

