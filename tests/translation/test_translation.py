"""Section 6.4: two-encoder architecture, procedural data, Cars3D/KTH loaders, metrics, training glue."""
import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sivae import ConfigError, DataError
from sivae.checkpoints import load_checkpoint
from sivae.losses import kl_divergence
from sivae.paper import METHOD_TITLES
from sivae.translation import data as D
from sivae.translation import metrics as M
from sivae.translation import models as A
from sivae.translation import study as S
from sivae.translation.perceptual import FeatureTarget, PerceptualDecoder, resolve_rec_loss
from sivae.translation.render import BACKGROUND, N_AZIMUTH, N_ELEVATION, render_identities, sample_identities

TINY = A.ArchConfig(enc_channels=(4, 8), dec_channels=(8, 8, 4, 4), dec_hidden=4, fc_hidden=16,
                    class_dim=6, content_dim=5)


def tiny_cfg(ckpt_dir, **changes) -> S.TranslationConfig:
    """The stage's config with the TINY architecture, MSE on the CPU, checkpoints under ckpt_dir."""
    return S.TranslationConfig(enc_channels=TINY.enc_channels, dec_channels=TINY.dec_channels, dec_hidden=4,
                               fc_hidden=16, class_dim=6, content_dim=5, rec_loss="mse", device="cpu",
                               ckpt_dir=str(ckpt_dir), **changes)


@pytest.fixture(scope="module")
def procedural():
    return D.make_procedural(3, 2, seed=7)


# ------------------------------------------------------------------ architecture

def test_shapes_and_code_layout():
    enc, dec = A.build_translation_pair(A.ArchConfig(enc_channels=(8, 8, 16, 16), dec_channels=(16, 8, 8, 4),
                                                     dec_hidden=4), seed=0)
    x = torch.rand(5, 3, 64, 64)
    mu, logvar = enc(x)
    assert mu.shape == logvar.shape == (5, 256 + 128) and dec.z_dim == 384
    out = dec(torch.randn(5, 384))
    assert out.shape == (5, 3, 64, 64) and 0 <= out.min() and out.max() <= 1
    (mu_c, _), (mu_s, _) = enc.encode(x)
    assert torch.equal(mu[:, :256], mu_c) and torch.equal(mu[:, 256:], mu_s)
    # flat inputs (the perceptual wrapper's [pixels ; features]) read the pixels only
    flat = torch.cat([x.flatten(1), torch.randn(5, 7)], 1)
    assert torch.equal(enc(flat)[0], mu)
    gray_enc, gray_dec = A.build_translation_pair(A.ArchConfig(in_channels=1, enc_channels=(4,), dec_channels=(4,) * 4,
                                                               dec_hidden=4, class_dim=3, content_dim=2))
    assert gray_enc(torch.rand(2, 1, 64, 64))[0].shape == (2, 5) and gray_dec(torch.randn(2, 5)).shape == (2, 1, 64, 64)


def test_class_code_modulates_the_decoder_through_adain_only():
    _, dec = A.build_translation_pair(TINY, seed=1)
    g = torch.Generator().manual_seed(0)
    zc, zc2, zs, zs2 = (torch.randn(4, d, generator=g) for d in (6, 6, 5, 5))
    base = dec.transfer(zc, zs)
    assert (dec.transfer(zc2, zs) - base).abs().mean() > 1e-3     # class code changes the output
    assert (dec.transfer(zc, zs2) - base).abs().mean() > 1e-3     # so does the content code
    with torch.no_grad():                                          # AdaIN off: the class code has no path left
        for adain in dec.net.adains:
            adain.style.weight.zero_()
    assert torch.equal(dec.transfer(zc, zs), dec.transfer(zc2, zs))


def test_two_kl_terms_each_reach_only_their_encoder():
    enc, _ = A.build_translation_pair(TINY, seed=2)
    x = torch.rand(3, 3, 64, 64)
    mu, logvar = enc(x)
    (mu_c, lv_c), (mu_s, lv_s) = enc.encode(x)
    total = kl_divergence(mu, logvar)
    torch.testing.assert_close(total, kl_divergence(mu_c, lv_c) + kl_divergence(mu_s, lv_s))
    kl_divergence(mu[:, :TINY.class_dim], logvar[:, :TINY.class_dim]).sum().backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in enc.content_enc.parameters())
    assert sum(p.grad.abs().sum() for p in enc.class_enc.parameters() if p.grad is not None) > 0


def test_upsample_equals_nearest_interpolation():
    h = torch.randn(2, 3, 4, 5)
    assert torch.equal(A.upsample2x(h), F.interpolate(h, scale_factor=2, mode="nearest"))


def test_bad_architecture_settings():
    with pytest.raises(ConfigError, match="dec_channels needs 4"):
        A.ArchConfig(dec_channels=(8, 8))


# ------------------------------------------------------------- procedural data

def test_procedural_is_deterministic_and_truth_renders_exactly(procedural):
    again = D.make_procedural(3, 2, seed=7)
    assert torch.equal(again.train, procedural.train) and torch.equal(again.test, procedural.test)
    assert not torch.equal(render_identities(sample_identities(1, 8))[0], procedural.train[:96])
    assert procedural.train.shape == (3 * 96, 3, 64, 64) and procedural.test.shape == (2 * 96, 3, 64, 64)
    lookup = procedural.lookup("test")
    cls, con = torch.tensor([3, 4, 4]), torch.tensor([0, 17, 95])
    truth = D.render_truth(procedural, cls, con)
    assert torch.equal(truth, procedural.test[[lookup[(int(a), int(b))] for a, b in zip(cls, con)]])


def test_procedural_factors_are_recoverable(procedural):
    imgs = torch.cat([procedural.train, procedural.test]).float()          # (5 identities x 96 poses, 3, 64, 64)
    # every (identity, pose) gives its own image, so the factors are a function of the image
    assert len(torch.unique(imgs.flatten(1), dim=0)) == len(imgs)
    # azimuth: the nearest image of the same car one elevation step higher has the same azimuth
    per = imgs.reshape(5, N_AZIMUTH, N_ELEVATION, -1)
    hits = torch.stack([(torch.cdist(per[i, :, e], per[i, :, e + 1]).argmin(1) == torch.arange(N_AZIMUTH)).float()
                        for i in range(5) for e in range(N_ELEVATION - 1)]).mean()
    assert hits > 0.9                                                      # chance: 1/24
    # identity: the mean colour of the car's pixels is nearest to its own identity's average
    car = (imgs - BACKGROUND * 255).abs().sum(1, keepdim=True).gt(6).float()
    colour = (imgs * car).sum((2, 3)) / car.sum((2, 3))                    # (480, 3)
    ids = torch.arange(5).repeat_interleave(96)
    centres = torch.stack([colour[ids == i].mean(0) for i in range(5)])
    assert (torch.cdist(colour, centres).argmin(1) == ids).float().mean() > 0.75  # chance: 1/5


def test_render_poses_differ_and_one_view_is_cheap():
    ident = sample_identities(1, 0)
    a = render_identities(ident * 2, azimuths=[0, 12], elevations=[0, 0])
    assert a.shape == (2, 3, 64, 64) and not torch.equal(a[0], a[1])  # front and back differ (headlights)


# ------------------------------------------------------------------ Cars3D / KTH

def write_car(path, value=0, shape=(16, 16, 3, N_AZIMUTH, N_ELEVATION), key="im"):
    from scipy.io import savemat
    im = np.zeros(shape, np.uint8)
    for a in range(shape[3]):
        for e in range(shape[4]):
            im[:, :, :, a, e] = value + 4 * a + e                 # each view a flat, known grey level
    savemat(path, {key: im})


def test_cars3d_loader_reads_the_mat_layout(tmp_path):
    for i in range(3):
        write_car(tmp_path / f"car_{i:03d}_mesh.mat", value=100 * i // 2)
    data = D.load_cars3d(tmp_path, n_test_classes=1)
    assert data.train.shape == (2 * 96, 3, 64, 64) and data.test.shape == (96, 3, 64, 64)
    assert data.train_class.tolist() == [0] * 96 + [1] * 96 and set(data.test_class.tolist()) == {2}
    k = data.lookup("train")[(1, 7 * 4 + 2)]                        # car 1, azimuth 7, elevation 2
    assert torch.all(data.train[k] == 50 + 4 * 7 + 2)
    assert data.has_truth and data.n_content == 96


@pytest.mark.parametrize("kind, message", [
    ("garbage", "not a readable .mat file"), ("key", "has no variable 'im'"), ("shape", "expected \\(H, W, 3, 24, 4\\)")])
def test_cars3d_malformed_files_fail_clearly(tmp_path, kind, message):
    for i in range(2):
        write_car(tmp_path / f"car_{i}_mesh.mat")
    bad = tmp_path / "car_9_mesh.mat"
    if kind == "garbage":
        bad.write_bytes(b"this is not MATLAB")
    else:
        write_car(bad, key="images" if kind == "key" else "im",
                  shape=(16, 16, 3, 12, N_ELEVATION) if kind == "shape" else (16, 16, 3, N_AZIMUTH, N_ELEVATION))
    with pytest.raises(DataError, match=message):
        D.load_cars3d(tmp_path, n_test_classes=1)


def write_frames(root, persons=(1, 2), n=10):
    from PIL import Image
    for p in persons:
        folder = root / f"person{p:02d}_walking_d1"
        folder.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((120, 160, 3), 20 * p + i, np.uint8)).save(folder / f"{i:04d}.png")


def test_kth_loader_reads_grayscale_frames_per_person(tmp_path):
    write_frames(tmp_path)
    data = D.load_kth(tmp_path, test_fraction=0.2, seed=0)
    assert data.channels == 1 and data.train.shape[1:] == (1, 64, 64)
    assert len(data.train) == 16 and len(data.test) == 4 and sorted(data.test_class.tolist()) == [1, 1, 2, 2]
    assert data.train_content is None and not data.has_truth
    # a frame of person 2 is the grey level 40 + i, resized
    assert set(data.train[data.train_class == 2].flatten().tolist()) <= set(range(40, 50))


def test_kth_malformed_inputs_fail_clearly(tmp_path):
    write_frames(tmp_path)
    (tmp_path / "person01_walking_d1" / "0099.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="0099.png is not a readable image"):
        D.load_kth(tmp_path)
    (tmp_path / "person01_walking_d1" / "0099.png").unlink()
    (tmp_path / "extra").mkdir()
    (tmp_path / "person01_walking_d1" / "0000.png").rename(tmp_path / "extra" / "0000.png")
    with pytest.raises(DataError, match="has no personNN in its path"):
        D.load_kth(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        D.load_kth(tmp_path / "missing")


def test_dataset_names_and_roots_are_checked():
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'; choose one of: cars3d, kth, procedural"):
        D.get_translation_data("mnist")
    with pytest.raises(ConfigError, match="needs data_root"):
        D.get_translation_data("cars3d")


def test_batch_fn_is_a_function_of_the_step(procedural):
    fn = D.make_batch_fn(procedural.train, 32, seed=3)
    assert torch.equal(fn(5, None), D.make_batch_fn(procedural.train, 32, seed=3)(5, torch.Generator()))
    epoch = torch.cat([fn(s, None) for s in range(len(procedural.train) // 32)])
    assert len(torch.unique(epoch.flatten(1), dim=0)) == len(epoch)  # no image twice within an epoch
    with pytest.raises(ConfigError, match="fewer than one batch"):
        D.make_batch_fn(procedural.train[:10], 32, 0)


# ----------------------------------------------------------------------- metrics

def test_ssim_identity_and_degradation():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g)
    torch.testing.assert_close(M.ssim(x, x), torch.ones(2))
    noisy = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    very = (x + 0.4 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert (M.ssim(x, very) < M.ssim(x, noisy)).all() and (M.ssim(x, noisy) < 0.99).all()


def test_probe_finds_information_and_not_noise():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(6).repeat(40)
    informative = F.one_hot(labels).float() * 5 + torch.randn(240, 6, generator=g)
    assert M.probe_accuracy(informative, labels, seed=0) > 0.9
    assert M.probe_accuracy(torch.randn(240, 6, generator=g), labels, seed=0) < 0.4


def test_transfer_pairs_cross_classes():
    classes = torch.tensor([0] * 5 + [1] * 5 + [2] * 5)
    a, b = M.transfer_pairs(classes, 50, seed=0)
    assert len(a) == 50 and (classes[a] != classes[b]).all()


def test_reference_scores_are_exact_for_the_right_answer(procedural):
    ref = M.reference_scores(procedural, "test", 40, seed=1)
    assert ref["copy_class_source"]["mse"] > 0 and ref["copy_content_source"]["ssim"] < 1


def test_no_lpips_here_is_reported_not_silent(monkeypatch):
    monkeypatch.setattr(M.importlib.util, "find_spec", lambda name: None)
    fn, note = M.load_lpips("cpu")
    assert fn is None and "LPIPS not measured" in note


# ------------------------------------------------------- losses and training glue

def test_vgg_without_weights_falls_back_loudly(tmp_path):
    with pytest.warns(UserWarning, match="NOT the VGG perceptual loss"):
        kind, extractor, note = resolve_rec_loss("auto", str(tmp_path / "none.pth"))
    assert kind == "mse" and extractor is None and "no pretrained VGG16 weights" in note
    with pytest.raises(DataError, match=r"rec_loss='vgg' needs .*none\.pth does not exist"):   # #31: asked for by name
        resolve_rec_loss("vgg", str(tmp_path / "none.pth"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_rec_loss("mse")[0] == "mse"
    with pytest.raises(ConfigError, match="unknown rec_loss 'l1'"):
        resolve_rec_loss("l1")


def test_perceptual_wrapper_appends_features_and_keeps_vgg_out_of_the_checkpoint():
    feats = torch.nn.Conv2d(3, 2, 3, stride=2, padding=1).requires_grad_(False)
    target = FeatureTarget(feats, (3, 64, 64), vgg_weight=1.0)
    _, dec = A.build_translation_pair(TINY, seed=0)
    wrapped = PerceptualDecoder(dec, target)
    out = wrapped(torch.randn(2, TINY.z_dim))
    assert out.shape == (2, 3 * 64 * 64 + 2 * 32 * 32)
    assert set(wrapped.state_dict()) == {f"inner.{k}" for k in dec.state_dict()}


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="beta_kl must be a finite non-negative number"):
        S.TranslationConfig(beta_kl=-1)
    with pytest.raises(ConfigError, match="unknown method 'gan'"):
        S.TranslationConfig(methods="vae,gan")
    assert S.n_iterations(100, S.TranslationConfig(n_epochs=2.5, batch_size=32)) == 8


def test_from_params_builds_the_stage_config_and_its_datasets():
    from sivae.stage import stage_parameters
    p, _ = stage_parameters("translation", overrides={"n_classes": 4, "n_test_classes": 2, "n_epochs": 0.5})
    cfg = S.TranslationConfig.from_params(p, seed=3)
    assert (cfg.n_epochs, cfg.seeds, cfg.beta_neg) == (0.5, [3, 4], float(p["beta_neg"]))
    arch = cfg.arch
    assert arch.enc_channels == tuple(int(c) for c in p["enc_channels"].split(",")) and arch.class_dim == p["class_dim"]
    datas = S.build_datas(cfg)
    assert set(datas) == {3, 4} and len(datas[3].train_class.unique()) == 4
    assert cfg.for_seed(4, "elsewhere") == cfg.replace(seed=4, n_seeds=1, ckpt_dir="elsewhere")


def test_training_logs_both_kls_and_resumes_exactly(tmp_path, monkeypatch, procedural):
    data = procedural
    cfg = tiny_cfg(tmp_path / "a", n_epochs=4 * 16 / len(data.train), batch_size=16, beta_neg=10.0, kl_every=2)
    runs, note = S.train_translation(data, cfg, progress=False)
    assert note.startswith("reconstruction loss: pixel MSE") and runs["soft_intro_vae"].n_iter == 4
    curve = runs["soft_intro_vae"].kl_curve
    assert curve["step"] == [0, 2, 4] and all(v > 0 for v in curve["kl_class"] + curve["kl_content"])
    assert json.loads((tmp_path / "a" / "vae_mse" / "code_kl.json").read_text()).keys() == {"0", "2", "4"}
    # killed before step 2, then resumed: the same weights and KL records as the uninterrupted run
    real = S.make_batch_fn

    def killed_at_step_2(images, batch_size, seed):
        fn = real(images, batch_size, seed)
        return lambda step, g: (_ for _ in ()).throw(KeyboardInterrupt) if step == 2 else fn(step, g)
    monkeypatch.setattr(S, "make_batch_fn", killed_at_step_2)
    other = cfg.replace(methods="soft_intro_vae", ckpt_dir=str(tmp_path / "b"))
    with pytest.raises(KeyboardInterrupt):
        S.train_translation(data, other, progress=False)
    assert load_checkpoint(tmp_path / "b" / "soft_intro_vae_mse" / "last.pt")["step"] == 2
    monkeypatch.setattr(S, "make_batch_fn", real)
    resumed, _ = S.train_translation(data, other, progress=False)
    for p, q in zip(runs["soft_intro_vae"].encoder.parameters(), resumed["soft_intro_vae"].encoder.parameters()):
        assert torch.equal(p, q)
    assert resumed["soft_intro_vae"].kl_curve == curve
    # lr_milestones reach each run's Trainer: the decayed run's checkpoint records them and ends at lr x 0.1
    decayed = cfg.replace(methods="soft_intro_vae", ckpt_dir=str(tmp_path / "d"), lr_milestones="0.5")
    S.train_translation(data, decayed, progress=False)
    state = load_checkpoint(tmp_path / "d" / "soft_intro_vae_mse" / "last.pt")
    assert state["config"]["lr_milestones"] == [0.5]
    assert [g["lr"] for g in state["opt_e"]["param_groups"]] == pytest.approx([cfg.lr * 0.1])


def test_training_takes_the_checked_config_and_data_it_fits(tmp_path, procedural):
    """What the config cannot know is named before any training or file: the data's size and channels."""
    cfg = tiny_cfg(tmp_path / "c", n_epochs=0.1, batch_size=16)
    for bad, match in ((cfg.replace(batch_size=1000), "batch_size 1000 is larger than the 288 training images"),
                       (cfg.replace(dataset="kth", data_root=str(tmp_path)), r"expects 1 channel\(s\)")):
        with pytest.raises(ConfigError, match=match):
            S.train_translation(procedural, bad, progress=False)
    with pytest.raises(ConfigError, match="cfg must be a TranslationConfig"):
        S.train_translation(procedural, {"batch_size": 16}, progress=False)
    with pytest.raises(ConfigError, match="progress must be true or false"):
        S.train_translation(procedural, cfg, progress="maybe")
    assert not (tmp_path / "c").exists()


def test_each_seed_trains_as_its_own_run(tmp_path, procedural):
    """train_seeds = train_translation per seed (seed k, under <ckpt_dir>/seed<k>/), and its curves are named per seed."""
    other = D.make_procedural(3, 2, seed=8)
    cfg = tiny_cfg(tmp_path / "s", methods="vae", n_epochs=2 * 16 / len(procedural.train), batch_size=16, kl_every=1)
    seed_runs, _ = S.train_seeds({3: procedural, 4: other}, cfg, progress=False)
    alone, _ = S.train_translation(other, cfg.replace(seed=4, ckpt_dir=str(tmp_path / "alone")), progress=False)
    assert (tmp_path / "s" / "seed3" / "vae_mse" / "last.pt").exists()
    for p, q in zip(seed_runs[4]["vae"].encoder.parameters(), alone["vae"].encoder.parameters()):
        assert torch.equal(p, q)
    assert not torch.equal(next(seed_runs[3]["vae"].encoder.parameters()), next(alone["vae"].encoder.parameters()))
    assert set(S.training_curves(seed_runs)) == {f"seed{k}/vae/{c}" for k in (3, 4) for c in ("losses", "code_kl")}
    with pytest.raises(ConfigError, match="datas"):
        S.train_seeds({}, cfg)


def test_evaluation_and_figures_run_end_to_end(tmp_path, procedural):
    runs, note = S.train_translation(procedural, tiny_cfg(tmp_path, methods="vae", n_epochs=16 / 288, batch_size=16),
                                     progress=False)
    met = S.evaluate_run(runs["vae"], procedural, n_pairs=20, seed=0, device="cpu", max_probe_images=200)
    for key in ("transfer_mse_test", "transfer_ssim_train", "probe_pose_from_class", "probe_identity_from_content",
                "kl_class", "kl_content", "rec_mse_test"):
        assert np.isfinite(met[key]), key
    from sivae.translation import plots as P
    P.plot_translation_grids(runs, procedural, METHOD_TITLES, tmp_path / "g.png", n=2)
    P.plot_code_kl(runs, METHOD_TITLES, tmp_path / "kl.png")
    per_seed, refs = S.evaluate_seeds({0: runs}, {0: procedural}, n_pairs=20, device="cpu")
    assert per_seed[0]["vae"]["transfer_mse_test"] == runs["vae"].metrics["transfer_mse_test"]
    assert refs["test"]["copy_class_source"]["mse"] == M.reference_scores(procedural, "test", 20, 0)["copy_class_source"]["mse"]
    text = S.write_table4(tmp_path / "t.md", {m: r.metrics for m, r in runs.items()}, refs, procedural,
                          "LPIPS not measured", note)
    out = S.write_metrics(tmp_path / "m.json", per_seed, {"n": 1})
    with pytest.raises(ConfigError, match="no data for seed"):
        S.evaluate_seeds({1: runs}, {0: procedural}, n_pairs=20, device="cpu")
    assert (tmp_path / "g.png").exists() and "VAE (ours)" in text and out["vae"]["n_iter"] == 1
    assert out["vae"]["transfer_mse_test_std"] == 0.0 and "copy_content_source_test_mse_std" in out["reference"]


def test_seed_means_carry_their_spread_and_refuse_unlike_seeds(tmp_path):
    a = {"vae": {"kl_class": 1.0, "n_iter": 10}, "reference": {"copy_class_source_test_mse": 0.1}}
    b = {"vae": {"kl_class": 3.0, "n_iter": 10}, "reference": {"copy_class_source_test_mse": 0.3}}
    out = S.write_metrics(tmp_path / "m.json", [a, b], {"seeds": 2})
    assert out["vae"]["kl_class"] == 2.0 and out["vae"]["n_iter"] == 10 and "n_iter_std" not in out["vae"]
    assert out["vae"]["kl_class_std"] == pytest.approx(2 ** 0.5, rel=1e-4)          # ddof=1, as the ledger's rule says
    assert out["reference"]["copy_class_source_test_mse_std"] == pytest.approx(0.02 ** 0.5, rel=1e-4)
    assert json.loads((tmp_path / "m.json").read_text()) == out
    with pytest.raises(ConfigError, match="kl_class"):
        S.average_seeds([a, {"vae": {"n_iter": 10}, "reference": b["reference"]}])
    with pytest.raises(ConfigError, match="at least one"):
        S.average_seeds([])
    assert S.seed_dir(tmp_path, 3) == tmp_path / "seed3"
