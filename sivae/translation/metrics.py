"""Evaluation of section 6.4: content transfer against ground truth, and leakage between the codes.

- Content transfer (Appendix 9.4.3): encode images A and B, decode (class code of A, content
  code of B) from the posterior means. Where the dataset holds the image of A's class at B's
  content (procedural data, Cars3D), the output is scored against it: per-pixel MSE, SSIM
  (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5) and, when the `lpips` package and its
  AlexNet weights are present, LPIPS as in Table 4. Two reference answers give the scale: the
  class source A returned unchanged, and the content source B returned unchanged.
- Leakage (ours, needs no pretrained weights): a linear probe (logistic regression on the
  standardised posterior means of the code's active units, half of the images to fit, half to
  score) predicts the true pose from the class code and the identity from the content code;
  lower is better. Active units (Burda et al. 2016): dimensions whose mean varies over the data,
  Var_x(E_q[z_j | x]) > 0.01; a collapsed dimension's tiny variations would otherwise be blown
  up by the standardisation, and a code with no active unit scores chance. The same probe in
  the intended directions (identity from the class code, pose from the content code) shows
  whether the codes carry their factor at all. Scores are accuracies and (acc - chance) / (1 - chance).
"""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..runtime import resolve_device
from .data import TranslationData, to_float
from .models import SplitDecoder, TwoCodeEncoder

__all__ = ["ssim", "encode_means", "transfer", "transfer_pairs", "evaluate_transfer", "reference_scores",
           "active_units", "probe_accuracy", "evaluate_leakage", "load_lpips", "reconstruction_mse"]


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - size // 2) ** 2) / (2 * sigma ** 2))
    g = (g / g.sum()).float()
    return g[:, None] * g[None, :]                                      # (size, size)


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """Structural similarity per image (Gaussian 11x11 window, sigma 1.5, valid region).

    Args:
        x, y: (B, C, H, W) images in [0, data_range].
    Returns:
        (B,) SSIM averaged over channels and window positions (1 = identical).
    """
    c = x.shape[1]
    w = _gaussian_window().to(x.device, x.dtype).expand(c, 1, -1, -1)  # depthwise (C, 1, 11, 11)
    blur = lambda t: F.conv2d(t, w, groups=c)
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


@torch.no_grad()
def encode_means(encoder: TwoCodeEncoder, images: Tensor, device, batch: int = 256) -> tuple[Tensor, Tensor]:
    """Posterior means of both codes for uint8 images.

    Returns:
        (class means (N, class_dim), content means (N, content_dim)) on the CPU.
    """
    encoder.eval()
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    cls, con = [], []
    for i in range(0, len(images), batch):
        (mu_c, _), (mu_s, _) = encoder.encode(to_float(images[i:i + batch]).to(device))
        cls.append(mu_c.cpu()), con.append(mu_s.cpu())
    return torch.cat(cls), torch.cat(con)


@torch.no_grad()
def transfer(decoder: SplitDecoder, z_class: Tensor, z_content: Tensor, device, batch: int = 256) -> Tensor:
    """Decode pairs (class code, content code) -> (P, C, H, W) float images on the CPU."""
    decoder.eval()
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    return torch.cat([decoder.transfer(z_class[i:i + batch].to(device), z_content[i:i + batch].to(device)).cpu()
                      for i in range(0, len(z_class), batch)])


def transfer_pairs(classes: Tensor, n_pairs: int, seed: int) -> tuple[Tensor, Tensor]:
    """n_pairs random (A, B) image indices with different classes, reproducible from seed."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randint(len(classes), (4 * n_pairs,), generator=g), torch.randint(len(classes), (4 * n_pairs,), generator=g)
    keep = classes[a] != classes[b]
    if int(keep.sum()) < n_pairs:
        raise ValueError("not enough pairs of images with different classes; the split needs 2+ classes")
    return a[keep][:n_pairs], b[keep][:n_pairs]


def _scores(out: Tensor, truth: Tensor, lpips_fn=None) -> dict:
    res = {"mse": float(((out - truth) ** 2).mean()), "ssim": float(ssim(out, truth).mean())}
    if lpips_fn is not None:
        res["lpips"] = float(lpips_fn(out, truth).mean())
    return res


def evaluate_transfer(encoder, decoder, data: TranslationData, split: str, n_pairs: int, seed: int, device,
                      lpips_fn=None) -> dict:
    """Content transfer on one split scored against the true image of (class of A, content of B).

    Args:
        encoder, decoder: the trained TwoCodeEncoder / SplitDecoder. data: TranslationData with truth.
        split: 'train' or 'test'. n_pairs: number of (A, B) pairs. seed: pair choice.
        lpips_fn: (x, y) -> (B,) LPIPS, or None.
    Returns:
        {"mse", "ssim"[, "lpips"]}: means over the pairs (lower MSE/LPIPS, higher SSIM is better).
    """
    images, classes, contents = getattr(data, split), getattr(data, f"{split}_class"), getattr(data, f"{split}_content")
    a, b = transfer_pairs(classes, n_pairs, seed)
    lookup = data.lookup(split)
    truth_idx = torch.tensor([lookup[(int(classes[i]), int(contents[j]))] for i, j in zip(a, b)])
    zc, zs = encode_means(encoder, images, device)
    out = transfer(decoder, zc[a], zs[b], device)
    return _scores(out, to_float(images[truth_idx]), lpips_fn)


def reference_scores(data: TranslationData, split: str, n_pairs: int, seed: int, lpips_fn=None) -> dict:
    """Scores of two answers that ignore the model, on the same pairs as evaluate_transfer.

    Returns:
        {"copy_class_source": scores of returning A, "copy_content_source": scores of returning B}.
    """
    images, classes, contents = getattr(data, split), getattr(data, f"{split}_class"), getattr(data, f"{split}_content")
    a, b = transfer_pairs(classes, n_pairs, seed)
    lookup = data.lookup(split)
    truth = to_float(images[torch.tensor([lookup[(int(classes[i]), int(contents[j]))] for i, j in zip(a, b)])])
    return {"copy_class_source": _scores(to_float(images[a]), truth, lpips_fn),
            "copy_content_source": _scores(to_float(images[b]), truth, lpips_fn)}


@torch.no_grad()
def reconstruction_mse(encoder, decoder, images: Tensor, device) -> float:
    """Per-pixel MSE of D(mu(x)) against x (posterior means, no sampling)."""
    zc, zs = encode_means(encoder, images, device)
    return float(((transfer(decoder, zc, zs, device) - to_float(images)) ** 2).mean())


def active_units(means: Tensor, threshold: float = 0.01) -> Tensor:
    """The columns of posterior means (N, d) whose variance over the N images exceeds `threshold`."""
    return means[:, means.var(dim=0) > threshold]


def probe_accuracy(features: Tensor, labels: Tensor, seed: int) -> float:
    """Held-out accuracy of a logistic-regression probe; per label, half of its images score it.

    Args:
        features: (N, d). labels: (N,) integer labels, each appearing at least twice.
        seed: which half of each label's images is held out.
    Returns:
        accuracy on the held-out half.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    rng = np.random.default_rng(seed)
    x, y = features.double().numpy(), labels.numpy()
    test = np.zeros(len(y), bool)
    for lab in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == lab))
        test[idx[:len(idx) // 2]] = True
    if x.shape[1] == 0:  # no informative dimension: the best guess is the most frequent label
        return float((y[test] == np.bincount(y[~test]).argmax()).mean())
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, C=1.0))
    with warnings.catch_warnings():  # few images per label (tiny runs) and slow convergence are not errors here
        warnings.filterwarnings("ignore", message="The number of unique classes")
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        probe.fit(x[~test], y[~test])
    return float((probe.predict(x[test]) == y[test]).mean())


def evaluate_leakage(encoder, data: TranslationData, device, seed: int, max_images: int = 3000) -> dict:
    """Linear-probe accuracies between codes (active units of the posterior means) and true factors,
    on (a seeded subset of) the training split.

    Returns:
        {"<factor>_from_<code>": {"accuracy", "chance", "score"}} for identity/pose x class/content
        (pose only when the dataset has content labels), score = (acc - chance) / (1 - chance);
        and "active_units": {"class": count, "content": count}.
    """
    n = len(data.train)
    sel = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_images] if n > max_images else torch.arange(n)
    zc, zs = encode_means(encoder, data.train[sel], device)
    zc, zs = active_units(zc), active_units(zs)
    factors = {"identity": data.train_class[sel]}
    if data.train_content is not None:
        factors["pose"] = data.train_content[sel]
    out = {"active_units": {"class": zc.shape[1], "content": zs.shape[1]}}
    for factor, labels in factors.items():
        chance = float(torch.bincount(labels).max()) / len(labels)  # majority class
        for code, z in (("class", zc), ("content", zs)):
            acc = probe_accuracy(z, labels, seed)
            out[f"{factor}_from_{code}"] = {"accuracy": acc, "chance": chance,
                                           "score": (acc - chance) / (1 - chance) if chance < 1 else 0.0}
    return out


ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # the torchvision weights lpips.LPIPS(net="alex") loads


def load_lpips(device) -> tuple[object | None, str]:
    """LPIPS (Zhang et al. 2018, AlexNet) if the `lpips` package and its backbone weights are present.

    Nothing is downloaded: without them LPIPS is reported as not measured, with the reason.
    Returns:
        (fn(x, y) -> (B,) for images in [0, 1], or None; a sentence saying which).
    """
    if importlib.util.find_spec("lpips") is None:
        return None, "LPIPS not measured: the `lpips` package is not installed (pip install lpips)"
    weights = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    if not weights.is_file():
        return None, f"LPIPS not measured: the AlexNet weights it needs are not at {weights}"
    import lpips
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    net = lpips.LPIPS(net="alex", verbose=False).to(device).eval()

    @torch.no_grad()
    def fn(x: Tensor, y: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        return torch.cat([net(2 * x[i:i + 128].to(device) - 1, 2 * y[i:i + 128].to(device) - 1).flatten().cpu()
                          for i in range(0, len(x), 128)])
    return fn, "LPIPS (AlexNet) measured"
