"""Severity from CVSS vectors (v3.0/v3.1 base score; v4.0 by its MacroVector) or a
record's own label."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["SEVERITIES", "rank", "record_severity", "score_v3", "severity_of_score"]

SEVERITIES = ("unknown", "none", "low", "medium", "high", "critical")

_V3 = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_PR = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}


def rank(severity: str) -> int:
    try:
        return SEVERITIES.index(severity.lower())
    except ValueError:
        return 0


def _roundup(x: float) -> float:
    """CVSS v3.1's Roundup: the smallest one-decimal number >= x, without float noise."""
    i = round(x * 100000)
    return i / 100000.0 if i % 10000 == 0 else (math.floor(i / 10000) + 1) / 10.0


def _metrics(vector: str) -> dict[str, str]:
    parts = vector.strip().split("/")
    return dict(p.split(":", 1) for p in parts[1:] if ":" in p)


def score_v3(vector: str) -> float:
    """The CVSS v3.x base score of ``vector``; ValueError when it isn't one."""
    if not vector.startswith(("CVSS:3.0/", "CVSS:3.1/")):
        raise ValueError(f"{vector!r} is not a CVSS v3 vector")
    m = _metrics(vector)
    try:
        scope = m["S"]
        av, ac, ui = _V3["AV"][m["AV"]], _V3["AC"][m["AC"]], _V3["UI"][m["UI"]]
        pr = _PR[scope][m["PR"]]
        c, i, a = (_V3["C"][m[k]] for k in ("C", "I", "A"))
    except KeyError as exc:
        raise ValueError(f"{vector!r} lacks or misspells the base metric {exc}") from exc
    iss = 1 - (1 - c) * (1 - i) * (1 - a)
    impact = 6.42 * iss if scope == "U" else 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    exploitability = 8.22 * av * ac * pr * ui
    if impact <= 0:
        return 0.0
    total = impact + exploitability if scope == "U" else 1.08 * (impact + exploitability)
    return _roundup(min(total, 10.0))


def severity_of_score(score: float) -> str:
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
    from moorage.images.cvss4 import score_v4  # the v4 tables are large; load on use

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
