"""``moorage policy test``: policy unit tests, a request and the decision expected.

A suite file (like kyverno test's)::

    policies: ../policies          # optional; the built-in packs otherwise
    cases:
      - name: privileged is refused
        kind: container.create
        body: {HostConfig: {Privileged: true}}
        expect: deny               # allow, warn or deny
        rules: [runtime.privileged]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from moorage.policy.decision import ExceptionGrant, Facts, Request, evaluate
from moorage.policy.loader import PolicySet
from moorage.policy.rules.resources import Usage

__all__ = ["SuiteError", "load_suite", "run_case"]


class SuiteError(Exception):
    """A test file that can't be read or doesn't have the expected shape."""


def load_suite(path: Path) -> dict[str, Any]:
    """A test file: a mapping with a ``cases`` list (and optional ``policies``, a folder
    relative to the file). Raises :class:`SuiteError` saying what is wrong."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise SuiteError(f"{path}: expected a mapping with a 'cases' list (and optional 'policies')")
    for i, case in enumerate(doc["cases"]):
        if not isinstance(case, dict) or case.get("expect") not in ("allow", "warn", "deny"):
            raise SuiteError(f"{path}: cases[{i}].expect must be allow, warn or deny")
        if not isinstance(case.get("kind", "container.create"), str):
            raise SuiteError(f"{path}: cases[{i}].kind must be an operation such as container.create")
    return doc


def run_case(pset: PolicySet, case: dict[str, Any], where: str) -> tuple[bool, str]:
    """Evaluate one case: (passed, detail), the detail naming the rules that fired or
    what was expected instead."""
    usage = case.get("usage")
    grants = tuple(
        ExceptionGrant(str(g.get("id", f"EXC-{n}")), str(g["rule"]), float(g.get("expires", 1e12)),
                       g.get("team"), g.get("image"))
        for n, g in enumerate(case.get("exceptions") or [])
    )  # fmt: skip
    req = Request(
        kind=str(case.get("kind", "container.create")), body=case.get("body"),
        method=str(case.get("method", "POST")), path=str(case.get("path", "")),
        query={k: v if isinstance(v, list) else [str(v)] for k, v in (case.get("query") or {}).items()},
        user=str(case.get("user", "tester")), teams=tuple(case.get("teams") or ()),
        object_ref=case.get("object"),
    )  # fmt: skip
    facts = Facts(now=float(case.get("now", 0)), usage=Usage(**usage) if isinstance(usage, dict) else None,
                  exceptions=grants)  # fmt: skip
    d = evaluate(pset, req, facts)
    got = "deny" if not d.allowed else ("warn" if d.warnings else "allow")
    fired = sorted({v.finding.rule for v in (d.denials if got == "deny" else d.warnings)})
    if got != case["expect"]:
        return False, f"expected {case['expect']}, got {got} ({', '.join(fired) or 'no rules'})"
    want = case.get("rules")
    if want is not None and sorted(set(want)) != fired:
        return False, f"expected rules {sorted(set(want))}, got {fired}"
    return True, ", ".join(fired)
