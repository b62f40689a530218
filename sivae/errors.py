"""Exceptions with one clear message each, and the input checks that raise them."""
from __future__ import annotations

import math


class SivaeError(Exception):
    """Base class of every error sivae raises on purpose."""


class ConfigError(SivaeError, ValueError):
    """A parameter has a bad value (unknown name, negative or NaN weight, ...)."""


class DataError(SivaeError, ValueError):
    """A dataset is unknown, missing or malformed."""


class CheckpointError(SivaeError):
    """A checkpoint is missing, corrupt, or belongs to another configuration."""


class OutputError(SivaeError, OSError):
    """An output file or folder cannot be written (disk full, read-only, a file in the way); names the path."""


class DivergenceError(SivaeError, FloatingPointError):
    """Training produced a non-finite or exploding loss."""


def check_nonnegative(name: str, value) -> float:
    """Return float(value), or raise ConfigError naming `name` if it is not a finite number >= 0."""
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ConfigError(f"{name} must be a finite non-negative number, got {value!r}")
    return v


def check_choice(name: str, value: str, choices) -> str:
    """Return value if it is one of `choices`, else raise ConfigError listing them."""
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(sorted(choices))}")
    return value
