"""FID protocols ("paper" vs "authors_code"), k-NN precision/recall and the offline Inception fallback.

A small seeded conv net with BatchNorm stands in for Inception; all CPU, no network."""
import time

import numpy as np
import pytest
import torch
from torch import nn

from sivae.images import metrics as M

# few samples in many feature dimensions give singular covariances; that is not what is tested here
pytestmark = pytest.mark.filterwarnings("ignore:Matrix is singular")


def small_net(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten())
    with torch.no_grad():  # non-trivial running stats, so eval and train modes really differ
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    return net.eval()


def images(n=120, seed=1):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def snapshot(net):
    return {k: v.clone() for k, v in net.state_dict().items()}, [m.training for m in net.modules()]


def same_state(a, b):
    (sa, fa), (sb, fb) = a, b
    return fa == fb and sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_paper_protocol_is_eval_mode():
    net, x = small_net(), images()
    with torch.no_grad():
        expected = net.eval()(x)
    got = M.network_features(net, x, protocol="paper", generated=False)
    assert torch.allclose(got, expected, atol=1e-6)
    # generated images are not quantized under "paper"
    assert torch.allclose(M.network_features(net, x, protocol="paper", generated=True), expected, atol=1e-6)


def test_authors_code_uses_train_mode_batches_of_50_and_differs_from_paper():
    net, x = small_net(), images(120)
    ref = small_net()  # an identical copy for the hand computation
    paper = M.network_features(net, x, protocol="paper")
    authors = M.network_features(net, x, protocol="authors_code", generated=False)
    assert authors.shape == paper.shape
    assert not torch.allclose(authors, paper, atol=1e-3)
    ref.train()
    with torch.no_grad():
        hand = torch.cat([ref(xb) for xb in x.split(50)])  # 50, 50, 20
    assert torch.allclose(authors, hand, atol=1e-6)
    with torch.no_grad():  # batch size matters in train mode: one batch of 120 differs
        assert not torch.allclose(authors, ref(x), atol=1e-4)


def test_authors_code_restores_state_and_training_flag():
    for start_training in (False, True):
        net = small_net().train(start_training)
        before = snapshot(net)
        M.network_features(net, images(), protocol="authors_code", generated=True)
        assert same_state(before, snapshot(net))
        assert net.training is start_training
    # and the restored net gives the same "paper" features as a fresh one
    net = small_net()
    M.network_features(net, images(), protocol="authors_code")
    assert torch.equal(M.network_features(net, images(7), protocol="paper"),
                       M.network_features(small_net(), images(7), protocol="paper"))


def test_state_restored_even_when_the_forward_fails():
    net = small_net()
    before = snapshot(net)
    with pytest.raises(RuntimeError):
        M.network_features(net, torch.rand(60, 3, 8, 8), protocol="authors_code")  # wrong channel count
    assert same_state(before, snapshot(net))


def test_authors_code_truncates_generated_images_only():
    x = torch.tensor([0.5, 0.999 / 255 * 3, 1.3, -0.2, 1.0, 127.9 / 255]).reshape(1, 1, 2, 3)
    q = M.quantize_generated(x).flatten()
    assert torch.allclose(q, torch.tensor([127, 2, 255, 0, 255, 127]) / 255.0)
    assert not torch.isclose(q[0], torch.tensor(128 / 255.0))

    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(x.clone())
            return x.flatten(1)

    x = torch.full((2, 1, 2, 2), 0.5)
    M.network_features(Spy(), x, protocol="authors_code", generated=True)
    M.network_features(Spy(), x, protocol="authors_code", generated=False)
    assert torch.allclose(seen[0], torch.full_like(x, 127 / 255))
    assert torch.equal(seen[1], x)  # reference images untouched


def test_unknown_protocol_raises():
    with pytest.raises(ValueError, match=r"'nope'.*'paper'.*'authors_code'"):
        M.network_features(small_net(), images(), protocol="nope")
    with pytest.raises(ValueError, match="nope"):
        M.inception_extractor("cpu", protocol="nope")
    with pytest.raises(ValueError, match="nope"):
        M.frechet_score(images(), images(2), use_inception=False, classifier=M.FeatureClassifier(),
                        protocol="nope", log=lambda m: None)
    assert M.FID_PROTOCOLS == ("paper", "authors_code")


def test_frechet_distance_identical_and_shifted():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 5))
    assert M.frechet_distance(*M.gaussian_stats(x), *M.gaussian_stats(x)) == pytest.approx(0, abs=1e-6)
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    fd = M.frechet_distance(*M.gaussian_stats(x), *M.gaussian_stats(x + shift))
    assert fd == pytest.approx(float(shift @ shift), rel=1e-6)


def test_precision_recall_identical_and_disjoint():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    assert M.precision_recall(x, x, k=3) == (1.0, 1.0)
    assert M.precision_recall(torch.tensor(x), torch.tensor(x + 1000.0), k=3) == (0.0, 0.0)


def test_precision_recall_half_the_modes():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [50.0, 0.0]])
    real = np.concatenate([c + rng.normal(size=(1000, 2)) for c in centres])
    fake = centres[0] + rng.normal(size=(1000, 2))  # covers mode 0 only
    p, r = M.precision_recall(real, fake, k=3)
    assert p > 0.95
    assert 0.45 < r <= 0.5


def test_precision_recall_bad_inputs():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="2-D"):
        M.precision_recall(np.zeros(10), x)
    with pytest.raises(ValueError, match="feature dimension"):
        M.precision_recall(x, np.zeros((10, 4)))
    with pytest.raises(ValueError, match="more than k=3 rows"):
        M.precision_recall(x, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="k must be"):
        M.precision_recall(x, x, k=0)


@pytest.mark.slow
def test_missing_inception_weights_gives_the_file_and_falls_back(tmp_path, monkeypatch):
    pytest.importorskip("pytorch_fid")
    import pytorch_fid.inception as pi

    def no_download(*a, **k):
        raise AssertionError("a download was attempted")
    monkeypatch.setattr(pi, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    t = time.perf_counter()
    fn, reason = M.inception_extractor("cpu")
    assert time.perf_counter() - t < 2
    assert fn is None
    assert "pt_inception-2015-12-05-6726825d.pth" in reason
    assert str(tmp_path / "checkpoints") in reason
    assert ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth") in reason

    torch.manual_seed(0)
    clf, logs = M.FeatureClassifier(1).eval(), []
    for protocol in M.FID_PROTOCOLS:
        out = M.frechet_score(images(40), images(40, seed=2), clf, use_inception=True, log=logs.append,
                              protocol=protocol)
        assert out["kind"] == M.FD_KIND
        assert out["protocol"].startswith("not applicable") and repr(protocol) in out["protocol"]
        assert "pt_inception-2015-12-05-6726825d.pth" in out["note"]
        assert np.isfinite(out["value"])
    assert len(logs) == 2 and all("FID unavailable" in m and M.FD_KIND in m for m in logs)


def test_frechet_score_with_a_network_extractor_for_both_protocols():
    net = small_net()
    before = snapshot(net)
    gen, ref = images(100, seed=3), images(100, seed=4)
    inception = (M.network_extractor(net), None)
    out = {p: M.frechet_score(gen, ref, inception=inception, protocol=p, log=lambda m: None,
                              precision_recall_k=3) for p in M.FID_PROTOCOLS}
    for p, o in out.items():
        assert o["kind"] == M.FID_KIND and o["protocol"] == p
        assert 0 <= o["precision"] <= 1 and 0 <= o["recall"] <= 1
    assert out["paper"]["value"] != pytest.approx(out["authors_code"]["value"], rel=1e-3)
    assert same_state(before, snapshot(net))
    # "paper" through frechet_score equals the plain eval-mode computation
    with torch.no_grad():
        f_gen, f_ref = net(gen).double().numpy(), net(ref).double().numpy()
    expected = M.frechet_distance(*M.gaussian_stats(f_gen), *M.gaussian_stats(f_ref))
    assert out["paper"]["value"] == pytest.approx(expected, rel=1e-6)
    assert "precision" not in M.frechet_score(gen, ref, inception=inception, log=lambda m: None)


def test_plain_callable_keeps_working_for_paper_and_refuses_authors_code():
    net = small_net()
    plain = (lambda x: net(x), None)
    gen, ref = images(60, seed=5), images(60, seed=6)
    out = M.frechet_score(gen, ref, inception=plain, log=lambda m: None)
    assert out["kind"] == M.FID_KIND and out["protocol"] == "paper"
    with pytest.raises(ValueError, match="protocol-aware"):
        M.frechet_score(gen, ref, inception=plain, protocol="authors_code", log=lambda m: None)


@pytest.mark.slow
def test_score_models_reports_both_protocols_and_precision_recall(tmp_path, monkeypatch):
    import json

    from nbutil import write_tiny_idx

    from sivae.errors import ConfigError
    from sivae.images import study
    from sivae.images.data import load_image_dataset
    from sivae.images.models import arch_for
    from sivae.images.training import train_image_model
    write_tiny_idx(tmp_path / "data", "mnist", n_train=48, n_test=40)
    data = load_image_dataset("mnist", "train", tmp_path / "data")
    model = train_image_model(data, arch_for("mnist", channels="4,4", z_dim=8), "vae", 0, epochs=0.5, batch_size=16,
                              device="cpu", progress=False)
    net = small_net()
    monkeypatch.setattr(M, "inception_extractor",
                        lambda device="cpu", protocol="paper": (M.network_extractor(net, protocol=protocol), None))
    cfg = study.ImagesConfig(data_root=tmp_path / "data", paper_data_root=tmp_path, n_fd_samples=40,
                             classifier_dir=tmp_path / "clf", classifier_epochs=0, use_inception=True, seed=0,
                             device="cpu", fid_protocols="paper,authors_code", precision_recall_k=3)
    scores = study.score_models({("mnist", "vae", 0): model}, cfg, log=lambda m: None)
    r = scores["runs"][("mnist", "vae", 0)]
    assert r["kind"] == M.FID_KIND and r["protocol"] == "paper"
    assert r["value"] != pytest.approx(r["value_authors_code"], rel=1e-3)
    assert 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1
    table = study.write_image_tables(study.summarize_scores(scores), scores["classifiers"], tmp_path / "m.json",
                                     tmp_path / "t.md")
    met = json.loads((tmp_path / "m.json").read_text())["mnist"]["vae"]
    assert met["fid"] == pytest.approx(r["value"], abs=1e-4)
    assert met["fid_authors_code"] == pytest.approx(r["value_authors_code"], abs=1e-4)
    assert "FID (paper protocol)" in table and "authors_code: " in table
    # the authors' protocol first: it becomes the score, labelled as such
    swapped = study.score_models({("mnist", "vae", 0): model}, cfg.replace(fid_protocols="authors_code,paper"),
                                 log=lambda m: None)
    s = swapped["runs"][("mnist", "vae", 0)]
    assert s["protocol"] == "authors_code" and s["value"] == pytest.approx(r["value_authors_code"])
    with pytest.raises(ConfigError, match="fid_protocols"):
        cfg.replace(fid_protocols="paper,bogus")
