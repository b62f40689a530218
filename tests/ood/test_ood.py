"""The OOD estimator against a linear-Gaussian model's exact log-likelihood, AUROC on score sets
with known answers, and the evaluation API's checks (sivae.ood.metrics)."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from sivae import losses as L
from sivae.errors import ConfigError, DataError
from sivae.ood import metrics as ood

SHAPE = (1, 4, 4)            # "images" of the linear-Gaussian model: d = 16
D, DZ = 16, 3


class LinearGaussian:
    """p(z) = N(0, I), p(x|z) = N(W z + b, sigma2 I): p(x) = N(b, W W^T + sigma2 I) exactly."""

    def __init__(self, sigma2=0.3, orthogonal=True, seed=0, scale=0.15):
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(D, DZ, generator=g, dtype=torch.float64)
        if orthogonal:  # W^T W diagonal -> the true posterior is diagonal, hence reachable by q
            q, _ = torch.linalg.qr(w)
            w = q * torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
        self.w, self.b, self.sigma2 = w * scale, torch.full((D,), 0.5, dtype=torch.float64), sigma2
        prec = torch.eye(DZ, dtype=torch.float64) + self.w.T @ self.w / sigma2
        self.post_cov = torch.linalg.inv(prec)                     # (d_z, d_z) true posterior covariance
        self.post_gain = self.post_cov @ self.w.T / sigma2          # mean = gain (x - b)

    def exact_loglik(self, x):
        cov = self.w @ self.w.T + self.sigma2 * torch.eye(D, dtype=torch.float64)
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x.reshape(len(x), D).double())

    def nets(self, mean_shift=0.0, var_scale=1.0):
        """Encoder = the true posterior's mean (+ shift) with its diagonal variance (x var_scale)."""
        model = self

        class Enc(nn.Module):
            def forward(self, x):
                mu = (x.reshape(len(x), D).double() - model.b) @ model.post_gain.T + mean_shift
                logvar = torch.log(torch.diagonal(model.post_cov) * var_scale).expand(len(x), DZ)
                return mu.float(), logvar.float()

        class Dec(nn.Module):
            def forward(self, z):
                return (z.double() @ model.w.T + model.b).float().reshape(len(z), *SHAPE)
        return Enc(), Dec()

    def sample(self, n, seed=1):
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, DZ, generator=g, dtype=torch.float64)
        x = z @ self.w.T + self.b + math.sqrt(self.sigma2) * torch.randn(n, D, generator=g, dtype=torch.float64)
        return x.float().reshape(n, *SHAPE)


def test_gaussian_log_likelihood_has_its_normalising_constant():
    x, mean, s2 = torch.randn(3, D), torch.randn(3, D), 0.7
    expected = torch.distributions.Normal(mean, math.sqrt(s2)).log_prob(x).sum(1)
    got = ood.gaussian_log_likelihood(L.reconstruction_error(x, mean), D, s2)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("n_samples,chunk_size", [(1, 4096), (7, 4096), (7, 3), (5, 1)])
def test_exact_posterior_gives_the_exact_log_likelihood_for_any_m_and_chunking(n_samples, chunk_size):
    # with q = p(z|x) every importance weight equals p(x): the estimate is exact, noise-free
    lg = LinearGaussian(orthogonal=True)
    enc, dec = lg.nets()
    x = lg.sample(20)
    got = ood.score_images(enc, dec, x, n_samples=n_samples, sigma2=lg.sigma2, chunk_size=chunk_size)
    np.testing.assert_allclose(got.loglik, lg.exact_loglik(x).numpy(), atol=2e-4)
    assert got.dim == D


def test_estimate_converges_to_exact_and_is_a_lower_bound_in_expectation():
    lg = LinearGaussian(orthogonal=False)             # diagonal q cannot match the posterior
    enc, dec = lg.nets(mean_shift=0.3, var_scale=1.8)
    x = lg.sample(6)
    exact = lg.exact_loglik(x).numpy()
    gaps = {}
    for m, reps in ((1, 2000), (10, 2000), (3000, 20)):   # independent replicates of each input, one call
        s = ood.score_images(enc, dec, x.repeat(reps, 1, 1, 1), n_samples=m, sigma2=lg.sigma2, seed=m)
        est = s.loglik.reshape(reps, len(x))
        mean, se = est.mean(0), est.std(0, ddof=1) / math.sqrt(reps)
        assert np.all(mean <= exact + 4 * se), f"M={m}: above the exact log-likelihood beyond noise"
        gaps[m] = float(np.mean(exact - mean))
    assert gaps[1] > 0.5 and gaps[1] > 5 * gaps[10] > 0.05, gaps   # a real gap that shrinks with M
    assert abs(gaps[3000]) < 0.01, gaps                            # converged to the exact value
    elbo = ood.score_images(enc, dec, x.repeat(300, 1, 1, 1), n_samples=1, sigma2=lg.sigma2).elbo
    assert np.all(elbo.reshape(300, len(x)).mean(0) < exact - 0.3)  # the ELBO sits below (KL(q || posterior))


def test_elbo_score_is_minus_rec_minus_kl_at_sigma2_one_half():
    lg = LinearGaussian(orthogonal=False)
    enc, dec = lg.nets(mean_shift=0.2)
    x, m, seed = lg.sample(4), 6, 3
    got = ood.score_images(enc, dec, x, n_samples=m, sigma2=0.5, seed=seed)
    mu, logvar = enc(x)
    eps = torch.randn((4, m, DZ), generator=torch.Generator().manual_seed(seed))
    z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * eps
    rec = torch.stack([L.reconstruction_error(x, dec(z[:, i])) for i in range(m)], 1)   # (4, m)
    expected = -(rec.mean(1) + L.kl_divergence(mu, logvar)) - D / 2 * math.log(math.pi)
    np.testing.assert_allclose(got.elbo, expected.double().numpy(), rtol=1e-5)


def test_seeded_and_reproducible():
    lg = LinearGaussian(orthogonal=False)
    enc, dec = lg.nets(mean_shift=0.3)
    x = lg.sample(5)
    a, b = (ood.score_images(enc, dec, x, n_samples=4, sigma2=0.3, seed=5) for _ in range(2))
    c = ood.score_images(enc, dec, x, n_samples=4, sigma2=0.3, seed=6)
    assert np.array_equal(a.loglik, b.loglik) and not np.array_equal(a.loglik, c.loglik)


def test_networks_are_scored_in_eval_mode_and_restored():
    class BNDec(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.bn = nn.Linear(DZ, D), nn.BatchNorm1d(D)

        def forward(self, z):
            return self.bn(self.lin(z)).reshape(len(z), *SHAPE)
    enc, dec = LinearGaussian().nets()[0], BNDec().train()
    before = dec.bn.running_mean.clone()
    ood.score_images(enc, dec, torch.rand(8, *SHAPE), n_samples=3)
    assert dec.training and torch.equal(dec.bn.running_mean, before)  # no BatchNorm update


def test_bits_per_dim():
    assert ood.bits_per_dim(-D * math.log(2), D) == pytest.approx(1.0)
    s = ood.ImageScores(np.array([-2.0 * D * math.log(2)]), np.array([0.0]), D)
    assert s.bits_per_dim().tolist() == pytest.approx([2.0])


def test_bad_estimator_arguments():
    enc, dec = LinearGaussian().nets()
    x = torch.rand(2, *SHAPE)
    with pytest.raises(ConfigError, match="sigma2"):
        ood.score_images(enc, dec, x, sigma2=0.0)
    with pytest.raises(ConfigError, match="n_samples"):
        ood.score_images(enc, dec, x, n_samples=0)
    with pytest.raises(DataError, match="same number of values"):
        ood.score_images(enc, nn.Sequential(nn.Linear(DZ, 25), nn.Unflatten(1, (1, 5, 5))), x)
    with pytest.raises(DataError, match="empty"):
        ood.score_images(enc, dec, torch.rand(0, *SHAPE))


# ------------------------------------------------------------------------------- AUROC

def test_auroc_known_answers():
    assert ood.auroc([1, 2, 3], [0.5, 2.5]) == pytest.approx(4 / 6)   # 4 of 6 pairs ordered right
    assert ood.auroc([1, 2], [1, 2]) == pytest.approx(0.5)            # ties count one half
    assert ood.auroc([5, 6, 7], [1, 2]) == 1.0 and ood.auroc([1, 2], [5, 6, 7]) == 0.0
    rng = np.random.default_rng(0)                                    # N(1,1) vs N(0,1): Phi(1/sqrt 2)
    got = ood.auroc(rng.normal(1, 1, 20000), rng.normal(0, 1, 20000))
    assert got == pytest.approx(0.5 * (1 + math.erf(0.5)), abs=0.006)


def test_auroc_rejects_empty_and_non_finite_scores():
    with pytest.raises(DataError, match="not finite"):
        ood.auroc([1.0, float("nan")], [0.0])
    with pytest.raises(DataError, match="both sides"):
        ood.auroc([], [0.0])


def test_histograms_share_bins_and_count_tails():
    rng = np.random.default_rng(1)
    h = ood.score_histograms({"a": rng.normal(0, 1, 1000), "b": np.r_[rng.normal(3, 1, 999), -1e6]}, bins=30)
    width = h["edges"][1] - h["edges"][0]
    assert len(h["edges"]) == 31 and h["edges"][0] > -10                # the far outlier does not set the range
    below, above = h["outside"]["b"]
    assert below >= 1
    assert (h["density"]["b"].sum() * width) == pytest.approx(1 - (below + above) / 1000)


# -------------------------------------------------------------- evaluation API and checks

def test_three_channel_ood_set_for_one_channel_model_is_rejected_with_one_message():
    enc, dec = LinearGaussian().nets()
    rgb = torch.rand(4, 3, 4, 4)
    with pytest.raises(DataError, match=r"'cifar' has images of 3x4x4 .* model takes 1x4x4; pass convert='auto'"):
        ood.evaluate_ood(enc, dec, torch.rand(4, *SHAPE), {"cifar": rgb}, n_samples=2)
    with pytest.raises(DataError, match="6x4 .* takes 1x4x4"):
        ood.prepare_images("big", torch.rand(2, 1, 6, 4), SHAPE)
    with pytest.raises(DataError, match="outside \\[0, 1\\]"):
        ood.prepare_images("raw", torch.rand(2, *SHAPE) * 255, SHAPE)
    with pytest.raises(DataError, match="N x C x H x W"):
        ood.prepare_images("flat", torch.rand(2, 16), SHAPE)
    with pytest.raises(ConfigError, match="unknown convert 'gray'"):
        ood.prepare_images("x", torch.rand(2, *SHAPE), SHAPE, convert="gray")


def test_documented_conversions():
    rgb = torch.rand(2, 3, 8, 8)
    gray = ood.prepare_images("rgb", rgb, (1, 8, 8), convert="auto")
    torch.testing.assert_close(gray[:, 0], 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2])
    back = ood.prepare_images("gray", gray, (3, 8, 8), convert="auto")
    assert torch.equal(back[:, 0], back[:, 2]) and back.shape == (2, 3, 8, 8)
    small = ood.prepare_images("rgb", torch.full((2, 3, 8, 8), 0.25), SHAPE, convert="auto")
    assert small.shape == (2, *SHAPE) and torch.allclose(small, torch.tensor(0.25))


def test_evaluate_ood_on_a_model_with_known_behaviour():
    # far-away noise gets low likelihood (AUROC ~ 1); the constant image at the model's mean b gets
    # a higher density than real samples (AUROC ~ 0), the Nalisnick et al. effect in miniature
    lg = LinearGaussian(sigma2=0.01, orthogonal=True, scale=0.05)
    enc, dec = lg.nets()
    test, train = lg.sample(300, seed=2).clamp(0, 1), lg.sample(300, seed=3).clamp(0, 1)
    sets = {"noise": torch.rand(300, *SHAPE), "flat": torch.full((300, *SHAPE), 0.5)}
    res = ood.evaluate_ood(enc, dec, test, sets, in_train=train, n_samples=8, sigma2=lg.sigma2, bins=20)
    assert res.auroc["noise"]["loglik"] > 0.99 and res.auroc["noise"]["elbo"] > 0.99
    assert res.auroc["flat"]["loglik"] < 0.01
    assert list(res.histograms["density"]) == ["train", "test", "noise", "flat"]
    assert set(res.mean_bits_per_dim()) == {"train", "test", "noise", "flat"}
    assert res.scores["test"].loglik.shape == (300,) and res.meta["n_samples"] == 8
    with pytest.raises(ConfigError, match="may not be named"):
        ood.evaluate_ood(enc, dec, test, {"test": test})


def test_table7_summary_metrics_and_markdown(tmp_path):
    import json
    rows = [dict(in_dist="mnist", ood="fashionmnist", method=m, seed=s, auroc_loglik=a, auroc_elbo=a - 0.01)
            for m, s, a in (("vae", 0, 0.90), ("vae", 1, 0.94), ("soft_intro_vae", 0, 0.99), ("soft_intro_vae", 1, 0.97))]
    rows.append(dict(in_dist="mnist", ood="folder:/mine", method="vae", seed=0, auroc_loglik=0.7, auroc_elbo=0.6))
    summary = ood.summarize_aurocs(rows)
    e = summary[("mnist", "fashionmnist")]["vae"]["auroc_loglik"]
    assert e["mean"] == pytest.approx(0.92) and e["std"] == pytest.approx(np.std([0.9, 0.94], ddof=1)) and e["n"] == 2
    text = ood.write_table7(summary, tmp_path / "m.json", tmp_path / "t.md", meta={"M": 5})
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["mnist->fashionmnist"]["soft_intro_vae"]["auroc_loglik"] == pytest.approx(0.98)
    assert metrics["mnist->folder:/mine"]["vae"]["auroc_elbo"] == pytest.approx(0.6)
    line = next(ln for ln in text.splitlines() if ln.startswith("| mnist | fashionmnist |"))
    assert "0.9200 ± 0.0283" in line and "0.992 ± 0.002" in line and "0.999 ± 0.0002" in line
    assert "not in the paper" in next(ln for ln in text.splitlines() if "folder:/mine" in ln)
    assert "M=5" in text and (tmp_path / "t.md").read_text() == text


# ------------------------------------------------------------------ study and notebook

def write_idx_dataset(root, folder, n_train, n_test, pattern, seed):
    """MNIST-format files (big-endian header: magic 2051 images / 2049 labels, raw uint8)."""
    import struct
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = pattern(rng, n)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + imgs.tobytes())
        labels = rng.integers(0, 10, n).astype(np.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def blobs(rng, n):      # "digits": a bright square on black
    x = np.zeros((n, 28, 28), np.uint8)
    for i, (r, c) in enumerate(rng.integers(4, 16, (n, 2))):
        x[i, r:r + 8, c:c + 8] = 255
    return x


def garments(rng, n):   # "clothes": mid-grey noise everywhere
    return rng.integers(60, 200, (n, 28, 28)).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_idx_dataset(root, "MNIST", 48, 24, blobs, 0)
    write_idx_dataset(root, "FashionMNIST", 48, 24, garments, 1)
    return root


def test_parse_pairs():
    from sivae.ood.study import parse_pairs
    assert parse_pairs("mnist,fashionmnist", "fashionmnist,mnist") == [("mnist", ["fashionmnist"]),
                                                                       ("fashionmnist", ["mnist"])]
    assert parse_pairs("mnist", "fashionmnist,folder:/x") == [("mnist", ["fashionmnist", "folder:/x"])]
    assert parse_pairs("cifar10,cifar10", "svhn,mnist+svhn") == [("cifar10", ["svhn", "mnist"])]
    with pytest.raises(ConfigError, match="one OOD entry per"):
        parse_pairs("mnist,fashionmnist", "svhn,cifar10,mnist")
    with pytest.raises(ConfigError, match="unknown ood dataset 'cifar'"):
        parse_pairs("mnist", "cifar")
    with pytest.raises(ConfigError, match="both the in-distribution and an OOD"):
        parse_pairs("mnist", "mnist")
    with pytest.raises(ConfigError, match="unknown in_dist dataset"):
        parse_pairs("folder:/x", "mnist")


def test_boolean_parameters_as_dvc_renders_them():
    from sivae.params import parse_bool
    assert parse_bool("f", "false") is False and parse_bool("f", "True") is True and parse_bool("f", False) is False
    with pytest.raises(ConfigError, match="f must be true or false, got 'yes please'"):
        parse_bool("f", "yes please")


def test_folder_ood_set_is_read_at_the_model_shape(tmp_path):
    from PIL import Image

    from sivae.ood.study import load_eval_set
    for i, size in enumerate(((40, 30), (64, 64), (17, 50))):
        Image.fromarray(np.full((size[1], size[0], 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    x = load_eval_set(f"folder:{tmp_path}", "test", data_root="data", paper_data_root="data", n_eval=2, seed=0,
                      shape=(1, 28, 28))
    assert x.shape == (2, 1, 28, 28) and 0 <= x.min() and x.max() <= 1


def test_missing_checkpoint_without_training_is_one_clear_error(tiny_data, tmp_path):
    from sivae.errors import CheckpointError
    from sivae.ood.config import OodConfig
    from sivae.ood.study import find_or_train_model
    cfg = OodConfig(ckpt_dir=tmp_path, own_ckpt_dir=tmp_path / "own", train_missing=False, data_root=tiny_data,
                    paper_data_root=tiny_data, device="cpu")
    with pytest.raises(CheckpointError, match="no checkpoint .*mnist_vae_seed3.*train_missing True"):
        find_or_train_model(cfg, "mnist", "vae", 3)
    assert not (tmp_path / "own").exists()


def test_notebook_at_tiny_profile(tiny_data, tmp_path):
    """Notebook 06 end to end: one model from an "image stage" checkpoint, the rest trained by it."""
    import json

    from nbutil import ROOT, run_notebook

    from sivae.images.data import load_image_dataset
    from sivae.images.models import arch_for
    from sivae.images.training import run_name, train_image_model
    ckpt = tmp_path / "images_ckpt"
    data = load_image_dataset("mnist", "train", tiny_data)
    train_image_model(data, arch_for("mnist", channels="4,8", z_dim=4), "vae", 0, epochs=1, batch_size=16,
                      ckpt_dir=ckpt / run_name("mnist", "vae", 0), device="cpu", progress=False)
    out = {k: tmp_path / v for k, v in dict(fig_dir="fig", metrics_path="m.json", table_path="t7.md",
                                            scores_path="s.npz", run_info_path="ri.json",
                                            own_ckpt_dir="own").items()}
    res = run_notebook(ROOT / "notebooks" / "06_ood.py", tmp_path / "06.ipynb", {
        "data_root": tiny_data, "ckpt_dir": ckpt, "device": "auto", "n_seeds": 1, "n_importance": 3, "n_eval": 16,
        "train_epochs": 1, "train_batch_size": 16, "train_channels": "4,8", "bins": 10, "near_n_eval": 8,
        "heldout_n_train": 32, "bg_n_train": 32, "bg_channels": "4,4", "bg_batch_size": 16, "regret_steps": 2,
        "regret_n_eval": 2, "beyond_table_path": tmp_path / "beyond.md", **out})
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads(out["metrics_path"].read_text())
    assert set(metrics) == {"mnist->fashionmnist", "fashionmnist->mnist", "beyond"}
    assert 0 <= metrics["mnist->fashionmnist"]["soft_intro_vae"]["auroc_loglik"] <= 1
    assert "| mnist | fashionmnist |" in out["table_path"].read_text()
    figs = sorted(p.name for p in out["fig_dir"].glob("*.png"))
    assert figs[-2:] == ["figure8_fashionmnist.png", "figure8_mnist.png"] and figs[0].startswith("beyond_"), figs
    # beyond the paper: every pair x score x model in the metrics and the table
    beyond = metrics["beyond"]
    assert {"mnist->blur:mnist:1.0", "mnist->noise", "fashionmnist->constant",
            "fashionmnist_without_9->heldout:fashionmnist:9", "mnist->fashionmnist"} <= set(beyond)
    assert beyond["mnist->blur:mnist:1.0"]["kind"] == "near" and beyond["mnist->noise"]["kind"] == "far"
    for s in ("loglik", "complexity", "ratio", "regret", "typicality"):
        e = beyond["fashionmnist_without_9->heldout:fashionmnist:9"]["soft_intro_vae"]
        assert 0 <= e[f"auroc_{s}"] <= 1 and 0 <= e[f"fpr95_{s}"] <= 1 and f"auroc_{s}_std" in e
    assert "| mnist | blur:mnist:1.0 | near | likelihood regret |" in (tmp_path / "beyond.md").read_text()
    used = json.loads(out["run_info_path"].read_text())["checkpoints"]
    assert str(ckpt / "mnist_vae_seed0" / "last.pt") in used                # the "image stage" model was used
    assert sum(str(out["own_ckpt_dir"]) in u for u in used) == 3             # the other three were trained
    assert len(np.load(out["scores_path"]).files) == 4 * 3 * 2               # 4 models x 3 sets x 2 scores


def test_keep_freed_memory_changes_no_value():
    """The allocator setting is idempotent and score_images gives the same numbers with or without it."""
    import subprocess
    import sys
    code = ("import torch; from sivae.runtime import keep_freed_memory; from sivae.images.models import arch_for, "
            "build_image_pair; from sivae.ood.metrics import score_images\n"
            "enc, dec = build_image_pair(arch_for('mnist', channels='4,8', z_dim=4), seed=0)\n"
            "x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))\n"
            "a = score_images(enc, dec, x, n_samples=5, chunk_size=7, device='cpu', keep_memory=False)\n"
            "b = score_images(enc, dec, x, n_samples=5, chunk_size=7, device='cpu')\n"
            "assert (a.loglik == b.loglik).all() and (a.elbo == b.elbo).all()\n"
            "first = keep_freed_memory(); assert keep_freed_memory() is first and isinstance(first, bool)\n"
            "print(first)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)  # own process: it is global
    assert out.returncode == 0, out.stderr
    if sys.platform.startswith("linux"):
        assert out.stdout.strip() == "True"


def test_released_models_are_scored_beside_the_trained_ones(tmp_path):
    from nbutil import write_tiny_idx

    from sivae.images.data import load_image_dataset
    from sivae.images.models import arch_for
    from sivae.images.study import RELEASED_KEY
    from sivae.images.training import train_image_model
    from sivae.ood.config import OodConfig
    from sivae.ood.metrics import summarize_aurocs, write_table7
    from sivae.ood.study import aurocs_rows, run_ood_study
    from sivae.paper import IMAGE_METHOD_TITLES
    for name in ("mnist", "fashionmnist"):
        write_tiny_idx(tmp_path / "data", name, n_train=48, n_test=40)
    given = train_image_model(load_image_dataset("mnist", "train", tmp_path / "data"),
                              arch_for("mnist", channels="4,4", z_dim=8), "soft_intro_vae", 5, epochs=0.5,
                              batch_size=16, device="cpu", progress=False)
    notes = []
    cfg = OodConfig(in_dist="mnist", ood="fashionmnist", methods="vae", n_seeds=1, data_root=tmp_path / "data",
                    paper_data_root=tmp_path, ckpt_dir=tmp_path / "ck", own_ckpt_dir=tmp_path / "own",
                    train_epochs=0.5, train_batch_size=16, train_channels="4,4", n_eval=16, n_importance=2,
                    chunk_size=64, bins=10, device="cpu")
    runs = run_ood_study(cfg, log=notes.append, released={("mnist", RELEASED_KEY, 0): given,
                                                           ("cifar10", RELEASED_KEY, 0): given})
    assert [(r.in_dist, r.method) for r in runs] == [("mnist", "vae"), ("mnist", RELEASED_KEY)]
    assert any("cifar10 not scored" in n for n in notes)
    table = write_table7(summarize_aurocs(aurocs_rows(runs)), tmp_path / "m.json", tmp_path / "t.md",
                         titles=IMAGE_METHOD_TITLES)
    assert "Soft-IntroVAE (authors' weights) IW log-lik." in table and "VAE IW log-lik." in table
    with pytest.raises(ConfigError, match="released must map"):
        run_ood_study(cfg, log=notes.append, released={"mnist": given})
    with pytest.raises(ConfigError, match="run_ood_study takes an OodConfig"):
        run_ood_study(cfg.as_params())
