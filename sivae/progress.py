"""Progress of training runs and long evaluations: one helper for every loop, two ways to show it.

Inside a pipeline stage (`python -m sivae.stage`, which `dvc repro` runs) the runner sets
SIVAE_PROGRESS to the path of an events file: each loop then writes JSON lines to it (start,
steps at most every half second, checkpoint saves, end) and nothing to the notebook, so the
executed notebooks and the report carry no progress bars. The runner tails the file and draws
them on the terminal that started it (`Display`): one line per run (stage, run, step of total,
rate, time left), redrawn in place on a terminal and printed every 10% otherwise (CI logs,
`nohup`), and one line per finished run with its last losses. Outside a stage (a notebook run
by hand, a script) the helper is a tqdm bar, as before.

    bar = progress(n_iter, "soft_intro_vae seed 0", initial=step, enabled=cfg.progress)
    for ...:
        bar.update(1); bar.set_postfix(rec=0.1)
        bar.saved(step, ckpt_path)          # the runner names the last saved step if it has to stop
    bar.close()                             # or bar.close(stopped=True)

No torch here: the runner imports this module before any heavy import.
"""
from __future__ import annotations

import json
import math
import os
import sys
import threading
import time

__all__ = ["ENV", "progress", "run_label", "Bar", "Display", "tail_events", "format_duration"]

ENV = "SIVAE_PROGRESS"     # path of the events file the stage runner tails
STEP_EVERY = 0.5           # seconds between two step events of one run
_lock = threading.Lock()


def _emit(events_file: str, **event):
    line = json.dumps({"t": time.time(), **event}, default=str) + "\n"
    with _lock:
        try:
            fd = os.open(events_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError:
            pass  # progress is never worth failing a run for


class Bar:
    """A progress bar: events to the stage runner when SIVAE_PROGRESS is set, else tqdm (when enabled)."""

    def __init__(self, total: int, desc: str, initial: int = 0, enabled: bool = True, unit: str = "step",
                 events: bool = True):
        self.total, self.desc, self.n, self.unit = int(total), str(desc), int(initial), unit
        self.postfix: dict = {}
        self._path = os.environ.get(ENV) if events else None
        self._tqdm = None
        self._last = 0.0
        self._closed = False
        if self._path:
            _emit(self._path, ev="start", run=self.desc, total=self.total, initial=self.n, unit=unit)
        elif enabled:
            from tqdm import tqdm
            self._tqdm = tqdm(total=self.total, initial=self.n, mininterval=5.0, desc=self.desc, leave=False,
                              dynamic_ncols=True, unit=unit)

    def update(self, n: int = 1):
        self.n += n
        if self._tqdm is not None:
            self._tqdm.update(n)
        elif self._path:
            now = time.time()
            if now - self._last >= STEP_EVERY:
                self._last = now
                _emit(self._path, ev="step", run=self.desc, n=self.n)

    def set_postfix(self, values: dict | None = None, **kw):
        self.postfix = {**(values or {}), **kw}
        if self._tqdm is not None:
            self._tqdm.set_postfix({k: f"{v:.3g}" if isinstance(v, float) else v for k, v in self.postfix.items()})

    def saved(self, step: int, path):
        """A checkpoint of this run was written at `step`."""
        if self._path:
            _emit(self._path, ev="saved", run=self.desc, step=int(step), path=str(path))

    def close(self, stopped: bool = False):
        if self._closed:
            return
        self._closed = True
        if self._tqdm is not None:
            self._tqdm.close()
        elif self._path:
            _emit(self._path, ev="end", run=self.desc, n=self.n, total=self.total, stopped=bool(stopped),
                  metrics={k: v for k, v in self.postfix.items() if isinstance(v, (int, float))})


def progress(total: int, desc: str, *, initial: int = 0, enabled: bool = True, unit: str = "step",
             events: bool = True) -> Bar:
    """The progress bar of one training run or long evaluation (see the module docstring)."""
    return Bar(total, desc, initial=initial, enabled=enabled, unit=unit, events=events)


def run_label(ckpt_path, default: str) -> str:
    """A run's name for progress lines: its checkpoint folder below `checkpoints/` (e.g.
    8gaussians/soft_intro_vae/seed0), else the folder's last three parts, else `default`."""
    if ckpt_path is None:
        return default
    parts = list(os.path.normpath(os.path.dirname(os.fspath(ckpt_path))).split(os.sep))
    if "checkpoints" in parts:
        below = parts[len(parts) - parts[::-1].index("checkpoints"):]
        if below:
            return "/".join(below)
    return "/".join(p for p in parts[-3:] if p) or default


def format_duration(seconds: float) -> str:
    """12 s, 3 min 05 s, 1 h 02 min."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _metrics_text(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())


class Display:
    """Draws the events of one stage on a terminal (in place) or a log (every `log_every` of a run)."""

    def __init__(self, stage: str, stream=None, tty: bool | None = None, log_every: float = 0.1,
                 redraw_every: float = 0.2, quiet: bool = False):
        self.stage, self.quiet = stage, quiet
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.log_every, self.redraw_every = log_every, redraw_every
        self.runs: dict[str, dict] = {}
        self.last_saved: dict[str, tuple[int, str]] = {}   # run -> (step, path) of its last checkpoint
        self._open_line = False
        self._drawn = 0.0
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- output
    def _write(self, text: str, progress: bool = True):
        if progress and self.quiet:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def message(self, text: str):
        """A line of the runner's own (clears an in-place progress line first)."""
        with self._lock:
            self._clear()
            self._write(text.rstrip("\n") + "\n", progress=False)

    def _clear(self):
        if self._open_line:
            self._write("\r\x1b[K", progress=False)
            self._open_line = False

    def _line(self, run: str, r: dict, now: float) -> str:
        total, n = r["total"], r["n"]
        pct = 100.0 * n / total if total else 100.0
        done = n - r["initial"]
        rate = done / (now - r["t0"]) if now > r["t0"] and done > 0 else float("nan")
        left = (total - n) / rate if rate and math.isfinite(rate) and rate > 0 else float("nan")
        rate_s = f"{rate:.1f} {r['unit']}/s" if math.isfinite(rate) else f"- {r['unit']}/s"
        return (f"{self.stage} | {run} | {r['unit']} {n}/{total} ({pct:.0f}%) | {rate_s} | "
                f"{format_duration(left)} left")

    # ---------------------------------------------------------------- events
    def event(self, e: dict):
        ev, run, now = e.get("ev"), str(e.get("run", "?")), float(e.get("t", time.time()))
        with self._lock:
            if ev == "start":
                self.runs[run] = r = {"total": int(e.get("total", 0)), "initial": int(e.get("initial", 0)),
                                      "n": int(e.get("initial", 0)), "t0": now, "unit": e.get("unit", "step")}
                r["next"] = self._next_mark(r)
                self._show(run, r, now, force=True)
            elif ev == "step" and run in self.runs:
                r = self.runs[run]
                r["n"] = int(e.get("n", r["n"]))
                self._show(run, r, now)
            elif ev == "saved":
                self.last_saved[run] = (int(e.get("step", 0)), str(e.get("path", "")))
            elif ev == "end":
                r = self.runs.pop(run, None) or {"total": e.get("total", 0), "initial": 0, "n": 0, "t0": now,
                                                 "unit": "step"}
                n, total = int(e.get("n", r["n"])), int(e.get("total", r["total"]))
                self._clear()
                took = format_duration(now - r["t0"])
                if e.get("stopped"):
                    saved = self.last_saved.get(run)
                    what = f"checkpoint at step {saved[0]}" if saved else "no checkpoint"
                    text = f"{self.stage} | {run} | stopped at {r['unit']} {n}/{total} after {took} ({what})"
                else:
                    self.last_saved.pop(run, None)   # finished: its final checkpoint is the whole run
                    m = _metrics_text(e.get("metrics") or {})
                    text = f"{self.stage} | {run} | done {n}/{total} {r['unit']}s in {took}" + (f" | {m}" if m else "")
                self._write(text + "\n")

    def _next_mark(self, r: dict) -> int:
        """The next multiple of log_every (in percent) after the run's position, as an integer percent."""
        every = max(1, round(100 * self.log_every))
        pct = 100 * r["n"] // r["total"] if r["total"] else 100
        return (pct // every + 1) * every

    def _show(self, run: str, r: dict, now: float, force: bool = False):
        if self.tty:
            if force or now - self._drawn >= self.redraw_every:
                self._drawn = now
                self._write("\r\x1b[K" + self._line(run, r, now))
                self._open_line = True
        else:
            pct = 100 * r["n"] // r["total"] if r["total"] else 100
            if force or pct >= r["next"]:
                r["next"] = self._next_mark(r)
                self._write(self._line(run, r, now) + "\n")

    def close(self):
        with self._lock:
            self._clear()

    def saved_summary(self) -> str:
        """'last checkpoints: <run> step N (path); ...' or '' when nothing was saved."""
        if not self.last_saved:
            return ""
        return "last checkpoints: " + "; ".join(f"{run} at step {s} ({p})" for run, (s, p) in self.last_saved.items())


def tail_events(path: str, display: Display, stop: threading.Event, poll: float = 0.2):
    """Feed every event appended to `path` to `display` until `stop` is set (then read what is left)."""
    pos, buf = 0, b""
    while True:
        last = stop.is_set()
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except OSError:
            chunk = b""
        pos += len(chunk)
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for ln in lines:
            try:
                display.event(json.loads(ln))
            except (ValueError, TypeError):
                pass
        if last:
            return
        stop.wait(poll)
