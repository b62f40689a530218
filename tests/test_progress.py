"""Progress (sivae.progress): inside a stage the loops write events (never bars into the notebook), the runner
draws one line per run, in place on a terminal and every 10% in a log, and names the last saved step."""
import io
import json
import os
import signal

from sivae import TrainConfig, Trainer
from sivae.progress import ENV, Display, progress, run_label, tail_events
from sivae.toy2d.data import get_toy_dataset
from sivae.toy2d.models import MLPConfig, build_mlp_pair


def _events(path):
    return [json.loads(ln) for ln in path.read_text().splitlines()]


def _trainer(ckpt_dir, n_iter=12, batch_fn=None):
    data = get_toy_dataset("8gaussians")
    cfg = TrainConfig(method="soft_intro_vae", n_iter=n_iter, batch_size=16, beta_rec=0.2, beta_kl=0.3, beta_neg=0.9,
                      num_vae=3, progress=True, checkpoint_every=5, log_every=4, seed=0)
    enc, dec = build_mlp_pair(MLPConfig(hidden=16, n_hidden=2), seed=0)
    return Trainer(enc, dec, batch_fn or (lambda step, g: data.sample(16, g)), cfg, ckpt_dir=ckpt_dir, device="cpu")


def test_inside_a_stage_a_trainer_writes_events_and_nothing_to_the_notebook(tmp_path, monkeypatch, capfd):
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(ENV, str(events))
    _trainer(tmp_path / "checkpoints/8gaussians/soft_intro_vae/seed0").fit()
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)          # no tqdm bar (it would land in the executed notebook)
    evs = _events(events)
    assert [e["ev"] for e in evs][0] == "start" and evs[-1]["ev"] == "end"
    assert {e["run"] for e in evs} == {"8gaussians/soft_intro_vae/seed0"}
    assert [e["step"] for e in evs if e["ev"] == "saved"] == [5, 10]
    assert evs[-1]["n"] == 12 and not evs[-1]["stopped"] and set(evs[-1]["metrics"]) == {"rec", "kl_real", "kl_fake"}


def test_a_signal_mid_training_records_the_saved_step(tmp_path, monkeypatch):
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(ENV, str(events))
    data = get_toy_dataset("8gaussians")

    def batch(step, g):
        if step == 7:
            os.kill(os.getpid(), signal.SIGTERM)
        return data.sample(16, g)
    t = _trainer(tmp_path / "checkpoints/run", n_iter=50, batch_fn=batch)
    try:
        t.fit()
    except KeyboardInterrupt as e:
        assert "stopped after step 8 of 50" in str(e)
    evs = _events(events)
    assert [e["step"] for e in evs if e["ev"] == "saved"] == [5, 8]
    assert evs[-1]["ev"] == "end" and evs[-1]["stopped"]
    shown = Display("toy2d", stream=io.StringIO(), tty=False)
    for e in evs:
        shown.event(e)
    assert "stopped at step 8/50" in shown.stream.getvalue() and "checkpoint at step 8" in shown.stream.getvalue()


def test_a_log_gets_a_line_every_ten_percent_and_one_when_done(tmp_path, monkeypatch):
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(ENV, str(events))
    monkeypatch.setattr("sivae.progress.STEP_EVERY", 0.0)
    bar = progress(600, "rings/vae/seed0")
    for _ in range(600):
        bar.update(1)
    bar.set_postfix(rec=0.25)
    bar.close()
    log = io.StringIO()
    import threading
    stop = threading.Event()
    stop.set()
    tail_events(str(events), Display("toy2d", stream=log, tty=False), stop)
    lines = log.getvalue().splitlines()
    pcts = [ln.split("(")[1].split("%")[0] for ln in lines if "| step " in ln]
    assert pcts == ["0", "10", "20", "30", "40", "50", "60", "70", "80", "90", "100"], lines
    assert lines[-1].startswith("toy2d | rings/vae/seed0 | done 600/600 steps in") and lines[-1].endswith("rec 0.25")


def test_a_terminal_gets_one_line_redrawn_in_place():
    term = io.StringIO()
    d = Display("toy2d", stream=term, tty=True, redraw_every=0.0)
    d.event({"ev": "start", "run": "r", "total": 100, "initial": 0, "t": 0.0})
    for n in range(1, 101):
        d.event({"ev": "step", "run": "r", "n": n, "t": n * 0.1})
    d.event({"ev": "end", "run": "r", "n": 100, "total": 100, "t": 10.0, "metrics": {}})
    text = term.getvalue()
    assert text.count("\n") == 1 and text.count("\r\x1b[K") > 50
    assert "step 50/100 (50%) | 10.0 step/s | 5 s left" in text


def test_quiet_draws_nothing_but_still_knows_the_saved_step():
    term = io.StringIO()
    d = Display("toy2d", stream=term, tty=False, quiet=True)
    d.event({"ev": "start", "run": "r", "total": 10, "t": 0.0})
    d.event({"ev": "saved", "run": "r", "step": 5, "path": "c/last.pt", "t": 1.0})
    assert term.getvalue() == "" and d.saved_summary() == "last checkpoints: r at step 5 (c/last.pt)"


def test_run_labels():
    assert run_label("outputs/toy2d/checkpoints/8gaussians/vae/seed0/last.pt", "x") == "8gaussians/vae/seed0"
    assert run_label("out/images/checkpoints/mnist_vae_seed0/last.pt", "x") == "mnist_vae_seed0"
    assert run_label(None, "vae seed 0") == "vae seed 0"
