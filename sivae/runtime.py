"""Device choice and process-level settings.

`resolve_device` turns the `device` parameter every notebook takes ("auto", "cpu", "cuda") into a
torch device with one clear error. The rest of this module: settings that make CPU work faster
without changing any result.

`keep_freed_memory` tells glibc's malloc to keep memory that torch frees and hand it out again,
instead of returning every large block to the operating system at once. By default glibc
serves each allocation above 128 KiB (after its dynamic adjustment, a few MiB) with a fresh
mmap and unmaps it on free, so a loop that allocates activations of tens of MiB per call pays
a page fault (a zeroed page from the kernel) for every 4 KiB it touches, every call: in our OOD
scoring benchmark that was a quarter of the CPU time, spent in the kernel. With larger
thresholds the same blocks are reused from the heap. Values are unaffected (only where the
memory comes from changes); the price is that the process keeps its peak heap until it exits.

It changes the whole process, so sivae applies it only where it says so (`sivae.ood.score_images`
on the CPU) and it can be called once by any script that wants it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

import torch

from .errors import ConfigError

__all__ = ["resolve_device", "check_device", "keep_freed_memory"]


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu; otherwise the named device, checked."""
    if device in ("auto", None, ""):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available here; use 'auto' or 'cpu'")
    return dev


def check_device(device) -> torch.device:
    """resolve_device for a device parameter of any type, limited to the devices sivae trains on.

    'auto', None, 'cpu', 'cuda' or 'cuda:<index>' (an existing GPU), 'mps' where available; anything
    else raises ConfigError naming `device`, before any work.
    """
    allowed = "use 'auto', 'cpu', 'cuda' or 'cuda:<index>'"
    if device is not None and not isinstance(device, (str, torch.device)):
        raise ConfigError(f"device must be a string; {allowed}, got {device!r}")
    dev = resolve_device(str(device) if isinstance(device, torch.device) else device)
    mps = dev.type == "mps" and torch.backends.mps.is_available()
    if dev.type not in ("cpu", "cuda") and not mps:
        raise ConfigError(f"unsupported device {device!r}; {allowed}")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: there are only {torch.cuda.device_count()} CUDA device(s) here")
    return dev


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # mallopt parameters (glibc malloc.h)
_applied: bool | None = None


def keep_freed_memory(mmap_threshold: int = 1 << 30, trim_threshold: int = 2**31 - 1) -> bool:
    """Raise glibc's mmap and trim thresholds (bytes) for this process; True if applied.

    A no-op returning False where the C library is not glibc (macOS, Windows, musl). Calling it
    again does nothing more.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(
        mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))
    return _applied
