"""Parameter profiles: `python -m sivae.profiles NAME` copies profiles/NAME.yaml to params.yaml.

Profiles share every key and differ only in values (default: 2-core CPU; paper: the paper's
settings, for a GPU). Run with no name to print which profile params.yaml matches.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

from .errors import ConfigError


def keys(tree: dict, prefix: str = "") -> set[str]:
    """Dotted key paths of a nested dict ('toy2d.n_iter', ...)."""
    out = set()
    for k, v in tree.items():
        out |= keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
    return out


def available(root: Path = Path(".")) -> dict[str, Path]:
    return {p.stem: p for p in sorted((root / "profiles").glob("*.yaml"))}


def current(root: Path = Path(".")) -> str | None:
    """Name of the profile whose values params.yaml holds, or None if it matches none."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    for name, path in available(root).items():
        if yaml.safe_load(path.read_text()) == params:
            return name
    return None


def switch(name: str, root: Path = Path(".")) -> Path:
    """Copy profiles/<name>.yaml over params.yaml after checking it has the same keys."""
    profiles = available(root)
    if name not in profiles:
        raise ConfigError(f"unknown profile {name!r}; choose one of: {', '.join(profiles)}")
    new = yaml.safe_load(profiles[name].read_text())
    old_path = root / "params.yaml"
    if old_path.exists():
        old = yaml.safe_load(old_path.read_text())
        if keys(old) != keys(new):
            raise ConfigError(f"profile {name} and params.yaml differ in keys: {sorted(keys(old) ^ keys(new))}")
    shutil.copyfile(profiles[name], old_path)
    return old_path


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
