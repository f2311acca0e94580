"""A lab's state and node control, without starting one."""

from __future__ import annotations

from pathlib import Path

import pytest

from moorage.lab import Lab, LabError


def test_commands_on_a_lab_that_is_not_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_LAB_ROOT", str(tmp_path))
    lab = Lab("nothere")
    assert lab.status().exists is False
    with pytest.raises(LabError, match="moorage lab up --name nothere"):
        lab.stop_node(1)


def test_node_numbers_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_LAB_ROOT", str(tmp_path))
    lab = Lab("two")
    lab.dir.mkdir()
    lab._save({"name": "two", "nodes": 2})
    with pytest.raises(LabError, match=r"nodes 1\.\.2; there is no node 3"):
        lab.cut_node(3)


def test_node_count_bounds() -> None:
    with pytest.raises(LabError, match="between 1 and 9"):
        Lab("b").up(nodes=0)
