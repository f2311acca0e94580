"""The fast path: plain reads that need no decision beyond the caller's role.

Most Engine API traffic is reads with no object in the path and no body:
``/_ping``, ``/version``, ``/info``, ``/containers/json``, ``/images/json``,
``/events``. For these the gateway only has to identify the caller, check the
role, scope a list to the caller's team, record the request and pass the answer
through. Doing that with asyncio streams and one task per connection costs about
90 µs of CPU a request; this module does it with bare protocols and callbacks.

A connection starts here. The first request the fast path does not take (a body,
an object reference, anything that changes state, a hijack, an upgrade, a refusal,
a malformed head) hands the connection, with every byte not yet consumed, to the
full gateway (``Gateway._connection``) for the rest of its life. So the fast path
never decides anything the full path would decide differently: it only takes the
requests for which the full path's decision is "forward, maybe with a team filter".

The record is written before the first byte of the answer leaves, as on the
full path.

This module is the client side. The engine side (one pooled connection per request
in flight, ``fastpool.FastUpstream``) and the state shared between connections
(idle engine connections, the idle-client sweeper) are in ``fastpool``; the gateway
owns the one ``FastPool`` as ``Gateway.fast_pool``.

Framing is the full path's: heads are found with ``http.head_length``, read with
``http.parse_request_head`` and refused by the full path; an engine's answer is
read with ``http.scan_response_head`` and ``http.ChunkedScanner``. A head that
is still incomplete ``Limits.head_timeout`` after its first byte goes to the full
path too, which answers 408 and records it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from moorage.admission.records import Outcome
from moorage.audit import AuditRecord
from moorage.engine_api.canonical import MAX_KNOWN_VERSION, RequestError, read_target
from moorage.engine_api.endpoints import Operation
from moorage.engine_api.kinds import KINDS
from moorage.gateway import answers
from moorage.gateway.fastpool import COLLECTED, FastUpstream
from moorage.gateway.http import HttpError, RequestHead, error_response, head_length, parse_request_head
from moorage.gateway.streams import as_engine
from moorage.identity import Principal

if TYPE_CHECKING:  # the gateway owns its fast path; only its type is needed here
    from moorage.gateway.server import Gateway

__all__ = ["FastClient", "plan"]

log = logging.getLogger("moorage.gateway")

# The lists the fast path filters to the team (prunes are filtered too, on the full path).
FILTERED_LISTS = frozenset(k for k, row in KINDS.items() if row.team_filter and not k.endswith(".prune"))


def plan(gw: Gateway, who: Principal | str, head: RequestHead) -> tuple[Operation, str] | None:
    """(operation, upstream target) when the fast path may carry out ``head``; None
    when the full gateway must (it also gives every refusal and error)."""
    if not isinstance(who, Principal) or head.method not in ("GET", "HEAD") or head.has_body:
        return None
    if head.get("upgrade") is not None or head.get("expect") is not None:
        return None
    try:
        # Until the full path has asked the engine, its newest version is assumed to be
        # Moorage's: a newer prefix is then refused by the engine itself.
        t = read_target(head.method, head.target, gw._api_max or MAX_KNOWN_VERSION)
    except RequestError:
        return None  # the full path gives the refusal
    op = t.op
    if not op.reads_only or op.hijack or op.object_ref is not None or op.kind.startswith("moorage."):
        return None
    if op.kind == "system.df" and not who.sees_all:
        return None  # filtered to the team's own objects: the full path does that
    if op.kind == "image.save":  # names its images in the query: the full path checks each
        return None
    if not who.may(op.action_class):
        return None
    if (op.kind in answers.STRIPPED_ANSWERS and op.kind not in COLLECTED) or op.kind == "swarm.inspect":
        return None  # a streamed or filtered answer: the full path takes Moorage's labels out
    target = t.encoded
    if not who.sees_all:
        if op.kind == "task.list":
            return None  # filtered after the answer: the full path does that
        if op.kind in FILTERED_LISTS:
            try:
                target = answers.inject_team_filter(target, who.team)
            except HttpError:
                return None
    return op, target


class FastClient(asyncio.Protocol):
    """One client connection on a unix listener, while it stays on the fast path."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.who: Principal | str = "not identified"
        self.buf = bytearray()
        self.busy = False  # a request is in flight
        self.eof = False
        self.closed = False
        self.handed = False
        self.paused_reading = False
        self.paused_writing = False
        self.last = time.monotonic()
        self.head_timer: asyncio.TimerHandle | None = None  # only while a head is incomplete
        self.head_since: float | None = None  # loop time of that head's first byte
        self.up: FastUpstream | None = None
        # the request in flight
        self.head: RequestHead | None = None
        self.op: Operation | None = None
        self.request: bytes = b""
        self.started = 0.0
        self.retried = False

    # ------------------------------------------------------------ asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A client connected: identify it by its peer credentials, once."""
        # uvloop's transports do not subclass asyncio.Transport; they have its methods
        self.transport = cast(asyncio.Transport, transport)
        self.who = self.gw._identify(transport.get_extra_info, "unix", {})
        self.gw.fast_pool.clients.add(self)

    def data_received(self, data: bytes) -> None:
        """Take a request when none is in flight; hold pipelined bytes (pausing past a head's size)."""
        self.buf += data
        self.last = time.monotonic()
        if self.busy:
            if len(self.buf) > self.gw.limits.max_head_bytes and not self.paused_reading:
                assert self.transport is not None
                self.transport.pause_reading()  # pipelined requests wait their turn
                self.paused_reading = True
            return
        self._next()

    def eof_received(self) -> bool:
        """The client sent all it will: finish what is in flight, then close."""
        self.eof = True
        if not self.busy:
            self._next()
        return True  # keep the write side open for the answer in flight

    def connection_lost(self, exc: Exception | None) -> None:
        """The client went away; an engine connection still answering it is closed, not pooled."""
        self.closed = True
        self.gw.fast_pool.clients.discard(self)
        self._stop_head_timer()
        if self.busy and self.up is not None:
            self.up.abandon()  # a half-relayed answer: that upstream connection can't be reused
            self.up = None

    def pause_writing(self) -> None:
        """The client reads slowly: stop reading the engine's answer for it."""
        self.paused_writing = True
        if self.up is not None and self.up.transport is not None:
            self.up.transport.pause_reading()

    def resume_writing(self) -> None:
        """The client caught up: read the engine's answer again."""
        self.paused_writing = False
        if self.up is not None and self.up.transport is not None:
            self.up.transport.resume_reading()

    # ------------------------------------------------------------ requests
    def _next(self) -> None:
        if self.busy or self.closed or self.handed:
            return
        limits = self.gw.limits
        try:
            size = head_length(self.buf, limits)
        except HttpError:
            self._hand_off()  # over the limit: the full path answers 431
            return
        if size < 0:  # no whole head yet
            if self.buf.strip() and self.eof:
                self._hand_off()  # cut short: the full path answers 400
            elif self.eof:
                self.close()
            elif self.buf and self.head_since is None:
                # Heads normally arrive whole; only one that doesn't costs a timer.
                self.head_since = self.loop.time()
                self.head_timer = self.loop.call_at(self.head_since + limits.head_timeout, self._head_late)
            return
        raw = bytes(self.buf[:size])
        try:
            head = parse_request_head(raw, limits)
            planned = plan(self.gw, self.who, head)
        except HttpError:
            planned = None
        if planned is None:
            self._hand_off()  # the full path refuses it, names the problem and records it
            return
        del self.buf[:size]
        if self.head_since is not None:
            self._stop_head_timer()
        op, target = planned
        self.busy, self.head, self.op, self.retried = True, head, op, False
        self.started = time.perf_counter()
        self.request = raw if target == head.target else head.with_target(target).encode()
        up = self.gw.fast_pool.take()
        if up is not None:
            up.start(self, reused=True)
        else:
            self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            up = await self.gw.fast_pool.connect()
        except OSError as exc:
            self.refuse(502, f"moorage: cannot reach the Docker engine at {self.gw.upstream.url}: "
                              f"{exc.strerror or exc}")  # fmt: skip
            return
        if self.closed:
            up.release()
            return
        up.start(self, reused=False)

    def retry(self) -> None:
        """A pooled connection the engine had closed: send the request once more on
        a new one (it has no body, so sending it again is safe)."""
        self.up = None
        if self.retried or self.closed:
            self.refuse(502, f"moorage: the Docker engine at {self.gw.upstream.url} closed the connection")
            return
        self.retried = True
        self.loop.create_task(self._connect())

    def refuse(self, status: int, message: str) -> None:
        """An answer of the gateway's own (the engine is unreachable or broke the protocol)."""
        self.up = None
        head = self.head
        if self.closed or head is None:
            return
        rid, record = self.record(status, "error", message)

        def answer() -> None:
            if not self.closed and self.transport is not None:
                answer = error_response(status, message, head.keep_alive, rid)
                self.transport.write(as_engine(answer, self.gw.engine_headers or ()))
                self.done(head.keep_alive)

        self.write_record(record, answer)

    def record(self, status: int, decision: str, reason: str) -> tuple[str, AuditRecord | None]:
        """The request id and audit record of the request in flight."""
        assert self.head is not None and self.op is not None
        outcome = Outcome(
            decision=decision, reason=reason, status=status, request_id=self.gw.request_ids.next()
        )
        if self.gw.audit is None:
            return outcome.request_id, None
        p = self.who if isinstance(self.who, Principal) else None
        record = self.gw._make_record(self.head, self.op, p, self.who, outcome, self.started)
        return outcome.request_id, record

    def write_record(self, record: AuditRecord | None, then: Callable[[], None]) -> None:
        """Write the record, then call ``then`` (perhaps before this returns)."""
        audit = self.gw.audit
        if audit is None or record is None:
            then()
            return

        def written(exc: BaseException | None) -> None:
            if exc is not None:  # reads go on when the trail fails; the log says so
                log.error("audit write failed for a read-only request %s %s: %s", record.method,
                          record.path, exc)  # fmt: skip
            then()

        audit.record_soon(record, False, written)

    def done(self, keep: bool) -> None:
        """The answer in flight is complete."""
        self.busy, self.head, self.op, self.up = False, None, None, None
        self.last = time.monotonic()
        if not keep or self.closed:
            self.close()
            return
        if self.paused_reading and self.transport is not None:
            self.paused_reading = False
            self.transport.resume_reading()
        if self.buf or self.eof:
            self._next()

    def close(self) -> None:
        """Close this client connection."""
        self.closed = True
        self.gw.fast_pool.clients.discard(self)
        self._stop_head_timer()
        if self.transport is not None:
            self.transport.close()

    def _head_late(self) -> None:
        """A head still incomplete at the head timeout: the full path answers 408."""
        self.head_timer = None
        if not (self.closed or self.handed or self.busy):
            self._hand_off()

    def _stop_head_timer(self) -> None:
        self.head_since = None
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    # ----------------------------------------------------- to the full path
    def _hand_off(self) -> None:
        """Give this connection to the full gateway, with every byte not yet used."""
        assert self.transport is not None
        self.handed = True
        self.gw.fast_pool.clients.discard(self)
        # A head begun here keeps its deadline: the head timeout runs from its first byte.
        since = self.head_since
        self._stop_head_timer()
        reader = asyncio.StreamReader(limit=self.gw.limits.max_head_bytes, loop=self.loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=self.loop)
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        writer = asyncio.StreamWriter(self.transport, protocol, reader, self.loop)
        if self.buf:
            reader.feed_data(bytes(self.buf))
            self.buf.clear()
        if self.eof:
            reader.feed_eof()
        if self.paused_writing:
            protocol.pause_writing()
        if self.paused_reading:
            self.transport.resume_reading()
        self.loop.create_task(self.gw._connection(reader, writer, "unix", head_since=since))
