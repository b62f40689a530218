"""The DVC pipeline agrees with params.yaml, the profiles and the notebooks' parameters."""
import re
import subprocess

import pytest

from nbutil import BIN, NOT_A_PARAMETER, NOT_IN_PARAMS_YAML, ROOT, load_yaml, notebook_parameters, stage_notebook

DVC = load_yaml("dvc.yaml")
PARAMS = load_yaml("params.yaml")
STAGES = list(DVC["stages"])
BASE_KEYS = set(PARAMS["base"])


def _resolve(path: str) -> str:
    """'${section.key}' -> that value in params.yaml; other paths unchanged."""
    m = re.fullmatch(r"\$\{(\w+)\.(\w+)\}", path)
    return PARAMS[m.group(1)][m.group(2)] if m else path


@pytest.mark.parametrize("stage", STAGES)
def test_stage_params_notebook_agree(stage):
    spec, section = DVC["stages"][stage], PARAMS[stage]
    nb = stage_notebook(stage)
    nb_params = set(notebook_parameters(nb)) - NOT_IN_PARAMS_YAML
    # params.yaml section + base keys == the notebook's parameters (+ papermill's output path)
    assert set(section) - NOT_A_PARAMETER | BASE_KEYS == nb_params, "params.yaml keys != notebook parameters"
    assert set(section) & BASE_KEYS == set()
    # dvc.yaml lists every key as a single param
    assert set(spec["params"]) == {f"base.{k}" for k in BASE_KEYS} | {f"{stage}.{k}" for k in section}
    # the command passes each one, spelled the same
    cmd = " ".join(spec["cmd"].split())
    for k in nb_params:
        src = f"base.{k}" if k in BASE_KEYS else f"{stage}.{k}"
        assert f"-p {k} ${{{src}}}" in cmd, f"cmd does not pass -p {k} ${{{src}}}"
    assert str(nb.relative_to(ROOT)) in cmd and str(nb.relative_to(ROOT)) in spec["deps"]
    # every dep exists, every output is a parameter
    produced = {_resolve(next(iter(o)) if isinstance(o, dict) else o) for st in DVC["stages"].values()
                for o in st.get("outs", [])}
    for dep in spec["deps"]:  # in the repo, tracked by a .dvc file, or another stage's output
        assert (ROOT / dep).exists() or (ROOT / f"{dep}.dvc").exists() or dep in produced, dep
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in spec["outs"] + spec.get("metrics", [])]
    for o in outs:
        m = re.fullmatch(r"\$\{(\w+)\.(\w+)\}", o)
        assert m and m.group(1) == stage and m.group(2) in section, f"out {o} is not a parameter of {stage}"


def test_profiles_share_keys_and_params_yaml_is_one_of_them():
    from sivae.profiles import available, current, keys
    profs = {n: load_yaml(f"profiles/{n}.yaml") for n in available(ROOT)}
    assert {"default", "paper"} <= set(profs)
    for name, tree in profs.items():
        assert keys(tree) == keys(PARAMS), f"profile {name} keys differ from params.yaml"
    assert current(ROOT) is not None, "params.yaml matches no profile"


def test_profile_switch_round_trip(tmp_path):
    from sivae.profiles import current, switch
    (tmp_path / "profiles").mkdir()
    for n in ("default", "paper"):
        (tmp_path / "profiles" / f"{n}.yaml").write_text((ROOT / "profiles" / f"{n}.yaml").read_text())
    (tmp_path / "params.yaml").write_text((ROOT / "profiles" / "default.yaml").read_text())
    switch("paper", tmp_path)
    assert current(tmp_path) == "paper" and load_yaml("profiles/paper.yaml")["toy2d"]["n_iter"] == 30000
    with pytest.raises(ValueError, match="unknown profile"):
        switch("huge", tmp_path)
    assert current(tmp_path) == "paper"


def test_dvc_understands_the_pipeline():
    res = subprocess.run([str(BIN / "dvc"), "dag", "--md"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    for stage in STAGES:
        assert stage in res.stdout
