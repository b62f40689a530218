"""Typed stage configurations: a stage's parameters built once into one object, checked once.

Each section defines `sivae/<stage>/config.py` with a dataclass deriving from `StageConfig`
whose fields are the notebook's parameters (the names of its `parameters` cell and of its
params.yaml section). Its `__post_init__` parses and checks every field once (one ConfigError
naming the first bad one: the errors of `sivae.params`), after which the object is passed down
whole: study functions take it, nothing below re-parses a value it holds.

A notebook builds it in one call from its parameters cell:

    cfg = Toy2dConfig.from_params(globals())

and a script or test from a params.yaml section (`sivae.params.read_section`) or keywords.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["StageConfig", "check_path"]


def check_path(name: str, value) -> str:
    """A non-empty file or folder path as a string, or ConfigError naming the parameter."""
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ConfigError(f"{name} must be a file or folder path, got {value!r}")
    return str(value)


class StageConfig:
    """Base of the stages' config dataclasses: construction from parameters, and back to plain values."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The parameter names this config takes (its init fields)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **overrides):
        """The config of the parameters in `params` that this config names (others are ignored: a notebook's
        globals(), a params.yaml section with its output paths); a missing one keeps its default; `overrides`
        replace values of `params`. Every value is checked once, by the dataclass's __post_init__."""
        merged = {**params, **overrides}
        return cls(**{k: merged[k] for k in cls.names() if k in merged})

    def replace(self, **changes):
        """A copy with some parameters changed (checked again: the copy is built by __post_init__ too)."""
        return dataclasses.replace(self, **changes)

    def as_params(self) -> dict:
        """The parsed parameters as JSON-able values (tuples as lists, paths as strings): for run records."""
        def plain(v):
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, dict):
                return {str(k): plain(x) for k, x in v.items()}
            return v
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.init}
