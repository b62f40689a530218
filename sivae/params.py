"""Parameter parsing: the one place where notebook and command-line values become Python values.

Notebook parameters arrive from papermill, DVC or a user's `-p name value` as strings, numbers
or booleans. Every section parses them with these functions, so that one spelling works
everywhere ("all" or a comma list; "true"/"false" as DVC renders booleans) and every bad value
raises one ConfigError naming the parameter.
"""
from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

from .errors import ConfigError, check_choice, check_nonnegative

__all__ = ["split_items", "parse_list", "parse_bool", "parse_numbers", "parse_number", "parse_int", "parse_seed",
           "seeds_from", "read_section", "SEED_MAX", "MAX_SEEDS", "MAX_ITERATIONS"]

SEED_MAX = 2**32 - 1     # seeds are integers in [0, SEED_MAX] (numpy's range; torch takes them all)
MAX_SEEDS = 10_000       # most seeds of one run
# Typo guards of the budget-like integers of every stage (n_iter, num_vae, ...): far above any real run (the
# paper's longest: 30,000 iterations), far below what would run for years (`-p n_iter 1e9` is refused).
MAX_ITERATIONS = 10_000_000


def split_items(name: str, value, allow_empty: bool = False) -> list[str]:
    """'a, b,c' (or a sequence, or one number) -> ['a', 'b', 'c'], blanks dropped; empty is an error."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    elif value is None:
        items = []
    else:
        items = [str(value)]
    items = [v for v in items if v]
    if not items and not allow_empty:
        raise ConfigError(f"{name} is empty; give a comma-separated list")
    return items


def parse_list(name: str, value, choices) -> list[str]:
    """Parse 'all' or a comma-separated string (or a list) into validated names, in order."""
    items = list(choices) if value in ("all", None) else split_items(name, value, allow_empty=True)
    if not items:
        raise ConfigError(f"{name} is empty; give 'all' or a comma-separated subset of: {', '.join(choices)}")
    for item in items:
        check_choice(name, item, choices)
    return items


def parse_bool(name: str, value) -> bool:
    """A boolean parameter: True/False, or the strings DVC renders them as ("true"/"false").

    papermill turns only "True"/"False" into booleans; `${section.flag}` in dvc.yaml gives
    lower-case "true"/"false", which would otherwise arrive as (always truthy) strings.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return text == "true"


def parse_numbers(name: str, value, *, integer: bool = False, nonnegative: bool = False, positive: bool = False,
                  at_most: float | None = None, allow_empty: bool = False) -> tuple:
    """'0.1,1,50' (or a number, or a sequence) -> (0.1, 1.0, 50.0), each checked.

    Args:
        integer: each value must be an integer (returned as int).
        nonnegative / positive: each value must be >= 0 / > 0 (and finite).
        at_most: an upper bound (e.g. 1 for fractions).
        allow_empty: '' gives () instead of an error.
    """
    items = split_items(name, value, allow_empty=True)
    out = []
    for v in items:
        try:
            x = float(v)
        except (ValueError, OverflowError):
            raise ConfigError(f"{name} must be comma-separated {'integers' if integer else 'numbers'}, "
                              f"got {value!r}") from None
        if math.isnan(x) or (nonnegative or positive or integer) and not math.isfinite(x):
            raise ConfigError(f"{name} must be finite numbers, got {value!r}")
        if integer:
            if x != int(x):
                raise ConfigError(f"{name} must be integers, got {value!r}")
            x = int(x)
        if nonnegative:
            check_nonnegative(name, x)
        if positive and not x > 0:
            raise ConfigError(f"{name} must be > 0, got {value!r}")
        if at_most is not None and x > at_most:
            raise ConfigError(f"{name} must be at most {at_most}, got {value!r}")
        out.append(x)
    if not out and not allow_empty:
        raise ConfigError(f"{name} is empty; give a comma-separated list of numbers")
    return tuple(out)


def parse_number(name: str, value, *, positive: bool = False, at_most: float | None = None) -> float:
    """One finite number >= 0 (> 0 if positive, <= at_most if given) as a float, or ConfigError naming it."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    x = check_nonnegative(name, value)
    if positive and x == 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")
    if at_most is not None and x > at_most:
        raise ConfigError(f"{name} must be at most {at_most:g}, got {value!r}")
    return x


def parse_int(name: str, value, minimum: int = 1, maximum: int | None = None) -> int:
    """One integer parameter in [minimum, maximum], or ConfigError naming it.

    Integers (and their strings) are taken exactly; floats and numeric strings must be whole.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        x = int(value)
    else:
        try:
            x = int(value.strip()) if isinstance(value, str) else None
        except ValueError:
            x = None
        if x is None:
            try:
                f = float(value)
            except (TypeError, ValueError, OverflowError):
                raise ConfigError(f"{name} must be an integer, got {value!r}") from None
            if not math.isfinite(f) or f != int(f):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            x = int(f)
    if x < minimum or (maximum is not None and x > maximum):
        bound = f">= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
        raise ConfigError(f"{name} must be an integer {bound}, got {value!r}")
    return x


def parse_seed(name: str, value) -> int:
    """One seed: an integer in [0, SEED_MAX], or ConfigError naming it."""
    return parse_int(name, value, 0, SEED_MAX)


def seeds_from(seed: int, n_seeds: int) -> list[int]:
    """The seeds of a run: seed, seed+1, ..., seed+n_seeds-1 (n_seeds a positive integer <= MAX_SEEDS)."""
    whole = isinstance(n_seeds, numbers.Integral) or isinstance(n_seeds, float) and n_seeds.is_integer()
    if isinstance(n_seeds, bool) or not whole or n_seeds < 1:
        raise ConfigError(f"n_seeds must be a positive integer, got {n_seeds!r}")
    if n_seeds > MAX_SEEDS:
        raise ConfigError(f"n_seeds must be at most {MAX_SEEDS}, got {n_seeds!r}")
    first = parse_seed("seed", seed)
    if first + int(n_seeds) - 1 > SEED_MAX:
        raise ConfigError(f"seed + n_seeds - 1 must be at most {SEED_MAX}, got seed={seed!r}, n_seeds={n_seeds!r}")
    return [first + i for i in range(int(n_seeds))]


def parse_seeds(name: str, seeds) -> list[int]:
    """A list of seeds: a comma string, one number or any iterable of them, each checked by parse_seed."""
    if not isinstance(seeds, (str, int, float)) and seeds is not None:
        try:
            seeds = list(seeds)
        except TypeError:
            raise ConfigError(f"{name} must be a list of integers, got {seeds!r}") from None
    return [parse_seed(name, s) for s in split_items(name, seeds)]


def read_section(params_file: str | os.PathLike, section: str) -> tuple[dict, dict]:
    """(`base` section, `section`) of a params.yaml as dicts; one ConfigError naming the file when it is
    missing, not YAML, not a mapping, or lacks the section. Loading never executes code (yaml.safe_load)."""
    import yaml
    path = Path(params_file)
    if not path.is_file():
        raise ConfigError(f"parameters file {path} does not exist")
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"parameters file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"parameters file {path} must hold sections (a mapping), got {type(tree).__name__}")
    if section not in tree:
        raise ConfigError(f"{path} has no section {section!r}")
    base, sec = tree.get("base") or {}, tree[section] or {}
    for name, part in (("base", base), (section, sec)):
        if not isinstance(part, dict):
            raise ConfigError(f"{path}: section {name!r} must be a mapping of parameters, got {type(part).__name__}")
    return dict(base), dict(sec)
