"""The framing core's errors say whose fault they are, in their type as well as their status."""

from __future__ import annotations

import asyncio

import pytest

from moorage.gateway.http import (
    ChunkedScanner,
    ClientFault,
    HttpError,
    UpstreamFramingFault,
    fault,
    head_length,
    parse_chunk_size,
    parse_request_head,
    parse_trailer_line,
    read_body,
    scan_response_head,
)


def test_fault_picks_the_side_by_status() -> None:
    assert fault(502) is UpstreamFramingFault
    assert fault(400) is ClientFault
    assert issubclass(ClientFault, HttpError) and issubclass(UpstreamFramingFault, HttpError)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"BREW / HTTP/1.1\r\nHost: d\r\n\r\n", 405),
        (b"GET / HTTP/2.0\r\nHost: d\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\nHost: d\r\n bad\r\n\r\n", 400),
    ],
)
def test_a_bad_request_head_is_the_clients_fault(raw: bytes, status: int) -> None:
    with pytest.raises(ClientFault) as info:
        parse_request_head(raw)
    assert info.value.status == status


def test_an_oversized_head_is_the_clients_fault() -> None:
    with pytest.raises(ClientFault) as info:
        head_length(b"x" * (70 * 1024))
    assert info.value.status == 431


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    ],
)
def test_a_bad_response_head_is_the_upstreams_fault(raw: bytes) -> None:
    with pytest.raises(UpstreamFramingFault) as info:
        scan_response_head(raw)
    assert info.value.status == 502


@pytest.mark.parametrize(("status", "kind"), [(400, ClientFault), (502, UpstreamFramingFault)])
def test_chunked_errors_follow_the_side_that_sent_the_body(status: int, kind: type[HttpError]) -> None:
    with pytest.raises(kind):
        parse_chunk_size(b"0x1\r\n", status=status)
    with pytest.raises(kind):
        parse_trailer_line(b" folded\r\n", status)
    with pytest.raises(kind):
        ChunkedScanner(status=status).feed(b"1\r\nab")


@pytest.mark.parametrize(("status", "kind"), [(400, ClientFault), (502, UpstreamFramingFault)])
def test_a_body_over_the_limit_is_typed_by_its_sender(status: int, kind: type[HttpError]) -> None:
    async def read() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(b"5\r\nhello\r\n0\r\n\r\n")
        reader.feed_eof()
        await read_body(reader, True, 0, 3, status=status)

    with pytest.raises(kind) as info:
        asyncio.run(read())
    assert info.value.status == 413


def test_framing_errors_are_refusals_with_their_audit_decision() -> None:
    from moorage.admission.errors import ClientError, Refusal, UpstreamFault

    assert issubclass(ClientFault, ClientError) and issubclass(UpstreamFramingFault, UpstreamFault)
    for exc in (HttpError(408, "slow head"), ClientFault(413, "too big"), UpstreamFramingFault(502, "bad")):
        assert isinstance(exc, Refusal) and exc.decision == "error"
    assert ClientFault(400, "bad").answer == "moorage: bad"
    assert HttpError(404, "No such container: x", engine_words=True).answer == "No such container: x"
