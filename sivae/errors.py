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


class DivergenceError(SivaeError, FloatingPointError):
    """Training produced a non-finite or exploding loss."""


def check_nonnegative(name: str, value) -> float:
    """Return float(value), or raise ConfigError naming `name` if it is not a finite number >= 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ConfigError(f"{name} must be a finite non-negative number, got {value!r}")
    return v


def check_choice(name: str, value: str, choices) -> str:
    """Return value if it is one of `choices`, else raise ConfigError listing them."""
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(sorted(choices))}")
    return value


def parse_list(name: str, value, choices) -> list[str]:
    """Parse 'all' or a comma-separated string (or a list) into validated names, in order."""
    items = list(choices) if value in ("all", None) else (
        [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value))
    if not items:
        raise ConfigError(f"{name} is empty; give 'all' or a comma-separated subset of: {', '.join(choices)}")
    for item in items:
        check_choice(name, item, choices)
    return items


def parse_bool(name: str, value) -> bool:
    """A boolean parameter: True/False, or the strings DVC renders them as ("true"/"false").

    papermill turns only "True"/"False" into booleans; `${section.flag}` in dvc.yaml gives
    lower-case "true"/"false", which would otherwise arrive as (always truthy) strings.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return text == "true"


def seeds_from(seed: int, n_seeds: int) -> list[int]:
    """The seeds of a run: seed, seed+1, ..., seed+n_seeds-1 (n_seeds a positive integer)."""
    if int(n_seeds) != n_seeds or n_seeds < 1:
        raise ConfigError(f"n_seeds must be a positive integer, got {n_seeds!r}")
    return [int(seed) + i for i in range(int(n_seeds))]
