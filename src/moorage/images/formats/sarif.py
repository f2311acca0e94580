"""SARIF 2.1.0, the one writer of it: code-scanning services read this."""

from __future__ import annotations

import json
from typing import Any

from moorage.images.formats.interface import Location, ReportFormat, ReportRun, Result, Rule, Tool

__all__ = ["SCHEMA_URI", "SarifFormat", "sarif_log"]

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
"""The JSON Schema a SARIF 2.1.0 log names."""


def _driver(tool: Tool, rules: list[dict[str, Any]]) -> dict[str, Any]:
    driver: dict[str, Any] = {"name": tool.name}
    if tool.information_uri:
        driver["informationUri"] = tool.information_uri
    if tool.version:
        driver["version"] = tool.version
    if tool.semantic_version:
        driver["semanticVersion"] = tool.semantic_version
    driver["rules"] = rules
    return driver


def _rule(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rule.id}
    if rule.name:
        out["name"] = rule.name
    out["shortDescription"] = {"text": rule.short_description}
    if rule.full_description is not None:
        out["fullDescription"] = {"text": rule.full_description}
    if rule.help is not None:
        out["help"] = {"text": rule.help}
    if rule.help_uri:
        out["helpUri"] = rule.help_uri
    if rule.properties:
        out["properties"] = dict(rule.properties)
    return out


def _location(loc: Location) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if loc.uri:
        physical: dict[str, Any] = {"artifactLocation": {"uri": loc.uri}}
        if loc.start_line is not None:
            physical["region"] = {"startLine": loc.start_line}
        out["physicalLocation"] = physical
    logical: dict[str, Any] = {}
    if loc.logical_name:
        logical["name"] = loc.logical_name
    if loc.logical_kind:
        logical["kind"] = loc.logical_kind
    if loc.qualified_name:
        logical["fullyQualifiedName"] = loc.qualified_name
    if logical:
        out["logicalLocations"] = [logical]
    return out


def _result(result: Result) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": result.rule_id,
        "level": result.level,
        "message": {"text": result.message},
        "locations": [_location(loc) for loc in result.locations],
    }
    if result.properties:
        out["properties"] = dict(result.properties)
    return out


def sarif_log(run: ReportRun) -> dict[str, Any]:
    """The SARIF log of ``run``, as a JSON-ready dict.

    Suppressed results are left out, and so are rules no written result names;
    rules are listed in the order results first name them.
    """
    results = run.active
    rules: dict[str, dict[str, Any]] = {}
    for r in results:
        rule = run.rule(r.rule_id)
        if rule is not None and r.rule_id not in rules:
            rules[r.rule_id] = _rule(rule)
    body: dict[str, Any] = {
        "tool": {"driver": _driver(run.tool, list(rules.values()))},
        "results": [_result(r) for r in results],
    }
    if run.properties:
        body["properties"] = dict(run.properties)
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [body]}


class SarifFormat(ReportFormat):
    """SARIF 2.1.0 JSON, keys sorted and indented like every other JSON Moorage prints."""

    def render(self, run: ReportRun) -> str:
        """The SARIF log of ``run``."""
        return json.dumps(sarif_log(run), indent=2, sort_keys=True)
