"""The report stage at a tiny profile, opened in a real (headless) browser."""
import html
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from browser import needs_browser, run_browser
from nbutil import BIN, ROOT, load_yaml
from test_notebooks import TINY, redirect_outputs

from sivae import DataError
from sivae.report.study import build_report, check_site

REPORT_STAGES = ("theory_discrete", "toy2d", "findings")
NOT_RUN = ("stability_metrics", "stability_run_info", "images_metrics", "images_run_info", "ood_metrics",
           "ood_run_info", "translation_metrics")


def repro_env() -> dict:
    """The environment `make repro` gives a stage: the venv on PATH and the Makefile's MPLBACKEND=Agg (which a
    papermill kernel inherits), nothing friendlier."""
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(Path.home()), "MPLBACKEND": "Agg"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory):
    """theory_discrete and toy2d at their tiny profiles, the findings over them, then the report stage: each
    through `python -m sivae.stage` (what dvc.yaml runs) in the environment `make repro` sets."""
    tmp = tmp_path_factory.mktemp("report")
    params = load_yaml("params.yaml")
    for stage in (*REPORT_STAGES, "report"):
        params[stage] = {**params[stage], **{k: str(v) for k, v in redirect_outputs(params[stage], tmp).items()}}
    for stage in ("theory_discrete", "toy2d"):
        params[stage].update(TINY[stage], device="cpu")
    params["findings"]["profile"] = params["report"]["profile"] = "tiny"   # named on the pages
    th, toy = params["theory_discrete"], params["toy2d"]
    params["findings"].update(theory_metrics=th["metrics_path"], toy2d_metrics=toy["metrics_path"],
                              toy2d_run_info=toy["run_info_path"], toy2d_budget=toy["budget_path"],
                              **{k: str(tmp / "absent" / f"{k}.json") for k in NOT_RUN})   # not run at this profile
    params["report"].update(params_file=str(tmp / "params.yaml"), stages=",".join(REPORT_STAGES),
                            findings_table=params["findings"]["table_path"], data_dvc=str(ROOT / "data.dvc"))
    (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in (*REPORT_STAGES, "report"):
        res = subprocess.run([str(BIN / "python"), "-m", "sivae.stage", stage, "--params", str(tmp / "params.yaml")],
                             cwd=ROOT, env=repro_env(), capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, f"{stage}: {res.stderr[-3000:]}"
    site = Path(params["report"]["out_dir"])
    assert json.loads(Path(params["report"]["run_info_path"]).read_text())["params"]["stages"] == ",".join(REPORT_STAGES)
    return site, json.loads(Path(params["findings"]["metrics_path"]).read_text()), params


def test_report_pages_links_and_stamps(tiny_site):
    site, ledger, params = tiny_site
    pages = sorted(p.name for p in site.glob("*.html"))
    assert pages == ["findings.html", "index.html", "theory_discrete.html", "toy2d.html"]
    assert check_site(site) == []
    toy = (site / "toy2d.html").read_text()
    n_fig = toy.count('class="stamp" id="fig-')
    assert n_fig >= 2 and 'href="toy2d.html#cell-' in toy and "stage <b>toy2d</b>" in toy
    index = (site / "index.html").read_text()
    assert index.count('href="toy2d.html#fig-') >= 1          # thumbnails link to the stamped figures
    assert "Not run" not in index
    # a broken link is found
    (site / "index.html").write_text(index.replace('href="toy2d.html"', 'href="toy2d_missing.html"', 1))
    assert any("toy2d_missing.html" in p for p in check_site(site))
    (site / "index.html").write_text(index)


def test_every_stage_page_shows_every_figure_its_stage_saved(tiny_site):
    """Issue 33: under `make repro`'s MPLBACKEND=Agg the pages had no figure at all."""
    site, _, params = tiny_site
    for stage in REPORT_STAGES:
        saved = sorted(Path(params[stage]["fig_dir"]).glob("*.png"))
        page = (site / f"{stage}.html").read_text()
        n_img = len(re.findall(r"<img\b", page))
        assert saved, f"{stage} saved no figure to check against"
        assert n_img >= len(saved), f"{stage}.html shows {n_img} figures, the stage saved {len(saved)}: {saved}"


def test_stage_pages_are_readable(tiny_site):
    """Code folded, only the parameters the stage ran with, no run-record dump."""
    site, _, params = tiny_site
    def text(page):   # what the page says, without the markup (the code is highlighted token by token)
        return html.unescape(re.sub(r"<[^>]+>", "", page))
    toy = text((site / "toy2d.html").read_text())
    default = re.search(r"^n_iter = \d+", (ROOT / "notebooks" / "02_toy2d.py").read_text(), re.M).group(0)
    assert default != "n_iter = 8"
    assert "n_iter = 8" in toy and default not in toy, "the notebook's default parameters cell is shown"
    for stage in REPORT_STAGES:
        page = (site / f"{stage}.html").read_text()
        assert "'packages'" not in text(page), f"{stage}.html echoes the run record"
        assert not re.search(r"\d+/\d+ \[\d\d:\d\d", text(page)), f"{stage}.html shows progress bars"
        n_code = len(re.findall(r'<div[^>]*class="jp-Cell jp-CodeCell', page))
        assert n_code and page.count('<details class="code">') == n_code, f"{stage}.html: code cells not folded"


def test_the_index_opens_with_a_summary_per_section_and_the_failures_first(tiny_site):
    site, ledger, _ = tiny_site
    index = (site / "index.html").read_text()
    assert "**" not in index, "literal markdown in the index"
    summary = index.split('id="sections"', 1)[1].split("</table>", 1)[0]
    for word in ("holds", "inconclusive", "fails", "not run"):
        assert f">{word}<" in summary
    assert ">6.1<" in summary and ">4.1/9.6<" in summary
    rows = index.split('id="findings"', 1)[1].split("</table>", 1)[0].split("<tr")[2:]
    verdicts = [re.search(r'class="(holds|fails|inconclusive|not-run)"', r).group(1) for r in rows]
    rank = {"fails": 0, "inconclusive": 1, "not-run": 2, "holds": 3}
    assert verdicts == sorted(verdicts, key=rank.get) and len(verdicts) == ledger["n_findings"]
    assert index.index('id="sections"') < index.index('id="findings"') < index.index('id="provenance"')


def test_pages_follow_the_paper_order(tmp_path):
    """6.4 (translation) before 6.5 (ood), whatever order the stages are listed in."""
    import nbformat
    params = {}
    for st in ("ood", "translation", "findings"):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {st}")])
        nbformat.write(nb, tmp_path / f"{st}.ipynb")
        params[st] = {"executed_notebook": str(tmp_path / f"{st}.ipynb"), "run_info_path": str(tmp_path / "none.json")}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "f.md").write_text("**0 of 0 findings hold.**\n\n| finding | section | verdict |\n|---|---|---|\n")
    build_report(tmp_path / "site", params_file=tmp_path / "params.yaml", stages="ood,translation,findings",
                 findings_table=tmp_path / "f.md")
    index = (tmp_path / "site" / "index.html").read_text()
    assert index.index('href="translation.html"') < index.index('href="ood.html"')


def test_report_needs_the_findings_table(tmp_path):
    with pytest.raises(DataError, match="findings table"):
        build_report(tmp_path / "site", findings_table=tmp_path / "nope.md", stages="findings")
    assert not (tmp_path / "site").exists()


@needs_browser
def test_every_page_opens_in_a_browser_and_the_index_shows_the_findings(tiny_site, tmp_path, browser_starts):
    from PIL import Image
    site, ledger, _ = tiny_site
    n_findings = ledger["n_findings"]
    for page in sorted(site.glob("*.html")):
        dom = run_browser("--dump-dom", page.as_uri())
        assert "<body" in dom and len(dom) > 2000, page.name
        if page.name == "index.html":
            findings_table = dom.split('id="findings"', 1)[1].split("</table>", 1)[0]
            assert findings_table.count("<tr") == n_findings + 1, "the index does not show the findings table"
        else:
            assert f'data-stage="{page.stem}"' in dom
    shot = tmp_path / "index.png"
    run_browser("--window-size=1400,1000", f"--screenshot={shot}", (site / "index.html").as_uri())
    import numpy as np
    img = Image.open(shot).convert("L")
    dark = float((np.asarray(img) < 128).mean())
    assert img.size == (1400, 1000) and 0.01 < dark < 0.5, f"the screenshot looks blank ({dark:.3f} dark)"
