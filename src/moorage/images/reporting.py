"""A scan :class:`~moorage.images.scanner.Report` as the neutral
:class:`~moorage.images.formats.interface.ReportRun` every report format renders."""

from __future__ import annotations

from moorage import __version__
from moorage.images.catalogers.interface import Inventory
from moorage.images.formats.interface import Level, Line, Location, ReportRun, Result, Rule, Span, Tool
from moorage.images.scanner import Report
from moorage.images.vulns.interface import Finding

__all__ = ["SEVERITY_STYLES", "inventory_run", "scan_run"]

SEVERITY_STYLES = {"critical": "red", "high": "red", "medium": "yellow", "low": "dim", "unknown": "dim"}
"""How a terminal shows each severity."""

_LEVELS: dict[str, Level] = {
    "critical": "error",
    "high": "error",
    "medium": "warning",
    "low": "note",
    "unknown": "note",
}
# Code-scanning services rank rules by this score; a finding without a CVSS score
# gets the middle of its severity's band.
_BAND_SCORES = {"critical": 9.5, "high": 8.0, "medium": 5.5, "low": 2.0}
_COLUMNS = ("SEVERITY", "ID", "PACKAGE", "VERSION", "FIXED IN", "SUMMARY")


def _rule(f: Finding) -> Rule:
    return Rule(
        f.id,
        f.summary or f.id,
        name=f.id.replace("-", ""),
        help_uri=f"https://osv.dev/vulnerability/{f.id}",
        properties={"security-severity": str(f.score or _BAND_SCORES.get(f.severity, 0.0))},
    )


def _result(f: Finding, image: str) -> Result:
    fix = f"upgrade {f.package} to {f.fixed}" if f.fixed else "no fixed version is known"
    cells: Line = (
        Span(f.severity.upper(), SEVERITY_STYLES.get(f.severity, "dim")),
        Span(f.id),
        Span(f.package),
        Span(f.version),
        Span(f.fixed) if f.fixed else Span("unfixed", "dim"),
        Span(f"suppressed: {f.suppressed}" if f.suppressed else f.summary[:60]),
    )
    return Result(
        f.id,
        _LEVELS.get(f.severity, "note"),
        f"{f.package} {f.version} is affected by {f.id} ({f.severity}); {fix}",
        (Location(uri=f.path.lstrip("/") or "image", logical_name=image, logical_kind="image"),),
        suppressed=f.suppressed,
        cells=cells,
    )


def _heading(report: Report, elapsed: float) -> tuple[Line, ...]:
    inv = report.inventory
    os_name = inv.os.pretty_name or inv.os.id if inv.os else "unknown OS"
    how = "cached" if report.cached else f"scanned in {elapsed:.2f}s"
    summary: list[Span] = []
    for severity, n in report.counts().items():
        if n:
            if summary:
                summary.append(Span(", "))
            summary.append(Span(f"{n} {severity}", SEVERITY_STYLES[severity]))
    return (
        (Span(inv.reference or inv.digest, "bold"),),
        (Span(f"  digest    {inv.digest}"),),
        (Span(f"  os        {os_name}"),),
        (Span(f"  packages  {len(inv.packages)}   ({how}; database {report.db_version})"),),
        (Span("  findings  "), *(summary or [Span("none", "green")])),
    )


def scan_run(report: Report, elapsed: float = 0.0) -> ReportRun:
    """The run of one image scan; ``elapsed`` is shown when the report wasn't cached.

    A rule is described by the first unsuppressed finding of its id, as SARIF
    readers show the rule of what is still open.
    """
    image = report.inventory.reference or report.inventory.digest
    rules: dict[str, Rule] = {}
    for f in (*report.active, *(f for f in report.findings if f.suppressed)):
        rules.setdefault(f.id, _rule(f))
    return ReportRun(
        Tool("moorage", version=__version__),
        rules=tuple(rules.values()),
        results=tuple(_result(f, image) for f in report.findings),
        heading=_heading(report, elapsed),
        columns=_COLUMNS,
        warnings=report.warnings,
        document=report.as_dict(show_suppressed=True),
        inventory=report.inventory,
    )


def inventory_run(inventory: Inventory) -> ReportRun:
    """A run that only describes an image, for ``moorage image sbom``."""
    return ReportRun(Tool("moorage", version=__version__), inventory=inventory)
