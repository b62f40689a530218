"""Image-generation budget experiment (section 6.3): the Frechet score after each epoch of one run per (model, seed).

    python experiments/budget_images.py EPOCHS DATASET SEEDS OUT_DIR [MODELS] [KEY=VALUE ...]
    e.g. python experiments/budget_images.py 3 mnist 0,1 /tmp/img3 vae,soft_intro_vae

MODELS: a comma list of vae, soft_intro_vae, soft_intro_vae_cond (default: all three). Each run is trained as
the images stage trains it (params.yaml's `images` section: batch size, lr, widths, loss weights, n_train;
KEY=VALUE overrides keys of that section) for EPOCHS epochs, with a copy of the weights kept after every
epoch (train_image_model's keep_epochs, so epoch 1 is the default profile's model itself; not so with
lr_milestones=..., whose decays fall at fractions of all EPOCHS), and each copy is
scored as the stage scores it (sivae.images.study.score_models: the same samples, reference images,
classifier, Inception when present). Checkpoints go under OUT_DIR/<model>_seed<k> (the layout of
experiments/budget_ood.py, whose runs are the same models: its OUT_DIR can be reused and nothing retrains), so
a killed run resumes. Prints one JSON line per (model, seed, epoch); writes each epoch's seed means in the
stage's format (OUT_DIR/epoch<e>/metrics.json, scores.md) and prints the ledger's own 6.3 verdicts on them
(sivae.findings.study.build_ledger). The budget statements for 6.3 in docs/findings.md come from this script.
"""
import copy
import json
import sys
import time
from pathlib import Path

from sivae.findings.study import build_ledger, load_stage
from sivae.images.config import ImagesConfig
from sivae.images.data import load_image_dataset, root_for
from sivae.images.models import arch_for
from sivae.images.study import score_models, summarize_scores, write_image_tables
from sivae.images.training import train_image_model
from sivae.params import parse_list, parse_seeds
from sivae.stage import stage_parameters

MODELS = ("vae", "soft_intro_vae", "soft_intro_vae_cond")


def at_epoch(model, state):
    """A copy of a trained model carrying the weights kept after one epoch."""
    m = copy.deepcopy(model)
    m.encoder.load_state_dict(state["encoder"]), m.decoder.load_state_dict(state["decoder"])
    return m


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    epochs, ds, seeds, out = int(argv[0]), argv[1], parse_seeds("SEEDS", argv[2]), Path(argv[3])
    rest = argv[4:]
    models = parse_list("MODELS", rest.pop(0), MODELS) if rest and "=" not in rest[0] else list(MODELS)
    im, _ = stage_parameters("images", overrides=dict(a.split("=", 1) for a in rest))
    cfg = ImagesConfig.from_params(im, datasets=ds, device="cpu", autocast="none")   # checked once, as the stage
    data = load_image_dataset(ds, "train", root_for(ds, cfg.data_root, cfg.paper_data_root), cfg.n_train or None)
    trained = {}
    for key in models:
        cond = key.endswith("_cond")
        arch = arch_for(ds, data.shape[1], data.shape[0], cfg.channels, cfg.z_dim, cond)
        for seed in seeds:
            t0 = time.time()
            trained[(key, seed)] = train_image_model(
                data, arch, key.removesuffix("_cond"), seed, epochs=epochs, batch_size=cfg.budgets[ds].batch_size,
                **cfg.loss_settings(), num_vae=cfg.num_vae, ckpt_dir=out / f"{key}_seed{seed}", device=cfg.device,
                autocast=cfg.autocast, progress=False, keep_epochs=list(range(1, epochs + 1)))
            print(json.dumps({"dataset": ds, "model": key, "seed": seed, "train_s": round(time.time() - t0, 1)}),
                  flush=True)
    for e in range(1, epochs + 1):
        runs = {}
        for (key, seed), model in trained.items():
            per_epoch = model.step // epochs
            runs[(ds, key, seed)] = at_epoch(model, model.kept[per_epoch * e])
        scores = score_models(runs, cfg, log=lambda *a: None)
        for (_, key, seed), s in sorted(scores["runs"].items()):
            row = {"dataset": ds, "model": key, "seed": seed, "epoch": e, "score": round(s["value"], 4),
                   "precision": round(s.get("precision", float("nan")), 4),
                   "recall": round(s.get("recall", float("nan")), 4), "kind": s["kind"].split(" ")[0]}
            print(json.dumps(row), flush=True)
        folder = out / f"epoch{e}"
        write_image_tables(summarize_scores(scores), scores["classifiers"], folder / "metrics.json",
                           folder / "scores.md", meta={"epochs": e, "channels": cfg.channels_text})
        stage = load_stage(folder / "metrics.json")
        stage["params"] = {"n_seeds": len(seeds)}
        for f in build_ledger({"images": stage}):
            if f.stage == "images" and f.id.endswith(f"-{ds}") and f.verdict != "not run":
                print(json.dumps({"epoch": e, "finding": f.id, "verdict": f.verdict, "ours": f.ours}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
