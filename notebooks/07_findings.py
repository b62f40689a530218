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
# # The paper's findings, checked
#
# Every finding of the paper that this project reproduces, as a named statement checked against the
# metrics the other stages wrote: `holds`, `inconclusive` (inside the seed spread, or too few seeds),
# `fails` (reversed beyond the spread) or `not run`. The decision rule is stated once, in
# `sivae.findings.study`; where the paper prints a number, ours is put beside it (`in band` when our mean
# lies inside the paper's mean ± std).

# %%
import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from sivae.findings import plots as P
from sivae.findings import study as F
from sivae.plots import inline_figures
from sivae.profiles import current
from sivae.runinfo import write_run_info

inline_figures()   # figures drawn into the notebook (and the report) even under MPLBACKEND=Agg

# %% tags=["parameters"]
seed = 0                     # unused (nothing is random here); every stage takes it
device = "auto"              # unused; every stage takes it
profile = "auto"             # profile named in the table; auto: the profile that params.yaml equals
theory_metrics = "outputs/theory_discrete/metrics.json"
toy2d_metrics = "outputs/toy2d/metrics.json"
toy2d_run_info = "outputs/toy2d/run_info.json"
toy2d_budget = "outputs/toy2d/budget.json"
stability_metrics = "outputs/stability/metrics.json"
stability_run_info = "outputs/stability/run_info.json"
images_metrics = "outputs/images/metrics.json"
images_run_info = "outputs/images/run_info.json"
ood_metrics = "outputs/ood/metrics.json"
ood_run_info = "outputs/ood/run_info.json"
translation_metrics = "outputs/translation/metrics.json"
metrics_path = "outputs/scratch/findings.json"   # the ledger, a DVC metrics file: numbers only (verdict codes)
table_path = "outputs/scratch/findings/findings.md"  # the ledger as a markdown table
details_path = "outputs/scratch/findings/details.json"   # each finding's statement, check and numbers (texts)
margin_plot_path = "outputs/scratch/findings/kl_vs_m.json"  # KL(fake) and KL against IntroVAE's m (a DVC plot)
fig_dir = "outputs/scratch/findings/figures"
run_info_path = "outputs/scratch/findings/run_info.json"

# %%
t0 = time.time()
profile_name = (current() or "custom") if profile == "auto" else str(profile)
stages = {"theory_discrete": F.load_stage(theory_metrics), "toy2d": F.load_stage(toy2d_metrics, toy2d_run_info),
          "stability": F.load_stage(stability_metrics, stability_run_info),
          "images": F.load_stage(images_metrics, images_run_info), "ood": F.load_stage(ood_metrics, ood_run_info),
          "translation": F.load_stage(translation_metrics)}
budget_rows = json.loads(Path(toy2d_budget).read_text()) if Path(toy2d_budget).is_file() else None
findings = F.build_ledger(stages, budget_rows)
ledger = F.write_ledger(findings, metrics_path, table_path, profile_name, details_path)
_ = P.write_margin_rows(stages["stability"], margin_plot_path)
print(F.summary_line(findings, profile_name))

# %% [markdown]
# ## Verdicts by section

# %%
fig = P.plot_verdicts(findings, f"{fig_dir}/verdicts.png", title=F.summary_line(findings, profile_name))
plt.show()

# %% [markdown]
# ## The ledger

# %%
display(Markdown("\n".join(F.ledger_markdown(findings, profile_name))))
params = dict(seed=seed, device=device, profile=profile_name)
_ = write_run_info(run_info_path, params, seed=seed, device=device, wall_time_s=round(time.time() - t0, 1))
