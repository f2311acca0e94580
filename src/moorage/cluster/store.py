"""The cluster's truth: enrolments, attestation requests and their signed envelopes,
revocations, accepted trust roots and pinned exclusions, in the store's ``cluster``
area (SQLite beside the audit trail, or the PostgreSQL every gateway shares). Every
read goes to the store, so a change through one gateway counts on every other; each
change is announced to them."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moorage.store.interface import Database
from moorage.store.sqlite import SqliteStore

__all__ = ["ClusterStore", "Request"]


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
    """Thread-safe; every change is one transaction, announced to the other gateways."""

    def __init__(self, db: Database) -> None:
        """``db``: the store's ``cluster`` area."""
        self._lock = threading.Lock()
        self._db = db

    @classmethod
    def in_folder(cls, folder: Path) -> ClusterStore:
        """The embedded store's cluster state, ``folder/cluster.db``."""
        return cls(SqliteStore(folder).database("cluster"))

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args)

    def _change(self, sql: str, args: tuple[Any, ...]) -> bool:
        """Run one change (``... RETURNING`` a column); True when it touched a row."""
        with self._lock, self._db.transaction() as tx:
            touched = tx.execute(sql, args)
            if touched:
                self._db.announce(tx)
            return bool(touched)

    # ----------------------------------------------------------- enrolment
    def enrol(self, node_id: str, swarm_id: str, user: str, at: float) -> bool:
        """True when the node was not enrolled before."""
        return self._change(
            "INSERT INTO enrolments (node_id, swarm_id, by_user, at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING node_id",
            (node_id, swarm_id, user, at),
        )

    def unenrol(self, node_id: str) -> bool:
        """True when the node was enrolled."""
        return self._change("DELETE FROM enrolments WHERE node_id=? RETURNING node_id", (node_id,))

    def enrolled(self) -> dict[str, str]:
        """node id -> swarm id."""
        return {r[0]: r[1] for r in self._q("SELECT node_id, swarm_id FROM enrolments")}

    # --------------------------------------------------------- attestation
    def add_request(self, r: Request) -> None:
        """Store a new request as pending."""
        self._change(
            f"INSERT INTO requests ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', NULL, NULL, NULL,"
            " NULL, NULL, NULL, NULL) RETURNING id",
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
        return self._change(
            "UPDATE requests SET status='approved', approver=?, approved_at=?, expires_at=?, envelope=?,"
            " signer=? WHERE id=? AND status='pending' RETURNING id",
            (approver, at, expires_at, json.dumps(envelope, sort_keys=True), signer, rid),
        )

    def revoke(self, rid: str, user: str, at: float) -> bool:
        """Revoke request ``rid`` if pending or approved; False otherwise."""
        return self._change(
            "UPDATE requests SET status='revoked', revoked_by=?, revoked_at=? WHERE id=?"
            " AND status IN ('pending', 'approved') RETURNING id",
            (user, at, rid),
        )

    # ---------------------------------------------------------- trust roots
    def accept_root(self, digest: str, swarm_id: str, at: float, how: str) -> bool:
        """Accept a trust-root digest for a swarm; True when it is new."""
        return self._change(
            "INSERT INTO roots (digest, swarm_id, at, how) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
            " RETURNING digest",
            (digest, swarm_id, at, how),
        )

    def roots(self) -> dict[str, str]:
        """Accepted trust-root digests -> how each was accepted."""
        return {r[0]: r[1] for r in self._q("SELECT digest, how FROM roots")}

    # ------------------------------------------------------------------ pins
    def pin(self, node_id: str, cls: str, at: float, reason: str) -> bool:
        """Keep node ``node_id`` off class ``cls``; True when it was not pinned already."""
        return self._change(
            "INSERT INTO pins (node_id, class, at, reason) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
            " RETURNING node_id",
            (node_id, cls, at, reason),
        )

    def unpin(self, node_id: str, cls: str) -> bool:
        """Lift a pin; True when there was one."""
        return self._change("DELETE FROM pins WHERE node_id=? AND class=? RETURNING node_id", (node_id, cls))

    def pins(self) -> dict[str, set[str]]:
        """class -> node ids kept off it."""
        out: dict[str, set[str]] = {}
        for node, cls in self._q("SELECT node_id, class FROM pins"):
            out.setdefault(cls, set()).add(node)
        return out
