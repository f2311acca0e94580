from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from moorage.lab import _sys


def test_find_processes_follows_markers_and_descendants(tmp_path: Path) -> None:
    marker = str(tmp_path / "marker-dir") + "/"
    # parent names the marker; its child does not, but descends from it
    code = "import subprocess,sys,time; subprocess.Popen(['sleep','30']); time.sleep(30)"
    parent = subprocess.Popen([sys.executable, "-c", code, marker])
    try:
        for _ in range(50):
            found = _sys.find_processes([marker], [])
            if len(found) >= 2:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        assert parent.pid in found
        assert len(found) == 2
        _sys.kill(found)
        assert not any(_sys.pid_alive(p) for p in found)
    finally:
        parent.kill()
        parent.wait()


def test_find_processes_never_returns_itself() -> None:
    import os

    assert os.getpid() not in _sys.find_processes([sys.executable], [])


def test_mounts_under_is_exact_about_prefixes(tmp_path: Path) -> None:
    # nothing is mounted below a fresh temporary directory
    assert _sys.mounts_under(tmp_path) == []
    proc = _sys.mounts_under(Path("/proc"))
    assert "/proc" in proc
    assert all(p == "/proc" or p.startswith("/proc/") for p in proc)
    # deepest first, so children are unmounted before their parents
    assert [p.count("/") for p in proc] == sorted((p.count("/") for p in proc), reverse=True)


def test_run_reports_the_failing_command() -> None:
    import pytest

    with pytest.raises(_sys.SysError, match=r"`false` failed \(exit 1\)"):
        _sys.run(["false"])


def test_read_pid_tolerates_garbage(tmp_path: Path) -> None:
    (tmp_path / "p").write_text("not a pid")
    assert _sys.read_pid(tmp_path / "p") is None
    assert _sys.read_pid(tmp_path / "missing") is None
