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
# # The report
#
# A static site of every stage: an index opening with a summary per paper section and the findings (failures
# first), then one page per stage rendered from its executed notebook (code folded), every figure stamped with
# the stage, profile, parameters, git commit, data and wall time that made it, and linked to the cell that drew
# it. Open `outputs/report/site/index.html` in a browser;
# no server and no network needed. The logic lives in `sivae.report.study`.

# %%
import time

from IPython.display import Markdown, display

from sivae.profiles import current
from sivae.report import study as R
from sivae.runinfo import write_run_info

# %% tags=["parameters"]
seed = 0                     # unused (nothing is random here); every stage takes it
device = "auto"              # unused; every stage takes it
profile = "auto"             # profile named on the pages; auto: the profile that params.yaml equals
stages = "theory_discrete,toy2d,stability,images,ood,translation,findings"   # the pages (shown in paper order)
params_file = "params.yaml"  # where each stage's executed notebook and run record are named
findings_table = "outputs/findings/findings.md"  # the table the index opens with
data_dvc = "data.dvc"        # the versioned data (its md5 is stamped on the image stages' figures)
out_dir = "outputs/scratch/report/site"  # the site: index.html and <stage>.html
run_info_path = "outputs/scratch/report/run_info.json"  # seed, parameters, versions, git commit

# %%
t0 = time.time()
profile_name = (current() or "custom") if profile == "auto" else str(profile)
site = R.build_report(out_dir, params_file=params_file, stages=stages, findings_table=findings_table,
                      data_dvc=data_dvc, profile=profile_name)
problems = R.check_site(out_dir)
assert not problems, problems
display(Markdown(f"Wrote {len(site['pages'])} pages with {site['figures']} stamped figures to `{out_dir}/index.html`"
                 + (f"; not run: {', '.join(site['missing'])}" if site["missing"] else "")))
params = dict(seed=seed, device=device, profile=profile_name, stages=stages)
_ = write_run_info(run_info_path, params, seed=seed, device=device, wall_time_s=round(time.time() - t0, 1))
