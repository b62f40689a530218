"""Progressive growing of the style-based pair through the one Trainer: schedule, fade-in, resume, sampling."""
import numpy as np
import pytest
import torch
from PIL import Image

from sivae.checkpoints import load_checkpoint, save_checkpoint
from sivae.errors import CheckpointError, ConfigError
from sivae.images import sampling as S
from sivae.images import study
from sivae.images import training as T
from sivae.images.data import ImageData
from sivae.images.style import StyleArch

ARCH = StyleArch(dataset="toy", image_size=8, cdim=1, channels=(4, 4), z_dim=4, w_dim=4, mapping_layers=1)


def tiny_data(n=32, size=8, seed=0) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    return ImageData(torch.rand(n, 1, size, size, generator=g), torch.zeros(n, dtype=torch.long), "toy", "train")


def train(tmp, **kw):
    args = dict(epochs_per_lod=1.0, batch_size=8, lr=1e-3, beta_neg=8.0, ckpt_dir=tmp, device="cpu", progress=False)
    return T.train_style_model(tiny_data(), ARCH, "soft_intro_vae", 3, **{**args, **kw})


def test_growth_schedule_lod_and_fade():
    s = T.GrowthSchedule((4, 4, 4), fade=0.5)
    assert s.total == 12 and s.ends() == [4, 8, 12]
    got = [s.at(k) for k in range(12)]
    assert got[:4] == [(0, 1.0)] * 4                         # 4x4: nothing to fade from
    assert got[4:8] == [(1, 0.5), (1, 1.0), (1, 1.0), (1, 1.0)]  # fade over the first half (2 steps)
    assert got[8] == (2, 0.5) and got[9] == (2, 1.0)
    assert s.at(50) == (2, 1.0)
    assert T.GrowthSchedule((10, 10), fade=1.0).at(14) == (1, 0.5)
    for bad in [dict(steps=()), dict(steps=(0, 3)), dict(steps=(2.5,)), dict(steps=(3,), fade=1.5)]:
        with pytest.raises(ConfigError):
            T.GrowthSchedule(**bad)


def test_real_images_fade_like_the_networks():
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(T._at_lod(x, 1, 1.0, 2), x)
    low = torch.nn.functional.avg_pool2d(x, 2)
    assert torch.allclose(T._at_lod(x, 0, 1.0, 2), low)
    up = torch.nn.functional.interpolate(low, scale_factor=2, mode="nearest")
    assert torch.allclose(T._at_lod(x, 1, 0.25, 2), 0.75 * up + 0.25 * x)


def test_training_grows_keeps_each_resolution_and_reloads(tmp_path):
    m = train(tmp_path / "a")
    assert m.step == m.growth.total == 8 and m.growth.steps == (4, 4)   # 32 images / batch 8 per resolution
    assert sorted(m.kept) == [4, 8]
    assert m.decoder.lod == 1 and m.encoder.alpha == 1.0
    # the decoder at the end of 4x4 differs from the final one in the 4x4 block (both resolutions trained)
    assert not torch.equal(m.kept[4]["const"], m.kept[8]["const"])
    grown = S.growth_samples(m, 3, seed=1)
    assert sorted(grown) == [4, 8] and all(g.shape == (3, 1, 8, 8) for g in grown.values())
    # 4x4 samples shown at 8x8 are blocky: each 2x2 block constant
    g4 = grown[4]
    assert torch.equal(g4, torch.nn.functional.interpolate(g4[..., ::2, ::2], scale_factor=2, mode="nearest"))
    again = T.load_trained(tmp_path / "a" / "last.pt")
    assert isinstance(again.arch, StyleArch) and again.arch == ARCH and sorted(again.kept) == [4, 8]
    assert torch.equal(S.sample_images(m, 5, seed=2), S.sample_images(again, 5, seed=2))   # noise seeded too
    assert not torch.equal(S.sample_images(m, 5, seed=2), S.sample_images(m, 5, seed=3))
    x = tiny_data(4, seed=9).x
    assert torch.equal(S.reconstruct(m, x), S.reconstruct(again, x))
    with pytest.raises(ConfigError, match="progressive growing"):
        S.growth_samples(T.TrainedModel(m.encoder, m.decoder, ARCH, "vae", 0))


def test_same_seed_same_weights_and_resume_after_kill_is_identical(tmp_path, monkeypatch):
    full = train(tmp_path / "full")
    real = T._at_lod
    calls = {"n": 0}

    def killed_at_step_6(*a, **k):
        calls["n"] += 1
        if calls["n"] == 7:      # inside the 8x8 fade-in... after it: step 6 of 8
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(T, "_at_lod", killed_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "cut")
    monkeypatch.setattr(T, "_at_lod", real)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["step"] == 6
    resumed = train(tmp_path / "cut")
    for a, b in ((full.decoder, resumed.decoder), (full.encoder, resumed.encoder)):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert [h["step"] for h in full.history] == [h["step"] for h in resumed.history]
    assert all(np.isclose(h1["rec"], h2["rec"]) for h1, h2 in zip(full.history, resumed.history))
    twice = train(tmp_path / "twice")
    assert torch.equal(twice.decoder.to_rgb[1].weight, full.decoder.to_rgb[1].weight)


def test_bad_inputs_fail_before_training(tmp_path):
    with pytest.raises(ConfigError, match="channels"):
        T.train_style_model(ImageData(torch.rand(8, 3, 8, 8), torch.zeros(8).long(), "rgb", "train"), ARCH,
                            ckpt_dir=tmp_path, device="cpu")
    with pytest.raises(ConfigError, match="StyleArch"):
        T.train_style_model(tiny_data(), object(), ckpt_dir=tmp_path, device="cpu")
    with pytest.raises(ConfigError, match="method"):
        T.train_style_model(tiny_data(), ARCH, "gan", ckpt_dir=tmp_path, device="cpu")
    with pytest.raises(ConfigError, match="resolution 16 needs"):
        StyleArch(image_size=16, channels=(4, 4))
    assert not list(tmp_path.iterdir())


def test_study_runs_a_folder_and_none(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    cfg = study.ImagesConfig(
        style_datasets=f"folder:{folder}", style_methods="vae", seed=0, data_root=tmp_path, paper_data_root=tmp_path,
        style_n_train=0, style_resolution=8, style_channels="4,4", style_z_dim=4, style_w_dim=4,
        style_mapping_layers=1, style_epochs_per_lod=0.5, style_fade=0.5, style_batch_size=6, style_lr=1e-3,
        style_beta_rec=1.0, style_beta_kl=1.0, style_beta_neg=8.0, gamma_r=1e-8, ckpt_dir=tmp_path / "ck",
        device="cpu", autocast="none")
    assert study.train_style_runs(cfg.replace(style_methods="none"), progress=False) == {}
    runs = study.train_style_runs(cfg, progress=False)
    (key, model), = runs.items()
    assert key == (f"folder:{folder}", "style_vae", 0) and model.arch.cdim == 3 and model.arch.image_size == 8
    assert study.IMAGE_METHOD_TITLES["style_vae"] == "VAE (style-based)"
    x = study.test_images_for(model, f"folder:{folder}", data_root=tmp_path, paper_data_root=tmp_path, n=5)
    assert x.shape == (2, 3, 8, 8)   # the folder's test split (10%) at the model's size
    assert study.test_images_for(model, "ffhq", data_root=tmp_path, paper_data_root=tmp_path) is None
    assert study.test_images_for(model, "ffhq", data_root=tmp_path, paper_data_root=tmp_path, folder=folder,
                                 n=7).shape == (7, 3, 8, 8)
    assert list(study.scorable({**runs, ("ffhq", "released_soft_intro_vae", 0): model})) == list(runs)
    with pytest.raises(ConfigError, match="style-based model for folder"):   # the widths do not fit 16x16
        cfg.replace(style_resolution=16)
    with pytest.raises(ConfigError, match="style_batch_size"):   # more than the folder's 18 training images
        study.train_style_runs(cfg.replace(style_batch_size=100), progress=False)


def test_a_foreign_checkpoint_is_refused(tmp_path):
    m = train(tmp_path / "a")
    state = load_checkpoint(m.path)
    state["extra"]["arch"] = {"dataset": "toy", "image_size": 8, "channels": [4]}   # does not fit the widths
    save_checkpoint(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="architecture"):
        T.load_trained(tmp_path / "bad.pt")
