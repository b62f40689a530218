"""sivae.images.config.ImagesConfig: notebook 04's parameters built into one object, checked once (fast tests)."""
import json

import pytest
from nbutil import ROOT, load_yaml, notebook_parameters

from sivae.errors import ConfigError
from sivae.images import study
from sivae.images.config import DatasetBudget, ImagesConfig, training_sizes

NOTEBOOK = ROOT / "notebooks" / "04_images.py"


def test_fields_are_the_notebook_parameters_with_its_defaults():
    nb = notebook_parameters(NOTEBOOK)
    assert set(ImagesConfig.names()) == set(nb)
    assert ImagesConfig.from_params(nb) == ImagesConfig()
    section = load_yaml("params.yaml")["images"]
    assert set(section) - {"executed_notebook"} <= set(ImagesConfig.names())


def test_from_params_picks_its_fields_and_parses_them():
    cfg = ImagesConfig.from_params({"datasets": "mnist", "methods": "vae", "n_seeds": 3, "seed": 5,
                                    "conditional": "false", "channels": "4,8", "executed_notebook": "x.ipynb",
                                    "some_other_stage_key": object()}, beta_neg="32")
    assert cfg.datasets == ("mnist",) and cfg.methods == ("vae",) and cfg.seeds == (5, 6, 7)
    assert cfg.conditional is False and cfg.channels == (4, 8) and cfg.channels_text == "4,8"
    assert cfg.beta_neg == 32.0 and cfg.loss_settings()["beta_neg"] == 32.0
    assert cfg.budgets == {"mnist": DatasetBudget(epochs=1.0, batch_size=64)}


def test_paper_budgets_resolve_per_dataset():
    cfg = ImagesConfig(datasets="mnist,cifar10", epochs="paper", batch_size="paper")
    assert cfg.budgets == {"mnist": DatasetBudget(200.0, 128), "cifar10": DatasetBudget(220.0, 32)}
    assert cfg.epochs == "paper" and cfg.batch_size == "paper"


@pytest.mark.parametrize("name,value,message", [
    ("datasets", "moons", "unknown datasets 'moons'"),
    ("methods", "gan", "methods"),
    ("n_seeds", 0, "n_seeds must be a positive integer"),
    ("seed", -1, "seed must be an integer"),
    ("epochs", 0, "epochs must be > 0"),
    ("epochs", "paper", "epochs='paper' has no paper value for 'folder:/x'"),
    ("batch_size", "1e7", "batch_size must be an integer"),
    ("n_train", 4, "n_train=4 is fewer than one batch of mnist"),
    ("channels", "5000", "channels must be widths <= 4096"),
    ("z_dim", 0, "z_dim"),
    ("lr", -1, "lr must be a finite non-negative number"),
    ("beta_neg", "x", "beta_neg must be a number, got 'x'"),
    ("beta_kl", True, "beta_kl must be a number, got True"),
    ("gamma_r", float("nan"), "gamma_r must be a finite non-negative number"),
    ("num_vae", 2e6, "num_vae must be at most"),
    ("autocast", "fp32", "unknown autocast 'fp32'"),
    ("device", "gpu", "device"),
    ("conditional", "yes", "conditional"),
    ("n_fd_samples", 0, "n_fd_samples"),
    ("fid_protocols", "paper,fancy", "fid_protocols"),
    ("precision_recall_k", -1, "precision_recall_k"),
    ("classifier_epochs", "1e9", "classifier_epochs"),
    ("use_inception", "maybe", "use_inception"),
    ("style_methods", "gan", "style_methods"),
    ("style_resolution", 33, "style-based model for mnist \\(style_resolution 33"),
    ("style_channels", "8,8", "style_channels '8,8'"),
    ("style_fade", 1.5, "style_fade must be in \\[0, 1\\]"),
    ("style_beta_kl", -1, "style_beta_kl must be a finite non-negative number"),
    ("style_lr", "x", "style_lr must be a number"),
    ("released", "bogus", "released entries are <kind>:<path>"),
    ("released", "celeba:x.pth", "unknown released kind 'celeba'"),
    ("released_config", "{x", "released_config must be a JSON object"),
    ("released_config", '{"celeba": {}}', "unknown released_config kind"),
    ("ckpt_dir", "", "ckpt_dir must be a file or folder path"),
    ("metrics_path", 5, "metrics_path must be a file or folder path"),
])
def test_each_bad_value_is_named(name, value, message):
    extra = {"datasets": "folder:/x"} if message.startswith("epochs='paper'") else {"datasets": "mnist"}
    if name == "n_train":
        extra["batch_size"] = 16
    with pytest.raises(ConfigError, match=message):
        ImagesConfig(**{**extra, name: value})


def test_replace_checks_again_and_keeps_the_parsed_values():
    cfg = ImagesConfig(datasets="mnist")
    assert cfg.replace(n_seeds=1).seeds == (0,)
    assert cfg.replace(datasets="fashionmnist").budgets == {"fashionmnist": DatasetBudget(1.0, 64)}
    with pytest.raises(ConfigError, match="style_beta_neg"):
        cfg.replace(style_beta_neg=-2)
    with pytest.raises(ConfigError, match="batch_size"):
        cfg.replace(batch_size=0)


def test_as_params_round_trips_and_is_json():
    cfg = ImagesConfig(datasets="mnist", epochs=1, channels="4,4", released="ffhq:a.pth",
                       released_config='{"ffhq": {"channels": [4, 4]}}', style_methods="vae,soft_intro_vae")
    params = cfg.as_params()
    assert json.loads(json.dumps(params)) == params
    assert ImagesConfig.from_params(params) == cfg
    assert ImagesConfig.from_params(json.loads(json.dumps(params))) == cfg
    assert cfg.released_entries == (("ffhq", "a.pth"),) and cfg.released_overrides == {"ffhq": {"channels": [4, 4]}}
    assert params["epochs"] == 1 and params["channels"] == [4, 4]   # run settings as given (the table's meta line)


def test_style_none_is_no_style_pair():
    for off in ("none", "", " None "):
        cfg = ImagesConfig(style_methods=off, style_resolution=33)   # not checked: nothing of it runs
        assert cfg.style is None and cfg.style_methods == ()
        assert study.train_style_runs(cfg) == {}
        assert ImagesConfig.from_params(cfg.as_params()).style is None
    st = ImagesConfig(style_datasets="mnist", style_channels="4,4", style_resolution=8).style
    assert st.resolution == 8 and st.channels == (4, 4) and st.arch("mnist", 3).cdim == 3


def test_the_style_pair_shares_gamma_r_and_has_its_own_weights():
    cfg = ImagesConfig(gamma_r=1e-6, style_lr=2e-3, style_beta_rec=0.5, style_beta_kl=0.2, style_beta_neg=64)
    assert cfg.style_loss_settings() == dict(lr=2e-3, beta_rec=0.5, beta_kl=0.2, beta_neg=64.0, gamma_r=1e-6)
    assert cfg.loss_settings() == dict(lr=1e-3, lr_milestones=(), beta_rec=1.0, beta_kl=1.0, beta_neg=256.0,
                                       gamma_r=1e-6)


def test_lr_milestones_are_fractions_checked_once():
    assert ImagesConfig(lr_milestones="0.6, 0.8").loss_settings()["lr_milestones"] == (0.6, 0.8)
    assert ImagesConfig.from_params(ImagesConfig(lr_milestones="0.5").as_params()).lr_milestones == (0.5,)
    for bad, message in (("-0.5", "lr_milestones must be a finite non-negative number"),
                         ("x", "lr_milestones must be")):
        with pytest.raises(ConfigError, match=message):
            ImagesConfig(lr_milestones=bad)


def test_the_study_takes_the_config_whole():
    with pytest.raises(ConfigError, match="cfg must be an ImagesConfig"):
        study.train_runs({"datasets": "mnist"})
    with pytest.raises(ConfigError, match="runs must be the dict"):
        study.score_models(None, ImagesConfig())
    with pytest.raises(ConfigError, match="progress"):
        study.train_runs(ImagesConfig(), progress="maybe")


def test_training_sizes():
    sizes = training_sizes(["mnist", "cifar10"], epochs="paper", batch_size=16, n_train=32, channels="4,8")
    assert sizes.per_dataset["cifar10"] == DatasetBudget(220.0, 16) and sizes.channels == (4, 8)
    assert sizes.per_dataset["mnist"] == DatasetBudget(200.0, 16) and sizes.n_train == 32
