"""experiments/schedule_sections.py: the section schedule study reads the budget scripts' raw lines right."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("schedule_sections", ROOT / "experiments" / "schedule_sections.py")
S = importlib.util.module_from_spec(spec)
spec.loader.exec_module(S)


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_ood_lines_give_both_65_verdicts_margin_and_cost(tmp_path):
    f = write(tmp_path / "ood_fashionmnist_lr2e-3.jsonl", [
        {"pair": "fashionmnist->mnist", "method": "vae", "seed": 0, "epoch": 1.0, "auroc_loglik": 0.95, "train_s": 30},
        {"pair": "fashionmnist->mnist", "method": "soft_intro_vae", "seed": 0, "epoch": 1.0, "auroc_loglik": 0.97,
         "train_s": 240},
        {"pair": "fashionmnist->mnist", "method": "soft_intro_vae", "seed": 1, "epoch": 1.0, "auroc_loglik": 0.97,
         "train_s": 120},
        {"pair": "fashionmnist->mnist", "epoch": 1.0, "vae": [0.95, 0.003], "soft_intro_vae": [0.97, 0.004],
         "sivae_above_vae": "holds", "sivae_at_least_0.99": "fails"}])
    v = {r["finding"]: r for r in S.verdicts(f)}
    assert v["6.5-sivae-auroc-above-vae-fashionmnist-to-mnist"]["verdict"] == "holds"
    assert v["6.5-sivae-auroc-near-perfect-fashionmnist-to-mnist"]["verdict"] == "fails"
    assert v["6.5-sivae-auroc-above-vae-fashionmnist-to-mnist"]["cpu_min"] == 3.0   # (240 + 120) / 2 s
    m, cpu = S.margins(f, "ood")
    assert m["fashionmnist->mnist"] == (pytest.approx(0.02), pytest.approx(0.005)) and cpu == pytest.approx(3.0)
    assert "| ood | fashionmnist | lr2e-3 | `6.5-sivae-auroc-above-vae-fashionmnist-to-mnist` | fails | **holds** |" in S.table(
        [f], default={"6.5-sivae-auroc-above-vae-fashionmnist-to-mnist": "fails"})


def test_images_margin_points_toward_lower_fd_and_translation_keeps_the_last_epoch(tmp_path):
    f = write(tmp_path / "images_mnist_b32.jsonl", [
        {"dataset": "mnist", "model": m, "seed": k, "epoch": 1, "score": x}
        for m, xs in (("vae", (230.0, 290.0)), ("soft_intro_vae", (360.0, 400.0))) for k, x in enumerate(xs)] + [
        {"epoch": 1, "finding": "6.3-sivae-samples-better-than-vae-mnist", "verdict": "fails", "ours": {"a": 1}}])
    m, _ = S.margins(f, "images")   # seed means 260 and 380, sample stds 42.4 and 28.3
    assert m["mnist"] == (pytest.approx(-120.0), pytest.approx(50.99, abs=0.01))   # worse than the VAE: negative
    t = write(tmp_path / "translation_procedural_lr2e-3.jsonl", [
        {"epoch": 1, "kl_class_vae": [8.0, 0.1], "kl_class_soft_intro_vae": [30.0, 1.0],
         "vae_class_kl_vanishes": "fails", "sivae_class_kl_above_vae": "holds"},
        {"epoch": 4, "kl_class_vae": [0.1, 0.01], "kl_class_soft_intro_vae": [30.0, 1.0],
         "vae_class_kl_vanishes": "holds", "sivae_class_kl_above_vae": "holds"}])
    v = {r["finding"]: r for r in S.verdicts(t)}
    assert v["6.4-vae-class-code-kl-vanishes"]["verdict"] == "holds" and "epoch 4" in v[
        "6.4-vae-class-code-kl-vanishes"]["ours"]
