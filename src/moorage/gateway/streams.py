"""Relaying answers: streams cut into lines (events lose Moorage's labels, builds
are watched for the image ids they make), hijacked connections spliced, and the
engine's identifying headers put on the gateway's own answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable
from typing import Any

from moorage.admission.owners import ImageOwners
from moorage.gateway import answers
from moorage.gateway.http import Limits, ResponseHead, iter_chunks, read_body
from moorage.gateway.upstream import Conn

__all__ = [
    "HIJACK_TYPES",
    "SMALL_BODY",
    "BuildIds",
    "Lines",
    "add_warnings",
    "as_engine",
    "dump_json",
    "identifying_headers",
    "relay_stream",
    "splice",
    "strip_line",
    "without_length",
]

# Answers up to this size go out in one write; Moorage's own small bodies are read whole.
SMALL_BODY = 64 * 1024
HIJACK_TYPES = ("application/vnd.docker.raw-stream", "application/vnd.docker.multiplexed-stream")
# The headers that say which engine answers (the engine sends them on every answer).
_ENGINE_HEADERS = ("api-version", "docker-experimental", "ostype", "server")
_IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
_BUILT = re.compile(r"^Successfully built ([0-9a-f]{12,64})$")


def identifying_headers(resp: ResponseHead) -> tuple[tuple[str, str], ...]:
    """The headers of an engine answer that say which engine it is."""
    return tuple((k, v) for k, v in resp.headers if k.lower() in _ENGINE_HEADERS)


def as_engine(answer: bytes, headers: tuple[tuple[str, str], ...]) -> bytes:
    """A gateway answer with the engine's identifying headers (its ``Server`` replacing
    the gateway's), so a client sees the same headers whoever answered."""
    if not headers:
        return answer
    head, sep, body = answer.partition(b"\r\n\r\n")
    first, *lines = head.split(b"\r\n")
    names = {k.lower().encode() for k, _ in headers}
    kept = [ln for ln in lines if ln.split(b":", 1)[0].strip().lower() not in names]
    ours = [f"{k}: {v}".encode("latin-1", "replace") for k, v in headers]
    return b"\r\n".join([first, *ours, *kept]) + sep + body


def without_length(resp: ResponseHead) -> tuple[tuple[str, str], ...]:
    """The headers of an answer without its framing (the body is re-framed)."""
    return tuple((k, v) for k, v in resp.headers if k.lower() not in ("content-length", "transfer-encoding"))


class Lines:
    """Cut a stream into lines and pass each through ``each`` (JSON streams: one
    document a line). A line past 1 MiB passes through untouched."""

    def __init__(self, each: Callable[[bytes], bytes]) -> None:
        self.each = each
        self.buf = b""

    def __call__(self, data: bytes) -> bytes:
        self.buf += data
        if b"\n" not in data:
            if len(self.buf) > 1 << 20:
                out, self.buf = self.buf, b""
                return out
            return b""
        *lines, self.buf = self.buf.split(b"\n")
        return b"".join(self.each(line) + b"\n" for line in lines)

    def end(self) -> bytes:
        """What is left at the end of the stream, passed through ``each``."""
        rest, self.buf = self.buf, b""
        return self.each(rest) if rest else b""


def strip_line(line: bytes) -> bytes:
    """One line of a JSON stream without Moorage labels (no newline added)."""
    out = answers.strip_answer(line)
    return out if out is line else out.rstrip(b"\n")


class BuildIds(Lines):
    """Watch a build's progress stream, passing it on unchanged, and record the image
    ids it produces as the caller's team's: from the aux ``{"ID": ...}`` messages, a
    quiet build's final ``sha256:...`` line, or (API < 1.30) ``Successfully built``."""

    def __init__(self, owners: ImageOwners, team: str, before: frozenset[str]) -> None:
        super().__init__(self._see)
        self.owners = owners
        self.team = team
        self.before = before  # image ids that existed before the build: never claimed by it
        self.short_ids: list[str] = []

    def record(self, image_id: str) -> None:
        """Record an image the build made as the team's (never one that existed before)."""
        if image_id and image_id not in self.before:
            self.owners.record(image_id, self.team)

    def __call__(self, data: bytes) -> bytes:
        super().__call__(data)  # the lines are only looked at
        return data

    def end(self) -> bytes:
        """Look at the last line; nothing more goes out (the stream passed unchanged)."""
        super().end()
        return b""

    def _see(self, line: bytes) -> bytes:
        if b"sha256:" not in line and b"Successfully built" not in line:
            return line
        try:
            msg = json.loads(line)
        except ValueError:
            return line
        if not isinstance(msg, dict):
            return line
        aux = msg.get("aux")
        stream = msg.get("stream")
        if isinstance(aux, dict) and isinstance(aux.get("ID"), str) and _IMAGE_ID.match(aux["ID"]):
            self.record(aux["ID"])
        elif isinstance(stream, str):
            text = stream.strip()
            if _IMAGE_ID.match(text):
                self.record(text)
            elif m := _BUILT.match(text):
                self.short_ids.append(m.group(1))
        return line


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def relay_stream(
    resp: ResponseHead, src: asyncio.StreamReader, dst: asyncio.StreamWriter, feed: Lines, limits: Limits
) -> bool:
    """Relay a streamed answer through ``feed`` (bytes in, bytes out, as they come).
    Returns whether the upstream connection can be used again."""
    if resp.chunked:
        dst.write(resp.encode())
        # the framing core's chunk rules (502: the engine's fault), not a second parser
        async for data in iter_chunks(src, limits, 502):
            out = feed(data)
            if out:
                dst.write(_chunk(out))
                await dst.drain()
        tail = feed.end()
        dst.write((_chunk(tail) if tail else b"") + b"0\r\n\r\n")
        await dst.drain()
        return True
    length = resp.get("content-length")
    if length is not None:
        body = await read_body(src, False, int(length), 64 << 20, limits, 502)
        data = feed(body) + feed.end()
        dst.write(resp.encode((*without_length(resp), ("Content-Length", str(len(data))))) + data)
        return True
    dst.write(resp.encode())
    while data := await src.read(1 << 16):
        dst.write(feed(data))
        await dst.drain()
    dst.write(feed.end())
    return False


async def splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: Conn) -> None:
    """Join a hijacked client connection to its upstream until both sides are done."""

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(1 << 16):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # half-close: the other side sees EOF (stdin closed) and can still answer
            with contextlib.suppress(OSError, RuntimeError, NotImplementedError, AttributeError):
                if dst.can_write_eof():
                    dst.write_eof()

    up = asyncio.ensure_future(pipe(conn.reader, writer))
    down = asyncio.ensure_future(pipe(reader, conn.writer))
    await up
    # The engine is done (the process exited); give the client a moment to finish.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(down), 2.0)
    down.cancel()
    conn.close()


def add_warnings(lines: list[str]) -> Callable[[Any], Any]:
    """An answer filter that appends ``lines`` to the answer's ``Warnings``."""

    def add(doc: Any) -> Any:
        if isinstance(doc, dict):
            doc["Warnings"] = [*(doc.get("Warnings") or []), *lines]
        return doc

    return add


def dump_json(obj: Any) -> bytes:
    """Compact JSON bytes, as the gateway sends its own answers."""
    return json.dumps(obj, separators=(",", ":")).encode()
