"""The four 2D datasets of section 6.1 (Figure 2, Table 2), drawn as the public code draws them.

Every sampler takes an explicit torch.Generator so that training batches are reproducible
and a resumed run draws exactly the batches the uninterrupted run would have drawn.
`plot_scale` sets the square [-2*plot_scale, 2*plot_scale]^2 of the metrics and plots
(1 for 8 Gaussians, 2 otherwise, docs/EQUATIONS.md section 6.1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..errors import DataError

__all__ = ["ToyDataset", "TOY_DATASETS", "EIGHT_GAUSSIANS_MODES", "get_toy_dataset", "sample_toy"]


def _eight_centres() -> Tensor:
    # centres on the circle of radius 2 at multiples of 45 degrees (before the / 1.414)
    angles = torch.arange(8, dtype=torch.float32) * (math.pi / 4)
    return 2.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)


def _eight_gaussians(n: int, g: torch.Generator) -> Tensor:
    # the centres plus N(0, 0.02^2) noise, / 1.414
    centres = _eight_centres()
    idx = torch.randint(0, 8, (n,), generator=g)
    return (centres[idx] + 0.02 * torch.randn(n, 2, generator=g)) / 1.414


EIGHT_GAUSSIANS_MODES = (_eight_centres() / 1.414).numpy()   # the 8 modes as the samples hold them


def _spiral(n: int, g: torch.Generator) -> Tensor:
    # two arms of the BNAF spiral: n = sqrt(U) * 540 degrees, arm 2 = -arm 1, / 3, + N(0, 0.1^2)
    half = (n + 1) // 2
    t = torch.sqrt(torch.rand(half, generator=g)) * 540 * (2 * math.pi) / 360
    x = -torch.cos(t) * t + 0.5 * torch.rand(half, generator=g)
    y = torch.sin(t) * t + 0.5 * torch.rand(half, generator=g)
    arm = torch.stack([x, y], dim=1)
    pts = torch.cat([arm, -arm], dim=0)[:n] / 3
    return pts + 0.1 * torch.randn(n, 2, generator=g)


def _checkerboard(n: int, g: torch.Generator) -> Tensor:
    x1 = torch.rand(n, generator=g) * 4 - 2
    x2 = torch.rand(n, generator=g) - 2 * torch.randint(0, 2, (n,), generator=g).float()
    x2 = x2 + torch.floor(x1) % 2
    return torch.stack([x1, x2], dim=1) * 2


def _rings(n: int, g: torch.Generator) -> Tensor:
    # four concentric circles (radii 3, 2.25, 1.5, 0.75) of equally spaced points; pick
    # n of them uniformly with replacement and add N(0, 0.08^2) noise
    sizes = [n // 4] * 3
    sizes = [n - sum(sizes)] + sizes
    circles = []
    for radius, k in zip((3.0, 2.25, 1.5, 0.75), sizes):
        t = torch.linspace(0, 2 * math.pi, k + 1)[:-1]
        circles.append(radius * torch.stack([torch.cos(t), torch.sin(t)], dim=1))
    pts = torch.cat(circles, dim=0)
    pts = pts[torch.randint(0, n, (n,), generator=g)]
    return pts + 0.08 * torch.randn(n, 2, generator=g)


@dataclass(frozen=True)
class ToyDataset:
    """A 2D distribution: its sampler, display name and plotting/metric scale."""
    name: str
    title: str
    plot_scale: float
    sampler: Callable[[int, torch.Generator], Tensor]

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Draw n points, shape (n, 2), float32 on the CPU."""
        if n < 1:
            raise DataError(f"number of samples must be >= 1, got {n}")
        return self.sampler(n, generator)

    @property
    def limit(self) -> float:
        """Half-width of the evaluation square [-limit, limit]^2."""
        return 2.0 * self.plot_scale


TOY_DATASETS: dict[str, ToyDataset] = {
    "8gaussians": ToyDataset("8gaussians", "8 Gaussians", 1.0, _eight_gaussians),
    "spiral": ToyDataset("spiral", "Spiral", 2.0, _spiral),
    "checkerboard": ToyDataset("checkerboard", "Checkerboard", 2.0, _checkerboard),
    "rings": ToyDataset("rings", "Rings", 2.0, _rings),
}


def get_toy_dataset(name: str) -> ToyDataset:
    """Look a 2D dataset up by name, with a clear error listing the valid names."""
    try:
        return TOY_DATASETS[name]
    except KeyError:
        raise DataError(f"unknown 2D dataset {name!r}; choose one of: "
                        f"{', '.join(TOY_DATASETS)}") from None


def sample_toy(name: str, n: int, seed: int = 0) -> Tensor:
    """Convenience: n points of dataset `name` from a fresh generator seeded with `seed`."""
    return get_toy_dataset(name).sample(n, torch.Generator().manual_seed(seed))
