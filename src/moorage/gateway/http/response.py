"""Response heads: the engine's (checked; an :class:`UpstreamFramingFault` when broken), and
the gateway's own error answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from moorage.gateway.http.errors import UpstreamFramingFault
from moorage.gateway.http.limits import DEFAULT as _DEFAULT
from moorage.gateway.http.limits import Limits

__all__ = ["ResponseHead", "error_response", "parse_response_head", "scan_response_head"]


@dataclass(frozen=True)
class ResponseHead:
    """An engine's response head that passed :func:`parse_response_head`."""

    version: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    _lower: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def get(self, name: str) -> str | None:
        """The header's first value, or None."""
        return self._lower.get(name.lower())

    @property
    def chunked(self) -> bool:
        """The body is chunked."""
        return "chunked" in (self.get("transfer-encoding") or "").lower()  # as scan_response_head

    def with_header(self, name: str, value: str) -> ResponseHead:
        """The same head with one more header."""
        return ResponseHead(self.version, self.status, self.reason, (*self.headers, (name, value)),
                            {**self._lower, name.lower(): value})  # fmt: skip

    def encode(self, headers: tuple[tuple[str, str], ...] | None = None) -> bytes:
        """The head as bytes, through its blank line; ``headers`` replaces its own."""
        lines = [f"{self.version} {self.status} {self.reason}"]
        lines.extend(f"{k}: {v}" for k, v in (self.headers if headers is None else headers))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_response_head(raw: bytes, limits: Limits | None = None) -> ResponseHead:
    """Parse an engine's response head. Its framing is checked by
    :func:`scan_response_head`, which is all the fast path reads of it."""
    scan_response_head(raw, limits)
    lines = raw.decode("latin-1").split("\r\n")
    while lines and lines[-1] == "":
        lines.pop()
    version, _, rest = lines[0].partition(" ")
    status, _, reason = rest.partition(" ")
    headers = tuple((k, v.strip(" \t")) for k, _, v in (ln.partition(":") for ln in lines[1:]))
    lower: dict[str, str] = {}
    for k, v in headers:
        lower.setdefault(k.lower(), v)
    return ResponseHead(version, int(status), reason, headers, lower)


def scan_response_head(raw: bytes, limits: Limits | None = None) -> tuple[int, str, int | None, bool]:
    """What a relay needs of a response head, without building it: (status,
    transfer-encoding, content-length, connection close). Both paths check an
    engine's answer with this; its faults are the upstream's (502)."""
    limits = limits or _DEFAULT
    if (
        raw[:7] != b"HTTP/1."
        or raw[8:9] != b" "
        or not raw[9:12].isdigit()
        or raw[12:13] not in (b" ", b"\r")
    ):
        raise UpstreamFramingFault(502, f"upstream sent a malformed status line {raw[:80]!r}")
    if raw.count(b"\r\n") - 2 > limits.max_headers:
        raise UpstreamFramingFault(502, "upstream sent too many headers")
    low = raw.lower()
    te = _only(low, b"\r\ntransfer-encoding:")
    cl = _only(low, b"\r\ncontent-length:")
    conn = _only(low, b"\r\nconnection:")
    if cl is not None and (not cl.isdigit() or len(cl) > 18):  # bytes.isdigit: ASCII only
        raise UpstreamFramingFault(502, f"upstream sent an invalid Content-Length {cl[:20]!r}")
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
        raise UpstreamFramingFault(502, f"upstream sent {name[2:-1].decode()} twice")
    return low[start:end].strip(b" \t")


_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 409: "Conflict", 411: "Length Required",
            413: "Payload Too Large", 415: "Unsupported Media Type",
            431: "Request Header Fields Too Large",
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
