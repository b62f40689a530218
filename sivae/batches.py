"""Which examples each training step sees: seeded epoch permutations that depend on the step alone."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .errors import ConfigError

__all__ = ["epoch_batches"]


def epoch_batches(n: int, batch_size: int, seed: int, *, seed_stride: int = 1_000_003, rank: int = 0,
                  world: int = 1) -> tuple[Callable[[int], Tensor], int]:
    """Indices of the batch of each step: epoch e visits 0..n-1 in a permutation drawn from (seed, e).

    The batch of step t depends on t only (not on the generator the Trainer passes), so a resumed
    run draws exactly the batches the uninterrupted one would have drawn. The incomplete last
    batch of an epoch is dropped. With `world` processes each takes its own slice (rank).
    `seed_stride`: the permutation of epoch e is seeded with seed_stride * seed + e (the images
    section uses 1,000,003, the translation section 100,003; kept so that results stay as published).

    Returns:
        (indices(step) -> LongTensor of batch_size indices, steps per epoch).
    """
    per_epoch = n // (batch_size * world)
    if per_epoch < 1:
        raise ConfigError(f"{n} training images are fewer than one batch ({batch_size} x {world} processes): "
                          f"lower batch_size or give more data")
    cache: dict[int, Tensor] = {}

    def indices(step: int) -> Tensor:
        epoch, i = divmod(step, per_epoch)
        if epoch not in cache:
            cache.clear()
            cache[epoch] = torch.randperm(n, generator=torch.Generator().manual_seed(seed_stride * seed + epoch))
        start = (i * world + rank) * batch_size
        return cache[epoch][start:start + batch_size]

    return indices, per_epoch
