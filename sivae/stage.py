"""Run one pipeline stage: its notebook through papermill, with its section of params.yaml.

    python -m sivae.stage toy2d                           # what `dvc repro toy2d` runs
    python -m sivae.stage toy2d -p n_iter 300 --out DIR   # a side run: every output under DIR

The notebook is `notebooks/NN_<stage>.py` (a Jupytext percent file); its parameters are the
`base` section of params.yaml plus the stage's own section (so dvc.yaml names each section once,
under `params:`, instead of every key three times). `executed_notebook` is papermill's output
path; `interactive` is set to False. papermill stays the executor: running it by hand works too
(docs/running.md has the recipe, with every output path redirected).

What the runner adds (docs/running.md says it for users):
- live progress on the terminal that started it: one line per training run (stage, run, step of
  total, rate, time left), redrawn in place on a terminal, every 10% otherwise (CI logs, nohup),
  and one line per finished run; `--quiet` silences it. The kernel's loops write events to a file
  named by SIVAE_PROGRESS (sivae.progress) instead of drawing bars into the executed notebook;
- side runs leave the pipeline alone: `--out DIR` moves every output of the stage (those dvc.yaml
  declares: figures, metrics, checkpoints, run_info, the DVCLive folder, the executed notebook)
  under DIR; without it, a run whose parameters differ from params.yaml is refused before anything
  is written when it would write over the pipeline's outputs;
- the executed notebook is written to `<name>.partial.ipynb` beside it and moved into place only
  when the notebook succeeds: a rejected parameter or a failed cell never replaces the last good
  one (the partial notebook, with the whole traceback, stays for reading; git ignores it);
- a sivae error (ConfigError, DataError, CheckpointError, DivergenceError) is printed as its one
  message, not as papermill's double traceback (SIVAE_TRACEBACK=1 prints the traceback too);
- SIGINT / SIGTERM / SIGHUP are one request to save and stop: the kernel gets one interrupt and
  training saves its checkpoint at the next step boundary. Signals that arrive together (`timeout`
  and Ctrl-C signal the whole process group: dvc, the shell and the runner) count once, as does
  the death of the parent that follows them; only another signal more than REPEAT_AFTER seconds
  after the first means "stop now" (the kernel is killed; the last periodic checkpoint stays);
- the runner watches the process that started it from its first instant, before any heavy import
  (`import sivae` does not import torch): if that process (e.g. `dvc repro`, through any `sh -c`)
  is already gone or dies, the notebook is interrupted (it saves) and nothing is left running that
  writes outputs no one records. Under `nohup` from an interactive shell, or with
  SIVAE_DETACHED=1, the stage may outlive its shell;
- the kernel talks to the runner over IPC sockets (no "running over TCP without encryption"
  warning), and its torch runs on CPU_THREADS (2) CPU threads, or SIVAE_THREADS=n of them: CPU
  results are bit-identical only at the same thread count, so `dvc repro` on a machine with more
  cores reproduces the committed run's numbers; idle OpenMP threads sleep (OMP_WAIT_POLICY=PASSIVE
  unless set), so a stage on a shared CPU does not slow to a crawl;
- the kernel runs with SIVAE_STAGE=<stage>, under which a checkpoint written by another
  configuration is set aside and training starts fresh (see sivae.checkpoints).

Exit codes (one per kind of failure; the last line on stderr says what happened):
    0    done
    1    the notebook failed with an unexpected error (a bug: the traceback is in the partial notebook)
    2    a parameter or setting is wrong (ConfigError, unknown stage or key, bad command line)
    3    a dataset is missing or damaged (DataError)
    4    a checkpoint is damaged, foreign or in use (CheckpointError)
    5    training diverged (DivergenceError; the message names the last good checkpoint)
    6    refused: a side run would write over the pipeline's outputs (use --out DIR)
    7    an output could not be written (OutputError: a full disk, a read-only folder; the old file is kept)
    129  the command that started the stage is gone: interrupted, saved at a step boundary
    130  stopped on SIGINT / SIGTERM / SIGHUP, saved at a step boundary
    137  stopped at once on a second request (the last periodic checkpoint is kept)
"""
from __future__ import annotations

import os
import sys
import time

# Before anything else (the imports below are light; torch and papermill come later): the process that
# started us. If it dies before we watch it we are re-parented, and getppid() changes.
_PPID = os.getppid()

import argparse  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

from . import progress as P  # noqa: E402
from .errors import ConfigError, SivaeError  # noqa: E402
from .params import read_section  # noqa: E402

__all__ = ["stage_notebook", "stage_parameters", "output_keys", "redirect_outputs", "run_stage", "main",
           "StageError", "EXIT_CODES"]

SIVAE_ERRORS = ("SivaeError", "ConfigError", "DataError", "CheckpointError", "DivergenceError", "OutputError")
CPU_THREADS = 2      # torch threads of a stage's kernel (the committed run's); SIVAE_THREADS overrides
REPEAT_AFTER = 2.0   # seconds: a second signal later than this after the first means "stop now"
GRACE = 60.0         # seconds the kernel gets to save after its parent is gone, before it is killed
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_DATA, EXIT_CHECKPOINT, EXIT_DIVERGED, EXIT_REFUSED = 0, 1, 2, 3, 4, 5, 6
EXIT_OUTPUT = 7
EXIT_PARENT_GONE, EXIT_INTERRUPTED, EXIT_KILLED = 129, 130, 137
EXIT_CODES = {"SivaeError": EXIT_FAILED, "ConfigError": EXIT_CONFIG, "DataError": EXIT_DATA,
              "CheckpointError": EXIT_CHECKPOINT, "DivergenceError": EXIT_DIVERGED, "OutputError": EXIT_OUTPUT}
SHELLS = {"sh", "dash", "bash", "zsh", "ksh", "mksh", "fish", "busybox"}
CONTAINER_INITS = {"tini", "docker-init", "dumb-init", "catatonit"}


def cpu_threads() -> int:
    """The torch thread count a stage's kernel gets: SIVAE_THREADS if set (a positive integer), else CPU_THREADS."""
    raw = os.environ.get("SIVAE_THREADS", "").strip()
    if not raw:
        return CPU_THREADS
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"SIVAE_THREADS must be a positive integer (torch CPU threads), got {raw!r}")
    return int(raw)


def _notebooks_dir(root) -> Path:
    here = Path(root, "notebooks")
    return here if here.is_dir() else Path(__file__).resolve().parents[1] / "notebooks"


def known_stages(root: str | os.PathLike = ".") -> list[str]:
    """Every stage that has a notebook, in pipeline order (notebooks/NN_<stage>.py)."""
    return [p.stem[3:] for p in sorted(_notebooks_dir(root).glob("[0-9][0-9]_*.py"))]


def stage_notebook(stage: str, root: str | os.PathLike = ".") -> Path:
    """notebooks/NN_<stage>.py, or ConfigError naming the stage."""
    hits = sorted(Path(root, "notebooks").glob(f"[0-9][0-9]_{stage}.py"))
    if len(hits) != 1:
        raise ConfigError(f"unknown stage {stage!r}; choose one of: {', '.join(known_stages(root))}")
    return hits[0]


def stage_parameters(stage: str, params_file: str | os.PathLike = "params.yaml", overrides: dict | None = None):
    """(parameters for the notebook, executed-notebook path) of one stage; `-p executed_notebook PATH`
    moves the executed notebook."""
    base, section = read_section(params_file, stage)
    out = section.pop("executed_notebook", None)
    if out is None:
        raise ConfigError(f"{params_file}: section {stage!r} has no executed_notebook")
    params = {**base, **section}
    for k, v in (overrides or {}).items():
        if k == "executed_notebook":
            out = v
            continue
        if k not in params and k != "interactive":
            raise ConfigError(f"stage {stage!r} has no parameter {k!r}; its parameters: {', '.join(params)}")
        params[k] = v
    if not isinstance(out, (str, os.PathLike)) or not str(out).endswith(".ipynb"):
        raise ConfigError(f"executed_notebook must be a path ending in .ipynb, got {out!r}")
    return params, Path(out)


def output_keys(stage: str, root: str | os.PathLike = ".") -> list[str]:
    """The stage's parameters that name its outputs: every `${<stage>.<key>}` under outs, metrics and
    plots of its dvc.yaml entry (executed_notebook among them). [] without a dvc.yaml."""
    path = Path(root, "dvc.yaml")
    if not path.is_file():
        return []
    spec = (yaml.safe_load(path.read_text()) or {}).get("stages", {}).get(stage) or {}
    keys = []
    for kind in ("outs", "metrics", "plots"):
        for item in spec.get(kind) or []:
            name = item if isinstance(item, str) else next(iter(item))
            m = re.fullmatch(r"\$\{(\w+)\.(\w+)\}", str(name).strip())
            if m and m.group(1) == stage and m.group(2) not in keys:
                keys.append(m.group(2))
    return keys


def redirect_outputs(values: dict[str, str], out_dir: str | os.PathLike) -> dict[str, str]:
    """{key: path} of a stage's outputs moved under out_dir, keeping their layout below the folder they
    share: outputs/toy2d/figures -> DIR/figures, outputs/toy2d/metrics.json -> DIR/metrics.json."""
    if not values:
        return {}
    common = os.path.commonpath([os.path.dirname(os.path.normpath(str(v))) or "." for v in values.values()])
    return {k: str(Path(out_dir) / os.path.relpath(os.path.normpath(str(v)), common)) for k, v in values.items()}


def _same_path(a, b) -> bool:
    return os.path.normpath(os.path.abspath(str(a))) == os.path.normpath(os.path.abspath(str(b)))


def plan_outputs(stage: str, params: dict, out: Path, root, params_file, out_dir=None) -> tuple[dict, Path]:
    """Apply --out, or refuse (StageError, EXIT_REFUSED) a run whose parameters differ from the pipeline's
    params.yaml and whose outputs are the pipeline's. Checks only: nothing is written."""
    keys = [k for k in output_keys(stage, root) if k != "executed_notebook" and k in params]
    if out_dir is not None:
        moved = redirect_outputs({**{k: params[k] for k in keys}, "executed_notebook": str(out)}, out_dir)
        out = Path(moved.pop("executed_notebook"))
        return {**params, **moved}, out
    pipeline_file = Path(root, "params.yaml")
    if not pipeline_file.is_file() or not output_keys(stage, root):
        return params, out
    try:
        pipeline, pipeline_out = stage_parameters(stage, pipeline_file)
    except SivaeError:
        return params, out
    changed = {k: (pipeline.get(k), v) for k, v in params.items()
               if k not in keys and k != "interactive" and pipeline.get(k) != v}
    if not changed:
        return params, out
    clash = [str(params[k]) for k in keys if _same_path(params[k], Path(root, str(pipeline.get(k))))
             or _same_path(params[k], pipeline.get(k))]
    if _same_path(out, pipeline_out) or _same_path(out, Path(root, pipeline_out)):
        clash.append(str(out))
    if not clash:
        return params, out
    what = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in list(changed.items())[:4])
    more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
    raise StageError(
        f"{stage}: refused: these parameters differ from params.yaml ({what}{more}), and the run would write over "
        f"the pipeline's outputs ({', '.join(clash[:3])}{', ...' if len(clash) > 3 else ''}). Add --out DIR "
        f"(e.g. --out outputs/scratch/{stage}) to write every output there, or change params.yaml and run "
        f"`dvc repro {stage}`.", EXIT_REFUSED)


def _kernelspec() -> dict:
    """The Jupyter kernel of this Python (what `jupytext --set-kernel -` picks)."""
    from jupytext.kernels import kernelspec_from_language
    try:
        return kernelspec_from_language("python")
    except ValueError as e:
        raise ConfigError(f"{e}; `make env` installs one") from None


KERNEL_LOG = "kernel.log"


def _ipc_kernel_manager(folder: str):
    """A kernel manager whose kernel listens on IPC sockets in `folder` (no TCP, so no ipykernel warning
    about unencrypted TCP; nothing is written to the working directory)."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.transport = "ipc"
            self.ip = os.path.join(folder, "k")

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            # the kernel process's own stderr holds only ipykernel's log lines ("KeyboardInterrupt caught in
            # kernel" when papermill stops it, ...): they go to a log beside the sockets, not to the user's
            # terminal (cell output reaches the notebook through IOPub either way); shown if the kernel dies
            if "stderr" not in kw:
                kw["stderr"] = open(os.path.join(folder, KERNEL_LOG), "ab")   # noqa: SIM115 (the kernel owns it)
            return await super()._async_launch_kernel(kernel_cmd, **kw)

    return IPCKernelManager


# ------------------------------------------------------------------------------------------ processes
def _children(recursive: bool):
    try:
        import psutil
        return psutil.Process().children(recursive=recursive)
    except Exception:  # noqa: BLE001
        return []


def _signal_children(sig, recursive: bool = True):
    for p in _children(recursive):
        try:
            p.send_signal(sig)
        except Exception:  # noqa: BLE001 (already gone)
            pass


def _is_interactive_shell(p) -> bool:
    try:
        return p.name() in SHELLS and "-c" not in p.cmdline()[1:]
    except Exception:  # noqa: BLE001
        return False


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


def detached() -> bool:
    """Whether the stage may outlive the process that started it: SIVAE_DETACHED=1, or `nohup` (SIGHUP
    ignored) from an interactive shell."""
    if os.environ.get("SIVAE_DETACHED", "").strip().lower() in ("1", "true", "yes"):
        return True
    if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
        try:
            import psutil
            return _is_interactive_shell(psutil.Process().parent())
        except Exception:  # noqa: BLE001
            return False
    return False


def _dvc_among_ancestors() -> bool:
    try:
        import psutil
        p = psutil.Process().parent()
        while p is not None and p.pid > 1:
            if any(os.path.basename(a) == "dvc" for a in p.cmdline()[:3]):
                return True
            p = p.parent()
    except Exception:  # noqa: BLE001
        return True   # cannot tell: assume it is there
    return False


def parent_gone_at_start(ppid: int = None) -> bool:
    """True when the process that started us was already gone when we began: getppid() has changed since
    the first line ran, we were re-parented to pid 1 (not a container's shell or init that started us
    itself), or dvc started us (DVC_STAGE is set) and no dvc is among our ancestors any more."""
    ppid = _PPID if ppid is None else ppid
    if os.getppid() != ppid:
        return True
    if os.environ.get("DVC_STAGE") and not _dvc_among_ancestors():   # dvc ran us, and is gone already
        return True
    if ppid != 1:   # our parent may be a `sh -c` whose own parent is gone: then it hangs from pid 1
        try:
            import psutil
            p = psutil.Process(ppid)
            while p.name() in SHELLS and not _is_interactive_shell(p) and p.ppid() > 1:
                p = p.parent()
            if not (p.name() in SHELLS and not _is_interactive_shell(p) and p.ppid() == 1):
                return False
        except Exception:  # noqa: BLE001
            return False
    try:
        import psutil
        name = psutil.Process(1).name()
    except Exception:  # noqa: BLE001
        return True
    return name not in SHELLS | CONTAINER_INITS


class Supervisor:
    """The runner's half of stopping: signals and the parent's death become requests; the first is passed
    to the kernel as one interrupt, a signal more than REPEAT_AFTER s later kills it."""

    def __init__(self, stage: str, display: P.Display):
        self.stage, self.display = stage, display
        self.first: float | None = None
        self.reason = ""
        self.code = EXIT_INTERRUPTED
        self.kernel_started = False     # False until papermill starts the kernel (then the kernel is interrupted)
        self.finished = False
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._old: dict = {}

    # ------------------------------------------------------------ requests
    def request(self, reason: str, code: int, repeatable: bool = True):
        with self._lock:
            now = time.monotonic()
            if self.finished:
                return
            if self.first is None:
                self.first, self.reason, self.code = now, reason, code
                if not self._kernel_running():
                    self.display.message(f"{self.stage}: {reason}: stopped before the notebook ran (nothing to save)")
                    self._exit(code)
                self.display.message(f"{self.stage}: {reason}: interrupting the notebook (training saves its "
                                     f"checkpoint after this step; signal again after {REPEAT_AFTER:.0f} s to stop "
                                     f"at once)")
                _signal_children(signal.SIGINT, recursive=False)
            elif repeatable and now - self.first > REPEAT_AFTER:
                saved = self.display.saved_summary() or "no checkpoint written in this run"
                self.display.message(f"{self.stage}: {reason} again: stopped at once; {saved}")
                self._exit(EXIT_KILLED)
            # else: the same request again (a process-group signal, then the parent's death): once is enough

    def _kernel_running(self) -> bool:
        self.kernel_started = self.kernel_started or bool(_children(False))
        return self.kernel_started

    def _exit(self, code: int):
        _signal_children(signal.SIGKILL)
        self.display.close()
        os._exit(code)

    def _on_signal(self, signum, _frame):
        self.request(f"{signal.Signals(signum).name} received", EXIT_INTERRUPTED)

    def install(self):
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(s) != signal.SIG_IGN:     # nohup's SIGHUP stays ignored
                self._old[s] = signal.signal(s, self._on_signal)

    def restore(self):
        self._stop.set()
        for s, h in self._old.items():
            signal.signal(s, h)

    # ------------------------------------------------------------ the parent
    def watch_parent(self, ppid: int, poll: float = 0.25, grace: float = GRACE):
        """Thread body: the first time the process that started us (or an ancestor through shells) is gone,
        one request; `grace` seconds later the kernel is killed if it is still running."""
        try:
            ancestors = _watched_ancestors()
        except Exception:  # noqa: BLE001
            ancestors = []
        while not self._stop.wait(poll):
            if os.getppid() != ppid or not all(_alive(pid, t) for pid, t in ancestors):
                self.request("the command that started this stage is gone", EXIT_PARENT_GONE, repeatable=False)
                if self._stop.wait(grace):
                    return
                self.display.message(f"{self.stage}: the notebook did not stop within {grace:.0f} s: killed; "
                                     f"{self.display.saved_summary() or 'no checkpoint written in this run'}")
                self._exit(EXIT_PARENT_GONE)


# ------------------------------------------------------------------------------------------ running
def run_stage(stage: str, params_file: str | os.PathLike = "params.yaml", overrides: dict | None = None,
              root: str | os.PathLike = ".", out_dir: str | os.PathLike | None = None, quiet: bool = True,
              supervisor: Supervisor | None = None) -> Path:
    """Execute the stage's notebook; returns the executed notebook's path. Raises SivaeError on failure
    (StageError carries the exit code). Every check runs before anything is written."""
    nb_path = stage_notebook(stage, root)
    params, out = stage_parameters(stage, params_file, overrides)
    params, out = plan_outputs(stage, params, out, root, params_file, out_dir)
    import jupytext
    nb = jupytext.read(nb_path)
    nb.metadata["kernelspec"] = _kernelspec()
    names = set(_notebook_parameter_names(nb))
    if "interactive" in names:
        params.setdefault("interactive", False)
    unknown = sorted(set(params) - names)
    if unknown:
        raise ConfigError(f"params.yaml section {stage!r} has keys the notebook {nb_path} does not take: {unknown}")
    threads = cpu_threads()
    import papermill

    display = supervisor.display if supervisor is not None else P.Display(stage)
    work = tempfile.mkdtemp(prefix="sivae-stage-")
    events = os.path.join(work, "progress.jsonl")
    partial = out.with_name(out.stem + ".partial.ipynb")
    env_before = {k: os.environ.get(k) for k in ("SIVAE_STAGE", P.ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                 "OMP_WAIT_POLICY")}
    os.environ["SIVAE_STAGE"] = stage
    os.environ[P.ENV] = events
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)   # read by the kernel's torch
    # idle OpenMP threads sleep instead of spinning: on a shared CPU (other jobs, a test run) spinning made a
    # 2-thread stage up to 20x slower (measured: 30 image steps 94.8 s spinning, 4.4 s passive, same load).
    # Only the waiting changes, not how reductions are split, so the numbers stay bit-identical.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    stop_tail = threading.Event()
    display.quiet = quiet
    tail = threading.Thread(target=P.tail_events, args=(events, display, stop_tail), daemon=True)
    tail.start()
    t0 = time.time()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        kwargs = {}
        if os.name == "posix":
            kwargs["kernel_manager_class"] = _ipc_kernel_manager(work)
        try:
            papermill.execute_notebook(nb, str(partial), parameters=params, progress_bar=False, cwd=str(root),
                                       kernel_name=nb.metadata["kernelspec"]["name"], **kwargs)
        except papermill.PapermillExecutionError as e:
            if os.environ.get("SIVAE_TRACEBACK"):
                print("\n".join(e.traceback), file=sys.stderr)
            where = f"(cell {e.exec_count}; the whole traceback is in {partial})"
            if e.ename in ("KeyboardInterrupt", "Stopped"):   # sivae.lifecycle.Stopped
                raise _stopped(stage, e.evalue, f"(cell {e.exec_count}; partial notebook: {partial})", supervisor,
                               display) from None
            if e.ename in SIVAE_ERRORS:
                raise StageError(f"{stage}: {e.ename}: {e.evalue} {where}", EXIT_CODES[e.ename]) from None
            raise StageError(f"{stage}: {e.ename}: {e.evalue} {where}", EXIT_FAILED) from None
        except StageError:
            raise
        except Exception as e:  # noqa: BLE001 (the kernel died, could not start, ...)
            if supervisor is not None and supervisor.first is not None:
                raise _stopped(stage, "", f"({type(e).__name__})", supervisor, display) from None
            log = Path(work, KERNEL_LOG)
            if log.is_file() and log.stat().st_size:
                print("the kernel's log:\n" + log.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        if supervisor is not None:
            supervisor.finished = True
        if partial.exists():
            os.replace(partial, out)
    finally:
        stop_tail.set()
        tail.join(timeout=5)
        display.close()
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(work, ignore_errors=True)
    print(f"{stage}: done in {time.time() - t0:.0f} s -> {out}", file=sys.stderr)
    return out


def _stopped(stage, evalue: str, where: str, supervisor, display) -> "StageError":
    """The stop's one line: why, and the step saved (from the kernel's message, or the runner's record)."""
    reason = supervisor.reason if supervisor is not None and supervisor.reason else "interrupted"
    code = supervisor.code if supervisor is not None and supervisor.first is not None else EXIT_INTERRUPTED
    detail = re.sub(r"^\w+ received: ", "", (evalue or "").strip())
    if "training stopped after step" not in detail:
        saved = display.saved_summary()
        detail = (f"stopped outside training ({saved})" if saved else
                  "stopped outside training (runs finished before it keep their checkpoints)")
    return StageError(f"{stage}: {reason}: {detail} {where}", code)


class StageError(SivaeError):
    """A stage's notebook failed or stopped; the message names the error and the cell, `code` the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


def _notebook_parameter_names(nb) -> list[str]:
    import ast
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            return [t.targets[0].id for t in tree.body if isinstance(t, ast.Assign)]
    raise ConfigError("the notebook has no cell tagged 'parameters'")


_EXIT_DOC = __doc__.split("Exit codes")[1].split(":", 1)[1].strip("\n")


def _parser() -> argparse.ArgumentParser:
    stages = known_stages()
    ap = argparse.ArgumentParser(
        prog="python -m sivae.stage", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="stages: " + ", ".join(stages) + "\n\nexit codes:\n" + _EXIT_DOC + "\n"
        "docs/running.md: progress, side runs, stopping and resuming.")
    ap.add_argument("stage", help="a stage of dvc.yaml: " + ", ".join(stages))
    ap.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="override one parameter (value read as YAML)")
    ap.add_argument("--out", metavar="DIR", help="write every output of the stage (figures, metrics, checkpoints, "
                    "run_info, live curves, the executed notebook) under DIR: a side run that leaves the pipeline alone")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return ap


def main(argv=None) -> int:
    display = P.Display("sivae.stage")
    sup = Supervisor("sivae.stage", display)
    sup.install()    # before anything slow: a signal from now on is a request to stop
    if not detached():
        if parent_gone_at_start():
            print("sivae.stage: the command that started this stage is already gone: not starting "
                  "(SIVAE_DETACHED=1 runs it anyway)", file=sys.stderr)
            return EXIT_PARENT_GONE
        threading.Thread(target=sup.watch_parent, args=(_PPID,), daemon=True).start()
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:
        sup.restore()
        return int(e.code or 0) and EXIT_CONFIG
    display.stage = sup.stage = args.stage
    try:
        overrides = {k: yaml.safe_load(v) for k, v in args.parameter}
        run_stage(args.stage, args.params, overrides, out_dir=args.out, quiet=args.quiet, supervisor=sup)
    except StageError as e:
        display.message(str(e))
        return e.code
    except SivaeError as e:
        display.message(f"{args.stage}: {type(e).__name__}: {e}")
        return EXIT_CODES.get(type(e).__name__, EXIT_CONFIG if isinstance(e, ValueError) else EXIT_FAILED)
    except yaml.YAMLError as e:
        display.message(f"{args.stage}: ConfigError: a -p value is not YAML: {str(e).splitlines()[0]}")
        return EXIT_CONFIG
    finally:
        sup.restore()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
