"""``moorage map``: the table per workload, the exposure rows, the exports, the team
filter, and a map without a vulnerability database (engine answers are synthetic)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import moorage.cli.map as cli_map
from moorage.cli.main import main
from moorage.images.interface import ImageError
from moorage.images.scanner import Report
from tests.unit.console.test_map import INDEXER, NGINX, PAY, reports, snapshot


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """The engine's state is the synthetic snapshot; scans come from the fixture reports.
    Returns what the scan was asked for."""
    asked: dict[str, Any] = {}
    monkeypatch.setenv("MOORAGE_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(cli_map, "_engine", lambda args: object())
    monkeypatch.setattr(cli_map, "read_snapshot", lambda e: snapshot())

    def scan(e: object, data: Path, ids: list[str]) -> dict[str, Report]:
        asked["ids"], asked["data"] = set(ids), data
        return {i: r for i, r in reports().items() if i in ids}

    monkeypatch.setattr(cli_map, "scan_reports", scan)
    return asked


def test_the_table_has_one_row_per_workload(
    engine: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["map"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["TEAM", "KIND", "NAME", "IMAGE", "REGISTRY", "VULNERABLE", "PACKAGES",
                                           "PORTS", "NODES"]  # fmt: skip
    row = next(line for line in out.splitlines() if "pay-api" in line)
    assert "payments" in row and "127.0.0.1:5000" in row and "2 (critical)" in row and "18080->80/tcp" in row
    assert "mgr-1, wkr-2" in row
    assert len(out.splitlines()) == 1 + 5
    assert engine["ids"] == {PAY, NGINX, INDEXER}


def test_the_package_question_answers_with_exposure_rows(
    engine: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["map", "--package", "requests@2.19.0"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 2 and "pay-api" in out and "PYSEC-1, PYSEC-2" in out and "18080" in out
    assert main(["map", "--package", "requests@9.9"]) == 0
    assert "no running workload holds it" in capsys.readouterr().out
    assert main(["map", "--package", "pkg:pypi/requests@2.19.0", "--format", "json"]) == 0
    assert [e["workload_label"] for e in json.loads(capsys.readouterr().out)["exposures"]] == ["pay-api"]
    assert main(["map", "--package", "@1.0"]) == 2
    assert "needs a package name" in capsys.readouterr().err


def test_a_team_map_and_the_exports(
    engine: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["map", "--team", "payments", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {n["team"] for n in doc["nodes"]} <= {"", "payments"} and engine["ids"] == {PAY, NGINX}
    assert main(["map", "--format", "dot"]) == 0
    assert capsys.readouterr().out.startswith('digraph "supply chain" {')
    out = tmp_path / "bom.json"
    assert main(["map", "--team", "search", "--format", "cyclonedx", "-o", str(out)]) == 0
    bom = json.loads(out.read_text())
    assert bom["specVersion"] == "1.5" and bom["dependencies"][0]["ref"] == "deployment:search"
    assert str(out) in capsys.readouterr().err
    assert main(["map", "--team", "nobody"]) == 0
    assert "no workloads of team nobody" in capsys.readouterr().out


def test_without_a_vulnerability_database_the_map_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_map, "_engine", lambda args: object())
    monkeypatch.setattr(cli_map, "read_snapshot", lambda e: snapshot())
    assert main(["map", "--data-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "no vulnerability database" in captured.err and "moorage db update" in captured.err
    row = next(line for line in captured.out.splitlines() if "pay-api" in line)
    assert " ? " in row  # its packages are unknown, not "none vulnerable"


def test_an_image_that_cannot_be_scanned_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class Db:
        def __init__(self, path: Path) -> None:
            pass

        def exists(self) -> bool:
            return True

    class Scanner:
        def __init__(self, cache: Path, db: object) -> None:
            pass

        def scan(self, source: object, image_id: str, ignore: object = None) -> Report:
            if image_id == NGINX:
                raise ImageError("layer missing")
            return reports()[image_id]

    monkeypatch.setattr(cli_map, "OsvDatabase", Db)
    monkeypatch.setattr(cli_map, "Scanner", Scanner)
    found = cli_map.scan_reports(object(), tmp_path, [PAY, NGINX, PAY])  # type: ignore[arg-type]
    assert set(found) == {PAY}
    assert "not scanned" in capsys.readouterr().err
