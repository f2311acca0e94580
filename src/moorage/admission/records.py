"""The audit record of one request: what happened to it (:class:`Outcome`), who
asked, and the login behind a certificate. Pure: the gateway writes the record."""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass
from typing import IO, Any

from moorage.audit import AuditRecord
from moorage.engine_api.endpoints import Operation
from moorage.identity import Principal
from moorage.identity.certs import CertStore

__all__ = ["Outcome", "RequestIds", "login_facts", "make_record"]


class RequestIds:
    """Request ids, unique per request: 8 random hex digits per gateway (so workers
    and restarts never collide), then a counter. A correlation id, not a secret, so
    no random bytes per request."""

    def __init__(self) -> None:
        """A new prefix; the counter starts at 1."""
        self._prefix = secrets.token_hex(4)
        self._counter = itertools.count(1)

    def next(self) -> str:
        """The next request id."""
        return f"{self._prefix}{next(self._counter):08x}"


@dataclass
class Outcome:
    """What happened to one request, for its audit record."""

    decision: str = "allow"
    reason: str = ""
    status: int = 0
    request_id: str = ""  # from the gateway's RequestIds
    object_id: str | None = None
    summary: dict[str, Any] | None = None
    rules: tuple[str, ...] = ()
    mutations: tuple[str, ...] = ()
    policy_version: str = ""
    image_digest: str | None = None
    body: str = "unread"  # the request body: unread, reading (a failed read: unusable), or read
    spool: IO[bytes] | None = None  # a body spooled to a temporary file, closed with the request


def login_facts(certs: CertStore | None, p: Principal | None) -> dict[str, Any] | None:
    """The login behind the caller's certificate, when it came from ``moorage login``."""
    if p is None or p.cert is None or certs is None:
        return None
    record = certs.get(p.cert[0])
    if record is None:
        return None
    return {"provider": record.provider, "subject": record.subject, "groups": list(record.groups),
            "serial": record.serial}  # fmt: skip


def make_record(
    now: float,
    method: str,
    path: str,
    op: Operation,
    p: Principal | None,
    who: Principal | str,
    outcome: Outcome,
    started: float,
    certs: CertStore | None,
) -> AuditRecord:
    """The audit record of one request; ``started`` is its ``perf_counter`` start."""
    return AuditRecord(
        time=now,
        request_id=outcome.request_id,
        user=p.user if p else "?",
        teams=p.teams if p else (),
        roles=p.roles if p else (),
        auth=p.auth if p else "none",
        source=p.source if p else str(who),
        method=method,
        path=path,
        kind=op.kind,
        object_ref=op.object_ref,
        decision=outcome.decision,
        reason=outcome.reason,
        status=outcome.status,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        object_id=outcome.object_id,
        summary=outcome.summary,
        rules=outcome.rules,
        mutations=outcome.mutations,
        policy_version=outcome.policy_version,
        image_digest=outcome.image_digest,
        login=login_facts(certs, p),
    )
