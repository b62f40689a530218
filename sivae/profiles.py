"""Parameter profiles: `python -m sivae.profiles NAME` writes profile NAME to params.yaml.

Profiles share every key and differ only in values (default: 2-core CPU; paper: the paper's
settings, for a GPU). A profile file either holds every key (it is copied as it is, comments and all) or
starts with `extends: OTHER` and holds only the values it changes (quick = default at smaller budgets):
it is resolved over OTHER, and params.yaml gets the whole resolved tree. Run with no name to print which
profile params.yaml matches.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import yaml

from .errors import ConfigError
from .runinfo import write_text

EXTENDS = "extends"   # a profile's top-level key naming the profile it changes


def keys(tree: dict, prefix: str = "") -> set[str]:
    """Dotted key paths of a nested dict ('toy2d.n_iter', ...)."""
    out = set()
    for k, v in tree.items():
        out |= keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
    return out


def _root(root) -> Path:
    if not isinstance(root, (str, os.PathLike)):
        raise ConfigError(f"root must be a folder path, got {root!r}")
    return Path(root)


def read_params(path: Path) -> dict:
    """The mapping a parameter file holds; ConfigError naming the file if it is missing, unreadable,
    not YAML, or not a mapping of sections."""
    path = Path(path)
    try:
        tree = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} cannot be read: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (section: {{key: value}}), "
                          f"got {type(tree).__name__}")
    return tree


def available(root: Path = Path(".")) -> dict[str, Path]:
    """{name: path} of the profiles/<name>.yaml files under root."""
    return {p.stem: p for p in sorted((_root(root) / "profiles").glob("*.yaml"))}


def _path(name, root) -> Path:
    profiles = available(root)
    if not isinstance(name, str) or name not in profiles:
        if not profiles:
            raise ConfigError(f"unknown profile {name!r}: {_root(root) / 'profiles'} holds no *.yaml profile")
        raise ConfigError(f"unknown profile {name!r}; choose one of: {', '.join(profiles)}")
    return profiles[name]


def resolve(name: str, root: Path = Path("."), _chain: tuple = ()) -> dict:
    """The whole parameter tree of profile `name`: its file, or, for a file with `extends: OTHER`, OTHER's tree
    with this file's values put over it. A value for a key OTHER does not have, an unknown or cyclic base, or a
    malformed file raises ConfigError naming the file."""
    path = _path(name, root)
    tree = read_params(path)
    if EXTENDS not in tree:
        return tree
    base = tree.pop(EXTENDS)
    if base == name or base in _chain:
        raise ConfigError(f"{path}: 'extends: {base}' makes a cycle ({' -> '.join((*_chain, name, str(base)))})")
    if not isinstance(base, str) or base not in available(root):
        raise ConfigError(f"{path}: 'extends: {base!r}' names no profile; choose one of: {', '.join(available(root))}")
    full = resolve(base, root, (*_chain, name))
    unknown = sorted(keys(tree) - keys(full))
    if unknown:
        raise ConfigError(f"{path} sets keys that profile {base!r} does not have: {unknown}")
    for dotted in keys(tree):
        *sections, last = dotted.split(".")
        src, dst = tree, full
        for k in sections:
            src, dst = src[k], dst[k]
        dst[last] = src[last]
    return full


def current(root: Path = Path(".")) -> str | None:
    """Name of the profile whose values params.yaml holds, or None if it matches none.

    A missing or malformed params.yaml or profile raises ConfigError naming the file.
    """
    params = read_params(_root(root) / "params.yaml")
    for name in available(root):
        if resolve(name, root) == params:
            return name
    return None


def switch(name: str, root: Path = Path(".")) -> Path:
    """Write profile `name` to params.yaml after checking it has params.yaml's keys: a whole profile is copied as
    it is; one that extends another is written resolved, under a comment naming both files.

    An unknown name, or a malformed profile or params.yaml, raises ConfigError (naming the file) and leaves
    params.yaml unchanged.
    """
    path = _path(name, root)
    raw, new = read_params(path), resolve(name, root)
    old_path = _root(root) / "params.yaml"
    if old_path.exists():
        old = read_params(old_path)
        if keys(old) != keys(new):
            raise ConfigError(f"profile {name} and params.yaml differ in keys: {sorted(keys(old) ^ keys(new))}")
    if EXTENDS not in raw:
        shutil.copyfile(path, old_path)
        return old_path
    return write_text(f"# The {name!r} profile: profiles/{name}.yaml put over profiles/{raw[EXTENDS]}.yaml, written by\n"
                      f"# `python -m sivae.profiles {name}`. Edit the profiles, not this file.\n"
                      + yaml.safe_dump(new, sort_keys=False, default_flow_style=False, allow_unicode=True), old_path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", nargs="?", help="profile to switch to (omit to show the current one)")
    args = ap.parse_args(argv)
    try:
        if args.name:
            switch(args.name)
            print(f"params.yaml now holds the {args.name!r} profile; run `dvc repro` (or `make repro`).")
        else:
            print(f"current profile: {current() or 'none (params.yaml was edited)'}; "
                  f"available: {', '.join(available())}")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
