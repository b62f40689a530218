"""Issue 33: in JupyterLab the notebooks open as notebooks (not as text), and saving one changes nothing."""
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest
from browser import BROWSER, FLAGS, needs_browser
from nbutil import BIN, ROOT

TOKEN = "sivae-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """`jupyter lab` over a copy of notebooks/ with the settings `make env` installs (jupyter/overrides.json),
    and nothing from the user's own Jupyter configuration."""
    tmp = tmp_path_factory.mktemp("lab")
    work = tmp / "work"
    shutil.copytree(ROOT / "notebooks", work, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
    shutil.copy2(ROOT / "jupytext.toml", work / "jupytext.toml")
    port = _free_port()
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_DATA_DIR": str(tmp / "data")}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    proc = subprocess.Popen([str(BIN / "jupyter"), "lab", "--no-browser", "--allow-root", f"--port={port}",
                             f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={work}",
                             f"--LabApp.app_settings_dir={ROOT / 'jupyter'}",
                             f"--LabApp.user_settings_dir={tmp / 'user-settings'}",
                             f"--LabApp.workspaces_dir={tmp / 'workspaces'}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "lab.log", "w"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5)
            break
        except OSError:
            assert proc.poll() is None and time.time() < deadline, (tmp / "lab.log").read_text()[-3000:]
            time.sleep(0.5)
    yield url, work
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_make_env_installs_the_lab_settings():
    settings = json.loads((ROOT / "jupyter" / "overrides.json").read_text())
    assert settings["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["python"] == "Jupytext Notebook"
    make = (ROOT / "Makefile").read_text()
    assert "LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json" in make
    assert "env: $(STAMP) $(LAB_SETTINGS)" in make


def test_saving_a_notebook_from_jupyter_leaves_its_file_unchanged(lab):
    """Jupyter adds the kernel's language_info when a notebook opens (the tab shows it modified until the first
    save or autosave); the save goes through Jupytext and must write the same bytes."""
    url, work = lab
    for nb in sorted(work.glob("0*_*.py")):
        before = nb.read_bytes()
        api = f"{url}/api/contents/{nb.name}?token={TOKEN}"
        model = json.load(urllib.request.urlopen(f"{api}&type=notebook&content=1", timeout=60))["content"]
        model["metadata"]["language_info"] = {"name": "python", "version": "3.11.0", "file_extension": ".py"}
        req = urllib.request.Request(api, method="PUT", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"type": "notebook", "format": "json", "content": model}).encode())
        assert urllib.request.urlopen(req, timeout=60).status == 200
        assert nb.read_bytes() == before, f"saving {nb.name} from Jupyter rewrote it"


@needs_browser
def test_a_notebook_opens_as_a_notebook_in_jupyterlab(lab, browser_starts):
    url, work = lab
    page = f"{url}/lab/workspaces/test/tree/02_toy2d.py?reset&token={TOKEN}"
    res = subprocess.run([BROWSER, *FLAGS, "--virtual-time-budget=60000", "--window-size=1400,900", "--dump-dom", page],
                         capture_output=True, text=True, timeout=180)
    dom = res.stdout
    assert "jp-LabShell" in dom or "jp-MainAreaWidget" in dom, f"JupyterLab did not load: {res.stderr[-2000:]}"
    tabs = {label: wid for wid, label in re.findall(r'<li[^>]*data-id="([^"]+)"[^>]*>.*?lm-TabBar-tabLabel[^>]*>([^<]+)<',
                                                     dom)}
    assert "02_toy2d.py" in tabs, f"no tab for 02_toy2d.py: {sorted(tabs)}"
    widget = re.search(r'<div[^>]*id="%s"[^>]*>' % re.escape(tabs["02_toy2d.py"]), dom).group(0)
    assert "jp-NotebookPanel" in widget, f"02_toy2d.py opened as {widget}, not as a notebook"
