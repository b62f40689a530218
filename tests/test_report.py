"""The report stage at a tiny profile, opened in a real (headless) browser."""
import json
import shutil
import subprocess

import pytest
import yaml
from nbutil import ROOT, load_yaml, run_notebook, stage_notebook
from test_notebooks import TINY, redirect_outputs

from sivae import DataError
from sivae.report.study import build_report, check_site

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium here (Debian: apt-get install chromium; "
                                                           ".ci/run installs it)")


FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars")


def _browser(*args, timeout=120):
    res = subprocess.run([BROWSER, *FLAGS, *args], capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


@pytest.fixture(scope="module")
def browser_starts():
    """Skip (with the reason) where Chromium is installed but cannot start at all in this environment."""
    try:
        res = subprocess.run([BROWSER, *FLAGS, "--dump-dom", "about:blank"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"{BROWSER} does not start here: {e}")
    if res.returncode != 0 or "<html" not in res.stdout:
        pytest.skip(f"{BROWSER} does not start here: {res.stderr.strip().splitlines()[-1:] or res.returncode}")


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory):
    """theory_discrete and toy2d at their tiny profiles, the findings over them, then the report stage."""
    tmp = tmp_path_factory.mktemp("report")
    params = load_yaml("params.yaml")
    for stage in ("theory_discrete", "toy2d"):
        paths = redirect_outputs(params[stage], tmp)
        res = run_notebook(stage_notebook(stage), paths["executed_notebook"],
                           {**TINY[stage], "interactive": False, "device": "cpu",
                            **{k: v for k, v in paths.items() if k != "executed_notebook"}}, inline_figures=True)
        assert res.returncode == 0, res.stderr[-3000:]
        params[stage] = {**params[stage], **{k: str(v) for k, v in paths.items()}}
    f = redirect_outputs(params["findings"], tmp)
    metrics = {"theory_metrics": params["theory_discrete"]["metrics_path"], "toy2d_metrics": params["toy2d"]["metrics_path"],
               "toy2d_run_info": params["toy2d"]["run_info_path"], "toy2d_budget": params["toy2d"]["budget_path"]}
    for k in ("stability_metrics", "stability_run_info", "images_metrics", "images_run_info", "ood_metrics",
              "ood_run_info", "translation_metrics"):
        metrics[k] = str(tmp / "absent" / f"{k}.json")   # not run at this profile
    res = run_notebook(stage_notebook("findings"), f["executed_notebook"],
                       {**metrics, **{k: v for k, v in f.items() if k != "executed_notebook"}})
    assert res.returncode == 0, res.stderr[-3000:]
    params["findings"] = {**params["findings"], **{k: str(v) for k, v in f.items()}}
    (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    r = redirect_outputs(params["report"], tmp)
    res = run_notebook(stage_notebook("report"), r["executed_notebook"],
                       {"params_file": str(tmp / "params.yaml"), "stages": "theory_discrete,toy2d,findings",
                        "findings_table": params["findings"]["table_path"], "data_dvc": str(ROOT / "data.dvc"),
                        **{k: v for k, v in r.items() if k != "executed_notebook"}})
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(r["run_info_path"].read_text())["params"]["stages"] == "theory_discrete,toy2d,findings"
    return r["out_dir"], json.loads(f["metrics_path"].read_text()), params


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
        dom = _browser("--dump-dom", page.as_uri())
        assert "<body" in dom and len(dom) > 2000, page.name
        if page.name == "index.html":
            findings_table = dom.split('id="findings"', 1)[1].split("</table>", 1)[0]
            assert findings_table.count("<tr") == n_findings + 1, "the index does not show the findings table"
        else:
            assert f'data-stage="{page.stem}"' in dom
    shot = tmp_path / "index.png"
    _browser("--window-size=1400,1000", f"--screenshot={shot}", (site / "index.html").as_uri())
    import numpy as np
    img = Image.open(shot).convert("L")
    dark = float((np.asarray(img) < 128).mean())
    assert img.size == (1400, 1000) and 0.01 < dark < 0.5, f"the screenshot looks blank ({dark:.3f} dark)"
