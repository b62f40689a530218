"""Encoder/decoder networks.

2D experiments (section 6.1, Appendix 9.2.1): fully connected ReLU networks with 256 hidden
units and d_z = 2. As in the public code, "3 hidden layers" means an input layer to 256 units
followed by 3 hidden 256x256 layers, then the output layer.
Encoders return (mu, logvar); decoders return the mean D(z) of p(x|z).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["MLPConfig", "MLPEncoder", "MLPDecoder", "build_mlp_pair"]


@dataclass
class MLPConfig:
    x_dim: int = 2          # data dimension d_x
    z_dim: int = 2          # latent dimension d_z
    hidden: int = 256       # width of every hidden layer
    n_hidden: int = 3       # number of hidden 256x256 layers after the input layer


def _mlp(d_in: int, d_out: int, hidden: int, n_hidden: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(d_in, hidden), nn.ReLU(inplace=True)]
    for _ in range(n_hidden):
        layers += [nn.Linear(hidden, hidden), nn.ReLU(inplace=True)]
    layers.append(nn.Linear(hidden, d_out))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """q(z|x) = N(mu(x), diag(exp(logvar(x)))) by an MLP."""

    def __init__(self, cfg: MLPConfig = MLPConfig()):
        super().__init__()
        self.cfg = cfg
        self.net = _mlp(cfg.x_dim, 2 * cfg.z_dim, cfg.hidden, cfg.n_hidden)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.net(x.reshape(x.shape[0], -1)).chunk(2, dim=1)  # (B, d_z) each
        return mu, logvar


class MLPDecoder(nn.Module):
    """D(z): the mean of p(x|z) by an MLP."""

    def __init__(self, cfg: MLPConfig = MLPConfig()):
        super().__init__()
        self.cfg = cfg
        self.z_dim = cfg.z_dim
        self.net = _mlp(cfg.z_dim, cfg.x_dim, cfg.hidden, cfg.n_hidden)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


def build_mlp_pair(cfg: MLPConfig = MLPConfig(), seed: int | None = None) -> tuple[MLPEncoder, MLPDecoder]:
    """Encoder and decoder with weights initialised from `seed` (None: the global RNG)."""
    if seed is None:
        return MLPEncoder(cfg), MLPDecoder(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLPEncoder(cfg), MLPDecoder(cfg)
