"""Stability budget experiment (section 6.2, Appendix 9.5): the stability stage's grids at another n_iter.

    python experiments/budget_stability.py N_ITER OUT_DIR [KEY=VALUE ...]
    e.g. python experiments/budget_stability.py 4800 /tmp/stab4800

Runs what notebooks/03_stability.py runs (the margin grid of IntroVAE, the beta_neg grid of Soft-IntroVAE, the
collapse pair), with params.yaml's `stability` section and N_ITER iterations (the milestones are fractions of
n_iter, so they scale with it); KEY=VALUE overrides other keys of that section. Checkpoints go under OUT_DIR, so
a killed run resumes. Writes OUT_DIR/metrics.json in the stage's format and prints one JSON line per 6.2 / 9.5
finding as the ledger (sivae.findings) judges it from that file, then the wall time.
The README's "budget it needs" statements for 6.2 come from this script.
"""
import json
import sys
import time
from pathlib import Path

from sivae.findings.study import build_ledger, load_stage
from sivae.stability import study as S
from sivae.stability.config import StabilityConfig
from sivae.stage import stage_parameters


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    n_iter, out = int(argv[0]), Path(argv[1])
    overrides = dict(a.split("=", 1) for a in argv[2:])
    p, _ = stage_parameters("stability", overrides={"n_iter": n_iter, **overrides})
    cfg = StabilityConfig.from_params(p, ckpt_dir=str(out / "checkpoints"), progress=False)
    t0 = time.time()
    margin = S.summarize_grid(S.run_grid(cfg.grids["m"], cfg.stack_dir))
    beta_neg = S.summarize_grid(S.run_grid(cfg.grids["beta_neg"], cfg.stack_dir))
    collapse = S.summarize_collapse(S.run_collapse(cfg))
    S.write_metrics(out / "metrics.json", margin, beta_neg[cfg.table5("soft_intro_vae", "beta_neg")], beta_neg,
                    collapse, meta={"n_iter": n_iter, "batch_size": cfg.batch_size, "seeds": cfg.n_seeds})
    for f in build_ledger({"stability": load_stage(out / "metrics.json")}):
        if f.stage == "stability":
            print(json.dumps({"n_iter": n_iter, "id": f.id, "verdict": f.verdict, "ours": f.ours}), flush=True)
    print(json.dumps({"n_iter": n_iter, "wall_s": round(time.time() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
