"""#31 probe 7: image checkpoints fingerprint the architecture and the data, so another model or other data is
never returned as trained; outside a stage a clean named error, under a stage a fresh run (the old one kept)."""
import pytest
import torch
from nbutil import write_tiny_idx

from sivae.checkpoints import ASIDE, load_checkpoint
from sivae.images.data import load_image_dataset
from sivae.images.models import arch_for
from sivae.images.training import train_image_model
from sivae.train import ConfigurationChanged


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("idx")
    write_tiny_idx(root, n_train=64)
    write_tiny_idx(root, "fashionmnist", n_train=64, seed=1)
    return root


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _train(root, ckpt, dataset="mnist", n=48, channels="4,8", **kw):
    data = load_image_dataset(dataset, "train", root, n)
    arch = arch_for(dataset, data.shape[1], data.shape[0], channels, 8)
    return train_image_model(data, arch, "vae", 0, epochs=1, batch_size=16, ckpt_dir=ckpt, device="cpu",
                             progress=False, **kw)


@pytest.mark.parametrize("change,named", [(dict(n=60), "n_train"), (dict(dataset="fashionmnist"), "dataset"),
                                          (dict(channels="4,6"), "arch.channels")])
def test_another_model_or_data_in_the_same_folder_is_named_not_returned(tiny, tmp_path, monkeypatch, change, named):
    monkeypatch.delenv("SIVAE_STAGE", raising=False)
    first = _train(tiny, tmp_path)
    assert first.step == 3
    before = (tmp_path / "last.pt").read_bytes()
    # 60 images of batch 16 give as many steps per epoch as 48: only the data differs
    with pytest.raises(ConfigurationChanged, match=rf"another configuration .*'{named}'"):
        _train(tiny, tmp_path, **change)
    assert (tmp_path / "last.pt").read_bytes() == before


def test_under_a_stage_another_model_trains_fresh_and_the_old_run_is_kept(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("SIVAE_STAGE", "images")
    first = _train(tiny, tmp_path)
    other = _train(tiny, tmp_path, channels="4,6")    # changing channels: a fresh run, not a truncated error
    assert other.step == 3 and other.arch.channels != first.arch.channels
    assert len(list((tmp_path / ASIDE).glob("*/last.pt"))) == 1
    again = _train(tiny, tmp_path)                      # back: the first run, loaded as it was
    assert all(torch.equal(a, b) for a, b in zip(first.decoder.state_dict().values(),
                                                 again.decoder.state_dict().values()))
    assert load_checkpoint(tmp_path / "last.pt")["extra"]["arch"] == first.arch.to_dict()
