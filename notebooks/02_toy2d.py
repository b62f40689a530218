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
# # 2D toy datasets: Figure 2 and Table 2 (paper section 6.1)
#
# VAE, IntroVAE and Soft-IntroVAE on 8 Gaussians, Spiral, Checkerboard and Rings, each with its
# Table 5 hyper-parameters. We draw Figure 2 (real samples; each model's samples and its density
# exp(-negative ELBO) over a grid) and Table 2 (the paper's KL, JSD and grid-normalised ELBO,
# mean ± std over seeds; lower is better). All the logic lives in `sivae.toy2d.study`.

# %%
import time

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from sivae.paper import METHOD_TITLES, PAPER_TABLE2
from sivae.params import parse_bool
from sivae.plots import in_live_kernel, inline_figures
from sivae.runinfo import check_writable, live_training, log_curves, write_run_info
from sivae.toy2d import plots
from sivae.toy2d.config import Toy2dConfig
from sivae.toy2d.study import run_toy2d, summarize, training_curves, write_budget, write_table2

inline_figures()   # figures drawn into the notebook (and the report) even under MPLBACKEND=Agg

# %% tags=["parameters"]
seed = 0                     # base seed; the seeds are seed, seed+1, ..., seed+n_seeds-1
n_seeds = 2                  # seeds per (dataset, model)
device = "auto"              # "auto" (cuda if present), "cpu" or "cuda"
datasets = "all"             # "all" or a comma list of 8gaussians, spiral, checkerboard, rings
methods = "all"               # "all" or a comma list of vae, introvae, soft_intro_vae
n_iter = 2000                # training iterations per run (paper: 30000)
n_iter_factor = "8gaussians:2"  # comma list of dataset:factor, those datasets train factor x n_iter ("": none)
batch_size = 512             # paper: 512
lr = 2e-4                    # Adam learning rate (paper: 2e-4)
lr_milestones = "0.6,0.8"    # MultiStepLR milestones, fractions of n_iter (paper: 10k, 15k of 30k)
num_vae = 500                # plain-VAE warm-up iterations of the introspective models (paper: 2000)
gamma_r = 1e-8               # weight of the fakes' reconstruction in the decoder loss
beta_rec = "table5"          # "table5" or a number overriding Table 5 for every run
beta_kl = "table5"           # idem
beta_neg = "table5"          # idem (Soft-IntroVAE: KL weight in the expELBO; IntroVAE: hinge weight)
m = "table5"                 # IntroVAE margin: "table5" or a number
n_samples = 5000             # samples for the KL/JSD histograms (paper: 5000)
grid_size = 1024             # gnELBO/density grid is grid_size x grid_size (paper: 1024)
engine = "stack"             # "stack": each method's runs as one batched model (same trajectories); "single": one by one
hidden = 256                 # width of the MLPs' hidden layers (paper: 256)
interactive = True           # show the ipywidgets explorer in a live kernel
ckpt_dir = "outputs/scratch/toy2d/checkpoints"   # checkpoints: <ckpt_dir>/<dataset>/<model>/seed<k>/last.pt
fig_dir = "outputs/scratch/toy2d/figures"        # figures
metrics_path = "outputs/scratch/toy2d/metrics.json"  # Table 2 as a DVC metrics file
table_path = "outputs/scratch/toy2d/table2.md"   # Table 2 as markdown, beside the paper's numbers
run_info_path = "outputs/scratch/toy2d/run_info.json"  # seed, parameters, versions, git commit
budget_path = "outputs/scratch/toy2d/budget.json"  # KL/JSD at log-spaced steps of every run (budget curves)
live_dir = "outputs/scratch/toy2d/live"          # training curves through DVCLive (DVC plots)

# %%
cfg = Toy2dConfig.from_params(globals())   # every parameter parsed and checked once, before any training
interactive = parse_bool("interactive", interactive)  # papermill -p interactive false arrives as a string
check_writable(ckpt_dir, fig_dir, metrics_path, table_path, run_info_path, budget_path, live_dir)  # before training
live_training(live_dir, ckpt_dir)  # curves grow under live_dir while the runs train (DVCLive)
t0 = time.time()
runs = run_toy2d(cfg)
print(f"trained and evaluated {len(runs)} runs in {time.time() - t0:.0f} s")

# %% [markdown]
# ## Figure 2: samples and densities
# Look for: the VAE spreads mass between the modes (density outside the data support), while the
# introspective models keep samples and density on the support.

# %%
model_keys = [k for k in METHOD_TITLES if any(r.model == k for r in runs)]
fig = plots.plot_figure2(runs, model_keys, f"{fig_dir}/figure2.png", METHOD_TITLES)
plt.show()

# %% [markdown]
# ## Table 2: KL, JSD, gnELBO (paper definitions; lower is better), mean ± std over seeds
# `jsd_textbook` is the usual Jensen-Shannon divergence, reported beside the paper's variant.
# The paper's column holds its printed (rescaled) numbers: compare orderings, not magnitudes.

# %%
summary = summarize(runs)
table = write_table2(summary, metrics_path, table_path,
                     meta={"n_iter": {d: cfg.n_iter_of(d) for d in cfg.datasets}, "batch_size": cfg.batch_size,
                           "seeds": cfg.n_seeds})
display(Markdown(table))

# %% [markdown]
# ## Training curves (first seed): reconstruction, KL of real data, KL of generated data

# %%
fig = plots.plot_toy_history(runs, path=f"{fig_dir}/training_curves.png")
log_curves(training_curves(runs), live_dir)
plt.show()
# %% [markdown]
# ## Budget curves: KL and JSD along the runs (log-spaced steps), the paper's 30k-iteration values dashed
# Where a line has not reached its dashed value, the finding needs a larger budget than this profile's.

# %%
budget = write_budget(runs, budget_path)
for metric in ("kl", "jsd"):
    fig = plots.plot_budget(budget, PAPER_TABLE2, METHOD_TITLES, f"{fig_dir}/budget_{metric}.png", metric=metric)
    plt.show()
_ = write_run_info(run_info_path, cfg.as_params(), seed=cfg.seed, device=cfg.device,
                   wall_time_s=round(time.time() - t0, 1))

# %% [markdown]
# ## Explore (live kernel only): pick a dataset and a model

# %%
if interactive and in_live_kernel():
    display(plots.toy_explorer(runs, METHOD_TITLES))
