"""Severity from CVSS vectors (v3.0, v3.1 and v4.0 base scores, computed by the
``cvss`` library, which follows FIRST's specifications and calculators) or a
record's own label."""

from __future__ import annotations

from typing import Any

from cvss import CVSS3, CVSS4, CVSSError

__all__ = ["SEVERITIES", "rank", "record_severity", "score_v3", "score_v4", "severity_of_score"]

SEVERITIES = ("unknown", "none", "low", "medium", "high", "critical")
"""The severities, least to most severe."""


def rank(severity: str) -> int:
    """How severe ``severity`` is, as an index into :data:`SEVERITIES` (unknown labels rank lowest)."""
    try:
        return SEVERITIES.index(severity.lower())
    except ValueError:
        return 0


def score_v3(vector: str) -> float:
    """The CVSS v3.x base score of ``vector``; ValueError when it isn't one."""
    if not vector.startswith(("CVSS:3.0/", "CVSS:3.1/")):
        raise ValueError(f"{vector!r} is not a CVSS v3 vector")
    try:
        return float(CVSS3(vector).base_score)
    except CVSSError as exc:
        raise ValueError(f"{vector!r}: {exc}") from exc


def score_v4(vector: str) -> float:
    """The CVSS v4.0 base score of ``vector`` as FIRST's calculator gives it (the
    MacroVector's score, refined by the distance within it); ValueError when it isn't one."""
    if not vector.startswith("CVSS:4.0/"):
        raise ValueError(f"{vector!r} is not a CVSS v4 vector")
    try:
        return float(CVSS4(vector).base_score)
    except CVSSError as exc:
        raise ValueError(f"{vector!r}: {exc}") from exc


def severity_of_score(score: float) -> str:
    """The CVSS qualitative rating of a base score."""
    if score == 0:
        return "none"
    if score < 4.0:
        return "low"
    if score < 7.0:
        return "medium"
    if score < 9.0:
        return "high"
    return "critical"


_LABELS = {
    "moderate": "medium",
    "important": "high",
    "negligible": "low",
    "unimportant": "low",
    "not yet assigned": "unknown",
}


def _label(text: Any) -> str | None:
    if not isinstance(text, str) or not text.strip():
        return None
    t = text.strip().lower()
    t = _LABELS.get(t, t)
    return t if t in SEVERITIES else None


def record_severity(
    record: dict[str, Any], affected: dict[str, Any] | None = None
) -> tuple[str, float | None]:
    """(severity, score): the highest CVSS score among the record's vectors, else
    the label the record or its affected entry carries, else ``unknown``."""
    best: float | None = None
    entries = list(record.get("severity") or [])
    if affected:
        entries += list(affected.get("severity") or [])
    for s in entries:
        if not isinstance(s, dict):
            continue
        kind, vector = s.get("type"), str(s.get("score", ""))
        try:
            if kind == "CVSS_V3":
                score = score_v3(vector)
            elif kind == "CVSS_V4":
                score = score_v4(vector)
            else:
                continue
        except ValueError:
            continue
        best = score if best is None else max(best, score)
    if best is not None:
        return severity_of_score(best), best
    for holder in (
        (affected or {}).get("ecosystem_specific"),
        (affected or {}).get("database_specific"),
        record.get("database_specific"),
    ):
        if isinstance(holder, dict):
            label = _label(holder.get("severity")) or _label(holder.get("urgency"))
            if label:
                return label, None
    return "unknown", None
