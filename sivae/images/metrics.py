"""Frechet distances between generated and training images (paper's FID, section 6.3).

FID as the paper defines it: the Frechet distance between Gaussians fitted to Inception-v3 pool
features of 50,000 generated images and of the training set, computed with the established
`pytorch-fid` implementation and its pretrained weights (pt_inception-2015-12-05). When those
weights are neither cached locally nor downloadable, `frechet_score` says so and reports a
clearly labelled substitute instead: the Frechet distance in the penultimate-layer features of
a small classifier trained on the same dataset ("FD-classifier"). The two are different
numbers on different scales; they are never mixed.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from torch import Tensor, nn

from ..errors import CheckpointError
from ..train import resolve_device
from .data import ImageData

__all__ = ["gaussian_stats", "frechet_distance", "FeatureClassifier", "train_classifier", "extract_features",
           "inception_extractor", "frechet_score"]

FID_KIND = "FID (Inception-v3, pytorch-fid)"
FD_KIND = "FD-classifier (Frechet distance in a same-dataset classifier's features; NOT FID)"


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (rows = samples) in float64."""
    f = np.asarray(features, dtype=np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    s1, s2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # near-singular product: regularise as pytorch-fid does
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


class FeatureClassifier(nn.Module):
    """A small CNN classifier; `features` gives its 128-d penultimate layer."""

    def __init__(self, cdim: int = 1, n_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cdim, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, 128), nn.ReLU())
        self.head = nn.Linear(128, n_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def train_classifier(train: ImageData, test: ImageData, path, *, epochs: int = 1, batch_size: int = 128,
                     seed: int = 0, device="auto") -> tuple[FeatureClassifier, float]:
    """Train (or load from `path`, if it exists) the feature classifier; returns it and test accuracy."""
    path, dev = Path(path), resolve_device(device)
    model = FeatureClassifier(train.shape[0]).to(dev)
    if path.exists():
        try:
            state = torch.load(path, map_location=dev, weights_only=True)
            model.load_state_dict(state["weights"])
            return model.eval(), float(state["test_accuracy"])
        except Exception as e:
            raise CheckpointError(f"classifier checkpoint {path} is corrupt or does not fit "
                                  f"({type(e).__name__}); delete it to retrain") from None
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FeatureClassifier(train.shape[0]).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(train), generator=gen).split(batch_size):
            loss = F.cross_entropy(model(train.x[idx].to(dev)), train.y[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(xb.to(dev)).argmax(1).cpu() for xb in test.x.split(1000)])
    acc = float((pred == test.y).float().mean())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"weights": model.state_dict(), "test_accuracy": acc}, tmp)
    os.replace(tmp, path)
    return model, acc


@torch.no_grad()
def extract_features(fn, x: Tensor, batch: int = 500, device="cpu") -> np.ndarray:
    """fn applied to x in batches, as a float64 numpy array."""
    return np.concatenate([fn(xb.to(device)).double().cpu().numpy() for xb in x.split(batch)])


def inception_extractor(device="cpu"):
    """(features function, None) from pytorch-fid's Inception with its FID weights, or
    (None, reason) when the package or its weights are not available here."""
    try:
        from pytorch_fid.inception import InceptionV3
    except ImportError:
        return None, "the pytorch-fid package is not installed (pip install pytorch-fid)"
    try:
        net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()
    except Exception as e:  # the weights download fails without internet
        return None, (f"pytorch-fid's Inception weights (pt_inception-2015-12-05) are not cached and could not be "
                      f"downloaded ({type(e).__name__}); put the file in {torch.hub.get_dir()}/checkpoints to get FID")

    def features(x: Tensor) -> Tensor:
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x  # grayscale -> 3 channels
        return net(x)[0].flatten(1)
    return features, None


def frechet_score(generated: Tensor, reference: Tensor, classifier: FeatureClassifier | None = None,
                  use_inception: bool = True, device="cpu", log=print, inception=None) -> dict:
    """FID when Inception weights are available, else the labelled classifier-feature distance.

    Args:
        generated, reference: images in [0, 1], N x C x H x W (paper: 50,000 samples vs the training set).
        classifier: the same-dataset feature classifier for the fallback.
        use_inception: try pytorch-fid first.
        inception: a (features, reason) pair from inception_extractor, to build it only once.
    Returns:
        {"value", "kind", "n_generated", "n_reference", "note"}.
    """
    if not use_inception:
        fn, reason = None, "Inception not requested (use_inception=False)"
    else:
        fn, reason = inception if inception is not None else inception_extractor(device)
    kind = FID_KIND
    if fn is None:
        if classifier is None:
            raise ValueError(f"no FID ({reason}) and no classifier given for the fallback distance")
        log(f"FID unavailable: {reason}. Reporting {FD_KIND} instead.")
        fn, kind = classifier.to(device).features, FD_KIND
    f_gen, f_ref = extract_features(fn, generated, device=device), extract_features(fn, reference, device=device)
    value = frechet_distance(*gaussian_stats(f_gen), *gaussian_stats(f_ref))
    return {"value": value, "kind": kind, "n_generated": len(generated), "n_reference": len(reference),
            "note": reason or ""}
