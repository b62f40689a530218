"""TranslationConfig: the translation stage's parameters, parsed and checked once (fast: no data, no training)."""
import dataclasses

import pytest
from nbutil import ROOT, notebook_parameters

from sivae.errors import ConfigError, DataError, OutputError
from sivae.params import MAX_ITERATIONS
from sivae.stage import stage_parameters
from sivae.translation.config import OUTPUTS, TranslationConfig, check_files
from sivae.translation.models import ArchConfig

NOTEBOOK = ROOT / "notebooks" / "05_translation.py"


def test_fields_are_the_notebook_parameters_with_its_defaults():
    nb = notebook_parameters(NOTEBOOK)
    assert set(TranslationConfig.names()) == set(nb)
    assert TranslationConfig() == TranslationConfig(**nb)
    for f in dataclasses.fields(TranslationConfig):
        if f.init:
            assert f.default == nb[f.name], f.name


def test_from_params_picks_its_fields_from_the_stage_section():
    p, _ = stage_parameters("translation", params_file=ROOT / "params.yaml")
    cfg = TranslationConfig.from_params({**p, "interactive": False, "M": object()}, seed=5)   # others ignored
    assert cfg.seed == 5 and cfg.seeds == [5 + i for i in range(p["n_seeds"])]
    assert cfg.methods == ("vae", "soft_intro_vae") and cfg.enc_channels == tuple(map(int, p["enc_channels"].split(",")))
    assert cfg.arch == ArchConfig(in_channels=3, enc_channels=cfg.enc_channels, dec_channels=cfg.dec_channels,
                                  dec_hidden=p["dec_hidden"], fc_hidden=p["fc_hidden"], class_dim=p["class_dim"],
                                  content_dim=p["content_dim"])
    assert (cfg.beta_neg, cfg.batch_size, cfg.metrics_path) == (float(p["beta_neg"]), p["batch_size"],
                                                                p["metrics_path"])


def test_parsed_values_have_their_types():
    cfg = TranslationConfig(seed="3", n_seeds=2.0, methods="soft_intro_vae", enc_channels="4, 8", dec_channels=(8,) * 4,
                            dec_hidden="4", n_epochs="0.5", batch_size="16", lr="1e-3", beta_neg=10, num_vae="2",
                            kl_every=5.0, n_pairs="20", n_grid=3.0, lr_milestones="0.6, 0.8")
    assert (cfg.seed, cfg.n_seeds, cfg.seeds) == (3, 2, [3, 4]) and cfg.lr_milestones == (0.6, 0.8)
    assert cfg.methods == ("soft_intro_vae",) and cfg.enc_channels == (4, 8) and cfg.dec_channels == (8, 8, 8, 8)
    assert (cfg.n_epochs, cfg.batch_size, cfg.lr, cfg.beta_neg) == (0.5, 16, 1e-3, 10.0)
    assert all(type(getattr(cfg, k)) is int for k in ("dec_hidden", "batch_size", "num_vae", "kl_every", "n_pairs",
                                                       "n_grid"))
    assert cfg.arch.z_dim == cfg.class_dim + cfg.content_dim


# one bad value of each kind: (field, value, the ConfigError's message)
BAD = [("seed", -1, "seed must be an integer >= 0"), ("n_seeds", 0, "n_seeds must be a positive integer"),
       ("device", "gpu", "unknown device 'gpu'"), ("device", 3, "device must be a string"),
       ("dataset", "mnist", "unknown dataset 'mnist'"), ("dataset", "kth", "dataset 'kth' needs data_root"),
       ("methods", "vae,gan", "unknown method 'gan'"), ("methods", "", "method is empty"),
       ("enc_channels", "4,x", "enc_channels must be comma-separated integers"),
       ("dec_channels", "8,8", "dec_channels needs 4 values"), ("dec_hidden", 0, "dec_hidden must be an integer >= 1"),
       ("n_classes", 10**6, "n_classes must be an integer >= 1 and <= 100000"),
       ("n_test_classes", "x", "n_test_classes must be an integer"),
       ("n_epochs", 0, "n_epochs must be > 0"), ("n_epochs", 1e7, "n_epochs must be at most 1000000"),
       ("batch_size", 1.5, "batch_size must be an integer"),
       ("batch_size", 4000, "batch_size 4000 is larger than the 3840 training images of 40 procedural"),
       ("lr", "nan", "lr must be a finite non-negative number"),
       ("lr_milestones", "0.5,-1", "lr_milestones must be a finite non-negative number"),
       ("beta_neg", -1, "beta_neg must be a finite non-negative number"), ("gamma_r", None, "gamma_r must be a number"),
       ("num_vae", 10**9, f"num_vae must be an integer >= 0 and <= {MAX_ITERATIONS}"),
       ("rec_loss", "l1", "unknown rec_loss 'l1'"), ("vgg_weights", 3, "vgg_weights must be 'auto' or a file path"),
       ("kl_every", 0, "kl_every must be an integer >= 1"), ("n_pairs", 0, "n_pairs must be an integer >= 1"),
       ("n_grid", 100000, "n_grid must be an integer >= 1 and <= 64"),
       ("ckpt_dir", "", "ckpt_dir must be a file or folder path"), ("live_dir", None, "live_dir must be a file or")]


@pytest.mark.parametrize("name,value,message", BAD)
def test_each_bad_value_is_named(name, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TranslationConfig(**{name: value})


@pytest.mark.parametrize("name,value,message", BAD[:6])
def test_replace_checks_again(name, value, message):
    cfg = TranslationConfig()
    with pytest.raises(ConfigError, match=message):
        cfg.replace(**{name: value})
    assert cfg.replace(seed=7).seed == 7 and cfg.replace() == cfg   # its own parsed values parse to themselves


def test_as_params_round_trips_and_leaves_out_the_built_architecture():
    cfg = TranslationConfig(methods="soft_intro_vae,vae", enc_channels="4,8", n_epochs=0.5, seed=2)
    rec = cfg.as_params()
    assert "arch" not in rec and rec["enc_channels"] == [4, 8] and rec["methods"] == ["soft_intro_vae", "vae"]
    assert TranslationConfig.from_params(rec) == cfg
    assert cfg.for_seed(3, "ck/seed3") == cfg.replace(seed=3, n_seeds=1, ckpt_dir="ck/seed3")


def test_check_files_names_the_missing_file_or_unwritable_output(tmp_path):
    outputs = {k: str(tmp_path / "out" / k) for k in OUTPUTS}
    check_files(TranslationConfig(**outputs))                          # procedural: no file needed
    with pytest.raises(DataError, match="data_root .* does not exist"):
        check_files(TranslationConfig(dataset="cars3d", data_root=str(tmp_path / "none_here"), **outputs))
    (tmp_path / "cars").mkdir()
    with pytest.raises(DataError, match="holds 0 .mat files"):
        check_files(TranslationConfig(dataset="cars3d", data_root=str(tmp_path / "cars"), **outputs))
    with pytest.raises(DataError, match="vgg_weights file .*vgg16.pth does not exist"):
        check_files(TranslationConfig(rec_loss="vgg", vgg_weights=str(tmp_path / "vgg16.pth"), **outputs))
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputError, match="table_path|table4"):
        check_files(TranslationConfig(**{**outputs, "table_path": str(tmp_path / "file" / "table4.md")}))
    with pytest.raises(ConfigError, match="needs a TranslationConfig"):
        check_files({"dataset": "procedural"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cars", "file"]   # nothing written
