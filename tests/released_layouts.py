"""Synthetic weights files in the authors' layouts (style_soft_intro_vae/net.py, model.py, checkpointer.py;
soft_intro_vae/train_soft_intro_vae.py), spelled out from their code independently of sivae's key map, at tiny
sizes with random values: for tests/images/test_style_weights.py and the images notebook test."""
from __future__ import annotations

import torch

TINY = dict(layer_count=3, startf=4, maxf=16, latent=8, mapping_layers=2, to_latent_layers=3, image_channels=3,
            fused_min_res=8)


def their_style_models(cfg: dict, seed: int = 0, suffix: str = "_s") -> dict:
    """{model name: state dict} of the authors' style model (their Encoder_old / Generator / mappings)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)
    L, f, mx, z, C = cfg["layer_count"], cfg["startf"], cfg["maxf"], cfg["latent"], cfg["image_channels"]
    enc, res, inputs = {}, 2 ** (L + 1), f
    for i in range(L):
        out = min(mx, f * 2 ** (i + 1))
        enc[f"from_rgb.{i}.from_rgb.weight"], enc[f"from_rgb.{i}.from_rgb.bias"] = r(inputs, C, 1, 1), r(inputs)
        b = f"encode_block.{i}."
        enc.update({b + "conv_1.weight": r(inputs, inputs, 3, 3), b + "bias_1": r(1, inputs, 1, 1),
                    b + "blur.weight": r(inputs, 1, 3, 3), b + "conv_2.weight": r(out, inputs, 3, 3),
                    b + "bias_2": r(1, out, 1, 1), b + "style_1.weight": r(z, 2 * inputs), b + "style_1.bias": r(z),
                    b + "style_2.weight": r(z, 2 * out), b + "style_2.bias": r(z)})
        inputs, res = out, res // 2
    gen = {}
    inputs = min(mx, f * 2 ** (L - 1))
    gen["const"] = r(1, inputs, 4, 4)
    for i in range(L):
        out = min(mx, f * 2 ** (L - 1 - i))
        b = f"decode_block.{i}."
        if i:
            fused = 4 * 2 ** i >= cfg["fused_min_res"]
            gen[b + "conv_1.weight"] = r(inputs, out, 3, 3) if fused else r(out, inputs, 3, 3)
        gen.update({b + "blur.weight": r(out, 1, 3, 3), b + "noise_weight_1": r(1, out, 1, 1), b + "bias_1": r(1, out, 1, 1),
                    b + "style_1.weight": r(2 * out, z), b + "style_1.bias": r(2 * out),
                    b + "conv_2.weight": r(out, out, 3, 3), b + "noise_weight_2": r(1, out, 1, 1),
                    b + "bias_2": r(1, out, 1, 1), b + "style_2.weight": r(2 * out, z), b + "style_2.bias": r(2 * out),
                    f"to_rgb.{i}.to_rgb.weight": r(C, out, 1, 1), f"to_rgb.{i}.to_rgb.bias": r(C)})
        inputs = out
    fl = {}
    for i in range(cfg["mapping_layers"]):
        fl[f"map_blocks.{i}.fc.weight"], fl[f"map_blocks.{i}.fc.bias"] = r(z, z), r(z)
    tl = {}
    for i in range(cfg["to_latent_layers"]):
        n_out = 2 * z if i == cfg["to_latent_layers"] - 1 else z
        tl[f"map_blocks.{i}.fc.weight"], tl[f"map_blocks.{i}.fc.bias"] = r(n_out, z), r(n_out)
    return {f"discriminator{suffix}": enc, f"generator{suffix}": gen, f"mapping_fl{suffix}": fl,
            f"mapping_tl{suffix}": tl, "dlatent_avg": {"buff": r(2 * L, z)}}


def save_style(tmp_path, models: dict, name: str = "ckpt.pth", aux=None):
    path = tmp_path / name
    torch.save({"models": models, "auxiliary": aux if aux is not None else {"encoder_optimizer": {"state": {}}}}, path)
    return path


# ----------------------------------------------------------------------------------------- residual (CIFAR-10)
def their_residual_model(channels=(4, 8, 16), z=6, size=32, cdim=3, seed=0) -> dict:
    """state_dict of the authors' SoftIntroVAE (soft_intro_vae/train_soft_intro_vae.py) at a tiny width."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)

    def bn(p, c):
        return {f"{p}.weight": r(c), f"{p}.bias": r(c), f"{p}.running_mean": r(c), f"{p}.running_var": r(c).abs(),
                f"{p}.num_batches_tracked": torch.tensor(int(r(1).abs().mul(100).item()))}

    def block(p, a, b):
        d = {f"{p}.conv1.weight": r(b, a, 3, 3), **bn(f"{p}.bn1", b), f"{p}.conv2.weight": r(b, b, 3, 3), **bn(f"{p}.bn2", b)}
        if a != b:
            d[f"{p}.conv_expand.weight"] = r(b, a, 1, 1)
        return d

    sd = {"encoder.main.0.weight": r(channels[0], cdim, 5, 5), **bn("encoder.main.1", channels[0])}
    cc, sz = channels[0], size // 2
    for ch in channels[1:]:
        sd.update(block(f"encoder.main.res_in_{sz}", cc, ch))
        cc, sz = ch, sz // 2
    sd.update(block(f"encoder.main.res_in_{sz}", cc, cc))
    sd.update({"encoder.fc.weight": r(2 * z, cc * sz * sz), "encoder.fc.bias": r(2 * z)})
    sd.update({"decoder.fc.0.weight": r(cc * sz * sz, z), "decoder.fc.0.bias": r(cc * sz * sz)})
    s = 4
    for ch in channels[::-1]:
        sd.update(block(f"decoder.main.res_in_{s}", cc, ch))
        cc, s = ch, s * 2
    sd.update(block(f"decoder.main.res_in_{s}", cc, cc))
    sd.update({"decoder.main.predict.weight": r(cdim, cc, 5, 5), "decoder.main.predict.bias": r(cdim)})
    return sd


CIFAR_TINY = dict(channels=(4, 8, 16), z_dim=6)
