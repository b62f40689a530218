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
# # Out-of-distribution detection: Table 7 and Figure 8 (paper section 6.5, Appendix 9.7)
#
# A model trained on one dataset scores images by their likelihood; images of another dataset
# should score lower. Nalisnick et al. found that a VAE fails this test on CIFAR-10 vs SVHN; the
# paper reports that Soft-IntroVAE passes it (Table 7). Each image is scored by the
# importance-weighted estimate of log p(x) with M samples from q(z|x) and by its ELBO, with the
# decoder read as a Gaussian of variance `sigma2` (normalising constant included, so the numbers are
# log-densities in nats). We report the AUROC of in-distribution test images against the OOD images
# (Table 7) and histograms of the log-likelihoods of train, test and OOD images (Figure 8).
# All the logic lives in `sivae.ood` (metrics: estimator, AUROC, histograms; study: models and pairs).
#
# Your own pair: `-p in_dist mnist -p ood folder:/path/to/images` (a folder is read at the
# model's size and channels); several OOD sets of one model: `-p ood fashionmnist+folder:/path`.

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from sivae.ood.metrics import summarize_aurocs, write_table7
from sivae.ood.plots import plot_figure8
from sivae.ood.study import aurocs_rows, load_released_runs, parse_pairs, run_ood_study, save_scores
from sivae.paper import IMAGE_METHOD_TITLES
from sivae.params import parse_list, seeds_from
from sivae.plots import inline_figures
from sivae.runinfo import write_run_info
from sivae.train import METHODS

inline_figures()   # figures drawn into the notebook (and the report) even under MPLBACKEND=Agg

# %% tags=["parameters"]
seed = 0                     # base seed: model seeds seed .. seed+n_seeds-1; also seeds subsets and samples
n_seeds = 2                  # models per (dataset, method); mean ± std over them
device = "auto"              # "auto" (cuda if present), "cpu" or "cuda"
in_dist = "mnist,fashionmnist"   # comma list of the datasets the models were trained on
ood = "fashionmnist,mnist"       # one entry per in_dist entry; "+" joins sets; folder:<path> allowed
methods = "vae,soft_intro_vae"   # comma list of trained methods to compare
n_importance = 32            # M, importance samples per image (the paper's value is lost from our text)
sigma2 = 0.5                 # decoder variance of p(x|z), a Gaussian around D(z); 0.5 matches beta_rec 1
chunk_size = 256             # most latents per decoder call (memory bound; CPU: 64-256, GPU: thousands)
n_eval = 1000                # images per set (seeded random subset of each split); 0: all
convert = "none"             # "none": reject mismatched image shapes; "auto": luma/repeat channels, resize
bins = 60                    # histogram bins of Figure 8
data_root = "data"           # DVC-pinned datasets (MNIST, Fashion-MNIST)
paper_data_root = "data_paper"   # CIFAR-10 / SVHN (paper profile)
ckpt_dir = "outputs/images/checkpoints"      # the image stage's <dataset>_<method>_seed<k>/last.pt
train_missing = True         # train models the image stage does not have (paper hyper-parameters)
train_epochs = 1.0           # those models' epochs; "paper": 200 MNIST/Fashion-MNIST, 220 CIFAR-10/SVHN
train_batch_size = 64        # "paper": 128 MNIST/Fashion-MNIST, 32 CIFAR-10/SVHN
train_channels = "8,16"     # residual widths; "paper": (64,128) at 28x28, (64,128,256) at 32x32
train_n_train = 0            # first n training images for those models (0: all)
own_ckpt_dir = "outputs/scratch/ood/checkpoints"  # where those models are kept
released = ""                # authors weights scored beside the trained models, kind:path (cifar10:<file>
#                              for Table 7, CIFAR-10 -> SVHN; download: README)
released_config = ""         # JSON object of architecture overrides per kind (empty: as released)
fig_dir = "outputs/scratch/ood/figures"      # Figure 8 histograms
metrics_path = "outputs/scratch/ood/metrics.json"  # AUROCs (Table 7) as a DVC metrics file
table_path = "outputs/scratch/ood/table7.md"  # markdown Table 7 beside the paper's numbers
scores_path = "outputs/scratch/ood/scores.npz"  # every per-image score (nats)
run_info_path = "outputs/scratch/ood/run_info.json"  # seed, parameters, versions, git commit

# %%
params = dict(seed=seed, n_seeds=n_seeds, device=device, in_dist=in_dist, ood=ood, methods=methods,
              n_importance=n_importance, sigma2=sigma2, chunk_size=chunk_size, n_eval=n_eval, convert=convert,
              bins=bins, train_missing=train_missing, train_epochs=train_epochs, train_batch_size=train_batch_size,
              train_channels=train_channels, train_n_train=train_n_train, released=released,
              released_config=released_config)
groups = parse_pairs(in_dist, ood)
Path(own_ckpt_dir).mkdir(parents=True, exist_ok=True)
t0 = time.time()
runs = run_ood_study(groups, parse_list("methods", methods, METHODS), seeds_from(seed, n_seeds), eval_seed=seed,
                     data_root=data_root, paper_data_root=paper_data_root, ckpt_dir=ckpt_dir,
                     own_ckpt_dir=own_ckpt_dir, train_missing=train_missing,
                     train_kw=dict(epochs=train_epochs, batch_size=train_batch_size, channels=train_channels,
                                   n_train=train_n_train),
                     n_eval=n_eval, n_importance=n_importance, sigma2=sigma2, chunk_size=chunk_size,
                     convert=convert, bins=bins, device=device,
                     released=load_released_runs(released, config=released_config, device=device))
print(f"scored {len(runs)} models in {time.time() - t0:.0f} s")

# %% [markdown]
# ## Table 7: AUROC, in-distribution test images vs OOD images
# Look for: values near 1 for every pair where the paper has them (MNIST / Fashion-MNIST both ways,
# both models); on CIFAR-10 -> SVHN (paper profile) the VAE below 0.5 and Soft-IntroVAE near 1.

# %%
summary = summarize_aurocs(aurocs_rows(runs))
table = write_table7(summary, metrics_path, table_path,
                     meta=dict(M=n_importance, sigma2=sigma2, images_per_set=n_eval or "all", seeds=n_seeds),
                     titles=IMAGE_METHOD_TITLES)
display(Markdown(table))

# %% [markdown]
# ## Figure 8: log-likelihood histograms of train, test and OOD images
# Look for: train and test overlapping (no overfitting) and the OOD histogram to their left
# (lower likelihood). A VAE that fails puts the OOD histogram to the right.

# %%
for in_ds, _ in groups:
    plot_figure8(runs, in_ds, f"{fig_dir}/figure8_{in_ds}.png")
    plt.show()

# %% [markdown]
# ## Mean bits per dimension of each set (continuous density on [0, 1]^d; add 8 for the 8-bit scale)

# %%
for r in runs:
    bpd = ", ".join(f"{k} {v:.3f}" for k, v in r.result.mean_bits_per_dim().items())
    print(f"{r.in_dist} {r.method} seed {r.seed}: {bpd}")
save_scores(runs, scores_path)
_ = write_run_info(run_info_path, params, seed=seed, device=device, wall_time_s=round(time.time() - t0, 1),
                   checkpoints=[r.ckpt for r in runs])
