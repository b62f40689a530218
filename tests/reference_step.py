"""A straightforward Soft-IntroVAE iteration with the public code's pass structure.

Kept as the yardstick of the optimised introspective step (sivae.engine): tests check that both
give the same weights from the same state, and benchmarks/bench_toy2d_step.py times both.
Its passes follow soft_intro_vae_2d/train_soft_intro_vae_2d.py: the encoder step toggles
requires_grad, decodes the prior samples, encodes/decodes the real batch, runs an extra
deterministic pass (only logged), then encodes and decodes both kinds of fakes; the decoder
step decodes the prior samples and the real latents again before encoding both fakes and
decoding their latents (the deterministic pass runs with autograd on, as there, building a
graph that is never used). Same losses (sivae.losses), same random draws in the same order.

One deliberate difference from the public code: there the target x_r of Rec(x_r, D(z_rr)) in
the encoder's expELBO is not detached, so a small gradient reaches the encoder through
x_r = D(z); docs/EQUATIONS.md (Eq. 7) detaches both fakes in the encoder step, and so do we.
"""
from __future__ import annotations

import torch

from sivae import losses as L


def _set_grad(net, flag: bool):
    for p in net.parameters():
        p.requires_grad = flag


def reference_soft_intro_step(trainer, x: torch.Tensor) -> dict:
    """One Soft-IntroVAE iteration on `trainer`'s networks, optimisers and generator."""
    c, enc, dec, gen = trainer.cfg, trainer.enc, trainer.dec, trainer.noise_gen
    s = trainer._scale(x)
    z_p = torch.randn((x.shape[0], trainer.z_dim), generator=gen, device=x.device)
    # ---------------- encoder step
    _set_grad(enc, True), _set_grad(dec, False)
    fake = dec(z_p)
    mu, logvar = enc(x)
    z = L.reparameterize(mu, logvar, gen)
    rec = dec(z)
    rec_det = dec(enc(x)[0])  # the public code's deterministic pass: only logged, but its graph is built
    loss_rec = L.reconstruction_error(x, rec)
    kl_real = L.kl_divergence(mu, logvar)
    mu_f, lv_f = enc(fake.detach())
    rec_fake = dec(L.reparameterize(mu_f, lv_f, gen))
    mu_r, lv_r = enc(rec.detach())
    rec_rec = dec(L.reparameterize(mu_r, lv_r, gen))
    loss_e = L.soft_intro_encoder_loss(
        loss_rec, kl_real, L.reconstruction_error(fake, rec_fake), L.kl_divergence(mu_f, lv_f),
        L.reconstruction_error(rec.detach(), rec_rec), L.kl_divergence(mu_r, lv_r), s=s, beta_rec=c.beta_rec,
        beta_kl=c.beta_kl, beta_neg=c.beta_neg, alpha=c.alpha)
    trainer.opt_e.zero_grad()
    loss_e.backward()
    trainer.opt_e.step()
    # ---------------- decoder step
    _set_grad(enc, False), _set_grad(dec, True)
    fake = dec(z_p)
    rec = dec(z.detach())
    loss_rec = L.reconstruction_error(x, rec)
    mu_r, lv_r = enc(rec)
    z_rr = L.reparameterize(mu_r, lv_r, gen)
    mu_f, lv_f = enc(fake)
    z_f = L.reparameterize(mu_f, lv_f, gen)
    rec_rec, rec_fake = dec(z_rr.detach()), dec(z_f.detach())
    loss_d = L.soft_intro_decoder_loss(
        loss_rec, L.kl_divergence(mu_f, lv_f), L.kl_divergence(mu_r, lv_r),
        L.reconstruction_error(fake.detach(), rec_fake), L.reconstruction_error(rec.detach(), rec_rec),
        s=s, beta_rec=c.beta_rec, beta_kl=c.beta_kl, gamma_r=c.gamma_r)
    trainer.opt_d.zero_grad()
    loss_d.backward()
    trainer.opt_d.step()
    _set_grad(enc, True)
    return {"loss_e": loss_e.item(), "loss_d": loss_d.item(),
            "rec_det": L.reconstruction_error(x, rec_det).mean().item()}
