"""Exact tabular Soft-IntroVAE game (paper Eq. 4/5, Eq. 12/13; IntroVAE Eq. 2).

x in {0..K-1}, z in {0..M-1}, fixed prior p(z), encoder q(z|x) as logits
``(B, K, M)``, decoder p_d(x|z) as logits ``(B, M, K)``; ``B`` independent games
run batched, float64. Every expectation over p_data, q or generated samples is
an exact sum: ELBO (Eq. 8), Eq. 11 ELBO(x) = log p_d(x) - KL(q(.|x) || p_d(.|x)).
``mc_sintro_objectives`` samples the same objectives (for the tests).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError
from .dstar import check_alpha, check_gamma, check_pdata

OBJECTIVES = ("sintro", "sintro_norec", "introvae")
MODES = ("alternating", "simultaneous")


# --------------------------------------------------------------- exact model
def exact_terms(enc_logits, dec_logits, log_prior):
    """Exact per-state quantities of the tabular VAE.

    Args:
        enc_logits: (B, K, M) logits of q(z|x).
        dec_logits: (B, M, K) logits of p_d(x|z).
        log_prior: (M,) log p(z).
    Returns:
        dict of (B, K) tensors: log_pd, elbo (Eq. 8), kl_post = KL(q || p_d(z|x))
        (Eq. 11), kl_prior = KL(q || p(z)) (IntroVAE's energy).
    """
    log_q = torch.log_softmax(enc_logits, -1)                       # (B, K, M)
    log_joint = torch.log_softmax(dec_logits, -1).transpose(1, 2) + log_prior  # (B, K, M)
    log_pd = torch.logsumexp(log_joint, -1)                           # (B, K)
    q = log_q.exp()
    log_post = log_joint - log_pd[..., None]                          # log p_d(z|x)
    kl_post = (q * (log_q - log_post)).sum(-1)
    return {"log_pd": log_pd, "elbo": log_pd - kl_post, "kl_post": kl_post,
            "kl_prior": (q * (log_q - log_prior)).sum(-1)}


def sintro_objectives(terms, p_data, alpha, gamma, decoder_rec=True):
    """Eq. 12/13 (Eq. 4/5 at alpha = 1), exact; both are to be maximised.

    Args:
        terms: output of ``exact_terms``.
        p_data: (B, K); alpha, gamma: (B,) tensors.
        decoder_rec: keep E_{p_data}[ELBO] in L_D (False = the ablation); bool or (B,).
    Returns:
        (L_E, L_D), each (B,).
    """
    pd, elbo = terms["log_pd"].exp(), terms["elbo"]
    alpha, gamma = (torch.as_tensor(v, dtype=elbo.dtype) for v in (alpha, gamma))
    real = (p_data * elbo).sum(-1)                                    # E_{p_data} ELBO(x)
    exp_fake = (pd * torch.exp(alpha[:, None] * elbo)).sum(-1)        # E_{x~p_d} exp(a ELBO)
    fake = (pd * elbo).sum(-1)                                        # E_{x~p_d} ELBO(x)
    l_dec = gamma * fake + torch.as_tensor(decoder_rec, dtype=real.dtype) * real
    return real - exp_fake / alpha, l_dec


def introvae_objectives(terms, p_data, margin):
    """Eq. 2 (IntroVAE), exact; maximised. The decoder lowers the fakes' KL."""
    pd = terms["log_pd"].exp()
    real = (p_data * terms["elbo"]).sum(-1)
    hinge = (pd * torch.relu(margin - terms["kl_prior"])).sum(-1)     # E [m - KL(E(D(z)))]^+
    return real - hinge, real - (pd * terms["kl_prior"]).sum(-1)


def mc_sintro_objectives(enc_logits, dec_logits, log_prior, p_data, alpha, gamma, n, generator):
    """Monte-Carlo estimate of Eq. 12/13 for one game, by sampling.

    x ~ p_data, x_f = D(z_p) with z_p ~ p(z), z ~ q(z|x). exp() is applied to
    the per-state mean of the fakes' ELBO samples (consistent, bias O(1/n)).
    Args:
        enc_logits (K, M), dec_logits (M, K), log_prior (M,), p_data (K,) tensors;
        alpha, gamma: floats; n: samples; generator: torch.Generator.
    Returns:
        (L_E, L_D) as floats.
    """
    log_q, log_px_z = torch.log_softmax(enc_logits, -1), torch.log_softmax(dec_logits, -1)
    draw = lambda probs: torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    x = torch.multinomial(p_data, n, replacement=True, generator=generator)
    z = draw(log_q[x].exp())
    e_real = log_px_z[z, x] + log_prior[z] - log_q[x, z]              # one-sample ELBO, Eq. 1
    z_p = torch.multinomial(log_prior.exp(), n, replacement=True, generator=generator)
    x_f = draw(log_px_z[z_p].exp())
    z_f = draw(log_q[x_f].exp())
    e_fake = log_px_z[z_f, x_f] + log_prior[z_f] - log_q[x_f, z_f]
    cnt = torch.bincount(x_f, minlength=p_data.numel()).to(e_fake.dtype)
    sums = torch.zeros_like(cnt).index_add_(0, x_f, e_fake)
    seen = cnt > 0
    exp_fake = (cnt[seen] / n * torch.exp(alpha * sums[seen] / cnt[seen])).sum()
    return float(e_real.mean() - exp_fake / alpha), float(e_real.mean() + gamma * e_fake.mean())


# ------------------------------------------------------------------ dynamics
@dataclass
class GameConfig:
    """Settings shared by every game of a batch."""
    n_steps: int = 3000          # gradient steps per player
    lr: float = 0.05             # Adam learning rate, cosine-decayed
    lr_final_frac: float = 0.01  # final lr = lr * lr_final_frac
    mode: str = "alternating"    # default mode: "alternating" (encoder first) or "simultaneous"
    objective: str = "sintro"    # default: "sintro", "sintro_norec" (ablation) or "introvae"
    margin: float = 1.0          # IntroVAE hinge margin m
    log_every: int = 25          # history stride
    init_scale: float = 1.0      # std of the random initial logits


def _objectives(kind, enc, dec, log_prior, p_data, alpha, gamma, margin):
    """(L_E, L_D) per game; ``kind`` holds (B,) bool masks norec and intro."""
    terms = exact_terms(enc, dec, log_prior)
    l_enc, l_dec = sintro_objectives(terms, p_data, alpha, gamma, ~kind["norec"])
    i_enc, i_dec = introvae_objectives(terms, p_data, margin)
    return torch.where(kind["intro"], i_enc, l_enc), torch.where(kind["intro"], i_dec, l_dec)


@contextlib.contextmanager
def _small_tensor_cpu():
    """Tiny tensors: one thread (extra threads only spin, 10-50x slower on a busy
    CPU) and flushed denormals (collapsing distributions make them, ~100x slower)."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(n_threads)


def _record(hist, step, enc, dec, log_prior):
    with torch.no_grad():
        t = exact_terms(enc, dec, log_prior)
    hist["step"].append(step)
    hist["p_d"].append(t["log_pd"].exp().numpy())
    hist["kl_post"].append(t["kl_post"].numpy())


def _play_step(kind, enc, dec, opts, args):
    """One move of each player: encoder maximises L_E, then decoder L_D (other frozen).

    Alternating games let the decoder see the updated encoder; simultaneous ones
    evaluate both gradients at the same point (Adam is per-coordinate, so one
    optimiser over the batch equals one per game).
    """
    enc_old = enc.detach().clone()
    l_enc = _objectives(kind, enc, dec.detach(), *args)[0]
    opts[0].zero_grad()
    (-l_enc.sum()).backward()
    opts[0].step()
    enc_seen = torch.where(kind["alt"][:, None, None], enc.detach(), enc_old)
    l_dec = _objectives(kind, enc_seen, dec, *args)[1]
    opts[1].zero_grad()
    (-l_dec.sum()).backward()
    opts[1].step()


def _game_kinds(cfg, B, objective, mode):
    obj = np.broadcast_to(np.asarray(cfg.objective if objective is None else objective), (B,))
    mod = np.broadcast_to(np.asarray(cfg.mode if mode is None else mode), (B,))
    if not (set(obj) <= set(OBJECTIVES) and set(mod) <= set(MODES)):
        raise ConfigError(f"mode must be in {MODES} and objective in {OBJECTIVES}, got "
                          f"mode={sorted(set(mod))}, objective={sorted(set(obj))}")
    return {"norec": torch.as_tensor(obj == "sintro_norec"), "intro": torch.as_tensor(obj == "introvae"),
            "alt": torch.as_tensor(mod == "alternating")}


def run_game(p_data, alpha, gamma, M, cfg, seed=0, prior=None, objective=None, mode=None):
    """Train B tabular encoder/decoder pairs by gradient play, from random logits.

    Args:
        p_data: (B, K) data distributions; alpha, gamma: scalars or (B,).
        M: latent states; cfg: GameConfig; seed: init seed; prior: (M,) p(z), default uniform.
        objective, mode: per-game overrides of cfg.objective / cfg.mode (str or (B,)).
    Returns:
        dict: p_d (B, K), kl_post (B, K) at the end, enc/dec logits, and history
        {step (T,), p_d (T, B, K), kl_post (T, B, K)}.
    """
    p_np = np.stack([check_pdata(p) for p in np.atleast_2d(p_data)])
    B, K = p_np.shape
    alpha_np = np.array([check_alpha(a) for a in np.broadcast_to(alpha, (B,))])
    gamma_np = np.array([check_gamma(g) for g in np.broadcast_to(gamma, (B,))])
    if int(M) < 1 or int(cfg.n_steps) < 1:
        raise ConfigError(f"M and n_steps must be >= 1, got M={M}, n_steps={cfg.n_steps}")
    kind = _game_kinds(cfg, B, objective, mode)
    prior = np.full(M, 1.0 / M) if prior is None else np.asarray(prior, dtype=np.float64)
    log_prior = torch.log(torch.as_tensor(prior))
    gen = torch.Generator().manual_seed(int(seed))
    enc = (cfg.init_scale * torch.randn(B, K, M, generator=gen, dtype=torch.float64)).requires_grad_()
    dec = (cfg.init_scale * torch.randn(B, M, K, generator=gen, dtype=torch.float64)).requires_grad_()
    opts = [torch.optim.Adam([w], lr=cfg.lr) for w in (enc, dec)]
    scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(o, cfg.n_steps, cfg.lr * cfg.lr_final_frac)
              for o in opts]
    args = (log_prior, *(torch.as_tensor(a) for a in (p_np, alpha_np, gamma_np)), cfg.margin)
    hist = {"step": [], "p_d": [], "kl_post": []}
    with _small_tensor_cpu():
        for step in range(cfg.n_steps):
            if step % cfg.log_every == 0:
                _record(hist, step, enc, dec, log_prior)
            _play_step(kind, enc, dec, opts, args)
            for sch in scheds:
                sch.step()
        _record(hist, cfg.n_steps, enc, dec, log_prior)
    hist = {k: np.asarray(v) for k, v in hist.items()}
    return {"p_d": hist["p_d"][-1], "kl_post": hist["kl_post"][-1], "enc": enc.detach(),
            "dec": dec.detach(), "history": hist}
