"""The style-based encoder/decoder (sivae.images.style) at tiny sizes on the CPU."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sivae.errors import ConfigError
from sivae.images.style import StyleDecoder, StyleEncoder, authors_channels, build_style_pair
from sivae.train import TrainConfig, Trainer

# fused_min_res=16: the two largest resolutions use the stride-2 (transposed) convs, the others up/down-sampling
KW = dict(z_dim=6, w_dim=8, channels=(8, 8, 6, 4), fused_min_res=16)


def pair(seed=0, **kw):
    return build_style_pair(seed, **{**KW, **kw})


@pytest.mark.slow
def test_shapes_at_every_resolution():
    enc, dec = pair()
    assert dec.resolution == enc.resolution == 32 and dec.n_lods == 4 and dec.lod == enc.lod == 3
    z = torch.randn(3, 6)
    for lod in range(4):
        for alpha in (0.0, 0.5, 1.0):
            x = dec(z, lod=lod, alpha=alpha)
            assert x.shape == (3, 3, 4 * 2 ** lod, 4 * 2 ** lod)
            mu, logvar = enc(x, lod=lod, alpha=alpha)
            assert mu.shape == logvar.shape == (3, 6)
            assert torch.isfinite(mu).all() and torch.isfinite(logvar).all()
    dec.lod, dec.alpha, enc.lod = 1, 0.3, 1        # attributes drive the plain calls the Trainer makes
    assert dec(z).shape == (3, 3, 8, 8) and enc(dec(z))[0].shape == (3, 6)
    with pytest.raises(ConfigError, match="lod 1 takes"):
        enc(torch.zeros(3, 3, 16, 16))
    with pytest.raises(ConfigError, match="lod"):
        dec(z, lod=4)
    with pytest.raises(ConfigError, match="alpha"):
        dec(z, alpha=1.5)
    with pytest.raises(ConfigError, match="resolution 64"):
        StyleDecoder(channels=(8, 8, 8), resolution=64)


def test_decoder_fade_in_endpoints():
    """alpha = 0: the nearest-upsampled output of the lower resolution; alpha = 1: the new resolution's output."""
    _, dec = pair(noise="none")
    with torch.no_grad():
        for b in dec.blocks:   # non-trivial noise-free networks: random biases and styles
            for p in (b.bias1, b.bias2):
                p.normal_()
    z = torch.randn(4, 6)
    with torch.no_grad():
        for lod in (1, 2, 3):
            low = dec(z, lod=lod - 1, alpha=1.0)
            high = dec(z, lod=lod, alpha=1.0)
            assert torch.allclose(dec(z, lod=lod, alpha=0.0), F.interpolate(low, scale_factor=2, mode="nearest"),
                                  atol=1e-6)
            assert torch.allclose(dec(z, lod=lod, alpha=0.0)[:, :, ::2, ::2], low, atol=1e-6)
            assert torch.allclose(dec(z, lod=lod, alpha=1.0), high)
            mid = dec(z, lod=lod, alpha=0.25)
            up = F.interpolate(low, scale_factor=2, mode="nearest")
            assert torch.allclose(mid, 0.75 * up + 0.25 * high, atol=1e-5)
            assert not torch.allclose(high, up, atol=1e-3)   # the two endpoints really differ


def test_encoder_fade_in_endpoints():
    enc, _ = pair()
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        low = enc(F.avg_pool2d(x, 2), lod=2, alpha=1.0)[0]
        assert torch.allclose(enc(x, lod=3, alpha=0.0)[0], low, atol=1e-5)
        high = enc(x, lod=3, alpha=1.0)[0]
        assert torch.allclose(enc(x, lod=3)[0], high)
        assert not torch.allclose(high, low, atol=1e-3)
        mid = enc.style(x, lod=3, alpha=0.5)
        assert not torch.allclose(mid, enc.style(x, lod=3, alpha=1.0))


def test_gradients_flow_to_every_used_parameter():
    enc, dec = pair()
    z = torch.randn(2, 6)
    mu, logvar = enc(dec(z, lod=3, alpha=0.5), lod=3, alpha=0.5)
    (mu.square().sum() + logvar.sum()).backward()
    unused = {"from_rgb.0.weight", "from_rgb.0.bias", "from_rgb.1.weight", "from_rgb.1.bias",
              "to_rgb.0.weight", "to_rgb.0.bias", "to_rgb.1.weight", "to_rgb.1.bias"}  # only lods 2 and 3 take part
    for name, p in [*enc.named_parameters(), *dec.named_parameters()]:
        if name in unused:
            assert p.grad is None, name
            continue
        assert p.grad is not None, name
        # noise scales start at zero; their gradient is still defined; everything else moves
        if "noise_scale" not in name:
            assert p.grad.abs().sum() > 0, name
    # at lod 1 the higher-resolution blocks are unused
    enc.zero_grad(), dec.zero_grad()
    enc(dec(z, lod=1), lod=1)[0].sum().backward()
    assert dec.blocks[3].conv_weight.grad is None and enc.blocks[3].conv_weight.grad is None
    assert dec.blocks[1].conv_weight.grad.abs().sum() > 0


@pytest.mark.slow
def test_deterministic_under_a_seed_and_noise_modes():
    e1, d1 = pair(seed=3)
    e2, d2 = pair(seed=3)
    e3, _ = pair(seed=4)
    for a, b in zip([*e1.state_dict().values(), *d1.state_dict().values()],
                    [*e2.state_dict().values(), *d2.state_dict().values()]):
        assert torch.equal(a, b)
    assert not torch.equal(e1.blocks[0].conv_weight, e3.blocks[0].conv_weight)
    with torch.no_grad():
        for b in d1.blocks:
            b.noise_scale1.fill_(1.0)
    z = torch.randn(2, 6)
    torch.manual_seed(0)
    x1 = d1(z)
    torch.manual_seed(0)
    assert torch.equal(d1(z), x1)
    assert not torch.equal(d1(z), x1)                    # fresh noise on the next call
    d1.noise_generator = torch.Generator().manual_seed(5)
    y1 = d1(z)
    d1.noise_generator.manual_seed(5)
    assert torch.equal(d1(z), y1)
    d1.noise = "none"
    assert torch.equal(d1(z), d1(z))
    d1.noise = "batch"
    xb = d1(z[:1].expand(2, -1))
    assert torch.allclose(xb[0], xb[1], atol=1e-5)                # one noise map for the whole batch
    d1.noise = "random"
    xr = d1(z[:1].expand(2, -1))
    assert not torch.allclose(xr[0], xr[1], atol=1e-3)
    with pytest.raises(ConfigError, match="noise"):
        d1.noise = "sometimes"


def test_truncation_pulls_towards_w_avg():
    _, dec = pair(noise="none")
    z = torch.randn(3, 6)
    ws = dec.styles(z)
    assert ws.shape == (3, 8, 8) and torch.equal(ws[:, 0], ws[:, 7])
    dec.w_avg.normal_()
    dec.truncation_psi, dec.truncation_cutoff = 0.0, 2
    wt = dec.styles(z)
    assert torch.allclose(wt[:, :2], dec.w_avg[:2].expand(3, -1, -1)) and torch.equal(wt[:, 2:], ws[:, 2:])


def test_authors_channel_rule():
    assert authors_channels(64, 512, 7) == ((512, 512, 512, 512, 256, 128, 64), 512)
    enc = StyleEncoder(z_dim=4, w_dim=4, channels=(4, 4), bottom_channels=6)
    assert enc.blocks[0].down_weight.shape == (6, 4, 3, 3)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["soft_intro_vae", "vae"])
def test_trainer_steps_with_style_networks(method):
    enc, dec = pair()
    enc.lod = dec.lod = 2
    enc.alpha = dec.alpha = 0.5
    data = torch.rand(8, 3, 16, 16)
    cfg = TrainConfig(method=method, n_iter=2, batch_size=4, lr=1e-3, progress=False, beta_neg=4.0)
    trainer = Trainer(enc, dec, lambda step, g: data[torch.randperm(8, generator=g)[:4]], cfg, device="cpu")
    enc0 = {k: v.clone() for k, v in enc.state_dict().items()}
    dec0 = {k: v.clone() for k, v in dec.state_dict().items()}
    for _ in range(2):
        out = trainer.train_step()
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in out.values() if isinstance(v, (float, torch.Tensor)))
    assert trainer.step == 2
    e, d = enc.state_dict(), dec.state_dict()
    assert not torch.equal(enc0["blocks.2.conv_weight"], e["blocks.2.conv_weight"])
    assert not torch.equal(dec0["blocks.2.conv_weight"], d["blocks.2.conv_weight"])
    assert not torch.equal(dec0["mapping.layers.0.weight"], d["mapping.layers.0.weight"])
    assert not torch.equal(enc0["from_rgb.1.weight"], e["from_rgb.1.weight"])   # the fading-out input path
    # the blocks above the current lod are unused: Adam leaves them as they were
    assert torch.equal(d["blocks.3.conv_weight"], dec0["blocks.3.conv_weight"])
    assert torch.equal(e["from_rgb.3.weight"], enc0["from_rgb.3.weight"])
