"""A small, typed Docker Engine API client over a unix socket or TCP (with TLS).

The lab needs only a handful of calls (ping, info, swarm, image load, nodes,
tasks); image trust needs inspect and export. It is deliberately tiny: one
connection per call, JSON in and out.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["EngineClient", "EngineError"]


class EngineError(Exception):
    """A Docker engine call failed: unreachable, or it answered with an error."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class EngineClient:
    """Talks to one Docker engine through its unix socket, or over TCP (``tcp``:
    host and port, with ``tls`` for an engine that requires it)."""

    def __init__(
        self,
        socket_path: str | None,
        timeout: float = 60.0,
        tcp: tuple[str, int] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if (socket_path is None) == (tcp is None):
            raise ValueError("an engine client needs a unix socket path or a TCP address, not both")
        self.socket_path = socket_path or ""
        self.tcp = tcp
        self.tls = tls
        self.timeout = timeout

    @property
    def url(self) -> str:
        """The engine's address as a ``DOCKER_HOST`` value (``unix://`` or ``tcp://``)."""
        if self.tcp is not None:
            return f"tcp://{self.tcp[0]}:{self.tcp[1]}"
        return f"unix://{self.socket_path}"

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.tcp is None:
            return _UnixConnection(self.socket_path, timeout)
        host, port = self.tcp
        if self.tls is not None:
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self.tls)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _open(
        self,
        method: str,
        path: str,
        body: bytes | IO[bytes] | None,
        headers: dict[str, str],
        timeout: float | None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = self._connection(self.timeout if timeout is None else timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            return conn, conn.getresponse()
        except OSError as exc:
            conn.close()
            raise EngineError(f"cannot reach the Docker engine at {self.url}: {exc}") from exc

    def call(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON answer (or None for an empty one)."""
        headers = dict(headers or {})
        body: bytes | None = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        conn, resp = self._open(method, path, body, headers, timeout)
        try:
            raw = resp.read()
        finally:
            conn.close()
        if resp.status >= 400:
            raise EngineError(f"{method} {path}: {resp.status} {_message(raw)}", resp.status)
        if not raw.strip():
            return None
        ctype = resp.getheader("Content-Type", "")
        if "json" not in ctype:
            return raw.decode(errors="replace")
        try:
            return json.loads(raw)
        except ValueError:
            # progress endpoints (push, pull, load) answer with JSON lines
            return [json.loads(line) for line in raw.splitlines() if line.strip()]

    def ping(self, timeout: float = 2.0) -> bool:
        """True when the engine answers ``/_ping`` with OK."""
        try:
            return bool(self.call("GET", "/_ping", timeout=timeout) == "OK")
        except (EngineError, OSError, http.client.HTTPException):
            return False

    def download(self, path: str, out: IO[bytes], *, timeout: float | None = None) -> int:
        """GET ``path`` and copy the raw answer to ``out``; returns the bytes copied."""
        conn, resp = self._open("GET", path, None, {}, timeout)
        try:
            if resp.status >= 400:
                raise EngineError(f"GET {path}: {resp.status} {_message(resp.read())}", resp.status)
            total = 0
            while block := resp.read(1 << 20):
                out.write(block)
                total += len(block)
            return total
        finally:
            conn.close()

    def stream(
        self, method: str, path: str, body: IO[bytes], length: int, content_type: str
    ) -> Iterator[dict[str, Any]]:
        """Upload ``body`` and yield the JSON progress messages the engine streams back."""
        headers = {"Content-Type": content_type, "Content-Length": str(length)}
        conn, resp = self._open(method, path, body, headers, None)
        try:
            if resp.status >= 400:
                raise EngineError(f"{method} {path}: {resp.status} {_message(resp.read())}", resp.status)
            for line in resp:
                line = line.strip()
                if line:
                    msg = json.loads(line)
                    if isinstance(msg, dict):
                        yield msg
        finally:
            conn.close()


def _message(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace").strip()
    if isinstance(doc, dict) and "message" in doc:
        return str(doc["message"])
    return raw.decode(errors="replace").strip()
