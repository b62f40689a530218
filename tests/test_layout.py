"""The package layout, the pipeline's dependencies, packaging and lint: checked from the source."""
import ast
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from importgraph import PKG, ROOT, direct_imports, module_name, transitive_files
from nbutil import BIN, notebook_parameters, stage_notebook

SECTIONS = ("theory_discrete", "toy2d", "stability", "images", "ood", "translation", "findings", "report")
# Sections may use each other only along the pipeline's edges.
SECTION_EDGES = {"stability": {"toy2d"}, "ood": {"images"},
                 "findings": {"toy2d", "ood", "images"},  # findings: the paper's numbers
                 "report": {"findings"}}   # report: the ledger table read back (sivae.findings.table)
LOWER = {"data", "models", "metrics"}   # import only the top level (and their own section's lower files)
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
# Stages that run a sivae module instead of a notebook: {stage: (module file, its params.yaml defaults as
# {section: {key: value}})}; every other stage is `python -m sivae.stage <stage>` with notebooks/NN_<stage>.py.
def _sweep_grid_defaults():
    from sivae.toy2d.sweep import BASE_PARAMS, GRID_PARAMS
    return {"base": BASE_PARAMS, "sweep_grid": GRID_PARAMS}


MODULE_STAGES = {"sweep_grid": (PKG / "toy2d" / "sweep.py", _sweep_grid_defaults)}
NOTEBOOK_STAGES = [s for s in DVC["stages"] if s not in MODULE_STAGES]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def _section(name: str):
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in SECTIONS) else None


def _sources():
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def test_top_level_holds_only_core_modules_and_section_packages():
    top = {p.name for p in PKG.iterdir() if p.name != "__pycache__"}
    core = {"__init__.py", "checkpoints.py", "config.py", "errors.py", "losses.py", "params.py", "plots.py", "profiles.py",
            "progress.py", "runinfo.py", "runtime.py", "stack.py", "stage.py", "train.py", "engine.py", "lifecycle.py",
            "paper.py", "stats.py", "batches.py", "config.py"}
    assert top == core | set(SECTIONS), f"unexpected at the top of sivae/: {sorted(top - core - set(SECTIONS))}"
    for s in SECTIONS:
        assert (PKG / s / "__init__.py").is_file() and (PKG / s / "study.py").is_file(), s
        assert (PKG / s / "plots.py").is_file(), f"{s} has no plots.py"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layering(path):
    me = module_name(path)
    mine = _section(me)
    for dep in direct_imports(path):
        theirs = _section(dep)
        if theirs is None:
            continue  # the top level (core) may be imported by anyone
        if mine is None:
            pytest.fail(f"core module {me} imports the section module {dep}")
        if theirs != mine:
            assert theirs in SECTION_EDGES.get(mine, set()), f"{me} imports {dep}: not a pipeline edge"
        elif path.stem in LOWER:
            kind = dep.split(".")[-1]
            assert kind in LOWER | {"render", mine}, f"{me} ({path.stem}) imports {dep}: data/models/metrics " \
                                                     f"import only the top level and each other"


@pytest.mark.parametrize("nb", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")), ids=lambda p: p.name)
def test_notebooks_import_their_section_and_core_only(nb):
    stage = nb.stem[3:]
    allowed = {stage} | SECTION_EDGES.get(stage, set())
    for dep in direct_imports(nb):
        s = _section(dep)
        assert s is None or s in allowed, f"{nb.name} imports {dep}"


def _covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT)
    return any(rel == Path(d) or Path(d) in rel.parents for d in deps)


@pytest.mark.parametrize("stage", list(DVC["stages"]))
def test_stage_deps_cover_every_file_its_notebook_imports(stage):
    spec = DVC["stages"][stage]
    if stage in MODULE_STAGES:   # its module and everything it imports
        module = MODULE_STAGES[stage][0]
        assert spec["cmd"].startswith(f"python -m {module_name(module)} "), spec["cmd"]
        needed = transitive_files(module) | {module}
    else:
        nb = stage_notebook(stage)
        assert spec["cmd"] == f"python -m sivae.stage {stage}"
        needed = transitive_files(nb) | transitive_files(PKG / "stage.py") | {PKG / "stage.py", nb}
    missing = sorted(str(p.relative_to(ROOT)) for p in needed if not _covered(p, spec["deps"]))
    assert not missing, f"dvc.yaml stage {stage} lacks deps: {missing}"


def test_the_import_graph_sees_function_level_and_relative_imports():
    # a check that can fail: images.plots imports training inside a function
    deps = direct_imports(PKG / "images" / "plots.py")
    assert "sivae.images.training" in deps and "sivae.plots" in deps


@pytest.mark.parametrize("stage", list(MODULE_STAGES))
def test_module_stage_params_are_whole_sections_and_its_defaults_are_the_default_profile(stage):
    assert DVC["stages"][stage]["params"] == ["base", stage]
    defaults = MODULE_STAGES[stage][1]()
    default = yaml.safe_load((ROOT / "profiles" / "default.yaml").read_text())
    assert set(defaults["base"]) <= set(PARAMS["base"])
    assert set(PARAMS[stage]) == set(defaults[stage]), sorted(set(PARAMS[stage]) ^ set(defaults[stage]))
    assert default[stage] == defaults[stage], "the module's defaults != profiles/default.yaml"
    assert {k: default["base"][k] for k in defaults["base"]} == defaults["base"]


@pytest.mark.parametrize("stage", NOTEBOOK_STAGES)
def test_stage_params_are_whole_sections_and_match_the_notebook(stage):
    spec = DVC["stages"][stage]
    assert spec["params"] == ["base", stage]
    nb_params = set(notebook_parameters(stage_notebook(stage))) - {"interactive"}
    keys = (set(PARAMS[stage]) - {"executed_notebook"}) | set(PARAMS["base"])
    assert keys == nb_params, f"params.yaml keys != notebook parameters: {sorted(keys ^ nb_params)}"


@pytest.mark.parametrize("stage", NOTEBOOK_STAGES)
def test_papermill_reads_every_parameter_of_the_notebook(stage):
    """papermill's own parser (what `papermill --help-notebook` and its "unknown parameter" check use) reads every
    line of the parameters cell: a line it cannot parse (an "=" inside a string, say) makes `dvc repro` print
    "Unable to parse line" and "Passed unknown parameter" for a parameter that is there."""
    import nbformat
    from papermill.translators import PythonTranslator
    text = stage_notebook(stage).read_text()
    cell = re.search(r'^# %% tags=\["parameters"\]\n(.*?)(?=^# %%)', text, re.S | re.M).group(1)
    parsed = [p.name for p in PythonTranslator.inspect(nbformat.v4.new_code_cell(cell))]
    assert parsed == list(notebook_parameters(stage_notebook(stage)))


@pytest.mark.parametrize("stage", NOTEBOOK_STAGES)
def test_notebook_defaults_equal_the_default_profile(stage):
    # but for its outputs: a notebook run by hand writes under outputs/scratch/ (git-ignored), dvc repro where
    # params.yaml says (sivae.stage injects them)
    from sivae.stage import output_keys
    default = yaml.safe_load((ROOT / "profiles" / "default.yaml").read_text())
    nb = notebook_parameters(stage_notebook(stage))
    expected = {**default["base"], **default[stage]}
    for k in output_keys(stage, ROOT):
        if k in expected:
            assert expected[k].startswith("outputs/"), (k, expected[k])
            expected[k] = "outputs/scratch/" + expected[k].removeprefix("outputs/")
    differ = {k: (v, expected[k]) for k, v in nb.items() if k in expected and v != expected[k]}
    assert not differ, f"notebook default != profiles/default.yaml (notebook, profile): {differ}"


def test_third_party_imports_are_declared_dependencies():
    import tomllib
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    name = lambda d: re.split(r"[<>=\[ ]", d)[0].lower().replace("_", "-")
    declared = {name(d) for d in meta["project"]["dependencies"]}
    optional = {name(d) for d in meta["project"]["optional-dependencies"]["test"]}  # lpips: optional extra
    reqs = {name(ln) for ln in (ROOT / "requirements.in").read_text().splitlines()
            if ln.strip() and not ln.startswith(("#", "-"))}
    assert declared | optional == reqs, f"pyproject.toml and requirements.in disagree: {sorted((declared | optional) ^ reqs)}"
    dist_of = {"sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow", "pytorch_fid": "pytorch-fid",
               "IPython": "ipython", "ipywidgets": "ipywidgets", "psutil": "psutil"}
    extras = {name(d) for group in meta["project"]["optional-dependencies"].values() for d in group}
    stdlib = set(sys.stdlib_module_names)
    used = set()
    for f in _sources() + sorted((ROOT / "notebooks").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                used |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                used.add(node.module.split(".")[0])
    third = {u for u in used if u not in stdlib and u not in ("sivae", "__future__", "IPython")}  # IPython: jupyter's
    undeclared = sorted(u for u in third if dist_of.get(u, u).lower().replace("_", "-") not in declared | extras)
    assert not undeclared, f"imported but not in pyproject.toml dependencies: {undeclared}"


@pytest.mark.slow
def test_wheel_holds_every_module(tmp_path):
    import shutil
    src = tmp_path / "src"  # a copy: setuptools writes build/ next to the sources
    shutil.copytree(ROOT / "sivae", src / "sivae", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / f, src / f)
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                          str(tmp_path), str(src)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    wheel = next(tmp_path.glob("sivae-*.whl"))
    in_wheel = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("sivae/") and n.endswith(".py")}
    in_tree = {str(p.relative_to(ROOT)) for p in _sources()}
    assert in_wheel == in_tree, f"wheel differs from the source tree: {sorted(in_wheel ^ in_tree)}"


def test_code_is_clean_under_ruff():
    res = subprocess.run([str(BIN / "ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:]


@pytest.mark.slow
def test_dvc_understands_the_pipeline():
    res = subprocess.run([str(BIN / "dvc"), "dag", "--md"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    for stage in DVC["stages"]:
        assert stage in res.stdout


def test_the_readme_shows_the_committed_findings_table():
    from sivae.findings.table import sync_docs
    stale = sync_docs(ROOT / "README.md", ROOT / "docs" / "findings.md", ROOT / "outputs" / "findings" / "findings.md",
                      check=True)
    assert not stale, f"{stale}: differs from outputs/findings/findings.md: run `make readme-findings`"


def doc_section(text: str, heading: str) -> str:
    """A markdown text from `heading` (a whole line) to the next heading of the same or a higher level."""
    lines = text.splitlines()
    level = len(heading) - len(heading.lstrip("#"))
    assert heading in lines, f"no heading {heading!r}"
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith("#") and len(lines[i]) - len(lines[i].lstrip("#")) <= level), len(lines))
    return "\n".join(lines[start:end])


NOT_REPRODUCED = "## Every finding that does not hold, with the longer budgets measured"


def test_the_docs_say_for_every_finding_that_does_not_hold_what_a_longer_budget_gave():
    """Issue 14: every finding that does not hold in the committed run is named (by id) in docs/findings.md's table
    of longer budgets (the README links it), in a row that says what was measured, at longer budgets and at other
    schedules of the default's length; a newly failing finding makes this fail until it is."""
    ledger = json.loads((ROOT / "outputs" / "findings.json").read_text())
    section = doc_section((ROOT / "docs" / "findings.md").read_text(), NOT_REPRODUCED)
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4 and all(cells), (f"a row needs the findings, the default's verdict, the longer budget "
                                                f"and the other schedules (issue #32; '-' where none applies): {row}")
        for fid in re.findall(r"`([^`]+)`", cells[0]):
            named[fid] = cells
    not_holding = {fid for fid, code in ledger["findings"].items() if code != 1}
    assert not_holding, "the committed run has no finding that does not hold: this test has nothing to check"
    missing = sorted(not_holding - set(named))
    assert not missing, f"findings that do not hold but docs/findings.md's '{NOT_REPRODUCED}' table does not name: {missing}"
    stale = sorted(set(named) - set(ledger["findings"]))
    assert not stale, f"docs/findings.md's table names findings the ledger does not have: {stale}"
    holding_named = sorted(fid for fid in named if ledger["findings"][fid] == 1)
    assert not holding_named, f"docs/findings.md's table names findings that hold in the committed run: {holding_named}"


def test_every_uncached_output_is_committed_to_git():
    """An output with `cache: false` lives only in git: ignored by git, a clean clone lacks it and `dvc status`
    calls the stage changed (outputs/toy2d/run_info.json was ignored this way)."""
    res = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip("not a git checkout")
    uncached = []
    for name, stage in DVC["stages"].items():
        for kind in ("outs", "metrics", "plots"):
            for out in stage.get(kind) or []:
                if isinstance(out, dict):
                    (path, opts), = out.items()
                    if (opts or {}).get("cache") is False:
                        uncached.append((name, re.sub(r"\$\{(\w+)\.(\w+)\}",
                                                      lambda m: str(PARAMS[m.group(1)][m.group(2)]), path)))
    assert uncached, "dvc.yaml has no `cache: false` output: this test has nothing to check"
    missing = [(name, path) for name, path in uncached
               if not subprocess.run(["git", "ls-files", path], cwd=ROOT, capture_output=True, text=True).stdout.strip()]
    assert not missing, f"`cache: false` outputs not committed to git (check the folder's .gitignore): {missing}"


@pytest.mark.parametrize("script", sorted(p.relative_to(ROOT).as_posix() for folder in ("experiments", "benchmarks")
                                          for p in (ROOT / folder).glob("*.py")))
def test_every_script_imports_names_that_exist(script):
    """The scripts of experiments/ and benchmarks/ import sivae lazily (inside functions) too; a refactor that
    moves a name breaks them only when someone runs them. Every `from sivae... import name` must resolve."""
    import ast
    import importlib
    missing = []
    for node in ast.walk(ast.parse((ROOT / script).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sivae":
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name) and importlib.util.find_spec(f"{node.module}.{alias.name}") is None:
                    missing.append(f"{node.module}.{alias.name} (line {node.lineno})")
    assert not missing, f"{script} imports names that do not exist: {missing}"


def test_tests_mirror_the_package_layout():
    """tests/<section>/ holds the tests of sivae/<section>/ (issue 30); the top of tests/ holds the core's tests and
    the cross-cutting ones (pipeline, notebooks, fuzz, layout) and the shared helpers."""
    tests = ROOT / "tests"
    for section in SECTIONS:
        assert sorted((tests / section).glob("test_*.py")), f"tests/{section}/ has no tests of sivae/{section}/"
    strays = [p.name for p in tests.glob("test_*.py") if any(p.stem.startswith(f"test_{s}") for s in SECTIONS)]
    assert not strays, f"section tests at the top of tests/ (move them to tests/<section>/): {strays}"


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    """The README's "own data" example, as a user pastes it (with 3 iterations instead of thousands, and its
    checkpoint folder under tmp): a renamed argument or import makes this fail, not the user's first try."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "README.md has no python example"
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        code = re.sub(r"n_iter=[\d_]+", "n_iter=3", code)
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    assert list(tmp_path.rglob("last.pt")), "the example wrote no checkpoint"


@pytest.mark.parametrize("stage", [s for s in NOTEBOOK_STAGES if (ROOT / "sivae" / s / "config.py").exists()])
def test_stage_config_defaults_equal_the_notebooks(stage):
    # "Defaults are the notebook's": who builds a stage's config in Python gets the default profile's settings
    import dataclasses
    import importlib

    from sivae.config import StageConfig
    mod = importlib.import_module(f"sivae.{stage}.config")
    cls = next(c for c in vars(mod).values() if isinstance(c, type) and issubclass(c, StageConfig)
               and c is not StageConfig and c.__module__ == mod.__name__)
    nb = notebook_parameters(stage_notebook(stage))
    names = {f.name for f in dataclasses.fields(cls) if f.init} & set(nb)
    ours, theirs = cls(), cls.from_params({k: nb[k] for k in names})
    differ = {k: (getattr(theirs, k), getattr(ours, k)) for k in names
              if getattr(ours, k) != getattr(theirs, k) and not k.endswith(("_dir", "_path", "_root", "notebook"))}
    assert not differ, f"{cls.__name__} default != notebook default (notebook, config): {differ}"
