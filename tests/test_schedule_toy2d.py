"""experiments/schedule_toy2d.py: the 2D schedule study judges its raw lines by the ledger's rule and reports,
per finding, which values each lever took."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("schedule_toy2d", ROOT / "experiments" / "schedule_toy2d.py")
S = importlib.util.module_from_spec(spec)
spec.loader.exec_module(S)


def line(m, seed, kl, *, batch=512, num_vae=500, n_iter=2000, lr=2e-4, milestones=(0.6, 0.8), cpu=60.0):
    return {"d": "spiral", "m": m, "seed": seed, "batch": batch, "num_vae": 0 if m == "vae" else num_vae,
            "n_iter": n_iter, "milestones": list(milestones), "lr": lr, "hidden": 256, "step": n_iter,
            "kl": kl, "jsd": kl / 2, "train_cpu_s": cpu}


def test_verdicts_pair_each_schedule_with_the_vae_of_its_batch_length_and_lr():
    rows = [line("soft_intro_vae", 0, 10.0), line("soft_intro_vae", 1, 10.2),
            line("vae", 0, 12.0), line("vae", 1, 12.2),
            # another lr: its own VAE, where Soft-IntroVAE is worse
            line("soft_intro_vae", 0, 15.0, lr=1e-3), line("soft_intro_vae", 1, 15.2, lr=1e-3),
            line("vae", 0, 12.0, lr=1e-3), line("vae", 1, 12.4, lr=1e-3)]
    v = {r["schedule"]: r["f"]["kl<vae"] for r in S.verdicts(rows)}
    assert v["b512-wu500-n2000-d0.6,0.8-lr0.0002-w256"]["verdict"] == "holds"
    assert v["b512-wu500-n2000-d0.6,0.8-lr0.001-w256"]["verdict"] == "fails"


def test_lever_coverage_lists_every_value_with_its_best_verdict_and_the_cheapest_holding_schedule():
    rows = [
        # the default: KL holds (10 vs 12)
        line("soft_intro_vae", 0, 10.0, cpu=78), line("soft_intro_vae", 1, 10.1, cpu=78),
        line("vae", 0, 12.0), line("vae", 1, 12.1),
        # a longer warm-up at the same length shares the default's VAE and fails
        line("soft_intro_vae", 0, 14.0, num_vae=1000), line("soft_intro_vae", 1, 14.1, num_vae=1000),
        # batch 128 holds with a quarter of the samples (its CPU time, measured under another load, is no guide)
        line("soft_intro_vae", 0, 10.0, batch=128, cpu=90), line("soft_intro_vae", 1, 10.1, batch=128, cpu=90),
        line("vae", 0, 12.0, batch=128), line("vae", 1, 12.1, batch=128),
        # a Soft-IntroVAE schedule without its VAE is not judged, so it counts for no lever
        line("soft_intro_vae", 0, 1.0, n_iter=9000), line("soft_intro_vae", 1, 1.0, n_iter=9000)]
    cov = {c["finding"]: c for c in S.lever_coverage(rows)}
    kl = cov["kl<vae"]
    assert kl["n_schedules"] == 3
    assert kl["levers"]["num_vae"] == {500: "holds", 1000: "fails"}
    assert kl["levers"]["batch"] == {128: "holds", 512: "holds"}
    assert kl["levers"]["n_iter"] == {2000: "holds"}
    assert kl["levers"]["milestones"] == {(0.6, 0.8): "holds"}
    assert kl["cheapest"] == {"schedule": "b128-wu500-n2000-d0.6,0.8-lr0.0002-w256", "samples_x_base": 1.33,
                              "cpu_min": 1.5}
    assert "kl<introvae" not in cov          # no IntroVAE run: nothing claimed about that finding


def test_lever_coverage_says_none_where_no_schedule_holds():
    rows = [line("soft_intro_vae", 0, 13.0), line("soft_intro_vae", 1, 13.5),
            line("vae", 0, 12.0), line("vae", 1, 12.1)]
    assert S.lever_coverage(rows)[0]["cheapest"] is None


def test_the_committed_lever_table_is_the_one_the_raw_output_gives(capsys):
    """docs/schedule_study.md's per-finding lever table is `schedule_toy2d.py levers` over the committed runs:
    appending runs without regenerating it fails here."""
    S.levers([])
    doc = (ROOT / "docs" / "schedule_study.md").read_text()
    block = doc.split("<!-- LEVERS-TABLE -->")[1].split("<!-- /LEVERS-TABLE -->")[0]
    assert block.strip() == capsys.readouterr().out.strip()
