"""GPU readiness in one command: `make gpu-check OUT=dir` (or `python benchmarks/gpu_check.py dir`).

1. the tests marked `cuda` (tests/test_cuda.py: autocast bf16/fp16 with float32 losses and the gradient
   scaler, fused Adam, channels-last convolutions, a one-process NCCL torchrun, OOD scoring at GPU chunk
   sizes, the stack on the GPU); on a machine without CUDA they skip, each with its reason;
2. the stack benchmark (benchmarks/bench_stack.py) on the device at hand;
3. the paper profile's Table 2 (profiles/paper.yaml, section toy2d: 4 datasets x 3 models x 3 seeds,
   30,000 iterations at batch 512) trained through the stack, evaluated, and written as
   <dir>/table2.md; only on CUDA (on a 2-core CPU it is about 15 hours), with --table2-iters to shorten it.

Writes <dir>/gpu_check.json (device, versions, each part's result and wall time) and prints where.
Needs no network.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _device() -> dict:
    info = {"cuda": torch.cuda.is_available(), "torch": torch.__version__, "python": platform.python_version()}
    if info["cuda"]:
        info.update(name=torch.cuda.get_device_name(0), count=torch.cuda.device_count(),
                    memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
                    cuda_runtime=torch.version.cuda, bf16=torch.cuda.is_bf16_supported())
    return info


def cuda_tests(out: Path) -> dict:
    t0 = time.time()
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-m", "cuda", "tests/test_cuda.py",
                          f"--junitxml={out / 'cuda_tests.xml'}"], cwd=ROOT, capture_output=True, text=True)
    (out / "cuda_tests.txt").write_text(res.stdout + res.stderr)
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", res.stdout)}
    skips = sorted(set(re.findall(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)", res.stdout)))
    return {"returncode": res.returncode, **counts, "skip_reasons": skips, "wall_s": round(time.time() - t0, 1)}


def bench(out: Path) -> dict:
    t0 = time.time()
    res = subprocess.run([sys.executable, "benchmarks/bench_stack.py"], cwd=ROOT, capture_output=True, text=True)
    (out / "bench_stack.md").write_text(res.stdout + res.stderr)
    last = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    return {"returncode": res.returncode, "last_line": last, "wall_s": round(time.time() - t0, 1)}


def table2(out: Path, n_iter: int | None) -> dict:
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device: the paper profile's 36 runs of 30,000 iterations at batch 512 take about "
                           "15 hours on a 2-core CPU (bench_stack.py: about 21 run-iterations/s at that size)"}
    from sivae.profiles import resolve
    from sivae.toy2d.config import Toy2dConfig
    from sivae.toy2d.study import run_toy2d, summarize, write_table2
    p = resolve("paper", ROOT)   # profiles/paper.yaml extends the default: the resolved tree
    sec = {**p["base"], **p["toy2d"]}
    iters = int(n_iter or sec["n_iter"])
    t0 = time.time()
    cfg = Toy2dConfig.from_params(sec, n_iter=iters, ckpt_dir=str(out / "toy2d_checkpoints"), device="cuda",
                                  progress=False, budget=False, engine="stack")
    runs = run_toy2d(cfg)
    train_eval_s = time.time() - t0
    write_table2(summarize(runs), out / "table2.json", out / "table2.md",
                 meta={"profile": "paper", "n_iter": iters, "batch_size": sec["batch_size"], "engine": "stack",
                       "device": torch.cuda.get_device_name(0)})
    return {"runs": len(runs), "n_iter": iters, "wall_s": round(train_eval_s, 1), "table": str(out / "table2.md")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="outputs/gpu_check")
    ap.add_argument("--table2-iters", type=int, default=None, help="iterations of the Table 2 runs (default: the paper's)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: tests, bench, table2")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    report = {"device": _device(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    t0 = time.time()
    for name, fn in (("tests", lambda: cuda_tests(out)), ("bench", lambda: bench(out)),
                     ("table2", lambda: table2(out, args.table2_iters))):
        report[name] = {"skipped": "--skip"} if name in skip else fn()
        print(f"gpu-check {name}: {report[name]}", flush=True)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    report["wall_s"] = round(time.time() - t0, 1)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print(f"report: {out / 'gpu_check.json'}")
    failed = report["tests"].get("returncode", 0) not in (0, 5) or report["bench"].get("returncode", 0) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
