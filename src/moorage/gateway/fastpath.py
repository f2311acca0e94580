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

Framing is the full path's: heads are found with ``http.head_length``, read with
``http.parse_request_head`` and refused by the full path; an engine's answer is
read with ``http.scan_response_head`` and ``http.ChunkedScanner``. A head that
is still incomplete ``Limits.head_timeout`` after its first byte goes to the full
path too, which answers 408 and records it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import cast

from moorage.audit import AuditRecord
from moorage.engine_api.canonical import MAX_KNOWN_VERSION, RequestError, read_target
from moorage.engine_api.endpoints import Operation
from moorage.gateway import tenancy
from moorage.gateway.http import (
    ChunkedScanner,
    HttpError,
    RequestHead,
    error_response,
    head_length,
    parse_request_head,
    scan_response_head,
)
from moorage.gateway.server import FILTERED_LISTS, Gateway, _as_engine, _Outcome
from moorage.identity import Principal

__all__ = ["FastClient", "FastUpstream", "plan"]

log = logging.getLogger("moorage.gateway")

_HOLD_LIMIT = 1 << 20  # answer bytes held while the record is written, before pausing upstream
# Lists whose answers may carry Moorage's labels: collected whole (up to the limit),
# stripped of them (the same bytes when there are none) and sent with a new length.
COLLECTED = frozenset({"container.list", "image.list", "network.list", "volume.list", "service.list",
                       "secret.list", "config.list", "system.df"})  # fmt: skip
_COLLECT_LIMIT = 64 << 20
_NO_BODY = (204, 304)


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
    if (op.kind in tenancy.STRIPPED_ANSWERS and op.kind not in COLLECTED) or op.kind == "swarm.inspect":
        return None  # a streamed or filtered answer: the full path takes Moorage's labels out
    target = t.encoded
    if not who.sees_all:
        if op.kind == "task.list":
            return None  # filtered after the answer: the full path does that
        if op.kind in FILTERED_LISTS:
            try:
                target = tenancy.inject_team_filter(target, who.team)
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
        # uvloop's transports do not subclass asyncio.Transport; they have its methods
        self.transport = cast(asyncio.Transport, transport)
        self.who = self.gw._identify(transport.get_extra_info, "unix", {})
        self.gw._fast.add(self)

    def data_received(self, data: bytes) -> None:
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
        self.eof = True
        if not self.busy:
            self._next()
        return True  # keep the write side open for the answer in flight

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gw._fast.discard(self)
        self._stop_head_timer()
        if self.busy and self.up is not None:
            self.up.abandon()  # a half-relayed answer: that upstream connection can't be reused
            self.up = None

    def pause_writing(self) -> None:
        self.paused_writing = True
        if self.up is not None and self.up.transport is not None:
            self.up.transport.pause_reading()

    def resume_writing(self) -> None:
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
        up = self.gw._fast_pool.pop() if self.gw._fast_pool else None
        if up is not None:
            up.start(self, reused=True)
        else:
            self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            up = await self.gw._fast_connect()
        except OSError as exc:
            self._refuse(502, f"moorage: cannot reach the Docker engine at {self.gw.upstream.url}: "
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
            self._refuse(502, f"moorage: the Docker engine at {self.gw.upstream.url} closed the connection")
            return
        self.retried = True
        self.loop.create_task(self._connect())

    def _refuse(self, status: int, message: str) -> None:
        """An answer of the gateway's own (the engine is unreachable or broke the protocol)."""
        self.up = None
        head = self.head
        if self.closed or head is None:
            return
        rid, record = self.record(status, "error", message)

        def answer() -> None:
            if not self.closed and self.transport is not None:
                answer = error_response(status, message, head.keep_alive, rid)
                self.transport.write(_as_engine(answer, self.gw.engine_headers or ()))
                self.done(head.keep_alive)

        self.write_record(record, answer)

    def record(self, status: int, decision: str, reason: str) -> tuple[str, AuditRecord | None]:
        """The request id and audit record of the request in flight."""
        assert self.head is not None and self.op is not None
        outcome = _Outcome(
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
        self.closed = True
        self.gw._fast.discard(self)
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
        self.gw._fast.discard(self)
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


def _dechunk(raw: bytes) -> bytes:
    """The data of a chunked body whose framing the scanner has already checked."""
    out: list[bytes] = []
    at = 0
    while True:
        end = raw.index(b"\r\n", at)
        size = int(raw[at:end].split(b";", 1)[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(raw[end + 2 : end + 2 + size])
        at = end + 2 + size + 2


def _with_length(head: bytes, length: int) -> bytes:
    """A response head for a body now ``length`` bytes long, not chunked."""
    lines = [
        line
        for line in head[:-4].split(b"\r\n")
        if not line.lower().startswith((b"content-length:", b"transfer-encoding:"))
    ]
    return b"\r\n".join([*lines, b"Content-Length: %d" % length]) + b"\r\n\r\n"


class FastUpstream(asyncio.Protocol):
    """One connection to the engine, pooled between fast-path requests."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.transport: asyncio.Transport | None = None
        self.client: FastClient | None = None
        self.buf = bytearray()
        self.reused = False
        self.got = False  # any byte of the current answer
        self.in_head = True
        self.remaining = 0  # body bytes left (fixed length)
        self.mode = ""  # "none" | "fixed" | "chunked" | "close"
        self.chunks = ChunkedScanner(gw.limits, 502)  # reset for each chunked answer
        self.keep = True
        self.held: list[bytes] | None = None  # answer bytes waiting for the record
        self.held_size = 0
        self.complete = False
        self.lost = False
        self.collect: bytearray | None = None  # a collected answer's body so far (framing included)
        self.collect_head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they have its methods
        self.transport = cast(asyncio.Transport, transport)

    def start(self, client: FastClient, reused: bool) -> None:
        assert self.transport is not None
        self.client, self.reused = client, reused
        client.up = self
        self.buf.clear()
        self.got, self.in_head, self.complete, self.keep = False, True, False, True
        self.held, self.held_size = None, 0
        self.collect = None
        if client.paused_writing:
            self.transport.pause_reading()
        self.transport.write(client.request)

    def release(self) -> None:
        """Back to the pool, or closed when the pool is full or the engine said close."""
        self.client = None
        if self.transport is None or self.lost or not self.keep:
            self.abandon()
            return
        with contextlib.suppress(Exception):
            self.transport.resume_reading()
        if len(self.gw._fast_pool) < self.gw.upstream.pool_size:
            self.gw._fast_pool.append(self)
        else:
            self.abandon()

    def abandon(self) -> None:
        self.client = None
        self.keep = False
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        with contextlib.suppress(ValueError):
            self.gw._fast_pool.remove(self)
        client = self.client
        if client is None or client.closed:
            self.client = None
            return
        if self.mode == "close" and not self.in_head:
            self._complete()  # the end of an answer delimited by close
            return
        self.client = None
        if not self.got and self.reused:
            client.retry()
        elif not self.got:
            client._refuse(502, f"moorage: the Docker engine at {self.gw.upstream.url} closed the connection")
        else:
            client.close()  # cut mid-answer: the client sees it cut, as with the engine itself

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:  # nothing was asked: the engine broke the protocol
            self.abandon()
            return
        self.got = True
        if self.in_head:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > self.gw.limits.max_head_bytes:
                    self.abandon()
                    client._refuse(502, "moorage: the Docker engine sent an oversized response head")
                return
            raw = bytes(self.buf[: end + 4])
            rest = bytes(self.buf[end + 4 :])
            self.buf.clear()
            record = self._head(client, raw, bool(rest))
            if self.client is None:
                return  # refused: the engine broke the protocol
            if rest and not self.complete:
                self._body(client, rest)
            # the answer so far is held; it goes out once the record is written
            client.write_record(record, self._release_held)
            return
        self._body(client, data)

    def _head(self, client: FastClient, raw: bytes, more: bool) -> AuditRecord | None:
        """Read the answer's head; hold it and return its audit record."""
        assert client.head is not None
        try:
            status, te, length, close = scan_response_head(raw, self.gw.limits)
        except HttpError as exc:
            self.abandon()
            client._refuse(502, f"moorage: {exc.message}")
            return None
        self.in_head = False
        if 100 <= status < 200:
            # nobody asked to switch protocols: the engine is not answering this request
            self.abandon()
            client._refuse(502, f"moorage: the Docker engine answered {status} to a plain read")
            return None
        self.keep = not close
        if client.head.method == "HEAD" or status in _NO_BODY:
            self.mode = "none"
        elif "chunked" in te:
            self.mode = "chunked"
            self.chunks.reset()
        elif length is not None:
            self.mode, self.remaining = "fixed", length
        else:
            self.mode, self.keep = "close", False
        rid, record = client.record(status, "allow", "")
        head = raw[:-2] + b"X-Moorage-Request-Id: " + rid.encode() + b"\r\n\r\n"
        if client.op is not None and client.op.kind in COLLECTED and status == 200 and self.mode != "none":
            self.collect, self.collect_head, self.held = bytearray(), head, []
            if self.mode == "fixed" and self.remaining == 0:
                self.keep = self.keep and not more
                self._complete()
            return record
        self.held = [head]
        if self.mode == "none" or (self.mode == "fixed" and self.remaining == 0):
            self.complete = True
            self.keep = self.keep and not more  # bytes after a complete answer
        return record

    def _body(self, client: FastClient, data: bytes) -> None:
        if self.mode == "fixed":
            if len(data) > self.remaining:  # more than the answer: not a connection to reuse
                data, self.keep = data[: self.remaining], False
            self.remaining -= len(data)
            self._emit(data)
            if self.remaining == 0:
                self._complete()
        elif self.mode == "chunked":
            self._chunked(data)
        elif self.mode == "close":
            self._emit(data)
        else:
            self.keep = False  # bytes after an answer without a body

    def _chunked(self, data: bytes) -> None:
        """Pass chunked framing through verbatim, checking it and watching for its end."""
        try:
            used = self.chunks.feed(data)
        except HttpError:
            self._broken()
            return
        if used < len(data):
            self.keep = False  # bytes after the last chunk
            data = data[:used]
        self._emit(data)
        if self.chunks.done:
            self._complete()

    def _broken(self) -> None:
        """Malformed chunked framing from the engine: cut the answer."""
        client = self.client
        self.abandon()
        if client is not None:
            client.close()

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        if self.collect is not None:
            self.collect += data
            if len(self.collect) > _COLLECT_LIMIT:
                self._broken()  # not an answer to hold whole: cut, as a broken one is
            return
        if self.held is not None:
            self.held.append(data)
            self.held_size += len(data)
            if self.held_size > _HOLD_LIMIT and self.transport is not None:
                self.transport.pause_reading()
            return
        client = self.client
        if client is not None and client.transport is not None and not client.closed:
            client.transport.write(data)

    def _release_held(self) -> None:
        """The record is written: the answer may go out."""
        held, self.held = self.held or [], None
        client = self.client
        if client is None or client.closed or client.transport is None:
            return
        client.transport.write(b"".join(held))
        if self.held_size > _HOLD_LIMIT and self.transport is not None and not client.paused_writing:
            self.transport.resume_reading()
        if self.complete:
            self._finish(client)

    def _complete(self) -> None:
        if self.collect is not None:
            body = bytes(self.collect)
            if self.mode == "chunked":
                body = _dechunk(body)
            body = tenancy.strip_answer(body)
            self.collect = None
            self._emit(_with_length(self.collect_head, len(body)) + body)
        self.complete = True
        if self.held is None and self.client is not None:
            self._finish(self.client)

    def _finish(self, client: FastClient) -> None:
        assert client.head is not None
        keep = client.head.keep_alive and self.mode != "close"
        self.release()
        client.done(keep)
