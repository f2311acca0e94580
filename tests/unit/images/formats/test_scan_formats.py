"""Every format renders an image scan exactly as ``moorage image scan`` printed it
before formats were shared (the golden files were written by that code)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from moorage import __version__
from moorage.images.formats.choice import OutputFormat
from moorage.images.formats.interface import FormatError, ReportRun, Tool
from moorage.images.formats.sarif import sarif_log
from moorage.images.reporting import inventory_run, scan_run
from tests.unit.images.samples import sample_report

GOLDEN = Path(__file__).resolve().parents[3] / "fixtures" / "images"
CODES = {"green": "32", "red": "31", "yellow": "33", "bold": "1", "dim": "2"}


def _golden_sarif(name: str) -> dict[str, object]:
    doc = json.loads((GOLDEN / name).read_text())
    doc["runs"][0]["tool"]["driver"]["version"] = __version__
    return dict(doc)


def _ansi(text: str, style: str) -> str:
    return f"\033[{CODES[style]}m{text}\033[0m"


def test_sarif_is_unchanged() -> None:
    assert sarif_log(scan_run(sample_report())) == _golden_sarif("scan.sarif.json")
    assert sarif_log(scan_run(sample_report(reference=""))) == _golden_sarif("scan-noref.sarif.json")
    text = OutputFormat.SARIF.to_format().render(scan_run(sample_report()))
    assert json.loads(text) == _golden_sarif("scan.sarif.json")


def test_suppressed_findings_and_their_rules_stay_out_of_sarif() -> None:
    log = sarif_log(scan_run(sample_report()))
    run = log["runs"][0]
    assert "CVE-2024-0005" not in {r["ruleId"] for r in run["results"]}
    assert "CVE-2024-0005" not in {r["id"] for r in run["tool"]["driver"]["rules"]}


def test_json_is_the_report_document() -> None:
    text = OutputFormat.JSON.to_format().render(scan_run(sample_report()))
    assert text + "\n" == (GOLDEN / "scan.json").read_text()


@pytest.mark.parametrize(
    ("golden", "show", "cached", "colour"),
    [
        ("scan-table.txt", False, False, False),
        ("scan-table-all-cached.txt", True, True, False),
        ("scan-table-colour-all.txt", True, False, True),
    ],
)
def test_table_is_unchanged(golden: str, show: bool, cached: bool, colour: bool) -> None:
    report = dataclasses.replace(sample_report(), cached=cached)
    fmt = OutputFormat.TABLE.to_format(show, _ansi if colour else lambda t, s: t)
    assert fmt.interactive
    assert fmt.render(scan_run(report, 1.2345)) + "\n" == (GOLDEN / golden).read_text()


def test_sboms_need_an_inventory() -> None:
    inv = sample_report().inventory
    assert json.loads(OutputFormat.CYCLONEDX.to_format().render(inventory_run(inv)))["specVersion"] == "1.6"
    assert json.loads(OutputFormat.SPDX.to_format().render(scan_run(sample_report())))["name"]
    bare = ReportRun(Tool("moorage"))
    for fmt in (OutputFormat.CYCLONEDX, OutputFormat.SPDX, OutputFormat.JSON):
        with pytest.raises(FormatError, match="use --format sarif"):
            fmt.to_format().render(bare)


def test_every_format_has_a_name_and_an_implementation() -> None:
    assert [f.value for f in OutputFormat] == ["table", "json", "sarif", "cyclonedx", "spdx"]
    assert [f.to_format().interactive for f in OutputFormat] == [True, False, False, False, False]
