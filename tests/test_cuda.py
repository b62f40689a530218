"""CUDA paths (run by `make gpu-check` on a GPU machine; skipped, with the reason, where there is none).

autocast bf16/fp16 with float32 losses and the gradient scaler, fused Adam, channels-last convolutions,
a one-process NCCL torchrun, OOD scoring at GPU chunk sizes, and the stack on the GPU.
"""
import os
import subprocess

import numpy as np
import pytest
import torch
from nbutil import BIN, ROOT

import sivae.losses as L
from sivae import TrainConfig, Trainer
from sivae.stack import StackRun, StackTrainer
from sivae.toy2d.data import get_toy_dataset
from sivae.toy2d.models import MLPConfig, build_mlp_pair

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason="no CUDA device on this machine: `make gpu-check OUT=dir` runs these on a GPU")]


def _toy_trainer(autocast="none", method="soft_intro_vae", n_iter=40, dtype=torch.float32, seed=0):
    data = get_toy_dataset("8gaussians")
    cfg = TrainConfig(method=method, n_iter=n_iter, batch_size=256, beta_rec=0.2, beta_kl=0.3, beta_neg=0.9, scale=0.5,
                      num_vae=10, progress=False, seed=seed, autocast=autocast)
    enc, dec = build_mlp_pair(MLPConfig(), seed=seed)
    return Trainer(enc.to(dtype), dec.to(dtype), lambda s, g: data.sample(256, g).to(dtype), cfg, device="cuda")


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_autocast_keeps_the_losses_in_float32(mode, monkeypatch):
    seen = []
    orig = L.kl_divergence

    def spy(mu, logvar):
        out = orig(mu, logvar)
        seen.append(out.dtype)
        return out
    monkeypatch.setattr(L, "kl_divergence", spy)
    t = _toy_trainer(mode)
    assert t.amp_dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]
    assert t.scaler.is_enabled() == (mode == "fp16")
    hist = t.fit()
    assert seen and set(seen) == {torch.float32}
    assert all(np.isfinite(v) for h in hist for k, v in h.items() if k != "step")
    with torch.autocast("cuda", dtype=t.amp_dtype):
        mu, logvar = t.encode(torch.randn(8, 2, device="cuda"))
    assert mu.dtype == torch.float32 and logvar.dtype == torch.float32


def test_fused_adam_on_cuda_equals_the_unfused_update():
    fused = _toy_trainer(n_iter=20, dtype=torch.float64)
    assert fused.opt_e.defaults.get("fused") and fused.opt_d.defaults.get("fused")
    fused.fit()
    plain = _toy_trainer(n_iter=20, dtype=torch.float64)
    plain.opt_e = torch.optim.Adam(plain.enc.parameters(), lr=plain.cfg.lr, foreach=False)
    plain.opt_d = torch.optim.Adam(plain.dec.parameters(), lr=plain.cfg.lr, foreach=False)
    for name in ("sched_e", "sched_d"):
        opt = plain.opt_e if name == "sched_e" else plain.opt_d
        setattr(plain, name, torch.optim.lr_scheduler.MultiStepLR(opt, [round(f * 20) for f in plain.cfg.lr_milestones],
                                                                  plain.cfg.lr_gamma))
    plain.fit()
    for k, v in plain.dec.state_dict().items():
        assert (fused.dec.state_dict()[k] - v).abs().max().item() < 1e-10, k


def test_channels_last_convolutions_train_the_same_model():
    from sivae.images.data import ImageData
    from sivae.images.models import arch_for
    from sivae.images.training import train_image_model
    g = torch.Generator().manual_seed(0)
    data = ImageData(torch.rand(64, 1, 28, 28, generator=g), torch.zeros(64, dtype=torch.long), "tiny", "train")
    arch = arch_for("mnist", channels="8,16", z_dim=8)
    out = {}
    for cl in (True, False):
        m = train_image_model(data, arch, "soft_intro_vae", 0, epochs=2, batch_size=16, beta_neg=8, progress=False,
                              device="cuda", autocast="none", channels_last=cl)
        out[cl] = m.decoder.state_dict()
    for k in out[True]:
        assert torch.allclose(out[True][k].float(), out[False][k].float(), atol=1e-3), k


def test_one_process_nccl_torchrun(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "SIVAE_DDP_BACKEND": "nccl"}
    res = subprocess.run([str(BIN / "python"), "-m", "torch.distributed.run", "--nproc_per_node", "1",
                          "--master_port", "29533", str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    w, start = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "init.pt")
    assert any(not torch.equal(start[k], w[k].cpu()) for k in start)


def test_ood_scoring_at_gpu_chunk_sizes():
    from sivae.images.models import arch_for, build_image_pair
    from sivae.ood.metrics import score_images
    enc, dec = build_image_pair(arch_for("mnist", channels="8,16", z_dim=8), 0)
    enc, dec = enc.cuda(), dec.cuda()
    x = torch.rand(512, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    small = score_images(enc, dec, x, n_samples=100, chunk_size=512, seed=0, device="cuda")
    torch.cuda.reset_peak_memory_stats()
    large = score_images(enc, dec, x, n_samples=100, chunk_size=65536, seed=0, device="cuda")
    assert np.isfinite(large.loglik).all() and large.loglik.shape == (512,)
    # other chunks draw other noise: the estimates agree to the Monte-Carlo error, not bit for bit
    assert np.abs(large.loglik - small.loglik).mean() < 0.05 * np.abs(small.loglik).mean()
    assert torch.cuda.max_memory_allocated() < 8 * 2**30


def test_stack_on_cuda_follows_the_trainer_on_cuda():
    data = get_toy_dataset("rings")
    runs, alone = [], []
    for seed in (0, 1, 2):
        cfg = TrainConfig(method="soft_intro_vae", n_iter=10, batch_size=64, beta_rec=0.2, beta_kl=0.2, beta_neg=1.0,
                          scale=0.5, num_vae=3, progress=False, seed=seed, lr=1e-3)
        e, d = build_mlp_pair(MLPConfig(hidden=32), seed=seed)
        runs.append(StackRun(f"s{seed}", e.double(), d.double(), lambda s, g: data.sample(64, g).double(), cfg))
        e2, d2 = build_mlp_pair(MLPConfig(hidden=32), seed=seed)
        t = Trainer(e2.double(), d2.double(), lambda s, g: data.sample(64, g).double(), cfg, device="cuda")
        t.fit()
        alone.append(t)
    stack = StackTrainer(runs, device="cuda")
    stack.fit()
    for r, t in zip(runs, alone):
        sd = stack.state_dicts(r.name)[1]
        for k, v in t.dec.state_dict().items():
            assert (sd[k] - v).abs().max().item() < 1e-10, (r.name, k)
