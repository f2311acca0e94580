"""Fuzzing the framing core with hypothesis, with h11 as a differential oracle.

For a generated request (head, then body bytes):
- if our parser accepts the head, h11 accepts it too, with the same method,
  target, version and headers; and if we read a whole body, h11 reads the same
  bytes (never a different body length);
- if h11 accepts, we accept the same reading or refuse.
We are stricter than h11 in many places on purpose (control characters in values,
obs-fold, Content-Length with Transfer-Encoding, HTTP versions, ...). The one place
we are more lenient is documented: RFC 9112's BWS before a chunk extension's ';'
(``5 ;ext``), which h11 refuses. We forward size lines rewritten, so the engine
never sees it.

The chunked decoder is also checked against itself: the incremental scanner over
any split of the bytes, and the stream drivers (``read_body``, ``relay_chunked``),
agree on every input."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import h11
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moorage.gateway.http import (
    ChunkedScanner,
    HttpError,
    head_length,
    parse_request_head,
    read_body,
    relay_chunked,
)

SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STATUSES = {400, 405, 415, 431, 501, 505}
BWS_EXT = re.compile(rb"(?:^|\n)[0-9A-Fa-f]+[ \t]+;")

# ------------------------------------------------------------------ the two readers
Reading = tuple[str, Any]  # ("ok", value) | ("refused", why) | ("incomplete", None)


def _h11_value(name: str, value: str) -> bytes:
    """A header value as h11 reports it: it lower-cases Transfer-Encoding's."""
    return (value.lower() if name.lower() == "transfer-encoding" else value).encode("latin-1")


def ours(data: bytes) -> tuple[Reading, Reading]:
    """(head reading, body reading) by our framing core."""
    try:
        size = head_length(data)
    except HttpError as exc:
        return ("refused", exc.status), ("refused", None)
    if size < 0:
        return ("incomplete", None), ("incomplete", None)
    try:
        head = parse_request_head(data[:size])
    except HttpError as exc:
        assert exc.status in STATUSES, exc.status
        return ("refused", exc.status), ("refused", None)
    value = (head.method, head.target, head.version[5:],
             [(k.lower().encode(), _h11_value(k, v)) for k, v in head.headers])  # fmt: skip
    rest = data[size:]
    if head.chunked:
        scanner, out = ChunkedScanner(), list[bytes]()
        try:
            scanner.feed(rest, out)
        except HttpError:
            return ("ok", value), ("refused", None)
        if not scanner.done:
            return ("ok", value), ("incomplete", None)
        return ("ok", value), ("ok", b"".join(out))
    if len(rest) < head.content_length:
        return ("ok", value), ("incomplete", None)
    return ("ok", value), ("ok", rest[: head.content_length])


def theirs(data: bytes) -> tuple[Reading, Reading]:
    """(head reading, body reading) by h11."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    conn.receive_data(data)
    head: Reading = ("incomplete", None)
    body = bytearray()
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return head, ("incomplete", None)
            if isinstance(event, h11.Request):
                head = ("ok", (event.method.decode(), event.target.decode("latin-1"),
                               event.http_version.decode(), list(event.headers)))  # fmt: skip
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return head, ("ok", bytes(body))
            else:  # pragma: no cover - nothing else comes before the end of a request
                return head, ("incomplete", None)
    except h11.RemoteProtocolError as exc:
        if head[0] == "ok":
            return head, ("refused", str(exc))
        return ("refused", str(exc)), ("refused", None)


def check_against_h11(data: bytes) -> None:
    (our_head, our_body), (h11_head, h11_body) = ours(data), theirs(data)
    if our_head[0] != "ok":
        return  # we refuse (or wait): always allowed
    assert h11_head == our_head, (data, our_head, h11_head)
    if our_body[0] == "ok":
        if h11_body[0] == "refused" and BWS_EXT.search(data[data.find(b"\r\n\r\n") + 4 :]):
            return  # RFC 9112 BWS before ';': our one documented leniency
        assert h11_body == our_body, (data, our_body, h11_body)
    if h11_body[0] == "ok" and our_body[0] != "refused":
        assert our_body == h11_body, (data, our_body, h11_body)


# ------------------------------------------------------------------ generators
TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
LATIN1 = "".join(map(chr, range(256)))
VCHARS = "".join(map(chr, range(0x21, 0x7F)))


def mostly(
    good: st.SearchStrategy[Any], *odd: st.SearchStrategy[Any], weight: int = 6
) -> st.SearchStrategy[Any]:
    """``good`` about ``weight`` times as often as each odd alternative."""
    return st.one_of(*([good] * weight), *odd)


names = mostly(
    st.sampled_from(["Content-Length", "content-length", "Transfer-Encoding", "Content-Type", "Connection",
                     "X-Registry-Auth", "Expect", "Upgrade", "User-Agent", "Accept"]),
    st.text(TCHARS, min_size=1, max_size=8),
    st.text(LATIN1, max_size=6),
    weight=3,
)  # fmt: skip
values = mostly(
    st.sampled_from(["chunked", "Chunked", " chunked ", "2", "5", "007", "application/json", "close",
                     "keep-alive", "docker", "Go-http-client/1.1", ""]),
    st.sampled_from(["gzip", "chunked, chunked", "gzip, chunked", "1, 1", "+1", "-1", "1 2", "0x1", "\u0661",
                     "\u00b2", "\uff15", "application/x-www-form-urlencoded", "multipart/form-data; b=1"]),
    st.text("0123456789", min_size=1, max_size=3),
    st.text(VCHARS + " \t\xe9", max_size=12),
    st.text(LATIN1, max_size=12),
    weight=4,
)  # fmt: skip
separators = st.sampled_from([": "] * 12 + [":", ":\t", " :", "", "::", ":  "])
line_ends = st.sampled_from(["\r\n"] * 30 + ["\n", "\r", "\r\r\n"])
methods = mostly(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]),
    st.sampled_from(["get", "BREW", "G(T", ""]),
    st.text(TCHARS + " ()", min_size=0, max_size=6),
)
targets = mostly(
    st.sampled_from(["/_ping", "/v1.41/containers/create?name=x", "/build?t=a&networkmode=host", "/a%41",
                     "//x", "/", "/containers/json?filters={%22a%22:1}"]),
    st.sampled_from(["*", "http://d/_ping", "/a#b", "/a%2", "/a%zz", "x"]),
    st.text(VCHARS, max_size=16).map(lambda t: "/" + t),
    st.text(LATIN1, max_size=16).map(lambda t: "/" + t),
    weight=4,
)  # fmt: skip
versions = st.sampled_from(["HTTP/1.1"] * 16 + ["HTTP/1.0"] * 2 + ["HTTP/2.0", "HTTP/1.2", "http/1.1",
                                                                      "HTTP/1.1 ", "HTTP/11"])  # fmt: skip


@st.composite
def chunked_bodies(draw: st.DrawFn) -> bytes:
    """A chunked body, sometimes with one thing wrong (or unusual) about it."""
    parts: list[bytes] = []
    for data in draw(st.lists(st.binary(min_size=1, max_size=20), max_size=4)):
        size = f"{len(data):x}".encode()
        size = draw(st.sampled_from([size, size.upper(), b"0" + size, size + b";a=b", size + b' ;q="x y"',
                                     size + b"\t; e", b"0x" + size, b"+" + size, size + b" ", b" " + size,
                                     size + b";", size + b";a=\x01"]))  # fmt: skip
        crlf = draw(st.sampled_from([b"\r\n"] * 10 + [b"\n", b"\r", b"XX"]))
        parts.append(size + b"\r\n" + data + crlf)
    last = draw(st.sampled_from([b"0\r\n", b"0;x\r\n", b"00\r\n", b"0\n"]))
    trailers = draw(st.lists(st.sampled_from([b"X-T: v\r\n", b"Bad\r\n", b"X : v\r\n", b"X-T:\x01\r\n"]),
                             max_size=2))  # fmt: skip
    return b"".join(parts) + last + b"".join(trailers) + draw(st.sampled_from([b"\r\n"] * 6 + [b"\n", b""]))


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    gap = st.sampled_from([" "] * 20 + ["  ", "\t"])
    text = draw(methods) + draw(gap) + draw(targets) + " " + draw(versions) + draw(line_ends)
    headers = draw(st.lists(st.tuples(names, separators, values, line_ends), max_size=5))
    if draw(st.integers(0, 9)):
        headers.insert(draw(st.integers(0, len(headers))), ("Host", ": ", "d", "\r\n"))
    for name, sep, value, end in headers:
        fold = draw(st.sampled_from([""] * 30 + [" x\r\n", "\tx\r\n"]))
        text += name + sep + value + end + fold
    raw: bytes = (text + "\r\n").encode()  # UTF-8: non-ASCII digits arrive as a client's bytes would
    body: bytes = draw(st.one_of(st.binary(max_size=12), chunked_bodies()))
    return raw + body


@st.composite
def valid_requests(draw: st.DrawFn) -> bytes:
    """Requests RFC 9112 allows, as Docker clients send them."""
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]))
    target = "/" + draw(
        st.text("abcdefghijklmnopqrstuvwxyz0123456789/._-~%?=&:@!$'()*+,;{}[]\"", max_size=20)
    )
    target = re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", target)
    lines = [
        f"{method} {target} HTTP/1.1",
        "Host: " + draw(st.sampled_from(["docker", "api.moby.localhost", ""])),
    ]
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.text(TCHARS, min_size=1, max_size=10))
        if name.lower() in ("host", "content-length", "transfer-encoding", "content-type"):
            continue
        value = draw(st.text("".join(map(chr, range(0x20, 0x7F))) + "\t\xe9\xff", max_size=12))
        lines.append(f"{name}:{draw(st.sampled_from(['', ' ', '  ', chr(9)]))}{value}")
    body = b""
    if method in ("POST", "PUT"):
        data = draw(st.binary(max_size=30))
        if draw(st.booleans()):
            lines.append(f"Content-Length: {len(data)}")
            body = data
        else:
            lines.append("Transfer-Encoding: chunked")
            cut = draw(st.integers(0, len(data)))
            for piece in (data[:cut], data[cut:]):
                if piece:
                    body += f"{len(piece):x}".encode() + b"\r\n" + piece + b"\r\n"
            body += b"0\r\n\r\n"
        lines.append("Content-Type: application/json")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@st.composite
def near_misses(draw: st.DrawFn) -> bytes:
    """A valid request with zero to two targeted changes: a header added, the
    request line changed, a line ending changed, the body replaced."""
    head, _, body = draw(valid_requests()).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    ends = [b"\r\n"] * len(lines)
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["header"] * 4 + ["line", "end", "body", "fold"]))
        if kind == "header":
            at = draw(st.integers(1, len(lines)))
            lines.insert(at, (draw(names) + draw(separators) + draw(values)).encode())
            ends.insert(at, b"\r\n")
        elif kind == "line":
            parts = lines[0].split(b" ", 2)
            if len(parts) != 3:
                continue  # an earlier change already broke the line
            method, target, version = parts
            part = draw(st.integers(0, 2))
            if part == 0:
                method = draw(methods).encode()
            elif part == 1:
                target = draw(targets).encode()
            else:
                version = draw(versions).encode()
            lines[0] = b" ".join((method, target, version))
        elif kind == "end":
            ends[draw(st.integers(0, len(ends) - 1))] = draw(st.sampled_from([b"\n", b"\r", b"\r\r\n"]))
        elif kind == "fold":
            at = draw(st.integers(1, len(lines)))
            lines.insert(at, draw(st.sampled_from([b" x", b"\tx", b" "])))
            ends.insert(at, b"\r\n")
        else:
            body = draw(st.one_of(chunked_bodies(), st.binary(max_size=12)))
    return b"".join(line + end for line, end in zip(lines, ends, strict=True)) + b"\r\n" + body


# ------------------------------------------------------------------ properties
@SETTINGS
@given(st.one_of(requests(), near_misses()))
def test_whatever_we_accept_h11_reads_the_same_way(data: bytes) -> None:
    check_against_h11(data)


@SETTINGS
@given(valid_requests())
def test_valid_requests_are_accepted_and_read_as_h11_reads_them(data: bytes) -> None:
    (our_head, our_body), (h11_head, h11_body) = ours(data), theirs(data)
    assert our_head[0] == "ok" and our_body[0] == "ok", (data, our_head, our_body)
    assert (our_head, our_body) == (h11_head, h11_body)


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_ever_raise_a_named_refusal(data: bytes) -> None:
    for raw in (data, b"GET / HTTP/1.1\r\n" + data + b"\r\n\r\n"):
        try:
            size = head_length(raw)
            if size > 0:
                parse_request_head(raw[:size])
        except HttpError as exc:
            assert exc.status in STATUSES and exc.message
        try:
            ChunkedScanner().feed(raw)
        except HttpError as exc:
            assert exc.status == 400 and exc.message


# ------------------------------------------------------------------ chunked decoder
class _Sink:
    """Stands in for a StreamWriter."""

    def __init__(self, out: bytearray) -> None:
        self.out = out

    def write(self, data: bytes) -> None:
        self.out.extend(data)

    async def drain(self) -> None:
        pass


def _size_lines(out: bytes) -> list[bytes]:
    """The chunk-size lines of a chunked body, walked by size (a chunk's data may itself
    look like a size line, so a text search is no oracle)."""
    lines, at = [], 0
    while True:
        end = out.index(b"\r\n", at)
        line = out[at:end]
        lines.append(line)
        size = int(line, 16)
        if size == 0:
            return lines
        at = end + 2 + size + 2


def _drivers(data: bytes) -> tuple[Reading, Reading]:
    """read_body's and relay_chunked's readings of ``data`` (relay: re-decoded)."""

    async def main() -> tuple[Reading, Reading]:
        results: list[Reading] = []
        for relay in (False, True):
            reader = asyncio.StreamReader()
            reader.feed_data(data)
            reader.feed_eof()
            out = bytearray()
            try:
                if relay:
                    await relay_chunked(reader, _Sink(out))  # type: ignore[arg-type]
                    # what we forward is canonical, and reads back to the same body
                    scanner, parts = ChunkedScanner(), list[bytes]()
                    assert scanner.feed(bytes(out), parts) == len(out) and scanner.done
                    assert _size_lines(bytes(out)) == [f"{len(p):x}".encode() for p in parts] + [b"0"]
                    body = b"".join(parts)
                else:
                    body = await read_body(reader, True, 0, 1 << 20)
                results.append(("ok", (body, len(data) - len(await reader.read()))))
            except HttpError:
                results.append(("refused", None))
            except asyncio.IncompleteReadError:
                results.append(("incomplete", None))
        return results[0], results[1]

    return asyncio.run(main())


@SETTINGS
@given(chunked_bodies(), st.binary(max_size=6), st.lists(st.integers(1, 8), max_size=30))
def test_the_chunked_decoder_reads_the_same_on_every_split_and_every_driver(
    body: bytes, after: bytes, splits: list[int]
) -> None:
    data = body + after
    whole, out = ChunkedScanner(), list[bytes]()
    try:
        used = whole.feed(data, out)
        reading: Reading = ("ok", (b"".join(out), used)) if whole.done else ("incomplete", None)
    except HttpError:
        reading = ("refused", None)
    # the same bytes in pieces
    pieces, pos = [], 0
    for n in splits:
        pieces.append(data[pos : pos + n])
        pos += n
    pieces.append(data[pos:])
    split, out2, used2 = ChunkedScanner(), list[bytes](), 0
    try:
        for piece in pieces:
            if split.done:
                break
            used2 += split.feed(piece, out2)
        split_reading: Reading = ("ok", (b"".join(out2), used2)) if split.done else ("incomplete", None)
    except HttpError:
        split_reading = ("refused", None)
    assert split_reading == reading
    # the stream drivers: a refusal may show as a cut stream only where the scanner
    # saw the line or data run into the end of the bytes
    for driver in _drivers(data):
        if reading[0] == "incomplete":
            assert driver[0] in ("incomplete", "refused")
        else:
            assert driver == reading, (data, driver, reading)
    # and h11, through a whole request
    check_against_h11(b"POST /x HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n" + data)
