"""The statistic of the findings ledger's decision rule: a metric's mean and sample spread over seeds."""
from __future__ import annotations

import math

__all__ = ["seed_stats"]


def seed_stats(values) -> dict:
    """{"mean", "std", "n"} of one metric over seeds: std with ddof=1 (the sample spread the findings ledger's
    decision rule compares), 0.0 for one seed. The one place where a stage turns per-seed values into a spread."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("seed_stats needs at least one value")
    n = len(vals)
    mean = math.fsum(vals) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n}
