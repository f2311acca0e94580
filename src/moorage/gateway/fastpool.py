"""The fast path's upstream side: one pooled engine connection, and the pool.

The gateway owns one :class:`FastPool`. It holds the fast path's state that outlives
a request: the client connections still on the fast path (closed by one sweeper
timer when idle, not one timer per request) and the idle engine connections, each
a :class:`FastUpstream`, reused between requests. ``fastpath.FastClient`` asks the
pool for a connection and hands it one request; the connection relays the engine's
answer back and then returns itself to the pool.

An answer's head is read with ``http.scan_response_head`` and a chunked body with
``http.ChunkedScanner``, as on the full path; faults in either are the engine's, so
the client gets a 502 (before its first byte) or a cut answer (after it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Protocol, cast

from moorage.audit import AuditRecord
from moorage.engine_api.endpoints import Operation
from moorage.gateway import answers
from moorage.gateway.http import ChunkedScanner, HttpError, Limits, RequestHead, scan_response_head
from moorage.gateway.upstream import Upstream

__all__ = ["COLLECTED", "FastPool", "FastUpstream"]

_HOLD_LIMIT = 1 << 20  # answer bytes held while the record is written, before pausing upstream
# Lists whose answers may carry Moorage's labels: collected whole (up to the limit),
# stripped of them (the same bytes when there are none) and sent with a new length.
COLLECTED = frozenset({"container.list", "image.list", "network.list", "volume.list", "service.list",
                       "secret.list", "config.list", "system.df"})  # fmt: skip
"""Lists whose answers may carry Moorage's labels: collected whole (up to a limit),
stripped of them (the same bytes when there are none) and sent with a new length."""
_COLLECT_LIMIT = 64 << 20
_NO_BODY = (204, 304)


class _Client(Protocol):
    """What a pooled connection needs of the client connection it answers
    (``fastpath.FastClient``, which imports this module)."""

    transport: asyncio.Transport | None
    up: FastUpstream | None
    head: RequestHead | None
    op: Operation | None
    request: bytes
    busy: bool
    closed: bool
    paused_writing: bool
    last: float

    def retry(self) -> None: ...
    def refuse(self, status: int, message: str) -> None: ...
    def close(self) -> None: ...
    def record(self, status: int, decision: str, reason: str) -> tuple[str, AuditRecord | None]: ...
    def write_record(self, record: AuditRecord | None, then: Callable[[], None]) -> None: ...
    def done(self, keep: bool) -> None: ...


class FastPool:
    """The fast path's connections: clients still on it, and idle engine connections.

    The gateway builds one and closes it; nothing else keeps fast-path state."""

    def __init__(self, upstream: Upstream, limits: Limits) -> None:
        self.upstream = upstream
        self.limits = limits
        self.clients: set[_Client] = set()  # connections still on the fast path
        self._idle: list[FastUpstream] = []
        self._sweeper: asyncio.TimerHandle | None = None

    def take(self) -> FastUpstream | None:
        """An idle engine connection, or None when there is none."""
        return self._idle.pop() if self._idle else None

    def put(self, up: FastUpstream) -> bool:
        """Keep ``up`` for the next request; False when the pool is full."""
        if len(self._idle) < self.upstream.pool_size:
            self._idle.append(up)
            return True
        return False

    def forget(self, up: FastUpstream) -> None:
        """``up`` was closed: it is no longer one to hand out."""
        with contextlib.suppress(ValueError):
            self._idle.remove(up)

    async def connect(self) -> FastUpstream:
        """A new engine connection. Raises OSError when the engine can't be reached."""
        loop = asyncio.get_running_loop()
        up = self.upstream
        if up.path is not None:
            _, proto = await loop.create_unix_connection(lambda: FastUpstream(self), up.path)
        else:
            assert up.host is not None and up.port is not None
            _, proto = await loop.create_connection(lambda: FastUpstream(self), up.host, up.port, ssl=up.tls)
        return proto

    def sweep(self) -> None:
        """Close client connections idle past the limit, now and every few seconds after."""
        now = time.monotonic()
        for client in list(self.clients):
            if not client.busy and now - client.last > self.limits.idle_timeout:
                client.close()
        self._sweeper = asyncio.get_running_loop().call_later(min(5.0, self.limits.idle_timeout), self.sweep)

    def close(self) -> None:
        """Stop sweeping and close every connection, clients and engine ones."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for client in list(self.clients):
            client.close()
        for up in list(self._idle):
            up.abandon()
        self._idle.clear()


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

    def __init__(self, pool: FastPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.client: _Client | None = None
        self.buf = bytearray()
        self.reused = False
        self.got = False  # any byte of the current answer
        self.in_head = True
        self.remaining = 0  # body bytes left (fixed length)
        self.mode = ""  # "none" | "fixed" | "chunked" | "close"
        self.chunks = ChunkedScanner(pool.limits, 502)  # reset for each chunked answer
        self.keep = True
        self.held: list[bytes] | None = None  # answer bytes waiting for the record
        self.held_size = 0
        self.complete = False
        self.lost = False
        self.collect: bytearray | None = None  # a collected answer's body so far (framing included)
        self.collect_head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Connected to the engine."""
        # uvloop's transports do not subclass asyncio.Transport; they have its methods
        self.transport = cast(asyncio.Transport, transport)

    def start(self, client: _Client, reused: bool) -> None:
        """Send ``client``'s request and relay the answer to it. ``reused``: this connection
        served an earlier request, so the engine may have closed it meanwhile (then the
        request is sent once more, on a new connection)."""
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
        if not self.pool.put(self):
            self.abandon()

    def abandon(self) -> None:
        """Close this connection; it is not one to reuse."""
        self.client = None
        self.keep = False
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        """The engine closed: the end of an answer delimited by close, a pooled connection to
        retry on, or an answer cut short."""
        self.lost = True
        self.pool.forget(self)
        client = self.client
        if client is None or client.closed:
            self.client = None
            return
        if self.mode == "close" and not self.in_head:
            self._complete()  # the end of an answer delimited by close
            return
        if self.complete:
            # the whole answer is here, held until its record is written (a shared
            # trail's commit can take longer than the engine takes to close): it goes
            # out then, and this connection is not reused
            return
        self.client = None
        if not self.got and self.reused:
            client.retry()
        elif not self.got:
            url = self.pool.upstream.url
            client.refuse(502, f"moorage: the Docker engine at {url} closed the connection")
        else:
            client.close()  # cut mid-answer: the client sees it cut, as with the engine itself

    def data_received(self, data: bytes) -> None:
        """Bytes of the engine's answer: its head is read and recorded, its body relayed."""
        client = self.client
        if client is None:  # nothing was asked: the engine broke the protocol
            self.abandon()
            return
        self.got = True
        if self.in_head:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > self.pool.limits.max_head_bytes:
                    self.abandon()
                    client.refuse(502, "moorage: the Docker engine sent an oversized response head")
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

    def _head(self, client: _Client, raw: bytes, more: bool) -> AuditRecord | None:
        """Read the answer's head; hold it and return its audit record."""
        assert client.head is not None
        try:
            status, te, length, close = scan_response_head(raw, self.pool.limits)
        except HttpError as exc:
            self.abandon()
            client.refuse(502, f"moorage: {exc.message}")
            return None
        self.in_head = False
        if 100 <= status < 200:
            # nobody asked to switch protocols: the engine is not answering this request
            self.abandon()
            client.refuse(502, f"moorage: the Docker engine answered {status} to a plain read")
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

    def _body(self, client: _Client, data: bytes) -> None:
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
            body = answers.strip_answer(body)
            self.collect = None
            self._emit(_with_length(self.collect_head, len(body)) + body)
        self.complete = True
        if self.held is None and self.client is not None:
            self._finish(self.client)

    def _finish(self, client: _Client) -> None:
        assert client.head is not None
        keep = client.head.keep_alive and self.mode != "close"
        self.release()
        client.done(keep)
