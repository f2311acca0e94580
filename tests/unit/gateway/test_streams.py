"""Build watching, streamed label stripping and the engine's headers on our answers."""

from __future__ import annotations

import asyncio
import json

from moorage.admission.owners import ImageOwners
from moorage.gateway import streams
from moorage.gateway.http import Limits, parse_response_head

ID_A = "sha256:" + "a" * 64
ID_B = "sha256:" + "b" * 64


class _Sink:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None


def _dechunk(body: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out
        out, body = out + body[:size], body[size + 2 :]


def test_a_build_stream_passes_unchanged_and_names_its_images() -> None:
    store = ImageOwners()
    watch = streams.BuildIds(store, "payments", frozenset())
    lines = [
        {"stream": "Step 1/2 : FROM busybox\n"},
        {"aux": {"ID": ID_A}},
        {"stream": ID_B + "\n"},  # a quiet build's answer
        {"stream": "Successfully built 0123456789ab\n"},
    ]
    data = b"".join(json.dumps(m).encode() + b"\r\n" for m in lines)
    out = watch(data[:17]) + watch(data[17:]) + watch.end()
    assert out == data
    assert store.teams(ID_A) == ("payments",) and store.teams(ID_B) == ("payments",)
    assert watch.short_ids == ["0123456789ab"]


def test_a_build_never_claims_an_image_that_existed_before_it() -> None:
    """A FROM-only or fully cached build reports the base's (or another team's) id."""
    store = ImageOwners()
    store.record(ID_B, "search")
    watch = streams.BuildIds(store, "payments", frozenset({ID_A, ID_B}))
    watch(
        json.dumps({"aux": {"ID": ID_A}}).encode()
        + b"\r\n"
        + json.dumps({"aux": {"ID": ID_B}}).encode()
        + b"\r\n"
    )
    watch.end()
    assert store.teams(ID_A) == () and store.teams(ID_B) == ("search",)


def test_events_lose_our_labels_across_chunk_boundaries() -> None:
    events = [
        {"Type": "container", "Actor": {"ID": "1", "Attributes": {"name": "c", "io.moorage.team": "p"}}},
        {"Type": "network", "Actor": {"ID": "2", "Attributes": {"name": "n"}}},
    ]
    payload = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (payload[:30], payload[30:]))
    resp = parse_response_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")

    async def run() -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(chunks + b"0\r\n\r\n")
        reader.feed_eof()
        sink = _Sink()
        feed = streams.Lines(streams.strip_line)
        keep = await streams.relay_stream(resp, reader, sink, feed, Limits())  # type: ignore[arg-type]
        assert keep
        return sink.data

    out = asyncio.run(run())
    body = _dechunk(out.partition(b"\r\n\r\n")[2])
    got = [json.loads(line) for line in body.splitlines()]
    assert got[0]["Actor"]["Attributes"] == {"name": "c"}
    assert got[1] == events[1]


def test_gateway_answers_carry_the_engines_headers() -> None:
    answer = b'HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nServer: moorage\r\n\r\n{"m":1}'
    engine = (("Api-Version", "1.41"), ("Ostype", "linux"), ("Server", "Docker/20.10.24 (linux)"))
    out = streams.as_engine(answer, engine)
    head, _, body = out.partition(b"\r\n\r\n")
    assert body == b'{"m":1}'
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 404 Not Found"
    assert b"Api-Version: 1.41" in lines and b"Ostype: linux" in lines
    assert b"Server: Docker/20.10.24 (linux)" in lines and b"Server: moorage" not in lines
    assert streams.as_engine(answer, ()) == answer
