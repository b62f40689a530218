"""Image models, data loaders on self-written files, checksums, training/resume, Frechet distance, DDP."""
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from nbutil import BIN, ROOT, write_tiny_idx
from reference_step import reference_soft_intro_step

from sivae.checkpoints import load_checkpoint
from sivae.errors import CheckpointError, ConfigError, DataError
from sivae.images import data as D
from sivae.images.metrics import frechet_distance, gaussian_stats
from sivae.images.models import ImageArch, arch_for, build_image_pair
from sivae.images.sampling import interpolate, reconstruct, sample_images, square_interpolation
from sivae.images.training import load_trained, make_batch_fn, train_image_model
from sivae.train import TrainConfig, Trainer, has_batch_statistics

MIRROR = ROOT.parent / "shared" / "data"


# ------------------------------------------------------------------ models
@pytest.mark.parametrize("dataset,size,cdim,channels,z", [
    ("mnist", 28, 1, "paper", 32), ("fashionmnist", 28, 1, "paper", 32), ("cifar10", 32, 3, "paper", 128),
    ("svhn", 32, 3, "paper", 128), ("folder", 64, 3, "8,8,8,8", 128), ("folder", 128, 3, "4,4,4,4,4", 256)])
def test_model_shapes_for_every_dataset_size(dataset, size, cdim, channels, z):
    arch = arch_for(dataset, size if dataset == "folder" else None, cdim if dataset == "folder" else None, channels)
    assert (arch.image_size, arch.cdim, arch.z_dim) == (size, cdim, z)
    enc, dec = build_image_pair(arch)
    x = torch.rand(3, cdim, size, size)
    mu, logvar = enc(x)
    assert mu.shape == logvar.shape == (3, z)
    assert dec(mu).shape == x.shape


def test_paper_widths():
    assert arch_for("mnist").channels == (64, 128)
    assert arch_for("cifar10").channels == (64, 128, 256)
    assert arch_for("folder", 256, 3).channels == (64, 128, 256, 512, 512, 512)


def test_conditional_path_uses_the_class():
    arch = arch_for("mnist", channels="4,8", conditional=True)
    enc, dec = build_image_pair(arch)
    enc.eval(), dec.eval()
    x, z = torch.rand(2, 1, 28, 28), torch.randn(2, arch.z_dim)
    y0, y1 = torch.tensor([0, 0]), torch.tensor([3, 3])
    assert not torch.allclose(dec(z, y0), dec(z, y1))
    assert not torch.allclose(enc(x, y0)[0], enc(x, y1)[0])
    with pytest.raises(ConfigError, match="class-conditional"):
        dec(z)


def test_bad_architecture_is_one_clear_error():
    with pytest.raises(ConfigError, match="not divisible"):
        ImageArch("x", 30, 1, (8, 8))
    with pytest.raises(ConfigError, match="4 \\* 2\\^k"):
        arch_for("folder", 48, 3)
    with pytest.raises(ConfigError, match="channels .*must be"):
        arch_for("mnist", channels="16,abc")


# ---------------------------------------------------------------- loaders
def test_idx_loader_on_self_written_files(tmp_path):
    write_tiny_idx(tmp_path, "mnist", n_train=20, n_test=7, seed=1)
    tr, te = D.load_image_dataset("mnist", "train", tmp_path), D.load_image_dataset("mnist", "test", tmp_path)
    assert tr.x.shape == (20, 1, 28, 28) and te.x.shape == (7, 1, 28, 28)
    assert tr.x.dtype == torch.float32 and 0 <= tr.x.min() and tr.x.max() <= 1
    raw = np.fromfile(tmp_path / "MNIST/raw/train-images-idx3-ubyte", np.uint8)[16:].reshape(20, 28, 28)
    assert torch.equal(tr.x[:, 0], torch.from_numpy(raw).float() / 255)
    assert D.load_image_dataset("mnist", "train", tmp_path, limit=5).x.shape[0] == 5


def test_truncated_or_foreign_idx_file_is_a_clear_error(tmp_path):
    write_tiny_idx(tmp_path, "fashionmnist", n_train=10, n_test=4)
    f = tmp_path / "FashionMNIST/raw/train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated or corrupt.*fetch"):
        D.load_image_dataset("fashionmnist", "train", tmp_path)
    f.write_bytes(b"<html>not found</html>" * 10)
    with pytest.raises(DataError, match="not an IDX"):
        D.load_image_dataset("fashionmnist", "train", tmp_path)


def test_missing_data_and_unknown_name_messages(tmp_path):
    with pytest.raises(DataError, match="python -m sivae.images.data fetch mnist"):
        D.load_image_dataset("mnist", "train", tmp_path)
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'"):
        D.load_image_dataset("imagenet", "train", tmp_path)


def _write_cifar(root: Path, n: int):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         "labels": list(rng.integers(0, 10, n))}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)


def test_cifar_and_svhn_loaders_on_self_written_files(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    _write_cifar(tmp_path, 4)
    tr = D._load_torchvision("cifar10", "train", tmp_path, verify_md5=False)
    assert tr.x.shape == (20, 3, 32, 32) and tr.y.shape == (20,)
    X = np.random.default_rng(1).integers(0, 256, (32, 32, 3, 6), dtype=np.uint8)
    scipy_io.savemat(tmp_path / "test_32x32.mat", {"X": X, "y": np.array([[10], [1], [2], [3], [4], [5]])})
    te = D._load_torchvision("svhn", "test", tmp_path, verify_md5=False)
    assert te.x.shape == (6, 3, 32, 32) and te.y[0] == 0  # SVHN's label 10 is the digit 0
    assert torch.equal(te.x[1], torch.from_numpy(X[..., 1]).permute(2, 0, 1).float() / 255)
    # with md5 verification (the default), self-written files are "corrupt": one clear error
    with pytest.raises(DataError, match="missing or corrupt"):
        D.load_image_dataset("cifar10", "train", tmp_path)


def test_folder_loader(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    d = D.load_image_dataset(f"folder:{tmp_path}", "all", size=16, channels=1)
    assert d.x.shape == (5, 1, 16, 16) and (d.y == -1).all()
    assert D.load_image_folder(tmp_path, "test", size=8, channels=3, test_fraction=0.4).x.shape == (2, 3, 8, 8)
    (tmp_path / "broken.jpg").write_bytes(b"no image here")
    with pytest.raises(DataError, match="broken.jpg is not a readable image"):
        D.load_image_folder(tmp_path, size=8)
    with pytest.raises(DataError, match="does not exist"):
        D.load_image_folder(tmp_path / "nope")


# ---------------------------------------------------------------- checksums
def test_fetch_rejects_a_wrong_mirror_and_leaves_data_untouched(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for split, n in (("train", 6), ("test", 3)):
        np.savez(mirror / f"mnist_{split}.npz", x=np.zeros((n, 28, 28), np.uint8), y=np.zeros(n, np.int64))
    root = tmp_path / "data"
    write_tiny_idx(root, "mnist", 4, 2)
    before = {p: p.read_bytes() for p in (root / "MNIST/raw").iterdir()}
    with pytest.raises(DataError, match="official md5.*left unchanged"):
        D.fetch(["mnist"], root, mirror, log=lambda *_: None)
    assert {p: p.read_bytes() for p in (root / "MNIST/raw").iterdir()} == before
    assert not any(D.verify(["mnist"], root).values())


@pytest.mark.skipif(not (MIRROR / "mnist_test.npz").exists(), reason="no offline mirror beside the repo")
def test_fetch_from_the_genuine_mirror_gives_the_official_files(tmp_path):
    D.fetch(["mnist"], tmp_path, MIRROR, log=lambda *_: None)
    assert all(D.verify(["mnist"], tmp_path).values())
    f = tmp_path / "MNIST/raw/t10k-labels-idx1-ubyte"
    f.write_bytes(f.read_bytes()[:-1] + b"\x00")  # one byte changed -> verify says so
    assert not D.verify(["mnist"], tmp_path)[str(f)]


def test_fetch_cli_names_what_is_missing(tmp_path):
    res = subprocess.run([sys.executable, "-m", "sivae.images.data", "fetch", "mnist", "--root", str(tmp_path / "d"),
                          "--mirror", str(tmp_path / "empty")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2
    assert "mnist_train.npz" in res.stderr and "Traceback" not in res.stderr


# ------------------------------------------------------------------ training
def tiny_data(n=48, cdim=1, size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return D.ImageData(torch.rand(n, cdim, size, size, generator=g), torch.randint(0, 10, (n,), generator=g),
                       "tiny", "train")


def test_batchnorm_models_are_not_fused_and_match_the_straightforward_iteration():
    torch.set_default_dtype(torch.float64)
    try:
        arch = arch_for("mnist", channels="4,8", z_dim=8)
        data = tiny_data(16)
        data.x = data.x.double()
        fn, _ = make_batch_fn(data, 8, 0)
        trainers = []
        for _ in range(2):
            enc, dec = build_image_pair(arch, 0)
            enc, dec = enc.double(), dec.double()
            t = Trainer(enc, dec, fn, TrainConfig(n_iter=3, batch_size=8, beta_neg=16, scale=1 / 784,
                                                  progress=False), None, "cpu")
            t.opt_e, t.opt_d = torch.optim.SGD(enc.parameters(), 1e-3), torch.optim.SGD(dec.parameters(), 1e-3)
            trainers.append(t)
        a, b = trainers
        assert has_batch_statistics(a.enc) and not a.fuse
        for step in range(2):
            x = fn(step, None)
            out, ref = a.introspective_step(x), reference_soft_intro_step(b, x)
            assert out["loss_e"] == pytest.approx(ref["loss_e"], rel=1e-10)
            assert out["loss_d"] == pytest.approx(ref["loss_d"], rel=1e-10)
        for p, q in zip([*a.enc.parameters(), *a.dec.parameters()], [*b.enc.parameters(), *b.dec.parameters()]):
            torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)
    finally:
        torch.set_default_dtype(torch.float32)


def test_epoch_batches_cover_the_data_and_split_across_ranks():
    data = tiny_data(20)
    fn, per_epoch = make_batch_fn(data, 4, seed=3)
    assert per_epoch == 5
    seen = torch.cat([fn(s, None) for s in range(5)])
    assert sorted(seen.flatten(1).sum(1).tolist()) == sorted(data.x.flatten(1).sum(1).tolist())
    f0, n0 = make_batch_fn(data, 2, seed=3, rank=0, world=2)
    f1, _ = make_batch_fn(data, 2, seed=3, rank=1, world=2)
    assert n0 == 5 and torch.equal(torch.cat([f0(0, None), f1(0, None)]), fn(0, None))


def test_conditional_training_resume_and_reload(tmp_path):
    data = tiny_data(32)
    arch = arch_for("mnist", channels="4,4", z_dim=8, conditional=True)
    kw = dict(batch_size=8, beta_neg=8, progress=False, device="cpu")
    full = train_image_model(data, arch, "soft_intro_vae", 1, epochs=2, ckpt_dir=tmp_path / "full", **kw)
    train_image_model(data, arch, "soft_intro_vae", 1, epochs=1, ckpt_dir=tmp_path / "part", **kw)
    state = load_checkpoint(tmp_path / "part/last.pt")
    state["config"]["n_iter"] = 8  # the same run, stopped after its first epoch
    torch.save(state, tmp_path / "part/last.pt")
    resumed = train_image_model(data, arch, "soft_intro_vae", 1, epochs=2, ckpt_dir=tmp_path / "part", **kw)
    assert resumed.step == full.step == 8
    for p, q in zip(full.decoder.state_dict().values(), resumed.decoder.state_dict().values()):
        assert torch.equal(p, q)
    m = load_trained(tmp_path / "full/last.pt")
    assert m.arch == arch and m.method == "soft_intro_vae" and len(m.history) > 0
    y = torch.arange(4) % 10
    assert sample_images(m, 4, seed=0, y=y).shape == (4, 1, 28, 28)
    assert reconstruct(m, data.x[:4], data.y[:4]).shape == (4, 1, 28, 28)


def test_kept_epochs_are_the_shorter_runs_themselves():
    """Budget curves along one run (experiments/budget_ood.py): the weights kept after epoch 1 of a 2-epoch run are
    the weights of a 1-epoch run (no lr schedule for image models), and the last kept state is the final model."""
    data = tiny_data(16)
    arch = arch_for("mnist", channels="4,4", z_dim=8)
    kw = dict(batch_size=8, beta_neg=8, progress=False, device="cpu")
    two = train_image_model(data, arch, "soft_intro_vae", 0, epochs=2, keep_epochs=[1, 2], **kw)
    one = train_image_model(data, arch, "soft_intro_vae", 0, epochs=1, **kw)
    assert sorted(two.kept) == [2, 4] and one.kept == {}
    for net, model, step in (("encoder", one.encoder, 2), ("decoder", one.decoder, 2), ("decoder", two.decoder, 4)):
        for k, v in model.state_dict().items():
            assert torch.equal(two.kept[step][net][k], v), (net, step, k)
    with pytest.raises(ConfigError, match="keep_epochs"):
        train_image_model(data, arch, "vae", 0, epochs=1, keep_epochs=[2], **kw)


def test_lr_milestones_decay_the_learning_rate(tmp_path):
    """lr_milestones reach the Trainer: the checkpoint records them, both optimizers end at lr x 0.1 after a
    milestone half-way, and the weights differ from a constant-lr run's (the same run until the milestone)."""
    data = tiny_data(16)
    arch = arch_for("mnist", channels="4,4", z_dim=8)
    kw = dict(batch_size=4, beta_neg=8, lr=1e-3, progress=False, device="cpu", epochs=1)
    decayed = train_image_model(data, arch, "soft_intro_vae", 0, lr_milestones=(0.5,), ckpt_dir=tmp_path / "d", **kw)
    constant = train_image_model(data, arch, "soft_intro_vae", 0, ckpt_dir=tmp_path / "c", **kw)
    state = load_checkpoint(tmp_path / "d/last.pt")
    assert state["config"]["lr_milestones"] == [0.5]
    assert load_checkpoint(tmp_path / "c/last.pt")["config"]["lr_milestones"] == []
    for opt in ("opt_e", "opt_d"):
        assert [g["lr"] for g in state[opt]["param_groups"]] == pytest.approx([1e-4])
    assert any(not torch.equal(p, q) for p, q in zip(decayed.decoder.state_dict().values(),
                                                     constant.decoder.state_dict().values()))
    with pytest.raises(ConfigError, match="lr_milestones"):
        train_image_model(data, arch, "vae", 0, lr_milestones="-1", **kw)


def test_generation_helpers_shapes_and_determinism(tmp_path):
    data = tiny_data(16)
    arch = arch_for("mnist", channels="4,4", z_dim=8)
    m = train_image_model(data, arch, "vae", 0, epochs=1, batch_size=8, progress=False, device="cpu")
    a, b = sample_images(m, 5, seed=7), sample_images(m, 5, seed=7)
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    line = interpolate(m, data.x[0], data.x[1], steps=6)
    assert line.shape == (6, 1, 28, 28)
    torch.testing.assert_close(line[0], reconstruct(m, data.x[:1])[0])
    sq = square_interpolation(m, data.x[:4], n=3)
    assert sq.shape == (9, 1, 28, 28)
    torch.testing.assert_close(sq[8], reconstruct(m, data.x[3:4])[0])
    with pytest.raises(ConfigError, match="expects"):
        train_image_model(tiny_data(8, cdim=3, size=32), arch, "vae", 0, epochs=1, progress=False)


def test_load_trained_rejects_corrupt_and_foreign_checkpoints(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_trained(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_trained(tmp_path / "none.pt")


# ---------------------------------------------------------------- Frechet
def test_frechet_distance_equals_the_gaussian_closed_form():
    rng = np.random.default_rng(0)
    m1, m2 = rng.normal(size=4), rng.normal(size=4)
    a, b = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    closed = ((m1 - m2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()  # diagonal covariances
    assert frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(closed, rel=1e-9)
    A = rng.normal(size=(4, 4))
    S = A @ A.T + np.eye(4)
    assert frechet_distance(m1, S, m1, S) == pytest.approx(0, abs=1e-6)
    # full covariances: from samples, the estimate approaches the closed form
    L1, L2 = np.linalg.cholesky(S), np.linalg.cholesky(np.diag(b))
    x1 = m1 + rng.normal(size=(200_000, 4)) @ L1.T
    x2 = m2 + rng.normal(size=(200_000, 4)) @ L2.T
    from scipy.linalg import sqrtm
    exact = ((m1 - m2) ** 2).sum() + np.trace(S) + b.sum() - 2 * np.trace(sqrtm(S @ np.diag(b)).real)
    assert frechet_distance(*gaussian_stats(x1), *gaussian_stats(x2)) == pytest.approx(exact, rel=0.02)


# ---------------------------------------------------------------- DDP
def test_two_process_gloo_training_ends_with_identical_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "tests")}
    res = subprocess.run([str(BIN / "python"), "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29531", str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    w0, w1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    start = torch.load(tmp_path / "init.pt")
    assert any(not torch.equal(start[k], w0[k]) for k in start)  # it did train
