"""Frechet distances between generated and training images (paper's FID, section 6.3).

FID as the paper defines it: the Frechet distance between Gaussians fitted to Inception-v3 pool
features of 50,000 generated images and of the training set, computed with the established
`pytorch-fid` implementation (pinned, pytorch-fid==0.3.0) and its pretrained weights
(pt_inception-2015-12-05-6726825d.pth). pytorch-fid is the library because it is the reference
PyTorch port of the TF FID code and the authors' own scoring code (metrics/fid_score.py in
taldatech/soft-intro-vae-pytorch) is derived from it; so the two protocols below differ only in
the `eval()` call and the uint8 truncation of generated images.

Two labelled protocols (`FID_PROTOCOLS`), because the authors' code and pytorch-fid give very
different numbers on the same checkpoint (4.37 vs 25.86 reported in the authors' issue #14):

* "paper" (the default): Inception in eval mode, images fed as floats in [0, 1] -- what
  pytorch-fid does and what the paper's protocol (50,000 samples vs the training set) means.
* "authors_code": what the authors' script actually does -- `model.eval()` is commented out, so
  Inception's BatchNorm layers normalise with the statistics of each batch of 50 (and update
  their running statistics as a side effect), and generated images are truncated to uint8 levels,
  `floor(clip(x * 255, 0, 255)) / 255`, while dataset images are fed as loaded. sivae restores the
  network's state (state_dict, BN running stats, training flags) afterwards, so one network can
  serve both protocols.

`network_features` holds the protocol switching and works on any `nn.Module`. When the Inception
weights are not in torch hub's checkpoint folder, nothing is downloaded; `frechet_score` says so
and reports a clearly labelled substitute instead: the Frechet distance in the penultimate-layer
features of a small classifier trained on the same dataset ("FD-classifier"). The two are
different numbers on different scales; they are never mixed. `precision_recall` gives the
improved k-NN precision and recall of Kynkaanniemi et al. (2019) in the same features.
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
from ..runtime import resolve_device
from .data import ImageData

__all__ = ["gaussian_stats", "frechet_distance", "FeatureClassifier", "train_classifier", "extract_features",
           "inception_extractor", "frechet_score", "FID_PROTOCOLS", "check_protocol", "quantize_generated",
           "network_features", "network_extractor", "inception_weights_path", "precision_recall"]

FID_KIND = "FID (Inception-v3, pytorch-fid)"
FD_KIND = "FD-classifier (Frechet distance in a same-dataset classifier's features; NOT FID)"
FID_PROTOCOLS = ("paper", "authors_code")
AUTHORS_BATCH_SIZE = 50   # the authors' (and pytorch-fid's default) batch size
FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_FILE}"


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


def check_protocol(protocol: str) -> str:
    """protocol if it is one of FID_PROTOCOLS, else ValueError naming it and the valid ones."""
    if protocol not in FID_PROTOCOLS:
        raise ValueError(f"unknown FID protocol {protocol!r}; valid protocols are {', '.join(map(repr, FID_PROTOCOLS))}")
    return protocol


def quantize_generated(x: Tensor) -> Tensor:
    """The authors' conversion of generated images: clip(x * 255, 0, 255) truncated to uint8, / 255
    (truncation toward zero, not rounding: 0.5 -> 127/255)."""
    return torch.floor(torch.clamp(x * 255, 0, 255)) / 255


def _first_output(out) -> Tensor:
    out = out[0] if isinstance(out, (list, tuple)) else out  # pytorch-fid's InceptionV3 returns a list
    return out.flatten(1)


@torch.no_grad()
def network_features(net: nn.Module, x: Tensor, *, protocol: str = "paper", batch_size: int | None = None,
                     generated: bool = False, device=None, prepare=None) -> Tensor:
    """Features of `net` on images x (N x C x H x W in [0, 1]) under an FID protocol, as a CPU tensor.

    "paper": net in eval mode. "authors_code": the whole net in train mode (as in the authors' script,
    where model.eval() is commented out; Inception's pool3 path has no dropout, so this is BatchNorm
    with per-batch statistics), batches of 50 by default, and generated images (generated=True)
    truncated to uint8 levels first; reference images are fed unchanged. Either way the net's
    state_dict (BN running stats, num_batches_tracked) and every module's training flag are restored
    afterwards. prepare: optional transform applied to each batch before the net (e.g. gray -> RGB);
    outputs that are lists/tuples give their first element; features are flattened per sample.
    """
    check_protocol(protocol)
    if batch_size is None:
        batch_size = AUTHORS_BATCH_SIZE
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if device is None:
        p = next(iter(net.parameters()), None)
        device = p.device if p is not None else "cpu"
    if protocol == "authors_code" and generated:
        x = quantize_generated(x)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    flags = [(m, m.training) for m in net.modules()]
    try:
        net.train(protocol == "authors_code")
        out = []
        for xb in x.split(int(batch_size)):
            xb = xb.to(device)
            out.append(_first_output(net(prepare(xb) if prepare is not None else xb)).cpu())
        return torch.cat(out) if out else torch.empty(0)
    finally:
        net.load_state_dict(state)
        for m, flag in flags:
            m.training = flag


def network_extractor(net: nn.Module, *, protocol: str = "paper", device="cpu", prepare=None,
                      batch_size: int | None = None):
    """A protocol-aware features function over `net`: fn(x, *, generated=False, protocol=<this default>)
    runs network_features on the whole of x and returns a CPU tensor. frechet_score passes its own
    protocol to such functions, so one network serves both protocols."""
    default = check_protocol(protocol)

    def features(x: Tensor, *, generated: bool = False, protocol: str | None = None,
                 batch_size: int | None = batch_size) -> Tensor:
        return network_features(net, x, protocol=default if protocol is None else protocol, batch_size=batch_size,
                                generated=generated, device=device, prepare=prepare)
    features.protocol_aware, features.protocol, features.net = True, default, net
    return features


def inception_weights_path() -> Path:
    """Where torch hub (and so pytorch-fid) looks for the FID Inception weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def _gray_to_rgb(x: Tensor) -> Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def inception_extractor(device="cpu", protocol: str = "paper"):
    """(features function, None) from pytorch-fid's Inception with its FID weights, or
    (None, reason) when the package or its weights are not available here.

    The weights file must already be in torch hub's checkpoint folder: nothing is downloaded (so this
    returns at once offline). The function is protocol-aware (see network_extractor); `protocol`
    is its default when called directly, frechet_score passes its own."""
    check_protocol(protocol)
    try:
        from pytorch_fid.inception import InceptionV3
    except ImportError:
        return None, "the pytorch-fid package is not installed (pip install pytorch-fid==0.3.0)"
    path = inception_weights_path()
    if not path.is_file():
        return None, (f"pytorch-fid's Inception weights {FID_WEIGHTS_FILE} are not in {path.parent} "
                      f"(torch.hub.get_dir()/checkpoints); download {FID_WEIGHTS_URL} into that folder to get FID")
    try:
        net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()
    except Exception as e:  # a corrupt or truncated weights file
        return None, (f"pytorch-fid's Inception weights {path} could not be loaded ({type(e).__name__}: {e}); "
                      f"replace it with {FID_WEIGHTS_URL}")
    return network_extractor(net, protocol=protocol, device=device, prepare=_gray_to_rgb), None


def _as_float64(x) -> Tensor:
    t = x.detach() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    return t.to("cpu", torch.float64)


def _kth_radii(x: Tensor, k: int, chunk: int) -> Tensor:
    # distance to the k-th nearest neighbour excluding self: self (distance 0) is among the k+1 smallest
    return torch.cat([torch.cdist(xb, x).topk(k + 1, dim=1, largest=False).values[:, k] for xb in x.split(chunk)])


def _covered(points: Tensor, centres: Tensor, radii: Tensor, chunk: int) -> Tensor:
    return torch.cat([(torch.cdist(pb, centres) <= radii[None]).any(1) for pb in points.split(chunk)])


def precision_recall(real_features, fake_features, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN balls in feature space.

    precision: share of fake samples inside at least one real sample's k-NN ball; recall: share of
    real samples inside at least one fake sample's k-NN ball; a ball's radius is the distance to the
    sample's k-th nearest neighbour in its own set, excluding itself. Exact float64 distances, in
    chunks. pytorch-fid does not provide these; sivae computes them in the same features as the
    Frechet distance. Returns (precision, recall).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    real, fake = _as_float64(real_features), _as_float64(fake_features)
    for name, f in (("real_features", real), ("fake_features", fake)):
        if f.ndim != 2:
            raise ValueError(f"{name} must be 2-D (samples x features), got shape {tuple(f.shape)}")
        if f.shape[0] <= k:
            raise ValueError(f"{name} needs more than k={k} rows, got {f.shape[0]}")
        if not torch.isfinite(f).all():
            raise ValueError(f"{name} contains non-finite values")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real_features and fake_features differ in feature dimension "
                         f"({real.shape[1]} vs {fake.shape[1]})")
    chunk = max(1, 2 ** 22 // max(len(real), len(fake)))
    r_real, r_fake = _kth_radii(real, k, chunk), _kth_radii(fake, k, chunk)
    precision = _covered(fake, real, r_real, chunk).double().mean().item()
    recall = _covered(real, fake, r_fake, chunk).double().mean().item()
    return float(precision), float(recall)


def frechet_score(generated: Tensor, reference: Tensor, classifier: FeatureClassifier | None = None,
                  use_inception: bool = True, device="cpu", log=print, inception=None, *,
                  protocol: str = "paper", precision_recall_k: int | None = None) -> dict:
    """FID when Inception weights are available, else the labelled classifier-feature distance.

    Args:
        generated, reference: images in [0, 1], N x C x H x W (paper: 50,000 samples vs the training set).
        classifier: the same-dataset feature classifier for the fallback.
        use_inception: try pytorch-fid first.
        inception: a (features, reason) pair from inception_extractor (or network_extractor), to build
            it only once. A plain features function (not protocol-aware) supports "paper" only.
        protocol: one of FID_PROTOCOLS ("paper", the default, or "authors_code"); see the module doc.
            It applies to Inception FID; the FD-classifier fallback uses the classifier's features as
            given, and its result's "protocol" says the protocol does not apply.
        precision_recall_k: if given, also "precision" and "recall" (precision_recall, this k) in the
            same features.
    Returns:
        {"value", "kind", "protocol", "n_generated", "n_reference", "note"} (+ "precision", "recall").
    """
    check_protocol(protocol)
    if not use_inception:
        fn, reason = None, "Inception not requested (use_inception=False)"
    else:
        fn, reason = inception if inception is not None else inception_extractor(device, protocol=protocol)
    kind, used_protocol = FID_KIND, protocol
    if fn is None:
        if classifier is None:
            raise ValueError(f"no FID ({reason}) and no classifier given for the fallback distance")
        used_protocol = (f"not applicable: {FD_KIND.split(' ')[0]} uses the classifier's features as given "
                         f"(requested FID protocol {protocol!r} concerns Inception only)")
        log(f"FID unavailable: {reason}. Reporting {FD_KIND} instead; protocol {used_protocol}.")
        clf, kind = classifier.to(device), FD_KIND
        f_gen = extract_features(clf.features, generated, device=device)
        f_ref = extract_features(clf.features, reference, device=device)
    elif getattr(fn, "protocol_aware", False):
        f_gen = fn(generated, generated=True, protocol=protocol).double().numpy()
        f_ref = fn(reference, generated=False, protocol=protocol).double().numpy()
    elif protocol == "paper":
        f_gen, f_ref = extract_features(fn, generated, device=device), extract_features(fn, reference, device=device)
    else:
        raise ValueError(f"protocol {protocol!r} needs a protocol-aware features function (from "
                         f"inception_extractor or network_extractor), not a plain callable")
    value = frechet_distance(*gaussian_stats(f_gen), *gaussian_stats(f_ref))
    out = {"value": value, "kind": kind, "protocol": used_protocol, "n_generated": len(generated),
           "n_reference": len(reference), "note": reason or ""}
    if precision_recall_k is not None:
        out["precision"], out["recall"] = precision_recall(f_ref, f_gen, k=precision_recall_k)
        out["precision_recall_k"] = int(precision_recall_k)
    return out
