"""The trainer: same numbers as the straightforward iteration, isolation of the two updates,
resume after a kill, divergence detection, bad configuration and checkpoints."""
import pytest
import torch
from reference_step import reference_soft_intro_step

from sivae import CheckpointError, ConfigError, DivergenceError, TrainConfig, Trainer
from sivae.checkpoints import load_checkpoint
from sivae.toy2d.data import get_toy_dataset
from sivae.toy2d.models import MLPConfig, build_mlp_pair

SMALL = MLPConfig(hidden=32, n_hidden=2)


def make_trainer(method="soft_intro_vae", ckpt_dir=None, n_iter=30, batch_fn=None, **kw):
    data = get_toy_dataset("8gaussians")
    cfg = TrainConfig(method=method, n_iter=n_iter, batch_size=16, beta_rec=0.2, beta_kl=0.3, beta_neg=0.9,
                      m=1.0, progress=False, checkpoint_every=10, log_every=5, lr=1e-3, **kw)
    enc, dec = build_mlp_pair(SMALL, seed=0)
    return Trainer(enc, dec, batch_fn or (lambda step, g: data.sample(16, g)), cfg, ckpt_dir=ckpt_dir, device="cpu")


def params(net):
    return [p.detach().clone() for p in net.parameters()]


def assert_same(a, b, **tol):
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, **tol)


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_optimised_step_equals_straightforward_iteration(float64):
    # float64 and SGD, so that only a difference in the mathematics could show
    a, b = make_trainer(), make_trainer()
    for t in (a, b):
        t.opt_e, t.opt_d = torch.optim.SGD(t.enc.parameters(), 0.05), torch.optim.SGD(t.dec.parameters(), 0.05)
    for step in range(5):
        x = a.batch_fn(step, a.data_gen)
        b.batch_fn(step, b.data_gen)
        out = a.introspective_step(x)
        ref = reference_soft_intro_step(b, x)
        assert out["loss_e"] == pytest.approx(ref["loss_e"], rel=1e-12)
        assert out["loss_d"] == pytest.approx(ref["loss_d"], rel=1e-12)
    assert_same(params(a.enc), params(b.enc), rtol=1e-10, atol=1e-12)
    assert_same(params(a.dec), params(b.dec), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["soft_intro_vae", "introvae"])
def test_each_update_moves_only_its_network(method):
    t = make_trainer(method)
    x = t.batch_fn(0, t.data_gen)
    enc0, dec0 = params(t.enc), params(t.dec)
    seen = {}
    step_e, step_d = t.opt_e.step, t.opt_d.step

    def after_e(*a, **k):
        step_e(*a, **k)
        seen["e"] = (params(t.enc), params(t.dec))

    def after_d(*a, **k):
        seen["before_d"] = params(t.enc)
        step_d(*a, **k)
    t.opt_e.step, t.opt_d.step = after_e, after_d
    t.introspective_step(x)
    enc1, dec1 = seen["e"]
    assert_same(dec1, dec0, rtol=0, atol=0)                      # encoder step: decoder untouched
    assert any(not torch.equal(p, q) for p, q in zip(enc1, enc0))
    assert_same(params(t.enc), enc1, rtol=0, atol=0)             # decoder step: encoder untouched
    assert any(not torch.equal(p, q) for p, q in zip(params(t.dec), dec1))


@pytest.mark.slow
def test_training_lowers_the_vae_loss():
    t = make_trainer("vae", n_iter=200)
    hist = t.fit()
    assert hist[-1]["loss"] < hist[0]["loss"]


class Killed(KeyboardInterrupt):
    pass


@pytest.mark.parametrize("method", ["soft_intro_vae", pytest.param("introvae", marks=pytest.mark.slow),
                                    pytest.param("vae", marks=pytest.mark.slow)])
def test_resume_after_kill_gives_identical_result(tmp_path, method):
    full = make_trainer(method, tmp_path / "full", num_vae=5 if method != "vae" else 0)
    full.fit()
    data = get_toy_dataset("8gaussians")

    def dying(step, g):
        if step == 23:
            raise Killed()
        return data.sample(16, g)
    t = make_trainer(method, tmp_path / "killed", batch_fn=dying, num_vae=5 if method != "vae" else 0)
    with pytest.raises(Killed):
        t.fit()
    saved = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert saved["step"] == 23  # saved on exit, between iterations
    resumed = make_trainer(method, tmp_path / "killed", num_vae=5 if method != "vae" else 0)
    resumed.fit()
    assert resumed.step == full.step == 30
    assert_same(params(resumed.enc), params(full.enc), rtol=0, atol=0)
    assert_same(params(resumed.dec), params(full.dec), rtol=0, atol=0)
    assert resumed.history == full.history
    assert (tmp_path / "killed" / "last.pt").read_bytes() == (tmp_path / "full" / "last.pt").read_bytes()


def test_divergence_names_step_and_last_good_checkpoint(tmp_path):
    data = get_toy_dataset("8gaussians")

    def poisoned(step, g):
        x = data.sample(16, g)
        return x * float("nan") if step == 14 else x
    t = make_trainer(ckpt_dir=tmp_path, batch_fn=poisoned)
    with pytest.raises(DivergenceError, match=r"step 14.*last\.pt \(step 10\)"):
        t.fit()
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 10  # good checkpoint kept


@pytest.mark.parametrize("bad", [dict(method="gan"), dict(beta_kl=-1.0), dict(beta_neg=float("nan")),
                                 dict(beta_rec="x"), dict(n_iter=0), dict(alpha=0.0), dict(num_vae=-3)])
def test_bad_config_is_one_clear_error(bad):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**bad)
    assert list(bad)[0] in str(e.value)


def test_corrupt_or_foreign_checkpoint_is_a_clear_error_and_kept(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"\x80\x02garbage not a checkpoint")
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="corrupt"):
        make_trainer(ckpt_dir=tmp_path).fit()
    assert path.read_bytes() == before
    torch.save({"something": 1}, path)
    with pytest.raises(CheckpointError, match="not a sivae checkpoint"):
        make_trainer(ckpt_dir=tmp_path).fit()


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    make_trainer(ckpt_dir=tmp_path).fit()
    other = make_trainer(ckpt_dir=tmp_path, gamma_r=0.5)
    with pytest.raises(CheckpointError, match="gamma_r"):
        other.fit()


def test_train_config_refuses_a_boolean_loss_weight():
    """float(True) is 1.0: a boolean weight (a YAML `yes`, a swapped argument) must be named, not trained with."""
    for name in ("beta_rec", "beta_kl", "beta_neg", "gamma_r", "m", "lr"):
        with pytest.raises(ConfigError, match=f"{name} must be a number, got True"):
            TrainConfig(**{name: True})
