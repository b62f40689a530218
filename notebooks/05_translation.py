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
# # Unsupervised image translation: section 6.4, Table 4, Figures 7, 19, 20 (Appendix 9.3)
#
# LORD's two-encoder architecture (a class encoder, a content encoder, a decoder whose AdaIN
# layers take the class code) trained without labels, as a plain VAE and as Soft-IntroVAE, with
# the one Trainer. We draw content-transfer grids (class of the row image, content of the column
# image), the KL of both codes during training (the VAE's posterior collapse, section 6.4), and
# score transfers against the true images: on the procedural toy cars every (identity, pose) is
# rendered, so the truth of any transfer is known exactly. All the logic lives in `sivae.translation`.

# %%
import time

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from sivae.paper import METHOD_TITLES
from sivae.plots import inline_figures
from sivae.runinfo import live_training, log_curves, write_run_info
from sivae.translation import metrics as M
from sivae.translation import plots as P
from sivae.translation import study as S

inline_figures()   # figures drawn into the notebook (and the report) even under MPLBACKEND=Agg

# %% tags=["parameters"]
seed = 0                     # base seed; seed k draws the identities, the initialisation and the data order
n_seeds = 2                  # seeds seed, ..., seed+n_seeds-1 (means and spreads over them; figures: the first)
device = "auto"              # "auto" (cuda if present), "cpu" or "cuda"
dataset = "procedural"       # "procedural" (toy cars, known factors), "cars3d" or "kth"
data_root = "none"           # folder of the Cars3D .mat files / KTH frames ("none": procedural needs none)
n_classes = 40               # procedural: training identities (Cars3D: 163)
n_test_classes = 10          # procedural: held-out identities (Cars3D: 20)
methods = "all"               # "all" or a comma list of vae, soft_intro_vae
enc_channels = "8,16,32,32"  # encoder conv channels (paper: 64,128,256,256)
dec_channels = "32,32,16,8"  # channels of the 4 upsampling convs (paper profile: 256,256,256,256, LORD's)
dec_hidden = 8               # channels of the 5th decoder conv (paper profile: 64)
fc_hidden = 256              # width of the fully connected layers
class_dim = 256              # class code size (paper: 256)
content_dim = 128            # content code size (paper: 128)
n_epochs = 4.0               # passes over the training images (paper: 400)
batch_size = 16              # paper: 64
lr = 0.001                   # Adam learning rate (public image code: 2e-4; the paper's value is lost in our copy)
lr_milestones = ""           # fractions of the run where lr drops x0.1 ("": constant)
beta_rec = 1.0               # weight of the reconstruction error
beta_kl = 1.0                # weight of the KL of real data (both codes)
beta_neg = 768.0             # Soft-IntroVAE: KL weight inside the expELBO (about 2 x d_z, d_z is 384)
gamma_r = 1e-8               # weight of the fakes' reconstruction in the decoder loss (paper: 1e-8)
num_vae = 0                  # plain-VAE warm-up iterations of Soft-IntroVAE
rec_loss = "auto"            # "mse", "vgg" or "auto" (vgg when VGG16 weights are present; says so otherwise)
vgg_weights = "auto"         # VGG16 weight file, or "auto" (torch hub cache); never downloaded
kl_every = 25                # iterations between records of the KL of each code
n_pairs = 500                # (class source, content source) pairs scored per split
n_grid = 6                   # class sources (rows) and content sources (columns) in the grids
ckpt_dir = "outputs/scratch/translation/checkpoints"  # <ckpt_dir>/seed<k>/<model>_<loss>/last.pt (+ code_kl.json)
fig_dir = "outputs/scratch/translation/figures"     # figures
metrics_path = "outputs/scratch/translation/metrics.json"  # DVC metrics file
table_path = "outputs/scratch/translation/table4.md"  # our scores beside Table 4's rows (markdown)
run_info_path = "outputs/scratch/translation/run_info.json"  # seed, parameters, versions, git commit
live_dir = "outputs/scratch/translation/live"        # training curves and code KLs through DVCLive (DVC plots)

# %%
cfg = S.TranslationConfig.from_params(globals())   # every parameter parsed and checked once (one ConfigError)
S.check_files(cfg)   # preflight: the dataset's files, the VGG16 weights if asked for, every output folder writable
live_training(cfg.live_dir, cfg.ckpt_dir)  # curves grow under live_dir while the runs train (DVCLive)
t0 = time.time()
datas = S.build_datas(cfg)   # {seed: dataset}
data = datas[cfg.seed]       # the figures show the first seed
print(data.summary(), f"x {cfg.n_seeds} seed(s) ({time.time() - t0:.0f} s)")

# %% [markdown]
# ## Training: the same network as a VAE and as Soft-IntroVAE
# The reconstruction loss is pixel MSE unless pretrained VGG16 weights are present (the next
# line says which was used).

# %%
seed_runs, loss_note = S.train_seeds(datas, cfg)
runs = seed_runs[cfg.seed]
print(loss_note)
print(f"trained {', '.join(runs)} x {cfg.n_seeds} seed(s) for {next(iter(runs.values())).n_iter} iterations each "
      f"in {time.time() - t0:.0f} s")

# %% [markdown]
# ## The KL of both codes during training (section 6.4: the VAE's KL vanishes)
# Look for: a code whose KL falls towards zero carries no information about the image (posterior
# collapse); the introspective model's expELBO term should keep both codes informative.

# %%
fig = P.plot_code_kl(runs, METHOD_TITLES, f"{cfg.fig_dir}/kl_codes.png")
log_curves(S.training_curves(seed_runs), cfg.live_dir)
plt.show()

# %% [markdown]
# ## Figures 7, 19, 20: content transfer on held-out identities
# Each cell decodes the class code of its row's image with the content code of its column's
# image. Look for: the row's car (shape, colours) in the column's pose, as in the ground-truth panel.

# %%
fig = P.plot_translation_grids(runs, data, METHOD_TITLES, f"{cfg.fig_dir}/translation_test.png", split="test",
                               n=cfg.n_grid, seed=cfg.seed, device=cfg.device)
plt.show()
fig = P.plot_translation_grids(runs, data, METHOD_TITLES, f"{cfg.fig_dir}/translation_train.png", split="train",
                               n=cfg.n_grid, seed=cfg.seed, device=cfg.device)
plt.show()

# %% [markdown]
# ## Table 4: transfer error against the truth, and leakage between the codes
# The paper reports LPIPS on Cars3D; here the truth is exact, so per-pixel MSE and SSIM are
# reported too, next to two answers that ignore the model (return the class source, return the
# content source). The paper's Cars3D numbers are not comparable with toy cars; they are listed
# for reference only.

# %%
lpips_fn, lpips_note = M.load_lpips(cfg.device)
print(lpips_note)
per_seed, refs = S.evaluate_seeds(seed_runs, datas, n_pairs=cfg.n_pairs, device=cfg.device, lpips_fn=lpips_fn)
means = S.average_seeds(per_seed)
table = S.write_table4(cfg.table_path, {m: means[m] for m in runs}, refs, data, lpips_note, loss_note,
                       n_seeds=cfg.n_seeds)
n_iter = next(iter(runs.values())).n_iter
out = S.write_metrics(cfg.metrics_path, per_seed,
                      meta={"n_iter": n_iter, "n_train_images": len(data.train), "seeds": cfg.n_seeds,
                            "vgg_loss": int(runs[next(iter(runs))].rec_loss == "vgg"),
                            "lpips_measured": int(lpips_fn is not None)})
display(Markdown(table))
_ = write_run_info(cfg.run_info_path, cfg.as_params(), seed=cfg.seed, device=cfg.device,
                   wall_time_s=round(time.time() - t0, 1), rec_loss=loss_note, lpips=lpips_note)
