"""Starting, failing and tearing down labs leaves the machine as it was."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moorage.lab import Lab, LabError, _sys, build_busybox, load_into
from tests.conftest import needs_root, unique_name


@pytest.fixture
def lab() -> Lab:
    needs_root()
    return Lab(unique_name("lc"))


def test_down_removes_processes_namespaces_mounts_and_files(lab: Lab) -> None:
    lab.up(nodes=2, owner_pid=os.getpid())
    try:
        client = lab.client(1)
        load_into(build_busybox(), [client])
        # a running container means overlay and shm mounts, a shim and a netns
        c = client.call(
            "POST", "/containers/create", {"Image": "moorage-lab/busybox", "Cmd": ["sleep", "300"]}
        )
        client.call("POST", f"/containers/{c['Id']}/start")
        assert _sys.mounts_under(lab.dir), "a running container should have mounts"
        assert _sys.find_processes([f"{lab.dir}/"], [])
    finally:
        assert lab.down() is True
    assert lab.leftovers() == []
    assert not [ns for ns in _sys.netns_list() if ns.startswith(f"mlab_{lab.name}_")]
    assert _sys.mounts_under(lab.dir) == []
    assert not lab.dir.exists()
    assert lab.down() is False  # safe to run twice


def test_a_name_in_use_is_refused(lab: Lab) -> None:
    lab.up(nodes=1, owner_pid=os.getpid())
    try:
        with pytest.raises(LabError, match="already exists"):
            Lab(lab.name).up(nodes=1)
        assert lab.node_running(1)  # the refusal did not touch the running lab
    finally:
        lab.down()


def test_dockerd_failing_to_start_shows_its_log_and_cleans_up(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = Path.write_text

    def bad_config(self: Path, data: str, *a: object, **k: object) -> int:
        if self.name == "daemon.json":
            data = '{"no-such-option": true}'
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_text", bad_config)
    with pytest.raises(LabError) as err:
        lab.up(nodes=1, owner_pid=os.getpid())
    msg = str(err.value)
    assert "dockerd for node 1 exited" in msg and "no-such-option" in msg
    assert lab.leftovers() == []


def test_a_killed_run_is_cleaned_up_by_stale_cleanup(lab: Lab) -> None:
    """Simulate an interrupted test run: its owner pid is dead, its lab remains."""
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    lab.up(nodes=1, owner_pid=dead.pid)
    from moorage.lab import cleanup_stale

    assert lab.name in cleanup_stale()
    assert lab.leftovers() == []
