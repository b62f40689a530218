"""Image models for a small OOD measurement run (issue 34): the images stage's settings at a smaller n_train.

    python experiments/ood_small_models.py OUT_DIR [N_TRAIN=5000]

Trains, for mnist and fashionmnist, the VAE and Soft-IntroVAE with seeds 0 and 1 exactly as the images stage
does (params.yaml's `images` section: widths, epochs, lr, batch size, loss weights) on the first N_TRAIN
training images, into OUT_DIR/<dataset>_<method>_seed<k>/last.pt, the layout the ood stage reads (`ckpt_dir`).
Then run notebook 06 with `-p ckpt_dir OUT_DIR -p train_missing False` (docs/budget_runs/ood_beyond_small_n5000.md).
"""
import sys
import time

from sivae.images.data import load_image_dataset, root_for
from sivae.images.models import arch_for
from sivae.images.training import run_name, train_image_model
from sivae.stage import stage_parameters


def main(argv):
    if not argv:
        sys.exit(__doc__)
    out, n_train = argv[0], int(argv[1]) if len(argv) > 1 else 5000
    im, _ = stage_parameters("images", overrides={"n_train": n_train})
    for ds in ("mnist", "fashionmnist"):
        data = load_image_dataset(ds, "train", root_for(ds, im["data_root"], im["paper_data_root"]), n_train)
        arch = arch_for(ds, data.shape[1], data.shape[0], im["channels"], im["z_dim"], False)
        for method in ("vae", "soft_intro_vae"):
            for seed in (0, 1):
                t = time.time()
                train_image_model(data, arch, method, seed, epochs=float(im["epochs"]), batch_size=int(im["batch_size"]),
                                  lr=float(im["lr"]), beta_rec=float(im["beta_rec"]), beta_kl=float(im["beta_kl"]),
                                  beta_neg=float(im["beta_neg"]), gamma_r=float(im["gamma_r"]),
                                  num_vae=float(im["num_vae"]), ckpt_dir=f"{out}/{run_name(ds, method, seed)}",
                                  device="cpu", autocast="none", progress=False)
                print(ds, method, seed, f"{time.time() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
