"""A tiny ray caster for the procedural translation dataset: toy cars made of ellipsoids.

An identity (the 'class') is a body, a cabin, four wheels and two headlights, with its own
proportions and colours; a pose (the 'content') is one of Cars3D's 24 azimuths x 4 elevations.
The camera is orthographic and circles the car; a fixed light gives Lambertian shading, so
both the silhouette and the shading change with the pose. One ray per pixel at 64x64 (no
supersampling), in float32 on the CPU: the same identity and pose give the same uint8 image
bit for bit.
"""
from __future__ import annotations

import colorsys
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["N_AZIMUTH", "N_ELEVATION", "AZIMUTHS_DEG", "ELEVATIONS_DEG", "sample_identities", "identity_parts",
           "render_identities"]

N_AZIMUTH, N_ELEVATION = 24, 4                      # Cars3D's pose grid
AZIMUTHS_DEG = tuple(15.0 * i for i in range(N_AZIMUTH))
ELEVATIONS_DEG = (10.0, 20.0, 30.0, 40.0)           # ours: Cars3D's exact angles are not used here
SIZE, SUPERSAMPLE = 64, 1                          # 1: no supersampling (2x2 costs 6x the time)
EXTENT = 0.72                                       # the image spans [-EXTENT, EXTENT] around the target
TARGET = (0.0, 0.0, 0.3)                            # the point the camera looks at
LIGHT = (0.45, 0.35, 0.82)                          # light direction (world frame, normalised below)
BACKGROUND = 0.92                                   # light grey, as a studio render
TYRE = (0.12, 0.12, 0.14)
LAMP = (1.0, 0.95, 0.6)


def sample_identities(n: int, seed: int) -> list[dict]:
    """n random car identities (proportions and colours), reproducible from `seed`.

    Args:
        n: number of identities. seed: numpy seed.
    Returns:
        list of dicts of floats (JSON-able), one per identity.
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        u = lambda lo, hi: float(rng.uniform(lo, hi))
        hue = u(0, 1)
        body = colorsys.hsv_to_rgb(hue, u(0.45, 0.95), u(0.55, 1.0))
        cabin = colorsys.hsv_to_rgb((hue + u(0.25, 0.75)) % 1.0, u(0.1, 0.6), u(0.25, 0.7))
        out.append(dict(length=u(0.45, 0.65), width=u(0.24, 0.36), height=u(0.1, 0.2),
                        cabin_offset=u(-0.35, 0.2), cabin_length=u(0.3, 0.55), cabin_height=u(0.1, 0.2),
                        wheel=u(0.09, 0.15), body_rgb=list(body), cabin_rgb=list(cabin)))
    return out


def identity_parts(ident: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ellipsoids of one car in its own frame (x forward, z up).

    Returns:
        centres (K, 3), radii (K, 3), colours (K, 3), K = 8: body, cabin, 4 wheels, 2 headlights.
    """
    L, W, H, r = ident["length"], ident["width"], ident["height"], ident["wheel"]
    zb = r + 0.5 * H                                    # the body sits on the wheels
    centres = [(0, 0, zb), (ident["cabin_offset"] * L, 0, zb + 0.75 * H)]
    radii = [(L, W, H), (ident["cabin_length"] * L, 0.8 * W, ident["cabin_height"])]
    colours = [ident["body_rgb"], ident["cabin_rgb"]]
    for sx in (0.62, -0.62):
        for sy in (1, -1):
            centres.append((sx * L, sy * 0.92 * W, r)), radii.append((r, 0.35 * r, r)), colours.append(TYRE)
    for sy in (0.5, -0.5):  # headlights mark the front, so azimuth and azimuth + 180 differ
        centres.append((0.97 * L, sy * W, zb)), radii.append((0.06, 0.06, 0.05)), colours.append(LAMP)
    return (np.asarray(centres, np.float32), np.asarray(radii, np.float32), np.asarray(colours, np.float32))


def _camera(az: Tensor, el: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Orthographic cameras at (azimuth, elevation) in radians: origin of the central ray (N, 3),
    viewing direction, right and up vectors of the image plane (N, 3 each)."""
    to_cam = torch.stack([el.cos() * az.cos(), el.cos() * az.sin(), el.sin()], dim=1)  # (N, 3)
    fwd = -to_cam
    right = F.normalize(torch.linalg.cross(fwd, torch.tensor([[0.0, 0.0, 1.0]]).expand_as(fwd)), dim=1)
    up = torch.linalg.cross(right, fwd)
    return torch.tensor(TARGET) + 5.0 * to_cam, fwd, right, up               # origin outside the car


def _shade(centres: Tensor, radii: Tensor, colours: Tensor, az: Tensor, el: Tensor) -> Tensor:
    """Render N views: centres/radii/colours (N, K, 3), az/el (N,) radians -> (N, 3, 64, 64) float in [0, 1].

    The ray of pixel (x, y) is o + x*right + y*up + t*fwd. In each ellipsoid's unit-sphere frame
    (divide by the radii) the hit condition |o' + t d'|^2 = 1 is a quadratic in t whose
    coefficients are polynomials in (x, y) with per-(view, part) coefficients, computed once.
    """
    o0, d, right, up = _camera(az, el)
    res = SIZE * SUPERSAMPLE
    s = (torch.arange(res, dtype=torch.float32) + 0.5) / res * 2 - 1          # (res,) in (-1, 1)
    py, px = torch.meshgrid(-s * EXTENT, s * EXTENT, indexing="ij")          # image rows go down
    px, py = px.reshape(1, -1, 1), py.reshape(1, -1, 1)                       # (1, P, 1)
    inv = 1.0 / radii                                                         # (N, K, 3)
    oc, dc = (o0[:, None] - centres) * inv, d[:, None] * inv                  # (N, K, 3) each
    rc, uc = right[:, None] * inv, up[:, None] * inv
    dot = lambda u, v: (u * v).sum(-1)[:, None]                               # (N, 1, K)
    a = dot(dc, dc)
    half_b = dot(oc, dc) + px * dot(rc, dc) + py * dot(uc, dc)                # (N, P, K)
    c = (dot(oc, oc) - 1 + 2 * px * dot(oc, rc) + 2 * py * dot(oc, uc)
         + px * px * dot(rc, rc) + 2 * px * py * dot(rc, uc) + py * py * dot(uc, uc))
    disc = half_b * half_b - a * c
    t = torch.where(disc > 0, (-half_b - disc.clamp(min=0).sqrt()) / a, torch.full_like(disc, math.inf))
    t_hit, k = t.min(dim=2)                                                   # nearest part per ray, (N, P)
    hit = torch.isfinite(t_hit)
    pick = lambda v: torch.gather(v, 1, k[..., None].expand(-1, -1, 3))      # (N, K, 3) -> (N, P, 3)
    p = (o0[:, None] + px * right[:, None] + py * up[:, None]
         + t_hit.nan_to_num(0, posinf=0)[..., None] * d[:, None])            # (N, P, 3) hit points
    normal = F.normalize((p - pick(centres)) / pick(radii) ** 2, dim=2)
    lambert = (normal * F.normalize(torch.tensor(LIGHT), dim=0)).sum(-1, keepdim=True).clamp(min=0)
    rgb = torch.where(hit[..., None], pick(colours) * (0.35 + 0.65 * lambert), torch.full_like(p, BACKGROUND))
    return F.avg_pool2d(rgb.reshape(-1, res, res, 3).permute(0, 3, 1, 2), SUPERSAMPLE)


def render_identities(idents: list[dict], azimuths=None, elevations=None, chunk: int = 96) -> Tensor:
    """Render identities at every pose, or each identity at its own pose.

    Args:
        idents: identity dicts (sample_identities).
        azimuths, elevations: None (every identity at all 24 x 4 poses), or pose indices, one per identity.
        chunk: views rendered at once (memory: about 0.13 MB per view and part and tensor).
    Returns:
        uint8 images: (I, 96, 3, 64, 64) in pose order azimuth * 4 + elevation, or (I, 3, 64, 64).
    """
    if azimuths is None:
        pairs = [(i, a, e) for i in range(len(idents)) for a in range(N_AZIMUTH) for e in range(N_ELEVATION)]
    else:
        pairs = [(i, int(a), int(e)) for i, (a, e) in enumerate(zip(azimuths, elevations))]
    parts = [tuple(torch.from_numpy(v) for v in identity_parts(ident)) for ident in idents]
    out = []
    for s in range(0, len(pairs), chunk):
        sel = pairs[s:s + chunk]
        c, r, col = (torch.stack([parts[i][j] for i, _, _ in sel]) for j in range(3))
        az = torch.tensor([math.radians(AZIMUTHS_DEG[a]) for _, a, _ in sel])
        el = torch.tensor([math.radians(ELEVATIONS_DEG[e]) for _, _, e in sel])
        out.append((_shade(c, r, col, az, el) * 255).round().clamp(0, 255).to(torch.uint8))
    images = torch.cat(out)
    return images.reshape(len(idents), N_AZIMUTH * N_ELEVATION, 3, SIZE, SIZE) if azimuths is None else images
