"""Preflight: refuse early, naming the fix, when the machine can't run a lab."""

from __future__ import annotations

import pytest

from moorage.lab import Lab, LabError, bringup


def test_preflight_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bringup.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        Lab.preflight()


def test_preflight_names_the_missing_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bringup.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        bringup.shutil, "which", lambda b: None if b in {"dockerd", "docker-registry"} else "/x"
    )
    with pytest.raises(LabError) as err:
        Lab.preflight(registry=True)
    assert "apt-get install -y docker-registry docker.io" in str(err.value)
