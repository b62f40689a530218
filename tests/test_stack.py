"""The stacked multi-run trainer (sivae.stack): each run of a stack follows the single-run Trainer."""
import subprocess
import sys
import textwrap

import pytest
import torch

from sivae import CheckpointError, ConfigError, DivergenceError, TrainConfig, Trainer
from sivae.lifecycle import ConfigurationChanged
from sivae.stack import StackedMLP, StackRun, StackTrainer, stack_groups
from sivae.toy2d.data import get_toy_dataset
from sivae.toy2d.models import MLPConfig, build_mlp_pair

SMALL = MLPConfig(hidden=16, n_hidden=2)
K = 12


def _batch_fn(dataset, batch, dtype=torch.float64, blow_up_at=None):
    data = get_toy_dataset(dataset)

    def fn(step, g):
        x = data.sample(batch, g).to(dtype)
        return x * 1e30 if blow_up_at is not None and step >= blow_up_at else x
    return fn


def _cfg(method, seed, **kw):
    base = dict(method=method, n_iter=K, batch_size=8, lr=3e-3, lr_milestones=(0.5,), num_vae=4 if method != "vae" else 0,
                seed=seed, progress=False, checkpoint_every=1000, log_every=3, scale=0.5)
    return TrainConfig(**{**base, **kw})


def _nets(seed, dtype=torch.float64):
    enc, dec = build_mlp_pair(SMALL, seed=seed)
    return enc.to(dtype), dec.to(dtype)


RUNS = {  # a mixed stack: different seeds, datasets and loss weights
    "vae": [("8gaussians", 0, dict(beta_rec=0.8, beta_kl=0.05)), ("spiral", 3, dict(beta_rec=1.0, beta_kl=0.3)),
            ("rings", 7, dict(beta_rec=0.5, beta_kl=1.0))],
    "introvae": [("8gaussians", 1, dict(beta_rec=0.3, beta_kl=0.5, beta_neg=1.0, m=1.0)),
                 ("checkerboard", 2, dict(beta_rec=0.4, beta_kl=0.2, beta_neg=0.2, m=8.0)),
                 ("spiral", 5, dict(beta_rec=0.2, beta_kl=0.5, beta_neg=0.5, m=2.0))],
    "soft_intro_vae": [("8gaussians", 0, dict(beta_rec=0.2, beta_kl=0.3, beta_neg=0.9)),
                       ("rings", 4, dict(beta_rec=0.2, beta_kl=0.2, beta_neg=1.0)),
                       ("spiral", 9, dict(beta_rec=0.5, beta_kl=0.5, beta_neg=0.2))],
}


def _stack(method, runs=None, ckpt_dir=None, **cfg_kw):
    out = []
    for ds, seed, hp in runs or RUNS[method]:
        enc, dec = _nets(seed)
        out.append(StackRun(f"{ds}-s{seed}", enc, dec, _batch_fn(ds, 8), _cfg(method, seed, **hp, **cfg_kw),
                            keep_states_at=(4, K)))
    return StackTrainer(out, ckpt_dir=ckpt_dir, device="cpu")


def _alone(method, ds, seed, hp, **cfg_kw):
    enc, dec = _nets(seed)
    tr = Trainer(enc, dec, _batch_fn(ds, 8), _cfg(method, seed, **hp, **cfg_kw), device="cpu", keep_states_at=(4, K))
    tr.fit()
    return tr


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.parametrize("method", ["vae", "introvae", "soft_intro_vae"])
def test_each_run_of_a_mixed_stack_follows_the_trainer(method):
    stack = _stack(method)
    stack.fit()
    for ds, seed, hp in RUNS[method]:
        name = f"{ds}-s{seed}"
        alone = _alone(method, ds, seed, hp)
        enc_sd, dec_sd = stack.state_dicts(name)
        assert _max_diff(enc_sd, alone.enc.state_dict()) < 1e-10
        assert _max_diff(dec_sd, alone.dec.state_dict()) < 1e-10
        hs, ha = stack.history[name], alone.history
        assert [h["step"] for h in hs] == [h["step"] for h in ha] and hs[-1].keys() == ha[-1].keys()
        for x, y in zip(hs, ha):
            for k in y:
                assert abs(x[k] - y[k]) <= 1e-10 * max(1.0, abs(y[k])), (name, x["step"], k, x[k], y[k])
        for step in (4, K):
            assert _max_diff(stack.kept_states[name][step]["decoder"], alone.kept_states[step]["decoder"]) < 1e-10
        enc, dec = stack.modules(name)  # the original modules now hold the run's weights
        assert _max_diff(dec.state_dict(), alone.dec.state_dict()) < 1e-10


@pytest.mark.slow
def test_the_trajectory_moves_and_differs_between_runs():
    # guards the test above against comparing two untrained networks
    stack = _stack("soft_intro_vae")
    before = {n: stack.state_dicts(n)[1] for n in stack.names}
    stack.fit()
    after = {n: stack.state_dicts(n)[1] for n in stack.names}
    assert all(_max_diff(before[n], after[n]) > 1e-3 for n in stack.names)
    a, b = (after[n] for n in stack.names[:2])
    assert _max_diff(a, b) > 1e-3


@pytest.mark.slow
def test_interrupted_stack_resumes_bit_identically(tmp_path):
    full = _stack("soft_intro_vae", ckpt_dir=tmp_path / "full", checkpoint_every=5)
    full.fit()
    # the second run's data raises KeyboardInterrupt at step 7 (before any update of that step)
    runs = [("8gaussians", 0, dict(beta_rec=0.2, beta_kl=0.3, beta_neg=0.9)),
            ("rings", 4, dict(beta_rec=0.2, beta_kl=0.2, beta_neg=1.0))]
    part = _stack("soft_intro_vae", runs=runs, ckpt_dir=tmp_path / "part", checkpoint_every=5)
    fn = part.runs[1].batch_fn

    def interrupting(step, g):
        if step == 7:
            raise KeyboardInterrupt
        return fn(step, g)
    part.runs[1].batch_fn = interrupting
    with pytest.raises(KeyboardInterrupt):
        part.fit()
    again = _stack("soft_intro_vae", runs=runs, ckpt_dir=tmp_path / "part", checkpoint_every=5)
    again.fit()
    assert again.step == K
    for name in again.names:
        for a, b in zip(again.state_dicts(name), full.state_dicts(name)):
            assert all(torch.equal(a[k], b[k]) for k in a)
        assert again.history[name] == full.history[name]
    # and the files are byte-identical, so DVC hashes a resumed run's checkpoint as the uninterrupted one's
    _stack("soft_intro_vae", runs=runs, ckpt_dir=tmp_path / "whole", checkpoint_every=5).fit()
    assert (tmp_path / "part" / "last.pt").read_bytes() == (tmp_path / "whole" / "last.pt").read_bytes()


KILL_SCRIPT = textwrap.dedent("""
    import sys, time, torch
    from sivae import TrainConfig
    from sivae.stack import StackRun, StackTrainer
    from sivae.toy2d.data import get_toy_dataset
    from sivae.toy2d.models import MLPConfig, build_mlp_pair
    torch.set_num_threads(1)
    runs = []
    for ds, seed in (("8gaussians", 0), ("spiral", 1), ("rings", 2)):
        enc, dec = build_mlp_pair(MLPConfig(hidden=32, n_hidden=2), seed=seed)
        data = get_toy_dataset(ds)
        slow = sys.argv[2] == "slow"
        def fn(step, g, data=data, slow=slow):
            if slow:
                time.sleep(0.01)
            return data.sample(16, g)
        cfg = TrainConfig(method="soft_intro_vae", n_iter=400, batch_size=16, lr=1e-3, num_vae=20, seed=seed,
                          progress=False, checkpoint_every=25, scale=0.5, beta_rec=0.2, beta_kl=0.3, beta_neg=0.9)
        runs.append(StackRun(ds, enc, dec, fn, cfg))
    st = StackTrainer(runs, ckpt_dir=sys.argv[1], device="cpu")
    st.fit()
    torch.save({n: st.state_dicts(n)[1] for n in st.names}, sys.argv[1] + "/final.pt")
""")


@pytest.mark.slow
def test_killed_stack_resumes_to_the_same_weights(tmp_path):
    import time
    script = tmp_path / "train_stack.py"
    script.write_text(KILL_SCRIPT)
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run([sys.executable, str(script), str(ref), "fast"], check=True, timeout=300)
    proc = subprocess.Popen([sys.executable, str(script), str(killed), "slow"])
    deadline = time.time() + 120
    while not (killed / "last.pt").exists():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.7)
    proc.kill()  # SIGKILL: no handler runs; the last periodic checkpoint is what survives
    proc.wait()
    assert not (killed / "final.pt").exists(), "the kill came too late to test anything"
    subprocess.run([sys.executable, str(script), str(killed), "fast"], check=True, timeout=300)
    a, b = torch.load(ref / "final.pt"), torch.load(killed / "final.pt")
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])


def test_a_diverging_run_is_stopped_by_name_and_the_others_go_on(capsys):
    hp = dict(beta_rec=0.2, beta_kl=0.3, beta_neg=0.9)
    good_enc, good_dec = _nets(0)
    bad_enc, bad_dec = _nets(1)
    runs = [StackRun("good", good_enc, good_dec, _batch_fn("8gaussians", 8), _cfg("soft_intro_vae", 0, **hp)),
            StackRun("bad", bad_enc, bad_dec, _batch_fn("spiral", 8, blow_up_at=6), _cfg("soft_intro_vae", 1, **hp))]
    stack = StackTrainer(runs, device="cpu")
    frozen_at = {}
    orig = stack.train_step

    def spy():
        if stack.step == 6:
            frozen_at.update(stack.state_dicts("bad")[1])
        return orig()
    stack.train_step = spy
    stack.fit()
    assert stack.diverged["bad"]["step"] == 6 and stack.diverged["bad"]["loss"] == "loss_e"
    assert "'bad' diverged at step 6" in capsys.readouterr().out
    alone = _alone("soft_intro_vae", "8gaussians", 0, hp)
    assert _max_diff(stack.state_dicts("good")[1], alone.dec.state_dict()) < 1e-10
    assert all(torch.equal(stack.state_dicts("bad")[1][k], frozen_at[k]) for k in frozen_at)  # frozen where it diverged
    assert stack.history["bad"][-1]["step"] == 6 and stack.history["good"][-1]["step"] == K


def test_every_run_diverging_raises():
    runs = []
    for seed in (0, 1):
        enc, dec = _nets(seed)
        runs.append(StackRun(f"r{seed}", enc, dec, _batch_fn("rings", 8, blow_up_at=2), _cfg("vae", seed)))
    with pytest.raises(DivergenceError, match="every run of the stack diverged.*r0 at step 2"):
        StackTrainer(runs, device="cpu").fit()


def test_bad_stacks_are_named(tmp_path):
    e0, d0 = _nets(0)
    e1, d1 = _nets(1)
    vae, soft = _cfg("vae", 0), _cfg("soft_intro_vae", 1)
    with pytest.raises(ConfigError, match="differs from run 'a' in \\['method'"):
        StackTrainer([StackRun("a", e0, d0, _batch_fn("rings", 8), vae), StackRun("b", e1, d1, _batch_fn("rings", 8), soft)])
    with pytest.raises(ConfigError, match="unique"):
        StackTrainer([StackRun("a", e0, d0, _batch_fn("rings", 8), vae), StackRun("a", e1, d1, _batch_fn("rings", 8), vae)])
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))
    with pytest.raises(ConfigError, match="alternating Linear and ReLU"):
        StackedMLP([conv])
    wide_e, wide_d = build_mlp_pair(MLPConfig(hidden=32, n_hidden=2), seed=0)
    with pytest.raises(ConfigError, match="same layer shapes"):
        StackedMLP([e0, wide_e.double()])
    with pytest.raises(ConfigError, match="at least one run"):
        StackTrainer([])


def test_foreign_and_changed_checkpoints_are_named(tmp_path):
    # a single run's checkpoint in the folder
    enc, dec = _nets(0)
    Trainer(enc, dec, _batch_fn("rings", 8), _cfg("vae", 0, n_iter=2), ckpt_dir=tmp_path / "single", device="cpu").fit()
    with pytest.raises(CheckpointError, match="not a stack checkpoint"):
        _stack("vae", ckpt_dir=tmp_path / "single").fit()
    # a stack of other settings
    _stack("vae", ckpt_dir=tmp_path / "s", n_iter=3).fit()
    with pytest.raises(ConfigurationChanged, match="same runs with other settings"):
        _stack("vae", ckpt_dir=tmp_path / "s", n_iter=4).fit()
    with pytest.raises(ConfigurationChanged, match="runs then"):
        _stack("vae", runs=RUNS["vae"][:2], ckpt_dir=tmp_path / "s", n_iter=3).fit()


def test_stack_groups_split_by_shared_settings():
    cfgs = {"a": _cfg("vae", 0), "b": _cfg("soft_intro_vae", 0), "c": _cfg("vae", 1, beta_kl=0.7),
            "d": _cfg("vae", 2, batch_size=16), "e": _cfg("vae", 3)}
    assert stack_groups(cfgs) == [["a", "c", "e"], ["b"], ["d"]]
    assert stack_groups(cfgs, max_runs=2) == [["a", "c"], ["e"], ["b"], ["d"]]


@pytest.mark.slow
def test_gpu_check_runs_what_this_machine_can_and_names_what_it_skips(tmp_path):
    from nbutil import BIN, ROOT
    res = subprocess.run([str(BIN / "python"), "benchmarks/gpu_check.py", str(tmp_path), "--skip", "bench"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    import json
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["device"]["cuda"] == torch.cuda.is_available()
    assert (tmp_path / "cuda_tests.xml").exists()
    if not torch.cuda.is_available():
        assert report["tests"]["skipped"] == 7 and "no CUDA device" in report["tests"]["skip_reasons"][0]
        assert "no CUDA device" in report["table2"]["skipped"]


def test_the_trainer_and_the_stack_share_one_step_loop_and_checkpointing():
    from sivae.engine import Engine
    for cls in (Trainer, StackTrainer):
        assert issubclass(cls, Engine)
        own = [n for n in ("vae_step", "introspective_step", "_fake_terms", "_apply", "train_step", "_loop", "fit", "save")
               if n in vars(cls)]
        assert not own, f"{cls.__name__} defines its own {own}: the algorithm is written once, in sivae.engine"
