"""What each console page shows, as data, filtered to what the viewer may see."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moorage.admission.exceptions import ExceptionStore
from moorage.admission.images import ImageGate
from moorage.admission.running import Snapshot, Workload, read_snapshot
from moorage.admission.sweeper import ComplianceResults, Sweeper, gather_images
from moorage.cluster.trust import ClusterTrust
from moorage.console.auth import Viewer
from moorage.identity.login import LoginService
from moorage.images.scanner import Report
from moorage.images.sources import EngineSource
from moorage.policy.loader import PolicySet
from moorage.policy.rules.images import ImageFacts
from moorage.policy.units import parse_cpus, parse_size

__all__ = ["ConsoleContext", "decision_row", "matches", "record_visible", "team_quotas", "violations"]


@dataclass
class ConsoleContext:
    """Everything the console reads: the gateway's own stores and engine."""

    data: Path
    trail: Any
    exceptions: ExceptionStore
    compliance: ComplianceResults
    policies: Callable[[], PolicySet]
    engine: Any  # a synchronous EngineClient
    gate: ImageGate | None = None
    cluster: ClusterTrust | None = None
    login: LoginService | None = None
    sweeper: Sweeper | None = None
    console_client_id: str = "moorage-console"
    _snap: tuple[float, Snapshot] | None = field(default=None, repr=False)

    async def snapshot(self, max_age: float = 2.0) -> Snapshot:
        """The engine's state, read at most every ``max_age`` seconds."""
        if self._snap is None or time.monotonic() - self._snap[0] > max_age:
            self._snap = (time.monotonic(), await asyncio.to_thread(read_snapshot, self.engine))
        return self._snap[1]

    async def image_facts(self, workloads: Iterable[Workload]) -> dict[str, ImageFacts]:
        """What the policy's image rules know of these workloads' images (signers, findings)."""
        try:
            return await gather_images(self.gate, self.policies(), workloads)
        except Exception:  # the page still shows what the engine says
            return {}

    async def reports(self, snap: Snapshot, image_ids: Iterable[str]) -> dict[str, Report]:
        """Scan reports by image id (cached by digest and database version)."""
        gate = self.gate
        if gate is None or gate.scanner.db is None or not gate.scanner.db.exists():
            return {}
        scanner, source = gate.scanner, EngineSource(self.engine)

        def scan() -> dict[str, Report]:
            out = {}
            for image_id in image_ids:
                try:
                    out[image_id] = scanner.scan(source, image_id)
                except Exception:  # an image that can't be read has no report; the page says so
                    continue
            return out

        return await asyncio.to_thread(scan)


def record_visible(viewer: Viewer, record: Mapping[str, Any]) -> bool:
    """Whether an audit record is this viewer's to see: their teams' requests (or all)."""
    if viewer.sees_all:
        return True
    teams = record.get("teams") or ()
    return bool(set(teams) & set(viewer.teams)) or record.get("user") == viewer.user


_VIOLATION = re.compile(
    r"([\w.*-]+) at (\S+) \((.*?)\): (.*?)\. Fix: (.*?)(?=; [\w.*-]+ at \S+ \(|\. To ask| \| denied by|$)"
)


def violations(reason: str) -> list[dict[str, str]]:
    """The rule, field, value, message and fix of each violation a decision's reason names."""
    return [dict(zip(("rule", "path", "value", "message", "fix"), m.groups(), strict=True))
            for m in _VIOLATION.finditer(reason)]  # fmt: skip


def decision_row(seq: int, r: Mapping[str, Any]) -> dict[str, Any]:
    """One decision as the feed shows it: who, what, outcome, rules, and the rule,
    field, value and fix of each violation its reason names."""
    reason = str(r.get("reason") or "")
    return {
        "seq": seq,
        "time": time.strftime("%H:%M:%S", time.localtime(float(r.get("time") or 0))),
        "user": r.get("user", "?"),
        "teams": ", ".join(r.get("teams") or ()),
        "kind": r.get("kind", ""),
        "object": r.get("object_ref") or r.get("object_id") or "",
        "decision": r.get("decision", ""),
        "rules": ", ".join(r.get("rules") or ()),
        "reason": reason,
        "violations": violations(reason),
        "status": r.get("status", ""),
    }


def matches(
    row: Mapping[str, Any], r: Mapping[str, Any], team: str, user: str, rule: str, outcome: str
) -> bool:
    """Whether a decision passes the feed's filters."""
    if team and team not in (r.get("teams") or ()):
        return False
    if user and r.get("user") != user:
        return False
    if rule and not any(x == rule or x.startswith(rule.rstrip("*")) for x in (r.get("rules") or ())):
        return False
    return not (outcome and row["decision"] != outcome)


def team_quotas(pset: PolicySet, snap: Snapshot, teams: Iterable[str]) -> list[dict[str, Any]]:
    """Each team's use (containers, CPUs, memory, service replicas) against its quota."""
    out = []
    for team in sorted(set(teams)):
        used = {"containers": 0, "cpus": 0.0, "memory": 0, "replicas": 0}
        for w in snap.workloads:
            if w.team != team:
                continue
            if w.kind == "container" and not w.service:
                used["containers"] += 1
                hc = w.body.get("HostConfig") or {}
                used["cpus"] += (hc.get("NanoCpus") or 0) / 1e9
                used["memory"] += hc.get("Memory") or 0
            elif w.kind == "service":
                used["replicas"] += int(
                    ((w.body.get("Mode") or {}).get("Replicated") or {}).get("Replicas") or 0
                )
        limits: dict[str, Any] = {}
        for d in pset.documents:
            q = d.spec.quotas
            if q and d.applies_to("", (team,), {}):
                for key in ("containers", "cpus", "memory", "replicas"):
                    value = getattr(q, key)
                    if value is not None and key not in limits:
                        limits[key] = value
        rows = []
        for key, value in used.items():
            limit = limits.get(key)
            number = (
                (parse_cpus(limit) if key == "cpus" else parse_size(limit) if key == "memory" else int(limit))
                if limit is not None
                else None
            )
            pct = round(100 * float(value) / float(number), 1) if number else None
            shown = f"{value / 2**20:.0f} MiB" if key == "memory" else f"{value:g}"
            rows.append(
                {"what": key, "used": shown, "limit": "-" if limit is None else str(limit), "pct": pct}
            )
        out.append({"team": team, "rows": rows})
    return out
