"""The state every part of the gateway shares, and its audit bookkeeping: the
record of each request is written before its answer leaves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

from moorage.admission import Admission, AdmissionError, tenancy
from moorage.admission.errors import Refusal
from moorage.admission.exceptions import ExceptionStore
from moorage.admission.owners import ImageOwners
from moorage.admission.records import Outcome, RequestIds, make_record
from moorage.audit import AuditError, AuditRecord, AuditSink
from moorage.cluster.trust import ClusterTrust
from moorage.engine_api.endpoints import Operation
from moorage.gateway.http import (
    HttpError,
    Limits,
    RequestHead,
    error_response,
    parse_response_head,
    read_body,
)
from moorage.gateway.streams import as_engine, identifying_headers
from moorage.gateway.upstream import Upstream, UpstreamError
from moorage.gateway.workers import KeyLocks
from moorage.identity import Principal, UserDirectory
from moorage.identity.certs import CertStore
from moorage.identity.login import LoginService

__all__ = ["refusal"]

log = logging.getLogger("moorage.gateway")

# A body a refusal leaves unread is taken in (and dropped) up to this much, this long.
_DRAIN_LIMIT = 1 << 20
_DRAIN_SECONDS = 2.0


def refusal(exc: Exception) -> tuple[int, str]:
    """The status and message a refusal goes out with."""
    if isinstance(exc, Refusal):
        return exc.status, exc.answer
    if isinstance(exc, UpstreamError):
        return 502, f"moorage: {exc}"
    if isinstance(exc, AuditError):
        return 503, f"moorage: refused because the audit trail can't be written ({exc})"
    return 503, f"moorage: admission could not decide, so the request was refused: {exc}"


class _GatewayBase:
    """What the gateway's parts share: its settings and the audit trail."""

    # Set by Gateway.__init__; declared here so each part of the gateway can use them.
    upstream: Upstream
    users: UserDirectory
    admission: Admission
    audit: AuditSink | None
    limits: Limits
    admin_uids: tuple[int, ...]
    clock: Callable[[], float]
    key_locks: KeyLocks
    exceptions: ExceptionStore | None
    cluster: ClusterTrust | None
    login: LoginService | None
    certs: CertStore | None
    allow_unknown_fields: bool
    shared: tenancy.SharedObjects
    owners: ImageOwners
    engine_headers: tuple[tuple[str, str], ...] | None
    request_ids: RequestIds
    _api_max: tuple[int, int] | None

    async def _learn_engine_headers(self) -> tuple[tuple[str, str], ...]:
        """The engine's identifying headers, from its ``/_ping`` answer, asked once."""
        if self.engine_headers is None:
            try:
                conn = await self.upstream.connect()
                try:
                    conn.writer.write(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
                    await conn.writer.drain()
                    raw = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), 5)
                finally:
                    conn.close()
                self.engine_headers = identifying_headers(parse_response_head(raw, self.limits))
            except (OSError, UpstreamError, HttpError, TimeoutError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError) as exc:  # fmt: skip
                log.debug("could not learn the engine's headers: %s", exc)
                return ()
        return self.engine_headers

    async def record_event(self, kind: str, obj: str, reason: str, summary: dict[str, Any]) -> None:
        """An audit record for something Moorage did by itself (the reconciler)."""
        if self.audit is None:
            return
        record = AuditRecord(
            time=self.clock(), request_id=secrets.token_hex(8), user="moorage", teams=(), roles=(),
            auth="moorage", source="moorage", method="EVENT", path=f"/moorage/{kind}/{obj}", kind=kind,
            object_ref=obj, decision="allow", reason=reason, status=200, duration_ms=0.0, object_id=obj,
            summary=summary,
        )  # fmt: skip
        await self.audit.record_async(record, durable=True)

    def _require_audit(self, op: Operation) -> None:
        """Fail closed before anything acts: a change must not happen unrecorded."""
        if not op.reads_only and self.audit is not None and not self.audit.healthy:
            raise AuditError("the last audit write failed (disk full or read-only store?)")

    async def _record(
        self,
        head: RequestHead,
        op: Operation,
        p: Principal | None,
        who: Principal | str,
        outcome: Outcome,
        started: float,
    ) -> None:
        if self.audit is None:
            return
        record = self._make_record(head, op, p, who, outcome, started)
        try:
            await self.audit.record_async(record, durable=not op.reads_only)
        except AuditError:
            if not op.reads_only:
                raise
            log.error("audit write failed for a read-only request %s %s", head.method, head.path)

    def _make_record(
        self,
        head: RequestHead,
        op: Operation,
        p: Principal | None,
        who: Principal | str,
        outcome: Outcome,
        started: float,
    ) -> AuditRecord:
        return make_record(self.clock(), head.method, head.path, op, p, who, outcome, started, self.certs)

    async def _refuse(
        self,
        head: RequestHead,
        op: Operation,
        principal: Principal | None,
        who: Principal | str,
        outcome: Outcome,
        started: float,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        exc: Exception,
    ) -> bool:
        """Answer a refusal in Docker's error shape, after its audit record."""
        status, message = refusal(exc)
        if isinstance(exc, Refusal):  # the framing core's HttpError is one too
            outcome.decision = exc.decision
        else:  # admission that can't decide and a trail that can't be written deny
            outcome.decision = "deny" if isinstance(exc, AdmissionError | AuditError) else "error"
        outcome.reason, outcome.status = message, status
        keep = head.keep_alive and (not head.has_body or outcome.body == "read")
        if head.has_body and outcome.body == "unread":
            # A refusal before the body was read: take in what the client is still
            # sending (bounded), so it reads this answer instead of a broken pipe.
            try:
                await asyncio.wait_for(read_body(reader, head.chunked, head.content_length, _DRAIN_LIMIT,
                                                 self.limits), _DRAIN_SECONDS)  # fmt: skip
                keep = head.keep_alive
            except (HttpError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ConnectionError):  # fmt: skip
                keep = False
        with contextlib.suppress(AuditError):  # already a refusal; the log has the failure
            await self._record(head, op, principal, who, outcome, started)
        answer = error_response(status, message, keep, outcome.request_id)
        writer.write(as_engine(answer, await self._learn_engine_headers()))
        return keep
