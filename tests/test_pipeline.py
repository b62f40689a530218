"""Profiles: every profile has params.yaml's keys; switching is a round trip. (dvc.yaml: test_layout.py.)"""
import os
import re

import pytest
from nbutil import ROOT, load_yaml

DVC = load_yaml("dvc.yaml")
PARAMS = load_yaml("params.yaml")
STAGES = list(DVC["stages"])
BASE_KEYS = set(PARAMS["base"])


def _resolve(path: str) -> str:
    """'${section.key}' -> that value in params.yaml; other paths unchanged."""
    m = re.fullmatch(r"\$\{(\w+)\.(\w+)\}", path)
    return PARAMS[m.group(1)][m.group(2)] if m else path


def test_profiles_share_keys_and_params_yaml_is_one_of_them():
    from sivae.profiles import available, current, keys, resolve
    profs = {n: resolve(n, ROOT) for n in available(ROOT)}
    assert {"default", "paper", "quick"} <= set(profs)
    for name, tree in profs.items():
        assert keys(tree) == keys(PARAMS), f"profile {name} keys differ from params.yaml"
    assert current(ROOT) is not None, "params.yaml matches no profile"


def test_quick_profile_only_shrinks_the_default_budgets():
    """The quick profile is the default at smaller budgets: every value it changes is a smaller number, so it
    cannot silently change a method, dataset or hyper-parameter."""
    from sivae.profiles import keys, resolve
    default, quick = resolve("default", ROOT), resolve("quick", ROOT)

    def value(tree, dotted):
        for k in dotted.split("."):
            tree = tree[k]
        return tree

    changed = {k: (value(default, k), value(quick, k)) for k in keys(default) if value(default, k) != value(quick, k)}
    assert changed, "the quick profile equals the default"
    budget_keys = ("n_iter", "n_seeds", "n_train", "n_fd_samples", "style_n_train", "n_eval", "train_n_train",
                   "n_epochs", "epochs", "near_n_eval", "heldout_n_train", "bg_n_train",
                   "batch_size", "num_vae")   # toy2d: quick keeps the earlier, smaller 2D schedule (128 x 500)
    for k, (d, q) in changed.items():
        assert k.split(".")[-1] in budget_keys, f"quick profile changes {k} ({d!r} -> {q!r}), not a budget"
        d_all = {0: float("inf")}.get(d, d) if k.endswith("n_train") else d    # n_train 0 means all images
        assert 0 < q < d_all, f"quick profile's {k} = {q!r} is not below the default's {d!r}"


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


def test_a_profile_that_extends_another_is_resolved_over_it(tmp_path):
    """quick.yaml holds only what it changes: switching writes the whole resolved tree, `current` names it, and a
    key the base does not have, a cycle or an unknown base is refused with params.yaml left as it was."""
    from sivae.errors import ConfigError
    from sivae.profiles import current, keys, resolve, switch
    (tmp_path / "profiles").mkdir()
    for n in ("default", "quick"):
        (tmp_path / "profiles" / f"{n}.yaml").write_text((ROOT / "profiles" / f"{n}.yaml").read_text())
    (tmp_path / "params.yaml").write_text((ROOT / "profiles" / "default.yaml").read_text())
    default, quick = resolve("default", tmp_path), resolve("quick", tmp_path)
    assert keys(quick) == keys(default) and "extends" not in quick
    assert quick["toy2d"]["n_iter"] < default["toy2d"]["n_iter"] and quick["toy2d"]["lr"] == default["toy2d"]["lr"]
    switch("quick", tmp_path)
    assert load_yaml(tmp_path / "params.yaml") == quick and current(tmp_path) == "quick"
    assert "profiles/quick.yaml put over profiles/default.yaml" in (tmp_path / "params.yaml").read_text()
    switch("default", tmp_path)
    assert (tmp_path / "params.yaml").read_text() == (ROOT / "profiles" / "default.yaml").read_text()
    before = (tmp_path / "params.yaml").read_text()
    for text, match in (("extends: default\ntoy2d:\n  n_itr: 5\n", r"bad.yaml sets keys .*toy2d.n_itr"),
                        ("extends: default\ntoy2d: 5\n", r"bad.yaml sets keys .*'toy2d'"),
                        ("extends: bad\n", "cycle"),
                        ("extends: huge\n", "names no profile")):
        (tmp_path / "profiles" / "bad.yaml").write_text(text)
        with pytest.raises(ConfigError, match=match):
            switch("bad", tmp_path)
        assert (tmp_path / "params.yaml").read_text() == before


def test_a_stage_kernel_runs_on_a_pinned_thread_count(monkeypatch):
    """CPU results are bit-identical only at one torch thread count: the stage pins it (2, or SIVAE_THREADS)."""
    import papermill

    from sivae import ConfigError
    from sivae import stage as st
    seen = []
    for name in ("MKL_NUM_THREADS", "SIVAE_STAGE"):   # run_stage sets them; monkeypatch restores them after
        monkeypatch.setenv(name, os.environ.get(name, ""))
    # nothing runs: execute_notebook only records the thread count the kernel would get
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: seen.append(os.environ["OMP_NUM_THREADS"]))
    for env, want in (("", "2"), ("5", "5")):
        monkeypatch.setenv("OMP_NUM_THREADS", "7")      # whatever the caller had does not decide
        monkeypatch.setenv("SIVAE_THREADS", env)
        st.run_stage("theory_discrete", params_file=ROOT / "params.yaml", root=ROOT)
        assert seen[-1] == want
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("SIVAE_THREADS", bad)
        with pytest.raises(ConfigError, match="SIVAE_THREADS must be a positive integer"):
            st.run_stage("theory_discrete", params_file=ROOT / "params.yaml", root=ROOT)
