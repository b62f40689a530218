"""sivae: a reproducible companion to Soft-IntroVAE (Daniel & Tamar, CVPR 2021).

Layout (checked by tests/test_layout.py):

- Top level, what every section uses: ``losses`` (Eq. 1, 2, 7), ``engine`` (the training step, loop
  and checkpointing, written once), ``train`` (the Trainer of one run of VAE / IntroVAE / Soft-IntroVAE)
  and ``stack`` (many 2D runs as one batched model), ``lifecycle`` (lock, resume, signals of a run),
  ``batches`` (seeded epoch batches), ``paper`` (the paper's printed numbers and the method titles),
  ``stats`` (the spread over seeds the findings compare), ``checkpoints``, ``runtime`` (device, process
  settings), ``errors``, ``params`` (parameter parsing), ``runinfo`` (run records), ``plots`` (shared
  plotting helpers), ``profiles``, ``progress`` (progress lines), ``stage`` (runs a pipeline stage's notebook). The top level
  imports no section.
- One sub-package per paper section, named after its DVC stage: ``theory_discrete``, ``toy2d``,
  ``stability``, ``images``, ``ood``, ``translation``, and ``findings`` (the ledger of the paper's findings,
  the last stage). Inside each, the same file names:
  ``data`` (datasets), ``models`` (networks), ``metrics``, ``study`` (what the notebook runs),
  ``plots`` (its figures), plus section-specific modules where needed. data/models/metrics
  import only the top level; study imports them; plots draw results. Sections import each other
  only along the pipeline's edges (stability uses toy2d, ood uses images).

Where a new thing goes: a loss -> ``losses``; a network -> ``<section>/models``; a dataset ->
``<section>/data``; a figure -> ``<section>/plots``; a parser -> ``params``; a number printed in the paper
-> ``paper``.
"""
from .errors import CheckpointError, ConfigError, DataError, DivergenceError, OutputError, SivaeError

_LAZY = {"METHODS": "train", "TrainConfig": "train", "Trainer": "train", "resolve_device": "runtime"}


def __getattr__(name):
    # torch is imported on first use, not by `import sivae`: `python -m sivae.stage` must start watching
    # the process that ran it before any heavy import (sivae.stage)
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'sivae' has no attribute {name!r}")


__all__ = ["SivaeError", "ConfigError", "DataError", "CheckpointError", "DivergenceError", "OutputError", "TrainConfig",
           "Trainer", "METHODS", "resolve_device"]
__version__ = "0.1.0"
