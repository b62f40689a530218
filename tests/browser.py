"""Headless Chromium for the report's and JupyterLab's browser tests (installed by `make browser`; skipped without)."""
import shutil
import subprocess

import pytest

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium here (Debian: apt-get install chromium; "
                                                           ".ci/run installs it)")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars")


def run_browser(*args, timeout=120) -> str:
    """Chromium's stdout for these arguments (e.g. --dump-dom URL); the test fails on a non-zero exit."""
    res = subprocess.run([BROWSER, *FLAGS, *args], capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def browser_start_failure() -> str | None:
    """Why Chromium, though installed, cannot start at all in this environment (None: it starts)."""
    try:
        res = subprocess.run([BROWSER, *FLAGS, "--dump-dom", "about:blank"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{BROWSER} does not start here: {e}"
    if res.returncode != 0 or "<html" not in res.stdout:
        return f"{BROWSER} does not start here: {res.stderr.strip().splitlines()[-1:] or res.returncode}"
    return None
