"""Translation budget experiment (section 6.4): the translation stage's models trained longer, judged as the ledger judges.

    python experiments/budget_translation.py N_EPOCHS SEEDS OUT_DIR [KEY=VALUE ...]
    e.g. python experiments/budget_translation.py 8 0,1 /tmp/tr8

Each seed trains both models as the translation stage trains them (params.yaml's `translation` section:
data, widths, batch size, lr, loss weights; KEY=VALUE overrides keys of that section) for N_EPOCHS passes,
checkpointed under OUT_DIR/seed<k>/ (a killed run resumes). The stage's default schedule has no learning-rate
steps, so a longer run's first epochs follow the stage's schedule (not so with lr_milestones=..., whose decays
fall at fractions of N_EPOCHS; and not checked against the stage's checkpoints: the KL records fall every
kl_every steps, not at the stage's last step); the per-code KL recorded along the
runs (every kl_every iterations) then gives the class-code KL at every epoch from 1 to N_EPOCHS: printed per
epoch with the ledger's two KL verdicts. At the end every model is evaluated as the stage evaluates it
(sivae.translation.study.evaluate_seeds), the seed means are written to OUT_DIR/metrics.json in the
stage's format, and the ledger's own 6.4 findings (sivae.findings.study.build_ledger) are printed from it.
The budget statements for 6.4 in docs/findings.md come from this script.
"""
import json
import sys
import time
from pathlib import Path

import yaml

from sivae.findings.study import CLASS_KL_COLLAPSED, Stat, build_ledger, compare, load_stage, threshold
from sivae.params import parse_seeds
from sivae.stage import stage_parameters
from sivae.stats import seed_stats
from sivae.translation import metrics as M
from sivae.translation import study as S


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    n_epochs, seeds, out = float(argv[0]), parse_seeds("SEEDS", argv[1]), Path(argv[2])
    p, _ = stage_parameters("translation", overrides={k: yaml.safe_load(v) for k, v in
                                                             (a.split("=", 1) for a in argv[3:])})
    # what the stage builds, for these seeds (SEEDS need not be consecutive: one config per seed)
    cfg = S.TranslationConfig.from_params(p, n_epochs=n_epochs, seed=seeds[0], n_seeds=1, ckpt_dir=str(out),
                                          device="cpu")
    datas = {s: S.build_datas(cfg.replace(seed=s))[s] for s in seeds}
    t0 = time.time()
    seed_runs, loss_note = S.train_seeds(datas, cfg, progress=False)   # seed k under OUT_DIR/seed<k>/
    print(json.dumps({"n_epochs": n_epochs, "train_s": round(time.time() - t0, 1), "rec_loss": loss_note}), flush=True)
    n_images = len(datas[seeds[0]].train)
    per_epoch = n_images // cfg.batch_size
    for e in range(1, int(n_epochs) + 1):
        end = S.n_iterations(n_images, cfg.replace(n_epochs=float(e)))
        kl, step = {}, None
        for model in ("vae", "soft_intro_vae"):
            vals = []
            for runs in seed_runs.values():   # the last KL record at or before the end of epoch e
                curve = runs[model].kl_curve
                i = max((i for i, s in enumerate(curve["step"]) if s <= end), default=None)
                if i is None:
                    break
                step = curve["step"][i]
                vals.append(curve["kl_class"][i])
            if len(vals) == len(seed_runs):
                st = seed_stats(vals)
                kl[model] = Stat(st["mean"], st["std"], st["n"])
        if len(kl) < 2:
            continue
        print(json.dumps({"epoch": e, "step": step, "iterations_per_epoch": per_epoch,
                          **{f"kl_class_{m}": [round(v.mean, 4), round(v.std, 4)] for m, v in kl.items()},
                          "vae_class_kl_vanishes": compare(kl["vae"], threshold(CLASS_KL_COLLAPSED)),
                          "sivae_class_kl_above_vae": compare(kl["vae"], kl["soft_intro_vae"])}), flush=True)
    lpips_fn, lpips_note = M.load_lpips("cpu")
    per_seed, _ = S.evaluate_seeds(seed_runs, datas, n_pairs=cfg.n_pairs, device="cpu", lpips_fn=lpips_fn)
    n_iter = next(iter(seed_runs[seeds[0]].values())).n_iter
    S.write_metrics(out / "metrics.json", per_seed, meta={"n_iter": n_iter, "n_train_images": n_images,
                                                          "seeds": len(seeds), "n_epochs": n_epochs})
    stage = load_stage(out / "metrics.json")
    stage["params"] = {"n_seeds": len(seeds)}
    for f in build_ledger({"translation": stage}):
        if f.stage == "translation":
            print(json.dumps({"n_epochs": n_epochs, "finding": f.id, "verdict": f.verdict, "ours": f.ours}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
