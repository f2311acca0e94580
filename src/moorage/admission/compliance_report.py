"""Compliance results as reports: one Kyverno-shaped ``PolicyReport`` per object
(``wgpolicyk8s.io/v1alpha2``, with Moorage's violation fields in ``properties``), a
summary per team, and a :class:`ReportRun` that the shared writers render as SARIF,
JSON or a table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moorage import __version__
from moorage.admission.compliance import ObjectReport
from moorage.images.formats.interface import Level, Location, ReportRun, Result, Rule, Span, Tool

__all__ = ["RESULTS", "compliance_run", "policy_report", "policy_reports", "team_summary"]

RESULTS = ("pass", "fail", "warn", "error", "skip")
"""The result values of a PolicyReport."""

_KINDS = {"container": "Container", "service": "Service"}
_LEVELS: dict[str, Level] = {"fail": "error", "warn": "warning", "skip": "note"}
_SEVERITY = {"fail": "high", "warn": "medium", "skip": "info"}


def _resource(r: ObjectReport) -> dict[str, Any]:
    return {
        "apiVersion": "docker.com/v1",
        "kind": _KINDS.get(r.kind, r.kind),
        "name": r.name,
        "uid": r.id,
        "namespace": r.team,
    }


def policy_report(r: ObjectReport) -> dict[str, Any]:
    """One object's PolicyReport: its scope is the object, one result per broken rule
    (a compliant object has one ``pass`` result per policy that judged it... none
    broken, so one ``pass`` for the object)."""
    seconds = int(r.evaluated_at)
    results = []
    for i in r.items:
        results.append(
            {
                "policy": i.policy,
                "rule": i.rule,
                "result": i.result,
                "severity": _SEVERITY[i.result],
                "category": i.rule.partition(".")[0],
                "message": i.message,
                "source": "moorage",
                "scored": i.result != "skip",
                "timestamp": {"seconds": seconds, "nanos": 0},
                "resources": [_resource(r)],
                "properties": {
                    "path": i.path,
                    "value": i.value,
                    "fix": i.fix,
                    "mode": i.mode,
                    "action": i.action,
                    "exceptedBy": i.excepted_by,
                    "image": r.image,
                    "owner": r.owner,
                },
            }
        )
    if not results:
        results.append(
            {
                "policy": "moorage",
                "rule": "compliant",
                "result": "pass",
                "source": "moorage",
                "message": "no rule of the policies in force is broken",
                "scored": True,
                "timestamp": {"seconds": seconds, "nanos": 0},
                "resources": [_resource(r)],
                "properties": {"image": r.image, "owner": r.owner},
            }
        )
    summary = dict.fromkeys(RESULTS, 0)
    for res in results:
        summary[str(res["result"])] += 1
    return {
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": "PolicyReport",
        "metadata": {
            "name": f"moorage-{r.kind}-{r.id[:12]}",
            "namespace": r.team or "unowned",
            "labels": {"app.kubernetes.io/managed-by": "moorage"},
            "annotations": {"moorage.dev/result-key": r.key},
        },
        "scope": _resource(r),
        "summary": summary,
        "results": results,
    }


def policy_reports(reports: Iterable[ObjectReport]) -> dict[str, Any]:
    """Every object's PolicyReport, as a Kubernetes ``List``."""
    return {"apiVersion": "v1", "kind": "List", "items": [policy_report(r) for r in reports]}


def team_summary(reports: Iterable[ObjectReport]) -> dict[str, dict[str, int]]:
    """Per team: objects that pass, fail and warn, and the broken rules counted."""
    out: dict[str, dict[str, int]] = {}
    for r in reports:
        t = out.setdefault(
            r.team or "(unowned)", {"objects": 0, "pass": 0, "fail": 0, "warn": 0, "violations": 0}
        )
        t["objects"] += 1
        t[r.status] += 1
        t["violations"] += sum(1 for i in r.items if i.result != "skip")
    return dict(sorted(out.items()))


def compliance_run(reports: Iterable[ObjectReport]) -> ReportRun:
    """The results as a neutral run: SARIF, JSON and the table render it."""
    rules: dict[str, Rule] = {}
    results: list[Result] = []
    for r in reports:
        for i in r.items:
            rules.setdefault(
                i.rule,
                Rule(
                    i.rule,
                    i.message,
                    name=i.rule.replace(".", "").replace("-", ""),
                    help=f"Fix: {i.fix}",
                    help_uri="https://moorage.dev/docs/policy#" + i.rule,
                ),
            )
            loc = Location(
                uri=f"{r.kind}s/{r.name}",
                logical_name=f"{r.kind}/{r.name}",
                logical_kind=r.kind,
                qualified_name=f"{r.team}/{r.kind}/{r.name}#{i.path}",
            )
            results.append(
                Result(
                    i.rule,
                    _LEVELS[i.result],
                    f"{r.kind} {r.name} (team {r.team or 'none'}): {i.line()}",
                    (loc,),
                    properties={
                        "path": i.path,
                        "value": i.value,
                        "fix": i.fix,
                        "policy": i.policy,
                        "action": i.action,
                        "team": r.team,
                        "owner": r.owner,
                        "image": r.image,
                        "objectId": r.id,
                    },
                    suppressed=f"excepted by {i.excepted_by}" if i.result == "skip" else "",
                    cells=(
                        Span(r.team or "-"),
                        Span(f"{r.kind}/{r.name}", "bold"),
                        Span(i.result.upper(), "red" if i.result == "fail" else "yellow"),
                        Span(i.rule),
                        Span(i.path),
                        Span(i.action),
                        Span(i.message[:60]),
                    ),
                )
            )
    return ReportRun(
        Tool("moorage", version=__version__),
        rules=tuple(rules.values()),
        results=tuple(results),
        columns=("TEAM", "OBJECT", "RESULT", "RULE", "FIELD", "ACTION", "MESSAGE"),
    )
