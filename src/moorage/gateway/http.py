"""HTTP/1.1 framing for the gateway: the one framing core of both request paths.

Everything here is pure (bytes in, data out) except the three stream drivers at
the end, which apply the same pure rules to asyncio streams. The full path
(``Gateway._connection``) and the fast path (``fastpath.FastClient``) frame
requests and responses with these functions only, so they can't read a request
differently.

Request heads follow RFC 9112 strictly: anything a lenient reader (such as Go's
net/http in the engine) could take another way is refused with a 4xx that names
the problem. Limits are fields of :class:`Limits`. Errors say whose fault they
are: a client's (4xx, never forwarded) or the upstream's (502).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import IO, NoReturn
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "ChunkedScanner",
    "HttpError",
    "Limits",
    "RequestHead",
    "ResponseHead",
    "error_response",
    "head_length",
    "head_too_large",
    "iter_chunks",
    "parse_chunk_size",
    "parse_request_head",
    "parse_response_head",
    "parse_trailer_line",
    "read_body",
    "relay_chunked",
    "relay_fixed",
    "scan_response_head",
]

_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN = re.compile(f"[{_TCHAR}]+")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
# A request line as RFC 9112 §3 writes it, with an origin-form target of visible
# ASCII and no fragment ('#' is 0x23, left out of the range).
_REQUEST_LINE = re.compile(f'([{_TCHAR}]+) (/[!"$-~]*) HTTP/1\\.([01])')
# field-line = field-name ":" OWS field-value OWS; a value has no control
# characters but HTAB (obs-text, 0x80-0xFF, is allowed, as RFC 9110 §5.5 says).
_FIELD = re.compile(f"([{_TCHAR}]+):([^\\x00-\\x08\\x0a-\\x1f\\x7f]*)")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DIGITS = re.compile(r"[0-9]{1,18}")  # below 2**63, as Go's ParseUint(v, 10, 63)
# Headers that must appear at most once: each decides how the request is framed,
# routed or read, and a reader that took another copy would read another request.
_SINGLE = frozenset({"host", "content-length", "transfer-encoding", "content-type"})
# Media types whose body Go's Request.ParseForm merges into the form values the
# engine reads as query parameters (r.FormValue): policy, which reads the query,
# would not see them.
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/")


@dataclass(frozen=True)
class Limits:
    """Gateway limits. Each is a setting; these defaults are documented in docs/gateway.md."""

    max_head_bytes: int = 64 * 1024  # request line + headers
    max_headers: int = 128  # header fields in a head; trailer fields in a chunked body
    max_body_bytes: int = 16 * 1024 * 1024  # bodies the gateway must parse (create specs)
    max_chunk_line: int = 4096  # a chunk-size or trailer line (Go's net/http has the same)
    max_archive_bytes: int = 64 << 30  # an image archive spooled to disk before it is loaded
    head_timeout: float = 30.0  # from a request's first byte to its blank line; TLS handshake
    idle_timeout: float = 600.0  # keep-alive connection with no request


_DEFAULT = Limits()


class HttpError(Exception):
    """A request the gateway refuses before it reaches the engine (4xx), or an
    answer the engine broke (502)."""

    def __init__(self, status: int, message: str, engine_words: bool = False) -> None:
        """``engine_words``: the message is worded as the engine words that answer (a
        "No such container" for an object the caller may not see), so it goes out as
        it is; any other refusal is prefixed ``moorage:``, so people know who said no."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.engine_words = engine_words


# ------------------------------------------------------------------ request heads
@dataclass(frozen=True)
class RequestHead:
    """A request head that passed :func:`parse_request_head`."""

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    _lower: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def get(self, name: str) -> str | None:
        """The header's first value, as Go's ``Header.Get`` reads it (``Connection``
        values are joined: any of them may say close)."""
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
            return "keep-alive" in conn and "close" not in conn
        return "close" not in conn

    @property
    def chunked(self) -> bool:
        return (self.get("transfer-encoding") or "").lower() == "chunked"

    @property
    def content_length(self) -> int:
        cl = self.get("content-length")
        return int(cl) if cl is not None else 0  # ASCII digits: parse_request_head checked

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

    def with_json_body(self, length: int) -> RequestHead:
        """The head for a JSON body Moorage wrote. The client's Content-Type stays (the
        engine judges it as it would direct); a body the client didn't send is typed."""
        typed = any(k.lower() == "content-type" for k, _ in self.headers)
        framing = ("content-length", "transfer-encoding")
        kept = tuple((k, v) for k, v in self.headers if k.lower() not in framing)
        headers = (
            *kept,
            *(() if typed else (("Content-Type", "application/json"),)),
            ("Content-Length", str(length)),
        )
        return _make_request(self.method, self.target, self.version, headers)

    def encode(self) -> bytes:
        lines = [f"{self.method} {self.target} {self.version}"]
        lines.extend(f"{k}: {v}" for k, v in self.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    @classmethod
    def salvage(cls, raw: bytes) -> RequestHead:
        """What can be read of a head that was refused (for its audit record): the
        method and target of its first line, printable and cut short."""
        first = raw.split(b"\n", 1)[0].split(b"\r", 1)[0]
        parts = first.decode("latin-1").split(" ")
        method = _printable(parts[0][:16]) if parts[0] else "-"
        target = _printable(parts[1][:512]) if len(parts) > 1 and parts[1] else "-"
        return cls(method, target, "HTTP/1.1", ())


def _printable(text: str) -> str:
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if " " <= c < "\x7f" else f"\\x{ord(c):02x}" for c in text)


def _make_request(
    method: str, target: str, version: str, headers: tuple[tuple[str, str], ...]
) -> RequestHead:
    lower: dict[str, str] = {}
    for k, v in headers:
        lower.setdefault(k.lower(), v)
    return RequestHead(method, target, version, headers, lower)


def head_length(buf: bytes | bytearray, limits: Limits | None = None) -> int:
    """The length of the request head at the start of ``buf``, through its blank
    line; -1 while it is incomplete. Raises 431 when the head is, or can only
    become, longer than the limit. (The full path reads the same way with
    ``StreamReader.readuntil(b"\\r\\n\\r\\n")`` bounded by the same limit.)"""
    limit = (limits or _DEFAULT).max_head_bytes
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > limit:
            raise head_too_large(limits)
        return -1
    if end + 4 > limit:
        raise head_too_large(limits)
    return end + 4


def head_too_large(limits: Limits | None = None) -> HttpError:
    """The error for a request head over the limit (both paths give this one)."""
    limit = (limits or _DEFAULT).max_head_bytes
    return HttpError(431, f"request head is larger than the limit of {limit} bytes")


def parse_request_head(raw: bytes, limits: Limits | None = None) -> RequestHead:
    """Parse a request head (everything up to and including the blank line),
    strictly as RFC 9112 writes it; refuse anything else with an HttpError that
    names the problem."""
    limits = limits or _DEFAULT
    size = len(raw)
    if size > limits.max_head_bytes:
        raise head_too_large(limits)
    if raw.find(b"\r\n\r\n") != size - 4:
        raise HttpError(400, "request head does not end with its first blank line")
    # What may appear nowhere in a head, checked once over the bytes.
    if b"\x00" in raw:
        raise HttpError(400, "request head contains a NUL byte")
    crlf = raw.count(b"\r\n")
    if raw.count(b"\n") != crlf:
        raise HttpError(400, "request head has a bare LF: lines must end with CRLF")
    if raw.count(b"\r") != crlf:
        raise HttpError(400, "request head has a bare CR: lines must end with CRLF")
    lines = raw[:-4].decode("latin-1").split("\r\n")
    if len(lines) - 1 > limits.max_headers:
        raise HttpError(431, f"too many headers ({len(lines) - 1} > limit {limits.max_headers})")
    m = _REQUEST_LINE.fullmatch(lines[0])
    if m is None:
        _refuse_request_line(lines[0])
    method, target, minor = m.group(1, 2, 3)
    if method not in _METHODS:
        raise HttpError(405, f"unsupported method {method[:20]!r}")
    if "%" in target and _BAD_PERCENT.search(target.partition("?")[0]):
        raise HttpError(400, f"request path {target[:80]!r} has a '%' that is not followed by two hex digits")
    version = "HTTP/1.1" if minor == "1" else "HTTP/1.0"
    headers: list[tuple[str, str]] = []
    lower: dict[str, str] = {}
    for line in lines[1:]:
        fm = _FIELD.fullmatch(line)
        if fm is None:
            _refuse_field_line(line, "request")
        name, value = fm.group(1), fm.group(2).strip(" \t")
        headers.append((name, value))
        lname = name.lower()
        if lname not in lower:
            lower[lname] = value
        elif lname in _SINGLE:
            raise HttpError(400, f"the {name} header appears more than once; send it once")
        elif lname == "connection":
            lower[lname] += ", " + value
    _check_framing(version, lower)
    return RequestHead(method, target, version, tuple(headers), lower)


def _check_framing(version: str, lower: dict[str, str]) -> None:
    """One unambiguous body length, and a body only the engine's form reader can't misread."""
    if version == "HTTP/1.1" and "host" not in lower:
        raise HttpError(400, "HTTP/1.1 request without a Host header (RFC 9112 §3.2): send one")
    cl = lower.get("content-length")
    te = lower.get("transfer-encoding")
    if cl is not None:
        if te is not None:
            raise HttpError(400, "both Content-Length and Transfer-Encoding are set; send only one")
        if _DIGITS.fullmatch(cl) is None:
            raise HttpError(400, _bad_length(cl))
    if te is not None:
        if version == "HTTP/1.0":
            raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request; use HTTP/1.1 or Content-Length")
        if te.lower() != "chunked":
            if "," in te or not _TOKEN.fullmatch(te):
                raise HttpError(400, f"Transfer-Encoding {te[:40]!r} is not accepted: send only 'chunked'")
            raise HttpError(501, f"unsupported Transfer-Encoding {te[:40]!r}: send only 'chunked'")
    ctype = lower.get("content-type")
    if ctype is not None:
        if not ctype.isascii():
            # Go's mime.ParseMediaType lower-cases and trims with Unicode rules (U+00A0 is
            # space to it, U+0130 lowers to i): a type that only Unicode makes a form type
            # would reach the engine's form reader. Types are ASCII; refuse anything else.
            raise HttpError(415, f"the Content-Type {ctype[:60]!r} holds non-ASCII bytes: send an ASCII "
                                 "media type")  # fmt: skip
        lowered = ctype.lower()
        for part in lowered.split(","):
            media = part.split(";", 1)[0].strip(" \t")
            if media == _FORM_TYPES[0] or media.startswith(_FORM_TYPES[1]):
                raise HttpError(
                    415,
                    f"a request body of type {media[:60]!r} is not accepted: the engine would read "
                    "its fields as query parameters that policy never saw. Send parameters in "
                    "the query string, and JSON bodies as application/json",
                )


def _bad_length(cl: str) -> str:
    what = repr(cl[:20])
    if "," in cl:
        why = "is a list; send one number"
    elif not cl.isascii():
        why = "has characters that are not ASCII digits"
    elif cl[:1] in "+-" and cl:
        why = "has a sign"
    elif any(c in cl for c in " \t"):
        why = "has whitespace inside"
    elif cl.isdigit():
        why = "is too large"
    else:
        why = "is not a decimal number"
    return f"invalid Content-Length {what}: it {why}"


def _refuse_request_line(line: str) -> NoReturn:
    """Name what is wrong with a request line that failed the grammar."""
    shown = repr(line[:80])
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise HttpError(400, f"malformed request line {shown}: expected 'METHOD /path HTTP/1.1'")
    method, target, version = parts
    if not _TOKEN.fullmatch(method):
        raise HttpError(400, f"malformed request line {shown}: the method is not a token")
    if not re.fullmatch(r"HTTP/[0-9]\.[0-9]", version):
        raise HttpError(400, f"malformed protocol version {version[:20]!r}: use HTTP/1.1")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise HttpError(505, f"unsupported protocol version {version[:20]!r}: use HTTP/1.1")
    shown = repr(target[:80])
    if any(not "!" <= c <= "~" for c in target):
        raise HttpError(400, f"request target {shown} has bytes outside visible ASCII: percent-encode them")
    if "#" in target:
        raise HttpError(
            400, f"request target {shown} has a fragment ('#'): percent-encode it or leave it out"
        )
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", target):
        raise HttpError(400, f"request target {shown} is in absolute form: send only the path and query")
    raise HttpError(400, f"malformed request target {shown}: it must be a path starting with '/'")


def _refuse_field_line(line: str, who: str) -> NoReturn:
    """Name what is wrong with a header (or trailer) line that failed the grammar."""
    shown = repr(line[:60])
    if line[:1] in (" ", "\t"):
        raise HttpError(400, f"{who}: obsolete header line folding is not accepted ({shown})")
    name, sep, _ = line.partition(":")
    if not sep:
        raise HttpError(400, f"{who}: malformed header line {shown} (no colon)")
    if name != name.rstrip(" \t") and name.strip(" \t"):
        raise HttpError(400, f"{who}: whitespace between header name and colon in {shown}")
    if not _TOKEN.fullmatch(name):
        raise HttpError(400, f"{who}: header name {name[:40]!r} is not a token")
    raise HttpError(400, f"{who}: header {name[:40]!r} has a control character in its value")


# ------------------------------------------------------------------ chunked bodies
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_EXT = f"[ \\t]*;[ \\t]*[{_TCHAR}]+(?:[ \\t]*=[ \\t]*(?:[{_TCHAR}]+|{_QUOTED}))?"
# chunk = chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1); whitespace only as BWS
# around an extension. At most 16 hex digits, as Go reads them.
_CHUNK_SIZE = re.compile(f"([0-9A-Fa-f]{{1,16}})((?:{_EXT})*)\r\n".encode())


def parse_chunk_size(line: bytes, limits: Limits | None = None, status: int = 400) -> int:
    """The size on a chunk-size line (CRLF included). ``status`` is 400 for a
    client's body and 502 for the engine's."""
    limit = (limits or _DEFAULT).max_chunk_line
    if len(line) > limit:
        raise HttpError(status, f"chunk-size line longer than {limit} bytes")
    m = _CHUNK_SIZE.fullmatch(line)
    if m is None:
        raise HttpError(status, _bad_chunk_line(line))
    return int(m.group(1), 16)


def _bad_chunk_line(line: bytes) -> str:
    shown = repr(line[:40])
    if not line.endswith(b"\r\n") or b"\r" in line[:-2] or b"\n" in line[:-2]:
        return f"chunk-size line {shown} does not end with CRLF"
    size = line[:-2].split(b";", 1)[0]
    if size[:2].lower() == b"0x":
        return f"chunk size {shown} has a '0x' prefix: write hex digits only"
    if size[:1] in (b"+", b"-"):
        return f"chunk size {shown} has a sign: write hex digits only"
    if size.strip(b" \t") != size and b";" not in line:
        return f"chunk-size line {shown} has whitespace around the size"
    digits = size.rstrip(b" \t")
    if digits and all(c in b"0123456789abcdefABCDEF" for c in digits) and len(digits) > 16:
        return f"chunk size {shown} is too large"
    return f"malformed chunk-size line {shown}: expected hex digits, optional ';' extensions, CRLF"


def parse_trailer_line(line: bytes, status: int = 400) -> bool:
    """Check one line of a chunked body's trailer section (CRLF included): True for
    the blank line that ends the body. Trailer fields follow the header-field rules."""
    if line == b"\r\n":
        return True
    if not line.endswith(b"\r\n") or b"\r" in line[:-2] or b"\n" in line[:-2] or b"\x00" in line:
        raise HttpError(status, f"trailer line {line[:40]!r} does not end with CRLF")
    text = line[:-2].decode("latin-1")
    if _FIELD.fullmatch(text) is None:
        try:
            _refuse_field_line(text, "chunked trailer")
        except HttpError as exc:
            raise HttpError(status, exc.message) from None
    return False


_SIZE, _DATA, _CRLF, _TRAILER = range(4)


class ChunkedScanner:
    """Reads chunked framing incrementally from any split of the bytes, with the
    rules of :func:`parse_chunk_size` and :func:`parse_trailer_line`. The fast path
    uses it to find where an engine's chunked answer ends while passing its bytes
    through; tests check it against the stream drivers below."""

    __slots__ = ("_line", "_remaining", "_state", "_status", "_trailers", "done", "limits")

    def __init__(self, limits: Limits | None = None, status: int = 400) -> None:
        self.limits = limits or _DEFAULT
        self._status = status
        self._line = bytearray()
        self._state = _SIZE
        self._remaining = 0
        self._trailers = 0
        self.done = False

    def reset(self) -> None:
        """Ready for the next body."""
        self._line.clear()
        self._state, self._remaining, self._trailers, self.done = _SIZE, 0, 0, False

    def feed(self, data: bytes, out: list[bytes] | None = None) -> int:
        """Read ``data``; return how many of its bytes belong to the body (all of
        them unless the body ended inside it). Chunk data goes to ``out``."""
        pos, n = 0, len(data)
        while pos < n and not self.done:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, n - pos)
                if out is not None:
                    out.append(data[pos : pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state, self._remaining = _CRLF, 2
            elif state == _CRLF:
                if data[pos] != b"\r\n"[2 - self._remaining]:
                    raise HttpError(self._status, "chunk data is not followed by CRLF")
                pos += 1
                self._remaining -= 1
                if not self._remaining:
                    self._state = _SIZE
            else:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    self._line += data[pos:]
                    if len(self._line) > self.limits.max_chunk_line:
                        raise HttpError(
                            self._status, f"chunk line longer than {self.limits.max_chunk_line} bytes"
                        )
                    return n
                if self._line:
                    self._line += data[pos : nl + 1]
                    line = bytes(self._line)
                    self._line.clear()
                else:
                    line = data[pos : nl + 1]
                pos = nl + 1
                self._line_done(line)
        return pos

    def _line_done(self, line: bytes) -> None:
        if self._state == _SIZE:
            size = parse_chunk_size(line, self.limits, self._status)
            if size:
                self._state, self._remaining = _DATA, size
            else:
                self._state = _TRAILER
            return
        if len(line) > self.limits.max_chunk_line:
            raise HttpError(self._status, f"trailer line longer than {self.limits.max_chunk_line} bytes")
        if parse_trailer_line(line, self._status):
            self.done = True
            return
        self._trailers += 1
        if self._trailers > self.limits.max_headers:
            raise HttpError(self._status, f"more than {self.limits.max_headers} trailer fields")


# ------------------------------------------------------------------ response heads
@dataclass(frozen=True)
class ResponseHead:
    """An engine's response head that passed :func:`parse_response_head`."""

    version: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    _lower: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def get(self, name: str) -> str | None:
        return self._lower.get(name.lower())

    @property
    def chunked(self) -> bool:
        return "chunked" in (self.get("transfer-encoding") or "").lower()  # as scan_response_head

    def with_header(self, name: str, value: str) -> ResponseHead:
        return ResponseHead(self.version, self.status, self.reason, (*self.headers, (name, value)),
                            {**self._lower, name.lower(): value})  # fmt: skip

    def encode(self, headers: tuple[tuple[str, str], ...] | None = None) -> bytes:
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
        raise HttpError(502, f"upstream sent a malformed status line {raw[:80]!r}")
    if raw.count(b"\r\n") - 2 > limits.max_headers:
        raise HttpError(502, "upstream sent too many headers")
    low = raw.lower()
    te = _only(low, b"\r\ntransfer-encoding:")
    cl = _only(low, b"\r\ncontent-length:")
    conn = _only(low, b"\r\nconnection:")
    if cl is not None and (not cl.isdigit() or len(cl) > 18):  # bytes.isdigit: ASCII only
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


# ------------------------------------------------------------------ stream drivers
# The same rules as ChunkedScanner, on asyncio streams. ``status`` is 400 when the
# body is a client's and 502 when it is the engine's.
async def _chunk_line(reader: asyncio.StreamReader, limits: Limits, status: int) -> bytes:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as exc:
        raise HttpError(status, f"chunk line longer than {limits.max_chunk_line} bytes") from exc
    if len(line) > limits.max_chunk_line:
        raise HttpError(status, f"chunk line longer than {limits.max_chunk_line} bytes")
    return line


async def _chunk_end(reader: asyncio.StreamReader, status: int) -> None:
    if await reader.readexactly(2) != b"\r\n":
        raise HttpError(status, "chunk data is not followed by CRLF")


async def _trailers(reader: asyncio.StreamReader, limits: Limits, status: int) -> list[bytes]:
    lines: list[bytes] = []
    while True:
        line = await _chunk_line(reader, limits, status)
        if parse_trailer_line(line, status):
            return lines
        lines.append(line)
        if len(lines) > limits.max_headers:
            raise HttpError(status, f"more than {limits.max_headers} trailer fields")


async def relay_chunked(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    limits: Limits | None = None,
    status: int = 400,
) -> None:
    """Copy one chunked body, checking its framing. Size lines are written anew
    (hex size, no extensions), so the receiver reads exactly what was checked."""
    limits = limits or _DEFAULT
    while True:
        size = parse_chunk_size(await _chunk_line(reader, limits, status), limits, status)
        writer.write(b"%x\r\n" % size)
        if size == 0:
            writer.write(b"".join(await _trailers(reader, limits, status)) + b"\r\n")
            await writer.drain()
            return
        remaining = size
        while remaining:
            data = await reader.read(min(remaining, 1 << 16))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            writer.write(data)
            remaining -= len(data)
        await _chunk_end(reader, status)
        writer.write(b"\r\n")
        await writer.drain()


async def iter_chunks(
    reader: asyncio.StreamReader, limits: Limits | None = None, status: int = 400
) -> AsyncIterator[bytes]:
    """The data of one chunked body as it arrives, its framing checked; the trailer
    section is read and dropped. For relays that rewrite a body as it streams."""
    limits = limits or _DEFAULT
    while True:
        size = parse_chunk_size(await _chunk_line(reader, limits, status), limits, status)
        if size == 0:
            await _trailers(reader, limits, status)
            return
        remaining = size
        while remaining:
            data = await reader.read(min(remaining, 1 << 16))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(data)
            yield data
        await _chunk_end(reader, status)


async def relay_fixed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    """Copy ``n`` body bytes."""
    while n:
        data = await reader.read(min(n, 1 << 16))
        if not data:
            raise asyncio.IncompleteReadError(b"", n)
        writer.write(data)
        n -= len(data)
        await writer.drain()


async def spool_body(
    reader: asyncio.StreamReader,
    chunked: bool,
    length: int,
    out: IO[bytes],
    limit: int,
    limits: Limits | None = None,
) -> int:
    """Copy a request body (de-chunked) into ``out``; refuse one over ``limit``.
    Returns its size."""
    total = 0

    async def pieces() -> AsyncIterator[bytes]:
        remaining = length
        while remaining:
            data = await reader.read(min(remaining, 1 << 16))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(data)
            yield data

    if not chunked and length > limit:
        raise HttpError(413, f"request body of {length} bytes is over the limit of {limit}")
    async for data in iter_chunks(reader, limits) if chunked else pieces():
        total += len(data)
        if total > limit:
            raise HttpError(413, f"request body is over the limit of {limit} bytes")
        out.write(data)
    return total


async def read_body(
    reader: asyncio.StreamReader,
    chunked: bool,
    length: int,
    limit: int,
    limits: Limits | None = None,
    status: int = 400,
) -> bytes:
    """Read a whole body into memory (de-chunked); refuse one over ``limit``."""
    if not chunked:
        if length > limit:
            raise HttpError(413, f"request body of {length} bytes is over the limit of {limit}")
        return await reader.readexactly(length)
    parts: list[bytes] = []
    total = 0
    async for data in iter_chunks(reader, limits, status):
        total += len(data)
        if total > limit:
            raise HttpError(413, f"request body is over the limit of {limit} bytes")
        parts.append(data)
    return b"".join(parts)
