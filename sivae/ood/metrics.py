"""Out-of-distribution detection by likelihood (paper section 6.5, Figure 8, Appendix 9.7, Table 7).

Estimator (docs/EQUATIONS.md, "Section 6.5 (OOD) estimator"), per input x and M samples z_i ~ q(z|x):
    log p(x) ~= logsumexp_i [log p(x|z_i) + log p(z_i) - log q(z_i|x)] - log M
The decoder is read as a Gaussian p(x|z) = N(D(z), sigma2 * I), normalising constant included:
    log p(x|z) = -||x - D(z)||^2 / (2 sigma2) - d/2 * log(2 pi sigma2),
so the numbers are log-densities in nats. Training minimised beta_rec * Rec (Rec = summed squared
error, sivae.losses), which is this Gaussian with sigma2 = 1 / (2 beta_rec) up to a constant; the
default sigma2 = 1/2 matches beta_rec = 1. The estimate is a lower bound on log p(x) in
expectation (Burda et al., IWAE) and tightens as M grows; M = 1 in expectation is the ELBO.
The ELBO score here is E_q[log p(x|z)] (Monte Carlo over the same M samples) - KL (closed form).

Bits per dimension: -log p(x) / (d ln 2) of the *continuous* density of images scaled to [0, 1]^d.
It is not a code length of the 8-bit pixels (no dequantisation) and can be negative; adding 8
rescales it to the [0, 256)^d convention used for discrete likelihood models.

OOD evaluation: AUROC (scikit-learn) with in-distribution as the positive class and the score
(higher = more in-distribution), so AUROC < 0.5 means the OOD data got *higher* likelihoods
(Nalisnick et al.; the paper's VAE on CIFAR10 -> SVHN: 0.378). Both scores get an AUROC: the
paper's Appendix 9.7 scores Table 7 "by the ELBO", its section 6.5 and Figure 8 use the
importance-weighted estimate. Figure 8: histograms of the log-likelihoods of the training data,
the test data and the OOD data.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, DataError, check_choice
from ..losses import kl_divergence
from ..paper import METHOD_TITLES, PAPER_TABLE7
from ..runinfo import write_json, write_markdown
from ..runtime import keep_freed_memory
from ..stats import seed_stats

__all__ = ["PAPER_TABLE7", "CONVERSIONS", "gaussian_log_likelihood", "log_importance_weights",
           "score_images", "ImageScores", "bits_per_dim", "auroc", "score_histograms",
           "prepare_images", "evaluate_ood", "OODResult", "summarize_aurocs",
           "write_table7"]

LOG_2PI = math.log(2 * math.pi)

# Documented conversions for sets whose images do not match the model (`convert` argument).
CONVERSIONS = {
    "none": "reject any mismatch of channels or size",
    "auto": "RGB -> gray by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B), gray -> RGB by "
            "repeating the channel, and a bilinear (antialiased) resize to the model's size",
}
_LUMA = (0.299, 0.587, 0.114)


# ------------------------------------------------------------------------------ estimator

def gaussian_log_likelihood(sq_err: Tensor, d: int, sigma2: float) -> Tensor:
    """log N(x; D(z), sigma2 I) from the summed squared error ||x - D(z)||^2.

    Args:
        sq_err: (...) summed squared errors. d: data dimension. sigma2: decoder variance.
    Returns:
        (...) -sq_err / (2 sigma2) - d/2 * log(2 pi sigma2), in nats.
    """
    return -sq_err / (2 * sigma2) - 0.5 * d * math.log(2 * math.pi * sigma2)


def log_importance_weights(decoder, x: Tensor, mu: Tensor, logvar: Tensor, eps: Tensor,
                           sigma2: float) -> tuple[Tensor, Tensor]:
    """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x) for z_i = mu + sigma * eps_i.

    All b * m latents go through the decoder in one call.

    Args:
        decoder: z (n, d_z) -> D(z) with the shape of one x per row.
        x: (b, ...) inputs. mu, logvar: (b, d_z) posterior of each input.
        eps: (b, m, d_z) standard normal draws. sigma2: decoder variance.
    Returns:
        log_w (b, m) and log p(x|z_i) (b, m), float64.
    """
    b, m, dz = eps.shape
    std = torch.exp(0.5 * logvar)
    z = mu[:, None, :] + std[:, None, :] * eps                       # (b, m, d_z)
    x_rec = decoder(z.reshape(b * m, dz))                           # (b*m, ...)
    d = x[0].numel()
    if x_rec.numel() != b * m * d:
        raise DataError(f"the decoder returns {tuple(x_rec.shape[1:])} per latent, but the inputs "
                        f"are {tuple(x.shape[1:])}: they must have the same number of values")
    # Rec(x, D(z_i)) of sivae.losses, broadcast over the m samples instead of copying x m times
    sq_err = (x_rec.reshape(b, m, d).float() - x.reshape(b, 1, d).float()).pow(2).sum(-1)
    log_px_z = gaussian_log_likelihood(sq_err.double(), d, sigma2)  # (b, m)
    z64, eps64 = z.double(), eps.double()
    log_pz = -0.5 * (z64.pow(2).sum(-1) + dz * LOG_2PI)
    log_qz = -0.5 * (eps64.pow(2).sum(-1) + logvar.double().sum(-1, keepdim=True) + dz * LOG_2PI)
    return log_px_z + log_pz - log_qz, log_px_z


@dataclass
class ImageScores:
    """Per-input scores of one image set, all (N,) float64 numpy arrays, in nats."""
    loglik: np.ndarray   # importance-weighted log p(x) estimate
    elbo: np.ndarray     # E_q[log p(x|z)] - KL(q(z|x) || p(z))
    dim: int             # data dimension d (for bits per dimension)

    def bits_per_dim(self, which: str = "loglik") -> np.ndarray:
        """-score / (d ln 2) of each input; see the module docstring for what it means."""
        return bits_per_dim(getattr(self, which), self.dim)


def bits_per_dim(log_density, dim: int):
    """Convert log-densities in nats to bits per dimension: -log p / (dim * ln 2)."""
    return -np.asarray(log_density) / (dim * math.log(2))


@contextlib.contextmanager
def _eval_mode(*nets):
    """Put networks in eval mode (BatchNorm uses its running statistics), restore afterwards."""
    was = [n.training for n in nets]
    try:
        for n in nets:
            n.eval()
        yield
    finally:
        for n, w in zip(nets, was):
            n.train(w)


@torch.no_grad()
def score_images(encoder, decoder, x: Tensor, n_samples: int = 100, sigma2: float = 0.5,
                 chunk_size: int = 4096, seed: int = 0, device=None,
                 keep_memory: bool = True) -> ImageScores:
    """Importance-weighted log-likelihood and ELBO of every input, batched over inputs and samples.

    Inputs are processed in chunks of max(1, chunk_size // n_samples); when n_samples exceeds
    chunk_size, the samples of one input are split into pieces of chunk_size. So at most
    chunk_size latents go through the decoder per call, which bounds the memory. On the CPU,
    keep_memory applies sivae.runtime.keep_freed_memory (process-wide, no effect on values): the
    decoder's activations of every chunk then reuse freed memory instead of fresh pages.

    Args:
        encoder: x -> (mu, logvar). decoder: z -> D(z). Both are used in eval mode, no gradients.
        x: (N, ...) inputs (for images: N x C x H x W in [0, 1]).
        n_samples: M, importance samples per input. sigma2: decoder variance (1/2 <-> beta_rec = 1).
        chunk_size: most latents decoded in one call. seed: seeds the torch.Generator of the eps.
        device: where to compute (None: the decoder's device).
        keep_memory: on the CPU, keep freed memory for reuse (see sivae.runtime).
    Returns:
        ImageScores with (N,) loglik and elbo.
    """
    n_samples, chunk_size = int(n_samples), int(chunk_size)
    if n_samples < 1 or chunk_size < 1:
        raise ConfigError(f"n_samples and chunk_size must be positive integers, got {n_samples}, {chunk_size}")
    if not (math.isfinite(float(sigma2)) and sigma2 > 0):
        raise ConfigError(f"sigma2 (the decoder variance) must be a positive number, got {sigma2!r}")
    if x.shape[0] == 0:
        raise DataError("no inputs to score: the image set is empty")
    device = torch.device(device) if device is not None else next(decoder.parameters(), torch.empty(0)).device
    if keep_memory and device.type == "cpu":
        keep_freed_memory()
    gen = torch.Generator(device=device).manual_seed(int(seed))
    per_input, piece = max(1, chunk_size // n_samples), min(n_samples, chunk_size)
    loglik, elbo = [], []
    with _eval_mode(encoder, decoder):
        for xb in x.split(per_input):
            xb = xb.to(device, torch.float32)
            mu, logvar = encoder(xb)                                 # (b, d_z) each
            log_w, log_px_z = [], []
            for start in range(0, n_samples, piece):
                m = min(piece, n_samples - start)
                eps = torch.randn((xb.shape[0], m, mu.shape[1]), generator=gen, device=device)
                lw, lp = log_importance_weights(decoder, xb, mu.float(), logvar.float(), eps, sigma2)
                log_w.append(lw), log_px_z.append(lp)
            log_w, log_px_z = torch.cat(log_w, 1), torch.cat(log_px_z, 1)  # (b, M)
            loglik.append(torch.logsumexp(log_w, 1) - math.log(n_samples))
            elbo.append(log_px_z.mean(1) - kl_divergence(mu, logvar).double())
    return ImageScores(torch.cat(loglik).cpu().numpy(), torch.cat(elbo).cpu().numpy(), x[0].numel())


# ------------------------------------------------------------------------ OOD evaluation

def auroc(in_scores, ood_scores) -> float:
    """Area under the ROC curve: P(score of an in-distribution input > that of an OOD input).

    Args:
        in_scores, ood_scores: 1-D arrays; higher means "more in-distribution". Ties count 1/2.
    Returns:
        AUROC in [0, 1] (scikit-learn's roc_auc_score with in-distribution as the positive class).
    """
    from sklearn.metrics import roc_auc_score
    a, b = np.asarray(in_scores, np.float64).ravel(), np.asarray(ood_scores, np.float64).ravel()
    if a.size == 0 or b.size == 0:
        raise DataError(f"AUROC needs scores on both sides, got {a.size} in-distribution and {b.size} OOD")
    bad = int((~np.isfinite(a)).sum() + (~np.isfinite(b)).sum())
    if bad:
        raise DataError(f"{bad} scores are not finite (NaN or inf): the model or the data is broken")
    y = np.r_[np.ones(a.size), np.zeros(b.size)]
    return float(roc_auc_score(y, np.r_[a, b]))


def score_histograms(scores: dict, bins: int = 60, quantiles=(0.005, 0.995)) -> dict:
    """Histograms of several score sets on shared bins (Figure 8).

    The bins span the given quantiles of all scores pooled, so one far tail does not squeeze
    the rest into a single bar; the inputs left out on each side are counted in `outside`.

    Args:
        scores: {set name: 1-D array}. bins: number of bins. quantiles: (low, high) of the range.
    Returns:
        {"edges": (bins+1,) array, "density": {name: (bins,) array}, "outside": {name: (below, above)}}.
    """
    pooled = np.concatenate([np.asarray(v, np.float64).ravel() for v in scores.values()])
    lo, hi = np.quantile(pooled, quantiles)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, int(bins) + 1)
    out = {"edges": edges, "density": {}, "outside": {}}
    for name, v in scores.items():
        v = np.asarray(v, np.float64).ravel()
        out["density"][name] = np.histogram(v, edges)[0] / (v.size * (edges[1] - edges[0]))
        out["outside"][name] = (int((v < lo).sum()), int((v > hi).sum()))
    return out


def prepare_images(name: str, x: Tensor, shape: tuple, convert: str = "none") -> Tensor:
    """Check (and, if asked, convert) an image set against the model's input shape.

    Args:
        name: the set's name, for the message. x: (N, C, H, W) float images in [0, 1].
        shape: (C, H, W) the model takes. convert: a key of CONVERSIONS ("none" or "auto").
    Returns:
        x, or its converted copy, of shape (N, *shape).
    Raises:
        DataError: not N x C x H x W, not in [0, 1], or mismatched while convert == "none".
    """
    check_choice("convert", convert, CONVERSIONS)
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise DataError(f"image set {name!r} must be a float tensor N x C x H x W, got {got}")
    if x.numel() and (not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1):
        raise DataError(f"image set {name!r} has values outside [0, 1]; the models take images scaled to [0, 1]")
    c, h, w = (int(s) for s in shape)
    if tuple(x.shape[1:]) == (c, h, w):
        return x
    if convert == "none":
        raise DataError(f"image set {name!r} has images of {'x'.join(map(str, x.shape[1:]))} (channels x height "
                        f"x width) but the model takes {c}x{h}x{w}; pass convert='auto' to convert ("
                        f"{CONVERSIONS['auto']})")
    if x.shape[1] == 3 and c == 1:
        x = (x * torch.tensor(_LUMA, dtype=x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif x.shape[1] == 1 and c == 3:
        x = x.repeat(1, 3, 1, 1)
    elif x.shape[1] != c:
        raise DataError(f"image set {name!r} has {x.shape[1]} channels; only 1 <-> 3 can be converted to {c}")
    if tuple(x.shape[2:]) != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    return x


@dataclass
class OODResult:
    """Scores and AUROCs of one model on its in-distribution sets and one or more OOD sets."""
    scores: dict                 # {set name: ImageScores}; "train" (optional), "test", then each OOD set
    auroc: dict                  # {ood name: {"loglik": float, "elbo": float}}
    histograms: dict = field(default_factory=dict)   # score_histograms of the log-likelihoods
    meta: dict = field(default_factory=dict)          # n_samples, sigma2, seed, ...

    def mean_bits_per_dim(self) -> dict:
        """{set name: mean bits/dim of the log-likelihood estimates}."""
        return {k: float(v.bits_per_dim().mean()) for k, v in self.scores.items()}


def evaluate_ood(encoder, decoder, in_test: Tensor, ood_sets: dict, in_train: Tensor | None = None, *,
                 image_shape: tuple | None = None, convert: str = "none", n_samples: int = 100,
                 sigma2: float = 0.5, chunk_size: int = 4096, seed: int = 0, device=None,
                 bins: int = 60) -> OODResult:
    """Score in-distribution and OOD images with a trained model; AUROCs and Figure 8 histograms.

    Args:
        encoder, decoder: the trained networks (x -> (mu, logvar), z -> D(z)).
        in_test: (N, C, H, W) in-distribution test images in [0, 1].
        ood_sets: {name: (N', C', H', W') images}, one or more OOD sets.
        in_train: optional in-distribution training images (Figure 8's "train" histogram).
        image_shape: (C, H, W) the model takes (None: in_test's). convert: "none" rejects a set of
            another shape with a DataError; "auto" converts it (see CONVERSIONS).
        n_samples, sigma2, chunk_size, seed, device: as in score_images (each set uses `seed`).
        bins: histogram bins.
    Returns:
        OODResult; its auroc maps each OOD name to the AUROC of both scores (loglik and ELBO).
    """
    if not ood_sets:
        raise ConfigError("evaluate_ood needs at least one OOD set")
    shape = tuple(image_shape) if image_shape is not None else tuple(in_test.shape[1:])
    sets = {"test": in_test, **({"train": in_train} if in_train is not None else {})}
    clash = set(ood_sets) & set(sets)
    if clash:
        raise ConfigError(f"OOD sets may not be named {sorted(clash)}: those names hold the in-distribution data")
    sets.update(ood_sets)
    sets = {k: prepare_images(k, v, shape, convert if k in ood_sets else "none") for k, v in sets.items()}
    kw = dict(n_samples=n_samples, sigma2=sigma2, chunk_size=chunk_size, seed=seed, device=device)
    scores = {k: score_images(encoder, decoder, v, **kw) for k, v in sets.items()}
    aurocs = {k: {s: auroc(getattr(scores["test"], s), getattr(scores[k], s)) for s in ("loglik", "elbo")}
              for k in ood_sets}
    order = [k for k in ("train", "test") if k in scores] + list(ood_sets)
    hist = score_histograms({k: scores[k].loglik for k in order}, bins=bins)
    return OODResult(scores, aurocs, hist, dict(n_samples=int(n_samples), sigma2=float(sigma2), seed=int(seed),
                                                image_shape=shape, convert=convert))


# ---------------------------------------------------------------------------- Table 7

def summarize_aurocs(rows: list[dict]) -> dict:
    """Mean and std over seeds of per-run rows.

    Args:
        rows: dicts with "in_dist", "ood", "method", "seed" and numeric metrics
            (auroc_loglik, auroc_elbo, bpd_test, bpd_ood, ...).
    Returns:
        {(in, ood): {method: {metric: {"mean", "std", "n"}}}}, std with ddof=1 (0 for one seed).
    """
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["in_dist"], r["ood"]), {}).setdefault(r["method"], []).append(r)
    out: dict = {}
    for pair, per in groups.items():
        for method, rs in per.items():
            keys = [k for k in rs[0] if k not in ("in_dist", "ood", "method", "seed")]
            out.setdefault(pair, {})[method] = {k: seed_stats([r[k] for r in rs]) for k in keys}
    return out


def write_table7(summary: dict, metrics_path, table_path, meta: dict | None = None, titles: dict | None = None,
                 extra: dict | None = None) -> str:
    """Write the AUROCs as a DVC metrics JSON and as a markdown Table 7 beside the paper's numbers.

    Args:
        summary: summarize_aurocs output. metrics_path, table_path: files to write.
        meta: settings printed under the table (M, images per set, seeds, ...).
        titles: column names of methods beyond METHOD_TITLES (e.g. models loaded from the authors' weights).
        extra: more metrics for the same JSON file under their own keys (e.g. {"beyond": ...}, sivae.ood.near).
    Returns:
        the markdown text.
    """
    flat = {f"{i}->{o}": {m: {k: round(v["mean"], 5) for k, v in mets.items()}
                          | {f"{k}_std": round(v["std"], 5) for k, v in mets.items()}
                          for m, mets in per.items()} for (i, o), per in summary.items()}
    clash = set(extra or {}) & set(flat)
    if clash:
        raise ConfigError(f"extra metrics may not reuse the pair keys {sorted(clash)}")
    write_json({**flat, **(extra or {})}, metrics_path)
    titles = {**METHOD_TITLES, **(titles or {})}
    present = {m for per in summary.values() for m in per}
    methods = [m for m in titles if m in present] + sorted(present - set(titles))
    fmt = lambda e: f"{e['mean']:.4f} ± {e['std']:.4f}" if e["n"] > 1 else f"{e['mean']:.4f}"
    head = [f"{titles.get(m, m)} {s}" for m in methods for s in ("IW log-lik.", "ELBO")]
    lines = ["| in-distribution (train) | OOD (test) | " + " | ".join(head) + " | paper VAE | paper Soft-IntroVAE |",
             "|---|---|" + "---|" * (len(head) + 2)]
    for (i, o), per in summary.items():
        cells = [fmt(per[m][f"auroc_{s}"]) if m in per else "-" for m in methods for s in ("loglik", "elbo")]
        paper = PAPER_TABLE7.get((i, o))
        ref = [f"{paper[m][0]:g} ± {paper[m][1]:g}" if paper else "not in the paper" for m in ("vae", "soft_intro_vae")]
        lines.append(f"| {i} | {o} | " + " | ".join(cells) + " | " + " | ".join(ref) + " |")
    note = ("\nAUROC, in-distribution test images as positives, higher score = more in-distribution "
            "(0.5 = chance, below 0.5 = OOD scored higher). IW log-lik.: importance-weighted log p(x); "
            "ELBO: its lower bound. Ours: mean ± std over seeds.\n")
    return write_markdown(lines, table_path, note=note, meta=meta)
