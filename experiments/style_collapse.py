"""Why does the style-based pair collapse at the default budget? One variant per line, the rest as the default profile.

    OMP_NUM_THREADS=1 python experiments/style_collapse.py [VARIANT ...]

Variants (each a run of the default profile's style settings: MNIST, 6,400 images, 4x4 -> 32x32,
widths 32,32,16,8, z = w = 32, one epoch per resolution, batch 32, lr 1e-3, beta_neg 256):
    default         the default profile's run (Soft-IntroVAE)
    vae             the same network trained as a plain VAE (no adversarial term)
    lr2e-4          Soft-IntroVAE at lr 2e-4 (the paper's image lr)
    bneg<x>         Soft-IntroVAE with beta_neg = x (e.g. bneg2048, the authors' value at low resolutions)
    ep<x>           Soft-IntroVAE with x epochs per resolution
    bkl<x>, brec<x> beta_kl = x, beta_rec = x
    tokens join with '-': vae-ep4 is the VAE with 4 epochs per resolution
Prints one JSON line per variant: sample diversity (mean per-pixel std over 256 samples, beside the test
images' own), the test reconstruction MSE (beside the MSE of returning the mean test image), seconds.
A collapsed model has diversity near 0 and a reconstruction MSE near the mean image's.
"""
import json
import sys
import tempfile
import time

import torch

from sivae.images.data import load_image_dataset
from sivae.images.sampling import reconstruct, sample_images
from sivae.images.style import StyleArch
from sivae.images.training import resize_images, train_style_model

BASE = dict(epochs_per_lod=1.0, fade=0.5, batch_size=32, lr=1e-3, beta_rec=1.0, beta_kl=1.0, beta_neg=256.0)


def variant(name: str) -> tuple[str, dict]:
    """'default', or tokens joined by '-': vae, lr<x>, bkl<x>, brec<x>, bneg<x>, ep<x> (e.g. vae-ep4)."""
    method, over = "soft_intro_vae", {}
    for tok in name.split("-") if name != "default" else []:
        if tok == "vae":
            method = "vae"
        elif tok.startswith("lr"):
            over["lr"] = float(tok[2:])
        elif tok.startswith("bkl"):
            over["beta_kl"] = float(tok[3:])
        elif tok.startswith("brec"):
            over["beta_rec"] = float(tok[4:])
        elif tok.startswith("bneg"):
            over["beta_neg"] = float(tok[4:])
        elif tok.startswith("ep"):
            over["epochs_per_lod"] = float(tok[2:])
        else:
            raise SystemExit(f"unknown variant {name!r}")
    return method, over


def main(names):
    torch.set_num_threads(1)
    train = load_image_dataset("mnist", "train", "data", limit=6400)
    test = resize_images(load_image_dataset("mnist", "test", "data", limit=512).x, 32)
    arch = StyleArch(dataset="mnist", image_size=32, cdim=1, channels=(32, 32, 16, 8), z_dim=32, w_dim=32,
                     mapping_layers=3)
    mean_mse = float(((test - test.mean(0, keepdim=True)) ** 2).mean())
    for name in names:
        method, over = variant(name)
        t0 = time.time()
        with tempfile.TemporaryDirectory() as ckpt:
            model = train_style_model(train, arch, method, 0, ckpt_dir=ckpt, device="cpu", progress=False,
                                      **(BASE | over))
        with torch.no_grad():
            s = sample_images(model, 256)
            rec = reconstruct(model, test)
        print(json.dumps({"variant": name, "method": method, **(BASE | over),
                          "sample_diversity": round(float(s.std(0).mean()), 4),
                          "test_diversity": round(float(test.std(0).mean()), 4),
                          "rec_mse": round(float(((rec - test) ** 2).mean()), 4),
                          "mean_image_mse": round(mean_mse, 4), "seconds": round(time.time() - t0)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["default", "vae", "lr2e-4"])
