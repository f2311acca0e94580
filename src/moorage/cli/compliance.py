"""``moorage compliance``: judge what runs (``sweep``), show the results (``report``),
and ``moorage policy check --against-running``: who a policy change would catch."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from moorage.admission.compliance import Inputs, ObjectReport, judge
from moorage.admission.compliance_report import compliance_run, policy_reports, team_summary
from moorage.admission.exceptions import ExceptionStore
from moorage.admission.images import ImageGate
from moorage.admission.running import Snapshot, read_snapshot
from moorage.admission.sweeper import ComplianceResults, Sweeper, gather_images, grants_digest
from moorage.cli._output import emit_json, error, paint, table
from moorage.cli._paths import default_data_dir
from moorage.cli.store import add_store_options, open_checked
from moorage.engine import EngineClient, EngineError
from moorage.gateway.upstream import Upstream
from moorage.images.formats.choice import OutputFormat
from moorage.images.scanner import Scanner
from moorage.images.vulns.osv import OsvDatabase
from moorage.lab import Lab
from moorage.policy.decision import Facts
from moorage.policy.documents import PolicyError
from moorage.policy.loader import PolicySet, builtin_set, load_folder

__all__ = ["against_running", "register"]

USAGE_ERROR = 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``moorage compliance`` to the command line."""
    p = sub.add_parser(
        "compliance", help="judge running containers and services against policy, continuously"
    )
    pc = p.add_subparsers(dest="compliance_cmd", required=True, metavar="COMMAND")
    s = pc.add_parser("sweep", help="judge what runs now and keep the results (the gateway does this itself)")
    _engine_options(s)
    s.add_argument("--policy", type=Path, help="policy folder (default: the built-in packs moorage up uses)")
    s.add_argument("--data-dir", type=Path)
    add_store_options(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_sweep)
    r = pc.add_parser("report", help="the latest results: per object, per team, JSON, SARIF or PolicyReports")
    r.add_argument("--team", action="append", help="only these teams' objects")
    r.add_argument("--format", choices=["table", "json", "sarif", "policyreport", "summary"], default="table")
    r.add_argument("--all", action="store_true", help="list compliant objects too (table)")
    r.add_argument("--data-dir", type=Path)
    add_store_options(r)
    r.set_defaults(func=_report)


def _engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lab", metavar="NAME", help="the engine of lab NAME's manager (node 1)")
    p.add_argument("--host", metavar="URL", help="engine URL (default: $DOCKER_HOST)")


def _engine(args: argparse.Namespace, timeout: float = 120.0) -> EngineClient:
    url = Lab(args.lab).docker_host(1) if getattr(args, "lab", None) else getattr(args, "host", None)
    upstream = Upstream(url) if url else Upstream.from_env()
    if upstream.path is not None:
        return EngineClient(upstream.path, timeout=timeout)
    assert upstream.host is not None and upstream.port is not None
    return EngineClient(None, timeout=timeout, tcp=(upstream.host, upstream.port), tls=upstream.tls)


def _policies(path: Path | None) -> PolicySet:
    return load_folder(path) if path is not None else builtin_set("baseline", "restricted")


def _gate(data: Path, engine: EngineClient) -> ImageGate:
    return ImageGate(Scanner(data / "image-cache", OsvDatabase(data / "vulndb.sqlite")), engine,
                     ignore_file=data / "ignore.yaml")  # fmt: skip


def _sweep(args: argparse.Namespace) -> int:
    data = args.data_dir or default_data_dir()
    try:
        pset = _policies(args.policy)
        engine = _engine(args)
        store = open_checked(args, data)
        exceptions = ExceptionStore(store.database("exceptions"))
        sweeper = Sweeper(ComplianceResults(store.database("compliance")), lambda: pset, engine,
                          _gate(data, engine), exceptions.active)  # fmt: skip
        summary = asyncio.run(sweeper.sweep("moorage compliance sweep"))
    except (PolicyError, ValueError, EngineError, OSError) as exc:
        error(str(exc))
        return USAGE_ERROR
    if args.json:
        emit_json(summary.as_dict())
    else:
        print(f"{summary.objects} objects, {summary.recomputed} judged again, "
              f"{paint(str(summary.failing), 'red' if summary.failing else 'green')} not compliant "
              f"({summary.took:.2f}s; policy {summary.policy_version}, "
              f"database {summary.db_version or 'none'})")  # fmt: skip
    return 0


def _report(args: argparse.Namespace) -> int:
    data = args.data_dir or default_data_dir()
    try:
        store = open_checked(args, data)
        reports = ComplianceResults(store.database("compliance")).all(args.team)
    except (ValueError, OSError) as exc:
        error(str(exc))
        return USAGE_ERROR
    if args.format == "json":
        emit_json({"summary": team_summary(reports), "objects": [r.as_dict() for r in reports]})
    elif args.format == "policyreport":
        emit_json(policy_reports(reports))
    elif args.format == "sarif":
        print(OutputFormat.SARIF.to_format().render(compliance_run(reports)))
    elif args.format == "summary":
        _print_summary(reports)
    else:
        _print_objects(reports, args.all)
    return 1 if any(r.status == "fail" for r in reports) else 0


def _print_summary(reports: list[ObjectReport]) -> None:
    rows = [[team, str(c["objects"]), str(c["pass"]), paint(str(c["fail"]), "red") if c["fail"] else "0",
             str(c["warn"]), str(c["violations"])] for team, c in team_summary(reports).items()]  # fmt: skip
    print(table(["TEAM", "OBJECTS", "PASS", "FAIL", "WARN", "VIOLATIONS"], rows))


def _print_objects(reports: list[ObjectReport], show_all: bool) -> None:
    rows = []
    for r in reports:
        if r.status == "pass" and not show_all:
            continue
        colour = {"fail": "red", "warn": "yellow"}.get(r.status, "green")
        rules = ", ".join(sorted({f"{i.rule}" + (f" [{i.action}]" if i.action != "report" else "")
                                  for i in r.items if i.result != "skip"}))  # fmt: skip
        rows.append([r.team or "-", f"{r.kind}/{r.name}", paint(r.status.upper(), colour), rules or "-"])
    print(table(["TEAM", "OBJECT", "STATUS", "RULES BROKEN"], rows) if rows else "every object is compliant")
    print(f"{len(reports)} objects: {sum(r.status == 'fail' for r in reports)} fail, "
          f"{sum(r.status == 'warn' for r in reports)} warn")  # fmt: skip


# ------------------------------------------------------- --against-running
def add_against_running(p: argparse.ArgumentParser) -> None:
    """The ``policy check`` options of ``--against-running``."""
    p.add_argument("--against-running", type=Path, metavar="POLICY_DIR",
                   help="who would fall out of compliance if POLICY_DIR were in force: judges the running "
                   "containers and services of the engine (--lab/--host/$DOCKER_HOST)")  # fmt: skip
    p.add_argument(
        "--current",
        type=Path,
        metavar="DIR",
        help="the policy in force to compare with (default: the built-in packs moorage up uses)",
    )
    _engine_options(p)
    p.add_argument("--data-dir", type=Path, help="for image facts: the gateway's image cache and database")


def judge_all(pset: PolicySet, snapshot: Snapshot, gate: ImageGate | None, now: float) -> list[ObjectReport]:
    """Every running object judged by ``pset`` (image facts from ``gate`` when given)."""
    images = asyncio.run(gather_images(gate, pset, snapshot.top_level()))
    inputs = Inputs(pset.version, "", "", grants_digest(()))
    facts = Facts(now=now)
    return [judge(pset, w, inputs, images.get(w.image), facts, now) for w in snapshot.top_level()]


def against_running(args: argparse.Namespace) -> int:
    """``moorage policy check --against-running NEW``: the workloads that pass under
    the current policy and would break a rule of the new one (exit 1 when any)."""
    try:
        new = load_folder(args.against_running)
        current = _policies(args.current)
        engine = _engine(args)
        snapshot = read_snapshot(engine)
        data = args.data_dir or default_data_dir()
        gate = (
            _gate(data, engine)
            if (data / "vulndb.sqlite").exists() or (data / "image-cache").exists()
            else None
        )
        now = time.time()
        before = {r.id: r for r in judge_all(current, snapshot, gate, now)}
        after = judge_all(new, snapshot, gate, now)
    except (PolicyError, ValueError, EngineError, OSError) as exc:
        error(str(exc))
        return USAGE_ERROR
    caught = []
    for r in after:
        old = (
            {(i.rule, i.path) for i in before[r.id].items if i.result == "fail"} if r.id in before else set()
        )
        newly = [i for i in r.items if i.result == "fail" and (i.rule, i.path) not in old]
        if newly:
            caught.append((r, newly))
    if getattr(args, "json", False):
        emit_json({"current": current.version, "proposed": new.version, "objects": len(after),
                   "would_fail": [{"kind": r.kind, "id": r.id, "name": r.name, "team": r.team,
                                   "owner": r.owner, "image": r.image,
                                   "violations": [i.__dict__ for i in items]}
                                  for r, items in caught]})  # fmt: skip
    else:
        rows = [[r.team or "-", f"{r.kind}/{r.name}", r.owner or "-",
                 "; ".join(f"{i.rule} at {i.path}" for i in items)] for r, items in caught]  # fmt: skip
        if rows:
            print(table(["TEAM", "OBJECT", "OWNER", "WOULD BREAK"], rows))
        print(f"{len(caught)} of {len(after)} running objects would fall out of compliance "
              f"under {args.against_running} (version {new.version})")  # fmt: skip
    return 1 if caught else 0
