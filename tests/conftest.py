import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def root():
    return ROOT


def venv_bin() -> Path:
    """Folder of the running interpreter's scripts (jupytext, papermill, dvc)."""
    return Path(sys.executable).parent
