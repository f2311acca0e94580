"""Exceptions to policy: requested by anyone who may create, approved by a
security officer who is not the requester, applying until they expire.

Stored in the store's ``exceptions`` area (SQLite beside the audit trail, or the
PostgreSQL every gateway shares). The CLI talks to a gateway; the gateways keep the
active grants in memory and read them again when the store says another changed
them (``Database.changed``: SQLite's data_version, PostgreSQL's NOTIFY); an expired
grant stops applying on the next decision, because the policy core compares the
expiry with the clock it is given.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from moorage.policy.decision import ExceptionGrant
from moorage.store.interface import Database
from moorage.store.sqlite import SqliteStore

__all__ = ["ExceptionStore", "ExceptionsError", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_SECONDS = 366 * 86400
_RULE = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9*][a-z0-9.*-]*)?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class ExceptionsError(Exception):
    """A request about exceptions that can't be carried out; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_duration(text: Any) -> int:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` (at most a year) or seconds."""
    if isinstance(text, int) and not isinstance(text, bool):
        seconds = text
    else:
        m = _DURATION.match(str(text))
        if not m:
            raise ExceptionsError(400, f"expires: {text!r} is not a duration (use e.g. 12h, 7d, 2w)")
        seconds = int(m.group(1)) * _UNIT[m.group(2)]
    if not 0 < seconds <= MAX_SECONDS:
        raise ExceptionsError(400, "expires: must be more than 0 and at most 366 days")
    return seconds


_COLUMNS = ("id", "rule", "team", "image", "reason", "requester", "requested_at", "duration", "status",
            "approver", "approved_at", "expires")  # fmt: skip


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


class ExceptionStore:
    """Exceptions to policy rules: requested by a team, approved by someone else."""

    def __init__(self, db: Database, clock: Any = time.time) -> None:
        """``db``: the store's ``exceptions`` area."""
        self.clock = clock
        self._lock = threading.Lock()
        self._db = db
        self._grants: tuple[ExceptionGrant, ...] = ()
        self._db.changed()  # what is there now is read next
        self._refresh()

    @classmethod
    def in_folder(cls, folder: Path, clock: Any = time.time) -> ExceptionStore:
        """The embedded store's exceptions, ``folder/exceptions.db``."""
        return cls(SqliteStore(folder).database("exceptions"), clock)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # ----------------------------------------------------------------- read
    def active(self) -> tuple[ExceptionGrant, ...]:
        """Approved grants (the policy core drops expired ones against its clock), read
        again when someone else (another gateway, worker or the CLI) changed the store."""
        with self._lock:
            if self._db.changed():
                self._refresh()
        return self._grants

    def _refresh(self) -> None:
        rows = self._db.execute(
            "SELECT id, rule, expires, team, image, reason, approver FROM exceptions WHERE status='approved'"
        )
        self._grants = tuple(
            ExceptionGrant(str(r[0]), str(r[1]), float(str(r[2])), _opt(r[3]), _opt(r[4]), str(r[5]),
                           str(r[6] or ""))
            for r in rows
        )  # fmt: skip

    def list(self, teams: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """The exceptions of ``teams`` (every team's when None)."""
        rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM exceptions ORDER BY requested_at, id")
        now = self.clock()
        out = []
        for row in rows:
            item = dict(zip(_COLUMNS, row, strict=True))
            if item["status"] == "approved" and item["expires"] is not None and item["expires"] <= now:
                item["status"] = "expired"
            if teams is None or item["team"] in teams:
                out.append(item)
        return out

    # ---------------------------------------------------------------- write
    def request(self, requester: str, teams: tuple[str, ...], sees_all: bool, body: Any) -> dict[str, Any]:
        """File a request for an exception."""
        if not isinstance(body, dict):
            raise ExceptionsError(400, "expected a JSON object with rule, team or image, reason, expires")
        rule = body.get("rule")
        if not isinstance(rule, str) or not _RULE.match(rule):
            raise ExceptionsError(400, f"rule: {rule!r} is not a rule id (e.g. runtime.privileged, images.*)")
        team, image = body.get("team"), body.get("image")
        if (team is None) == (image is None):
            raise ExceptionsError(400, "name exactly one of team or image (a digest sha256:...)")
        if image is not None and (not isinstance(image, str) or not _DIGEST.match(image)):
            raise ExceptionsError(400, f"image: {image!r} is not a digest (sha256: and 64 hex digits)")
        if team is not None:
            if not isinstance(team, str) or not team:
                raise ExceptionsError(400, "team: must be a team name")
            if not sees_all and team not in teams:
                raise ExceptionsError(
                    403, f"you may request exceptions only for your teams ({', '.join(teams)})"
                )
        reason = body.get("reason")
        if not isinstance(reason, str) or len(reason.strip()) < 5:
            raise ExceptionsError(400, "reason: say why (at least a few words); approvers read it")
        duration = parse_duration(body.get("expires", "7d"))
        item_id = "EXC-" + secrets.token_hex(4)
        with self._lock, self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO exceptions (id, rule, team, image, reason, requester, requested_at, duration,"
                " status) VALUES (?,?,?,?,?,?,?,?, 'pending')",
                (item_id, rule, team, image, reason.strip(), requester, self.clock(), duration),
            )
            self._db.announce(tx)
        return self.get(item_id)

    def get(self, item_id: str) -> dict[str, Any]:
        """One exception by id."""
        hit = [e for e in self.list() if e["id"] == item_id]
        if not hit:
            raise ExceptionsError(404, f"no exception {item_id}")
        return hit[0]

    def approve(self, item_id: str, approver: str, roles: tuple[str, ...]) -> dict[str, Any]:
        """Approve a requested exception (never by its requester)."""
        if "security-officer" not in roles:
            raise ExceptionsError(403, "only a security-officer may approve exceptions")
        item = self.get(item_id)
        if item["requester"] == approver:
            raise ExceptionsError(
                403, f"{approver} requested {item_id}; another security officer must approve it"
            )
        if item["status"] != "pending":
            raise ExceptionsError(409, f"{item_id} is {item['status']}, not pending")
        now = self.clock()
        with self._lock:
            with self._db.transaction() as tx:
                tx.execute(
                    "UPDATE exceptions SET status='approved', approver=?, approved_at=?, expires=?"
                    " WHERE id=?",
                    (approver, now, now + item["duration"], item_id),
                )
                self._db.announce(tx)
            self._refresh()
        return self.get(item_id)

    def revoke(self, item_id: str, who: str, roles: tuple[str, ...]) -> dict[str, Any]:
        """Revoke an exception."""
        if "security-officer" not in roles and "admin" not in roles:
            raise ExceptionsError(403, "only a security-officer or admin may revoke exceptions")
        item = self.get(item_id)
        if item["status"] not in ("pending", "approved"):
            raise ExceptionsError(409, f"{item_id} is {item['status']}")
        with self._lock:
            with self._db.transaction() as tx:
                tx.execute("UPDATE exceptions SET status='revoked', approver=? WHERE id=?", (who, item_id))
                self._db.announce(tx)
            self._refresh()
        return self.get(item_id)
