"""Checkpoint files: written atomically with a checksum, read without executing anything, one writer per folder.

Format (v2): a short text header, then the bytes of `torch.save(state)`:

    SIVAE-CHECKPOINT v2\\n
    sha256 <hex digest of the payload>\\n
    <payload>

Loading checks the header and the digest (a flipped byte is refused, naming the file), then
reads the payload with `torch.load(weights_only=True)`: tensors and plain containers only, so a
file carrying a pickled program is refused before anything in it runs. Checkpoints of format
v1 (a bare `torch.save` file, without checksum) are still read, also with weights_only=True.

A checkpoint of another configuration is never deleted: `set_aside` moves it into
`<folder>/other_configurations/<key>/`, the key a digest of its configuration, and `bring_back` moves a
set-aside checkpoint of the current configuration back into place. So a one-off override (`-p n_iter 3000`)
and a return to the original parameters resumes, or just loads, the original run.

`FolderLock` keeps two trainers from writing one checkpoint folder: the second gets one error
naming the folder and the process that holds it. The lock is an OS file lock (fcntl.flock), so a
process that dies releases it; temporary files are unique per process.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import torch

from .errors import CheckpointError

__all__ = ["FORMAT", "save_checkpoint", "load_checkpoint", "FolderLock", "REQUIRED_KEYS", "ASIDE",
           "configuration_key", "set_aside", "bring_back", "identity_changes"]

FORMAT = "sivae-checkpoint-v1"          # the "format" key inside the state (unchanged since v1)
MAGIC = b"SIVAE-CHECKPOINT v2\n"
REQUIRED_KEYS = ("format", "step", "config", "encoder", "decoder", "opt_e", "opt_d", "sched_e", "sched_d",
                 "data_gen", "noise_gen", "history")
REPAIR = "delete it to start over, or restore it from DVC (dvc checkout)"
ASIDE = "other_configurations"   # <folder>/ASIDE/<key>/<name>: checkpoints of other configurations, kept
# what else, beside the training configuration, makes a run another run (the image runs' architecture and data)
IDENTITY_KEYS = ("kind", "arch", "dataset", "n_train", "growth", "world", "steps_per_epoch")


def _canonical(x):
    """`x` with fresh containers and interned strings, so that the pickle's layout depends on the values only.

    Pickle shares an object written twice (a memo reference), so equal states could be written as different
    bytes: a run resumed from a checkpoint holds objects shared as the unpickler made them, a run from scratch
    holds them as the trainer made them. Rebuilding the containers and interning every string gives one
    layout for equal values, so equal runs give byte-identical checkpoints (and DVC hashes)."""
    if type(x) is dict:
        return {_canonical(k): _canonical(v) for k, v in x.items()}
    if type(x) is OrderedDict:   # a module's state_dict: keep its type and the `_metadata` load_state_dict reads
        out = OrderedDict((_canonical(k), _canonical(v)) for k, v in x.items())
        if hasattr(x, "_metadata"):
            out._metadata = _canonical(x._metadata)
        return out
    if type(x) in (list, tuple):
        return type(x)(_canonical(v) for v in x)
    if type(x) is str:
        return sys.intern(x)
    return x


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write `state` to `path` atomically (unique temp file + rename): a kill never leaves half a file.

    Equal states give byte-identical files, however their objects were made (see `_canonical`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(_canonical(state), buf)
    payload = buf.getvalue()
    digest = hashlib.sha256(payload).hexdigest().encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + b"sha256 " + digest + b"\n")
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _payload(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"checkpoint {path} cannot be read ({e.strerror})") from None
    if not raw.startswith(MAGIC):
        return raw  # v1: a bare torch.save file (or not a checkpoint at all: torch.load says)
    head, sep, payload = raw[len(MAGIC):].partition(b"\n")
    if not sep or not head.startswith(b"sha256 "):
        raise CheckpointError(f"checkpoint {path} has a damaged header; {REPAIR}")
    if hashlib.sha256(payload).hexdigest().encode() != head[len(b"sha256 "):].strip():
        raise CheckpointError(f"checkpoint {path} is corrupt: its contents do not match its checksum; {REPAIR}")
    return payload


def load_checkpoint(path: str | os.PathLike, map_location="cpu", required=REQUIRED_KEYS) -> dict:
    """Read a sivae checkpoint, raising CheckpointError if it is missing, corrupt, unsafe or foreign."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    payload = _payload(path)
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 (torch raises several kinds for garbage and for refused objects)
        text = str(e)
        if "Unsupported global" in text or "unsupported GLOBAL" in text:
            raise CheckpointError(f"checkpoint {path} was refused: it holds Python objects that would run code when "
                                  f"loaded (not a plain tensor file); nothing in it was executed. {REPAIR}") from None
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}); {REPAIR}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a sivae checkpoint")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}: written by another program or "
                              f"damaged; {REPAIR}")
    return state


class FolderLock:
    """An exclusive lock on a checkpoint folder (file `<folder>/.lock`), released on exit or when the process dies."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / ".lock"
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        import fcntl
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = ""
                for _ in range(40):   # the holder writes its name just after taking the lock: wait for it, briefly
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                    if holder:
                        break
                    time.sleep(0.025)
                holder = holder or "another process"
            finally:
                os.close(fd)
            raise CheckpointError(f"checkpoint folder {self.folder} is in use by {holder}: two trainers must not "
                                  f"share a folder; wait for it, or give this run another ckpt_dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode())
        self._fd = fd
        return self

    def release(self):
        if self._fd is None:
            return
        import fcntl
        try:
            os.unlink(self.path)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _norm(v):
    return json.dumps(v, sort_keys=True, default=str)


def identity_changes(saved_extra: dict, current_extra: dict) -> dict:
    """{key: (checkpoint's value, current value)} of the identity entries (IDENTITY_KEYS: architecture,
    dataset, n_train, ...; 'arch.channels' for one entry of a dict) that the current run records in its extra
    and the checkpoint records otherwise (or not at all): a checkpoint of another model or other data is
    another run, never resumed or returned as trained."""
    saved = saved_extra if isinstance(saved_extra, dict) else {}
    now = current_extra if isinstance(current_extra, dict) else {}
    out = {}
    for k in IDENTITY_KEYS:
        if k not in now or _norm(saved.get(k)) == _norm(now[k]):
            continue
        a, b = saved.get(k), now[k]
        if isinstance(a, dict) and isinstance(b, dict):   # name the entries that differ: 'arch.channels'
            out.update({f"{k}.{j}": (a.get(j), b.get(j)) for j in sorted(set(a) | set(b))
                        if _norm(a.get(j)) != _norm(b.get(j))})
        else:
            out[k] = (a, b)
    return out


# ------------------------------------------------------------------ other configurations: kept, never deleted
def configuration_key(state: dict) -> str:
    """A short digest of what makes a checkpoint's run that run: its training configuration (a Trainer's
    "config", a stack's "runs") and the identity entries of its "extra" (architecture, dataset, n_train, ...)."""
    extra = state.get("extra") if isinstance(state.get("extra"), dict) else {}
    ident = {"config": state.get("config"), "runs": state.get("runs"),
             "identity": {k: extra[k] for k in IDENTITY_KEYS if k in extra}}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


def set_aside(path: str | os.PathLike) -> Path:
    """Move the checkpoint `path` (of a configuration that is not the current one) to
    `<folder>/other_configurations/<key>/<name>` and return where it went; an earlier set-aside checkpoint of
    that same configuration is replaced (it is older). Nothing is deleted that a later run could resume."""
    path = Path(path)
    key = configuration_key(load_checkpoint(path, required=("format", "step")))
    dest = path.parent / ASIDE / key / path.name
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
    except OSError as e:
        raise CheckpointError(f"checkpoint {path} of another configuration could not be set aside to {dest} "
                              f"({e.strerror}); nothing was deleted. Move it away yourself, or give this run "
                              f"another ckpt_dir") from None
    return dest


def bring_back(path: str | os.PathLike, load, mismatch: type) -> Path | None:
    """Find a set-aside checkpoint of the current configuration and move it back to `path`.

    `load(candidate)` loads a candidate into the trainer, raising `mismatch` (before changing anything)
    when it is of another configuration. The newest candidate that loads is moved into place and returned;
    None when there is none (the run starts fresh). A candidate that matches but cannot be loaded is
    named in a CheckpointError (the trainer may hold part of it)."""
    path = Path(path)
    candidates = sorted((path.parent / ASIDE).glob(f"*/{path.name}"), key=lambda p: p.stat().st_mtime_ns,
                        reverse=True)
    for cand in candidates:
        try:
            load(cand)
        except mismatch:
            continue
        except CheckpointError as e:
            raise CheckpointError(f"set-aside checkpoint {cand} is of this configuration but cannot be resumed "
                                  f"({e}); delete it to start over") from None
        os.replace(cand, path)
        try:
            cand.parent.rmdir()
            (path.parent / ASIDE).rmdir()
        except OSError:
            pass   # other files (another configuration) remain
        return cand
    return None
