"""The cluster's truth: enrolments, attestation requests and their signed envelopes,
revocations, accepted trust roots and pinned exclusions. SQLite beside the audit
trail; the gateway process is its only writer."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ClusterStore", "Request"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS enrolments (node_id TEXT PRIMARY KEY, swarm_id TEXT NOT NULL,"
    " by_user TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, node_id TEXT NOT NULL, classes TEXT NOT NULL,"
    " evidence TEXT NOT NULL, duration INTEGER NOT NULL, requester TEXT NOT NULL, requested_at REAL NOT NULL,"
    " status TEXT NOT NULL, approver TEXT, approved_at REAL, expires_at REAL, envelope TEXT, signer TEXT,"
    " revoked_by TEXT, revoked_at REAL)",
    "CREATE TABLE IF NOT EXISTS roots (digest TEXT PRIMARY KEY, swarm_id TEXT NOT NULL, at REAL NOT NULL,"
    " how TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pins (node_id TEXT NOT NULL, class TEXT NOT NULL, at REAL NOT NULL,"
    " reason TEXT NOT NULL, PRIMARY KEY (node_id, class))",
)


@dataclass(frozen=True)
class Request:
    """One attestation request, and once approved its envelope."""

    id: str
    node_id: str
    classes: tuple[str, ...]
    evidence: str
    duration: int
    requester: str
    requested_at: float
    status: str  # pending | approved | revoked
    approver: str | None
    approved_at: float | None
    expires_at: float | None
    envelope: dict[str, Any] | None
    signer: str | None
    revoked_by: str | None
    revoked_at: float | None

    def to_json(self) -> dict[str, Any]:
        """The request as JSON data, without its envelope."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "envelope"}
        out["classes"] = list(self.classes)
        return out


_COLS = (
    "id, node_id, classes, evidence, duration, requester, requested_at, status, approver, approved_at,"
    " expires_at, envelope, signer, revoked_by, revoked_at"
)


def _request(row: tuple[Any, ...]) -> Request:
    return Request(
        row[0],
        row[1],
        tuple(json.loads(row[2])),
        row[3],
        int(row[4]),
        row[5],
        float(row[6]),
        row[7],
        row[8],
        row[9],
        row[10],
        json.loads(row[11]) if row[11] else None,
        row[12],
        row[13],
        row[14],
    )


class ClusterStore:
    """Thread-safe; every change is one transaction."""

    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        for stmt in _SCHEMA:
            self._db.execute(stmt)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ----------------------------------------------------------- enrolment
    def enrol(self, node_id: str, swarm_id: str, user: str, at: float) -> bool:
        """True when the node was not enrolled before."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO enrolments VALUES (?, ?, ?, ?)", (node_id, swarm_id, user, at)
            )
            return cur.rowcount == 1

    def unenrol(self, node_id: str) -> bool:
        """True when the node was enrolled."""
        with self._lock:
            return self._db.execute("DELETE FROM enrolments WHERE node_id=?", (node_id,)).rowcount == 1

    def enrolled(self) -> dict[str, str]:
        """node id -> swarm id."""
        return {r[0]: r[1] for r in self._q("SELECT node_id, swarm_id FROM enrolments")}

    # --------------------------------------------------------- attestation
    def add_request(self, r: Request) -> None:
        """Store a new request as pending."""
        with self._lock:
            self._db.execute(
                f"INSERT INTO requests ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', NULL, NULL, NULL,"
                " NULL, NULL, NULL, NULL)",
                (
                    r.id,
                    r.node_id,
                    json.dumps(list(r.classes)),
                    r.evidence,
                    r.duration,
                    r.requester,
                    r.requested_at,
                ),
            )

    def request(self, rid: str) -> Request | None:
        """The request with id ``rid``, if any."""
        rows = self._q(f"SELECT {_COLS} FROM requests WHERE id=?", (rid,))
        return _request(rows[0]) if rows else None

    def requests(self, status: str | None = None) -> list[Request]:
        """Every request (of ``status`` when given), oldest first."""
        if status is None:
            rows = self._q(f"SELECT {_COLS} FROM requests ORDER BY requested_at")
        else:
            rows = self._q(f"SELECT {_COLS} FROM requests WHERE status=? ORDER BY requested_at", (status,))
        return [_request(r) for r in rows]

    def approve(
        self, rid: str, approver: str, at: float, expires_at: float, envelope: dict[str, Any], signer: str
    ) -> bool:
        """Mark pending request ``rid`` approved with its signed envelope; False when it
        was not pending (approved once, even when two officers race)."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE requests SET status='approved', approver=?, approved_at=?, expires_at=?, envelope=?,"
                " signer=? WHERE id=? AND status='pending'",
                (approver, at, expires_at, json.dumps(envelope, sort_keys=True), signer, rid),
            )
            return cur.rowcount == 1

    def revoke(self, rid: str, user: str, at: float) -> bool:
        """Revoke request ``rid`` if pending or approved; False otherwise."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE requests SET status='revoked', revoked_by=?, revoked_at=? WHERE id=?"
                " AND status IN ('pending', 'approved')",
                (user, at, rid),
            )
            return cur.rowcount == 1

    # ---------------------------------------------------------- trust roots
    def accept_root(self, digest: str, swarm_id: str, at: float, how: str) -> bool:
        """Accept a trust-root digest for a swarm; True when it is new."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO roots VALUES (?, ?, ?, ?)", (digest, swarm_id, at, how)
            )
            return cur.rowcount == 1

    def roots(self) -> dict[str, str]:
        """Accepted trust-root digests -> how each was accepted."""
        return {r[0]: r[1] for r in self._q("SELECT digest, how FROM roots")}

    # ------------------------------------------------------------------ pins
    def pin(self, node_id: str, cls: str, at: float, reason: str) -> bool:
        """Keep node ``node_id`` off class ``cls``; True when it was not pinned already."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO pins VALUES (?, ?, ?, ?)", (node_id, cls, at, reason)
            )
            return cur.rowcount == 1

    def unpin(self, node_id: str, cls: str) -> bool:
        """Lift a pin; True when there was one."""
        with self._lock:
            return (
                self._db.execute("DELETE FROM pins WHERE node_id=? AND class=?", (node_id, cls)).rowcount == 1
            )

    def pins(self) -> dict[str, set[str]]:
        """class -> node ids kept off it."""
        out: dict[str, set[str]] = {}
        for node, cls in self._q("SELECT node_id, class FROM pins"):
            out.setdefault(cls, set()).add(node)
        return out
