"""The training algorithm written once: the VAE and introspective steps, the loop and checkpointing.

`Engine` is the common base of the single-run `sivae.train.Trainer` and the stacked
`sivae.stack.StackTrainer`. Both run the same lines below; what differs is only how a network is
called and how a loss is reduced, given by a few small hooks:

- `batch_dim`: 0 for a single run (x is (B, ...)), 1 for R stacked runs (x is (R, B, d_x));
  noise is drawn per run in the shape that follows it (`_noise`).
- `encode`, `decode`: the networks (a single run: labels, mixed precision; a stack: batched matmuls).
- `_rec`, `_kl`: the per-sample terms of sivae.losses, per run for a stack.
- `_weights()`: beta_rec, beta_kl, beta_neg, m as numbers (a single run) or (R, 1) tensors (a stack:
  sivae.losses reduces over the last dimension, so the R losses come back at once).
- `_check(name, loss)`: divergence (a single run raises; a stack freezes the runs that diverged).
- `_total(loss)` / `_finish_grads(net)`: the scalar that is differentiated, and what is done to the
  gradients before the optimiser step (data-parallel averaging; a stack masks diverged runs).
- `_summary(terms)`: the step's logged values (a dict of floats; a stack's (keys, (R, k) tensor)).
- `_next_batch`, `_keep_states`, `_record`, `_open_live`, `state_dict`, `load`: data, kept weights,
  history, live curves and the checkpoint's contents.

Each iteration follows the paper's Algorithm 2: an encoder update (decoder frozen), then a decoder
update (encoder frozen) that sees the updated encoder. The first `num_vae` iterations optionally train
a plain beta-VAE (warm-up). Adam per network with MultiStepLR.

The introspective step computes x_f = D(z_p) and x_r = D(z) once, with the decoder's graph, and
reuses them for both updates: the decoder is unchanged by the encoder step, so the values are
identical to recomputing them, and the decoder's gradient of Rec(x, D(z)) does not depend on z
being detached. Gradients are taken with torch.autograd.grad for exactly one network at a time, so
no weight gradient of the frozen network is ever computed. Random numbers are drawn in the public
code's order (z_p, z, z_f, z_rr, then the decoder step's z_rr, z_f).

The run's lifecycle (folder lock, resume, signals) is sivae.lifecycle.fit_in_folder.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn

from . import losses as L
from .checkpoints import save_checkpoint
from .errors import CheckpointError
from .lifecycle import Stopped, fit_in_folder
from .progress import progress

__all__ = ["Engine"]


class Engine:
    """What Trainer and StackTrainer share (see the module docstring). A subclass's __init__ sets cfg
    (a TrainConfig: method, n_iter, num_vae, alpha, gamma_r, log_every, checkpoint_every), device, enc,
    dec, z_dim, ckpt_path, history, kept_states and the generators, then calls `_setup_training`."""

    batch_dim = 0   # the batch dimension of x (1 when runs are stacked along dimension 0)
    rank, world = 0, 1

    def _setup_training(self, lr: float, n_iter: int, milestones, gamma: float, amp_dtype=None):
        """Adam per network (torch's fused one where the device has it) with MultiStepLR, the gradient
        scaler (enabled for float16 only) and the step counter."""
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        self.opt_e = torch.optim.Adam(self.enc.parameters(), lr=lr, **fused)
        self.opt_d = torch.optim.Adam(self.dec.parameters(), lr=lr, **fused)
        steps = [round(f * n_iter) for f in milestones]
        self.sched_e = torch.optim.lr_scheduler.MultiStepLR(self.opt_e, steps, gamma)
        self.sched_d = torch.optim.lr_scheduler.MultiStepLR(self.opt_d, steps, gamma)
        self.amp_dtype = amp_dtype
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp_dtype == torch.float16)
        self.step = 0
        self.last_good_step: int | None = None
        self._clean = True  # False while an iteration is half done (a kill then must not save)

    # ------------------------------------------------------------------ hooks
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def _noise(self, shape, dtype=None) -> Tensor:
        """Standard normal noise of one run's `shape` (every run's, stacked, for a stack)."""
        raise NotImplementedError

    def _weights(self) -> dict:
        """beta_rec, beta_kl, beta_neg and m, as the losses take them."""
        raise NotImplementedError

    def _scale(self, x: Tensor) -> float:
        """s of Eq. 7 (the scale of the expELBO's exponent)."""
        raise NotImplementedError

    def _check(self, name: str, loss: Tensor):
        raise NotImplementedError

    def _summary(self, terms: dict):
        raise NotImplementedError

    def _rec(self, x: Tensor, x_rec: Tensor) -> Tensor:
        return L.reconstruction_error(x, x_rec)

    def _kl(self, mu: Tensor, logvar: Tensor) -> Tensor:
        return L.kl_divergence(mu, logvar)

    def _total(self, loss: Tensor) -> Tensor:
        """The scalar whose gradient updates the networks."""
        return loss

    def _finish_grads(self, net: nn.Module):
        """Average .grad over ranks (one flat all-reduce per network); no-op on one process."""
        if self.world == 1:
            return
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        if grads:
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= self.world
            for g, v in zip(grads, flat.split([g.numel() for g in grads])):
                g.copy_(v.view_as(g))

    def _after_update(self):
        """Called after both networks' updates of an iteration, before the schedulers step."""

    def _amp(self):
        """Autocast of the forward passes in the configured precision (losses stay float32)."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16,
                              enabled=self.amp_dtype is not None)

    # ------------------------------------------------------------ fused pairs
    def _decode_pair(self, za: Tensor, zb: Tensor) -> tuple[Tensor, Tensor]:
        """D(za), D(zb): one fused call for batch-statistics-free networks, else two calls."""
        if self.fuse:
            return self.decode(torch.cat([za, zb], dim=self.batch_dim)).split(za.shape[self.batch_dim],
                                                                               dim=self.batch_dim)
        return self.decode(za), self.decode(zb)

    def _encode_pair(self, xa: Tensor, xb: Tensor):
        if self.fuse:
            n = xa.shape[self.batch_dim]
            mu, logvar = self.encode(torch.cat([xa, xb], dim=self.batch_dim))
            return mu.split(n, dim=self.batch_dim), logvar.split(n, dim=self.batch_dim)
        (mu_a, lv_a), (mu_b, lv_b) = self.encode(xa), self.encode(xb)
        return (mu_a, mu_b), (lv_a, lv_b)

    def _reparameterize(self, mu: Tensor, logvar: Tensor) -> Tensor:
        return L.reparameterize(mu, logvar, eps=self._noise(mu.shape[self.batch_dim:], mu.dtype))

    # ------------------------------------------------------------------ steps
    def vae_step(self, x: Tensor):
        """One beta-VAE update of both networks on batch x."""
        w = self._weights()
        with self._amp():
            mu, logvar = self.encode(x)
            x_r = self.decode(self._reparameterize(mu, logvar))
            rec, kl = self._rec(x, x_r), self._kl(mu, logvar)
            loss = L.vae_loss(rec, kl, w["beta_rec"], w["beta_kl"])
        self._check("loss", loss)
        self.opt_e.zero_grad(set_to_none=True)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(self._total(loss)).backward()
        for opt, net in ((self.opt_e, self.enc), (self.opt_d, self.dec)):
            self._finish_grads(net)
            self.scaler.step(opt)
        self.scaler.update()
        return self._summary({"loss": loss, "rec": rec.mean(-1), "kl_real": kl.mean(-1)})

    def introspective_step(self, x: Tensor):
        """One Soft-IntroVAE or IntroVAE iteration: encoder update, then decoder update."""
        c, soft, w = self.cfg, self.cfg.method == "soft_intro_vae", self._weights()
        s = self._scale(x)
        with self._amp():
            z_p = self._noise((x.shape[self.batch_dim], self.z_dim))
            mu, logvar = self.encode(x)
            z = self._reparameterize(mu, logvar)
            x_r, x_f = self.decode(z), self.decode(z_p)  # kept with the decoder's graph
            rec, kl = self._rec(x, x_r), self._kl(mu, logvar)
            # ---- encoder step: fakes detached, only encoder gradients computed
            f = self._fake_terms(x_f.detach(), x_r.detach(), decode=soft)
            if soft:
                loss_e = L.soft_intro_encoder_loss(rec, kl, f["rec_f"], f["kl_f"], f["rec_r"], f["kl_r"], s=s,
                                                   beta_rec=w["beta_rec"], beta_kl=w["beta_kl"],
                                                   beta_neg=w["beta_neg"], alpha=c.alpha)
            else:
                loss_e = L.introvae_encoder_loss(rec, kl, f["kl_f"], f["kl_r"], beta_rec=w["beta_rec"],
                                                 beta_kl=w["beta_kl"], beta_neg=w["beta_neg"], m=w["m"])
        self._check("loss_e", loss_e)
        self._apply(self.opt_e, self.enc, loss_e, retain_graph=True)
        # ---- decoder step: updated encoder, its weights get no gradient; fake latents detached
        with self._amp():
            g = self._fake_terms(x_f, x_r, decode=soft, detach_z=True, order=("r", "f"))
            if soft:
                loss_d = L.soft_intro_decoder_loss(rec, g["kl_f"], g["kl_r"], g["rec_f"], g["rec_r"], s=s,
                                                   beta_rec=w["beta_rec"], beta_kl=w["beta_kl"], gamma_r=c.gamma_r)
            else:
                loss_d = L.introvae_decoder_loss(rec, g["kl_f"], g["kl_r"], beta_rec=w["beta_rec"],
                                                 beta_neg=w["beta_neg"])
        self._check("loss_d", loss_d)
        self._apply(self.opt_d, self.dec, loss_d)
        self.scaler.update()
        terms = {"loss_e": loss_e, "loss_d": loss_d, "rec": rec.mean(-1), "kl_real": kl.mean(-1),
                 "kl_fake": f["kl_f"].mean(-1), "kl_rec": f["kl_r"].mean(-1)}
        if soft:
            e = dict(s=s, beta_rec=w["beta_rec"], beta_neg=w["beta_neg"], alpha=c.alpha)
            terms["exp_elbo_fake"] = L.exp_elbo(f["rec_f"], f["kl_f"], **e)
            terms["exp_elbo_rec"] = L.exp_elbo(f["rec_r"], f["kl_r"], **e)
        return self._summary(terms)

    def _fake_terms(self, x_f: Tensor, x_r: Tensor, decode: bool, detach_z: bool = False,
                    order=("f", "r")) -> dict:
        """KL (and, if decode, reconstruction error) of the encoder on both kinds of fakes.

        Without batch statistics both kinds go through each network as one batch of 2B (larger
        matmuls); the noise is drawn per kind in `order`, as separate calls would draw it.
        """
        (mu_f, mu_r), (lv_f, lv_r) = self._encode_pair(x_f, x_r)
        out = {"kl_f": self._kl(mu_f, lv_f), "kl_r": self._kl(mu_r, lv_r)}
        if decode:
            eps = {k: self._noise(mu_f.shape[self.batch_dim:]) for k in order}
            z_f = L.reparameterize(mu_f, lv_f, eps=eps["f"])
            z_r = L.reparameterize(mu_r, lv_r, eps=eps["r"])
            if detach_z:
                z_f, z_r = z_f.detach(), z_r.detach()
            d_f, d_r = self._decode_pair(z_f, z_r)
            out["rec_f"] = self._rec(x_f.detach(), d_f)
            out["rec_r"] = self._rec(x_r.detach(), d_r)
        return out

    def _apply(self, opt: torch.optim.Optimizer, net: nn.Module, loss: Tensor, retain_graph: bool = False):
        """One optimiser step of `net` alone on `loss` (no gradient of the other network is computed)."""
        params = [p for p in net.parameters() if p.requires_grad]
        grads = torch.autograd.grad(self.scaler.scale(self._total(loss)), params, retain_graph=retain_graph,
                                    allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = g  # None for a parameter the loss does not use: Adam skips it
        self._finish_grads(net)
        self.scaler.step(opt)

    def _last_good(self) -> str:
        return (f"{self.ckpt_path} (step {self.last_good_step})" if self.last_good_step is not None
                else "none (no checkpoint saved yet)")

    # -------------------------------------------------------------------- loop
    def _next_batch(self) -> Tensor:
        """The batch of this step, on the device; the data generators are unchanged if interrupted."""
        raise NotImplementedError

    def train_step(self):
        """Draw the next batch and run one iteration of the configured method."""
        self.enc.train(), self.dec.train()
        x = self._next_batch()
        self._clean = False
        if self.cfg.method == "vae" or self.step < self.cfg.num_vae:
            out = self.vae_step(x)
        else:
            out = self.introspective_step(x)
        self._after_update()
        self.sched_e.step()
        self.sched_d.step()
        if self.world > 1:  # BatchNorm running statistics: rank 0's, as DDP's broadcast_buffers
            for b in [*self.enc.buffers(), *self.dec.buffers()]:
                dist.broadcast(b, src=0)
        self.step += 1
        self._clean = True
        return out

    def fit(self, resume: bool = True):
        """Train up to cfg.n_iter iterations, resuming from ckpt_dir/last.pt if it exists.

        The checkpoint folder is locked for the run (a second trainer on it gets CheckpointError).
        SIGINT (Ctrl-C) and SIGTERM end the run at the next step boundary: that step's history is
        recorded, a checkpoint saved, and KeyboardInterrupt raised with a message naming the step;
        a second signal stops at once (sivae.lifecycle).

        Returns:
            the history: one record of losses every `log_every` iterations (and the last one).
        """
        return fit_in_folder(self, resume, locked=self.ckpt_path is not None and self.rank == 0)

    def _progress_desc(self) -> str:
        raise NotImplementedError

    def _open_live(self):
        """The live curve writer(s) of the run(s) (sivae.runinfo.live_training)."""
        return None

    def _keep_states(self):
        """Keep copies of weights at the steps asked for (budget curves)."""

    def _record(self, out, live) -> dict | None:
        """Append the step's values to the history (and the live curves); returns the progress bar's postfix."""
        raise NotImplementedError

    def _loop(self, stop):
        c = self.cfg
        bar = progress(c.n_iter, self._progress_desc(), initial=self.step, enabled=self.progress,
                       events=self.rank == 0)
        stopped = True
        live = self._open_live() if self.rank == 0 and self.step < c.n_iter else None
        try:
            while self.step < c.n_iter:
                out = self.train_step()
                self._keep_states()
                if self.step % c.log_every == 0 or self.step == c.n_iter:
                    postfix = self._record(out, live)
                    if postfix:
                        bar.set_postfix(postfix)
                if self.step % c.checkpoint_every == 0:
                    self._save_and_tell(bar)
                bar.update(1)
                if stop.signum is not None and self.step < c.n_iter:
                    if self.world == 1 and self.ckpt_path is not None:
                        self._save_and_tell(bar)  # history only at log_every steps, as an uninterrupted run's
                        where = f"checkpoint saved: {self.ckpt_path}"
                    else:
                        where = "no checkpoint folder: nothing saved" if self.ckpt_path is None else \
                            "data-parallel: resume from the last periodic checkpoint"
                    raise Stopped(f"{stop.name} received: training stopped after step {self.step} "
                                  f"of {c.n_iter} ({where}); run again to resume")
            stopped = False
        except Stopped:
            raise
        except KeyboardInterrupt:
            # an interrupt that did not come through our handler (a second signal, a raise from batch_fn):
            # between iterations the state is consistent, so keep it
            if self._clean and self.world == 1:
                self._save_and_tell(bar)
            raise
        finally:
            bar.close(stopped=stopped)

    def _save_and_tell(self, bar):
        """Save a checkpoint and tell the progress display its step (the runner names it if it must stop)."""
        self.save()
        if self.ckpt_path is not None:
            bar.saved(self.step, self.ckpt_path)

    # ------------------------------------------------------------ checkpoints
    def _training_state(self) -> dict:
        """The networks', optimisers' and schedulers' states (the middle of every checkpoint)."""
        return {"encoder": self.enc.state_dict(), "decoder": self.dec.state_dict(),
                "opt_e": self.opt_e.state_dict(), "opt_d": self.opt_d.state_dict(),
                "sched_e": self.sched_e.state_dict(), "sched_d": self.sched_d.state_dict()}

    def _load_training_state(self, state: dict, path, what: str):
        """Restore what _training_state saved, or CheckpointError saying the checkpoint does not fit `what`."""
        try:
            self.enc.load_state_dict(state["encoder"])
            self.dec.load_state_dict(state["decoder"])
            for name in ("opt_e", "opt_d", "sched_e", "sched_d"):
                getattr(self, name).load_state_dict(state[name])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"checkpoint {path} does not fit {what}: {str(e).splitlines()[0]}") from None

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load(self, path: str | os.PathLike):
        raise NotImplementedError

    def save(self, path: str | os.PathLike | None = None):
        """Write a checkpoint atomically (temp file + rename), so a kill never leaves half a file."""
        path = Path(path) if path is not None else self.ckpt_path
        if path is None:
            return
        state = self.state_dict()  # every rank takes part (it gathers the noise states)
        if self.rank == 0:
            save_checkpoint(state, path)
        self.last_good_step = self.step
