# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version,-jupytext.text_representation.format_version
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
# Beside them, the style-based pair (Figure 4(c), Appendix 9.2.2: a StyleGAN-like decoder and an
# ALAE-like encoder) trained with progressive growing from 4x4 with fade-in, at a tiny final
# resolution in the default profile (the paper: 256x256 CelebA-HQ / FFHQ on GPUs).
# The score is FID (Inception, pytorch-fid) when its weights are available; otherwise the output
# says so and reports a Frechet distance in a same-dataset classifier's features, labelled as such.

# %%
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from sivae.images import plots as imageplots
from sivae.images import study as imagestudy
from sivae.images.config import ImagesConfig
from sivae.images.data import load_image_dataset, root_for
from sivae.images.sampling import growth_samples, interpolate, latent_walk, reconstruct, sample_images, square_interpolation
from sivae.images.training import history_rows
from sivae.paper import IMAGE_METHOD_TITLES
from sivae.plots import inline_figures
from sivae.runinfo import live_training, log_curves, write_run_info

inline_figures()   # figures drawn into the notebook (and the report) even under MPLBACKEND=Agg

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
lr_milestones = ""           # fractions of the run where lr drops x0.1 ("": constant, as the public code)
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
fid_protocols = "paper,authors_code"  # FID protocols, the first one is the score: paper (Inception in eval
#                              mode) and authors_code (BatchNorm in training mode, uint8-truncated samples)
precision_recall_k = 3       # k-NN precision / recall in the same features (0: off)
classifier_epochs = 1        # training of the fallback feature classifier
interactive = True           # show the ipywidgets interpolation view in a live kernel
style_datasets = "mnist"     # the style-based pair: datasets (folder:<path> for CelebA-HQ / FFHQ images)
style_methods = "soft_intro_vae"  # comma list of methods, or "none" to skip the style-based pair
style_n_train = 6400         # first n training images (0: all)
style_resolution = 32        # final resolution (paper: 256); grows 4, 8, ... up to it
style_channels = "32,32,16,8"    # widths per resolution from 4x4 up (paper: 512,512,512,512,256,128,64)
style_z_dim = 32             # latent size (paper: 512)
style_w_dim = 32             # style size (paper: 512)
style_mapping_layers = 3     # mapping network depth (paper: 8)
style_epochs_per_lod = 1.0   # passes over the images per resolution (authors' CelebA-HQ config: 30)
style_fade = 0.5             # share of each resolution spent fading it in
style_batch_size = 32        # authors (1 GPU): 128 at 4-16, 32, 16, 8, 4 at 256
style_lr = 0.001             # authors: 0.0015
style_beta_rec = 1.0         # authors' CelebA-HQ config: 0.05
style_beta_kl = 0.1          # 1.0 collapses here (experiments/style_collapse.py); authors' CelebA-HQ: 0.2
style_beta_neg = 256.0       # authors' CelebA-HQ config: 2048 at low resolutions down to 512
released = ""                # authors weights to evaluate without training: comma list of kind:path
#                              entries (kinds: celeba-hq, ffhq, cifar10; downloads: README)
released_config = ""         # JSON object of architecture overrides per kind (empty: as released)
released_images = ""         # a folder of images for the released style models to reconstruct (empty: none)
ckpt_dir = "outputs/scratch/images/checkpoints"   # <ckpt_dir>/<dataset>_<method>_seed<k>/last.pt
classifier_dir = "outputs/scratch/images/classifiers"  # feature classifiers for the Frechet fallback
fig_dir = "outputs/scratch/images/figures"        # figures
metrics_path = "outputs/scratch/images/metrics.json"  # scores as a DVC metrics file
table_path = "outputs/scratch/images/scores.md"   # markdown table beside the paper's FIDs
live_dir = "outputs/scratch/images/live"         # training curves through DVCLive (DVC plots)
run_info_path = "outputs/scratch/images/run_info.json"  # seed, parameters, versions, git commit

# %%
cfg = ImagesConfig.from_params(globals())   # every parameter parsed and checked once (one ConfigError naming it)
imagestudy.check_files(cfg)   # preflight: datasets present, architectures fit, weights readable, outputs writable
live_training(cfg.live_dir, cfg.ckpt_dir)  # curves grow under live_dir while the runs train (DVCLive)
t0 = time.time()
runs = imagestudy.train_runs(cfg)
t_style = time.time()
style_runs = imagestudy.train_style_runs(cfg)
t_train, t_style = time.time() - t0, time.time() - t_style
print(f"trained {len(runs)} models and {len(style_runs)} style-based models in {t_train:.0f} s "
      f"(style-based: {t_style:.0f} s)")

# %% [markdown]
# ## Random samples (Figures 6a, 10a) and test reconstructions (Figure 6b)
# Look for: digits / garments in the samples; Soft-IntroVAE's samples sharper than the VAE's.

# %%
tests = {ds: load_image_dataset(ds, "test", root_for(ds, cfg.data_root, cfg.paper_data_root)) for ds in cfg.datasets}
for ds in cfg.datasets:
    first = {k[1]: m for k, m in runs.items() if k[0] == ds and k[2] == cfg.seed}
    panels = {f"{ds} {IMAGE_METHOD_TITLES.get(k, k)}": sample_images(m, 64, seed=cfg.seed,
              y=torch.arange(64) % 10 if m.arch.conditional else None) for k, m in first.items()}
    imageplots.plot_grids(panels, 8, f"{cfg.fig_dir}/samples_{ds}.png")
    plt.show()
    x = tests[ds].x[:32]
    rec = {"test images": x, **{f"{IMAGE_METHOD_TITLES.get(k, k)} recon.": reconstruct(
        m, x, tests[ds].y[:32] if m.arch.conditional else None) for k, m in first.items()}}
    imageplots.plot_grids(rec, 8, f"{cfg.fig_dir}/reconstructions_{ds}.png")
    plt.show()

# %% [markdown]
# ## Interpolation (Figure 5) and the 4-corner square (section 9.4.2)
# Look for: every intermediate image is a plausible digit / garment (a smooth latent space).

# %%
for ds in cfg.datasets:
    uncond = {k[1]: m for k, m in runs.items() if k[0] == ds and k[2] == cfg.seed and not m.arch.conditional}
    x = tests[ds].x
    lines = {IMAGE_METHOD_TITLES[k]: interpolate(m, x[0], x[1], steps=10) for k, m in uncond.items()}
    imageplots.plot_grids(lines, 10, f"{cfg.fig_dir}/interpolation_{ds}.png", panel_width=5)
    plt.show()
    squares = {IMAGE_METHOD_TITLES[k]: square_interpolation(m, x[2:6], n=6) for k, m in uncond.items()}
    imageplots.plot_grids(squares, 6, f"{cfg.fig_dir}/square_interpolation_{ds}.png")
    plt.show()

# %% [markdown]
# ## Class-conditional samples (Figure 11): one row per class

# %%
for ds in cfg.datasets:
    for (d, key, s), m in runs.items():
        if d == ds and s == cfg.seed and m.arch.conditional:
            per_class = sample_images(m, 80, seed=cfg.seed, y=torch.arange(10).repeat_interleave(8))
            imageplots.plot_grids({f"{ds} conditional Soft-IntroVAE": per_class}, 8,
                                  f"{cfg.fig_dir}/conditional_{ds}.png", panel_width=4)
            plt.show()

# %% [markdown]
# ## The style-based pair: progressive growing, samples, reconstructions, interpolation
# Rows of the growth figure: the decoder at the end of each resolution (4x4, 8x8, ...), same latents,
# shown at the final size. Look for: coarse blobs at 4x4 sharpening into digits as resolutions are added.

# %%
for (ds, key, s), m in style_runs.items():
    grown = growth_samples(m, 16, seed=cfg.seed)
    imageplots.plot_grids({f"{r}x{r}": g for r, g in grown.items()}, 4, f"{cfg.fig_dir}/style_growth_{ds}.png",
                          panel_width=2.4)
    plt.show()
    x = imagestudy.test_images_for(m, ds, data_root=cfg.data_root, paper_data_root=cfg.paper_data_root)
    title = IMAGE_METHOD_TITLES[key]
    imageplots.plot_grids({f"{title} samples": sample_images(m, 64, seed=cfg.seed), "test images": x,
                           "reconstructions": reconstruct(m, x)}, 8, f"{cfg.fig_dir}/style_samples_{ds}.png")
    plt.show()
    imageplots.plot_grids({f"{title} interpolation": interpolate(m, x[0], x[1], steps=10)}, 10,
                          f"{cfg.fig_dir}/style_interpolation_{ds}.png", panel_width=5)
    plt.show()

# %% [markdown]
# ## The authors' released weights (evaluated, not trained; only when `released` names files)
# Samples, a walk between two random latents, reconstructions (CIFAR-10's test set; `released_images` for the
# style models), and for CIFAR-10 the Frechet scores below beside the paper's 4.6.

# %%
released_runs = imagestudy.load_released_runs(cfg.released, config=cfg.released_config, device=cfg.device)
for (ds, key, s), m in released_runs.items():
    panels = {f"{ds} {IMAGE_METHOD_TITLES[key]}": sample_images(m, 16, seed=cfg.seed),
              "latent walk": latent_walk(m, 8, seed=cfg.seed)}
    x = imagestudy.test_images_for(m, ds, data_root=cfg.data_root, paper_data_root=cfg.paper_data_root,
                                   folder=cfg.released_images, n=16)
    if x is not None:
        panels.update({"images": x, "reconstructions": reconstruct(m, x)})
    imageplots.plot_grids(panels, 4, f"{cfg.fig_dir}/released_{ds}.png")
    plt.show()
not_scored = sorted({ds for ds, _, _ in released_runs} - {ds for ds, _, _ in imagestudy.scorable(released_runs)})
if not_scored:
    print(f"not scored (their training images are not a dataset here): {', '.join(not_scored)}")

# %% [markdown]
# ## Training curves: reconstruction, KL of real / fake / reconstructed images, expELBO
# Look for: Soft-IntroVAE keeps KL(fake) above KL(real) (the encoder tells fakes apart).

# %%
log_curves(imagestudy.training_curves({**runs, **style_runs}), cfg.live_dir)
rows = [r for (ds, key, s), m in {**runs, **style_runs}.items() for r in history_rows(m, ds, key)]
imageplots.plot_training_curves(rows, path=f"{cfg.fig_dir}/training_curves.png")
plt.show()

# %% [markdown]
# ## Frechet scores (lower is better), precision and recall (higher is better)
# With Inception weights present, FID under the paper's protocol (Inception in eval mode, as pytorch-fid)
# and, beside it, under the authors' code's (BatchNorm in training mode, samples truncated to uint8): the
# gap between the two is the disputed part of the CIFAR-10 number. Without them, a labelled classifier FD.

# %%
scores = imagestudy.score_models({**runs, **style_runs, **imagestudy.scorable(released_runs)}, cfg,
                                 device=runs[next(iter(runs))].device)
summary = imagestudy.summarize_scores(scores)
table = imagestudy.write_image_tables(summary, scores["classifiers"], cfg.metrics_path, cfg.table_path,
                                      meta=dict(epochs=cfg.epochs, channels=cfg.channels_text,
                                                n_train=cfg.n_train or "all"))
display(Markdown(table))

# %%
_ = write_run_info(cfg.run_info_path, cfg.as_params(), seed=cfg.seed, device=str(runs[next(iter(runs))].device),
                   wall_time_s=round(time.time() - t0, 1), train_time_s=round(t_train, 1),
                   style_train_time_s=round(t_style, 1))

# %% [markdown]
# ## Interactive: pick two test images and slide between their latents (live kernel only)

# %%
if cfg.interactive:
    imageplots.interpolation_explorer(
        {IMAGE_METHOD_TITLES[k[1]]: m for k, m in runs.items()
         if k[0] == cfg.datasets[0] and k[2] == cfg.seed and not m.arch.conditional}, tests[cfg.datasets[0]].x[:100])
