"""Chunked bodies (RFC 9112 §7.1): size lines, trailer lines, and an incremental scanner.

Either side may send a chunked body, so each function takes ``status``: 400 when
the body is a client's, 502 when it is the engine's; errors are typed to match
(:func:`~moorage.gateway.http.errors.fault`).
"""

from __future__ import annotations

import re

from moorage.gateway.http.errors import HttpError, fault
from moorage.gateway.http.grammar import FIELD, TCHAR, refuse_field_line
from moorage.gateway.http.limits import DEFAULT as _DEFAULT
from moorage.gateway.http.limits import Limits

__all__ = ["ChunkedScanner", "parse_chunk_size", "parse_trailer_line"]

_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_EXT = f"[ \\t]*;[ \\t]*[{TCHAR}]+(?:[ \\t]*=[ \\t]*(?:[{TCHAR}]+|{_QUOTED}))?"
# chunk = chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1); whitespace only as BWS
# around an extension. At most 16 hex digits, as Go reads them.
_CHUNK_SIZE = re.compile(f"([0-9A-Fa-f]{{1,16}})((?:{_EXT})*)\r\n".encode())


def parse_chunk_size(line: bytes, limits: Limits | None = None, status: int = 400) -> int:
    """The size on a chunk-size line (CRLF included). ``status`` is 400 for a
    client's body and 502 for the engine's."""
    limit = (limits or _DEFAULT).max_chunk_line
    if len(line) > limit:
        raise fault(status)(status, f"chunk-size line longer than {limit} bytes")
    m = _CHUNK_SIZE.fullmatch(line)
    if m is None:
        raise fault(status)(status, _bad_chunk_line(line))
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
        raise fault(status)(status, f"trailer line {line[:40]!r} does not end with CRLF")
    text = line[:-2].decode("latin-1")
    if FIELD.fullmatch(text) is None:
        try:
            refuse_field_line(text, "chunked trailer")
        except HttpError as exc:
            raise fault(status)(status, exc.message) from None
    return False


_SIZE, _DATA, _CRLF, _TRAILER = range(4)


class ChunkedScanner:
    """Reads chunked framing incrementally from any split of the bytes, with the
    rules of :func:`parse_chunk_size` and :func:`parse_trailer_line`. The fast path
    uses it to find where an engine's chunked answer ends while passing its bytes
    through; tests check it against the stream drivers (:mod:`.streams`)."""

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
                    raise fault(self._status)(self._status, "chunk data is not followed by CRLF")
                pos += 1
                self._remaining -= 1
                if not self._remaining:
                    self._state = _SIZE
            else:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    self._line += data[pos:]
                    if len(self._line) > self.limits.max_chunk_line:
                        raise fault(self._status)(
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
            raise fault(self._status)(
                self._status, f"trailer line longer than {self.limits.max_chunk_line} bytes"
            )
        if parse_trailer_line(line, self._status):
            self.done = True
            return
        self._trailers += 1
        if self._trailers > self.limits.max_headers:
            raise fault(self._status)(self._status, f"more than {self.limits.max_headers} trailer fields")
