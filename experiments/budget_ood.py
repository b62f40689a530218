"""OOD budget experiment (section 6.5): AUROC after each epoch of one run per (method, seed).

    python experiments/budget_ood.py EPOCHS IN_DIST OOD SEEDS OUT_DIR [KEY=VALUE ...]
    e.g. python experiments/budget_ood.py 4 fashionmnist mnist 0,1 /tmp/ood4

Each run is trained as the images stage trains it (params.yaml's `images` section: batch size, lr, widths, loss
weights, n_train; KEY=VALUE overrides keys of that section, ood.KEY=VALUE those of `ood`), for EPOCHS
epochs, with a copy of the weights kept after
every epoch (train_image_model's keep_epochs, so epoch 1 is the default profile's model itself); each copy
is scored as the ood stage scores (its `ood` section: n_eval, n_importance, sigma2, the evaluation seed).
Checkpoints go under OUT_DIR/<method>_seed<k>, so a killed run resumes. Prints one JSON line per
(method, seed, epoch) with both AUROCs, then the seed means per epoch as the ledger's
`6.5-sivae-auroc-*` findings would judge them (sivae.findings.study.compare). The README's budget statements
for 6.5 come from this script.
"""
import json
import sys
import time
from pathlib import Path

from sivae.findings.study import Stat, compare, threshold
from sivae.images.config import ImagesConfig
from sivae.images.data import load_image_dataset, root_for
from sivae.images.models import arch_for, build_image_pair
from sivae.images.training import train_image_model
from sivae.ood.config import OodConfig
from sivae.ood.metrics import evaluate_ood
from sivae.ood.study import load_eval_set
from sivae.params import parse_seeds
from sivae.stage import stage_parameters
from sivae.stats import seed_stats

METHODS = ("vae", "soft_intro_vae")


def main(argv):
    if len(argv) < 5:
        sys.exit(__doc__)
    epochs, in_ds, ood, seeds, out = int(argv[0]), argv[1], argv[2], parse_seeds("SEEDS", argv[3]), Path(argv[4])
    over = dict(a.split("=", 1) for a in argv[5:])
    im, _ = stage_parameters("images", overrides={k: v for k, v in over.items() if not k.startswith("ood.")})
    od, _ = stage_parameters("ood", overrides={k[4:]: v for k, v in over.items() if k.startswith("ood.")})
    cfg = OodConfig.from_params(od)
    icfg = ImagesConfig.from_params(im, datasets=in_ds, device="cpu", autocast="none")   # checked once, as the stage
    roots = dict(data_root=icfg.data_root, paper_data_root=icfg.paper_data_root)
    data = load_image_dataset(in_ds, "train", root_for(in_ds, **roots), icfg.n_train or None)
    arch = arch_for(in_ds, data.shape[1], data.shape[0], icfg.channels, icfg.z_dim, False)
    kw = dict(n_eval=cfg.n_eval, seed=cfg.seed, **roots)
    test, oodset = load_eval_set(in_ds, "test", **kw), load_eval_set(ood, "test", **kw)
    rows = []
    for method in METHODS:
        for seed in seeds:
            t0 = time.time()
            model = train_image_model(data, arch, method, seed, epochs=epochs,
                                      batch_size=icfg.budgets[in_ds].batch_size, **icfg.loss_settings(),
                                      num_vae=icfg.num_vae, ckpt_dir=out / f"{method}_seed{seed}",
                                      device="cpu", autocast="none", progress=False,
                                      keep_epochs=list(range(1, epochs + 1)))
            took = time.time() - t0
            per_epoch = model.step // epochs
            for step, state in sorted(model.kept.items()):
                enc, dec = build_image_pair(arch, seed)
                enc.load_state_dict(state["encoder"]), dec.load_state_dict(state["decoder"])
                res = evaluate_ood(enc.eval(), dec.eval(), test, {ood: oodset}, n_samples=cfg.n_importance,
                                   sigma2=cfg.sigma2, chunk_size=cfg.chunk_size, seed=cfg.seed, device="cpu")
                row = {"pair": f"{in_ds}->{ood}", "method": method, "seed": seed, "epoch": round(step / per_epoch, 3),
                       "auroc_loglik": round(res.auroc[ood]["loglik"], 4), "auroc_elbo": round(res.auroc[ood]["elbo"], 4),
                       "train_s": round(took, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    for e in sorted({r["epoch"] for r in rows}):
        st = {m: seed_stats([r["auroc_loglik"] for r in rows if r["method"] == m and r["epoch"] == e]) for m in METHODS}
        s = {m: Stat(v["mean"], v["std"], v["n"]) for m, v in st.items()}
        print(json.dumps({"pair": f"{in_ds}->{ood}", "epoch": e, **{m: [round(v.mean, 4), round(v.std, 4)]
                                                                      for m, v in s.items()},
                          "sivae_above_vae": compare(s["vae"], s["soft_intro_vae"]),
                          "sivae_at_least_0.99": compare(threshold(0.99), s["soft_intro_vae"])}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
