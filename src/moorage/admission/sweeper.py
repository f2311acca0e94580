"""Continuous compliance, the driver: read what runs, gather what the rules need
about its images, judge each object whose key changed, keep the results in the
store's ``compliance`` area, and say who newly fell out of compliance.

A sweep runs on a timer (1 h by default) and whenever an input changes: the policy
version, the vulnerability database, the attestations, the exceptions, or the
engine's objects (polled cheaply every few seconds). Only objects whose key changed
are judged again, so a sweep over an unchanged fleet costs one read of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moorage.admission.compliance import Inputs, ObjectReport, judge, request_of, result_key, running_set
from moorage.admission.images import ImageGate, NotLocal
from moorage.admission.running import Snapshot, Workload, read_snapshot
from moorage.policy.decision import ExceptionGrant, Facts
from moorage.policy.loader import PolicySet
from moorage.policy.needs import needs
from moorage.policy.rules.images import ImageFacts
from moorage.store import Database

__all__ = ["ComplianceResults", "SweepSummary", "Sweeper", "gather_images", "grants_digest"]

log = logging.getLogger("moorage.compliance")


@dataclass(frozen=True)
class SweepSummary:
    """What one sweep did."""

    at: float
    took: float
    reason: str
    policy_version: str
    db_version: str
    objects: int
    recomputed: int
    failing: int
    newly: tuple[ObjectReport, ...] = field(default=(), compare=False)  # fell out of compliance now

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape (``moorage compliance sweep --json``)."""
        return {k: getattr(self, k) for k in ("at", "took", "reason", "policy_version", "db_version",
                                               "objects", "recomputed", "failing")}  # fmt: skip


class ComplianceResults:
    """The store's ``compliance`` area: each running object's latest report, and the sweeps."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self, teams: Iterable[str] | None = None) -> list[ObjectReport]:
        """Every object's report (only these teams' when ``teams`` is given), by team and name."""
        rows = self.db.execute("SELECT violations FROM results ORDER BY team, name")
        out = [ObjectReport.from_dict(json.loads(str(r[0]))) for r in rows]
        if teams is not None:
            wanted = set(teams)
            out = [r for r in out if r.team in wanted]
        return out

    def get(self, ref: str) -> ObjectReport | None:
        """One object's report by id, unique id prefix or name."""
        rows = self.db.execute("SELECT violations FROM results WHERE object_id = ? OR name = ?", (ref, ref))
        if not rows and len(ref) >= 12:
            rows = self.db.execute("SELECT violations FROM results WHERE object_id LIKE ?", (ref + "%",))
        return ObjectReport.from_dict(json.loads(str(rows[0][0]))) if len(rows) == 1 else None

    def by_id(self, object_id: str) -> ObjectReport | None:
        """One object's report by its full id, exactly (what the gateway's guard asks)."""
        rows = self.db.execute("SELECT violations FROM results WHERE object_id = ?", (object_id,))
        return ObjectReport.from_dict(json.loads(str(rows[0][0]))) if rows else None

    def keys(self) -> dict[str, str]:
        """Object id -> the key of its stored result."""
        return {str(r[0]): str(r[1]) for r in self.db.execute("SELECT object_id, result_key FROM results")}

    def save(self, changed: list[ObjectReport], present: set[str], now: float) -> None:
        """Store the changed reports, mark every present object seen, and forget the gone."""
        with self.db.transaction() as tx:
            for r in changed:
                tx.execute("DELETE FROM results WHERE object_id = ?", (r.id,))
            tx.executemany(
                "INSERT INTO results (object_id, kind, name, team, owner, image, result_key, status,"
                " violations, evaluated_at, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r.id, r.kind, r.name, r.team, r.owner, r.image, r.key, r.status, json.dumps(r.as_dict()),
                  r.evaluated_at, now) for r in changed],
            )  # fmt: skip
            gone = [
                k
                for k in (str(row[0]) for row in tx.execute("SELECT object_id FROM results"))
                if k not in present
            ]
            for k in gone:
                tx.execute("DELETE FROM results WHERE object_id = ?", (k,))
            self.db.announce(tx)

    def record_sweep(self, s: SweepSummary) -> None:
        """Keep the sweep's summary (the last 1,000)."""
        with self.db.transaction() as tx:
            row = tx.execute("SELECT COALESCE(MAX(id), 0) FROM sweeps")
            n = int(str(row[0][0])) + 1
            tx.execute(
                "INSERT INTO sweeps (id, at, took, policy_version, db_version, objects, recomputed, failing,"
                " reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    n,
                    s.at,
                    s.took,
                    s.policy_version,
                    s.db_version,
                    s.objects,
                    s.recomputed,
                    s.failing,
                    s.reason,
                ),
            )
            tx.execute("DELETE FROM sweeps WHERE id <= ?", (n - 1000,))

    def sweeps(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest sweeps, newest first."""
        cols = ("at", "took", "policy_version", "db_version", "objects", "recomputed", "failing", "reason")
        rows = self.db.execute(f"SELECT {', '.join(cols)} FROM sweeps ORDER BY id DESC LIMIT {int(limit)}")
        return [dict(zip(cols, r, strict=True)) for r in rows]


def grants_digest(grants: Iterable[ExceptionGrant]) -> str:
    """What the approved exceptions are, as one value."""
    return json.dumps(sorted((g.id, g.rule, g.team, g.image, g.expires) for g in grants), default=str)


Notify = Callable[[ObjectReport], Awaitable[None]]


class Sweeper:
    """Judges what runs on one engine, again and again."""

    def __init__(
        self,
        results: ComplianceResults,
        policies: Callable[[], PolicySet],
        engine: Any,
        gate: ImageGate | None = None,
        grants: Callable[[], tuple[ExceptionGrant, ...]] = tuple,
        attestations: Callable[[], str] = str,
        notify: Notify | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``engine`` is a synchronous engine client; ``notify`` hears of each object
        that newly breaks a rule whose action is not ``report``."""
        self.results = results
        self.policies = policies
        self.engine = engine
        self.gate = gate
        self.grants = grants
        self.attestations = attestations
        self.notify = notify
        self.clock = clock
        self._lock = asyncio.Lock()

    def db_version(self) -> str:
        """The vulnerability database's version ("" when none is loaded)."""
        db = self.gate.scanner.db if self.gate is not None else None
        try:
            return str(db.version) if db is not None and db.exists() else ""
        except Exception:  # an unreadable database reads as none: trust rules fail closed
            return ""

    def inputs(self) -> Inputs:
        """The current inputs every result is keyed by."""
        pset = self.policies()
        return Inputs(pset.version, self.db_version(), self.attestations(), grants_digest(self.grants()))

    async def sweep(self, reason: str = "sweep") -> SweepSummary:
        """Read the engine's state and judge it."""
        snapshot = await asyncio.to_thread(read_snapshot, self.engine)
        return await self.judge(snapshot, reason)

    async def judge(
        self, snapshot: Snapshot, reason: str = "sweep", images: Mapping[str, ImageFacts] | None = None
    ) -> SweepSummary:
        """Judge a snapshot; ``images`` gives image facts by reference instead of the gate."""
        async with self._lock:
            started = time.monotonic()
            now = self.clock()
            pset, grants = self.policies(), self.grants()
            inputs = Inputs(pset.version, self.db_version(), self.attestations(), grants_digest(grants))
            workloads = snapshot.top_level()
            if images is None:
                images = await gather_images(self.gate, pset, workloads, grants)
            hosts = tuple(n.id for n in snapshot.networks.values() if n.driver == "host")
            hosts += tuple(n.name for n in snapshot.networks.values() if n.driver == "host")
            facts = Facts(now=now, exceptions=grants, host_networks=hosts)
            before = await asyncio.to_thread(self.results.keys)
            old = {r.id: r for r in await asyncio.to_thread(self.results.all)} if self.notify else {}
            changed = []
            for w in workloads:
                image = images.get(w.image)
                if before.get(w.id) == result_key(w, inputs, image):
                    continue
                changed.append(judge(pset, w, inputs, image, facts, now))
            present = {w.id for w in workloads}
            await asyncio.to_thread(self.results.save, changed, present, now)
            failing = sum(1 for r in await asyncio.to_thread(self.results.all) if r.status != "pass")
            newly = tuple(r for r in changed if r.actions() - {"report"} and _new(old.get(r.id), r))
            summary = SweepSummary(now, time.monotonic() - started, reason, pset.version, inputs.db_version,
                                   len(workloads), len(changed), failing, newly)  # fmt: skip
            await asyncio.to_thread(self.results.record_sweep, summary)
        if self.notify is not None:
            for r in newly:
                await self.notify(r)
        return summary

    def stamp(self) -> str:
        """A cheap digest of what runs and of the inputs: a change means sweep now."""
        listed = self.engine.call("GET", "/containers/json?all=1") or []
        parts: list[object] = [sorted((c.get("Id"), c.get("ImageID"), c.get("State")) for c in listed)]
        info = self.engine.call("GET", "/info") or {}
        if (info.get("Swarm") or {}).get("ControlAvailable"):
            services = self.engine.call("GET", "/services") or []
            parts.append(sorted((s.get("ID"), (s.get("Version") or {}).get("Index")) for s in services))
        parts.append(self.inputs().digest())
        return json.dumps(parts, default=str)

    async def run(self, interval: float = 3600.0, poll: float = 5.0) -> None:
        """Sweep every ``interval`` seconds, and within ``poll`` seconds of a change."""
        last_stamp, last_sweep = "", 0.0
        while True:
            try:
                stamp = await asyncio.to_thread(self.stamp)
                due = time.monotonic() - last_sweep >= interval
                if stamp != last_stamp or due:
                    reason = (
                        "periodic sweep"
                        if due and stamp == last_stamp
                        else "change"
                        if last_stamp
                        else "start"
                    )
                    s = await self.sweep(reason)
                    log.info("compliance %s: %d objects, %d judged again, %d failing, %.2fs",
                             reason, s.objects, s.recomputed, s.failing, s.took)  # fmt: skip
                    last_stamp, last_sweep = stamp, time.monotonic()
            except Exception:  # the next poll tries again; the results stay as they were
                log.exception("compliance sweep failed")
            await asyncio.sleep(poll)


async def gather_images(
    gate: ImageGate | None,
    pset: PolicySet,
    workloads: Iterable[Workload],
    grants: tuple[ExceptionGrant, ...] = (),
) -> dict[str, ImageFacts]:
    """What the rules need about each workload's image, gathered once per image: from
    the engine, else (a service's image this manager doesn't hold) its registry."""
    out: dict[str, ImageFacts] = {}
    if gate is None:
        return out
    running = running_set(pset)
    wanted: dict[str, tuple[list[tuple[str, bytes]], bool]] = {}
    for w in workloads:
        trust = needs(running, request_of(w), grants).trust
        if trust is not None and w.image and w.image not in wanted:
            wanted[w.image] = (list(trust.keys), trust.scan)
    for ref, (keys, scan) in wanted.items():
        try:
            got = await gate.gather("container.create", [ref], keys, scan)
        except NotLocal:
            got = await gate.gather("service.create", [ref], keys, scan)
        out[ref] = got[ref].facts
    return out


def _new(old: ObjectReport | None, new: ObjectReport) -> bool:
    """Whether ``new`` breaks a rule with an action that ``old`` didn't."""
    seen = {(i.rule, i.path) for i in old.items if i.result != "skip"} if old else set()
    return any(
        i.result != "skip" and i.action != "report" and (i.rule, i.path) not in seen for i in new.items
    )
