"""Nothing lost, nothing executed: checkpoint safety, data checks, signals, locks, resumable `dvc repro`.

Each test names the finding of the reliability issue it covers (1-8).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_in
from nbutil import BIN, ROOT

from sivae import CheckpointError, DataError, TrainConfig, Trainer
from sivae.checkpoints import FORMAT, FolderLock, load_checkpoint, save_checkpoint
from sivae.toy2d.data import get_toy_dataset
from sivae.toy2d.models import MLPConfig, build_mlp_pair

DATA = get_toy_dataset("8gaussians")


def trainer(ckpt_dir, n_iter=30, batch_fn=None, **kw):
    enc, dec = build_mlp_pair(MLPConfig(hidden=16, n_hidden=1), seed=0)
    cfg = TrainConfig(method="soft_intro_vae", n_iter=n_iter, batch_size=16, num_vae=3, log_every=5,
                      checkpoint_every=10, progress=False, scale=0.5, **kw)
    return Trainer(enc, dec, batch_fn or (lambda step, g: DATA.sample(16, g)), cfg, ckpt_dir, device="cpu")


class Payload:
    """Unpickling this runs a shell command (what a hostile checkpoint would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# ----------------------------------------------------------------- 1. loading never executes code
def test_a_checkpoint_carrying_a_program_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "PAYLOAD_RAN"
    t = trainer(tmp_path / "run")
    t.fit()
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    state["extra"] = {"x": Payload(marker)}
    for writer in (lambda p: torch.save(state, p), lambda p: save_checkpoint(state, p)):  # v1 and v2 files
        writer(tmp_path / "run" / "last.pt")
        with pytest.raises(CheckpointError, match="refused.*nothing in it was executed"):
            trainer(tmp_path / "run").fit()  # resume path
        from sivae.images.training import load_trained
        with pytest.raises(CheckpointError, match="refused"):
            load_trained(tmp_path / "run" / "last.pt")
        assert not marker.exists(), "the payload ran"


# ----------------------------------------------------------------- 7. checksum
def test_a_flipped_byte_inside_a_checkpoint_is_refused_naming_the_file(tmp_path):
    t = trainer(tmp_path)
    t.fit()
    path = tmp_path / "last.pt"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit, in the middle of the tensor data
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=f"{path}.*corrupt.*checksum"):
        load_checkpoint(path)


def test_equal_states_give_byte_identical_checkpoints_however_their_objects_are_shared(tmp_path):
    from collections import OrderedDict
    key = "".join(["lo", "ss"])            # equal to "loss", another object
    sd = OrderedDict(w=torch.ones(2))
    sd._metadata = OrderedDict({"": {"version": 1}})
    shared_row = {"loss": 1.5, "step": 1000}
    a = {"format": FORMAT, "encoder": sd, "history": [shared_row, shared_row], "names": ["run", "run"]}
    b = {"format": FORMAT, "encoder": sd, "history": [{key: 1.5, "step": 1000}, {key: 1.5, "step": 1000}],
         "names": ["run", "".join(["r", "un"])]}
    save_checkpoint(a, tmp_path / "a.pt"), save_checkpoint(b, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    again = load_checkpoint(tmp_path / "a.pt", required=("encoder",))
    save_checkpoint(again, tmp_path / "c.pt")   # a loaded state, saved again: the same bytes
    assert (tmp_path / "c.pt").read_bytes() == (tmp_path / "a.pt").read_bytes()
    assert again["encoder"]._metadata == {"": {"version": 1}}   # load_state_dict's versions survive


def test_a_sivae_checkpoint_missing_keys_is_named(tmp_path):
    save_checkpoint({"format": "sivae-checkpoint-v1", "step": 3}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="lacks config"):
        trainer(tmp_path).fit()


# ----------------------------------------------------------------- #31 probe 3: overrides never destroy a run
def test_an_override_sets_the_finished_run_aside_and_going_back_reuses_it(tmp_path, monkeypatch, capsys):
    """Under a stage, `-p n_iter ...` then back to the default: the finished run is loaded, not retrained."""
    from sivae.checkpoints import ASIDE
    monkeypatch.setenv("SIVAE_STAGE", "toy2d")
    calls = []

    def counting(step, g):
        calls.append(step)
        return DATA.sample(16, g)

    first = trainer(tmp_path, n_iter=30, batch_fn=counting)
    first.fit()
    weights = {k: v.clone() for k, v in first.dec.state_dict().items()}
    other = trainer(tmp_path, n_iter=40, batch_fn=counting)   # a one-off override, in the same folder
    other.fit()
    assert other.step == 40
    assert "it is kept as" in capsys.readouterr().err
    assert len(list((tmp_path / ASIDE).glob("*/last.pt"))) == 1      # the finished run, kept
    calls.clear()
    again = trainer(tmp_path, n_iter=30, batch_fn=counting)   # back to the original parameters
    again.fit()
    assert calls == [], "the finished run was trained again"
    assert again.step == 30
    assert all(torch.equal(weights[k], v) for k, v in again.dec.state_dict().items())
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 30
    assert [load_checkpoint(p)["step"] for p in (tmp_path / ASIDE).glob("*/last.pt")] == [40]   # the override's


def test_outside_a_stage_another_configuration_is_an_error_and_nothing_moves(tmp_path, monkeypatch):
    from sivae.train import ConfigurationChanged
    monkeypatch.delenv("SIVAE_STAGE", raising=False)
    trainer(tmp_path, n_iter=20).fit()
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(ConfigurationChanged, match="another configuration.*n_iter"):
        trainer(tmp_path, n_iter=25).fit()
    assert (tmp_path / "last.pt").read_bytes() == before


# ----------------------------------------------------------------- 2. data checked before use
def _official_size_but_wrong(raw, images_name, n, labels_name):
    import numpy as np

    from sivae.images.data import write_idx
    raw.mkdir(parents=True, exist_ok=True)
    write_idx(raw / images_name, np.zeros((n, 28, 28), np.uint8))
    write_idx(raw / labels_name, np.zeros(n, np.uint8))


def test_a_damaged_official_data_file_is_refused_with_the_repair_command(tmp_path):
    from sivae.images.data import load_image_dataset
    raw = tmp_path / "MNIST" / "raw"
    _official_size_but_wrong(raw, "t10k-images-idx3-ubyte", 10000, "t10k-labels-idx1-ubyte")
    with pytest.raises(DataError, match="corrupt: its md5 is not the official.*python -m sivae.images.data fetch mnist"):
        load_image_dataset("mnist", "test", tmp_path)


@pytest.mark.skipif(not (ROOT.parent / "shared" / "data" / "mnist_test.npz").exists(), reason="no ../shared/data mirror")
def test_one_flipped_byte_in_genuine_mnist_is_refused(tmp_path):
    from sivae.images.data import fetch, load_image_dataset
    fetch(["mnist"], tmp_path, ROOT.parent / "shared" / "data", log=lambda *a: None)
    assert len(load_image_dataset("mnist", "test", tmp_path)) == 10000
    f = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    raw = bytearray(f.read_bytes())
    raw[5000] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="corrupt"):
        load_image_dataset("mnist", "test", tmp_path)
    res = subprocess.run([sys.executable, "-m", "sivae.images.data", "verify", "--root", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and f"BAD  {f}" in res.stdout


@pytest.mark.skipif(not (ROOT.parent / "shared" / "data" / "mnist_test.npz").exists(), reason="no ../shared/data mirror")
def test_a_flipped_byte_with_its_old_mtime_restored_is_refused(tmp_path, monkeypatch):
    """#31 probe 6: the md5 cache must not trust path + size + mtime (bit rot restored by `cp -p`, rsync -t, tar)."""
    from sivae.images import data as D
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    D.fetch(["mnist"], tmp_path, ROOT.parent / "shared" / "data", log=lambda *a: None)
    assert len(D.load_image_dataset("mnist", "test", tmp_path)) == 10000   # its md5 is now cached
    f = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    st = f.stat()
    raw = bytearray(f.read_bytes())
    raw[5000] ^= 0xFF
    f.write_bytes(bytes(raw))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))   # the old mtime back: same path, size and mtime
    assert f.stat().st_mtime_ns == st.st_mtime_ns and f.stat().st_size == st.st_size
    with pytest.raises(DataError, match=f"{f}.*corrupt"):
        D.load_image_dataset("mnist", "test", tmp_path)
    D._md5_memo.clear()   # a new process: only the cache file remembers
    with pytest.raises(DataError, match=f"{f}.*corrupt"):
        D.load_image_dataset("mnist", "test", tmp_path)


# ----------------------------------------------------------------- 4. signals save and stop
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_that_step_and_resuming_gives_the_same_run(tmp_path, sig):
    full = trainer(tmp_path / "full", n_iter=40)
    full.fit()

    def signalled(step, g):
        if step == 22:  # mid-iteration, not on a logging or checkpoint step
            os.kill(os.getpid(), sig)
        return DATA.sample(16, g)
    t = trainer(tmp_path / "sig", n_iter=40, batch_fn=signalled)
    with pytest.raises(KeyboardInterrupt, match=f"{signal.Signals(sig).name} received: training stopped after step 23"):
        t.fit()
    saved = load_checkpoint(tmp_path / "sig" / "last.pt")
    assert saved["step"] == 23 and saved["history"][-1]["step"] == 20  # records only at log_every steps
    resumed = trainer(tmp_path / "sig", n_iter=40)
    resumed.fit()
    for a, b in zip([*resumed.enc.parameters(), *resumed.dec.parameters()],
                    [*full.enc.parameters(), *full.dec.parameters()]):
        assert torch.equal(a, b)
    # the resumed history (the curves DVCLive writes) = the uninterrupted one
    assert resumed.history == full.history


def test_a_signal_on_a_logging_step_keeps_its_record_once(tmp_path):
    def signalled(step, g):
        if step == 19:  # completes step 20: a logging and checkpoint step
            os.kill(os.getpid(), signal.SIGTERM)
        return DATA.sample(16, g)
    with pytest.raises(KeyboardInterrupt, match="after step 20"):
        trainer(tmp_path, n_iter=40, batch_fn=signalled).fit()
    steps = [h["step"] for h in load_checkpoint(tmp_path / "last.pt")["history"]]
    assert steps == [5, 10, 15, 20]


def test_a_second_signal_stops_at_once(tmp_path):
    def signalled(step, g):
        if step == 5:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
        return DATA.sample(16, g)
    with pytest.raises(KeyboardInterrupt, match="second SIGTERM"):
        trainer(tmp_path, batch_fn=signalled).fit()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


# ----------------------------------------------------------------- 5. one trainer per folder
def test_a_second_trainer_on_a_folder_is_refused_naming_the_holder(tmp_path):
    held = FolderLock(tmp_path).acquire()  # another open lock = another trainer
    try:
        with pytest.raises(CheckpointError, match=f"{tmp_path} is in use by process {os.getpid()}"):
            trainer(tmp_path).fit()
        assert not (tmp_path / "last.pt").exists()
    finally:
        held.release()
    trainer(tmp_path).fit()  # free again
    assert not (tmp_path / ".lock").exists()


def test_a_stale_lock_of_a_dead_process_does_not_block(tmp_path):
    (tmp_path / ".lock").write_text("process 999999 on elsewhere\n")  # no OS lock held: its owner died
    trainer(tmp_path).fit()


def test_the_refusal_names_a_holder_that_has_not_written_its_name_yet(tmp_path):
    """The race the two-process test hit in CI: the loser read the lock file between the winner's truncate and its
    write and named 'another process'. The loser now waits briefly for the holder's name."""
    import fcntl
    import threading
    fd = os.open(tmp_path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)          # held, nothing written yet
    writer = threading.Timer(0.2, lambda: os.write(fd, b"process 4242 on elsewhere\n"))
    writer.start()
    try:
        with pytest.raises(CheckpointError, match="is in use by process 4242 on elsewhere"):
            FolderLock(tmp_path).acquire()
    finally:
        writer.join()
        os.close(fd)


def test_two_processes_on_one_folder_one_clear_error(tmp_path):
    code = ("import sys, time; sys.path.insert(0, %r); from test_reliability import trainer; "
            "t = trainer(%r, n_iter=400); t.fit()") % (str(ROOT / "tests"), str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 1], errs
    loser = errs[codes.index(1)]
    assert "CheckpointError" in loser and "is in use by process" in loser and "FileNotFoundError" not in loser


# ----------------------------------------------------------------- 6. short notebook errors
def test_a_stage_error_is_one_short_message(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    sec = params["toy2d"]
    for k in list(sec):
        if k.endswith(("_dir", "_path")) or k == "executed_notebook":
            sec[k] = str(tmp_path / sec[k])
    sec["datasets"] = "moons"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    res = subprocess.run([str(BIN / "python"), "-m", "sivae.stage", "toy2d", "--params", str(tmp_path / "params.yaml")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2   # sivae.stage.EXIT_CONFIG: one exit code per kind of failure
    assert "without encryption" not in res.stderr    # the kernel is on IPC sockets
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("toy2d: ConfigError: unknown datasets 'moons'; choose one of"), res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / sec["metrics_path"]).exists()


# ----------------------------------------------------------------- 3 and 8. dvc repro resumes; no orphans
TOY = dict(datasets="8gaussians,rings", methods="soft_intro_vae", n_seeds=1, n_iter=1500, n_iter_factor="",
           batch_size=16, grid_size=16, n_samples=200, num_vae=10)   # one stack: both datasets at n_iter


def _set_toy(repo, **kw):
    p = yaml.safe_load((repo / "params.yaml").read_text())
    p["toy2d"].update(kw)
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def _env():
    return {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1"}


def _wait_for(path, timeout=120):
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def _stack_ckpt(ck):
    hits = sorted(ck.glob("stacks/*/last.pt"))
    return hits[0] if len(hits) == 1 else None


@pytest.mark.parametrize("engine", ["single", "stack"])
def test_killed_dvc_repro_resumes_and_a_changed_configuration_retrains(repo_copy, engine, tmp_path):
    dvc = str(BIN / "dvc")
    _set_toy(repo_copy, **TOY, engine=engine)
    run_in([dvc, "repro", "toy2d"], repo_copy, timeout=600)
    baseline = (repo_copy / "outputs/toy2d/metrics.json").read_text()
    live = repo_copy / "outputs/toy2d/live"
    curves = {p.relative_to(live): p.read_bytes() for p in live.rglob("*") if p.is_file()}
    if engine == "stack":  # the declared plots render: a few that overlay methods (not one per DVCLive file)
        shown = json.loads(run_in([dvc, "plots", "show", "--json"], repo_copy))
        ids = set(shown.get("data") or {})
        assert {"toy2d_kl_along_the_runs", "toy2d_jsd_along_the_runs", "stability_kl_fake_vs_m"} <= ids, sorted(ids)
        assert len(ids) <= 8 and not any("/live/" in i for i in ids), sorted(ids)
        assert not shown.get("errors"), shown.get("errors")
        kl = shown["data"]["toy2d_kl_along_the_runs"][0]["content"]
        assert {r["method"] for r in kl["data"]["values"]} == {"soft_intro_vae"} and kl["spec"]["encoding"]["color"]
        # a single training curve is still one command away
        one = "outputs/toy2d/live/rings/soft_intro_vae/seed0/plots/metrics/kl_fake.tsv"
        assert one in json.loads(run_in([dvc, "plots", "show", "--json", one], repo_copy))["data"]
    subprocess.run(["rm", "-rf", str(repo_copy / "outputs/toy2d")], check=True)

    # kill the whole process group of `dvc repro` mid-training (single: while the second run, rings, trains;
    # stack: the two runs train together, after the stack's first periodic checkpoint)
    proc = subprocess.Popen([dvc, "repro", "toy2d"], cwd=repo_copy, env=_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ck = repo_copy / "outputs/toy2d/checkpoints"
    if engine == "single":
        _wait_for(ck / "8gaussians/soft_intro_vae/seed0/last.pt")
        _wait_for(ck / "rings/soft_intro_vae/seed0")
        time.sleep(1.0)
        last = ck / "rings/soft_intro_vae/seed0/last.pt"
    else:
        deadline = time.time() + 120
        while _stack_ckpt(ck) is None:
            assert time.time() < deadline, "no stack checkpoint appeared"
            time.sleep(0.05)
        last = _stack_ckpt(ck)
    os.killpg(proc.pid, signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode != 0, out
    partial = load_checkpoint(last, required=("format", "step"))
    assert 0 < partial["step"] < TOY["n_iter"], "the kill did not land mid-training"
    if engine == "single":
        assert (ck / "8gaussians/soft_intro_vae/seed0/last.pt").exists()  # persisted across the failed run
        # the curves grew while dvc repro trained (sivae.runinfo.live_training): the finished run's is whole
        grown = live / "8gaussians/soft_intro_vae/seed0/plots/metrics/rec.tsv"
        assert grown.read_bytes() == curves[grown.relative_to(live)], "no live curve written during dvc repro"
    else:
        assert partial["kind"] == "stack-v1" and [r["name"] for r in partial["runs"]] == [
            str(ck / d / "soft_intro_vae/seed0").removeprefix(str(repo_copy) + "/") for d in ("8gaussians", "rings")]

    run_in([dvc, "repro", "toy2d"], repo_copy, timeout=600)
    assert (repo_copy / "outputs/toy2d/metrics.json").read_text() == baseline
    assert {p.relative_to(live): p.read_bytes() for p in live.rglob("*") if p.is_file()} == curves

    _set_toy(repo_copy, n_iter=TOY["n_iter"] + 10)
    run_in([dvc, "repro", "toy2d"], repo_copy, timeout=600)
    assert "retrains from step 0" in (repo_copy / "outputs/toy2d/02_toy2d.ipynb").read_text()
    assert load_checkpoint(last, required=("format", "step"))["step"] == TOY["n_iter"] + 10
    assert json.loads((repo_copy / "outputs/toy2d/metrics.json").read_text()) != json.loads(baseline)
    # #31 probe 3: back to the original parameters, the original run is reused (set aside, not deleted)
    _set_toy(repo_copy, n_iter=TOY["n_iter"])
    run_in([dvc, "repro", "toy2d"], repo_copy, timeout=600)
    assert "resumes the run of this configuration set aside earlier" in (
        repo_copy / "outputs/toy2d/02_toy2d.ipynb").read_text()
    assert load_checkpoint(last, required=("format", "step"))["step"] == TOY["n_iter"]
    assert (repo_copy / "outputs/toy2d/metrics.json").read_text() == baseline
    if engine == "stack":   # the finished run travels (issue 33): pushed here, pulled into a fresh clone
        results_travel_through_a_remote(repo_copy, tmp_path)


def results_travel_through_a_remote(repo, tmp):
    """`dvc push` to a local-directory remote the user configures, a second fresh clone `dvc pull`s: `dvc status`
    is clean, the figures, the executed notebook and the persisted checkpoints are there, `dvc repro` runs nothing."""
    dvc = str(BIN / "dvc")
    run_in(["git", "add", "-A"], repo)                      # dvc.lock and the `cache: false` outputs live in git
    run_in(["git", "commit", "-q", "-m", "toy2d run"], repo)
    remote = tmp / "remote"
    run_in([dvc, "remote", "add", "--local", "-d", "shared", str(remote)], repo)   # not in .dvc/config (git)
    run_in([dvc, "push", "toy2d"], repo, timeout=600)
    clone = tmp / "clone"
    run_in(["git", "clone", "-q", str(repo), str(clone)], tmp)
    assert not (clone / "outputs/toy2d/figures").exists() and "shared" not in (clone / ".dvc/config").read_text()
    run_in([dvc, "remote", "add", "--local", "-d", "shared", str(remote)], clone)
    run_in([dvc, "pull", "toy2d"], clone, timeout=600)
    assert "up to date" in run_in([dvc, "status", "toy2d"], clone), run_in([dvc, "status", "toy2d"], clone)
    figures = sorted(p.name for p in (clone / "outputs/toy2d/figures").glob("*.png"))
    assert figures and figures == sorted(p.name for p in (repo / "outputs/toy2d/figures").glob("*.png"))
    assert (clone / "outputs/toy2d/02_toy2d.ipynb").read_bytes() == (repo / "outputs/toy2d/02_toy2d.ipynb").read_bytes()
    ck = sorted(p.relative_to(clone) for p in (clone / "outputs/toy2d/checkpoints").rglob("last.pt"))
    assert ck and ck == sorted(p.relative_to(repo) for p in (repo / "outputs/toy2d/checkpoints").rglob("last.pt"))
    out = run_in([dvc, "repro", "toy2d"], clone, timeout=600)
    assert "didn't change" in out and "Running stage" not in out, out
    assert "up to date" in run_in([dvc, "status", "toy2d"], clone)
    # `dvc repro --pull` in another fresh clone: the unchanged stage's outputs come from the remote, nothing runs
    again = tmp / "clone_repro_pull"
    run_in(["git", "clone", "-q", str(repo), str(again)], tmp)
    run_in([dvc, "remote", "add", "--local", "-d", "shared", str(remote)], again)
    out = run_in([dvc, "repro", "--pull", "toy2d"], again, timeout=600)
    assert "Running stage" not in out and sorted(p.name for p in (again / "outputs/toy2d/figures").glob("*.png")) == figures


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_killing_dvc_alone_leaves_no_notebook_running(repo_copy, shell):
    # dvc runs the stage's command with `$SHELL -c` (/bin/sh when SHELL is unset, as in CI); dash keeps
    # itself between dvc and the runner, bash execs the runner: both must stop the notebook
    import psutil
    if not Path(shell).exists():
        pytest.skip(f"{shell} not installed")
    _set_toy(repo_copy, **{**TOY, "n_iter": 200000, "datasets": "8gaussians", "engine": "single"})
    proc = subprocess.Popen([str(BIN / "dvc"), "repro", "toy2d"], cwd=repo_copy, env={**_env(), "SHELL": shell},
                            start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(repo_copy / "outputs/toy2d/checkpoints/8gaussians/soft_intro_vae/seed0")
    family = psutil.Process(proc.pid).children(recursive=True)
    assert any("ipykernel" in " ".join(p.cmdline()) for p in family), [p.cmdline() for p in family]
    proc.kill()  # SIGKILL to dvc alone
    proc.wait()
    deadline = time.time() + 90
    while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family):
        assert time.time() < deadline, [p.cmdline() for p in family if p.is_running()]
        time.sleep(0.5)
    # and the interrupted run saved its state on the way out
    assert load_checkpoint(repo_copy / "outputs/toy2d/checkpoints/8gaussians/soft_intro_vae/seed0/last.pt")["step"] > 0
