# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Image generation: samples, reconstructions, interpolations, Frechet scores (paper section 6.3)
#
# The VAE baseline and Soft-IntroVAE on the IntroVAE residual architecture (Table 6, Figure 4(a)),
# trained by the shared trainer: random samples (Figures 6a, 10a), reconstructions of held-out
# test images (Figure 6b), latent interpolation (Figure 5), the 4-corner square interpolation
# (section 9.4.2), class-conditional samples (Figure 11), training curves, and a Frechet score.
# The score is FID (Inception, pytorch-fid) when its weights are available; otherwise the output
# says so and reports a Frechet distance in a same-dataset classifier's features, labelled as such.

# %%
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from sivae.images import plots as imageplots
from sivae.images import study as imagestudy
from sivae.images.data import load_image_dataset, root_for
from sivae.images.training import history_rows, interpolate, reconstruct, sample_images, square_interpolation
from sivae.params import parse_bool, seeds_from
from sivae.runinfo import log_curves, write_run_info

# %% tags=["parameters"]
seed = 0                     # base seed; seeds are seed .. seed+n_seeds-1
n_seeds = 2                  # seeds per (dataset, model)
device = "auto"              # "auto" (cuda if present), "cpu" or "cuda"
datasets = "mnist,fashionmnist"  # comma list: mnist, fashionmnist, cifar10, svhn, folder:<path>
methods = "vae,soft_intro_vae"   # comma list of vae, soft_intro_vae (introvae works too)
conditional = True           # also train a class-conditional Soft-IntroVAE per dataset (Figure 11)
data_root = "data"           # DVC-pinned datasets (python -m sivae.images.data fetch)
paper_data_root = "data_paper"   # CIFAR-10 / SVHN (paper profile)
n_train = 0                  # use the first n_train training images (0: all)
epochs = 1.0                 # passes over the training images (paper: 200 MNIST, 220 CIFAR-10)
batch_size = 64              # paper: 128 MNIST/Fashion-MNIST, 32 CIFAR-10/SVHN
lr = 1e-3                    # Adam, encoder and decoder (paper: 2e-4)
beta_rec = 1.0               # paper: 1.0
beta_kl = 1.0                # paper: 1.0
beta_neg = 256.0             # KL weight inside the expELBO (paper: 256)
gamma_r = 1e-8               # paper: 1e-8
num_vae = 0.0                # plain-VAE warm-up, in epochs (paper: 0)
channels = "8,16"            # residual widths, or paper: 64,128 at 28x28 and 64,128,256 at 32x32
z_dim = "paper"              # "paper" (32 at 28x28, 128 at 32x32) or an integer
autocast = "auto"            # mixed precision: auto means bf16 on CUDA and none on CPU
n_fd_samples = 5000          # generated images for the Frechet score (paper FID: 50000)
use_inception = True         # try pytorch-fid's Inception (FID) before the classifier fallback
classifier_epochs = 1        # training of the fallback feature classifier
interactive = True           # show the ipywidgets interpolation view in a live kernel
ckpt_dir = "outputs/images/checkpoints"           # <ckpt_dir>/<dataset>_<method>_seed<k>/last.pt
classifier_dir = "outputs/images/classifiers"     # feature classifiers for the Frechet fallback
fig_dir = "outputs/images/figures"                # figures
metrics_path = "outputs/images/metrics.json"      # scores as a DVC metrics file
table_path = "outputs/images/scores.md"           # markdown table beside the paper's FIDs
live_dir = "outputs/images/live"                 # training curves through DVCLive (DVC plots)
run_info_path = "outputs/images/run_info.json"    # seed, parameters, versions, git commit

# %%
params = dict(seed=seed, n_seeds=n_seeds, device=device, datasets=datasets, methods=methods,
              conditional=conditional, n_train=n_train, epochs=epochs, batch_size=batch_size, lr=lr,
              beta_rec=beta_rec, beta_kl=beta_kl, beta_neg=beta_neg, gamma_r=gamma_r, num_vae=num_vae,
              channels=channels, z_dim=z_dim, autocast=autocast, n_fd_samples=n_fd_samples,
              use_inception=use_inception, classifier_epochs=classifier_epochs)
conditional = parse_bool("conditional", conditional)       # DVC writes booleans as true/false
use_inception = parse_bool("use_inception", use_inception)
interactive = parse_bool("interactive", interactive)
names = imagestudy.parse_datasets(datasets)
method_list = [m.strip() for m in methods.split(",") if m.strip()]
t0 = time.time()
runs = imagestudy.train_runs(names, method_list, seeds_from(seed, n_seeds), data_root=data_root,
                             paper_data_root=paper_data_root, n_train=n_train, epochs=epochs,
                             batch_size=batch_size, lr=lr, beta_rec=beta_rec, beta_kl=beta_kl, beta_neg=beta_neg,
                             gamma_r=gamma_r, num_vae=num_vae, channels=channels, z_dim=z_dim,
                             ckpt_dir=ckpt_dir, device=device, autocast=autocast, conditional=conditional)
t_train = time.time() - t0
print(f"trained {len(runs)} models in {t_train:.0f} s")

# %% [markdown]
# ## Random samples (Figures 6a, 10a) and test reconstructions (Figure 6b)
# Look for: digits / garments in the samples; Soft-IntroVAE's samples sharper than the VAE's.

# %%
tests = {ds: load_image_dataset(ds, "test", root_for(ds, data_root, paper_data_root)) for ds in names}
for ds in names:
    first = {k[1]: m for k, m in runs.items() if k[0] == ds and k[2] == seed}
    panels = {f"{ds} {imagestudy.METHOD_TITLES.get(k, k)}": sample_images(m, 64, seed=seed,
              y=torch.arange(64) % 10 if m.arch.conditional else None) for k, m in first.items()}
    imageplots.plot_grids(panels, 8, f"{fig_dir}/samples_{ds}.png")
    plt.show()
    x = tests[ds].x[:32]
    rec = {"test images": x, **{f"{imagestudy.METHOD_TITLES.get(k, k)} recon.": reconstruct(
        m, x, tests[ds].y[:32] if m.arch.conditional else None) for k, m in first.items()}}
    imageplots.plot_grids(rec, 8, f"{fig_dir}/reconstructions_{ds}.png")
    plt.show()

# %% [markdown]
# ## Interpolation (Figure 5) and the 4-corner square (section 9.4.2)
# Look for: every intermediate image is a plausible digit / garment (a smooth latent space).

# %%
for ds in names:
    uncond = {k[1]: m for k, m in runs.items() if k[0] == ds and k[2] == seed and not m.arch.conditional}
    x = tests[ds].x
    lines = {imagestudy.METHOD_TITLES[k]: interpolate(m, x[0], x[1], steps=10) for k, m in uncond.items()}
    imageplots.plot_grids(lines, 10, f"{fig_dir}/interpolation_{ds}.png", panel_width=5)
    plt.show()
    squares = {imagestudy.METHOD_TITLES[k]: square_interpolation(m, x[2:6], n=6) for k, m in uncond.items()}
    imageplots.plot_grids(squares, 6, f"{fig_dir}/square_interpolation_{ds}.png")
    plt.show()

# %% [markdown]
# ## Class-conditional samples (Figure 11): one row per class

# %%
for ds in names:
    for (d, key, s), m in runs.items():
        if d == ds and s == seed and m.arch.conditional:
            per_class = sample_images(m, 80, seed=seed, y=torch.arange(10).repeat_interleave(8))
            imageplots.plot_grids({f"{ds} conditional Soft-IntroVAE": per_class}, 8,
                                  f"{fig_dir}/conditional_{ds}.png", panel_width=4)
            plt.show()

# %% [markdown]
# ## Training curves: reconstruction, KL of real / fake / reconstructed images, expELBO
# Look for: Soft-IntroVAE keeps KL(fake) above KL(real) (the encoder tells fakes apart).

# %%
log_curves(imagestudy.training_curves(runs), live_dir)
rows = [r for (ds, key, s), m in runs.items() for r in history_rows(m, ds, key)]
imageplots.plot_training_curves(rows, path=f"{fig_dir}/training_curves.png")
plt.show()

# %% [markdown]
# ## Frechet scores (lower is better)

# %%
scores = imagestudy.score_models(runs, data_root=data_root, paper_data_root=paper_data_root,
                                 n_fd_samples=n_fd_samples, classifier_dir=classifier_dir,
                                 classifier_epochs=classifier_epochs, use_inception=use_inception, seed=seed,
                                 device=runs[next(iter(runs))].device)
summary = imagestudy.summarize_scores(scores)
table = imagestudy.write_image_tables(summary, scores["classifiers"], metrics_path, table_path,
                                      meta=dict(epochs=epochs, channels=channels, n_train=n_train or "all"))
display(Markdown(table))

# %%
write_run_info(run_info_path, params, seed=seed, device=str(runs[next(iter(runs))].device),
               wall_time_s=round(time.time() - t0, 1), train_time_s=round(t_train, 1))

# %% [markdown]
# ## Interactive: pick two test images and slide between their latents (live kernel only)

# %%
if interactive:
    imageplots.interpolation_explorer(
        {imagestudy.METHOD_TITLES[k[1]]: m for k, m in runs.items()
         if k[0] == names[0] and k[2] == seed and not m.arch.conditional}, tests[names[0]].x[:100])
