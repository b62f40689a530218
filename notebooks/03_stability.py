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
# # Training stability: Figure 3 (section 6.2), posterior collapse: Figure 21 (Appendix 9.5)
#
# On 8 Gaussians with the Table 5 hyper-parameters we train IntroVAE for a range of hard
# margins m and plot the paper's KL and JSD against m (mean ± std over seeds); Soft-IntroVAE,
# which has no m, is a horizontal band. The KL(fake) training curves show the mechanism: once
# KL(fake) > m the hinge [m - KL(x_f)]^+ is zero and the encoder gets no adversarial gradient.
# Then a beta-VAE with beta_kl >> beta_rec (its KL term vanishes) against Soft-IntroVAE with the
# same weights, and Soft-IntroVAE over a grid of beta_neg. All the logic lives in `sivae.stability.study`.

# %%
import time

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from sivae.plots import inline_figures
from sivae.runinfo import check_writable, live_training, log_curves, write_run_info
from sivae.stability import plots as P
from sivae.stability import study as S
from sivae.stability.config import StabilityConfig

inline_figures()   # figures drawn into the notebook (and the report) even under MPLBACKEND=Agg

# %% tags=["parameters"]
seed = 0                     # base seed; the seeds are seed, ..., seed+n_seeds-1
device = "auto"              # "auto" (cuda if present), "cpu" or "cuda"
dataset = "8gaussians"       # the paper uses 8 Gaussians for both figures
n_seeds = 4                  # seeds per configuration (mean and spread in Figure 3)
n_iter = 1200                # training iterations per run (paper: 30000)
batch_size = 128             # paper: 512
lr = 2e-4                    # Adam learning rate (paper: 2e-4)
lr_milestones = "0.333333,0.5"   # MultiStepLR milestones as fractions of n_iter (the paper's 10k, 15k of 30k)
num_vae = 0                  # plain-VAE warm-up iterations of the introspective models
gamma_r = 1e-8               # weight of the fakes' reconstruction in the Soft-IntroVAE decoder loss
margins = "0.1,0.2,0.5,1,2,5,10,20,50"  # IntroVAE margins m (log-spaced, with the Table 5 margin 1)
curve_margins = "0.2,1,10"   # margins whose KL(fake) training curves are drawn (a subset of margins)
beta_negs = "0.3,0.9,3"    # Soft-IntroVAE beta_neg grid (Table 5: 0.9, always added)
collapse_beta_rec = 0.1      # Figure 21: beta_rec of the VAE and of Soft-IntroVAE
collapse_beta_kl = 1.0       # Figure 21: beta_kl >> beta_rec, the VAE's failing setting
collapse_beta_neg = 0.9      # Figure 21: Soft-IntroVAE's beta_neg
n_samples = 5000             # samples for the KL/JSD histograms (paper: 5000)
grid_size = 128              # gnELBO/density grid is grid_size x grid_size (paper: 1024)
engine = "stack"             # "stack": the runs of each grid as a few batched models (same trajectories); "single"
hidden = 256                 # width of the MLPs' hidden layers (paper: 256)
ckpt_dir = "outputs/scratch/stability/checkpoints"  # <ckpt_dir>/<model>_<value>/<dataset>/<model>/seed<k>/last.pt
fig_dir = "outputs/scratch/stability/figures"     # figures
metrics_path = "outputs/scratch/stability/metrics.json"  # DVC metrics file
run_info_path = "outputs/scratch/stability/run_info.json"  # seed, parameters, versions, git commit
live_dir = "outputs/scratch/stability/live"        # training curves through DVCLive (DVC plots)

# %%
cfg = StabilityConfig.from_params(globals())   # every parameter and every grid point checked once, before training
check_writable(ckpt_dir, fig_dir, metrics_path, run_info_path, live_dir)
live_training(live_dir, ckpt_dir)  # curves grow under live_dir while the runs train (DVCLive)
t0 = time.time()

# %% [markdown]
# ## Figure 3: IntroVAE against the margin m; Soft-IntroVAE (no m) as a band
# Look for: IntroVAE's KL/JSD change a lot with m, and the band sits at or below its best m.

# %%
margin_runs = S.run_grid(cfg.grids["m"], cfg.stack_dir)
beta_neg_runs = S.run_grid(cfg.grids["beta_neg"], cfg.stack_dir)   # Table 5's beta_neg among them
soft_beta_neg = cfg.table5("soft_intro_vae", "beta_neg")
margin, beta_neg = S.summarize_grid(margin_runs), S.summarize_grid(beta_neg_runs)
fig = P.plot_margin_sweep(margin, beta_neg[soft_beta_neg], cfg.table5("introvae", "m"),
                          f"{fig_dir}/figure3.png", f"Soft-IntroVAE (beta_neg = {soft_beta_neg:g}), mean ± std")
plt.show()
print(f"trained {len(cfg.margins)} margins and {len(beta_neg_runs)} beta_neg values x {cfg.n_seeds} seeds "
      f"in {time.time() - t0:.0f} s")

# %% [markdown]
# ## Why: KL(fake) against m during training (first seed)
# Where a curve is above its dashed line (shaded) the hinge is flat: the encoder no longer
# pushes fakes away and only the decoder's term, which lowers KL(fake), acts.

# %%
fig = P.plot_kl_fake_curves(margin_runs, cfg.curve_margins, f"{fig_dir}/kl_fake_vs_m.png")
plt.show()
display(Markdown(S.margin_table(margin)))

# %% [markdown]
# ## Figure 21: posterior collapse of the VAE, not of Soft-IntroVAE (same beta_rec, beta_kl)
# Look for: the VAE's KL(real) falls to ~0 and its samples collapse to one blob (the decoder
# ignores z); Soft-IntroVAE's KL stays positive and its samples keep the modes.

# %%
collapse_runs = S.run_collapse(cfg)
collapse = S.summarize_collapse(collapse_runs)
fig = P.plot_collapse(collapse_runs, f"{fig_dir}/figure21_collapse.png")
plt.show()
print(collapse)

# %% [markdown]
# ## Sensitivity of Soft-IntroVAE to beta_neg, beside IntroVAE's range over m
# The paper's claim: the soft exponent is far less sensitive than the hard margin.

# %%
fig = P.plot_beta_neg_sweep(beta_neg, margin, soft_beta_neg, f"{fig_dir}/beta_neg_sensitivity.png")
plt.show()
out = S.write_metrics(metrics_path, margin, beta_neg[soft_beta_neg], beta_neg, collapse,
                      meta={"n_iter": cfg.n_iter, "batch_size": cfg.batch_size, "seeds": cfg.n_seeds})
print(out["sensitivity"])
log_curves(S.training_curves(margin_runs, beta_neg_runs, collapse_runs), live_dir)
_ = write_run_info(run_info_path, cfg.as_params(), seed=cfg.seed, device=cfg.device,
                   wall_time_s=round(time.time() - t0, 1))
