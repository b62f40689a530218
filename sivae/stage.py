"""Run one pipeline stage: its notebook through papermill, with its section of params.yaml.

    python -m sivae.stage toy2d                 # what `dvc repro toy2d` runs
    python -m sivae.stage toy2d -p n_iter 300   # the same with one parameter changed

The notebook is `notebooks/NN_<stage>.py` (a Jupytext percent file); its parameters are the
`base` section of params.yaml plus the stage's own section (so dvc.yaml names each section once,
under `params:`, instead of every key three times). `executed_notebook` is papermill's output
path; `interactive` is set to False. papermill stays the executor: running it by hand
(`jupytext --to ipynb --set-kernel - nb.py -o - | papermill - out.ipynb -p name value`) works too.

What the runner adds:
- a sivae error (ConfigError, DataError, CheckpointError, DivergenceError) is printed as its one
  message, not as papermill's double traceback (the whole traceback stays in the executed
  notebook; SIVAE_TRACEBACK=1 prints it too);
- SIGINT / SIGTERM are passed on to the kernel as an interrupt, so a training loop saves its
  checkpoint and stops at a step boundary; a second signal ends the kernel at once;
- if the process that started it (e.g. `dvc repro`) dies, the kernel is stopped rather than left
  running as an orphan that keeps writing outputs;
- the kernel's torch runs on CPU_THREADS (2) CPU threads, or SIVAE_THREADS=n of them: CPU results are
  bit-identical only at the same thread count (reductions are split by thread), so `dvc repro` on a
  machine with more cores reproduces the committed run's numbers; SIVAE_THREADS=8 is faster, with
  numbers that differ in their last digits (and a finding near its threshold may change verdict);
- the kernel runs with SIVAE_STAGE=<stage>, under which a checkpoint written by another
  configuration is set aside and training starts fresh (the stage's checkpoint folders persist
  across `dvc repro` runs so that a killed stage resumes; see sivae.checkpoints).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

import yaml

from .errors import ConfigError, SivaeError
from .params import read_section

__all__ = ["stage_notebook", "stage_parameters", "run_stage", "main"]

SIVAE_ERRORS = ("SivaeError", "ConfigError", "DataError", "CheckpointError", "DivergenceError")
NOT_A_PARAMETER = ("executed_notebook",)
CPU_THREADS = 2   # torch threads of a stage's kernel (the committed run's); SIVAE_THREADS overrides


def cpu_threads() -> int:
    """The torch thread count a stage's kernel gets: SIVAE_THREADS if set (a positive integer), else CPU_THREADS."""
    raw = os.environ.get("SIVAE_THREADS", "").strip()
    if not raw:
        return CPU_THREADS
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"SIVAE_THREADS must be a positive integer (torch CPU threads), got {raw!r}")
    return int(raw)


def stage_notebook(stage: str, root: str | os.PathLike = ".") -> Path:
    """notebooks/NN_<stage>.py, or ConfigError naming the stage."""
    hits = sorted(Path(root, "notebooks").glob(f"[0-9][0-9]_{stage}.py"))
    if len(hits) != 1:
        known = sorted(p.stem[3:] for p in Path(root, "notebooks").glob("[0-9][0-9]_*.py"))
        raise ConfigError(f"unknown stage {stage!r}; choose one of: {', '.join(known)}")
    return hits[0]


def stage_parameters(stage: str, params_file: str | os.PathLike = "params.yaml", overrides: dict | None = None):
    """(parameters for the notebook, executed-notebook path) of one stage."""
    base, section = read_section(params_file, stage)
    out = section.pop("executed_notebook", None)
    if out is None:
        raise ConfigError(f"{params_file}: section {stage!r} has no executed_notebook")
    params = {**base, **section}
    for k, v in (overrides or {}).items():
        if k not in params and k != "interactive":
            raise ConfigError(f"stage {stage!r} has no parameter {k!r}; its parameters: {', '.join(params)}")
        params[k] = v
    return params, Path(out)


def _kernelspec() -> dict:
    """The Jupyter kernel of this Python (what `jupytext --set-kernel -` picks)."""
    from jupytext.kernels import kernelspec_from_language
    try:
        return kernelspec_from_language("python")
    except ValueError as e:
        raise ConfigError(f"{e}; `make env` installs one") from None


def _descendants():
    import psutil
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def _signal_children(sig):
    for p in _descendants():
        try:
            p.send_signal(sig)
        except Exception:  # noqa: BLE001 (already gone)
            pass


SHELLS = {"sh", "dash", "bash", "zsh", "ksh", "mksh", "fish", "busybox"}


def _watched_ancestors() -> list[tuple[int, float]]:
    """(pid, start time) of our parent and, through any shells in between (`dvc repro` runs its
    command with `$SHELL -c`, and not every shell execs its last command), the first ancestor that
    is not a shell: the process whose death should stop the notebook."""
    import psutil
    chain = []
    try:
        p = psutil.Process().parent()
        while p is not None and p.pid > 1:
            chain.append((p.pid, p.create_time()))
            if p.name() not in SHELLS:
                break
            p = p.parent()
    except psutil.Error:
        pass
    return chain


def _alive(pid: int, started: float) -> bool:
    import psutil
    try:
        p = psutil.Process(pid)
        return p.create_time() == started and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _watch_parent(parent: int, stop: threading.Event, grace: float = 60.0, ancestors=None):
    """When the process that started us is gone (e.g. `dvc repro` was killed, with or without the
    shell it ran us through), interrupt the notebook (training saves its checkpoint at the next step),
    give it `grace` seconds, then end the kernel and this process: nothing is left running that
    writes outputs no one records."""
    ancestors = _watched_ancestors() if ancestors is None else ancestors
    while not stop.wait(1.0):
        if os.getppid() != parent or not all(_alive(pid, t) for pid, t in ancestors):
            print("sivae.stage: the parent process is gone: interrupting the notebook", file=sys.stderr)
            _signal_children(signal.SIGINT)
            stop.wait(grace)
            _signal_children(signal.SIGKILL)
            os._exit(137)


def run_stage(stage: str, params_file: str | os.PathLike = "params.yaml", overrides: dict | None = None,
              root: str | os.PathLike = ".") -> Path:
    """Execute the stage's notebook; returns the executed notebook's path. Raises SivaeError on failure."""
    import jupytext
    import papermill
    nb_path = stage_notebook(stage, root)
    params, out = stage_parameters(stage, params_file, overrides)
    nb = jupytext.read(nb_path)
    nb.metadata["kernelspec"] = _kernelspec()
    names = set(_notebook_parameter_names(nb))
    if "interactive" in names:
        params.setdefault("interactive", False)
    unknown = sorted(set(params) - names)
    if unknown:
        raise ConfigError(f"params.yaml section {stage!r} has keys the notebook {nb_path} does not take: {unknown}")
    out.parent.mkdir(parents=True, exist_ok=True)
    os.environ["SIVAE_STAGE"] = stage
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(cpu_threads())   # read by the kernel's torch

    interrupts = []

    def on_signal(signum, _frame):
        interrupts.append(signum)
        if len(interrupts) == 1:
            print(f"\n{stage}: {signal.Signals(signum).name} received: interrupting the notebook "
                  f"(training saves its checkpoint at the next step; signal again to stop at once)", file=sys.stderr)
            _signal_children(signal.SIGINT)
        else:
            _signal_children(signal.SIGKILL)
            os._exit(128 + signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stop = threading.Event()
    threading.Thread(target=_watch_parent, args=(os.getppid(), stop), daemon=True).start()
    t0 = time.time()
    try:
        papermill.execute_notebook(nb, str(out), parameters=params, progress_bar=False, cwd=str(root),
                                   kernel_name=nb.metadata["kernelspec"]["name"])
    except papermill.PapermillExecutionError as e:
        if os.environ.get("SIVAE_TRACEBACK"):
            print("\n".join(e.traceback), file=sys.stderr)
        where = f"(cell {e.exec_count}; the whole traceback is in {out})"
        if e.ename in SIVAE_ERRORS:
            raise StageError(f"{stage}: {e.ename}: {e.evalue} {where}") from None
        if e.ename == "KeyboardInterrupt" or interrupts:
            raise StageError(f"{stage}: interrupted {where}", 130) from None
        raise StageError(f"{stage}: {e.ename}: {e.evalue} {where}") from None
    finally:
        stop.set()
        for s, h in old.items():
            signal.signal(s, h)
    print(f"{stage}: done in {time.time() - t0:.0f} s -> {out}", file=sys.stderr)
    return out


class StageError(SivaeError):
    """A stage's notebook failed; the message names the error and the cell."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _notebook_parameter_names(nb) -> list[str]:
    import ast
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            return [t.targets[0].id for t in tree.body if isinstance(t, ast.Assign)]
    raise ConfigError("the notebook has no cell tagged 'parameters'")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sivae.stage", description=__doc__.splitlines()[0])
    ap.add_argument("stage", help="a stage of dvc.yaml (theory_discrete, toy2d, stability, images, ood, translation)")
    ap.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="override one parameter (value read as YAML)")
    args = ap.parse_args(argv)
    try:
        overrides = {k: yaml.safe_load(v) for k, v in args.parameter}
        run_stage(args.stage, args.params, overrides)
    except StageError as e:
        print(str(e), file=sys.stderr)
        return e.code
    except SivaeError as e:
        print(f"{args.stage}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
