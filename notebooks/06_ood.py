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
# All the logic lives in `sivae.ood` (config: the parameters below, parsed once into `OodConfig`; metrics:
# estimator, AUROC, histograms; study: models and pairs).
#
# Your own pair: `-p in_dist mnist -p ood folder:/path/to/images` (a folder is read at the
# model's size and channels); several OOD sets of one model: `-p ood fashionmnist+folder:/path`.
#
# **Beyond the paper** (last part): near-OOD pairs built from the data at hand (a class held out of
# training, blurred / shifted / contrast-reduced digits) and far-OOD checks (noise, constant images),
# scored by the paper's likelihood and by the corrections the field uses since: input complexity
# (PNG code length), a likelihood ratio against a background VAE, likelihood regret and a typicality
# test (`sivae.ood.scores`, `sivae.ood.near`).

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from sivae.ood.config import OodConfig
from sivae.ood.metrics import summarize_aurocs, write_table7
from sivae.ood.near import (
    beyond_metrics,
    beyond_rows,
    histograms_for,
    most_telling_pair,
    run_beyond_study,
    summarize_beyond,
    write_beyond_table,
)
from sivae.ood.plots import plot_figure8, plot_score_histograms
from sivae.ood.study import aurocs_rows, load_released_runs, run_ood_study, save_scores
from sivae.paper import IMAGE_METHOD_TITLES
from sivae.plots import inline_figures
from sivae.runinfo import write_run_info

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
own_ckpt_dir = "outputs/scratch/ood/checkpoints" # where those models are kept
near_pairs = "heldout:fashionmnist:9,blur:mnist:1.0,shift:mnist:3,contrast:mnist:0.3,noise,constant"  # beyond the
#             paper: heldout:<dataset>:<class>, blur|shift|contrast:<dataset>:<x>, noise, constant, folder:<path>
scores = "loglik,complexity,ratio,regret,typicality"   # sivae.ood.scores (loglik, the paper's, always)
near_n_eval = 500            # images per near/far OOD set and per set of the heldout models; 0: all
heldout_n_train = 10000      # training images of the heldout models (the other classes); 0: all
heldout_lr = 0.001           # their learning rate (the images stage's, for 1 epoch)
bg_mu = 0.2                  # likelihood ratio: share of values replaced in the background's training images
bg_channels = "4,8"          # background VAE widths
bg_epochs = 1.0
bg_n_train = 10000           # its training images (perturbed in-distribution ones); 0: all
bg_batch_size = 64
bg_lr = 0.001
regret_steps = 10            # likelihood regret: Adam steps on each image's posterior (Xiao et al.: 100)
regret_lr = 0.1
regret_n_eval = 8            # Monte Carlo draws of the ELBO before and after
typicality_batch = 1         # 1: single inputs; B: disjoint batches of B images
beyond_table_path = "outputs/scratch/ood/beyond.md"  # AUROC and FPR@95 per pair x score x model
released = ""                # authors weights scored beside the trained models, kind:path (cifar10:<file>
#                              for Table 7, CIFAR-10 -> SVHN; download: README)
released_config = ""         # JSON object of architecture overrides per kind (empty: as released)
fig_dir = "outputs/scratch/ood/figures"      # Figure 8 histograms
metrics_path = "outputs/scratch/ood/metrics.json"  # AUROCs (Table 7) as a DVC metrics file
table_path = "outputs/scratch/ood/table7.md"  # markdown Table 7 beside the paper's numbers
scores_path = "outputs/scratch/ood/scores.npz"  # every per-image score (nats)
run_info_path = "outputs/scratch/ood/run_info.json"  # seed, parameters, versions, git commit

# %%
cfg = OodConfig.from_params(globals())   # every parameter parsed and checked once (sivae/ood/config.py)
Path(cfg.own_ckpt_dir).mkdir(parents=True, exist_ok=True)
t0 = time.time()
runs = run_ood_study(cfg, released=load_released_runs(cfg.released, config=cfg.released_config, device=cfg.device))
t_table7 = time.time() - t0
print(f"scored {len(runs)} models in {t_table7:.0f} s")

# %% [markdown]
# ## Table 7: AUROC, in-distribution test images vs OOD images
# Look for: values near 1 for every pair where the paper has them (MNIST / Fashion-MNIST both ways,
# both models); on CIFAR-10 -> SVHN (paper profile) the VAE below 0.5 and Soft-IntroVAE near 1.

# %%
summary = summarize_aurocs(aurocs_rows(runs))
table = write_table7(summary, cfg.metrics_path, cfg.table_path, meta=cfg.table7_meta(),
                     titles=IMAGE_METHOD_TITLES)   # rewritten below with the beyond-the-paper metrics beside it
display(Markdown(table))

# %% [markdown]
# ## Figure 8: log-likelihood histograms of train, test and OOD images
# Look for: train and test overlapping (no overfitting) and the OOD histogram to their left
# (lower likelihood). A VAE that fails puts the OOD histogram to the right.

# %%
for in_ds in cfg.in_dist:
    plot_figure8(runs, in_ds, f"{cfg.fig_dir}/figure8_{in_ds}.png")
    plt.show()

# %% [markdown]
# ## Mean bits per dimension of each set (continuous density on [0, 1]^d; add 8 for the 8-bit scale)

# %%
for r in runs:
    bpd = ", ".join(f"{k} {v:.3f}" for k, v in r.result.mean_bits_per_dim().items())
    print(f"{r.in_dist} {r.method} seed {r.seed}: {bpd}")
save_scores(runs, cfg.scores_path)

# %% [markdown]
# ## Beyond the paper: near-OOD pairs and corrected scores
# Every trained model above, plus models trained here without the held-out class, scored on the
# paper's pairs, the near-OOD pairs and the far-OOD checks of `near_pairs` by each score of `scores`.
# Look for: raw likelihood far below 0.5 on blurred and low-contrast digits (simpler images score
# higher: Nalisnick et al.), near 1 on noise; which correction lifts which pair (input complexity
# ranks by PNG compressibility alone with this Gaussian decoder: docs/ood.md); whether Soft-IntroVAE
# stays above the VAE once the score is corrected.

# %%
t1 = time.time()
beyond = run_beyond_study(cfg, runs)
t_beyond = time.time() - t1
cost = {s: round(sum(r.seconds.get(s, 0) for r in beyond), 1) for s in cfg.scores}
print(f"beyond the paper: {len(beyond)} models in {t_beyond:.0f} s (Table 7 scoring: {t_table7:.0f} s); "
      f"seconds per score, all models: {cost}")
bsum = summarize_beyond(beyond_rows(beyond))
write_table7(summary, cfg.metrics_path, cfg.table_path, meta=cfg.table7_meta(), titles=IMAGE_METHOD_TITLES,
             extra={"beyond": beyond_metrics(bsum)})
display(Markdown(write_beyond_table(bsum, cfg.beyond_table_path, meta=cfg.beyond_meta())))

# %% [markdown]
# ## The most telling pair: histograms of every score
# The pair whose scores disagree most (largest spread of AUROCs over scores and models), first seed.

# %%
telling = most_telling_pair(bsum)
if telling is not None:
    slug = "".join(c if c.isalnum() else "_" for c in f"{telling.in_dist}__{telling.ood}")
    plot_score_histograms(histograms_for(beyond, telling, bins=cfg.bins), telling, f"{cfg.fig_dir}/beyond_{slug}.png")
    plt.show()
_ = write_run_info(cfg.run_info_path, cfg.as_params(), seed=cfg.seed, device=cfg.device,
                   wall_time_s=round(time.time() - t0, 1), checkpoints=[r.ckpt for r in runs],
                   seconds=dict(table7=round(t_table7, 1), beyond=round(t_beyond, 1), beyond_per_score=cost))
