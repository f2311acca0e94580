"""HTTP/1.1 framing for the gateway: request and response heads, limits, errors.

Parsing is pure (bytes in, data out) with explicit limits; body relaying works on
asyncio streams and keeps memory bounded. Errors say whose fault they are: a
client's (4xx, never forwarded) or the upstream's (502).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "HttpError",
    "Limits",
    "RequestHead",
    "ResponseHead",
    "error_response",
    "parse_request_head",
    "parse_response_head",
    "scan_response_head",
]

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


@dataclass(frozen=True)
class Limits:
    """Gateway limits. Each is a setting; these defaults are documented in docs/gateway.md."""

    max_head_bytes: int = 64 * 1024  # request line + headers
    max_headers: int = 128
    max_body_bytes: int = 16 * 1024 * 1024  # bodies the gateway must parse (create specs)
    head_timeout: float = 30.0  # from a request's first byte to its blank line
    idle_timeout: float = 600.0  # keep-alive connection with no request


_DEFAULT = Limits()


class HttpError(Exception):
    """A request the gateway refuses before it reaches the engine."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    _lower: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def get(self, name: str) -> str | None:
        return self._lower.get(name.lower())

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    @property
    def keep_alive(self) -> bool:
        conn = (self.get("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn

    @property
    def chunked(self) -> bool:
        return (self.get("transfer-encoding") or "").lower() == "chunked"

    @property
    def content_length(self) -> int:
        cl = self.get("content-length")
        return int(cl) if cl is not None else 0

    @property
    def has_body(self) -> bool:
        return self.chunked or self.content_length > 0

    def with_target(self, target: str) -> RequestHead:
        return replace(self, target=target)

    def with_body_length(self, length: int) -> RequestHead:
        """The same head for a body that is now ``length`` bytes, not chunked."""
        headers = (
            *tuple(
                (k, v) for k, v in self.headers if k.lower() not in ("content-length", "transfer-encoding")
            ),
            ("Content-Length", str(length)),
        )
        return _make_request(self.method, self.target, self.version, headers)

    def encode(self) -> bytes:
        lines = [f"{self.method} {self.target} {self.version}"]
        lines.extend(f"{k}: {v}" for k, v in self.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _make_request(
    method: str, target: str, version: str, headers: tuple[tuple[str, str], ...]
) -> RequestHead:
    lower: dict[str, str] = {}
    for k, v in headers:
        lower[k.lower()] = v
    return RequestHead(method, target, version, headers, lower)


def _parse_headers(lines: list[str], limits: Limits, who: str) -> tuple[tuple[str, str], ...]:
    if len(lines) > limits.max_headers:
        raise HttpError(431, f"too many headers ({len(lines)} > limit {limits.max_headers})")
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            raise HttpError(400, f"{who}: obsolete header line folding is not accepted")
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise HttpError(400, f"{who}: malformed header line {line[:60]!r}")
        headers.append((name, value.strip(" \t")))
    return tuple(headers)


def parse_request_head(raw: bytes, limits: Limits | None = None) -> RequestHead:
    """Parse a request head (everything up to and including the blank line)."""
    limits = limits or _DEFAULT
    if len(raw) > limits.max_head_bytes:
        raise HttpError(431, f"request head is larger than the limit of {limits.max_head_bytes} bytes")
    try:
        text = raw.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes anything
        raise HttpError(400, "request head is not text") from exc
    lines = text.split("\r\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise HttpError(400, "empty request")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise HttpError(400, f"malformed request line {lines[0][:80]!r}")
    method, target, version = parts
    if method not in _METHODS:
        raise HttpError(400 if not _TOKEN.match(method) else 405, f"unsupported method {method[:20]!r}")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505, f"unsupported protocol version {version[:20]!r}: use HTTP/1.1")
    if not target.startswith("/") or any(c in target for c in " \x00\r\n"):
        raise HttpError(400, f"malformed request target {target[:80]!r}")
    head = _make_request(method, target, version, _parse_headers(lines[1:], limits, "request"))
    # Request smuggling defences: one unambiguous body length.
    cls = [v for k, v in head.headers if k.lower() == "content-length"]
    tes = [v for k, v in head.headers if k.lower() == "transfer-encoding"]
    if len(set(cls)) > 1:
        raise HttpError(400, "conflicting Content-Length headers")
    if cls and not cls[0].isdigit():
        raise HttpError(400, f"invalid Content-Length {cls[0][:20]!r}")
    if tes and cls:
        raise HttpError(400, "both Content-Length and Transfer-Encoding are set")
    if len(tes) > 1 or (tes and tes[0].lower() != "chunked"):
        raise HttpError(501, f"unsupported Transfer-Encoding {', '.join(tes)[:40]!r}")
    return head


@dataclass(frozen=True)
class ResponseHead:
    version: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    _lower: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def get(self, name: str) -> str | None:
        return self._lower.get(name.lower())

    @property
    def chunked(self) -> bool:
        return "chunked" in (self.get("transfer-encoding") or "").lower()

    def with_header(self, name: str, value: str) -> ResponseHead:
        return ResponseHead(self.version, self.status, self.reason, (*self.headers, (name, value)),
                            {**self._lower, name.lower(): value})  # fmt: skip

    def encode(self, headers: tuple[tuple[str, str], ...] | None = None) -> bytes:
        lines = [f"{self.version} {self.status} {self.reason}"]
        lines.extend(f"{k}: {v}" for k, v in (self.headers if headers is None else headers))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_response_head(raw: bytes, limits: Limits | None = None) -> ResponseHead:
    limits = limits or _DEFAULT
    lines = raw.decode("latin-1").split("\r\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise HttpError(502, "upstream sent an empty response")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpError(502, f"upstream sent a malformed status line {lines[0][:80]!r}")
    if len(lines) > limits.max_headers:
        raise HttpError(502, f"upstream sent too many headers ({len(lines)})")
    headers = tuple((k, v.strip(" \t")) for k, _, v in (ln.partition(":") for ln in lines[1:]))
    lower = {k.lower(): v for k, v in headers}
    return ResponseHead(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers, lower)


def scan_response_head(raw: bytes, limits: Limits | None = None) -> tuple[int, str, int | None, bool]:
    """What a relay needs of a response head, without building it: (status,
    transfer-encoding, content-length, connection close). For the fast path; the
    checks are those of :func:`parse_response_head` that bear on framing."""
    limits = limits or _DEFAULT
    if (
        raw[:7] != b"HTTP/1."
        or raw[8:9] != b" "
        or not raw[9:12].isdigit()
        or raw[12:13] not in (b" ", b"\r")
    ):
        raise HttpError(502, f"upstream sent a malformed status line {raw[:80]!r}")
    if raw.count(b"\r\n") - 2 > limits.max_headers:
        raise HttpError(502, "upstream sent too many headers")
    low = raw.lower()
    te = _only(low, b"\r\ntransfer-encoding:")
    cl = _only(low, b"\r\ncontent-length:")
    conn = _only(low, b"\r\nconnection:")
    if cl is not None and not cl.isdigit():
        raise HttpError(502, f"upstream sent an invalid Content-Length {cl[:20]!r}")
    return (
        int(raw[9:12]),
        (te or b"").decode("latin-1"),
        None if cl is None else int(cl),
        b"close" in (conn or b""),
    )


def _only(low: bytes, name: bytes) -> bytes | None:
    """The value of a header that must appear at most once (``low`` is lower-cased)."""
    at = low.find(name)
    if at < 0:
        return None
    start = at + len(name)
    end = low.find(b"\r\n", start)
    if low.find(name, end) >= 0:
        raise HttpError(502, f"upstream sent {name[2:-1].decode()} twice")
    return low[start:end].strip(b" \t")


_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 409: "Conflict", 411: "Length Required",
            413: "Payload Too Large", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
            503: "Service Unavailable", 505: "HTTP Version Not Supported"}  # fmt: skip


def error_response(status: int, message: str, keep_alive: bool = True, request_id: str = "") -> bytes:
    """Docker's JSON error shape, so the CLI prints 'Error response from daemon: ...'."""
    body = json.dumps({"message": message}).encode()
    rid = f"X-Moorage-Request-Id: {request_id}\r\n" if request_id else ""
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n{rid}"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Server: moorage\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + body


# ------------------------------------------------------------------ body relay
async def _read_chunk_size(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    line = await reader.readuntil(b"\r\n")
    size_text = line.split(b";", 1)[0].strip()
    try:
        return int(size_text, 16), line
    except ValueError as exc:
        raise HttpError(400, f"malformed chunk size {size_text[:20]!r}") from exc


async def relay_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one chunked body verbatim, framing included."""
    while True:
        size, line = await _read_chunk_size(reader)
        writer.write(line)
        if size == 0:
            while True:  # trailers, then the blank line
                trailer = await reader.readuntil(b"\r\n")
                writer.write(trailer)
                if trailer == b"\r\n":
                    break
            await writer.drain()
            return
        remaining = size + 2
        while remaining:
            data = await reader.read(min(remaining, 1 << 16))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            writer.write(data)
            remaining -= len(data)
        await writer.drain()


async def relay_fixed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    while n:
        data = await reader.read(min(n, 1 << 16))
        if not data:
            raise asyncio.IncompleteReadError(b"", n)
        writer.write(data)
        n -= len(data)
        await writer.drain()


async def read_body(reader: asyncio.StreamReader, chunked: bool, length: int, limit: int) -> bytes:
    """Read a whole body into memory (de-chunked); refuse one over ``limit``."""
    if not chunked:
        if length > limit:
            raise HttpError(413, f"request body of {length} bytes is over the limit of {limit}")
        return await reader.readexactly(length)
    parts: list[bytes] = []
    total = 0
    while True:
        size, _ = await _read_chunk_size(reader)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return b"".join(parts)
        total += size
        if total > limit:
            raise HttpError(413, f"request body is over the limit of {limit} bytes")
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
