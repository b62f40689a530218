"""TheoryConfig: the theory stage's parameters, parsed and checked once (fast)."""
import dataclasses

import pytest
from nbutil import ROOT, notebook_parameters

from sivae.errors import ConfigError
from sivae.stage import stage_parameters
from sivae.theory_discrete import PDATA_NAMES, TheoryConfig
from sivae.theory_discrete.game import GameConfig

NOTEBOOK = ROOT / "notebooks" / "01_theory_discrete.py"


def test_fields_are_the_notebook_parameters_with_its_defaults():
    nb = notebook_parameters(NOTEBOOK)
    assert set(TheoryConfig.names()) == set(nb)
    assert TheoryConfig() == TheoryConfig(**nb)
    for f in dataclasses.fields(TheoryConfig):
        assert f.default == nb[f.name], f.name


def test_from_params_picks_its_fields_and_parses_them():
    p, _ = stage_parameters("theory_discrete", params_file=ROOT / "params.yaml")
    cfg = TheoryConfig.from_params({**p, "T": object()}, interactive="false", gammas="0, 0.5")
    assert cfg.interactive is False and cfg.gammas == (0.0, 0.5) and cfg.K == p["K"]
    assert cfg.pdatas == tuple(p["pdatas"].split(",")) and cfg.alphas == tuple(float(a) for a in p["alphas"].split(","))
    assert cfg.game == GameConfig(n_steps=p["n_steps"], lr=p["lr"], log_every=p["log_every"],
                                  margin=p["introvae_margin"])
    assert TheoryConfig(pdatas="all").pdatas == tuple(PDATA_NAMES)


BAD = [("K", 1, "K must be an integer >= 2 and <= 1000"), ("M", "x", "M must be an integer"),
       ("pdatas", "bimodal", "unknown pdatas 'bimodal'"), ("gammas", "-1", "gammas must be a finite non-negative"),
       ("alphas", "1,0", "alphas must be > 0"), ("gamma_max", 0, "gamma_max must be > 0"),
       ("n_gamma_grid", 1, "n_gamma_grid must be an integer >= 2"), ("n_steps", 10**8, "n_steps must be an integer"),
       ("lr", "nan", "lr must be a finite non-negative number"), ("log_every", 0, "log_every must be an integer >= 1"),
       ("n_ablation_seeds", 0, "n_ablation_seeds must be"), ("ablation_pdata", None, "unknown ablation_pdata None"),
       ("ablation_gamma", -0.5, "ablation_gamma must be"), ("ablation_alpha", 0, "ablation_alpha must be > 0"),
       ("introvae_margin", "inf", "introvae_margin must be"), ("tol_pd", -1, "tol_pd must be"),
       ("tol_kl", None, "tol_kl must be a number"), ("tol_lemma4", "x", "tol_lemma4 must be a number"),
       ("seed", 2**33, "seed must be an integer"), ("device", 3, "device must be a string"),
       ("interactive", "yes", "interactive must be true or false"), ("fig_dir", "", "fig_dir must be a file or folder"),
       ("metrics_path", None, "metrics_path must be")]


@pytest.mark.parametrize("name,value,message", BAD)
def test_each_bad_value_is_named(name, value, message):
    with pytest.raises(ConfigError, match=message):
        TheoryConfig(**{name: value})
    with pytest.raises(ConfigError, match=message):     # replace() checks again
        TheoryConfig().replace(**{name: value})


def test_as_params_round_trips():
    cfg = TheoryConfig(pdatas="sparse,smooth", gammas="0,0.25", alphas=2, interactive="False")
    rec = cfg.as_params()
    assert rec["gammas"] == [0.0, 0.25] and rec["pdatas"] == ["sparse", "smooth"] and rec["interactive"] is False
    assert TheoryConfig.from_params(rec) == cfg and cfg.replace() == cfg
