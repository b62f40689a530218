"""sivae.ood.config.OodConfig: the ood stage's parameters, parsed and checked once (fast: nothing is loaded)."""
import json

import pytest
from nbutil import ROOT, load_yaml, notebook_parameters

from sivae.errors import ConfigError, DataError
from sivae.ood.config import OodConfig, TrainLength
from sivae.ood.near import NearPair


def test_fields_are_the_notebook_parameters_with_its_defaults():
    nb = notebook_parameters(ROOT / "notebooks" / "06_ood.py")
    assert set(OodConfig.names()) == set(nb)
    assert OodConfig.from_params(nb) == OodConfig()                        # the same defaults, parsed
    section = {**load_yaml("params.yaml")["base"], **load_yaml("params.yaml")["ood"]}
    assert set(OodConfig.names()) == set(section) - {"executed_notebook"}    # every key of the section, no other


@pytest.mark.parametrize("profile", ["default", "paper", "quick"])
def test_every_profile_builds(profile):
    from sivae.profiles import resolve
    tree = resolve(profile, ROOT)
    cfg = OodConfig.from_params({**tree["base"], **tree["ood"]})
    assert cfg.groups and cfg.seeds and "loglik" in cfg.scores


def test_from_params_picks_its_fields_parses_them_and_derives_the_rest():
    cfg = OodConfig.from_params({"in_dist": "mnist, fashionmnist", "ood": "fashionmnist,mnist+folder:" + str(ROOT),
                                 "seed": 3, "n_seeds": 2, "methods": "soft_intro_vae", "scores": "typicality",
                                 "train_epochs": "paper", "train_batch_size": "paper", "train_channels": "4, 8",
                                 "near_pairs": "heldout:fashionmnist:9, noise", "interactive": False, "plt": object(),
                                 "fig_dir": ROOT / "figs"}, n_eval="16")
    assert cfg.n_eval == 16 and cfg.seeds == (3, 4) and cfg.methods == ("soft_intro_vae",)
    assert cfg.groups == (("mnist", ("fashionmnist",)), ("fashionmnist", ("mnist", f"folder:{ROOT}")))
    assert cfg.in_dist == ("mnist", "fashionmnist") and cfg.ood == ("fashionmnist", f"mnist+folder:{ROOT}")
    assert cfg.pairs == (NearPair("heldout:fashionmnist:9", "heldout", "fashionmnist", 9), NearPair("noise", "noise"))
    assert cfg.scores == ("loglik", "typicality")                          # the paper's score is always scored
    assert cfg.train_channels == (4, 8) and cfg.fig_dir == str(ROOT / "figs")
    assert cfg.train_length("mnist") == TrainLength(200.0, 128)             # "paper": Appendix 9.2's values
    assert cfg.run_device.type in ("cpu", "cuda") and cfg.device == "auto"
    assert cfg.table7_meta() == dict(M=32, sigma2=0.5, images_per_set=16, seeds=2)
    assert cfg.beyond_meta()["bg_channels"] == "4,8"


def test_models_trained_here_get_a_length_only_where_they_are_trained():
    cfg = OodConfig(train_missing=False, near_pairs="noise")
    assert cfg.train_lengths == {}
    with pytest.raises(ConfigError, match="no model is trained on 'mnist'"):
        cfg.train_length("mnist")
    held = OodConfig(train_missing=False, near_pairs="heldout:fashionmnist:9", train_epochs=2)
    assert held.train_lengths == {"fashionmnist": TrainLength(2.0, 64)}
    # an unused epochs value is not refused; a used one is, by its name
    assert OodConfig(train_missing=False, near_pairs="", train_epochs=0).train_lengths == {}
    with pytest.raises(ConfigError, match="epochs"):
        OodConfig(train_missing=False, near_pairs="heldout:mnist:0", train_epochs=0)


@pytest.mark.parametrize("name, value, match", [
    ("seed", -1, "seed"), ("n_seeds", 0, "n_seeds"), ("device", "gpu", "device"),
    ("in_dist", "imagenet", "in_dist"), ("ood", "cifar", "ood"), ("ood", "mnist,svhn", "both the in-distribution"),
    ("methods", "gan", "methods"), ("n_importance", 0, "n_importance"), ("sigma2", 0, "sigma2"),
    ("sigma2", float("nan"), "sigma2"), ("chunk_size", 1.5, "chunk_size"), ("n_eval", -1, "n_eval"),
    ("convert", "gray", "convert"), ("bins", "x", "bins"), ("data_root", "", "data_root"),
    ("ckpt_dir", None, "ckpt_dir"), ("own_ckpt_dir", 3, "own_ckpt_dir"), ("metrics_path", " ", "metrics_path"),
    ("train_missing", "yes", "train_missing"), ("train_epochs", -1, "epochs"), ("train_batch_size", 0, "batch_size"),
    ("train_channels", "x", "channels"), ("train_n_train", 8, "n_train=8 is fewer than one batch"),
    ("near_pairs", "blur:mnist:0", "near pair 'blur:mnist:0'"), ("near_pairs", "noise,noise", "listed twice"),
    ("scores", "likelihood", "scores"), ("near_n_eval", -1, "near_n_eval"), ("heldout_n_train", "1e400", "heldout_n_train"),
    ("heldout_lr", 0, "heldout_lr"), ("bg_mu", 1.5, "bg_mu"), ("bg_channels", "0,4", "bg_channels"),
    ("bg_channels", "5000", "bg_channels"), ("bg_epochs", 0, "bg_epochs"), ("bg_n_train", -2, "bg_n_train"),
    ("bg_batch_size", 0, "bg_batch_size"), ("bg_lr", -1, "bg_lr"), ("regret_steps", -1, "regret_steps"),
    ("regret_lr", 0, "regret_lr"), ("regret_n_eval", 0, "regret_n_eval"), ("typicality_batch", 0, "typicality_batch"),
    ("released", None, "released"), ("released_config", 3, "released_config"),
])
def test_a_bad_value_is_one_config_error_naming_it(name, value, match):
    with pytest.raises(ConfigError, match=match):
        OodConfig(**{name: value})


def test_missing_folders_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="OOD image folder .*nope does not exist"):
        OodConfig(in_dist="mnist", ood=f"folder:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match="nope does not exist"):
        OodConfig(near_pairs=f"folder:{tmp_path / 'nope'}")
    assert OodConfig(near_pairs=f"folder:{tmp_path}").pairs == (NearPair(f"folder:{tmp_path}", "folder", None,
                                                                         str(tmp_path)),)


def test_replace_checks_again_including_across_fields():
    cfg = OodConfig()
    assert cfg.replace(bins=7).bins == 7 and cfg.bins == 60
    with pytest.raises(ConfigError, match="bins"):
        cfg.replace(bins=0)
    # the default near pairs blur MNIST digits, scored by MNIST models: in_dist must keep mnist
    with pytest.raises(ConfigError, match="near pair 'blur:mnist:1.0' is scored by the models trained on mnist"):
        cfg.replace(in_dist="fashionmnist", ood="mnist")
    assert cfg.replace(in_dist="fashionmnist", ood="mnist", near_pairs="noise").groups == (("fashionmnist", ("mnist",)),)
    # "paper" epochs resolve per dataset, again after a change
    assert cfg.replace(train_epochs="paper").train_length("mnist").epochs == 200.0
    with pytest.raises(ConfigError, match="train_n_train|n_train"):
        cfg.replace(train_n_train=10, train_batch_size=64)


def test_as_params_round_trips_through_json_and_from_params(tmp_path):
    cfg = OodConfig(in_dist="cifar10,cifar10", ood="svhn,mnist+svhn", near_pairs="", scores="ratio",
                    train_channels="paper", bg_channels="2", fig_dir=tmp_path, seed=5, n_seeds=3, device="cpu")
    assert cfg.groups == (("cifar10", ("svhn", "mnist")),)
    plain = json.loads(json.dumps(cfg.as_params()))                         # JSON-able (run_info.json)
    assert set(plain) == set(OodConfig.names()) and plain["fig_dir"] == str(tmp_path)
    back = OodConfig.from_params(plain)
    assert back == cfg and back.groups == cfg.groups and back.seeds == (5, 6, 7) and back.pairs == ()
    assert OodConfig.from_params(OodConfig().as_params()) == OodConfig()


def test_the_study_functions_take_the_config():
    from sivae.ood.near import run_beyond_study
    from sivae.ood.study import find_or_train_model, run_ood_study
    for call in (lambda: run_ood_study({"n_eval": 5}), lambda: run_beyond_study(None, []),
                 lambda: find_or_train_model("mnist", "vae", 0, 0)):
        with pytest.raises(ConfigError, match="takes an OodConfig"):
            call()
