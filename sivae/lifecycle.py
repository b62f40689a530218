"""The life of a training run around its loop: folder lock, resume, stop on a signal, final save.

Every trainer (sivae.train.Trainer, sivae.stack.StackTrainer: both sivae.engine.Engine) runs through
`fit_in_folder`:

- the checkpoint folder is locked for the run (sivae.checkpoints.FolderLock: a second trainer on it
  gets CheckpointError);
- an existing `last.pt` is resumed; under a pipeline stage (SIVAE_STAGE set by sivae.stage) a
  checkpoint of another configuration is set aside under `other_configurations/` (never deleted) and a
  set-aside run of the current configuration is brought back, else the run starts over;
- SIGINT (Ctrl-C) and SIGTERM are caught (`StopOnSignal`): the loop ends at the next step boundary
  with a checkpoint and raises `Stopped` naming the step; a second signal stops at once;
- the last state is saved when the loop ends.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

from .checkpoints import FolderLock, bring_back, set_aside
from .errors import CheckpointError

__all__ = ["fit_in_folder", "resume_or_restart", "Stopped", "ConfigurationChanged", "StopOnSignal"]


class Stopped(KeyboardInterrupt):
    """Training ended on SIGINT/SIGTERM at a step boundary (its checkpoint already saved)."""


class ConfigurationChanged(CheckpointError):
    """The checkpoint was written by another training configuration."""


def fit_in_folder(trainer, resume: bool, locked: bool) -> list | dict:
    """Lock the checkpoint folder, resume (or, under a pipeline stage, restart when the checkpoint is of another
    configuration), run `trainer._loop` under the signal handler, save; returns trainer.history."""
    lock = FolderLock(trainer.ckpt_path.parent).acquire() if locked else None
    try:
        if resume and trainer.ckpt_path is not None and trainer.ckpt_path.exists():
            resume_or_restart(trainer)
        with StopOnSignal() as stop:
            trainer._loop(stop)
        trainer.save()
    finally:
        if lock is not None:
            lock.release()
    return trainer.history


def resume_or_restart(trainer):
    """Load trainer.ckpt_path. Under a pipeline stage (SIVAE_STAGE set by sivae.stage) a checkpoint of another
    configuration is set aside, never deleted (sivae.checkpoints.set_aside), and a set-aside checkpoint of this
    configuration is resumed if there is one; else training starts fresh. Outside a stage: the error."""
    try:
        trainer.load(trainer.ckpt_path)
    except ConfigurationChanged as e:
        if not os.environ.get("SIVAE_STAGE"):
            raise
        aside = set_aside(trainer.ckpt_path)
        back = bring_back(trainer.ckpt_path, trainer.load, ConfigurationChanged)
        then = f"resumes the run of this configuration set aside earlier (step {trainer.step})" if back else \
            "retrains from step 0"
        print(f"{str(e).split('; delete it')[0]}; it is kept as {aside}; stage {os.environ['SIVAE_STAGE']} "
              f"{then}", file=sys.stderr, flush=True)


class StopOnSignal:
    """While active (main thread only), the first SIGINT/SIGTERM is recorded for the loop to act on at
    the next step boundary; a second one raises KeyboardInterrupt at once."""

    def __init__(self):
        self.signum: int | None = None
        self._old: dict = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum, _frame):
        if self.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopped at once")
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: stopping after this step (signal again to stop at once)",
              file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
