"""``moorage policy check|test|explain|validate|schema``: policy offline, for CI.

Exit codes follow the linters': 0 allowed (warnings are fine), 1 denied or a test
failed, 2 a usage error (bad arguments, a file that can't be read or parsed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moorage import __version__
from moorage.cli._output import emit_json, error, paint, table
from moorage.cli.compliance import add_against_running, against_running
from moorage.images.formats.choice import OutputFormat
from moorage.images.formats.interface import Level, Location, ReportRun, Result, Rule, Tool
from moorage.policy.compose import compose_requests
from moorage.policy.decision import Facts, PolicyDecision, Request, Violation, evaluate
from moorage.policy.documents import PolicyError
from moorage.policy.dryrun import DryRunError, dry_run
from moorage.policy.loader import PolicySet, builtin_set, load_folder
from moorage.policy.rules import RULES, lookup
from moorage.policy.schema import SCHEMA
from moorage.policy.testing import SuiteError, load_suite, run_case

__all__ = ["register"]

USAGE_ERROR = 2


class UsageError(Exception):
    """Bad arguments, or a file that can't be read or parsed (exit code 2)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``moorage policy`` and its subcommands to the command line."""
    p = sub.add_parser("policy", help="check requests and Compose files against policy, offline")
    pc = p.add_subparsers(dest="policy_cmd", required=True, metavar="COMMAND")

    c = pc.add_parser(
        "check",
        help="check a Compose file, or a docker command (after --), against policy",
        description="moorage policy check compose.yaml | moorage policy check -- docker run ...",
    )
    c.add_argument("target", nargs="*", help="a Compose file, or -- followed by a docker command")
    c.add_argument(
        "--policy",
        type=Path,
        help="policy folder or file (default: built-in baseline enforced, restricted in audit)",
    )
    c.add_argument("--user", default=os.environ.get("USER", "ci"), help="the user to check as (scope)")
    c.add_argument("--team", action="append", default=[], help="the team(s) to check as (scope)")
    fmt = c.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable report")
    fmt.add_argument("--sarif", action="store_true", help="SARIF 2.1.0 report (code scanning)")
    add_against_running(c)
    c.set_defaults(func=_check)

    t = pc.add_parser("test", help="run policy unit tests (request -> expected decision), like kyverno test")
    t.add_argument("dir", type=Path, help="folder with *test*.yaml files (searched recursively)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=_test)

    e = pc.add_parser("explain", help="what a rule checks and why")
    e.add_argument("rule", nargs="?", help="a rule id, e.g. runtime.privileged (omit to list all)")
    e.set_defaults(func=_explain)

    v = pc.add_parser("validate", help="load a policy folder as the gateway would, and report errors")
    v.add_argument("policy", type=Path)
    v.set_defaults(func=_validate)

    s = pc.add_parser("schema", help="print the JSON Schema of policy documents")
    s.set_defaults(func=lambda a: (print(json.dumps(SCHEMA, indent=2)), 0)[1])


def _policies(path: Path | None) -> PolicySet:
    if path is None:
        return builtin_set()
    try:
        return load_folder(path)
    except (PolicyError, ValueError) as exc:
        raise UsageError(str(exc)) from exc


# ---------------------------------------------------------------- check
@dataclass
class _Checked:
    name: str  # services.web, or the docker command
    kind: str
    line: int
    decision: PolicyDecision


def _check(args: argparse.Namespace) -> int:
    if args.against_running is not None:
        return against_running(args)
    try:
        pset = _policies(args.policy)
        target = list(args.target)
        if not target:
            raise UsageError(
                "give a Compose file, or -- and a docker command (moorage policy check -- docker run ...)"
            )
        teams = tuple(args.team) or (args.user,)
        facts = Facts(now=0.0)
        checked: list[_Checked] = []
        source = target[0]
        first = Path(target[0])
        is_file = first.is_file() and not os.access(first, os.X_OK)
        if len(target) > 1 or (not is_file and shutil.which(target[0]) is not None):
            source = "(command)"
            try:
                captured = dry_run(target)
            except DryRunError as exc:
                raise UsageError(str(exc)) from exc
            for kind, path, query, body in captured:
                req = Request(kind, body, "POST", path, query, user=args.user, teams=teams)
                checked.append(_Checked(kind, kind, 1, evaluate(pset, req, facts)))
        else:
            compose = Path(target[0])
            try:
                text = compose.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"{compose}: cannot read: {exc}") from exc
            for cr in compose_requests(text, str(compose)):
                req = Request(cr.kind, cr.body, user=args.user, teams=teams)
                checked.append(_Checked(cr.name, cr.kind, cr.line, evaluate(pset, req, facts)))
    except (UsageError, PolicyError) as exc:
        error(str(exc))
        return USAGE_ERROR
    denied = any(not c.decision.allowed for c in checked)
    if args.sarif:
        print(OutputFormat.SARIF.to_format().render(_report_run(checked, source, pset)))
    elif args.json:
        emit_json({"policy_version": pset.version, "allowed": not denied, "results": [
            {"name": c.name, "kind": c.kind, "allowed": c.decision.allowed,
             "violations": [_violation_json(v, "deny") for v in c.decision.denials]
             + [_violation_json(v, "warn") for v in c.decision.warnings],
             "mutations": c.decision.mutations} for c in checked]})  # fmt: skip
    else:
        _print_report(checked, pset)
    return 1 if denied else 0


def _violation_json(v: Any, level: str) -> dict[str, Any]:
    f = v.finding
    return {"rule": f.rule, "policy": v.policy, "level": level, "field": f.path, "value": f.value,
            "message": f.message, "fix": f.fix, "excepted_by": v.excepted_by}  # fmt: skip


def _print_report(checked: list[_Checked], pset: PolicySet) -> None:
    rows = []
    for c in checked:
        for level, vs in (("deny", c.decision.denials), ("warn", c.decision.warnings)):
            for v in vs:
                f = v.finding
                shown = paint("DENY", "red") if level == "deny" else paint("warn", "yellow")
                rows.append([c.name, shown, f.rule, f.path, str(f.value)[:40], f.fix])
    if rows:
        print(table(["OBJECT", "LEVEL", "RULE", "FIELD", "VALUE", "FIX"], rows))
    for c in checked:
        verdict = paint("allowed", "green") if c.decision.allowed else paint("denied", "red")
        print(f"{c.name}: {verdict} ({len(c.decision.denials)} denials, {len(c.decision.warnings)} warnings)")
    print(f"policy version {pset.version}: {', '.join(d.name for d in pset.documents)}")


def _report_run(checked: list[_Checked], source: str, pset: PolicySet) -> ReportRun:
    """The policy check as the neutral run every report format renders: a denial is
    an error, a warning a warning; the rule's documentation comes from its object."""
    rules: dict[str, Rule] = {}
    results: list[Result] = []
    for c in checked:
        levels: tuple[tuple[Level, list[Violation]], ...] = (
            ("error", c.decision.denials),
            ("warning", c.decision.warnings),
        )
        for level, vs in levels:
            for v in vs:
                f = v.finding
                doc = lookup(f.rule)
                rules.setdefault(f.rule, Rule(
                    f.rule,
                    doc.checks if doc else f.message,
                    full_description=doc.why if doc else f.message,
                    help=doc.fix if doc else f.fix,
                ))  # fmt: skip
                results.append(Result(
                    f.rule,
                    level,
                    f"{c.name}: {f.message} ({f.path} = {f.value!r}). Fix: {f.fix}",
                    (Location(
                        uri="" if source == "(command)" else source,
                        start_line=None if source == "(command)" else c.line,
                        qualified_name=f"{c.name}:{f.path}",
                    ),),
                    properties={"policy": v.policy, "field": f.path},
                ))  # fmt: skip
    return ReportRun(
        Tool("moorage", semantic_version=__version__, information_uri="https://moorage.dev"),
        rules=tuple(rules.values()),
        results=tuple(results),
        properties={"policyVersion": pset.version},
    )


# ----------------------------------------------------------------- test
def _test(args: argparse.Namespace) -> int:
    root: Path = args.dir
    files = sorted(p for p in root.rglob("*.yaml") if "test" in p.name) if root.is_dir() else [root]
    if not files or not all(f.exists() for f in files):
        error(f"{root}: no test files (*test*.yaml)")
        return USAGE_ERROR
    rows, results = [], []
    failed = 0
    for f in files:
        try:
            suite = load_suite(f)
            pset = _policies((f.parent / suite["policies"]) if suite.get("policies") else None)
        except (UsageError, SuiteError, PolicyError) as exc:
            error(str(exc))
            return USAGE_ERROR
        for i, case in enumerate(suite["cases"]):
            ok, detail = run_case(pset, case, f"{f}:cases[{i}]")
            failed += not ok
            name = str(case.get("name", f"case {i}"))
            rows.append([f.name, name, paint("pass", "green") if ok else paint("FAIL", "red"), detail])
            results.append({"file": str(f), "case": name, "passed": ok, "detail": detail})
    if args.json:
        emit_json({"passed": len(results) - failed, "failed": failed, "results": results})
    else:
        print(table(["FILE", "CASE", "RESULT", "DETAIL"], rows))
        print(f"\n{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


# -------------------------------------------------------- explain/validate
def _explain(args: argparse.Namespace) -> int:
    if not args.rule:
        print(
            table(
                ["RULE", "PACKS", "CHECKS"], [[r.id, r.packs or "-", r.checks[:70]] for r in RULES.values()]
            )
        )
        return 0
    doc = lookup(args.rule)
    if doc is None:
        close = [r for r in RULES if args.rule.split(".")[-1] in r]
        error(f"no rule {args.rule!r}" + (f"; did you mean {', '.join(close)}?" if close else
                                          " (moorage policy explain lists them)"))  # fmt: skip
        return USAGE_ERROR
    print(paint(doc.id, "bold"))
    for label, text in (
        ("family", doc.family),
        ("packs", doc.packs or "(configured in a policy document)"),
        ("checks", doc.checks),
        ("why", doc.why),
        ("fields", doc.fields),
        ("fix", doc.fix),
    ):
        print(f"  {label:<7} {text}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    try:
        pset = load_folder(args.policy)
    except (PolicyError, ValueError) as exc:
        error(str(exc))
        return 1
    print(f"{paint('valid', 'green')}: version {pset.version}")
    for d in pset.documents:
        print(f"  {d.name} ({d.mode}) from {d.source}")
    return 0
