"""Bad input through a running gateway, on the fast path and on the full path: every
malformed request gets a 4xx that names the problem and an audit record; never a
dropped connection without an answer, never a traceback. The fake engine (see
test_fastpath) must never see any of these requests."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from pathlib import Path

import pytest

from moorage.audit import AuditRecord, AuditSink
from moorage.gateway.http import Limits
from moorage.gateway.server import Gateway
from tests.unit.gateway.test_fastpath import FakeEngine, ok, read_answer, run
from tests.unit.gateway.test_http import MALFORMED

PATHS = [True, False]
IDS = ["fast-path", "full-path"]


class Records(AuditSink):
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def record(self, record: AuditRecord) -> None:
        self.records.append(record)


def engine_reply(method: str, target: str, body: bytes) -> list[bytes | None]:
    if target.endswith("/version"):  # the gateway may ask the engine's API range
        return [ok(json.dumps({"ApiVersion": "1.41", "MinAPIVersion": "1.12"}).encode())]
    return [ok(b"OK")]


async def exchange(sock: str, raw: bytes) -> tuple[int, str, bytes]:
    """Send ``raw``; return the answer's status and message, and what follows it
    before the gateway closes the connection."""
    r, w = await asyncio.open_unix_connection(sock, limit=1 << 20)
    w.write(raw)
    status, headers, body = await read_answer(r)
    rest = await r.read()  # a refused head ends the connection
    w.close()
    assert headers.get("connection") == "close"
    return status, json.loads(body)["message"], rest


@pytest.mark.parametrize("fast_path", PATHS, ids=IDS)
def test_each_malformed_head_is_answered_named_and_recorded(
    fast_path: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = Records()

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        for raw, status, words in MALFORMED:
            got, message, rest = await exchange(sock, raw)
            assert (got, rest) == (status, b""), (raw, message)
            assert message.startswith("moorage: ") and words in message, (raw, message)
        assert engine.requests == []

    with caplog.at_level(logging.ERROR, logger="moorage.gateway"):
        run("asyncio", tmp_path, engine_reply, test, audit=sink, fast_path=fast_path)
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("moorage")], (
        "a traceback was logged"
    )
    records = [r for r in sink.records if r.kind == "malformed"]
    assert [r.status for r in records] == [status for _, status, _ in MALFORMED]
    assert all(r.decision == "deny" and r.reason.startswith("moorage: ") for r in records)
    assert all(r.source.startswith("unix:uid=") and r.user != "?" for r in records)


@pytest.mark.parametrize("fast_path", PATHS, ids=IDS)
def test_a_content_length_in_non_ascii_digits_is_a_400_not_a_traceback(
    fast_path: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's case: U+0661 ARABIC-INDIC DIGIT ONE, U+00B2 SUPERSCRIPT TWO and U+FF15
    FULLWIDTH DIGIT FIVE pass str.isdigit(); the first and last also pass int()."""
    sink = Records()

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        for digit in ("\u0661", "\u00b2", "\uff15"):
            raw = f"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: {digit}\r\n\r\n{{}}"
            status, message, _ = await exchange(sock, raw.encode())
            assert status == 400 and "Content-Length" in message and "not ASCII digits" in message
        assert engine.requests == []

    with caplog.at_level(logging.ERROR, logger="moorage.gateway"):
        run("asyncio", tmp_path, engine_reply, test, audit=sink, fast_path=fast_path)
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("moorage")]
    assert [(r.kind, r.method, r.path, r.status) for r in sink.records] == [
        ("malformed", "POST", "/containers/create", 400)
    ] * 3


@pytest.mark.parametrize("fast_path", PATHS, ids=IDS)
def test_a_form_body_is_refused_before_the_engine_could_merge_it_into_the_query(
    fast_path: bool, tmp_path: Path
) -> None:
    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        body = b"networkmode=host"
        raw = (b"POST /build?t=x HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-www-form-urlencoded\r\n"
               + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
        status, message, _ = await exchange(sock, raw)
        assert status == 415 and "query parameters that policy never saw" in message
        assert engine.requests == []

    run("asyncio", tmp_path, engine_reply, test, fast_path=fast_path)


@pytest.mark.parametrize("fast_path", PATHS, ids=IDS)
def test_a_head_sent_in_pieces_is_served_and_an_idle_keep_alive_connection_is_not_timed_out(
    fast_path: bool, tmp_path: Path
) -> None:
    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        r, w = await asyncio.open_unix_connection(sock)
        for piece in (b"GET /_p", b"ing HTTP/1.1\r\nHo", b"st: d\r\n", b"\r\n"):
            w.write(piece)
            await asyncio.sleep(0.01)
        assert (await read_answer(r))[:1] == (200,)
        # longer than the head timeout between requests: the idle timeout governs that
        await asyncio.sleep(0.5)
        w.write(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        assert (await read_answer(r))[:1] == (200,)
        w.close()

    run("asyncio", tmp_path, engine_reply, test, fast_path=fast_path, limits=Limits(head_timeout=0.2))


@pytest.mark.parametrize("fast_path", PATHS, ids=IDS)
def test_a_malformed_chunked_body_is_a_400_with_a_record(fast_path: bool, tmp_path: Path) -> None:
    sink = Records()

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        for chunks, words in ((b"0x5\r\n{}...\r\n0\r\n\r\n", "'0x' prefix"),
                              (b"2\r\n{}XX0\r\n\r\n", "not followed by CRLF"),
                              (b"2 \r\n{}\r\n0\r\n\r\n", "whitespace")):  # fmt: skip
            raw = (b"POST /volumes/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" + chunks)  # fmt: skip
            status, message, _ = await exchange(sock, raw)
            assert status == 400 and words in message, message
        assert [m for m, _, _ in engine.requests if m == "POST"] == []

    run("asyncio", tmp_path, engine_reply, test, audit=sink, fast_path=fast_path)
    assert [r.status for r in sink.records if r.method == "POST"] == [400] * 3


@pytest.mark.parametrize("fast_path", PATHS, ids=IDS)
def test_random_mangled_heads_always_get_an_answer(
    fast_path: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes flipped, cut and inserted in ordinary requests: each connection gets an
    HTTP answer (the engine's, or a refusal of the gateway's) and no traceback."""
    rng = random.Random(12)
    base = [b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
            b"GET /v1.41/containers/json?all=1 HTTP/1.1\r\nHost: d\r\nUser-Agent: x\r\n\r\n",
            b"POST /volumes/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\n\r\n{}"]  # fmt: skip
    specials = [
        b"\r",
        b"\n",
        b"\x00",
        b" ",
        b"\t",
        b":",
        b"\xd9\xa1",
        b"#",
        b"%",
        b",",
        b";",
        b"\x7f",
        b"\xff",
    ]

    def mangle(raw: bytes) -> bytes:
        data = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data) - 4)  # keep the blank line, so the head ends
            op = rng.random()
            if op < 0.4:
                data[at : at + 1] = rng.choice(specials)
            elif op < 0.7:
                data[at:at] = rng.choice(specials)
            else:
                del data[at]
        return bytes(data)

    cases = [mangle(rng.choice(base)) for _ in range(150)]

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        for raw in cases:
            r, w = await asyncio.open_unix_connection(sock, limit=1 << 20)
            w.write(raw)
            w.write_eof()
            answer = await asyncio.wait_for(r.read(), 10)
            w.close()
            assert answer.startswith(b"HTTP/1.1 "), raw
            status = int(answer[9:12])
            assert status in (200, 201, 400, 403, 404, 405, 408, 415, 431, 501, 505), (raw, answer)

    with caplog.at_level(logging.ERROR, logger="moorage.gateway"):
        run("asyncio", tmp_path, engine_reply, test, fast_path=fast_path, limits=Limits(head_timeout=1.0))
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("moorage")]


@pytest.mark.parametrize("fast_path", PATHS, ids=IDS)
def test_a_refusal_before_the_body_is_read_still_reaches_the_client(fast_path: bool, tmp_path: Path) -> None:
    """A role refusal comes before the body is read. The client, still sending it,
    must read the 403, not a broken pipe: the gateway takes the body in (bounded)
    and keeps the connection."""
    from moorage.identity import UserDirectory

    users = UserDirectory.from_dict({"users": {"dev": {"uid": os.getuid(), "teams": ["t"],
                                                       "roles": ["developer"]}}})  # fmt: skip
    body = json.dumps({"ListenAddr": "0.0.0.0:2377", "Pad": "x" * 200_000}).encode()

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        r, w = await asyncio.open_unix_connection(sock, limit=1 << 20)
        w.write(b"POST /v1.41/swarm/init HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode())  # fmt: skip
        await w.drain()
        for i in range(0, len(body), 8192):  # slowly, as a real client might
            w.write(body[i : i + 8192])
            await w.drain()
        status, _, answer = await read_answer(r)
        assert status == 403 and b"may not call" in answer
        w.write(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")  # the connection is still good
        assert (await read_answer(r))[0] == 200
        w.close()
        assert not [req for req in engine.requests if "swarm" in req[1]]

    run("asyncio", tmp_path, engine_reply, test, users=users, fast_path=fast_path)


@pytest.mark.parametrize("allow", [False, True])
def test_unknown_body_fields_are_refused_unless_an_admin_setting_passes_them(
    allow: bool, tmp_path: Path
) -> None:
    sink = Records()
    body = b'{"Image":"x","HostConfig":{"Frobnicate":{"a":1}}}'

    def reply(method: str, target: str, data: bytes) -> list[bytes | None]:
        if target.endswith("/version"):
            return engine_reply(method, target, data)
        return [
            b'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{"Id":1}\n'
        ]

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        r, w = await asyncio.open_unix_connection(sock, limit=1 << 20)
        w.write(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
        status, _, answer = await read_answer(r)
        w.close()
        created = [req for req in engine.requests if req[0] == "POST"]
        if allow:
            assert status == 201 and b"Frobnicate" in created[0][2]
        else:
            assert status == 400 and b"HostConfig.Frobnicate" in answer and not created

    run("asyncio", tmp_path, reply, test, audit=sink, allow_unknown_fields=allow)
    record = next(r for r in sink.records if r.kind == "container.create")
    assert "HostConfig.Frobnicate" in record.reason
