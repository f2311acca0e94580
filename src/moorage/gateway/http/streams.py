"""The framing rules on asyncio streams: relay or read a body, checking its framing as it goes.

The chunked readers follow the rules of :mod:`~moorage.gateway.http.chunked`.
``status`` is 400 when the body is a client's and 502 when it is the engine's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import IO

from moorage.gateway.http.chunked import parse_chunk_size, parse_trailer_line
from moorage.gateway.http.errors import ClientFault, fault
from moorage.gateway.http.limits import DEFAULT as _DEFAULT
from moorage.gateway.http.limits import Limits

__all__ = ["iter_chunks", "read_body", "relay_chunked", "relay_fixed", "spool_body"]


# The same rules as ChunkedScanner, on asyncio streams. ``status`` is 400 when the
# body is a client's and 502 when it is the engine's.
async def _chunk_line(reader: asyncio.StreamReader, limits: Limits, status: int) -> bytes:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as exc:
        raise fault(status)(status, f"chunk line longer than {limits.max_chunk_line} bytes") from exc
    if len(line) > limits.max_chunk_line:
        raise fault(status)(status, f"chunk line longer than {limits.max_chunk_line} bytes")
    return line


async def _chunk_end(reader: asyncio.StreamReader, status: int) -> None:
    if await reader.readexactly(2) != b"\r\n":
        raise fault(status)(status, "chunk data is not followed by CRLF")


async def _trailers(reader: asyncio.StreamReader, limits: Limits, status: int) -> list[bytes]:
    lines: list[bytes] = []
    while True:
        line = await _chunk_line(reader, limits, status)
        if parse_trailer_line(line, status):
            return lines
        lines.append(line)
        if len(lines) > limits.max_headers:
            raise fault(status)(status, f"more than {limits.max_headers} trailer fields")


async def relay_chunked(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    limits: Limits | None = None,
    status: int = 400,
) -> None:
    """Copy one chunked body, checking its framing. Size lines are written anew
    (hex size, no extensions), so the receiver reads exactly what was checked."""
    limits = limits or _DEFAULT
    while True:
        size = parse_chunk_size(await _chunk_line(reader, limits, status), limits, status)
        writer.write(b"%x\r\n" % size)
        if size == 0:
            writer.write(b"".join(await _trailers(reader, limits, status)) + b"\r\n")
            await writer.drain()
            return
        remaining = size
        while remaining:
            data = await reader.read(min(remaining, 1 << 16))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            writer.write(data)
            remaining -= len(data)
        await _chunk_end(reader, status)
        writer.write(b"\r\n")
        await writer.drain()


async def iter_chunks(
    reader: asyncio.StreamReader, limits: Limits | None = None, status: int = 400
) -> AsyncIterator[bytes]:
    """The data of one chunked body as it arrives, its framing checked; the trailer
    section is read and dropped. For relays that rewrite a body as it streams."""
    limits = limits or _DEFAULT
    while True:
        size = parse_chunk_size(await _chunk_line(reader, limits, status), limits, status)
        if size == 0:
            await _trailers(reader, limits, status)
            return
        async for data in _pieces(reader, size):
            yield data
        await _chunk_end(reader, status)


async def _pieces(reader: asyncio.StreamReader, n: int) -> AsyncIterator[bytes]:
    """The next ``n`` bytes as they arrive (64 KiB at most at a time)."""
    while n:
        data = await reader.read(min(n, 1 << 16))
        if not data:
            raise asyncio.IncompleteReadError(b"", n)
        n -= len(data)
        yield data


async def relay_fixed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    """Copy ``n`` body bytes."""
    while n:
        data = await reader.read(min(n, 1 << 16))
        if not data:
            raise asyncio.IncompleteReadError(b"", n)
        writer.write(data)
        n -= len(data)
        await writer.drain()


async def spool_body(
    reader: asyncio.StreamReader,
    chunked: bool,
    length: int,
    out: IO[bytes],
    limit: int,
    limits: Limits | None = None,
) -> int:
    """Copy a request body (de-chunked) into ``out``; refuse one over ``limit``.
    Returns its size."""
    total = 0

    if not chunked and length > limit:
        raise ClientFault(413, f"request body of {length} bytes is over the limit of {limit}")
    async for data in iter_chunks(reader, limits) if chunked else _pieces(reader, length):
        total += len(data)
        if total > limit:
            raise ClientFault(413, f"request body is over the limit of {limit} bytes")
        out.write(data)
    return total


async def read_body(
    reader: asyncio.StreamReader,
    chunked: bool,
    length: int,
    limit: int,
    limits: Limits | None = None,
    status: int = 400,
) -> bytes:
    """Read a whole body into memory (de-chunked); refuse one over ``limit``."""
    if not chunked:
        if length > limit:
            raise fault(status)(413, f"request body of {length} bytes is over the limit of {limit}")
        return await reader.readexactly(length)
    parts: list[bytes] = []
    total = 0
    async for data in iter_chunks(reader, limits, status):
        total += len(data)
        if total > limit:
            raise fault(status)(413, f"request body is over the limit of {limit} bytes")
        parts.append(data)
    return b"".join(parts)
