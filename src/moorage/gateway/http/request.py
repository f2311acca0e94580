"""Request heads: find one in a buffer, parse it strictly (RFC 9112), and the result.

Everything a lenient reader (such as Go's net/http in the engine) could take
another way is refused with a :class:`ClientFault` whose message names the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import NoReturn
from urllib.parse import parse_qs, urlsplit

from moorage.gateway.http.errors import ClientFault
from moorage.gateway.http.grammar import FIELD, TCHAR, TOKEN, refuse_field_line
from moorage.gateway.http.limits import DEFAULT as _DEFAULT
from moorage.gateway.http.limits import Limits

__all__ = ["RequestHead", "head_length", "head_too_large", "parse_request_head"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
# A request line as RFC 9112 §3 writes it, with an origin-form target of visible
# ASCII and no fragment ('#' is 0x23, left out of the range).
_REQUEST_LINE = re.compile(f'([{TCHAR}]+) (/[!"$-~]*) HTTP/1\\.([01])')
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DIGITS = re.compile(r"[0-9]{1,18}")  # below 2**63, as Go's ParseUint(v, 10, 63)
# Headers that must appear at most once: each decides how the request is framed,
# routed or read, and a reader that took another copy would read another request.
_SINGLE = frozenset({"host", "content-length", "transfer-encoding", "content-type"})
# Media types whose body Go's Request.ParseForm merges into the form values the
# engine reads as query parameters (r.FormValue): policy, which reads the query,
# would not see them.
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/")


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
        """The target's path, without the query (still percent-encoded)."""
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, list[str]]:
        """The target's query parameters, every value of each."""
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    @property
    def keep_alive(self) -> bool:
        """The connection stays open after this request (HTTP/1.0 only when asked)."""
        conn = (self.get("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn and "close" not in conn
        return "close" not in conn

    @property
    def chunked(self) -> bool:
        """The body is chunked (the only Transfer-Encoding that passes the parser)."""
        return (self.get("transfer-encoding") or "").lower() == "chunked"

    @property
    def content_length(self) -> int:
        """The Content-Length, 0 when there is none."""
        cl = self.get("content-length")
        return int(cl) if cl is not None else 0  # ASCII digits: parse_request_head checked

    @property
    def has_body(self) -> bool:
        """The request has a body to read."""
        return self.chunked or self.content_length > 0

    def with_target(self, target: str) -> RequestHead:
        """The same head for another target."""
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
        """The head as bytes to send, through its blank line."""
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


def head_too_large(limits: Limits | None = None) -> ClientFault:
    """The error for a request head over the limit (both paths give this one)."""
    limit = (limits or _DEFAULT).max_head_bytes
    return ClientFault(431, f"request head is larger than the limit of {limit} bytes")


def parse_request_head(raw: bytes, limits: Limits | None = None) -> RequestHead:
    """Parse a request head (everything up to and including the blank line),
    strictly as RFC 9112 writes it; refuse anything else with a ClientFault that
    names the problem."""
    limits = limits or _DEFAULT
    size = len(raw)
    if size > limits.max_head_bytes:
        raise head_too_large(limits)
    if raw.find(b"\r\n\r\n") != size - 4:
        raise ClientFault(400, "request head does not end with its first blank line")
    # What may appear nowhere in a head, checked once over the bytes.
    if b"\x00" in raw:
        raise ClientFault(400, "request head contains a NUL byte")
    crlf = raw.count(b"\r\n")
    if raw.count(b"\n") != crlf:
        raise ClientFault(400, "request head has a bare LF: lines must end with CRLF")
    if raw.count(b"\r") != crlf:
        raise ClientFault(400, "request head has a bare CR: lines must end with CRLF")
    lines = raw[:-4].decode("latin-1").split("\r\n")
    if len(lines) - 1 > limits.max_headers:
        raise ClientFault(431, f"too many headers ({len(lines) - 1} > limit {limits.max_headers})")
    m = _REQUEST_LINE.fullmatch(lines[0])
    if m is None:
        _refuse_request_line(lines[0])
    method, target, minor = m.group(1, 2, 3)
    if method not in _METHODS:
        raise ClientFault(405, f"unsupported method {method[:20]!r}")
    if "%" in target and _BAD_PERCENT.search(target.partition("?")[0]):
        raise ClientFault(
            400, f"request path {target[:80]!r} has a '%' that is not followed by two hex digits"
        )
    version = "HTTP/1.1" if minor == "1" else "HTTP/1.0"
    headers: list[tuple[str, str]] = []
    lower: dict[str, str] = {}
    for line in lines[1:]:
        fm = FIELD.fullmatch(line)
        if fm is None:
            refuse_field_line(line, "request")
        name, value = fm.group(1), fm.group(2).strip(" \t")
        headers.append((name, value))
        lname = name.lower()
        if lname not in lower:
            lower[lname] = value
        elif lname in _SINGLE:
            raise ClientFault(400, f"the {name} header appears more than once; send it once")
        elif lname == "connection":
            lower[lname] += ", " + value
    _check_framing(version, lower)
    return RequestHead(method, target, version, tuple(headers), lower)


def _check_framing(version: str, lower: dict[str, str]) -> None:
    """One unambiguous body length, and a body only the engine's form reader can't misread."""
    if version == "HTTP/1.1" and "host" not in lower:
        raise ClientFault(400, "HTTP/1.1 request without a Host header (RFC 9112 §3.2): send one")
    cl = lower.get("content-length")
    te = lower.get("transfer-encoding")
    if cl is not None:
        if te is not None:
            raise ClientFault(400, "both Content-Length and Transfer-Encoding are set; send only one")
        if _DIGITS.fullmatch(cl) is None:
            raise ClientFault(400, _bad_length(cl))
    if te is not None:
        if version == "HTTP/1.0":
            raise ClientFault(400, "Transfer-Encoding in an HTTP/1.0 request; use HTTP/1.1 or Content-Length")
        if te.lower() != "chunked":
            if "," in te or not TOKEN.fullmatch(te):
                raise ClientFault(400, f"Transfer-Encoding {te[:40]!r} is not accepted: send only 'chunked'")
            raise ClientFault(501, f"unsupported Transfer-Encoding {te[:40]!r}: send only 'chunked'")
    ctype = lower.get("content-type")
    if ctype is not None:
        if not ctype.isascii():
            # Go's mime.ParseMediaType lower-cases and trims with Unicode rules (U+00A0 is
            # space to it, U+0130 lowers to i): a type that only Unicode makes a form type
            # would reach the engine's form reader. Types are ASCII; refuse anything else.
            raise ClientFault(415, f"the Content-Type {ctype[:60]!r} holds non-ASCII bytes: send an ASCII "
                                 "media type")  # fmt: skip
        lowered = ctype.lower()
        for part in lowered.split(","):
            media = part.split(";", 1)[0].strip(" \t")
            if media == _FORM_TYPES[0] or media.startswith(_FORM_TYPES[1]):
                raise ClientFault(
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
        raise ClientFault(400, f"malformed request line {shown}: expected 'METHOD /path HTTP/1.1'")
    method, target, version = parts
    if not TOKEN.fullmatch(method):
        raise ClientFault(400, f"malformed request line {shown}: the method is not a token")
    if not re.fullmatch(r"HTTP/[0-9]\.[0-9]", version):
        raise ClientFault(400, f"malformed protocol version {version[:20]!r}: use HTTP/1.1")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise ClientFault(505, f"unsupported protocol version {version[:20]!r}: use HTTP/1.1")
    shown = repr(target[:80])
    if any(not "!" <= c <= "~" for c in target):
        raise ClientFault(400, f"request target {shown} has bytes outside visible ASCII: percent-encode them")
    if "#" in target:
        raise ClientFault(
            400, f"request target {shown} has a fragment ('#'): percent-encode it or leave it out"
        )
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", target):
        raise ClientFault(400, f"request target {shown} is in absolute form: send only the path and query")
    raise ClientFault(400, f"malformed request target {shown}: it must be a path starting with '/'")
