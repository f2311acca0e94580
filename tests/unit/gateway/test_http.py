from __future__ import annotations

import asyncio
import json

import pytest

from moorage.gateway.http import (
    ChunkedScanner,
    HttpError,
    Limits,
    RequestHead,
    error_response,
    head_length,
    iter_chunks,
    parse_chunk_size,
    parse_request_head,
    parse_response_head,
    read_body,
    relay_chunked,
    scan_response_head,
)


def head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def test_parses_a_docker_request() -> None:
    h = parse_request_head(head("POST /v1.41/containers/create?name=x HTTP/1.1", "Host: docker",
                                "Content-Length: 12", "Content-Type: application/json"))  # fmt: skip
    assert h.method == "POST" and h.path == "/v1.41/containers/create"
    assert h.query == {"name": ["x"]} and h.content_length == 12 and h.keep_alive


def test_what_rfc_9112_allows_is_accepted() -> None:
    h = parse_request_head(head("GET /a%20b?x=%7B%22a%22%7D HTTP/1.1", "Host:", "X-Obs: caf\xe9",
                                "X-Tab:\tone\ttwo\t ", "Transfer-Encoding: Chunked"))  # fmt: skip
    assert h.get("x-obs") == "caf\xe9" and h.get("x-tab") == "one\ttwo" and h.chunked
    # HTTP/1.0 needs no Host; a first value is the one read, as Go's Header.Get reads it
    h = parse_request_head(
        head("GET /x HTTP/1.0", "X-A: 1", "x-a: 2", "Connection: keep-alive", "Connection: close")
    )
    assert h.version == "HTTP/1.0" and h.get("X-A") == "1" and not h.keep_alive


# fmt: off
MALFORMED = [
    # request line
    (head("GET /x"), 400, "malformed request line"),
    (head("GET  /x HTTP/1.1", "Host: d"), 400, "malformed request line"),
    (head("GET /x HTTP/1.1 ", "Host: d"), 400, "malformed request line"),
    (head("G(T /x HTTP/1.1", "Host: d"), 400, "not a token"),
    (head("BREW /x HTTP/1.1", "Host: d"), 405, "unsupported method"),
    (head("GET /x HTTP/2.0"), 505, "protocol version"),
    (head("GET /x HTTP/1.2", "Host: d"), 505, "protocol version"),
    (head("GET /x http/1.1", "Host: d"), 400, "malformed protocol version"),
    (head("GET x HTTP/1.1", "Host: d"), 400, "must be a path starting with '/'"),
    (head("OPTIONS * HTTP/1.1", "Host: d"), 400, "must be a path starting with '/'"),
    (head("GET http://d/_ping HTTP/1.1", "Host: d"), 400, "absolute form"),
    (head("GET /x#frag HTTP/1.1", "Host: d"), 400, "fragment"),
    (head("GET /caf\xe9 HTTP/1.1", "Host: d"), 400, "outside visible ASCII"),
    (head("GET /a\x7fb HTTP/1.1", "Host: d"), 400, "outside visible ASCII"),
    (head("GET /a%2 HTTP/1.1", "Host: d"), 400, "two hex digits"),
    (head("GET /a%zz HTTP/1.1", "Host: d"), 400, "two hex digits"),
    # bytes that may appear nowhere
    (b"GET /x HTTP/1.1\r\nHost: d\r\nX: a\x00b\r\n\r\n", 400, "NUL"),
    (b"GET /x HTTP/1.1\r\nHost: d\nX: y\r\n\r\n", 400, "bare LF"),
    (b"GET /x HTTP/1.1\nHost: d\r\n\r\n", 400, "bare LF"),
    (b"GET /x HTTP/1.1\r\nHost: d\rX: y\r\n\r\n", 400, "bare CR"),
    (b"GET /x\r HTTP/1.1\r\nHost: d\r\n\r\n", 400, "bare CR"),
    # header lines
    (head("GET /x HTTP/1.1", "Host: d", "Bad Header"), 400, "no colon"),
    (head("GET /x HTTP/1.1", "Host: d", " folded"), 400, "folding"),
    (head("GET /x HTTP/1.1", "Host: d", "X-A: 1", "\tfolded"), 400, "folding"),
    (head("GET /x HTTP/1.1", "Host : d"), 400, "whitespace between header name and colon"),
    (head("GET /x HTTP/1.1", "Host\t: d"), 400, "whitespace between header name and colon"),
    (head("GET /x HTTP/1.1", "Host: d", "X(y): z"), 400, "not a token"),
    (head("GET /x HTTP/1.1", "Host: d", ": empty"), 400, "not a token"),
    (head("GET /x HTTP/1.1", "Host: d", "X-A: a\x01b"), 400, "control character"),
    (head("GET /x HTTP/1.1", "Host: d", "X-A: a\x7fb"), 400, "control character"),
    # Host
    (head("GET /x HTTP/1.1"), 400, "without a Host header"),
    (head("GET /x HTTP/1.1", "Host: a", "host: b"), 400, "more than once"),
    # Content-Length
    (head("POST /x HTTP/1.1", "Host: d", "Content-Length: 1", "Content-Length: 2"), 400, "more than once"),
    (head("POST /x HTTP/1.1", "Host: d", "Content-Length: 1", "Content-Length: 1"), 400, "more than once"),
    (head("POST /x HTTP/1.1", "Host: d", "Content-Length: 1, 1"), 400, "is a list"),
    (head("POST /x HTTP/1.1", "Host: d", "Content-Length: -1"), 400, "has a sign"),
    (head("POST /x HTTP/1.1", "Host: d", "Content-Length: +1"), 400, "has a sign"),
    (head("POST /x HTTP/1.1", "Host: d", "Content-Length: 1 2"), 400, "whitespace inside"),
    (head("POST /x HTTP/1.1", "Host: d", "Content-Length: 0x10"), 400, "not a decimal number"),
    (head("POST /x HTTP/1.1", "Host: d", "Content-Length:"), 400, "not a decimal number"),
    (head("POST /x HTTP/1.1", "Host: d", "Content-Length: 9999999999999999999"), 400, "too large"),
    # str.isdigit() and int() take these; the engine's strconv.ParseUint doesn't
    ("POST /x HTTP/1.1\r\nHost: d\r\nContent-Length: \u0661\r\n\r\n".encode(), 400, "not ASCII digits"),
    (
        "POST /x HTTP/1.1\r\nHost: d\r\nContent-Length: \u00b2\r\n\r\n".encode("latin-1"),
        400,
        "not ASCII digits",
    ),
    (head("POST /x HTTP/1.1", "Host: d", "Content-Length: 1", "Transfer-Encoding: chunked"), 400, "both"),
    (head("POST /x HTTP/1.1", "Host: d", "Transfer-Encoding: chunked", "Content-Length: 1"), 400, "both"),
    # Transfer-Encoding
    (head("POST /x HTTP/1.1", "Host: d", "Transfer-Encoding: gzip"), 501, "send only 'chunked'"),
    (head("POST /x HTTP/1.1", "Host: d", "Transfer-Encoding: gzip, chunked"), 400, "send only 'chunked'"),
    (head("POST /x HTTP/1.1", "Host: d", "Transfer-Encoding: chunked, chunked"), 400, "send only 'chunked'"),
    (
        head("POST /x HTTP/1.1", "Host: d", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"),
        400,
        "more than once",
    ),
    (head("POST /x HTTP/1.1", "Host: d", 'Transfer-Encoding: "chunked"'), 400, "send only 'chunked'"),
    (head("POST /x HTTP/1.0", "Transfer-Encoding: chunked"), 400, "HTTP/1.0"),
    # bodies the engine would merge into its form values
    (
        head(
            "POST /build HTTP/1.1",
            "Host: d",
            "Content-Type: application/x-www-form-urlencoded",
            "Content-Length: 7",
        ),
        415,
        "query parameters that policy never saw",
    ),
    (
        head(
            "POST /build HTTP/1.1", "Host: d", "Content-Type: Application/X-WWW-Form-Urlencoded ; charset=x"
        ),
        415,
        "application/x-www-form-urlencoded",
    ),
    (head("POST /x HTTP/1.1", "Host: d", "Content-Type: multipart/form-data; boundary=b"), 415, "multipart"),
    (head("POST /x HTTP/1.1", "Host: d", "Content-Type: MULTIPART/mixed"), 415, "multipart"),
    (
        head("POST /x HTTP/1.1", "Host: d", "Content-Type: application/json, multipart/form-data"),
        415,
        "multipart",
    ),
    (
        head("POST /x HTTP/1.1", "Host: d", "Content-Type: application/json", "Content-Type: text/plain"),
        400,
        "more than once",
    ),
]
# fmt: on


@pytest.mark.parametrize(("raw", "status", "words"), MALFORMED)
def test_malformed_requests_say_what_is_wrong(raw: bytes, status: int, words: str) -> None:
    with pytest.raises(HttpError) as err:
        parse_request_head(raw)
    assert err.value.status == status and words in err.value.message, err.value.message


def test_limits_are_enforced() -> None:
    many = head("GET /x HTTP/1.1", "Host: d", *[f"X-{i}: y" for i in range(10)])
    with pytest.raises(HttpError) as err:
        parse_request_head(many, Limits(max_headers=5))
    assert err.value.status == 431
    with pytest.raises(HttpError) as err:
        parse_request_head(head("GET /" + "a" * 100 + " HTTP/1.1"), Limits(max_head_bytes=50))
    assert err.value.status == 431


def test_head_length_finds_the_head_and_refuses_one_that_can_only_be_too_long() -> None:
    assert head_length(b"GET / HTTP/1.1\r\nHost: d\r\n\r\nGET") == 27
    assert head_length(b"GET / HTTP/1.1\r\nHost: d\r\n") == -1
    with pytest.raises(HttpError) as err:
        head_length(b"GET /" + b"a" * 60, Limits(max_head_bytes=50))
    assert err.value.status == 431
    with pytest.raises(HttpError):
        head_length(b"GET /" + b"a" * 60 + b" HTTP/1.1\r\n\r\n", Limits(max_head_bytes=50))


def test_a_refused_head_is_salvaged_for_its_audit_record() -> None:
    h = RequestHead.salvage(b"GET /a\x00b\xff HTTP/1.1\r\nHost: d\r\n\r\n")
    assert (h.method, h.path) == ("GET", "/a\\x00b\\xff")
    assert (RequestHead.salvage(b"").method, RequestHead.salvage(b"G").path) == ("-", "-")


def test_error_response_is_dockers_json_shape() -> None:
    raw = error_response(403, "moorage: no", keep_alive=False)
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 403 Forbidden"
    assert b"Connection: close" in rest
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1]) == {"message": "moorage: no"}
    assert error_response(415, "x").startswith(b"HTTP/1.1 415 Unsupported Media Type\r\n")


def test_upstream_garbage_is_a_502() -> None:
    for bad in (b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 \xd9\xa1\xd9\xa1\xd9\xa1 OK\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: \xd9\xa1\r\n\r\n"):  # fmt: skip
        with pytest.raises(HttpError) as err:
            parse_response_head(bad)
        assert err.value.status == 502


def test_scan_response_head_reads_the_framing_and_refuses_ambiguity() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: Close\r\n\r\n"
    assert scan_response_head(head) == (200, "", 2, True)
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
    assert scan_response_head(chunked) == (200, "chunked", None, False)
    assert parse_response_head(chunked).chunked
    assert scan_response_head(b"HTTP/1.0 204\r\n\r\n") == (204, "", None, False)
    for bad in (b"HTTP/2 200 OK\r\n\r\n", b"HTTP/1.1 2x0 OK\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 3\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"):  # fmt: skip
        with pytest.raises(HttpError) as err:
            scan_response_head(bad)
        assert err.value.status == 502
        with pytest.raises(HttpError):
            parse_response_head(bad)


# ------------------------------------------------------------------ chunked bodies
def test_chunk_size_lines() -> None:
    assert parse_chunk_size(b"1aF\r\n") == 0x1AF
    assert parse_chunk_size(b"5;name\r\n") == 5
    assert parse_chunk_size(b'5 ; a=b;c="q \\" d"\r\n') == 5  # BWS around an extension is allowed
    assert parse_chunk_size(b"ffffffffffffffff\r\n") == 2**64 - 1


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b"0x5\r\n", "'0x' prefix"),
        (b"+5\r\n", "sign"),
        (b"-5\r\n", "sign"),
        (b" 5\r\n", "whitespace"),
        (b"5 \r\n", "whitespace"),
        (b"5\t\r\n", "whitespace"),
        (b"g\r\n", "malformed chunk-size"),
        (b"\r\n", "malformed chunk-size"),
        (b"5;\r\n", "malformed chunk-size"),
        (b"5;a b\r\n", "malformed chunk-size"),
        (b"5;a=\x01\r\n", "malformed chunk-size"),
        (b"1" * 17 + b"\r\n", "too large"),
        (b"5\n", "does not end with CRLF"),
        (b"5\r\r\n", "does not end with CRLF"),
        (b"5" + b";a" * 3000 + b"\r\n", "longer than 4096"),
    ],
)
def test_malformed_chunk_size_lines_say_what_is_wrong(line: bytes, words: str) -> None:
    with pytest.raises(HttpError) as err:
        parse_chunk_size(line)
    assert err.value.status == 400 and words in err.value.message, err.value.message
    with pytest.raises(HttpError) as err:
        parse_chunk_size(line, status=502)  # the engine's answer: its fault
    assert err.value.status == 502


def _decode_stream(data: bytes) -> tuple[bytes, bytes, bytes]:
    """(read_body's body, relay_chunked's output, what is left unread) for ``data``."""

    async def main() -> tuple[bytes, bytes, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        body = await read_body(reader, True, 0, 1 << 20)
        rest = await reader.read()
        reader2 = asyncio.StreamReader()
        reader2.feed_data(data)
        reader2.feed_eof()
        out = bytearray()

        class Sink:
            def write(self, b: bytes) -> None:
                out.extend(b)

            async def drain(self) -> None:
                pass

        await relay_chunked(reader2, Sink())  # type: ignore[arg-type]
        return body, bytes(out), rest

    return asyncio.run(main())


def test_a_chunked_body_reads_the_same_on_both_drivers_and_is_forwarded_canonically() -> None:
    data = b'5;ext=1\r\nhello\r\n6 ; q="x"\r\n world\r\n0\r\nX-T: t\r\n\r\nNEXT'
    body, relayed, rest = _decode_stream(data)
    assert body == b"hello world" and rest == b"NEXT"
    assert relayed == b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: t\r\n\r\n"  # extensions dropped
    scanner, out = ChunkedScanner(), list[bytes]()
    used = sum(scanner.feed(data[i : i + 1], out) for i in range(len(data) - 4))
    assert scanner.done and used == len(data) - 4 and b"".join(out) == b"hello world"
    assert ChunkedScanner().feed(data) == len(data) - 4


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"5\r\nhelloXX0\r\n\r\n", "not followed by CRLF"),
        (b"5\r\nhello\nX0\r\n\r\n", "not followed by CRLF"),
        (b"5\r\nhello\r\n0\r\nBad Trailer\r\n\r\n", "no colon"),
        (b"5\r\nhello\r\n0\r\nX : y\r\n\r\n", "whitespace between header name and colon"),
        (b"5\r\nhello\r\n0\r\nX: y\n\r\n", "does not end with CRLF"),
        (b"5\r\nhello\r\n0\r\n" + b"X: y\r\n" * 200 + b"\r\n", "trailer fields"),
    ],
)
def test_malformed_chunked_bodies_are_refused_by_both_drivers(data: bytes, words: str) -> None:
    with pytest.raises(HttpError) as err:
        _decode_stream(data)
    assert err.value.status == 400 and words in err.value.message, err.value.message
    with pytest.raises(HttpError) as err:
        ChunkedScanner().feed(data)
    assert err.value.status == 400 and words in err.value.message, err.value.message


def test_an_oversize_chunk_line_is_refused_before_it_ends() -> None:
    scanner = ChunkedScanner(Limits(max_chunk_line=64))
    scanner.feed(b"5" + b";a" * 20)
    with pytest.raises(HttpError) as err:
        scanner.feed(b";a" * 20)
    assert "longer than 64" in err.value.message


def test_iter_chunks_streams_the_data_and_blames_the_engine_for_its_framing() -> None:
    async def main() -> tuple[list[bytes], int]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"5\r\nhello\r\n1;x\r\n!\r\n0\r\nX-T: t\r\n\r\n")
        reader.feed_eof()
        pieces = [data async for data in iter_chunks(reader, status=502)]
        broken = asyncio.StreamReader()
        broken.feed_data(b"0x5\r\nhello\r\n0\r\n\r\n")
        broken.feed_eof()
        try:
            [data async for data in iter_chunks(broken, status=502)]
        except HttpError as exc:
            return pieces, exc.status
        return pieces, 0

    assert asyncio.run(main()) == ([b"hello", b"!"], 502)


@pytest.mark.parametrize(
    "ctype",
    [b"\xc2\xa0application/x-www-form-urlencoded", b"appl\xc4\xb0cation/x-www-form-urlencoded",
     b"application/x-www-form-urlencoded\xc2\x85", b"\xc2\xa0multipart/form-data; boundary=x",
     b"application/json\xc2\xa0"],
)  # fmt: skip
def test_a_content_type_only_unicode_makes_a_form_type_is_refused(ctype: bytes) -> None:
    """Go's mime.ParseMediaType trims and lower-cases with Unicode rules."""
    raw = b"POST /build HTTP/1.1\r\nHost: d\r\nContent-Type: " + ctype + b"\r\nContent-Length: 0\r\n\r\n"
    with pytest.raises(HttpError) as err:
        parse_request_head(raw)
    assert err.value.status == 415
