"""Import of the authors' weights (sivae.images.released) from synthetic files written in THEIR layout.

The layouts below are spelled out here from the authors' code (style_soft_intro_vae/net.py, model.py,
checkpointer.py, train_style_soft_intro_vae.py; soft_intro_vae/train_soft_intro_vae.py), independently of the key
map under test, at tiny sizes with random values.
"""
from __future__ import annotations

import sys
import types

import pytest
import torch
from released_layouts import CIFAR_TINY, TINY, save_style, their_residual_model, their_style_models

from sivae.errors import CheckpointError
from sivae.images import released as W


def test_every_style_tensor_lands_where_the_map_says(tmp_path):
    models = their_style_models(TINY)
    plain = their_style_models(TINY, seed=1, suffix="")   # the training copies, which must not be taken
    path = save_style(tmp_path, {**models, **{k: v for k, v in plain.items() if k != "dlatent_avg"}})
    enc, dec = W.load_released(path, kind="ffhq", config=TINY)
    assert not enc.training and not dec.training
    e, d = enc.state_dict(), dec.state_dict()
    D, G = models["discriminator_s"], models["generator_s"]
    # spot checks, including the reversed block order of the encoder (theirs 0 = largest resolution)
    assert torch.equal(e["blocks.0.conv_weight"], D["encode_block.2.conv_1.weight"])
    assert torch.equal(e["blocks.2.down_weight"], D["encode_block.0.conv_2.weight"])
    assert torch.equal(e["from_rgb.2.weight"], D["from_rgb.0.from_rgb.weight"])
    assert torch.equal(e["to_latent.layers.2.weight"], models["mapping_tl_s"]["map_blocks.2.fc.weight"])
    assert torch.equal(d["blocks.2.up_weight"], G["decode_block.2.conv_1.weight"])   # transposed (in, out, 3, 3)
    assert torch.equal(d["blocks.1.noise_scale2"], G["decode_block.1.noise_weight_2"])
    assert torch.equal(d["const"], G["const"])
    assert torch.equal(d["w_avg"], models["dlatent_avg"]["buff"])
    assert torch.equal(d["mapping.layers.1.bias"], models["mapping_fl_s"]["map_blocks.1.fc.bias"])
    # every value of ours comes from exactly one of their tensors (random values: unique), and every tensor
    # of theirs but the fixed blur kernels is used
    theirs = {(g, k): t for g, sd in models.items() for k, t in sd.items() if not k.endswith("blur.weight")}
    hits = {}
    for ours in (e, d):
        for key, t in ours.items():
            match = [gk for gk, v in theirs.items() if v.shape == t.shape and torch.equal(v, t)]
            assert len(match) == 1, key
            hits[match[0]] = key
    assert set(hits) == set(theirs)
    assert sum(t.numel() for t in e.values()) + sum(t.numel() for t in d.values()) == \
        sum(t.numel() for t in theirs.values())
    # the loaded networks run at the final resolution
    x = dec(torch.randn(2, 8))
    assert x.shape == (2, 3, 16, 16) and torch.isfinite(x).all()
    mu, logvar = enc(x)
    assert mu.shape == logvar.shape == (2, 8)


def test_training_copies_when_not_smoothed(tmp_path):
    models = their_style_models(TINY, suffix="")
    path = save_style(tmp_path, models)
    enc, _ = W.load_released(path, kind="celeba-hq", smoothed=False, config=TINY)
    assert torch.equal(enc.state_dict()["blocks.1.bias1"], models["discriminator"]["encode_block.1.bias_1"])
    with pytest.raises(CheckpointError, match="discriminator_s"):
        W.load_released(path, kind="celeba-hq", config=TINY)


def test_wrong_shape_names_the_first_tensor(tmp_path):
    models = their_style_models(TINY)
    models["generator_s"]["decode_block.1.style_2.weight"] = torch.randn(5, 8)
    path = save_style(tmp_path, models)
    with pytest.raises(CheckpointError) as err:
        W.load_released(path, kind="ffhq", config=TINY)
    msg = str(err.value)
    assert "generator_s/decode_block.1.style_2.weight" in msg and "(16, 8)" in msg and "(5, 8)" in msg
    assert str(path) in msg


def test_missing_and_unexpected_keys(tmp_path):
    models = their_style_models(TINY)
    del models["discriminator_s"]["encode_block.1.style_1.bias"]
    path = save_style(tmp_path, models)
    with pytest.raises(CheckpointError, match=r"discriminator_s/encode_block\.1\.style_1\.bias.*missing"):
        W.load_released(path, kind="ffhq", config=TINY)
    models = their_style_models(TINY)
    models["generator_s"]["decode_block.0.extra"] = torch.zeros(3)
    path = save_style(tmp_path, models, "extra.pth")
    with pytest.raises(CheckpointError, match=r"decode_block\.0\.extra"):
        W.load_released(path, kind="ffhq", config=TINY)


def test_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        W.load_released(tmp_path / "absent.pth", kind="ffhq", config=TINY)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        W.load_released(bad, kind="ffhq", config=TINY)
    foreign = tmp_path / "foreign.pth"
    torch.save({"weights": {"a": torch.zeros(1)}}, foreign)
    with pytest.raises(CheckpointError, match="'models'"):
        W.load_released(foreign, kind="ffhq", config=TINY)
    # the paper-size model against a tiny file: the first tensor (in map order) is named with both shapes
    path = save_style(tmp_path, their_style_models(TINY))
    with pytest.raises(CheckpointError, match=r"encode_block\.\d+\.blur\.weight.*expected shape \(\d+, 1, 3, 3\)"):
        W.load_released(path, kind="ffhq")


_RAN = []


def _side_effect(msg):
    _RAN.append(msg)
    return msg


class _Evil:
    def __reduce__(self):
        return (_side_effect, ("code ran",))


def test_code_executing_pickle_is_refused(tmp_path):
    models = their_style_models(TINY)
    path = tmp_path / "evil.pth"
    torch.save({"models": models, "auxiliary": {"x": _Evil()}}, path)
    _RAN.clear()
    with pytest.raises(CheckpointError, match="refused"):
        W.load_released(path, kind="ffhq", config=TINY)
    assert _RAN == []


def test_their_loss_tracker_objects_are_read_inertly(tmp_path, monkeypatch):
    """Their full checkpoints pickle tracker.RunningMeanTorch objects: read as inert stand-ins, nothing runs."""
    mod = types.ModuleType("tracker")

    class RunningMeanTorch:
        def __init__(self):
            self.values = [torch.ones(1)]

    class RunningMean:
        def __init__(self):
            self.mean, self.n = 0.5, 2

    for cls in (RunningMeanTorch, RunningMean):
        cls.__module__, cls.__qualname__ = "tracker", cls.__name__
        setattr(mod, cls.__name__, cls)
    monkeypatch.setitem(sys.modules, "tracker", mod)
    models = their_style_models(TINY)
    aux = {"tracker": {"tracks": {"loss": RunningMeanTorch(), "kl": RunningMean()}, "epochs": [1],
                       "means_over_epochs": {"loss": [0.1]}}}
    path = save_style(tmp_path, models, aux=aux)
    monkeypatch.delitem(sys.modules, "tracker")
    data = W.read_checkpoint(path)
    track = data["auxiliary"]["tracker"]["tracks"]["loss"]
    assert type(track).__module__ == "sivae.images.released" and torch.equal(track.values[0], torch.ones(1))
    enc, _ = W.load_released(path, kind="ffhq", config=TINY)
    assert torch.equal(enc.state_dict()["from_rgb.0.bias"], models["discriminator_s"]["from_rgb.2.from_rgb.bias"])


def test_residual_model_maps_one_to_one(tmp_path):
    sd = their_residual_model()
    path = tmp_path / "cifar.pth"
    torch.save({"epoch": 3, "model": sd}, path)
    enc, dec = W.load_released(path, kind="cifar10", config=CIFAR_TINY)
    e, d = enc.state_dict(), dec.state_dict()
    assert len(e) + len(d) == len(sd)
    assert torch.equal(e["features.4.shortcut.weight"], sd["encoder.main.res_in_16.conv_expand.weight"])
    assert torch.equal(e["features.8.body.4.running_var"], sd["encoder.main.res_in_4.bn2.running_var"])
    assert torch.equal(d["body.2.body.0.weight"], sd["decoder.main.res_in_8.conv1.weight"])
    assert torch.equal(d["body.7.bias"], sd["decoder.main.predict.bias"])
    assert e["features.1.num_batches_tracked"].item() == sd["encoder.main.1.num_batches_tracked"].item()
    ours = {**{"encoder." + k: v for k, v in e.items()}, **{"decoder." + k: v for k, v in d.items()}}
    for key, t in sd.items():   # every tensor of theirs lands in exactly one of ours
        match = [k for k, v in ours.items() if v.shape == t.shape and torch.equal(v, t)]
        assert len(match) == 1 or key.endswith("num_batches_tracked"), key
    x = dec(torch.randn(2, 6))
    assert x.shape == (2, 3, 32, 32) and enc(x)[0].shape == (2, 6)


def test_residual_wrong_width_names_the_tensor(tmp_path):
    sd = their_residual_model(channels=(4, 8, 12))
    path = tmp_path / "cifar.pth"
    torch.save({"epoch": 3, "model": sd}, path)
    with pytest.raises(CheckpointError, match=r"model/encoder\.main\.res_in_8\.conv1\.weight.*\(16, 8, 3, 3\).*"
                                              r"\(12, 8, 3, 3\)"):
        W.load_released(path, kind="cifar10", config=CIFAR_TINY)


# ----------------------------------------------------------------------------------------- as runs to evaluate
def test_released_runs_are_evaluated_without_training(tmp_path):
    import json

    from sivae.errors import ConfigError
    from sivae.images import study
    from sivae.images.sampling import latent_walk, sample_images
    style = save_style(tmp_path, their_style_models(TINY))
    torch.save({"epoch": 3, "model": their_residual_model()}, tmp_path / "cifar.pth")
    cfg = json.dumps({"ffhq": TINY, "cifar10": {"channels": [4, 8, 16], "z_dim": 6}})
    runs = study.load_released_runs(f"ffhq:{style}, cifar10:{tmp_path / 'cifar.pth'}", config=cfg, device="cpu",
                                    log=lambda m: None)
    assert sorted(runs) == [("cifar10", study.RELEASED_KEY, 0), ("ffhq", study.RELEASED_KEY, 0)]
    ffhq, cifar = runs[("ffhq", study.RELEASED_KEY, 0)], runs[("cifar10", study.RELEASED_KEY, 0)]
    assert ffhq.arch.image_size == 16 and ffhq.arch.z_dim == 8 and cifar.arch.image_size == 32
    assert sample_images(ffhq, 3, seed=1).shape == (3, 3, 16, 16)
    assert torch.equal(sample_images(ffhq, 3, seed=1), sample_images(ffhq, 3, seed=1))
    assert latent_walk(cifar, 5).shape == (5, 3, 32, 32)
    assert study.PAPER_FID[("ffhq", study.RELEASED_KEY)] == 17.55
    assert study.load_released_runs("", device="cpu") == {}
    for bad, match in [("ffhq", "kind>:<path"), ("stylegan:x.pth", "released kind"),
                       (f"ffhq:{tmp_path / 'absent.pth'}", "absent.pth")]:
        with pytest.raises((ConfigError, CheckpointError), match=match):
            study.load_released_runs(bad, config=cfg, device="cpu")
    with pytest.raises(ConfigError, match="released_config"):
        study.load_released_runs(f"ffhq:{style}", config="{not json", device="cpu")
