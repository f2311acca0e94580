"""TLS termination that keeps TCP's half-close.

asyncio's own TLS transport shuts the whole connection down when the peer sends
close_notify. The docker CLI sends one as soon as it has no more stdin for a
hijacked stream (Go's ``CloseWrite``), yet still expects the output that
follows, as Docker's own daemon delivers it. So TLS runs here over memory BIOs:
close_notify from the client becomes an EOF on the plaintext side, and the
gateway keeps writing until it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["terminate_tls"]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, dict[str, Any]], Awaitable[None]]
"""Serves the plaintext streams of one connection; the dict holds the TLS facts
(``peercert``, ``peercert_der``, ``peername``)."""


async def terminate_tls(
    tcp_reader: asyncio.StreamReader,
    tcp_writer: asyncio.StreamWriter,
    ctx: ssl.SSLContext,
    handler: Handler,
    handshake_timeout: float,
    limit: int,
) -> None:
    """Serve one TCP connection through TLS: handshake within ``handshake_timeout``,
    then ``handler`` gets plaintext streams (``limit`` bounds their reader's buffer) and
    the peer's certificate. A client's close_notify is an EOF, not the end of the connection."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_side=True)

    def flush() -> None:
        data = outgoing.read()
        if data:
            tcp_writer.write(data)

    try:
        async with asyncio.timeout(handshake_timeout):
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    flush()
                    await tcp_writer.drain()
                    data = await tcp_reader.read(1 << 16)
                    if not data:
                        return
                    incoming.write(data)
        flush()
        await tcp_writer.drain()
    except (ssl.SSLError, OSError, TimeoutError):
        tcp_writer.close()
        return

    info = {"peercert": tls.getpeercert(), "peercert_der": tls.getpeercert(binary_form=True),
            "peername": tcp_writer.get_extra_info("peername")}  # fmt: skip
    ours, theirs = socket.socketpair()
    app_reader, app_writer = await asyncio.open_connection(sock=ours, limit=1 << 16)
    gw_reader, gw_writer = await asyncio.open_connection(sock=theirs, limit=limit)

    async def client_to_gateway() -> None:
        try:
            while True:
                # Drain before waiting: a request can arrive in the same segment as the
                # handshake's last message, and the client then waits for its answer.
                while True:
                    try:
                        chunk = tls.read(1 << 16)
                    except ssl.SSLWantReadError:
                        break
                    except ssl.SSLZeroReturnError:  # close_notify: the client's half-close
                        return
                    if not chunk:
                        return
                    app_writer.write(chunk)
                flush()  # post-handshake messages (TLS 1.3 tickets, key updates)
                await app_writer.drain()
                data = await tcp_reader.read(1 << 16)
                if not data:
                    return
                incoming.write(data)
        except (ssl.SSLError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                app_writer.write_eof()

    async def gateway_to_client() -> None:
        try:
            while data := await app_reader.read(1 << 16):
                tls.write(data)
                flush()
                await tcp_writer.drain()
            with contextlib.suppress(ssl.SSLError):
                tls.unwrap()
            flush()
            await tcp_writer.drain()
        except (ssl.SSLError, OSError):
            pass
        finally:
            tcp_writer.close()

    up = asyncio.ensure_future(client_to_gateway())
    down = asyncio.ensure_future(gateway_to_client())
    try:
        await handler(gw_reader, gw_writer, info)
        await down
    finally:
        up.cancel()
        down.cancel()
        app_writer.close()
