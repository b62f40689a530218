"""Every notebook end to end through papermill at a tiny profile, outputs in a temp dir."""
import json

import numpy as np
import pytest
from nbutil import ROOT, load_yaml, run_notebook, stage_notebook, write_tiny_idx

# The tiny profile of each stage: values that make it run in well under a minute.
TINY = {
    "theory_discrete": dict(n_steps=300, n_gamma_grid=6, n_ablation_seeds=2, gammas="0.0,0.5", alphas="2.0"),
    "toy2d": dict(n_iter=8, batch_size=32, n_seeds=2, datasets="8gaussians,rings", methods="all",
                  grid_size=32, n_samples=400, num_vae=2),
    "images": dict(n_train=0, epochs=1, batch_size=16, channels="4,4", z_dim=8, n_fd_samples=64,
                   classifier_epochs=1, use_inception=False, style_n_train=0, style_resolution=8, style_channels="4,4",
                   style_z_dim=4, style_w_dim=4, style_mapping_layers=1, style_epochs_per_lod=0.5,
                   style_batch_size=16),
    "stability": dict(n_iter=6, batch_size=16, n_seeds=1, margins="0.1,50", curve_margins="0.1,50",
                      beta_negs="0.5", grid_size=16, n_samples=300),
    # ckpt_dir is an empty temp dir here, so the notebook trains its own tiny models (train_missing)
    "ood": dict(n_importance=2, n_eval=16, bins=10, train_epochs=1, train_batch_size=16, train_channels="4,4",
                near_n_eval=8, heldout_n_train=32, bg_n_train=32, bg_channels="4,4", bg_batch_size=16, regret_steps=2,
                regret_n_eval=2),
    "translation": dict(n_classes=3, n_test_classes=2, enc_channels="4,8", dec_channels="8,8,4,4", dec_hidden=4,
                        fc_hidden=16, class_dim=8, content_dim=4, n_epochs=0.25, batch_size=16, kl_every=2,
                        n_pairs=20, n_grid=3),
}
# the report reads the other stages' executed notebooks: tests/report/test_report.py runs it at the tiny profile
STAGES = [s for s, spec in load_yaml("dvc.yaml")["stages"].items()
          if s != "report" and spec["cmd"] == f"python -m sivae.stage {s}"]   # sweep_grid runs no notebook


def redirect_outputs(section: dict, tmp) -> dict:
    """Every path parameter of a params.yaml section, moved under tmp."""
    return {k: tmp / v for k, v in section.items()
            if k.endswith(("_dir", "_path")) or k == "executed_notebook"}


@pytest.mark.parametrize("stage", STAGES)
def test_notebook_runs_at_tiny_profile(stage, tmp_path):
    section = load_yaml("params.yaml")[stage]
    paths = redirect_outputs(section, tmp_path)
    if "data_root" in section:  # image stages read small self-written files, never data/
        for name in ("mnist", "fashionmnist"):
            write_tiny_idx(tmp_path / "data", name, n_train=48, n_test=40)
        paths["data_root"] = tmp_path / "data"
    params = {**TINY.get(stage, {}), "interactive": False,   # device: the profile's "auto", as a user runs it
              **{k: v for k, v in paths.items() if k != "executed_notebook"}}
    if stage == "images":  # evaluate a (tiny, synthetic) file in the layout of the authors' released FFHQ model
        from released_layouts import TINY as TINY_RELEASED
        from released_layouts import save_style, their_style_models
        ckpt = save_style(tmp_path, their_style_models(TINY_RELEASED), "ffhq_tiny.pth")
        params.update(released=f"ffhq:{ckpt}", released_config=json.dumps({"ffhq": TINY_RELEASED}))
    repo_out = ROOT / "outputs" / stage
    before = {p: p.stat().st_mtime_ns for p in repo_out.rglob("*")} if repo_out.exists() else {}
    res = run_notebook(stage_notebook(stage), paths["executed_notebook"], params)
    assert res.returncode == 0, res.stderr[-3000:]
    assert paths["executed_notebook"].exists()
    figs = list(paths["fig_dir"].glob("*.png"))
    assert figs, "no figure written"
    # under MPLBACKEND=Agg (as `make repro` and this run set it) the executed notebook still shows every figure
    shown = sum("image/png" in o.get("data", {}) for c in json.loads(paths["executed_notebook"].read_text())["cells"]
                for o in c.get("outputs", []))
    assert shown >= len(figs), f"the executed notebook shows {shown} figures, the stage saved {len(figs)}"
    metrics = json.loads(paths["metrics_path"].read_text())
    assert metrics
    if stage == "images":  # the style-based pair: grown, drawn and scored beside the residual models
        assert {"style_growth_mnist.png", "style_samples_mnist.png", "style_interpolation_mnist.png",
                "released_ffhq.png"} <= {f.name for f in figs}
        assert np.isfinite(metrics["mnist"]["style_soft_intro_vae"]["fd_classifier"])
    if "live_dir" in section:  # training curves through DVCLive: one folder per run, one TSV per loss
        tsvs = sorted(paths["live_dir"].rglob("plots/metrics/*.tsv"))
        assert tsvs, "no DVCLive training curves written"
        for t in tsvs:
            head, *rows = t.read_text().splitlines()
            assert head == f"step\t{t.stem}" and rows, t
            assert all(np.isfinite(float(r.split("\t")[1])) for r in rows), t
        names = {t.stem for t in tsvs}
        need = {"kl_class", "kl_content", "kl_real"} if stage == "translation" else {"kl_real", "kl_fake", "rec"}
        assert need <= names, names
    after = {p: p.stat().st_mtime_ns for p in repo_out.rglob("*")} if repo_out.exists() else {}
    assert after == before, "the run wrote into the repository's outputs/ instead of the temp dir"
    if "run_info_path" in paths:
        info = json.loads(paths["run_info_path"].read_text())
        assert info["params"] and info["packages"]["torch"] and "commit" in info["git"]


def test_bad_parameter_fails_with_one_clear_message(tmp_path):
    section = load_yaml("params.yaml")["toy2d"]
    paths = redirect_outputs(section, tmp_path)
    res = run_notebook(stage_notebook("toy2d"), paths["executed_notebook"],
                       {**TINY["toy2d"], "datasets": "moons", "interactive": False,
                        **{k: v for k, v in paths.items() if k != "executed_notebook"}})
    assert res.returncode != 0
    assert "unknown datasets 'moons'; choose one of" in res.stderr + res.stdout
    assert not paths["metrics_path"].exists()
