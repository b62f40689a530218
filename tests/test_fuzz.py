"""Property-based tests of the parameter surface: every bad input is named before any work or output.

For each public entry point that takes user parameters, hypothesis draws values (valid ones from small
ranges, bad ones from nan/inf/negatives/huge numbers/strings/None/...) and checks:
- a call whose every value is valid runs (and returns what it should);
- a call with a bad value raises exactly one of ConfigError / DataError / CheckpointError (never a raw
  Python or torch exception), whose message names one of the bad parameters (or the file);
- and when it raises, the output folder it was given is still empty: nothing was trained or written first.
"""
from __future__ import annotations

import math
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nbutil import ROOT, write_tiny_idx

from sivae.errors import CheckpointError, ConfigError, DataError, DivergenceError
from sivae.params import (
    SEED_MAX,
    parse_bool,
    parse_int,
    parse_list,
    parse_number,
    parse_numbers,
    parse_seed,
    seeds_from,
    split_items,
)
from sivae.train import TrainConfig

MAX_BATCH_SIZE = 1_000_000   # the bound of every batch_size (sivae.train.MAX_BATCH_SIZE)

NAMED = (ConfigError, DataError, CheckpointError)
FAST = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                database=None)


def fast(n: int) -> settings:
    """FAST with n examples."""
    return settings(FAST, max_examples=n)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks: one thread (2 shared cores; more threads only spin)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@contextmanager
def out_dir():
    """A fresh empty folder, removed afterwards (hypothesis runs many examples per test)."""
    d = Path(tempfile.mkdtemp(prefix="sivae-fuzz-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def names_one_of(message: str, names) -> bool:
    """True if `message` names one of `names` as a word (so 'lr' is not found inside 'lr_milestones')."""
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", message) for n in names)


def check_named(call, bad: set, folder: Path | None = None, ok=(), also_named=()):
    """Run call(); with bad parameters it must raise one named error naming one of them and leave folder empty.

    Args:
        bad: the names of the parameters drawn bad (empty: every value is valid, so the call must run).
        ok: further exception types accepted as a run's outcome (e.g. DivergenceError).
        also_named: words that also count as naming the parameter (e.g. a file name).
    Returns:
        the call's result, or None when it raised.
    """
    try:
        result = call()
    except NAMED as e:
        assert bad, f"valid parameters were refused: {type(e).__name__}: {e}"
        assert names_one_of(str(e), set(bad) | set(also_named)), f"{e!r} names none of {sorted(bad)}"
        if folder is not None:
            assert files_in(folder) == [], f"written before the error {e!r}: {files_in(folder)}"
        return None
    except ok:
        assert not bad, f"bad parameters {sorted(bad)} reached the work"
        return None
    assert not bad, f"bad parameters {sorted(bad)} were accepted"
    return result


# ----------------------------------------------------------------- strategies
def _not_numeric_text():
    return st.text(alphabet="abcxyz ,;:-_+", max_size=6).filter(lambda s: s.strip() != "")


def bad_int(minimum: int, maximum: int):
    """Values that are not an integer in [minimum, maximum] (nor its string)."""
    return st.one_of(
        st.integers(max_value=minimum - 1, min_value=minimum - 10**6), st.integers(min_value=maximum + 1,
                                                                                max_value=maximum + 10**20),
        st.just(10**400), st.just(-(10**400)),
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not (x.is_integer() and minimum <= x <= maximum)),
        _not_numeric_text(), st.none(), st.booleans(), st.lists(st.integers(0, 3), max_size=2), st.just({}),
        st.sampled_from(["1.5", "nan", "inf", "-inf", "1e400", str(maximum + 1), str(minimum - 1)]))


def bad_number(positive: bool = False, at_most: float | None = None):
    """Values that are not a finite number >= 0 (> 0 if positive, <= at_most)."""
    return st.one_of(
        st.floats(max_value=-1e-300, allow_infinity=True), st.sampled_from([math.nan, math.inf, -math.inf]),
        st.just(10**400), st.just("1e400"), _not_numeric_text(), st.none(), st.lists(st.floats(0, 1), max_size=2),
        *([st.just(0.0), st.just(0), st.just("0")] if positive else []),
        *([st.floats(min_value=at_most * 1.5, max_value=1e300)] if at_most is not None else []))


def bad_bool():
    return st.one_of(st.sampled_from(["yes", "no", "0", "1", "", "t", "none"]), st.integers(), st.none(),
                     st.floats(allow_nan=True))


GOOD_BOOL = st.sampled_from([True, False, "true", "false", "True", " False "])
junk = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
                 st.integers(min_value=-10**30, max_value=10**30), st.just(10**400), st.text(max_size=8),
                 st.lists(st.one_of(st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=3)), max_size=3),
                 st.tuples(st.floats(allow_nan=True)), st.just({}), st.just(object()))


def draw_params(data, space: dict, min_bad: int = 0, max_bad: int = 2):
    """Draw {name: value}: a few names (min_bad..max_bad) from space[name][1] (bad), the others from [0] (good).

    Returns:
        (values, the set of bad names).
    """
    bad = data.draw(st.sets(st.sampled_from(sorted(space)), min_size=min_bad, max_size=max_bad), label="bad")
    values = {k: data.draw(space[k][1] if k in bad else space[k][0], label=k) for k in sorted(space)}
    return values, bad


# ------------------------------------------------------------------ sivae.params
@fast(300)
@given(value=junk, lo=st.integers(-5, 5), span=st.integers(0, 10**6))
def test_parsers_return_or_name_the_parameter(value, lo, span):
    for call in (lambda: split_items("p_x", value), lambda: parse_list("p_x", value, ["a", "b"]),
                 lambda: parse_bool("p_x", value), lambda: parse_number("p_x", value, positive=True, at_most=10),
                 lambda: parse_numbers("p_x", value), lambda: parse_numbers("p_x", value, integer=True),
                 lambda: parse_numbers("p_x", value, nonnegative=True, at_most=1, allow_empty=True),
                 lambda: parse_numbers("p_x", value, integer=True, positive=True),
                 lambda: parse_int("p_x", value, lo, lo + span), lambda: parse_seed("p_x", value)):
        try:
            out = call()
        except ConfigError as e:
            assert "p_x" in str(e)
            continue
        assert out is not None
    try:
        x = parse_int("p_x", value, lo, lo + span)
        assert isinstance(x, int) and not isinstance(x, bool) and lo <= x <= lo + span
    except ConfigError:
        pass
    try:
        xs = parse_numbers("p_x", value, nonnegative=True, at_most=1, allow_empty=True)
        assert all(isinstance(x, float) and 0 <= x <= 1 for x in xs)
    except ConfigError:
        pass


@fast(200)
@given(seed=st.one_of(junk, st.integers(0, SEED_MAX)), n_seeds=st.one_of(junk, st.integers(1, 20)))
def test_seeds_from_returns_seeds_in_range_or_names_the_parameter(seed, n_seeds):
    try:
        seeds = seeds_from(seed, n_seeds)
    except ConfigError as e:
        assert names_one_of(str(e), {"seed", "n_seeds"})
        return
    assert len(seeds) == n_seeds and all(0 <= s <= SEED_MAX for s in seeds)


def test_parse_int_is_exact_for_large_integers():
    assert parse_int("seed", 2**60 + 1, 0, 2**62) == 2**60 + 1
    assert parse_int("seed", str(2**60 + 1), 0, 2**62) == 2**60 + 1
    for bad in (10**400, "1e400", float("nan"), True):
        with pytest.raises(ConfigError, match="seed"):
            parse_int("seed", bad, 0, 10)


# ------------------------------------------------------------------ TrainConfig
TRAIN_FIELDS = {
    "method": (st.sampled_from(["vae", "introvae", "soft_intro_vae"]),
               st.one_of(st.sampled_from(["gan", "VAE", ""]), st.none(), st.integers())),
    "n_iter": (st.integers(1, 10**6), bad_int(1, 10**12)),
    "batch_size": (st.integers(1, MAX_BATCH_SIZE), bad_int(1, MAX_BATCH_SIZE)),
    "lr": (st.floats(0, 1), bad_number()),
    "lr_milestones": (st.one_of(st.lists(st.floats(0, 2), max_size=3).map(tuple), st.just("0.3,0.6")),
                      st.one_of(st.lists(bad_number(), min_size=1, max_size=2), st.just(5), st.none(),
                                st.just("x,0.5"))),
    "lr_gamma": (st.floats(0, 1), bad_number()),
    "beta_rec": (st.floats(0, 10), bad_number()),
    "beta_kl": (st.floats(0, 10), bad_number()),
    "beta_neg": (st.floats(0, 1000), bad_number()),
    "gamma_r": (st.floats(0, 1), bad_number()),
    "alpha": (st.floats(0.1, 5), bad_number(positive=True)),
    "m": (st.floats(0, 10), bad_number()),
    "scale": (st.one_of(st.none(), st.floats(1e-6, 1)), bad_number(positive=True).filter(lambda v: v is not None)),
    "num_vae": (st.integers(0, 10**6), bad_int(0, 10**12)),
    "seed": (st.integers(0, SEED_MAX), bad_int(0, SEED_MAX)),
    "checkpoint_every": (st.integers(1, 10**6), bad_int(1, 10**12)),
    "log_every": (st.integers(1, 10**6), bad_int(1, 10**12)),
    "max_loss": (st.one_of(st.floats(1, 1e30), st.just(math.inf)),
                 st.one_of(st.sampled_from([0, -1.0, math.nan, "1e10", None, True]))),
    "autocast": (st.sampled_from(["none", "bf16", "auto"]), st.one_of(st.sampled_from(["fp32", "BF16", ""]), st.none())),
    "progress": (GOOD_BOOL, bad_bool()),
    "extra": (st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.one_of(st.none(), st.lists(st.integers()))),
}


@fast(400)
@given(data=st.data())
def test_train_config_runs_or_names_the_field(data):
    values, bad = draw_params(data, TRAIN_FIELDS, max_bad=3)
    cfg = check_named(lambda: TrainConfig(**values), bad)
    if cfg is not None:
        assert isinstance(cfg.batch_size, int) and 1 <= cfg.batch_size <= MAX_BATCH_SIZE
        assert all(math.isfinite(getattr(cfg, k)) and getattr(cfg, k) >= 0
                   for k in ("lr", "beta_rec", "beta_kl", "beta_neg", "gamma_r", "m", "lr_gamma"))
        assert all(math.isfinite(f) and f >= 0 for f in cfg.lr_milestones) and isinstance(cfg.progress, bool)


def test_train_config_defaults_unchanged():
    c = TrainConfig()
    assert (c.n_iter, c.batch_size, c.lr, c.lr_milestones, c.lr_gamma, c.alpha, c.max_loss, c.seed) == \
        (30_000, 512, 2e-4, (1 / 3, 1 / 2), 0.1, 2.0, 1e10, 0)
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig(batch_size=10**9)


# ------------------------------------------------------------------ toy2d
TOY_SPACE = {
    "datasets": (st.sampled_from(["rings", "8gaussians", "spiral", "checkerboard"]),
                 st.one_of(st.sampled_from(["moons", "", " , ", "rings,moons"]), st.integers(), st.just([]))),
    "methods": (st.sampled_from(["vae", "introvae", "soft_intro_vae"]),
                st.one_of(st.sampled_from(["gan", "", "vae,gan"]), st.integers(), st.just([]))),
    "seed": (st.one_of(st.integers(0, 3), st.sampled_from(["0", 1, 2.0])), bad_int(0, SEED_MAX)),
    "n_seeds": (st.integers(1, 2), bad_int(1, 10_000)),
    "n_iter": (st.one_of(st.integers(1, 3), st.sampled_from([2.0, "3"])), bad_int(1, 10**12)),
    "batch_size": (st.one_of(st.integers(1, 16), st.just(8.0)), bad_int(1, MAX_BATCH_SIZE)),
    "num_vae": (st.integers(0, 5), bad_int(0, 10**12)),
    "n_samples": (st.integers(1, 200), bad_int(1, 1_000_000)),
    "grid_size": (st.integers(2, 16), bad_int(2, 4096)),
    "lr": (st.floats(0, 1e-2), bad_number()),
    "gamma_r": (st.floats(0, 1e-2), bad_number()),
    "lr_milestones": (st.sampled_from(["", "0.5", "0.333333,0.5", (0.2, 0.9), 0.5]),
                      st.sampled_from(["1.5", "-0.1", "nan", "x", "0.5,inf", (2.0,), ("a",), "1e400"])),
    "beta_rec": (st.one_of(st.just("table5"), st.floats(0.01, 1)), bad_number().filter(lambda v: v is not None)),
    "beta_kl": (st.one_of(st.just("table5"), st.floats(0.01, 1)), bad_number().filter(lambda v: v is not None)),
    "beta_neg": (st.one_of(st.just("table5"), st.floats(0.01, 1)), bad_number().filter(lambda v: v is not None)),
    "m": (st.one_of(st.just("table5"), st.floats(0, 2)), bad_number().filter(lambda v: v is not None)),
    "device": (st.sampled_from(["cpu", "auto", "", None]),
               st.one_of(st.sampled_from(["gpu", "meta", "cuda:x", "cpu:-1", "CPU"]), st.integers(), st.floats())),
    "progress": (st.sampled_from([False, "false"]), bad_bool()),
    "budget": (st.sampled_from([False, True, "false"]), bad_bool()),
}
if not torch.cuda.is_available():
    TOY_SPACE["device"] = (TOY_SPACE["device"][0], st.one_of(TOY_SPACE["device"][1], st.just("cuda")))


def _run_toy(values, folder):
    from sivae.toy2d.config import Toy2dConfig
    from sivae.toy2d.study import run_toy2d
    return run_toy2d(Toy2dConfig(**values, ckpt_dir=folder))


@fast(120)
@given(data=st.data())
def test_run_toy2d_bad_values_are_named_before_anything_is_written(data):
    values, bad = draw_params(data, TOY_SPACE, min_bad=1)
    with out_dir() as folder:
        check_named(lambda: _run_toy(values, folder), bad, folder, ok=(DivergenceError,))


@pytest.mark.slow
@fast(8)
@given(data=st.data())
def test_run_toy2d_valid_values_train_and_evaluate(data):
    values, bad = draw_params(data, TOY_SPACE, max_bad=0)
    with out_dir() as folder:
        runs = check_named(lambda: _run_toy(values, folder), bad, folder, ok=(DivergenceError,))
        if runs is not None:
            assert len(runs) == values["n_seeds"]
            assert any(p.endswith("last.pt") for p in files_in(folder))


def test_run_toy2d_refuses_huge_batch_and_empty_grid_before_training(tmp_path):
    from sivae.toy2d.config import Toy2dConfig
    kw = dict(n_iter=2, batch_size=8, n_samples=50, grid_size=8, progress=False, device="cpu", ckpt_dir=tmp_path,
              datasets="rings", methods="vae", n_seeds=1)
    for bad in (dict(batch_size=10**9), dict(grid_size=0), dict(n_samples=10**9), dict(grid_size=10**5)):
        with pytest.raises(ConfigError, match=list(bad)[0]):
            Toy2dConfig(**{**kw, **bad})
        assert files_in(tmp_path) == []


# ------------------------------------------------------------------ stability
def _toy_base(folder, **kw):
    from sivae.toy2d.config import Toy2dConfig
    return Toy2dConfig(**{**dict(datasets="8gaussians", n_seeds=1, n_iter=1, batch_size=8, n_samples=20, grid_size=4,
                                 progress=False, device="cpu", budget=False, ckpt_dir=folder), **kw})


@fast(25)
@given(name=st.one_of(st.sampled_from(["m", "beta_neg"]), st.sampled_from(["lr", "M", ""])),
       values=st.lists(st.one_of(st.floats(0.1, 2), bad_number()), min_size=1, max_size=3),
       n_iter=st.one_of(st.just(1), bad_int(1, 10**12)))
def test_grid_configs_check_every_value_before_the_first_run(name, values, n_iter):
    from sivae.stability.config import grid_configs
    from sivae.stability.study import run_grid
    model = "introvae" if name == "m" else "soft_intro_vae"
    ok_values = all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in values)
    bad = set()
    if name not in ("m", "beta_neg"):
        bad.add("name")
    if not ok_values:
        bad |= {f"{name} values", name}
    if not (isinstance(n_iter, int) and not isinstance(n_iter, bool) and n_iter == 1):
        bad.add("n_iter")
    with out_dir() as folder:
        check_named(lambda: run_grid(grid_configs(_toy_base(folder, n_iter=n_iter), model, name, values),
                                     Path(folder) / "stacks"), bad, folder)


@fast(15)
@given(beta_rec=st.one_of(st.floats(0.1, 1), bad_number()), beta_kl=st.one_of(st.floats(0.1, 1), bad_number()),
       beta_neg=st.one_of(st.floats(0.1, 1), bad_number()))
def test_stability_config_checks_both_collapse_runs_before_the_first(beta_rec, beta_kl, beta_neg):
    from sivae.stability.config import StabilityConfig
    from sivae.stability.study import run_collapse
    bad = {f"collapse_{k}" for k, v in dict(beta_rec=beta_rec, beta_kl=beta_kl, beta_neg=beta_neg).items()
           if not (isinstance(v, float) and math.isfinite(v) and v >= 0)}
    with out_dir() as folder:
        check_named(lambda: run_collapse(StabilityConfig(
            collapse_beta_rec=beta_rec, collapse_beta_kl=beta_kl, collapse_beta_neg=beta_neg, n_seeds=1, n_iter=1,
            batch_size=8, n_samples=20, grid_size=4, progress=False, device="cpu", margins="1", curve_margins="1",
            beta_negs="0.9", ckpt_dir=folder)), bad, folder, ok=(DivergenceError,))


# ------------------------------------------------------------------ images
@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory):
    """Tiny MNIST-format data (64 training, 32 test images); no Fashion-MNIST."""
    root = tmp_path_factory.mktemp("tiny_images")
    write_tiny_idx(root, "mnist", n_train=64, n_test=32)
    return root


IMAGE_SPACE = {
    "datasets": (st.sampled_from([["mnist"], "mnist"]), st.sampled_from([["imagenet"], "", "mnist,cifar", [5]])),
    "methods": (st.sampled_from([["vae"], ["soft_intro_vae"], "introvae"]), st.sampled_from([["gan"], [], "", 3])),
    "seed": (st.sampled_from([0, 1, "0"]), bad_int(0, SEED_MAX)),
    "n_seeds": (st.just(1), st.sampled_from([0, -1, "a", 2**40, None, 0.5, True])),
    "n_train": (st.sampled_from([0, 32, "48"]), st.one_of(bad_int(0, 10**8), st.just(4))),
    "epochs": (st.sampled_from([0.25, 0.5, "0.5"]),
               st.one_of(bad_number(positive=True, at_most=1e6), st.sampled_from(["papers", ""]))),
    "batch_size": (st.sampled_from([16, 32, "16"]), bad_int(1, MAX_BATCH_SIZE)),
    "lr": (st.floats(0, 1e-3), bad_number()),
    "beta_rec": (st.floats(0.1, 1), bad_number()),
    "beta_kl": (st.floats(0.1, 1), bad_number()),
    "beta_neg": (st.floats(1, 32), bad_number()),
    "gamma_r": (st.floats(0, 1e-6), bad_number()),
    "num_vae": (st.sampled_from([0, 0.0, 0.5]), bad_number(at_most=1e6)),
    "channels": (st.sampled_from(["4,8", (4, 8), "4"]),
                 st.sampled_from(["0,8", "x", "-4", "4.5", "5000", "10000000000", ""])),
    "z_dim": (st.sampled_from([4, "4"]),
              st.sampled_from([0, -1, "x", 1.5, "1e400", 10**9, None])),
    "ckpt_dir": (st.just(None), st.sampled_from([5, "", None, 1.5]).filter(lambda v: v is not None)),
    "device": (st.sampled_from(["cpu", "auto"]), st.sampled_from(["gpu", "meta", 0, "cuda:x"])),
    "autocast": (st.sampled_from(["none", "auto", "bf16"]), st.sampled_from(["fp32", "", None, 1])),
    "conditional": (GOOD_BOOL, bad_bool()),
    "progress": (st.just(False), bad_bool()),
}


def _train_runs(values, root, folder):
    """ImagesConfig (the values' one check) and train_runs (what needs the data), as notebook 04 calls them."""
    from sivae.images.config import ImagesConfig
    from sivae.images.study import train_runs
    v = dict(values)
    if v["ckpt_dir"] is None:
        v["ckpt_dir"] = folder
    progress = v.pop("progress")
    return train_runs(ImagesConfig(data_root=root, paper_data_root=root, **v), progress=progress,
                      log=lambda msg: None)


@fast(60)
@given(data=st.data())
def test_train_runs_bad_values_are_named_before_data_or_training(data):
    values, bad = draw_params(data, IMAGE_SPACE, min_bad=1)
    with out_dir() as folder, out_dir() as empty_root:   # no data at all: validation must come first
        check_named(lambda: _train_runs(values, empty_root, folder), bad, folder)


@fast(6)
@given(data=st.data())
def test_train_runs_valid_values_train(data, tiny_mnist):
    values, bad = draw_params(data, IMAGE_SPACE, max_bad=0)
    with out_dir() as folder:
        runs = check_named(lambda: _train_runs(values, tiny_mnist, folder), bad, folder)
        assert runs and all(m.step >= 1 for m in runs.values())


def test_train_runs_zero_batch_and_missing_second_dataset_write_nothing(tiny_mnist, tmp_path):
    from sivae.images.config import ImagesConfig
    from sivae.images.study import train_runs
    cfg = ImagesConfig(datasets="mnist", methods="vae", seed=0, n_seeds=1, conditional=False, data_root=tiny_mnist,
                       paper_data_root=tiny_mnist, n_train=0, epochs=0.5, batch_size=16, lr=1e-3, beta_rec=1.0,
                       beta_kl=1.0, beta_neg=8.0, gamma_r=1e-8, num_vae=0, channels="4,8", z_dim=4, ckpt_dir=tmp_path,
                       device="cpu", autocast="none")
    with pytest.raises(ConfigError, match="batch_size"):
        cfg.replace(batch_size=0)
    with pytest.raises(DataError, match="fashionmnist"):   # mnist is there, fashionmnist is not: nothing trains
        train_runs(cfg.replace(datasets="mnist,fashionmnist"), progress=False, log=lambda m: None)
    with pytest.raises(ConfigError, match="channels"):   # 28 is not divisible by 2^3
        train_runs(cfg.replace(channels="4,8,16"), progress=False, log=lambda m: None)
    assert files_in(tmp_path) == []


@fast(60)
@given(data=st.data())
def test_train_image_model_names_bad_arguments(data, tiny_mnist):
    from sivae.images.data import load_image_dataset
    from sivae.images.models import arch_for
    from sivae.images.training import train_image_model
    space = {"epochs": (st.sampled_from([0.25, 0.5]), bad_number(positive=True, at_most=1e6)),
             "batch_size": (st.sampled_from([16, 32]), bad_int(1, MAX_BATCH_SIZE)),
             "num_vae": (st.sampled_from([0, 0.5]), bad_number(at_most=1e6)),
             "seed": (st.integers(0, 3), bad_int(0, SEED_MAX)),
             "lr": (st.floats(0, 1e-3), bad_number()),
             "beta_neg": (st.floats(1, 32), bad_number()),
             "autocast": (st.sampled_from(["none", "auto"]), st.sampled_from(["fp32", None, 3])),
             "device": (st.sampled_from(["cpu", "auto"]), st.sampled_from(["gpu", 1, "meta"])),
             "world": (st.just(1), bad_int(1, 65536)),
             "rank": (st.just(0), st.sampled_from([-1, 1, "x", None, 0.5])),
             "method": (st.sampled_from(["vae", "soft_intro_vae"]), st.sampled_from(["gan", None, ""]))}
    values, bad = draw_params(data, space, min_bad=data.draw(st.sampled_from([0, 1, 1, 1, 1, 1]), label="n_bad"))
    if "world" in bad:
        bad.add("rank")   # rank is checked against world
    train = load_image_dataset("mnist", "train", tiny_mnist)
    arch = arch_for("mnist", channels="4,8", z_dim=4)
    method, seed = values.pop("method"), values.pop("seed")
    with out_dir() as folder:
        check_named(lambda: train_image_model(train, arch, method, seed, ckpt_dir=folder, progress=False, **values),
                    bad, folder)


@fast(60)
@given(data=st.data())
def test_score_models_names_bad_arguments_before_loading(data):
    from sivae.images.config import ImagesConfig
    from sivae.images.study import score_models
    space = {"n_fd_samples": (st.integers(1, 100), bad_int(1, 1_000_000)),
             "classifier_epochs": (st.integers(0, 2), bad_int(0, 100_000)),
             "use_inception": (st.sampled_from([False, "false"]), bad_bool()),
             "seed": (st.integers(0, 3), bad_int(0, SEED_MAX)),
             "device": (st.just("cpu"), st.sampled_from(["gpu", 2, "meta"])),
             "runs": (st.just({}), st.sampled_from([None, [], {"a": 1}, {("mnist", "vae", 0): "model"}]))}
    values, bad = draw_params(data, space, min_bad=1)
    runs = values.pop("runs")
    with out_dir() as folder:   # the values: ImagesConfig's one check; the runs: score_models'
        check_named(lambda: score_models(runs, ImagesConfig(data_root=folder / "none", paper_data_root=folder / "none",
                                                            classifier_dir=folder, **values), log=lambda m: None),
                    bad, folder)


# ------------------------------------------------------------------ OOD
BAD_PATH = st.sampled_from([None, "", "   ", 3, ["a"]])
OOD_SPACE = {   # the parameters of notebook 06, checked by sivae.ood.config.OodConfig
    "seed": (st.integers(0, 3), bad_int(0, SEED_MAX)),
    "n_seeds": (st.integers(1, 2), st.sampled_from([0, -1, 1.5, "x", None, True, 10**6])),
    "device": (st.just("cpu"), st.sampled_from(["gpu", 3, "meta"])),
    "in_dist": (st.sampled_from(["mnist", ["mnist"], " mnist "]),
                st.sampled_from(["imagenet", "", None, "folder:/x", "mnist,cifar10,svhn"])),
    "ood": (st.sampled_from(["fashionmnist", ["fashionmnist"]]),
            st.sampled_from(["mnist", "cifar", "", "folder:", "folder:/no/such/folder"])),
    "methods": (st.sampled_from([["vae"], "vae,soft_intro_vae"]), st.sampled_from([["gan"], "", 3])),
    "n_importance": (st.integers(1, 4), bad_int(1, 1_000_000)),
    "sigma2": (st.floats(0.1, 2), bad_number(positive=True)),
    "chunk_size": (st.integers(1, 64), bad_int(1, 100_000_000)),
    "n_eval": (st.integers(0, 50), bad_int(0, 100_000_000)),
    "convert": (st.sampled_from(["none", "auto"]), st.sampled_from(["gray", "", None, 1])),
    "bins": (st.integers(1, 60), bad_int(1, 100_000)),
    "ckpt_dir": (st.just("unused_ck"), BAD_PATH),
    "train_missing": (GOOD_BOOL, bad_bool()),
    "train_epochs": (st.sampled_from([0.5, 1, "2", "paper"]), bad_number(positive=True, at_most=1e6)),
    "train_batch_size": (st.sampled_from([16, "8", "paper"]), bad_int(1, MAX_BATCH_SIZE)),
    "train_channels": (st.sampled_from(["4,8", (4, 8), "paper"]), st.sampled_from(["x", "0,4", "", None, "5000"])),
    "train_n_train": (st.sampled_from([0, 256]), bad_int(0, 100_000_000)),
    "near_pairs": (st.sampled_from(["", "none", "noise", "blur:mnist:1.0,constant", "heldout:fashionmnist:9", ()]),
                   st.sampled_from(["blur:mnist:0", "heldout:mnist:10", "shift:fashionmnist:2", "bogus", "noise,noise",
                                    "folder:/no/such/folder", 3])),
    "scores": (st.sampled_from(["loglik", "all", "complexity,ratio", ("typicality",)]),
               st.sampled_from(["", "likelihood", 3, ","])),
    "near_n_eval": (st.integers(0, 50), bad_int(0, 100_000_000)),
    "heldout_n_train": (st.integers(0, 50), bad_int(0, 100_000_000)),
    "heldout_lr": (st.floats(1e-4, 1e-2), bad_number(positive=True)),
    "bg_mu": (st.floats(0, 1), bad_number(at_most=1.0)),
    "bg_channels": (st.sampled_from(["4,8", "2", (4, 4)]), st.sampled_from(["x", "0", "", None, "5000"])),
    "bg_epochs": (st.floats(0.1, 2), bad_number(positive=True, at_most=1e6)),
    "bg_n_train": (st.integers(0, 50), bad_int(0, 100_000_000)),
    "bg_batch_size": (st.integers(1, 64), bad_int(1, 1_000_000)),
    "bg_lr": (st.floats(1e-4, 1e-2), bad_number(positive=True)),
    "regret_steps": (st.integers(0, 5), bad_int(0, 1_000_000)),
    "regret_lr": (st.floats(1e-3, 1), bad_number(positive=True)),
    "regret_n_eval": (st.integers(1, 4), bad_int(1, 1_000_000)),
    "typicality_batch": (st.integers(1, 4), bad_int(1, 1_000_000)),
    "released": (st.just(""), st.sampled_from([None, 3, ["cifar10:x"]])),
    "metrics_path": (st.just("m.json"), BAD_PATH),
}
# words of the messages that name a parameter by what it holds (sivae.images.config.training_sizes's, the
# pair parsers')
OOD_ALSO = {"in_dist": ("dataset", "folder"), "ood": ("dataset", "folder"), "near_pairs": ("near pair",),
            "train_epochs": ("epochs",), "train_batch_size": ("batch_size",), "train_channels": ("channels",),
            "train_n_train": ("n_train",)}


@fast(150)
@given(data=st.data())
def test_ood_config_names_bad_values_and_the_study_loads_before_training(data, tiny_mnist):
    from sivae.ood.config import OodConfig
    from sivae.ood.study import run_ood_study
    values, bad = draw_params(data, OOD_SPACE, min_bad=data.draw(st.sampled_from([0, 1, 1, 1, 1]), label="n_bad"))
    trains = ("train_missing" not in bad and parse_bool("tm", values["train_missing"])) or \
        ("near_pairs" not in bad and "heldout" in str(values["near_pairs"]))
    if not trains:   # epochs and batch sizes are checked for the datasets models are trained on: none here
        bad -= {"train_epochs", "train_batch_size"}
    also = tuple(w for k in bad for w in OOD_ALSO.get(k, ()))
    with out_dir() as folder:
        paths = dict(data_root=tiny_mnist, paper_data_root=tiny_mnist, own_ckpt_dir=folder / "own")
        values = {k: folder / v if k in ("ckpt_dir", "metrics_path") and isinstance(v, str) and v.strip() else v
                  for k, v in values.items()}
        cfg = check_named(lambda: OodConfig(**paths, **values), bad, folder, also_named=also)
        if bad:
            return
        assert isinstance(cfg, OodConfig) and OodConfig.from_params(cfg.as_params()) == cfg   # round trip
        # tiny MNIST is there, Fashion-MNIST (the OOD set) is not: DataError before any model is trained
        with pytest.raises(DataError, match="fashionmnist"):
            run_ood_study(cfg, log=lambda m: None)
        assert files_in(folder) == []


@fast(200)
@given(in_dist=junk, ood=st.one_of(junk, st.text(alphabet="mnistfahocr+,:/ ", max_size=20)))
def test_parse_pairs_returns_pairs_or_names_the_parameter(in_dist, ood):
    from sivae.ood.study import parse_pairs
    try:
        pairs = parse_pairs(in_dist, ood)
    except ConfigError as e:
        assert names_one_of(str(e), {"in_dist", "ood", "folder"}) or "both the in-distribution" in str(e), e
        return
    assert pairs and all(isinstance(i, str) and o for i, o in pairs)


# ------------------------------------------------------------------ translation
SETTINGS_SPACE = {
    "n_epochs": (st.floats(0.01, 10), bad_number(positive=True, at_most=1e6)),
    "batch_size": (st.integers(1, 64), bad_int(1, MAX_BATCH_SIZE)),
    "lr": (st.floats(0, 1e-2), bad_number()),
    "beta_rec": (st.floats(0, 2), bad_number()),
    "beta_kl": (st.floats(0, 2), bad_number()),
    "beta_neg": (st.floats(0, 1000), bad_number()),
    "gamma_r": (st.floats(0, 1e-6), bad_number()),
    "num_vae": (st.integers(0, 10), bad_int(0, 10**12)),
    "kl_every": (st.integers(1, 100), bad_int(1, 10**12)),
    "seed": (st.integers(0, 10), bad_int(0, SEED_MAX)),
}


TRANSLATION_SPACE = {
    **SETTINGS_SPACE,
    "n_seeds": (st.integers(1, 3), st.sampled_from([0, -1, 1.5, "2", None, 10**5, True])),
    "methods": (st.sampled_from(["all", "vae", "soft_intro_vae,vae", None]), st.sampled_from(["gan", "", "vae,gan", 3])),
    "rec_loss": (st.sampled_from(["mse", "auto", "vgg"]), st.sampled_from(["l1", "", None, 2, []])),
    "device": (st.sampled_from(["cpu", "auto"]), st.sampled_from(["gpu", 1, "meta"])),
    "vgg_weights": (st.sampled_from(["auto", "/no/such/vgg16.pth"]), st.sampled_from([3, 1.5, []])),
    "dataset": (st.just("procedural"), st.sampled_from(["mnist", "", None, 3, []])),
    "n_classes": (st.integers(1, 5), bad_int(1, 100_000)),
    "n_test_classes": (st.integers(1, 5), bad_int(1, 100_000)),
    "enc_channels": (st.sampled_from(["4,8", (4, 8), "8"]), st.sampled_from(["4,x", "", "0,4", "-2", "4.5", None])),
    "dec_channels": (st.sampled_from(["8,8,4,4", [8, 8, 4, 4]]), st.sampled_from(["8,8", "x", "0,8,8,8", ""])),
    "dec_hidden": (st.integers(1, 8), bad_int(1, 1 << 16)),
    "class_dim": (st.integers(1, 8), bad_int(1, 1 << 16)),
    "n_pairs": (st.integers(1, 100), bad_int(1, 1_000_000)),
    "n_grid": (st.integers(1, 8), bad_int(1, 64)),
    "ckpt_dir": (st.just("ck"), st.sampled_from(["", "  ", None, 3])),
    "fig_dir": (st.just("fig"), st.sampled_from(["", None, 1.5])),
}


@fast(300)
@given(data=st.data())
def test_translation_config_constructs_or_names_the_field(data):
    """The translation stage's config: a valid draw constructs (its parsed values construct it again, and its
    run record reads back into the same config); a bad one names a bad field, before any file is looked at."""
    from sivae.translation.config import TranslationConfig
    values, bad = draw_params(data, TRANSLATION_SPACE, max_bad=3)
    cfg = check_named(lambda: TranslationConfig(**values), bad, also_named=("method",))
    if cfg is not None:
        assert isinstance(cfg.batch_size, int) and isinstance(cfg.num_vae, int) and 0 <= cfg.seed <= SEED_MAX
        assert cfg.arch.enc_channels == cfg.enc_channels and cfg.seeds[0] == cfg.seed
        assert cfg.replace() == cfg and TranslationConfig.from_params(cfg.as_params()) == cfg


@fast(60)
@given(data=st.data())
def test_train_translation_names_bad_arguments_before_training(data):
    from sivae.translation import study as S
    from sivae.translation.data import TranslationData
    space = {"progress": (st.just(False), bad_bool()),
             "batch_size": (st.just(4), st.integers(9, 100)),   # more than the 8 training images
             "cfg": (st.just(None), st.sampled_from(["fast", {}, 1]))}
    values, bad = draw_params(data, space, min_bad=1)
    methods = data.draw(st.sampled_from(["all", "vae"]), label="methods")
    g = torch.Generator().manual_seed(0)
    imgs = lambda n: torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=g)
    tiny = TranslationData("tiny", imgs(8), torch.arange(8) % 2, None, imgs(4), torch.arange(4) % 2, None)
    with out_dir() as folder:
        cfg = values["cfg"] if "cfg" in bad else S.TranslationConfig(
            enc_channels=(4, 8), dec_channels=(8, 8, 4, 4), dec_hidden=4, fc_hidden=16, class_dim=6, content_dim=5,
            n_epochs=0.5, batch_size=values["batch_size"], kl_every=2, methods=methods, rec_loss="mse", device="cpu",
            ckpt_dir=str(folder))
        if "cfg" in bad:
            bad.discard("batch_size")   # no config: its batch size is never looked at
        check_named(lambda: S.train_translation(tiny, cfg, progress=values["progress"]), bad, folder,
                    also_named=("TranslationConfig",))


# ------------------------------------------------------------------ theory
THEORY_DEFAULTS = dict(K=6, M=4, pdatas="smooth,peaked,sparse", gammas="0.0,0.1", alphas="1.0,2.0", gamma_max=2.0,
                       n_gamma_grid=25, n_steps=4000, lr=0.05, log_every=25, n_ablation_seeds=8,
                       ablation_pdata="smooth", ablation_gamma=0.5, ablation_alpha=2.0, introvae_margin=1.0,
                       tol_pd=1e-3, tol_kl=1e-4, tol_lemma4=1e-2, seed=0, device="auto", interactive=False)
THEORY_BAD = {"K": bad_int(2, 1000), "M": bad_int(1, 1000), "n_gamma_grid": bad_int(2, 10_000),
              "n_steps": bad_int(1, 10_000_000), "log_every": bad_int(1, 10_000_000),
              "n_ablation_seeds": bad_int(1, 10_000), "seed": bad_int(0, SEED_MAX),
              "pdatas": st.sampled_from(["bimodal", "", "smooth,x", 3]),
              "gammas": st.sampled_from(["-1", "nan", "x", "", "inf", "0,-0.5"]),
              "alphas": st.sampled_from(["0", "-1", "nan", "", "1,0"]),
              "gamma_max": bad_number(positive=True), "lr": bad_number(positive=True),
              "ablation_pdata": st.sampled_from(["bimodal", "", None, 3]), "ablation_gamma": bad_number(),
              "ablation_alpha": bad_number(positive=True), "introvae_margin": bad_number(),
              "tol_pd": bad_number(), "tol_kl": bad_number(), "tol_lemma4": bad_number(),
              "device": st.sampled_from([None, 3, 1.5]), "interactive": bad_bool(),
              "fig_dir": st.sampled_from(["", "  ", None, 3]), "metrics_path": st.sampled_from(["", None, 1.5])}


@fast(300)
@given(data=st.data())
def test_theory_config_names_the_bad_one(data):
    from sivae.theory_discrete.config import TheoryConfig
    bad = data.draw(st.sets(st.sampled_from(sorted(THEORY_BAD)), max_size=2), label="bad")
    values = {**THEORY_DEFAULTS, **{k: data.draw(THEORY_BAD[k], label=k) for k in bad}}
    out = check_named(lambda: TheoryConfig(**values), bad)
    if out is not None:
        assert out.gammas == (0.0, 0.1) and out.K == 6 and out.interactive is False
        assert out.replace() == out      # its own parsed values construct it again, unchanged


def test_theory_notebook_checks_parameters_before_any_figure(tmp_path):
    """Run the notebook's cells with gammas='-1': the first code cell after the parameters must fail, no figure."""
    import matplotlib
    matplotlib.use("Agg")
    text = (ROOT / "notebooks" / "01_theory_discrete.py").read_text()
    cells = [c for c in re.split(r"^# %%.*$", text, flags=re.M) if c.strip() and not c.lstrip().startswith("# ---")]
    code = [c for c in cells if not all(line.startswith("#") or not line.strip() for line in c.splitlines())]
    ns: dict = {}
    raised = None
    for i, cell in enumerate(code):
        if "fig_dir = " in cell and "tags" not in cell:   # the parameters cell: papermill's injected values follow
            exec(compile(cell, f"cell{i}", "exec"), ns)
            ns.update(gammas="-1", fig_dir=str(tmp_path / "fig"), metrics_path=str(tmp_path / "m.json"),
                      run_info_path=str(tmp_path / "ri.json"), interactive=False)
            continue
        try:
            exec(compile(cell, f"cell{i}", "exec"), ns)
        except ConfigError as e:
            raised = e
            break
    assert raised is not None and "gammas" in str(raised)
    assert files_in(tmp_path) == [], "figures drawn before the bad parameter was named"


# ------------------------------------------------------------------ profiles
@fast(120)
@given(profile=st.one_of(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
                         st.sampled_from(["a: [1\n", "- 1\n- 2\n", "x:\n  y: 1\n", "3\n", "x: {y: 2}\n", "",
                                          "\x00bin", ":"])),
       params=st.one_of(st.none(), st.sampled_from(["x:\n  y: 1\n", "x:\n  z: 1\n", "a: [\n", "- 1\n"])),
       name=st.one_of(st.sampled_from(["p", "q", "../p"]), st.text(st.characters(blacklist_categories=("Cs",)),
                                                                    max_size=4)))
def test_profiles_switch_and_current_name_the_file(profile, params, name):
    from sivae.profiles import available, current, switch
    with out_dir() as root:
        (root / "profiles").mkdir()
        (root / "profiles" / "p.yaml").write_text(profile)
        if params is not None:
            (root / "params.yaml").write_text(params)
        assert set(available(root)) == {"p"}
        before = (root / "params.yaml").read_text() if params is not None else None
        for call in (lambda: current(root), lambda: switch(name, root)):
            try:
                call()
            except ConfigError as e:
                assert names_one_of(str(e), {"params.yaml", "p.yaml", "profile"}), e
                after = (root / "params.yaml").read_text() if (root / "params.yaml").exists() else None
                assert after == before, "params.yaml changed by a refused switch"
        with pytest.raises(ConfigError, match="profile"):
            switch("nope", root)


def test_profiles_command_line_reports_bad_files(tmp_path, monkeypatch, capsys):
    from sivae.profiles import main
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "bad.yaml").write_text("a: [1\n")
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2 and "params.yaml does not exist" in capsys.readouterr().err
    assert main(["bad"]) == 2 and "bad.yaml is not valid YAML" in capsys.readouterr().err
    assert main(["missing"]) == 2 and "unknown profile 'missing'" in capsys.readouterr().err
    assert not (tmp_path / "params.yaml").exists()


# ----------------------------------------------------------------- #31: typo bounds and checks before training
@pytest.mark.parametrize("name,value", [("n_iter", "1e9"), ("n_iter", 10**9), ("num_vae", 2 * 10**7)])
def test_toy2d_budget_typos_are_refused_naming_the_bound(name, value):
    from sivae.params import MAX_ITERATIONS
    from sivae.toy2d.config import Toy2dConfig
    kw = dict(n_iter=10, batch_size=8, num_vae=0)
    kw[name] = value
    with pytest.raises(ConfigError, match=rf"{name} must be an integer >= \d and <= {MAX_ITERATIONS}"):
        Toy2dConfig(datasets="8gaussians", methods="vae", **kw)


def test_translation_budget_typos_are_refused_naming_the_bound():
    from sivae.params import MAX_ITERATIONS
    from sivae.translation.config import TranslationConfig
    for name in ("num_vae", "kl_every"):
        with pytest.raises(ConfigError, match=rf"{name} must be an integer .*<= {MAX_ITERATIONS}"):
            TranslationConfig(**{name: 10**9})


# ----------------------------------------------------------------- #31 probe 5: stage preflights
def _defaults(section: str) -> dict:
    """The notebook parameters of a params.yaml section (paths and the executed notebook left out)."""
    import yaml
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    skip = ("_dir", "_path", "_root", "executed_notebook")
    return {**{k: v for k, v in tree[section].items() if not k.endswith(skip)}, "seed": 0, "device": "cpu"}


IMAGE_PREFLIGHT_BAD = [("released", "bogus"), ("released", "ffhq:/no/such/ffhq.pth"), ("released_config", "{x"),
                       ("released_config", '{"celeba": {}}'), ("fid_protocols", "paper,fancy"),
                       ("style_resolution", 33), ("n_fd_samples", 0), ("style_channels", "8,8"),
                       ("channels", "4,8,16,32,64,128"), ("released_images", "/no/such/folder"),
                       ("precision_recall_k", -1), ("classifier_epochs", "1e9")]


def _images_preflight(params: dict, tmp_path, **paths):
    """Notebook 04's preflight: ImagesConfig (the values) then check_files (data, weights, outputs), every
    output path under tmp_path."""
    from sivae.images.config import ImagesConfig
    from sivae.images.study import check_files
    out = {k: tmp_path / k for k in ImagesConfig.names() if k.endswith(("_dir", "_path"))}
    return check_files(ImagesConfig.from_params(params, **{**out, "paper_data_root": tmp_path / "paper", **paths}))


@pytest.mark.parametrize("name,value", IMAGE_PREFLIGHT_BAD)
def test_images_preflight_names_each_bad_value_in_seconds(name, value, tiny_mnist, tmp_path):
    import time
    params = {**_defaults("images"), "datasets": "mnist", name: value}
    t0 = time.time()
    check_named(lambda: _images_preflight(params, tmp_path, data_root=tiny_mnist), {name}, tmp_path)
    assert time.time() - t0 < 10


def test_images_preflight_accepts_the_defaults_and_names_missing_data(tiny_mnist, tmp_path):
    cfg = _images_preflight({**_defaults("images"), "datasets": "mnist"}, tmp_path, data_root=tiny_mnist)
    assert cfg.seeds == (0, 1) and cfg.datasets == ("mnist",)
    with pytest.raises(DataError, match="fashionmnist.*missing"):    # the tiny root has no Fashion-MNIST
        _images_preflight(_defaults("images"), tmp_path, data_root=tiny_mnist)
    with pytest.raises(DataError, match="cifar10.*missing"):
        _images_preflight({**_defaults("images"), "datasets": "mnist", "style_datasets": "cifar10"}, tmp_path,
                          data_root=tiny_mnist)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("name,value", [("collapse_beta_kl", -1), ("collapse_beta_rec", "x"), ("n_iter", "1e9"),
                                        ("curve_margins", "0.3"), ("margins", "0,1")])
def test_stability_preflight_names_each_bad_value(name, value, tmp_path):
    from sivae.stability.config import StabilityConfig
    check_named(lambda: StabilityConfig.from_params({**_defaults("stability"), name: value},
                                                    ckpt_dir=str(tmp_path / "ck")), {name}, tmp_path)


@pytest.mark.parametrize("name,value", [("n_grid", 100000), ("n_pairs", 0), ("rec_loss", "vgg"),
                                        ("dataset", "cars3d"), ("dec_channels", "8,8")])
def test_translation_preflight_names_each_bad_value(name, value, tmp_path):
    from sivae.translation.config import OUTPUTS, TranslationConfig, check_files
    params = {**_defaults("translation"), "vgg_weights": str(tmp_path / "vgg16.pth"), name: value}
    outputs = {k: str(tmp_path / k) for k in OUTPUTS}
    check_named(lambda: check_files(TranslationConfig.from_params(params, data_root="none", **outputs)),
                {name}, tmp_path, also_named=("data_root", "vgg_weights"))


def test_preflights_refuse_an_output_folder_that_cannot_be_written(tmp_path):
    from sivae.errors import OutputError
    from sivae.translation.config import OUTPUTS, TranslationConfig, check_files
    (tmp_path / "outputs").write_text("a file where the output folder should be")
    for name in OUTPUTS:   # each output path of the stage is checked
        paths = {k: str(tmp_path / "ok" / k) for k in OUTPUTS}
        paths[name] = str(tmp_path / "outputs" / name)
        cfg = TranslationConfig.from_params(_defaults("translation"), data_root="none", **paths)
        with pytest.raises(OutputError, match="outputs"):
            check_files(cfg)
    assert files_in(tmp_path) == ["outputs"]


def _notebook_cells(stem: str) -> list[str]:
    text = (ROOT / "notebooks" / f"{stem}.py").read_text()
    cells = [c for c in re.split(r"^# %%.*$", text, flags=re.M) if c.strip() and not c.lstrip().startswith("# ---")]
    return [c for c in cells if not all(line.startswith("#") or not line.strip() for line in c.splitlines())]


NOTEBOOK_BAD = [("04_images", "style_resolution", 33), ("04_images", "released", "ffhq:/no/such.pth"),
                ("04_images", "fid_protocols", "bogus"), ("04_images", "n_fd_samples", 0),
                ("03_stability", "collapse_beta_kl", -1), ("05_translation", "n_grid", 100000),
                ("05_translation", "rec_loss", "vgg"), ("02_toy2d", "out", "a file where the outputs go"),
                ("03_stability", "out", "a file where the outputs go"), ("04_images", "out", "a file"),
                ("05_translation", "out", "a file where the outputs go")]


@pytest.mark.parametrize("stem,name,value", NOTEBOOK_BAD)
def test_notebooks_check_every_parameter_before_training_or_writing(stem, name, value, tiny_mnist, tmp_path,
                                                                    monkeypatch):
    """Run the notebook's cells as papermill would (parameters, then the injected values): the bad value is named
    by the first code cell after the parameters, before any training (Trainer.fit raises here) or output.
    name "out": the output folder is a file (not writable): an OutputError naming it, before any training."""
    import matplotlib
    matplotlib.use("Agg")
    from sivae.errors import OutputError
    from sivae.stack import StackTrainer
    from sivae.train import Trainer

    def no_training(*a, **k):
        raise AssertionError("training started before the parameters were checked")
    monkeypatch.setattr(Trainer, "fit", no_training)
    monkeypatch.setattr(StackTrainer, "fit", no_training)
    out = tmp_path / "out"
    if name == "out":
        out.write_text(value)
    ns: dict = {}
    raised, after_params = None, None
    for i, cell in enumerate(_notebook_cells(stem)):
        if after_params is not None:
            after_params += 1
        if "fig_dir = " in cell and "params = " not in cell:   # the parameters cell
            exec(compile(cell, f"cell{i}", "exec"), ns)
            for k, v in list(ns.items()):
                if isinstance(v, str) and k.endswith(("_dir", "_path", "_root")) and not k.startswith("_"):
                    ns[k] = str(out / k)
            ns.update({"vgg_weights": str(tmp_path / "vgg16.pth"), "interactive": False})
            if stem == "04_images":   # the tiny data: MNIST only
                ns.update({"datasets": "mnist", "style_datasets": "mnist", "data_root": str(tiny_mnist)})
            if name != "out":
                ns[name] = value
            after_params = 0
            continue
        try:
            exec(compile(cell, f"cell{i}", "exec"), ns)
        except (*NAMED, OutputError) as e:
            raised = e
            break
    assert raised is not None and names_one_of(str(raised), {name, "vgg_weights"}), raised
    assert isinstance(raised, OutputError) == (name == "out"), raised
    assert after_params == 1, f"named only in the {after_params}th code cell after the parameters"
    assert not out.is_dir() or files_in(out) == [], f"written before the check: {files_in(out)}"
