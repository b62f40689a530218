"""The sivae modules a file imports, directly and transitively (read from the source, nothing executed)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "sivae"


def module_file(name: str) -> Path | None:
    """sivae.x.y -> sivae/x/y.py or sivae/x/y/__init__.py (None if it is not a sivae module)."""
    parts = name.split(".")
    if parts[0] != "sivae":
        return None
    base = ROOT.joinpath(*parts)
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def module_name(path: Path) -> str:
    rel = path.resolve().relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def direct_imports(path: Path) -> set[str]:
    """Names of the sivae modules `path` imports (every import statement, at any depth)."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    here = module_name(path) if path.resolve().is_relative_to(PKG) else ""
    pkg = here if is_pkg else here.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for n in names:
            if module_file(n) is not None:
                out.add(n)
    # importing a.b.c runs a/__init__, a/b/__init__ too
    for n in list(out):
        parts = n.split(".")
        for i in range(1, len(parts)):
            out.add(".".join(parts[:i]))
    return out


def transitive_files(path: Path) -> set[Path]:
    """Every sivae source file that importing/running `path` executes."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        f = todo.pop()
        for name in direct_imports(f):
            mf = module_file(name)
            if mf not in seen:
                seen.add(mf)
                todo.append(mf)
    return seen
