"""Lab naming: every resource of a lab derives from its name, and names never collide."""

from __future__ import annotations

from pathlib import Path

import pytest

from moorage.lab import Lab, LabError
from moorage.lab.layout import LabLayout


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


def test_the_layout_alone_names_the_same_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_LAB_ROOT", str(tmp_path))
    layout, lab = LabLayout("x"), Lab("x")
    assert (layout.netns(3), layout.hub, layout.ip(3)) == (lab.netns(3), lab.hub, "10.213.0.3")
    assert layout.socket_path(2) == lab.socket_path(2) == tmp_path / "x" / "n2" / "docker.sock"
