"""Forwarding: a judged request goes to the engine, its answer comes back through
the response phase (label stripping, team filters, build bookkeeping, hijacks)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import IO, Any

from moorage.admission import tenancy
from moorage.admission.driver import fetch
from moorage.admission.errors import Hidden
from moorage.admission.ownership import Inspect
from moorage.admission.records import Outcome
from moorage.engine_api.endpoints import Operation
from moorage.engine_api.kinds import kind
from moorage.gateway import answers
from moorage.gateway.base import _GatewayBase
from moorage.gateway.http import (
    RequestHead,
    ResponseHead,
    parse_response_head,
    read_body,
    relay_chunked,
    relay_fixed,
)
from moorage.gateway.streams import (
    HIJACK_TYPES,
    SMALL_BODY,
    BuildIds,
    Lines,
    dump_json,
    identifying_headers,
    relay_stream,
    splice,
    strip_line,
    without_length,
)
from moorage.gateway.upstream import Conn, UpstreamError
from moorage.identity import Principal

__all__ = []


class _Forwarding(_GatewayBase):
    """Send a judged request upstream and relay the answer."""

    async def _answer_filter(
        self, op: Operation, p: Principal, outcome: Outcome, inner: Callable[[Any], Any] | None
    ) -> Callable[[Any], Any] | None:
        """What to do to a JSON answer before it leaves (None: pass it as it is, except
        that Moorage's labels are always taken out of answers that can carry them)."""
        answer = kind(op.kind).answer
        if answer == "team-tasks" and not p.sees_all:
            return await self._task_filter(p)
        if answer == "team-usage" and not p.sees_all:
            team = p.team

            def own_usage(doc: Any) -> Any:
                # disk use of the team's containers and volumes only (names and sizes of
                # other teams' objects are theirs); images and build cache are shared
                if isinstance(doc, dict):
                    for key in ("Containers", "Volumes"):
                        items = doc.get(key)
                        if isinstance(items, list):
                            doc[key] = [i for i in items if isinstance(i, dict)
                                        and (i.get("Labels") or {}).get(tenancy.TEAM) == team]  # fmt: skip
                return inner(doc) if inner is not None else doc

            return own_usage
        if answer == "no-join-tokens" and "admin" not in p.roles:
            # The join tokens let a node join the swarm past Moorage: admins only.
            def without_tokens(doc: Any) -> Any:
                if isinstance(doc, dict):
                    doc.pop("JoinTokens", None)
                return inner(doc) if inner is not None else doc

            return without_tokens
        if answer == "same-network" and op.object_ref and outcome.object_id:
            expected, ref = outcome.object_id, op.object_ref

            def same_network(doc: Any) -> Any:
                # the reference was passed through: it must still name the checked network
                if isinstance(doc, dict) and doc.get("Id") != expected:
                    raise Hidden(tenancy.not_found("network", ref), engine_words=True)
                return doc

            return same_network
        if answer == "record-commit":
            owners, team = self.owners, p.team

            def record_commit(doc: Any) -> Any:
                # a committed image is its committer's team's, kept where no client writes
                if isinstance(doc, dict) and isinstance(doc.get("Id"), str):
                    owners.record(doc["Id"], team)
                return inner(doc) if inner is not None else doc

            return record_commit
        return inner

    async def _task_filter(self, p: Principal) -> Callable[[Any], Any]:
        target = answers.inject_team_filter("/services", p.team)
        status, services = await self.upstream.call_json("GET", target)
        mine = {s.get("ID") for s in services} if status == 200 and services else set()

        def keep(tasks: Any) -> Any:
            return [t for t in tasks if t.get("ServiceID") in mine] if isinstance(tasks, list) else []

        return keep

    async def _record_short_ids(self, watch: BuildIds) -> None:
        """Builds on API versions before 1.30 name their image only as ``Successfully
        built <12 hex digits>``: resolve those to full ids for the owner store."""
        for short in watch.short_ids:
            status, doc = await fetch(self.upstream, Inspect("image", short))
            if status == 200 and isinstance(doc, dict):
                watch.record(str(doc.get("Id", "")))

    async def _image_ids(self) -> frozenset[str]:
        """Every image id the engine holds now (intermediate images included)."""
        status, images = await self.upstream.call_json("GET", "/images/json?all=1", limit=256 << 20)
        if status != 200 or not isinstance(images, list):
            raise UpstreamError(f"listing images before a build answered {status}")
        return frozenset(str(i.get("Id", "")) for i in images if isinstance(i, dict))

    async def _forward(
        self,
        head: RequestHead,
        op: Operation,
        p: Principal,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        body: bytes | IO[bytes] | None,
        outcome: Outcome,
        post_filter: Callable[[Any], Any] | None,
    ) -> bool:
        started = time.perf_counter()
        streamed = (body is None and head.has_body) or op.hijack or not isinstance(body, bytes | None)
        if body is None and head.has_body:
            outcome.body = "reading"  # it streams to the engine from here
        # A pooled connection may have been closed by the engine; only a request we
        # can send again (no streamed body) may use one.
        # A build's result is its team's only if the build made it: a FROM-only or fully
        # cached build reports an image that already existed (a base, another team's).
        before = await self._image_ids() if kind(op.kind).makes_images else None
        conn = await (self.upstream.connect() if streamed else self.upstream.acquire())
        closed = f"the Docker engine at {self.upstream.url} closed the connection"
        try:
            resp_raw = await self._send(conn, head, reader, body)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            conn.close()
            if streamed or conn.fresh:
                raise UpstreamError(closed) from exc
            conn = await self.upstream.connect()
            try:
                resp_raw = await self._send(conn, head, reader, body)
            except (asyncio.IncompleteReadError, ConnectionError) as again:
                conn.close()
                raise UpstreamError(closed) from again
            except BaseException:
                conn.close()
                raise
        except BaseException:
            conn.close()  # a half-sent request must not stay on a connection
            raise
        resp = parse_response_head(resp_raw, self.limits)
        outcome.status = resp.status
        if self.engine_headers is None:
            self.engine_headers = identifying_headers(resp) or None
        # The record is durable before the first byte of the answer leaves.
        await self._record(head, op, p, p, outcome, started)
        resp = resp.with_header("X-Moorage-Request-Id", outcome.request_id)
        watch = None
        if before is not None and resp.status == 200:
            watch = BuildIds(self.owners, p.team, before)
        try:
            result = await self._relay(head, op, resp, conn, reader, writer, post_filter, watch)
        except BaseException:
            conn.close()
            raise
        if watch is not None:
            await self._record_short_ids(watch)
        return result

    async def _send(
        self, conn: Conn, head: RequestHead, reader: asyncio.StreamReader, body: bytes | IO[bytes] | None
    ) -> bytes:
        conn.writer.write(head.encode())
        if isinstance(body, bytes):
            conn.writer.write(body)
        elif body is not None:
            body.seek(0)
            while data := await asyncio.to_thread(body.read, 1 << 20):
                conn.writer.write(data)
                await conn.writer.drain()
        elif head.chunked:
            await relay_chunked(reader, conn.writer)
        elif head.content_length:
            await relay_fixed(reader, conn.writer, head.content_length)
        await conn.writer.drain()
        try:
            return await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as exc:
            raise UpstreamError("the Docker engine sent an oversized response head") from exc

    async def _relay(
        self,
        head: RequestHead,
        op: Operation,
        resp: ResponseHead,
        conn: Conn,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        post_filter: Callable[[Any], Any] | None,
        watch: BuildIds | None = None,
    ) -> bool:
        ctype = (resp.get("content-type") or "").lower()
        if resp.status == 101 or (op.hijack and resp.status == 200 and ctype.startswith(HIJACK_TYPES)):
            writer.write(resp.encode())
            await writer.drain()
            await splice(reader, writer, conn)
            return False
        upstream_keep = "close" not in (resp.get("connection") or "").lower()
        strip = kind(op.kind).strips_labels
        if head.method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200:
            writer.write(resp.encode())
        elif watch is not None or (kind(op.kind).line_stream and resp.status == 200):
            # streams: build progress is watched for the image id, events lose our labels
            feed = watch if watch is not None else Lines(strip_line)
            kept = await relay_stream(resp, conn.reader, writer, feed, self.limits)
            upstream_keep = kept and upstream_keep
        elif (post_filter is not None or strip) and resp.status in (200, 201):
            raw = await read_body(conn.reader, resp.chunked, int(resp.get("content-length") or 0),
                                  64 << 20, self.limits, 502)  # fmt: skip
            if post_filter is not None:
                # the engine's own JSON: no duplicate-key check (label keys may differ in case)
                doc = post_filter(json.loads(raw) if raw.strip() else None)
                data = dump_json(answers.strip_labels(doc) if strip else doc)
            else:
                data = answers.strip_answer(raw)
            if data is raw and not resp.chunked:
                writer.write(resp.encode() + data)
            else:
                writer.write(resp.encode((*without_length(resp), ("Content-Length", str(len(data))))) + data)
        elif resp.chunked:
            writer.write(resp.encode())
            await relay_chunked(conn.reader, writer, self.limits, 502)
        elif (length := resp.get("content-length")) is not None:
            size = int(length)
            if size <= SMALL_BODY:  # one write, one syscall, for the common small answer
                writer.write(resp.encode() + await conn.reader.readexactly(size))
            else:
                writer.write(resp.encode())
                await relay_fixed(conn.reader, writer, size)
        else:  # delimited by close
            writer.write(resp.encode())
            while data := await conn.reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
            conn.close()
            return False
        await writer.drain()
        if upstream_keep:
            self.upstream.release(conn)
        else:
            conn.close()
        return head.keep_alive
