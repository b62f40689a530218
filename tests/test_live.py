"""Curves that grow while the runs train (sivae.runinfo.live_training): the Trainer and the stack write
every history record through DVCLive as it is made, and a resumed run's curve equals an uninterrupted one's."""
import pytest

from sivae import TrainConfig, Trainer
from sivae.runinfo import live_training
from sivae.stack import StackRun, StackTrainer
from sivae.toy2d.data import get_toy_dataset
from sivae.toy2d.models import MLPConfig, build_mlp_pair

SMALL = MLPConfig(hidden=16, n_hidden=2)


@pytest.fixture(autouse=True)
def live_off_afterwards():
    yield
    live_training(None)


def _rows(path):
    lines = path.read_text().splitlines()
    return [tuple(float(v) for v in ln.split("\t")) for ln in lines[1:]]


def _curve(history, key):
    return [(float(r["step"]), float(r[key])) for r in history]


def _trainer(ckpt_dir, batch_fn=None, n_iter=20, method="soft_intro_vae", seed=0):
    data = get_toy_dataset("8gaussians")
    cfg = TrainConfig(method=method, n_iter=n_iter, batch_size=16, beta_rec=0.2, beta_kl=0.3, beta_neg=0.9,
                      num_vae=3, progress=False, checkpoint_every=5, log_every=4, seed=seed)
    enc, dec = build_mlp_pair(SMALL, seed=seed)
    return Trainer(enc, dec, batch_fn or (lambda step, g: data.sample(16, g)), cfg, ckpt_dir=ckpt_dir, device="cpu")


def test_trainer_writes_its_curve_while_it_trains(tmp_path):
    live, root = tmp_path / "live", tmp_path / "ckpt"
    live_training(live, root)
    data = get_toy_dataset("8gaussians")
    seen = {}

    def watching(step, g):
        f = live / "8gaussians/seed0/plots/metrics/kl_real.tsv"
        if step in (9, 15):  # mid-run: the records up to now are on disk already
            seen[step] = _rows(f)
        return data.sample(16, g)
    t = _trainer(root / "8gaussians/seed0", watching)
    hist = t.fit()
    assert [s for s, _ in seen[9]] == [4.0, 8.0] and [s for s, _ in seen[15]] == [4.0, 8.0, 12.0]
    assert _rows(live / "8gaussians/seed0/plots/metrics/kl_real.tsv") == _curve(hist, "kl_real")
    assert _rows(live / "8gaussians/seed0/plots/metrics/loss_e.tsv") == _curve(hist, "loss_e")


def test_no_live_folder_unless_asked(tmp_path):
    live_training(None)
    _trainer(tmp_path / "ckpt").fit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


class Killed(KeyboardInterrupt):
    pass


@pytest.mark.slow
def test_resumed_trainer_rewrites_a_whole_curve_equal_to_an_uninterrupted_one(tmp_path):
    live_training(tmp_path / "live_full", tmp_path / "full")
    full = _trainer(tmp_path / "full" / "run").fit()
    data = get_toy_dataset("8gaussians")

    def dying(step, g):
        if step == 13:
            raise Killed()
        return data.sample(16, g)
    live_training(tmp_path / "live", tmp_path / "part")
    with pytest.raises(Killed):
        _trainer(tmp_path / "part" / "run", dying).fit()
    f = tmp_path / "live/run/plots/metrics/kl_real.tsv"
    assert [s for s, _ in _rows(f)] == [4.0, 8.0, 12.0]
    f.write_text(f.read_text() + "99\t123.0\n")  # whatever a killed attempt left is replaced
    resumed = _trainer(tmp_path / "part" / "run").fit()
    assert resumed == full
    for key in ("kl_real", "rec", "loss_d"):
        assert (tmp_path / f"live/run/plots/metrics/{key}.tsv").read_bytes() == \
            (tmp_path / f"live_full/run/plots/metrics/{key}.tsv").read_bytes()


@pytest.mark.slow
def test_stack_writes_every_runs_curve_while_it_trains(tmp_path):
    live, root = tmp_path / "live", tmp_path / "ckpt"
    live_training(live, root)
    seen = {}
    runs = []
    for ds, seed in (("8gaussians", 0), ("rings", 3)):
        data = get_toy_dataset(ds)

        def fn(step, g, data=data, ds=ds):
            if ds == "rings" and step == 10:
                seen["mid"] = {n: _rows(live / n / "seed" / "plots/metrics/kl_fake.tsv") for n in ("8gaussians", "rings")}
            return data.sample(8, g)
        enc, dec = build_mlp_pair(SMALL, seed=seed)
        cfg = TrainConfig(method="soft_intro_vae", n_iter=14, batch_size=8, beta_rec=0.2, beta_kl=0.3, beta_neg=0.9,
                          num_vae=2, seed=seed, progress=False, checkpoint_every=100, log_every=4)
        runs.append(StackRun(str(root / ds / "seed"), enc, dec, fn, cfg))
    stack = StackTrainer(runs, ckpt_dir=root / "stacks" / "s", device="cpu")
    hist = stack.fit()
    assert [s for s, _ in seen["mid"]["rings"]] == [4.0, 8.0]
    for r in runs:
        name = r.name.split("ckpt/")[1]
        assert _rows(live / name / "plots/metrics/kl_fake.tsv") == _curve(hist[r.name], "kl_fake")
        assert [s for s, _ in _curve(hist[r.name], "kl_fake")] == [4.0, 8.0, 12.0, 14.0]
    assert not (live / "stacks").exists()
