from __future__ import annotations

from pathlib import Path

import pytest

from moorage.lab import Lab, LabError
from moorage.lab import lab as lab_mod


@pytest.mark.parametrize("name", ["", "UPPER", "-lead", "a" * 21, "sp ace", "dot.ted", "x_y"])
def test_invalid_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(LabError, match="invalid lab name"):
        Lab(name)


def test_names_map_to_short_distinct_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_LAB_ROOT", str(tmp_path))
    a, ab = Lab("a"), Lab("ab")
    assert a.netns(1) == "mlab_a_n1" and a.hub == "mlab_a_hub"
    # one lab's markers must never match another lab's processes
    assert not any(m in f"{ab.dir}/n1/docker.sock mlab_ab_n1" for m in a._markers())
    assert len(str(Lab("z" * 20).socket_path(9))) < 108  # sun_path limit
    assert a.docker_host(2) == f"unix://{tmp_path}/a/n2/docker.sock"


def test_preflight_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab_mod.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        Lab.preflight()


def test_preflight_names_the_missing_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab_mod.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        lab_mod.shutil, "which", lambda b: None if b in {"dockerd", "docker-registry"} else "/x"
    )
    with pytest.raises(LabError) as err:
        Lab.preflight(registry=True)
    assert "apt-get install -y docker-registry docker.io" in str(err.value)


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
