"""The upstream Docker engine: where it is, and a pool of reusable connections."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from moorage.gateway.http import HttpError, parse_response_head, read_body

__all__ = ["Conn", "Upstream", "UpstreamError"]


class UpstreamError(Exception):
    """The upstream engine can't be reached or broke the protocol (a 502)."""


@dataclass
class Conn:
    """A stream connection to the engine, for the full path. ``fresh``: new, not from the pool."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    fresh: bool

    def close(self) -> None:
        """Close it."""
        self.writer.close()


class Upstream:
    """A Docker engine at ``unix:///path`` or ``tcp://host:port`` (TLS when ``ssl`` is set)."""

    def __init__(self, url: str, tls: ssl.SSLContext | None = None, pool_size: int = 64) -> None:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            self.path: str | None = parts.path
            self.host, self.port = None, None
        elif parts.scheme in ("tcp", "https", "http"):
            if not parts.hostname:
                raise ValueError(f"upstream {url!r} has no host")
            self.path = None
            self.host, self.port = parts.hostname, parts.port or (2376 if tls else 2375)
        else:
            raise ValueError(f"upstream {url!r}: use unix:///path or tcp://host:port")
        self.url = url
        self.tls = tls
        self.pool_size = pool_size
        self._idle: list[Conn] = []

    @classmethod
    def from_env(cls) -> Upstream:
        """``DOCKER_HOST`` (with ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``), else the system socket."""
        url = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        tls = None
        if url.startswith("tcp://") and os.environ.get("DOCKER_TLS_VERIFY"):
            certs = Path(os.environ.get("DOCKER_CERT_PATH", Path.home() / ".docker"))
            tls = client_tls(certs)
        return cls(url, tls)

    async def connect(self) -> Conn:
        """A new connection; raises UpstreamError when the engine can't be reached."""
        try:
            if self.path is not None:
                r, w = await asyncio.open_unix_connection(self.path, limit=1 << 20)
            else:
                r, w = await asyncio.open_connection(self.host, self.port, ssl=self.tls, limit=1 << 20)
        except OSError as exc:
            raise UpstreamError(
                f"cannot reach the Docker engine at {self.url}: {exc.strerror or exc}"
            ) from exc
        return Conn(r, w, True)

    async def acquire(self) -> Conn:
        """An idle pooled connection the engine hasn't closed, else a new one."""
        while self._idle:
            conn = self._idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                conn.fresh = False
                return conn
            conn.close()
        return await self.connect()

    def release(self, conn: Conn) -> None:
        """Give ``conn`` back after a complete answer: pooled, or closed when the pool is full."""
        if len(self._idle) < self.pool_size and not conn.writer.is_closing():
            self._idle.append(conn)
        else:
            conn.close()

    async def lines(self, path: str) -> AsyncIterator[bytes]:
        """The lines of a streamed answer (``/events``), until the engine ends it."""
        conn = await self.connect()
        try:
            conn.writer.write(f"GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: moorage\r\n\r\n".encode())
            await conn.writer.drain()
            await conn.reader.readuntil(b"\r\n\r\n")
            while line := await conn.reader.readline():
                yield line
        finally:
            conn.close()

    async def call_json(
        self, method: str, path: str, limit: int = 16 << 20, body: Any = None
    ) -> tuple[int, Any]:
        """A small request of the gateway's own (an inspect for tenancy): status and JSON."""
        payload = b"" if body is None else json.dumps(body).encode()
        extra = f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n" if payload else ""
        for attempt in (0, 1):
            conn = await (self.acquire() if attempt == 0 else self.connect())
            try:
                conn.writer.write(
                    f"{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: moorage\r\n{extra}\r\n".encode()
                    + payload
                )
                await conn.writer.drain()
                raw = await conn.reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                conn.close()
                if attempt == 0 and not conn.fresh:
                    continue  # a pooled connection the engine had closed
                raise UpstreamError(f"the Docker engine at {self.url} closed the connection") from exc
            head = parse_response_head(raw)
            cl = head.get("content-length")
            try:
                body = await read_body(conn.reader, head.chunked, int(cl or 0), limit, status=502)
            except HttpError as exc:
                conn.close()
                raise UpstreamError(f"the Docker engine's answer to {path}: {exc.message}") from exc
            self.release(conn)
            try:
                return head.status, json.loads(body) if body else None
            except ValueError as exc:
                raise UpstreamError(f"the Docker engine sent invalid JSON for {path}") from exc
        raise UpstreamError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close every pooled connection."""
        for conn in self._idle:
            conn.close()
        self._idle.clear()


def client_tls(cert_dir: Path) -> ssl.SSLContext:
    """TLS to an engine the way the docker CLI does it: ca.pem, cert.pem, key.pem."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert_dir / "ca.pem"))
    ctx.load_cert_chain(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem"))
    return ctx
