"""Half-sent request heads (slowloris) against an in-process gateway on a unix socket.

Thousands of connections each send the start of a head and never finish it. Each
must get a 408 and be closed once the head timeout has passed since its first
byte, with an audit record; meanwhile ordinary requests are served. The engine is
a tiny fake: framing is what is tested here. Both paths are covered: the fast
path (bare protocols, one timer per incomplete head) and the full path (asyncio
streams)."""

from __future__ import annotations

import asyncio
import json
import resource
from collections.abc import Callable
from pathlib import Path

import pytest

from moorage.audit import AuditRecord, AuditSink
from moorage.gateway.http import Limits
from moorage.gateway.upstream import Upstream
from tests.gateway_build import build_gateway

FLOOD = 6000
HALF = b"GET /_ping HTTP/1.1\r\nHost: x\r\n"  # never finished: no blank line


class Records(AuditSink):
    """Keeps records in memory."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def record(self, record: AuditRecord) -> None:
        self.records.append(record)


async def fake_engine(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    """Answers every request: /version with the engine's API range, anything else OK."""
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1]
            body = b"OK"
            if target.endswith(b"/version"):
                body = json.dumps(
                    {"ApiVersion": "1.41", "MinAPIVersion": "1.12", "Version": "20.10"}
                ).encode()
            w.write(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: text/plain\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
            await w.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        w.close()


class HalfHead(asyncio.Protocol):
    """A client that sends half a head, then only listens."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.answer = bytearray()
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(HALF)

    def data_received(self, data: bytes) -> None:
        self.answer += data

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _factory(client: HalfHead) -> Callable[[], HalfHead]:
    return lambda: client


async def ping(sock: str) -> int:
    r, w = await asyncio.open_unix_connection(sock)
    w.write(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
    status = int((await r.readuntil(b"\r\n")).split()[1])
    w.close()
    return status


def _enough_fds(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} file descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "full-path"])
def test_half_sent_heads_are_answered_408_and_closed_while_requests_are_served(
    tmp_path: Path, fast_path: bool
) -> None:
    _enough_fds(2 * FLOOD + 512)  # both ends of every connection are in this process
    sink = Records()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        engine_sock, gw_sock = str(tmp_path / "engine.sock"), str(tmp_path / "gw.sock")
        engine = await asyncio.start_unix_server(fake_engine, engine_sock)
        gw = build_gateway(Upstream(f"unix://{engine_sock}"), audit=sink, fast_path=fast_path,
                     limits=Limits(head_timeout=1.0))  # idle_timeout stays 600 s  # fmt: skip
        await gw.listen_unix(gw_sock)
        clients: list[HalfHead] = []
        served: list[int] = []
        try:
            for start in range(0, FLOOD, 50):  # batches: the listen backlog is 100
                batch = [HalfHead(loop) for _ in range(50)]
                await asyncio.gather(*(loop.create_unix_connection(_factory(c), gw_sock) for c in batch))
                clients += batch
                if start % 1500 == 0:
                    served.append(await ping(gw_sock))  # during the flood
            served.append(await ping(gw_sock))
            # Only a hang guard: the idle timeout (600 s) is far past it, so each close
            # here is the head timeout's doing.
            await asyncio.wait_for(asyncio.gather(*(c.closed for c in clients)), 120)
            served.append(await ping(gw_sock))
        finally:
            await gw.close()
            engine.close()
        assert served == [200] * len(served) and len(served) == 6
        answers = {bytes(c.answer.split(b"\r\n", 1)[0]) for c in clients}
        assert answers == {b"HTTP/1.1 408 Request Timeout"}
        body = json.loads(bytes(clients[0].answer).split(b"\r\n\r\n", 1)[1])
        assert "request head not complete 1 s after its first byte" in body["message"]

    asyncio.run(main())
    malformed = [r for r in sink.records if r.kind == "malformed"]
    assert len(malformed) == FLOOD
    assert {(r.status, r.decision, r.method, r.path) for r in malformed} == {(408, "deny", "GET", "/_ping")}
    assert all(r.reason.startswith("moorage: request head not complete") for r in malformed)
