"""The gateways sharing a store, each seen by the others: its name, the policy
version it decides with, when it started and when it was last seen. Every gateway
must run the same policy; this is where a gateway that doesn't shows."""

from __future__ import annotations

import time
from dataclasses import dataclass

from moorage.store.interface import Database

__all__ = ["GatewaySeen", "heartbeat", "seen"]


@dataclass(frozen=True)
class GatewaySeen:
    """One gateway as the store last saw it."""

    name: str
    policy_version: str
    started_at: float
    seen_at: float


def heartbeat(
    db: Database, name: str, policy_version: str, started_at: float, now: float | None = None
) -> None:
    """Record that ``name`` runs ``policy_version`` now."""
    db.execute(
        "INSERT INTO gateways (name, policy_version, started_at, seen_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET policy_version = excluded.policy_version,"
        " started_at = excluded.started_at, seen_at = excluded.seen_at",
        (name, policy_version, started_at, time.time() if now is None else now),
    )


def seen(db: Database, within: float = 60.0, now: float | None = None) -> list[GatewaySeen]:
    """The gateways seen in the last ``within`` seconds, by name."""
    since = (time.time() if now is None else now) - within
    rows = db.execute(
        "SELECT name, policy_version, started_at, seen_at FROM gateways WHERE seen_at >= ? ORDER BY name",
        (since,),
    )
    return [GatewaySeen(str(r[0]), str(r[1]), float(str(r[2])), float(str(r[3]))) for r in rows]
