"""The gateway's fast path, against a scripted engine on a unix socket (protocol edge
cases a real dockerd rarely produces: answers split byte by byte, close-delimited
answers, pooled connections the engine closed). The real-engine behaviour is covered
by tests/integration and tests/e2e, which run through the same fast path."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from moorage.audit.trail import AuditTrail, KeyRing
from moorage.gateway.server import Gateway
from moorage.gateway.upstream import Upstream
from moorage.identity import UserDirectory
from tests.gateway_build import build_gateway

LOOPS = ["asyncio"]
try:
    import uvloop

    LOOPS.append("uvloop")
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]

Reply = Callable[[str, str, bytes], list[bytes | None]]  # method, target, body -> pieces (None: close)


class FakeEngine:
    """Reads request heads (and Content-Length bodies), answers with scripted pieces."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[tuple[str, str, bytes]] = []
        self.connections = 0

    async def serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ")
                length = next(
                    (int(x.split(":")[1]) for x in lines if x.lower().startswith("content-length:")), 0
                )
                body = await r.readexactly(length) if length else b""
                self.requests.append((method, target, body))
                for piece in self.reply(method, target, body):
                    if piece is None:
                        w.close()
                        return
                    w.write(piece)
                    await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()


def ok(body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


async def read_answer(r: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = (await r.readuntil(b"\r\n\r\n")).decode()
    lines = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await r.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                break  # the trailer section is left for the caller
            body += (await r.readexactly(size + 2))[:-2]
    elif "content-length" in headers:
        body = await r.readexactly(int(headers["content-length"]))
    else:
        body = await r.read()
    return int(lines[0].split()[1]), headers, body


def run(
    loop_kind: str, tmp_path: Path, reply: Reply, test: Callable[..., Awaitable[None]], **gw_args: Any
) -> None:
    async def main() -> None:
        engine = FakeEngine(reply)
        engine_sock = str(tmp_path / "engine.sock")
        server = await asyncio.start_unix_server(engine.serve, engine_sock)
        gw = build_gateway(Upstream(gw_args.pop("upstream", f"unix://{engine_sock}")), **gw_args)
        gw_sock = str(tmp_path / "gw.sock")
        await gw.listen_unix(gw_sock)
        try:
            await asyncio.wait_for(test(gw_sock, engine, gw), 20)
        finally:
            await gw.close()
            server.close()

    if loop_kind == "uvloop":
        uvloop.run(main())
    else:
        asyncio.run(main())


def echo_path(method: str, target: str, body: bytes) -> list[bytes | None]:
    return [ok(f"{method} {target}".encode())]


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_pipelined_reads_answer_in_order_each_with_its_record(loop_kind: str, tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit.db", KeyRing(tmp_path / "keys"))

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        r, w = await asyncio.open_unix_connection(sock)
        w.write(
            b"".join(
                f"GET /v1.41/{p} HTTP/1.1\r\nHost: d\r\n\r\n".encode() for p in ("_ping", "version", "info")
            )
        )
        answers = [await read_answer(r) for _ in range(3)]
        assert [a[2] for a in answers] == [b"GET /v1.41/_ping", b"GET /v1.41/version", b"GET /v1.41/info"]
        ids = [a[1]["x-moorage-request-id"] for a in answers]
        assert len(set(ids)) == 3
        w.close()
        assert engine.connections == 1  # one pooled engine connection served all three
        await asyncio.sleep(0.05)
        records = [doc for _, doc in trail.query()]
        assert [d["request_id"] for d in records] == ids
        assert [d["kind"] for d in records] == ["system.ping", "system.version", "system.info"]
        assert all(d["status"] == 200 and d["decision"] == "allow" for d in records)

    try:
        run(loop_kind, tmp_path, echo_path, test, audit=trail)
        assert trail.verify().ok
    finally:
        trail.close()


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_chunked_answer_split_byte_by_byte_passes_through_and_the_connection_is_reused(
    loop_kind: str, tmp_path: Path
) -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")  # fmt: skip

    def reply(method: str, target: str, body: bytes) -> list[bytes | None]:
        if "info" in target:
            return [chunked[i : i + 1] for i in range(len(chunked))]
        return [ok(b"OK")]

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        r, w = await asyncio.open_unix_connection(sock)
        # (events and lists go to the full path, which takes Moorage's labels out of them)
        w.write(b"GET /info HTTP/1.1\r\nHost: d\r\n\r\n")
        status, _, body = await read_answer(r)
        assert (status, body) == (200, b"hello world")
        # the trailer was passed through; the next answer starts cleanly after it
        assert await r.readuntil(b"\r\n\r\n") == b"X-Trailer: t\r\n\r\n"
        w.write(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        assert (await read_answer(r))[2] == b"OK"
        assert engine.connections == 1
        w.close()

    run(loop_kind, tmp_path, reply, test)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_an_answer_delimited_by_close_ends_the_client_connection(loop_kind: str, tmp_path: Path) -> None:
    def reply(method: str, target: str, body: bytes) -> list[bytes | None]:
        return [b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", b"part one, ", b"part two", None]

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        r, w = await asyncio.open_unix_connection(sock)
        w.write(b"GET /info HTTP/1.1\r\nHost: d\r\n\r\n")
        status, _, body = await read_answer(r)  # reads to EOF
        assert (status, body) == (200, b"part one, part two")
        w.close()

    run(loop_kind, tmp_path, reply, test)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_pooled_connection_the_engine_closed_is_retried_once(loop_kind: str, tmp_path: Path) -> None:
    seen = []

    def reply(method: str, target: str, body: bytes) -> list[bytes | None]:
        seen.append(target)
        if len(seen) == 2:
            return [None]  # the engine drops the idle connection just as the request lands
        return [ok(b"OK")]

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        for _ in range(2):
            r, w = await asyncio.open_unix_connection(sock)
            w.write(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
            assert (await read_answer(r))[:1] == (200,)
            w.close()
        # the second request was sent twice: on the dropped connection, then on a new one
        assert seen == ["/_ping"] * 3 and engine.connections == 2

    run(loop_kind, tmp_path, reply, test)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_request_the_fast_path_does_not_take_goes_to_the_full_path_with_the_bytes_after_it(
    loop_kind: str, tmp_path: Path
) -> None:
    def reply(method: str, target: str, body: bytes) -> list[bytes | None]:
        if method == "POST":
            answer = json.dumps({"Name": "v1", "Labels": json.loads(body)["Labels"]}).encode()
            return [b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(answer)}\r\n\r\n".encode() + answer]  # fmt: skip
        return [ok(b"OK")]

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        r, w = await asyncio.open_unix_connection(sock)
        body = b'{"Name": "v1"}'
        w.write(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n"
                b"POST /volumes/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
                + b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")  # fmt: skip
        assert (await read_answer(r))[2] == b"OK"
        status, _, created = await read_answer(r)
        assert status == 201
        # the full path stamped the owner labels: it, not the fast path, carried out the create
        post = next(req for req in engine.requests if req[0] == "POST")
        assert json.loads(post[2])["Labels"]["io.moorage.owner"] == "root"
        assert json.loads(created)["Labels"] == {}  # and took them out of the answer
        assert (await read_answer(r))[2] == b"OK"
        w.close()

    run(loop_kind, tmp_path, reply, test)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_developers_list_is_scoped_to_their_team(loop_kind: str, tmp_path: Path) -> None:
    users = UserDirectory.from_dict({"users": {"dev": {"uid": os.getuid(), "teams": ["payments"],
                                                       "roles": ["developer"]}}})  # fmt: skip

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        r, w = await asyncio.open_unix_connection(sock)
        w.write(b'GET /v1.41/containers/json?all=1&filters={"label":["app=x"]} HTTP/1.1\r\nHost: d\r\n\r\n'
                b"GET /v1.41/swarm HTTP/1.1\r\nHost: d\r\n\r\n")  # fmt: skip
        assert (await read_answer(r))[0] == 200
        status, _, refused = await read_answer(r)  # not for developers: the full path refuses it
        assert status == 403 and b"may not call" in refused
        w.close()
        target = next(t for _, t, _ in engine.requests if "/containers/json" in t)
        assert "io.moorage.team%3Dpayments" in target and "app%3Dx" in target
        # the refused request never reached the engine (/_ping and /version learn its headers and range)
        assert [t for _, t, _ in engine.requests if t not in ("/_ping", "/version")] == [target]

    run(loop_kind, tmp_path, echo_path, test, users=users)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_an_unreachable_engine_is_a_502_that_names_it(loop_kind: str, tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit.db", KeyRing(tmp_path / "keys"))
    missing = f"unix://{tmp_path}/nothing-here.sock"

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        r, w = await asyncio.open_unix_connection(sock)
        w.write(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        status, headers, body = await read_answer(r)
        assert status == 502
        assert json.loads(body)["message"].startswith(f"moorage: cannot reach the Docker engine at {missing}")
        await asyncio.sleep(0.05)
        (_, doc), *_ = trail.query()
        assert (doc["decision"], doc["status"], doc["request_id"]) == (
            "error",
            502,
            headers["x-moorage-request-id"],
        )
        w.close()

    try:
        run(loop_kind, tmp_path, echo_path, test, audit=trail, upstream=missing)
    finally:
        trail.close()


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_an_engine_that_switches_protocols_on_a_plain_read_is_refused(loop_kind: str, tmp_path: Path) -> None:
    def reply(method: str, target: str, body: bytes) -> list[bytes | None]:
        return [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n"]

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        r, w = await asyncio.open_unix_connection(sock)
        w.write(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        status, _, body = await read_answer(r)
        assert status == 502 and b"101" in body
        w.close()

    run(loop_kind, tmp_path, reply, test)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_half_closed_client_still_gets_its_answer(loop_kind: str, tmp_path: Path) -> None:
    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        r, w = await asyncio.open_unix_connection(sock)
        w.write(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\nGET /version HTTP/1.1\r\nHost: d\r\n\r\n")
        w.write_eof()
        assert (await read_answer(r))[2] == b"GET /_ping"
        assert (await read_answer(r))[2] == b"GET /version"
        assert await r.read() == b""  # then the gateway closes
        w.close()

    run(loop_kind, tmp_path, echo_path, test)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_malformed_heads_get_the_full_paths_precise_errors(loop_kind: str, tmp_path: Path) -> None:
    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        for raw, status in ((b"GET /_ping HTTP/1.1\r\nBad Header\r\n\r\n", 400),
                            (b"GET /_ping HTTP/2.0\r\n\r\n", 505),
                            (b"GET /_ping HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
                            (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 431)):  # fmt: skip
            r, w = await asyncio.open_unix_connection(sock, limit=1 << 20)
            w.write(raw)
            assert (await read_answer(r))[0] == status, raw[:40]
            w.close()
        assert engine.requests == []

    run(loop_kind, tmp_path, echo_path, test)


@pytest.mark.parametrize("loop_kind", LOOPS)
@pytest.mark.parametrize("chunked", [False, True])
def test_lists_on_the_fast_path_lose_moorages_labels(loop_kind: str, chunked: bool, tmp_path: Path) -> None:
    """A list is collected whole, stripped of io.moorage.* labels and sent with its
    new length; a list without them goes out byte for byte."""
    ours = [{"Id": "a", "Labels": {"app": "x", "io.moorage.team": "payments", "io.moorage.owner": "al"}}]
    plain = b'[{"Id":"b","Labels":{"app":"y"}}]\n'

    def reply(method: str, target: str, body: bytes) -> list[bytes | None]:
        data = json.dumps(ours).encode() + b"\n" if "containers" in target else plain
        if chunked:
            framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (data[:7], data[7:])) + b"0\r\n\r\n"
            return [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + framed]  # fmt: skip
        return [ok(data)]

    async def test(sock: str, engine: FakeEngine, gw: Gateway) -> None:
        r, w = await asyncio.open_unix_connection(sock)
        w.write(
            b"GET /v1.41/containers/json HTTP/1.1\r\nHost: d\r\n\r\nGET /v1.41/volumes HTTP/1.1\r\nHost: d\r\n\r\n"
        )
        status, headers, body = await read_answer(r)
        assert status == 200 and json.loads(body) == [{"Id": "a", "Labels": {"app": "x"}}]
        assert int(headers["content-length"]) == len(body) and "transfer-encoding" not in headers
        status, _, body = await read_answer(r)
        assert status == 200 and body == plain
        w.close()
        assert gw.fast_pool.clients, "served on the fast path"

    run(loop_kind, tmp_path, reply, test)
