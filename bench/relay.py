"""A bare byte relay, as a floor for any Python proxy: no HTTP parsing, no checks.

    python bench/relay.py ENGINE_SOCKET LISTEN_SOCKET

Each client connection gets its own engine connection, and bytes are copied both
ways on uvloop protocols. `bench/gateway.py` measures it beside Moorage and HAProxy,
to show what the machine allows a proxy written in Python before it does any work.
It is not a gateway: it checks nothing and records nothing.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import cast

import uvloop


class _Pipe(asyncio.Protocol):
    def __init__(self, peer: _Pipe | None = None) -> None:
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:
            self.early.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class _Client(_Pipe):
    def __init__(self, engine: str) -> None:
        super().__init__()
        self.engine = engine

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, up = await loop.create_unix_connection(lambda: _Pipe(self), self.engine)
        self.peer = up
        assert up.transport is not None
        for data in self.early:
            up.transport.write(data)
        self.early.clear()


async def _main(engine: str, listen: str) -> None:
    if os.path.exists(listen):
        os.unlink(listen)
    await asyncio.get_running_loop().create_unix_server(lambda: _Client(engine), listen)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(_main(sys.argv[1], sys.argv[2]))
