"""The stage runner (sivae.stage) as the user meets it: help, exit codes, side runs, rejected parameters,
kills of its parent at any moment, `timeout`, and one stop request per signal burst (issues 31, 33)."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
import yaml
from nbutil import BIN, ROOT

from sivae import stage as st
from sivae.checkpoints import load_checkpoint

PY = str(BIN / "python")
TINY_TOY = ["-p", "datasets", "8gaussians", "-p", "n_iter_factor", "8gaussians:1", "-p", "methods", "soft_intro_vae",
            "-p", "n_seeds", "1",
            "-p", "batch_size", "16", "-p", "grid_size", "16", "-p", "n_samples", "200", "-p", "num_vae", "10"]
TINY_THEORY = ["-p", "pdatas", "smooth", "-p", "gammas", "0.5", "-p", "alphas", "2.0", "-p", "n_gamma_grid", "3",
               "-p", "n_steps", "30", "-p", "log_every", "10", "-p", "n_ablation_seeds", "1"]


def _env(**kw):
    return {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", "MPLBACKEND": "Agg",
            "PYTHONPATH": str(ROOT), **kw}


def _stage(*args, cwd=ROOT, timeout=300, **env):
    return subprocess.run([PY, "-m", "sivae.stage", *args], cwd=cwd, env=_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def _tagged(tag):
    """Live processes started with SIVAE_TEST_TAG=tag (the stage and its kernel inherit it)."""
    out = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("SIVAE_TEST_TAG") == tag and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            pass
    return out


def _wait_gone(tag, timeout):
    deadline = time.time() + timeout
    while (left := _tagged(tag)):
        assert time.time() < deadline, f"still running: {[p.cmdline()[:6] for p in left]}"
        time.sleep(0.2)


# ------------------------------------------------------------------------------------------ fast
def test_help_lists_every_stage_and_the_exit_codes():
    res = _stage("--help")
    assert res.returncode == 0, res.stderr
    for stage in ("theory_discrete", "toy2d", "stability", "images", "translation", "ood", "findings", "report"):
        assert stage in res.stdout.split("stages:")[1], stage
    for code in (0, 1, 2, 3, 4, 5, 6, 7, 129, 130, 137):
        assert re.search(rf"^\s+{code}\s", res.stdout, re.M), code


def test_every_exit_code_is_documented_once_for_users():
    doc = (ROOT / "docs" / "running.md").read_text()
    codes = {v for k, v in vars(st).items() if k.startswith("EXIT_") and isinstance(v, int)}
    assert codes == {0, 1, 2, 3, 4, 5, 6, 7, 129, 130, 137}
    assert set(st.EXIT_CODES) == set(st.SIVAE_ERRORS), "every sivae error class has its exit code"
    for c in codes:
        assert re.search(rf"^\|\s*{c}\s*\|", doc, re.M), f"docs/running.md lacks exit code {c}"


def test_out_moves_every_declared_output_and_the_notebook(tmp_path):
    for stage in st.known_stages(ROOT):
        params, out = st.stage_parameters(stage, ROOT / "params.yaml")
        moved, nb = st.plan_outputs(stage, params, out, ROOT, ROOT / "params.yaml", out_dir=tmp_path / "side")
        keys = st.output_keys(stage, ROOT)
        assert "executed_notebook" in keys and len(keys) >= 3, (stage, keys)
        for k in keys:
            path = nb if k == "executed_notebook" else Path(moved[k])
            assert path.is_relative_to(tmp_path / "side"), (stage, k, path)
        inputs = {k: v for k, v in params.items() if k not in keys}
        assert {k: moved[k] for k in inputs} == inputs, "--out must leave inputs alone"


def test_a_changed_run_without_out_is_refused_before_anything_is_written():
    before = {p: p.stat().st_mtime_ns for p in (ROOT / "outputs").rglob("*") if p.is_file()} \
        if (ROOT / "outputs").is_dir() else {}
    res = _stage("toy2d", "-p", "n_iter", "30", "-p", "datasets", "rings", timeout=60)
    assert res.returncode == st.EXIT_REFUSED, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    n_iter = yaml.safe_load((ROOT / "params.yaml").read_text())["toy2d"]["n_iter"]
    assert "refused" in last and "--out DIR" in last and f"n_iter {n_iter} -> 30" in last, last
    after = {p: p.stat().st_mtime_ns for p in (ROOT / "outputs").rglob("*") if p.is_file()} \
        if (ROOT / "outputs").is_dir() else {}
    assert after == before
    # the same parameters as params.yaml are the pipeline's own run: not refused at this check
    params, out = st.stage_parameters("toy2d", ROOT / "params.yaml", {"n_iter": n_iter})
    assert st.plan_outputs("toy2d", params, out, ROOT, ROOT / "params.yaml") == (params, out)


def test_signals_that_arrive_together_are_one_request_and_a_later_one_stops_at_once(monkeypatch):
    from sivae.progress import Display
    sent, exits = [], []
    monkeypatch.setattr(st, "_signal_children", lambda sig, recursive=True: sent.append(sig))
    monkeypatch.setattr(st, "_children", lambda recursive: [object()])      # a kernel is running
    sup = st.Supervisor("toy2d", Display("toy2d", stream=open(os.devnull, "w"), tty=False))
    monkeypatch.setattr(sup, "_exit", lambda code: exits.append(code))
    clock = [100.0]
    monkeypatch.setattr(st.time, "monotonic", lambda: clock[0])
    sup.request("SIGTERM received", st.EXIT_INTERRUPTED)                     # timeout: the whole group
    clock[0] += 0.3
    sup.request("the command that started this stage is gone", st.EXIT_PARENT_GONE, repeatable=False)
    clock[0] += 0.5
    sup.request("SIGINT received", st.EXIT_INTERRUPTED)                      # still the same burst
    assert sent == [signal.SIGINT] and exits == []
    assert sup.code == st.EXIT_INTERRUPTED
    clock[0] += st.REPEAT_AFTER + 1                                          # the user, again, later
    sup.request("SIGINT received", st.EXIT_INTERRUPTED)
    assert exits == [st.EXIT_KILLED]


def test_a_stop_before_the_kernel_starts_exits_at_once(monkeypatch):
    from sivae.progress import Display
    monkeypatch.setattr(st, "_children", lambda recursive: [])
    sup = st.Supervisor("toy2d", Display("toy2d", stream=open(os.devnull, "w"), tty=False))
    exits = []
    monkeypatch.setattr(sup, "_exit", lambda code: exits.append(code))
    sup.request("the command that started this stage is gone", st.EXIT_PARENT_GONE, repeatable=False)
    assert exits == [st.EXIT_PARENT_GONE]


# ------------------------------------------------------------------------------------------ a kernel each
def test_a_rejected_parameter_keeps_the_executed_notebook_and_prints_one_line(tmp_path):
    out = tmp_path / "side"
    out.mkdir()
    good = out / "01_theory_discrete.ipynb"
    good.write_text("the last good run")
    res = _stage("theory_discrete", "--out", str(out), "-p", "K", "-1", *TINY_THEORY)
    assert res.returncode == st.EXIT_CONFIG, res.stderr
    assert good.read_text() == "the last good run"
    assert (out / "01_theory_discrete.partial.ipynb").exists()       # the traceback, for reading
    assert "without encryption" not in res.stderr and "Traceback" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("theory_discrete: ConfigError: K must be"), res.stderr


def test_a_side_run_leaves_git_and_dvc_status_unchanged(repo_copy):
    def status():
        git = subprocess.run(["git", "status", "--porcelain"], cwd=repo_copy, capture_output=True, text=True).stdout
        dvc = subprocess.run([str(BIN / "dvc"), "status"], cwd=repo_copy, capture_output=True, text=True,
                             env=_env()).stdout
        return git, dvc
    before = status()
    res = _stage("theory_discrete", "--out", "outputs/scratch/theory_discrete", *TINY_THEORY, cwd=repo_copy)
    assert res.returncode == 0, res.stderr
    side = repo_copy / "outputs/scratch/theory_discrete"
    assert (side / "01_theory_discrete.ipynb").exists() and (side / "metrics.json").exists()
    assert list((side / "figures").glob("*.png"))
    assert status() == before


def test_orphaned_before_it_starts_it_does_not_run(tmp_path):
    """`dvc repro` killed in its first instant: the stage finds itself re-parented and stops at once."""
    tag = uuid.uuid4().hex
    err = tmp_path / "err"
    subprocess.run(["sh", "-c", f"{PY} -m sivae.stage toy2d --out {tmp_path / 'side'} -p n_iter 20000 "
                    f"{' '.join(TINY_TOY)} 2> {err} &"], cwd=ROOT, env=_env(SIVAE_TEST_TAG=tag, DVC_STAGE="toy2d"),
                   check=True)
    _wait_gone(tag, 60)
    assert "already gone" in err.read_text() or "is gone" in err.read_text(), err.read_text()
    assert not (tmp_path / "side").exists()


@pytest.mark.parametrize("after", [0.5, 2.0])
def test_a_parent_killed_early_leaves_nothing_running(tmp_path, after):
    tag = uuid.uuid4().hex
    parent = _under_dvc(tmp_path, tag=tag)
    time.sleep(after)
    parent.kill()   # SIGKILL to dvc alone
    parent.wait()
    _wait_gone(tag, 90)   # the shell, the runner and, if it had started, its kernel
    text = (tmp_path / "err").read_text()
    assert "is gone" in text, text
    ckpts = list((tmp_path / "side").glob("checkpoints/stacks/*/last.pt"))
    for c in ckpts:   # if training had begun, it saved on the way out
        assert load_checkpoint(c, required=("format", "step"))["step"] > 0


def _fake_dvc(tmp_path) -> str:
    """A program named dvc that runs its arguments and dies on SIGTERM, as `dvc repro` runs a stage."""
    path = tmp_path / "bin" / "dvc"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!{PY}\nimport subprocess, sys\nsys.exit(subprocess.call(sys.argv[1:]))\n")
    path.chmod(0o755)
    return str(path)


def _under_dvc(tmp_path, wrapper=(), tag=""):
    """Popen of `wrapper dvc sh -c "python -m sivae.stage toy2d --out side ... 2> err"` (a fake dvc, DVC_STAGE
    set as dvc sets it), in its own session."""
    err = tmp_path / "err"
    cmd = [*wrapper, _fake_dvc(tmp_path), "sh", "-c",
           f"{PY} -m sivae.stage toy2d --out {tmp_path / 'side'} -p n_iter 20000 {' '.join(TINY_TOY)} 2> {err}"]
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(SIVAE_TEST_TAG=tag, DVC_STAGE="toy2d"), start_new_session=True)


def _start_training(tmp_path, tag, wrapper):
    """The stage under `wrapper` and a fake dvc; returns (Popen of the wrapper, stderr file) once training has
    begun."""
    err = tmp_path / "err"
    proc = _under_dvc(tmp_path, wrapper, tag)
    deadline = time.time() + 240
    while not list((tmp_path / "side").glob("checkpoints/stacks/*")):
        assert time.time() < deadline and proc.poll() is None, err.read_text() if err.exists() else "no stage"
        time.sleep(0.2)
    time.sleep(3.0)   # some steps
    return proc, err


def _saved_step(tmp_path, text):
    m = re.search(r"training stopped after step (\d+) of 20000 \(checkpoint saved: (\S+)\)", text)
    assert m, text
    ckpt = load_checkpoint(Path(m.group(2)), required=("format", "step"))
    assert ckpt["step"] == int(m.group(1)) > 0   # saved at the step it names (periodic saves: every 1000)
    return int(m.group(1))


def test_timeout_signals_the_group_and_the_stage_saves(tmp_path):
    """`timeout -s TERM N dvc repro toy2d`: SIGTERM to dvc, the shell and the runner at once, then dvc's death:
    one request, the step saved, no `stop at once`."""
    tag = uuid.uuid4().hex
    proc, err = _start_training(tmp_path, tag, ["timeout", "-s", "TERM", "900"])
    os.kill(proc.pid, signal.SIGALRM)   # what timeout does when its time is up: SIGTERM to its process group
    assert proc.wait(timeout=30) == 124
    _wait_gone(tag, 90)
    text = err.read_text()
    assert "stopped at once" not in text, text
    last = text.strip().splitlines()[-1]
    assert last.startswith("toy2d: SIGTERM received: training stopped after step"), text
    _saved_step(tmp_path, last)


def test_a_parent_killed_mid_training_stops_the_stage_which_saves(tmp_path):
    tag = uuid.uuid4().hex
    proc, err = _start_training(tmp_path, tag, [])
    proc.kill()   # SIGKILL to the fake dvc alone
    proc.wait()
    _wait_gone(tag, 90)
    last = err.read_text().strip().splitlines()[-1]
    assert last.startswith("toy2d: the command that started this stage is gone: training stopped after step"), last
    _saved_step(tmp_path, last)


def test_progress_is_streamed_to_the_terminal_and_not_into_the_notebook(tmp_path):
    res = _stage("toy2d", "--out", str(tmp_path / "side"), "-p", "n_iter", "40", *TINY_TOY)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    steps = [ln for ln in lines if ln.startswith("toy2d | stack of 1 soft_intro_vae | step ")]
    # the start line at least: step events come at most every 0.5 s, so a run this short may show no more
    # (the every-10% rule of a log is tested on the display itself: tests/test_progress.py)
    assert steps and steps[0].startswith("toy2d | stack of 1 soft_intro_vae | step 0/40 (0%)"), res.stderr
    assert any(re.search(r"done 40/40 steps in .* \| mean rec ", ln) for ln in lines), res.stderr
    nb = json.loads((tmp_path / "side" / "02_toy2d.ipynb").read_text())
    # no progress residue in the notebook (other stderr, such as matplotlib's font-cache notes in a new
    # environment, is the notebook's own)
    stderr_text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", [])
                          if o.get("name") == "stderr")
    assert not re.search(r"step/s|it/s|\d+/\d+ \[|%\|", stderr_text), stderr_text[:500]
    quiet = _stage("toy2d", "--out", str(tmp_path / "side2"), "--quiet", "-p", "n_iter", "10", *TINY_TOY)
    assert quiet.returncode == 0 and " | step " not in quiet.stderr, quiet.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
