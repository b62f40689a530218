"""Run by tests/images/test_images.py under torchrun (2 processes, gloo): a few data-parallel steps.
With SIVAE_DDP_BACKEND=nccl (tests/test_cuda.py) the same on the GPU.

Each rank writes its final weights to <out>/rank<r>.pt; rank 0 also the initial weights."""
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from sivae.images.data import ImageData
from sivae.images.models import arch_for, build_image_pair
from sivae.images.training import train_image_model

out = Path(sys.argv[1])
backend = os.environ.get("SIVAE_DDP_BACKEND", "gloo")
device = "cuda" if backend == "nccl" else "cpu"
dist.init_process_group(backend)
rank, world = dist.get_rank(), dist.get_world_size()
g = torch.Generator().manual_seed(0)
data = ImageData(torch.rand(32, 1, 28, 28, generator=g), torch.zeros(32, dtype=torch.long), "tiny", "train")
arch = arch_for("mnist", channels="4,4", z_dim=8)
if rank == 0:
    enc, dec = build_image_pair(arch, 0)
    torch.save({**{f"e.{k}": v for k, v in enc.state_dict().items()},
                **{f"d.{k}": v for k, v in dec.state_dict().items()}}, out / "init.pt")
# rank 1 gets a different seed on purpose: the Trainer must broadcast rank 0's initial weights
m = train_image_model(data, arch, "soft_intro_vae", 0, epochs=3, batch_size=4, beta_neg=8, progress=False,
                      device=device, rank=rank, world=world, ckpt_dir=out / "ckpt")
torch.save({**{f"e.{k}": v for k, v in m.encoder.state_dict().items()},
            **{f"d.{k}": v for k, v in m.decoder.state_dict().items()}}, out / f"rank{rank}.pt")
dist.destroy_process_group()
