"""llhttp's reading of request heads (gateway/cframing.py) against the pure framing
core, the reference: the same RequestHead, or the same refusal with the same message,
on generated and mutated heads."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from moorage.gateway.cframing import parse_request_head_c
from moorage.gateway.http import HttpError, Limits, RequestHead, parse_request_head
from tests.unit.gateway.test_framing_fuzz import SETTINGS, requests

LIMITS = Limits(max_head_bytes=512, max_headers=6)


def reading(parse: object, raw: bytes) -> RequestHead | tuple[int, str]:
    try:
        return parse(raw, LIMITS)  # type: ignore[operator, no-any-return]
    except HttpError as exc:
        return exc.status, str(exc)


def agree(raw: bytes) -> None:
    assert reading(parse_request_head_c, raw) == reading(parse_request_head, raw), raw


@SETTINGS
@given(requests())
def test_generated_heads_read_the_same(data: bytes) -> None:
    end = data.find(b"\r\n\r\n")
    agree(data[: end + 4] if end >= 0 else data)


@SETTINGS
@given(requests(), st.integers(0, 200), st.binary(min_size=1, max_size=3))
def test_mutated_heads_read_the_same(data: bytes, at: int, insert: bytes) -> None:
    end = data.find(b"\r\n\r\n")
    head = data[: end + 4] if end >= 0 else data
    at = min(at, max(0, len(head) - 4))
    agree(head[:at] + insert + head[at:])


def test_known_traps_read_the_same() -> None:
    for raw in [
        b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
        b"GET /_ping HTTP/1.1\r\nHost : d\r\n\r\n",  # space before the colon
        b"GET /_ping HTTP/1.1\r\nHost: d\r\n x\r\n\r\n",  # obs-fold
        b"GET  /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
        b"GET http://d/_ping HTTP/1.1\r\nHost: d\r\n\r\n",  # absolute form
        b"GET /_ping HTTP/1.1\r\nHost: d\r\nHost: e\r\n\r\n",
        b"GET /_ping HTTP/1.1\r\nHost: d\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET /_ping HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"GET /_ping HTTP/1.0\r\n\r\n",
        b"GET /_ping HTTP/1.1\r\n\r\n",  # no Host
        b"GET /_ping HTTP/2.0\r\nHost: d\r\n\r\n",
        b"BREW /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
        b"CONNECT /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
        b"GET /a%zz HTTP/1.1\r\nHost: d\r\n\r\n",
        b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
        b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: a\r\nConnection: b\r\n\r\n",
        b"GET /_ping HTTP/1.1\r\nHost: d\xe9\r\n\r\n",  # obs-text: the reference reads it
        b"GET /_ping HTTP/1.1\r\nHost:\td \t\r\n\r\n",
        b"GET /_ping HTTP/1.1\r\nHost: d\r\nX:\r\n\r\n",
        b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n",
    ]:
        agree(raw)
