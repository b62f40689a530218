"""`python -m sivae.images`: train one image model from the command line, data-parallel under torchrun
(`python -m torch.distributed.run --nproc_per_node N -m sivae.images ...`: each process takes its own
batch_size slice of the same permutation and the Trainer averages gradients over processes)."""
from __future__ import annotations

import argparse
import os
import sys

import torch

from ..errors import SivaeError
from ..runtime import resolve_device
from .data import load_image_dataset
from .training import train_image_model


def main(argv=None) -> int:
    """Train one image model, optionally data-parallel under torchrun (see the module docstring)."""
    import torch.distributed as dist

    from .models import arch_for
    ap = argparse.ArgumentParser(prog="python -m sivae.images", description=main.__doc__)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-root", default="data")
    ap.add_argument("--method", default="soft_intro_vae")
    ap.add_argument("--channels", default="paper")
    ap.add_argument("--z-dim", default="paper")
    ap.add_argument("--conditional", action="store_true")
    ap.add_argument("--epochs", type=float, default=1)
    ap.add_argument("--n-train", type=int, default=None, help="use the first N training images")
    ap.add_argument("--batch-size", type=int, default=32, help="per process")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--beta-rec", type=float, default=1.0)
    ap.add_argument("--beta-kl", type=float, default=1.0)
    ap.add_argument("--beta-neg", type=float, default=256.0)
    ap.add_argument("--gamma-r", type=float, default=1e-8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ckpt-dir", required=True)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--autocast", default="auto")
    args = ap.parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(args.device)
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        data = load_image_dataset(args.dataset, "train", args.data_root, args.n_train)
        arch = arch_for(args.dataset, data.shape[1], data.shape[0], args.channels, args.z_dim, args.conditional)
        model = train_image_model(data, arch, args.method, args.seed, epochs=args.epochs,
                                  batch_size=args.batch_size, lr=args.lr, beta_rec=args.beta_rec,
                                  beta_kl=args.beta_kl, beta_neg=args.beta_neg, gamma_r=args.gamma_r,
                                  ckpt_dir=args.ckpt_dir, device=device, autocast=args.autocast,
                                  progress=rank == 0, rank=rank, world=world)
        if rank == 0:
            print(f"trained {model.step} steps; checkpoint {model.path}")
    except SivaeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if world > 1:
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
