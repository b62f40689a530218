"""#31 probe 8: every output is written atomically; a failed write names the file and keeps the old one;
the output folders are checked before any work."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
from nbutil import ROOT

from sivae.errors import OutputError
from sivae.runinfo import check_writable, write_json

# A child process whose files may grow to at most 2,000 bytes (RLIMIT_FSIZE; SIGXFSZ ignored, so a
# write past it fails with EFBIG): a disk that fills up in the middle of a write.
FULL_DISK = textwrap.dedent("""
    import os, resource, signal, sys
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sivae.plots import save_figure
    from sivae.runinfo import write_json
    path, kind = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
    try:
        if kind == "figure":
            fig, ax = plt.subplots(figsize=(6, 6))
            ax.imshow(__import__("numpy").random.default_rng(0).random((200, 200)))
            save_figure(fig, path)
        else:
            write_json({"x": list(range(2000))}, path)
    except Exception as e:
        print(f"{type(e).__name__}: {e}")
        sys.exit(3)
""")


@pytest.mark.parametrize("kind,name", [("figure", "samples.png"), ("json", "metrics.json")])
def test_a_full_disk_keeps_the_old_output_and_names_the_file(tmp_path, kind, name):
    path = tmp_path / "out" / name
    path.parent.mkdir()
    path.write_bytes(b"the good output of an earlier run")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    res = subprocess.run([sys.executable, "-c", FULL_DISK, str(path), kind], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 3, res.stdout + res.stderr
    assert res.stdout.startswith("OutputError") and str(path) in res.stdout, res.stdout
    assert path.read_bytes() == b"the good output of an earlier run"   # not a truncated file
    assert sorted(p.name for p in path.parent.iterdir()) == [name]      # no temporary file left


def test_writes_replace_the_file_whole_with_the_usual_mode(tmp_path):
    import matplotlib.pyplot as plt

    from sivae.plots import save_figure
    write_json({"a": 1}, tmp_path / "m.json")
    write_json({"a": 2}, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 2}
    fig = plt.figure()
    save_figure(fig, tmp_path / "f.png")
    plt.close(fig)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "m.json"]
    mask = os.umask(0)
    os.umask(mask)
    for name in ("f.png", "m.json"):   # as open() makes them (a temporary file is 0600)
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask


def test_check_writable_names_the_path_and_creates_nothing(tmp_path):
    check_writable(tmp_path / "a" / "b" / "fig.png", tmp_path / "new_folder")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(OutputError, match="blocker.*is a file"):
        check_writable(tmp_path / "blocker" / "figures")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_writable_refuses_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="ro.*not writable"):
            check_writable(ro / "figures")
    finally:
        ro.chmod(0o755)


def test_check_writable_refuses_a_full_disk_before_any_work(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 4096, 4096))
    with pytest.raises(OutputError, match=r"figures: the disk of .* is full \(4096 bytes free\)"):
        check_writable(tmp_path / "figures")
