"""The gateway: an Engine API endpoint that knows who is asking.

One asyncio task per client connection. For each request: parse the head
(limits), name the operation, identify the caller, check the role, check the
object belongs to the caller's team, parse the body only where a decision needs
it, ask admission, forward, record. Everything else streams through.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import pwd
import re
import secrets
import socket
import ssl
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, quote, urlencode

from moorage.admission import Admission, AdmissionError, AdmissionRequest, AllowAll, bodies, ownership
from moorage.admission.driver import drive, fetch
from moorage.admission.errors import (
    ClientError,
    Hidden,
    InternalError,
    NotServed,
    PolicyRefusal,
    Refusal,
    for_status,
)
from moorage.admission.exceptions import ExceptionsError, ExceptionStore
from moorage.admission.ownership import Inspect, Owned
from moorage.audit import AuditError, AuditRecord, AuditSink
from moorage.cluster.swarmops import SECURITY_ASPECTS, ca_rotates, classify_update
from moorage.cluster.trust import ClusterTrust
from moorage.engine_api.canonical import (
    MAX_KNOWN_VERSION,
    RequestError,
    Target,
    parse_version,
    read_target,
)
from moorage.engine_api.canonical import read_body as read_json_body
from moorage.engine_api.endpoints import Operation
from moorage.engine_api.kinds import KINDS, kind, summarise
from moorage.engine_api.models import body_type
from moorage.gateway import cluster_api, tenancy
from moorage.gateway.archive import archive_names, context_dockerfile
from moorage.gateway.http import (
    HttpError,
    Limits,
    RequestHead,
    ResponseHead,
    error_response,
    iter_chunks,
    parse_request_head,
    parse_response_head,
    read_body,
    relay_chunked,
    relay_fixed,
    spool_body,
)
from moorage.gateway.owners import ImageOwners
from moorage.gateway.tls import terminate_tls
from moorage.gateway.upstream import Conn, Upstream, UpstreamError
from moorage.gateway.workers import KeyLocks
from moorage.identity import GLOBAL_ROLES, ROLES, IdentityError, Principal, UserDirectory
from moorage.identity.certs import CertStore, certificate_expired, certificate_identity
from moorage.identity.login import LoginError, LoginService
from moorage.identity.mapping import parse_lifetime

__all__ = ["Gateway"]

log = logging.getLogger("moorage.gateway")

# The lists the fast path filters to the team (prunes are filtered too, on the full path).
FILTERED_LISTS = frozenset(k for k, row in KINDS.items() if row.team_filter and not k.endswith(".prune"))
_SMALL_BODY = 64 * 1024
# A body a refusal leaves unread is taken in (and dropped) up to this much, this long.
_DRAIN_LIMIT = 1 << 20
_DRAIN_SECONDS = 2.0
# The operation of a request whose target could not be read.
_UNREAD = Operation("malformed", "unknown")
HIJACK_TYPES = ("application/vnd.docker.raw-stream", "application/vnd.docker.multiplexed-stream")
_REF_SEGMENT = re.compile(r"^(/[a-z]+/)([^/]+)")


class RequestIds:
    """Request ids, unique per request: 8 random hex digits per gateway (so workers
    and restarts never collide), then a counter. A correlation id, not a secret, so
    no random bytes per request."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(4)
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):08x}"


@dataclass
class _Outcome:
    """What happened to one request, for its audit record."""

    decision: str = "allow"
    reason: str = ""
    status: int = 0
    request_id: str = ""  # from the gateway's RequestIds
    object_id: str | None = None
    summary: dict[str, Any] | None = None
    rules: tuple[str, ...] = ()
    mutations: tuple[str, ...] = ()
    policy_version: str = ""
    image_digest: str | None = None
    body: str = "unread"  # the request body: unread, reading (a failed read: unusable), or read
    spool: IO[bytes] | None = None  # a body spooled to a temporary file, closed with the request


class Gateway:
    """Serve the Engine API on listeners, in front of one upstream engine."""

    def __init__(
        self,
        upstream: Upstream,
        users: UserDirectory | None = None,
        admission: Admission | None = None,
        audit: AuditSink | None = None,
        limits: Limits | None = None,
        admin_uids: tuple[int, ...] = (0,),
        clock: Callable[[], float] = time.time,
        exceptions: ExceptionStore | None = None,
        fast_path: bool = True,
        shared: tenancy.SharedObjects | None = None,
        owners: ImageOwners | None = None,
        allow_unknown_fields: bool = False,
        cluster: ClusterTrust | None = None,
        login: LoginService | None = None,
    ) -> None:
        """``fast_path=False`` serves every request on the full path (for comparison).
        ``shared`` names the networks and volumes no team owns that every team may use;
        ``owners`` keeps who built which image (memory only when not given)."""
        self.upstream = upstream
        self.fast_path = fast_path
        self._fast: set[Any] = set()  # FastClient connections still on the fast path
        self._fast_pool: list[Any] = []  # idle FastUpstream connections
        self._sweeper: asyncio.TimerHandle | None = None
        self.users = users or UserDirectory()
        self.admission = admission or AllowAll()
        self.audit = audit
        self.limits = limits or Limits()
        self.admin_uids = admin_uids
        self.clock = clock
        self._servers: list[asyncio.Server] = []
        # asyncio holds tasks weakly. A connection whose client has half-closed is
        # referenced by nothing else, and the garbage collector would destroy it
        # mid-stream (this cut attach streams before their first byte).
        self._live: set[asyncio.Task[Any]] = set()
        # one decision at a time per serial key, across workers when there are several
        self.key_locks = KeyLocks(None)
        self.exceptions = exceptions
        self.cluster = cluster  # enrolment and attestation; None: this gateway governs no cluster
        # `moorage login`: providers, mapping and the store of login certificates. With it,
        # a TLS client certificate counts only while its record in the store is live.
        self.login = login
        self.certs: CertStore | None = login.certs if login is not None else None
        self.allow_unknown_fields = allow_unknown_fields
        self._api_max: tuple[int, int] | None = None
        self.shared = shared or tenancy.SharedObjects()
        self.owners = owners or ImageOwners()
        # The engine's identifying headers (Api-Version, Ostype, ...), learnt once, so
        # the gateway's own answers carry them as the engine's do.
        self.engine_headers: tuple[tuple[str, str], ...] | None = None
        self.request_ids = RequestIds()

    # ------------------------------------------------------------ listeners
    async def listen_unix(self, path: str, mode: int = 0o666, sock: socket.socket | None = None) -> None:
        """Listen on a unix socket. Anyone may connect; the uid decides what they may do.
        ``sock``: a listening socket already bound to ``path`` (shared by workers)."""
        if sock is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        where: dict[str, Any] = {"sock": sock} if sock is not None else {"path": path}
        if self.fast_path:
            from moorage.gateway.fastpath import FastClient  # it imports this module

            server = await asyncio.get_running_loop().create_unix_server(lambda: FastClient(self), **where)
            self._sweep()
        else:
            server = await asyncio.start_unix_server(
                lambda r, w: self._connection(r, w, "unix"), limit=self.limits.max_head_bytes, **where
            )
        if sock is None:
            os.chmod(path, mode)
        self._servers.append(server)

    async def _fast_connect(self) -> Any:
        """A new upstream connection for the fast path (a FastUpstream)."""
        from moorage.gateway.fastpath import FastUpstream

        loop = asyncio.get_running_loop()
        up = self.upstream
        if up.path is not None:
            _, proto = await loop.create_unix_connection(lambda: FastUpstream(self), up.path)
        else:
            assert up.host is not None and up.port is not None
            _, proto = await loop.create_connection(lambda: FastUpstream(self), up.host, up.port, ssl=up.tls)
        return proto

    def _sweep(self) -> None:
        """Close fast-path connections idle past the limit (one timer, not one per request)."""
        now = time.monotonic()
        for client in list(self._fast):
            if not client.busy and now - client.last > self.limits.idle_timeout:
                client.close()
        self._sweeper = asyncio.get_running_loop().call_later(min(5.0, self.limits.idle_timeout), self._sweep)

    async def listen_tls(self, host: str, port: int, ctx: ssl.SSLContext, reuse_port: bool = False) -> int:
        """Listen on TCP with TLS that requires a client certificate. Returns the port.
        ``reuse_port``: bind with SO_REUSEPORT, beside other workers on the same port."""
        if ctx.verify_mode != ssl.CERT_REQUIRED and not (self.login and ctx.verify_mode == ssl.CERT_OPTIONAL):
            raise ValueError("the TLS listener must require client certificates (optional: moorage login)")

        async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            self._hold()
            await terminate_tls(
                r, w, ctx, lambda gr, gw, info: self._connection(gr, gw, "tls", info),
                self.limits.head_timeout, self.limits.max_head_bytes,
            )  # fmt: skip

        server = await asyncio.start_server(accept, host, port, reuse_port=reuse_port or None)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for client in list(self._fast):
            client.close()
        for up in list(self._fast_pool):
            up.abandon()
        self._fast_pool.clear()
        live = [t for t in self._live if t is not asyncio.current_task()]
        for task in live:
            task.cancel()
        await asyncio.gather(*live, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self.upstream.close()

    # ------------------------------------------------------------- identity
    def _identify(self, extra: Callable[[str], Any], how: str, tls_info: dict[str, Any]) -> Principal | str:
        """The principal behind a connection (``extra`` is its transport's
        ``get_extra_info``), or the reason there is none."""
        if how == "unix":
            sock: socket.socket = extra("socket")
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid, uid, _ = struct.unpack("3i", creds)
            source = f"unix:uid={uid},pid={pid}"
            user = self.users.by_uid(uid)
            if user is not None:
                return Principal(user.name, user.teams, user.roles, "peercred", source)
            if uid in self.admin_uids:
                return Principal(_uid_name(uid), (), ("admin",), "peercred", source)
            return (
                f"uid {uid} is not a Moorage user. Ask an administrator to add it to the "
                "users file (users.NAME.uid)"
            )
        cert = tls_info.get("peercert") or {}
        peer = tls_info.get("peername") or ("?", 0)
        source = f"tcp:{peer[0]}:{peer[1]}"
        if not cert:
            return "no client certificate: run moorage login (or use one from moorage cert issue)"
        if self.certs is not None:
            serial, digest = certificate_identity(tls_info.get("peercert_der") or b"")
            record, why = self.certs.live(serial, digest)
            if record is not None:
                return Principal(record.user, record.teams, record.roles, f"login:{record.provider}", source,
                                 cert=(serial, digest))  # fmt: skip
            if self.certs.get(serial) is not None:
                return why  # ours, and no longer live: revoked or expired
            if certificate_expired(tls_info.get("peercert_der") or b"", self.clock()):
                return "the client certificate has expired: run moorage login, or ask for a new one"
        cn = next((v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"), None)
        if cn is None:
            return "the client certificate has no common name"
        user = self.users.by_cert(cn)
        if user is None:
            return f"certificate CN={cn!r} is not a Moorage user"
        return Principal(user.name, user.teams, user.roles, "tls", source)

    # ----------------------------------------------------------- connection
    def _hold(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._live.add(task)
            task.add_done_callback(self._live.discard)

    async def _connection(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        how: str,
        tls_info: dict[str, Any] | None = None,
        head_since: float | None = None,
    ) -> None:
        """Serve one client connection. A request head must reach its blank line
        within ``head_timeout`` of its first byte (``head_since``: the loop time of
        that byte, when the fast path hands over a head already begun); between
        requests the connection may idle for ``idle_timeout``. A head that is
        refused is answered with a 4xx that names the problem and recorded, and the
        connection ends."""
        self._hold()
        who = self._identify(writer.get_extra_info, how, tls_info or {})
        limits = self.limits
        loop = asyncio.get_running_loop()
        try:
            while True:
                raw = b""
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(None) as deadline:
                        if head_since is None:
                            deadline.reschedule(loop.time() + limits.idle_timeout)
                            raw = await reader.readexactly(1)
                            head_since = loop.time()
                        deadline.reschedule(head_since + limits.head_timeout)
                        raw += await reader.readuntil(b"\r\n\r\n")
                    head = parse_request_head(raw, limits)
                except asyncio.IncompleteReadError as exc:
                    raw += exc.partial
                    if not raw.strip():
                        return  # closed between requests
                    error = HttpError(400, "incomplete request head: the connection closed before its end")
                except asyncio.LimitOverrunError:
                    error = HttpError(
                        431, f"request head is larger than the limit of {limits.max_head_bytes} bytes"
                    )
                except TimeoutError:
                    if not raw and head_since is None:
                        return  # idle past the limit
                    with contextlib.suppress(TimeoutError):  # the part that came, for the record
                        async with asyncio.timeout(0):  # only what is buffered: never waits
                            raw += await reader.read(limits.max_head_bytes)
                    error = HttpError(408, f"request head not complete {limits.head_timeout:g} s after its "
                                           "first byte: send the whole head at once")  # fmt: skip
                except HttpError as exc:
                    error = exc
                else:
                    head_since = None
                    if not await self._request(head, reader, writer, who):
                        return
                    continue
                # Bad input: answered, recorded, and the end of the connection.
                message = f"moorage: {error.message}"
                outcome = _Outcome(decision="deny", reason=message, status=error.status,
                                   request_id=self.request_ids.next())  # fmt: skip
                if self.audit is not None:
                    p = who if isinstance(who, Principal) else None
                    record = self._make_record(RequestHead.salvage(raw), Operation("malformed", "unknown"),
                                               p, who, outcome, started)  # fmt: skip
                    try:
                        await self.audit.record_async(record, durable=False)
                    except AuditError as exc:
                        log.error("audit write failed for a malformed request (%s): %s", message, exc)
                answer = error_response(error.status, message, False, outcome.request_id)
                writer.write(_as_engine(answer, self.engine_headers or ()))
                return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the gateway is closing; end this connection quietly
        except Exception:  # a bug must cost one connection, never the gateway
            log.exception("gateway error")
        finally:
            with contextlib.suppress(Exception):
                await writer.drain()
            writer.close()

    # -------------------------------------------------------------- request
    async def _request(
        self,
        head: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        who: Principal | str,
    ) -> bool:
        """Handle one request; return whether the client connection may be reused."""
        outcome = _Outcome(request_id=self.request_ids.next())
        try:
            return await self._answer(head, reader, writer, who, outcome)
        finally:
            if outcome.spool is not None:
                outcome.spool.close()

    async def _answer(
        self,
        head: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        who: Principal | str,
        outcome: _Outcome,
    ) -> bool:
        started = time.perf_counter()
        principal = who if isinstance(who, Principal) else None
        op = _UNREAD
        try:
            # One reading: the path and query as the engine's router reads them.
            t = read_target(head.method, head.target, await self._max_version())
            op = t.op
            if principal is not None and principal.cert is not None and self.certs is not None:
                # checked at every request: a revocation or logout counts at once
                record, why = self.certs.live(*principal.cert)
                if record is None:
                    principal, who = None, why
            if op.kind in ("moorage.login", "moorage.login.oidc"):
                return await self._login_request(head, op, reader, writer, who, outcome)
            if principal is None:
                raise PolicyRefusal(f"moorage: {who}")
            return await self._authorised(head, op, principal, reader, writer, outcome, t)
        except RequestError as exc:
            return await self._refuse(head, op, principal, who, outcome, started, reader, writer,
                                      for_status(exc.status, exc.message))  # fmt: skip
        except (Refusal, HttpError, UpstreamError, AdmissionError, AuditError) as exc:
            return await self._refuse(head, op, principal, who, outcome, started, reader, writer, exc)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            raise
        except Exception as exc:
            if outcome.status:
                raise  # the answer has started: the connection ends, as it would direct
            # A bug of Moorage's own: the request is refused (never forwarded), answered
            # and recorded; the traceback goes to the log, not to the client.
            log.exception("gateway error on %s %s", head.method, head.path)
            what = type(exc).__name__
            internal = InternalError(f"moorage: an internal error ({what}) refused the request; it was not "
                                      "forwarded. The gateway's log has the details.")  # fmt: skip
            return await self._refuse(head, op, principal, who, outcome, started, reader, writer, internal)

    async def _refuse(
        self,
        head: RequestHead,
        op: Operation,
        principal: Principal | None,
        who: Principal | str,
        outcome: _Outcome,
        started: float,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        exc: Exception,
    ) -> bool:
        """Answer a refusal in Docker's error shape, after its audit record."""
        status, message = _refusal(exc)
        if isinstance(exc, Refusal):
            outcome.decision = exc.decision
        else:  # the framing core's HttpError (client: 4xx; engine: 502) and the other faults
            outcome.decision = "deny" if status in (401, 403, 404) or isinstance(
                exc, AdmissionError | AuditError) else "error"  # fmt: skip
        outcome.reason, outcome.status = message, status
        keep = head.keep_alive and (not head.has_body or outcome.body == "read")
        if head.has_body and outcome.body == "unread":
            # A refusal before the body was read: take in what the client is still
            # sending (bounded), so it reads this answer instead of a broken pipe.
            try:
                await asyncio.wait_for(read_body(reader, head.chunked, head.content_length, _DRAIN_LIMIT,
                                                 self.limits), _DRAIN_SECONDS)  # fmt: skip
                keep = head.keep_alive
            except (HttpError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ConnectionError):  # fmt: skip
                keep = False
        with contextlib.suppress(AuditError):  # already a refusal; the log has the failure
            await self._record(head, op, principal, who, outcome, started)
        answer = error_response(status, message, keep, outcome.request_id)
        writer.write(_as_engine(answer, await self._learn_engine_headers()))
        return keep

    async def _authorised(
        self,
        head: RequestHead,
        op: Operation,
        p: Principal,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        outcome: _Outcome,
        t: Target,
    ) -> bool:
        if op.kind == "unknown":
            # Fail closed for every role: an endpoint Moorage can't classify can't be judged.
            raise PolicyRefusal(
                f"moorage: {head.method} {op.route} is not an Engine API endpoint Moorage knows, so it "
                "is refused for every role. If a newer engine added it, upgrade Moorage.",
            )
        security_update = op.kind == "swarm.update" and p.may("swarm.security")
        if not p.may(op.action_class) and not security_update:
            what = "an endpoint Moorage does not know" if op.kind == "unknown" else op.kind
            if op.reads_only and op.object_ref:
                # A lookup the role may not make answers like a missing object: it tells
                # nothing about what exists, and `docker inspect NAME`, which tries each
                # object type in turn, goes on to the next type.
                raise Hidden(f"moorage: {op.object_ref} not found ({what} is not granted to "
                                     f"roles {', '.join(p.roles) or 'none'})")  # fmt: skip
            raise PolicyRefusal(
                f"moorage: {p.user} (roles: {', '.join(p.roles) or 'none'}) may not call "
                f"{head.method} {op.route} ({what}, class {op.action_class}). Ask an "
                "administrator for a role that grants it.",
            )
        if op.kind.startswith("moorage."):
            return await self._moorage_api(head, op, p, reader, writer, outcome)
        target = t.encoded  # never the client's spelling of the path or query
        owned: Owned | None = None
        if op.object_type and op.object_ref:
            ref = op.object_ref
            tag = t.first("tag") if op.kind == "image.push" else None
            if tag:  # the engine pushes NAME:TAG (or NAME@DIGEST): that is the image to own
                ref = f"{ref}@{tag}" if tag.startswith("sha256:") else f"{ref}:{tag}"
            owned = await self._check_owner(op, p, op.object_type, ref)
            outcome.object_id = owned.full_id
            if op.object_type == "container" and "/" in op.object_ref:
                # PARENT/ALIAS: the engine resolves the link name (the container it points
                # at, checked above) and, with link=1, changes PARENT: check that too. The
                # name is forwarded as it is: the engine resolves links by name only.
                await self._check_owner(op, p, "container", op.object_ref.split("/", 1)[0])
            else:
                target = self._rewrite_ref(target, op, owned)
        if op.kind == "image.save" and op.object_ref is None and not p.sees_all:
            # `docker save A B` names its images in the query: each must be readable
            for name in t.query.get("names", []):
                await self._check_owner(op, p, "image", name)
        body: Any = None
        raw_body: bytes | IO[bytes] | None = None
        row = kind(op.kind)
        if body_type(op.kind) is not None:
            outcome.body = "reading"
            raw_body = await read_body(reader, head.chunked, head.content_length, self.limits.max_body_bytes)
            outcome.body = "read"
            body = self._decode_body(op, raw_body, outcome)
            outcome.summary = summarise(op.kind, body)
            if op.kind == "swarm.update":
                await self._check_swarm_update(p, body, t.query, outcome)
            if row.owner_labels:
                existing = owned.labels if owned and op.kind.endswith(".update") else None
                body = tenancy.apply_owner_labels(op.kind, body if body is not None else {},
                                                  p, existing)  # fmt: skip
            if row.names_container and not p.sees_all:
                ref = tenancy.get_ci(body, "Container")
                if isinstance(ref, str):
                    await self._check_owner(op, p, "container", ref)
            if not p.sees_all:
                await drive(ownership.check_references(self._tenancy(p), op.kind, body), self.upstream)
        if raw_body is None and head.has_body and not row.streamed_body:
            # The engine doesn't read this endpoint's body (API >= 1.24): drop it, so no
            # client bytes reach the engine unread by Moorage.
            outcome.body = "reading"
            await read_body(reader, head.chunked, head.content_length, self.limits.max_body_bytes)
            outcome.body = "read"
            raw_body = b""
        if op.kind == "image.build" and not p.sees_all and t.first("version") == "2":
            raise PolicyRefusal("moorage: BuildKit builds (version=2) take their Dockerfile over a session "
                                 "Moorage can't read, so the images they read can't be checked. Build with "
                                 "the classic builder: DOCKER_BUILDKIT=0 docker build ...")  # fmt: skip
        if op.kind in ("image.load", "image.build") and not p.sees_all and head.has_body:
            # An archive names the tags it writes, a build context the images its build
            # reads: spool it, read those before the engine acts, send on what was read.
            outcome.body = "reading"
            outcome.spool = spool = await self._spool(head, reader)
            outcome.body = "read"
            raw_body = spool
            if op.kind == "image.load":
                names = await asyncio.to_thread(archive_names, spool)
                await drive(ownership.check_targets(self._tenancy(p), op, {}, names), self.upstream)
            else:
                await self._check_build_reads(p, t, spool)
        if row.writes_image_name and not p.sees_all:
            query = parse_qs(target.partition("?")[2], keep_blank_values=True)
            await drive(ownership.check_targets(self._tenancy(p), op, query), self.upstream)
        if not p.sees_all and row.team_filter:
            target = tenancy.inject_team_filter(target, p.team)  # only the team's own objects
        elif not p.sees_all and row.admin_only:
            raise PolicyRefusal(f"moorage: {op.kind} removes every team's unused images or build cache, "
                                 "so only an admin may run it")  # fmt: skip
        self._require_audit(op)
        if op.reads_only:
            return await self._carry_out(head, target, op, p, reader, writer, body, raw_body, outcome, None)
        judged = body
        if op.kind == "service.update" and t.first("rollback") == "previous" and owned is not None:
            # The engine runs the service's previous spec and ignores the body: judge that.
            judged = await drive(bodies.previous_spec(owned.full_id), self.upstream)
        request = AdmissionRequest(p, op, head.method, target, t.query, judged)
        key = self.admission.serial_key(request)
        if key is None:
            return await self._carry_out(
                head, target, op, p, reader, writer, body, raw_body, outcome, request
            )
        # Decide and carry out one at a time per key: a quota counted from the
        # engine's live state can't be overshot by creates racing each other.
        async with self.key_locks.hold(key):
            return await self._carry_out(
                head, target, op, p, reader, writer, body, raw_body, outcome, request
            )

    async def _carry_out(
        self,
        head: RequestHead,
        target: str,
        op: Operation,
        p: Principal,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        body: Any,
        raw_body: bytes | IO[bytes] | None,
        outcome: _Outcome,
        request: AdmissionRequest | None,
    ) -> bool:
        post_filter: Callable[[Any], Any] | None = None
        after: tuple[tuple[str, str], ...] = ()
        if request is not None:
            decision = await self.admission.admit_async(request, self.upstream)
            outcome.rules = decision.rules
            outcome.mutations = decision.mutations
            outcome.policy_version = decision.policy_version
            outcome.image_digest = decision.image_digest
            if not decision.allowed:
                # a 404 ("No such image": the CLI then pulls it) is worded as the engine words it
                raise for_status(decision.status, f"moorage: {decision.reason}" if decision.status == 403
                                 else decision.reason, engine_words=decision.status == 404)  # fmt: skip
            rollback = (request.query.get("rollback") or [""])[0] == "previous"
            if decision.mutations and op.kind == "service.update" and rollback:
                # The engine runs the previous spec as it was: what the decision adds can't reach it.
                raise PolicyRefusal(
                    "moorage: a rollback runs the service's previous spec as it was, and that spec lacks "
                    f"what Moorage requires now ({'; '.join(decision.mutations)}). Update the service "
                    "instead (docker service update), so Moorage can add it.",
                )
            if decision.body is not None:
                body = decision.body
            if decision.target is not None:
                target = decision.target
            after = decision.after
            if decision.warnings and kind(op.kind).warnings:
                post_filter = _add_warnings(list(decision.warnings))
        if isinstance(raw_body, bytes):
            raw_body = b"" if body is None else _dump(body)
        out_head = head.with_target(target)
        if isinstance(raw_body, bytes):
            # Moorage's encoding of what was judged, typed as what it is
            out_head = out_head.with_json_body(len(raw_body)) if raw_body else out_head.with_body_length(0)
        elif raw_body is not None:  # a spooled archive, sent on as it was checked
            out_head = out_head.with_body_length(raw_body.seek(0, os.SEEK_END))
            raw_body.seek(0)
        post_filter = await self._answer_filter(op, p, outcome, post_filter)
        result = await self._forward(out_head, op, p, reader, writer, raw_body, outcome, post_filter)
        for method, path in after:
            try:
                status, answer = await self.upstream.call_json(method, path)
            except Exception as exc:
                status, answer = 0, str(exc)
            if status >= 300 or status == 0:
                log.warning("follow-up %s %s answered %s: %s", method, path, status, answer)
        return result

    def _decode_body(self, op: Operation, raw: bytes, outcome: _Outcome) -> Any:
        """The body as the engine reads it (Go's decoder, the engine's types). A field
        Moorage doesn't know is refused on a change, unless an admin setting lets it
        through; then it is forwarded as sent and named in the audit record."""
        try:
            decoded = read_json_body(op.kind, raw, keep_unknown=self.allow_unknown_fields)
        except RequestError as exc:
            raise for_status(exc.status, f"moorage: {exc.message}") from exc
        if decoded.unknown and not op.reads_only:
            if not self.allow_unknown_fields:
                raise ClientError(
                    f"moorage: the {op.kind} body has fields the Docker Engine API (as Moorage knows it) "
                    f"does not define: {', '.join(decoded.unknown[:10])}. Moorage can't judge what it "
                    "doesn't know: remove them, or ask an administrator (moorage up "
                    "--allow-unknown-fields).",
                )
            outcome.reason = f"unknown fields passed by setting: {', '.join(decoded.unknown[:10])}"
        return decoded.value

    async def _max_version(self) -> tuple[int, int]:
        """The newest API version the engine serves (asked once, from /version)."""
        if self._api_max is None:
            try:
                status, doc = await self.upstream.call_json("GET", "/version")
            except UpstreamError:
                return MAX_KNOWN_VERSION  # the engine is down: ask again next time
            text = str(doc.get("ApiVersion", "")) if status == 200 and isinstance(doc, dict) else ""
            try:
                self._api_max = min(parse_version(text), MAX_KNOWN_VERSION)
            except RequestError:
                self._api_max = MAX_KNOWN_VERSION  # an engine that doesn't say: refuse what it refuses
        return self._api_max

    async def _check_swarm_update(self, p: Principal, body: Any, query: dict[str, list[str]],
                                  outcome: _Outcome) -> None:  # fmt: skip
        """A swarm update is judged by what it changes: the CA, autolock, join tokens
        and the unlock key are security officers' (and admins'); other settings are
        admins'. A CA rotation let through is expected by the reconciler, which then
        accepts the new trust root."""
        status, current = await self.upstream.call_json("GET", "/swarm")
        if status != 200 or not isinstance(current, dict):
            raise for_status(
                503 if status >= 500 else status, "moorage: the swarm's settings can't be read to judge this"
            )
        aspects = classify_update(current.get("Spec") or {}, body, query)
        outcome.summary = {"changes": sorted(aspects)}
        security = aspects & SECURITY_ASPECTS
        if aspects - SECURITY_ASPECTS and not p.may("swarm.write"):
            raise PolicyRefusal(f"moorage: {p.user} may change the swarm's {', '.join(sorted(security))} "
                                 f"but not its {', '.join(sorted(aspects - SECURITY_ASPECTS))}: that is an "
                                 "administrator's (swarm.write)")  # fmt: skip
        if security and not p.may("swarm.security"):
            raise PolicyRefusal(
                f"moorage: changing the swarm's {', '.join(sorted(security))} is for security officers "
                "(moorage cluster rotate-ca | rotate-tokens | autolock)",
            )
        if self.cluster is not None and ca_rotates(current.get("Spec") or {}, body):
            # only a new root (ForceRotate, or a root the caller supplies): not an expiry change
            self.cluster.rotation_expected = (self.clock(), p.user)

    async def _login_request(
        self,
        head: RequestHead,
        op: Operation,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        who: Principal | str,
        outcome: _Outcome,
    ) -> bool:
        """``POST /moorage/v1/login``: needs no client certificate. Each login, refused or
        not, is a record of its own."""
        started = time.perf_counter()
        if self.login is None:
            raise NotServed("moorage: this gateway has no identity providers (moorage up --identity)")
        outcome.body = "reading"
        raw = await read_body(reader, head.chunked, head.content_length, _SMALL_BODY)
        outcome.body = "read"
        body = tenancy.parse_json_strict(raw, op.kind) if raw.strip() else None
        self._require_audit(op)
        if op.kind == "moorage.login.oidc":  # what `moorage login --oidc` needs for the device flow
            try:
                settings: Any = self.login.oidc_settings()
            except LoginError as exc:
                raise for_status(exc.status, f"moorage: {exc.message}") from exc
            outcome.status = 200
            await self._record(head, op, None, who, outcome, started)
            return await self._write_json(head, writer, outcome, settings)
        if isinstance(body, dict):
            # who the gateway knows on its unix socket: never the client's word
            body.pop("peer_user", None)
            if isinstance(who, Principal) and who.auth == "peercred":
                body["peer_user"] = who.user
        try:
            answer = await self.login.login(body)
        except LoginError as exc:
            outcome.summary = exc.summary
            raise for_status(exc.status, f"moorage: {exc.message}") from exc
        outcome.summary = answer.pop("summary")
        outcome.object_id = answer["serial"]
        outcome.status = 200
        source = who.source if isinstance(who, Principal) else ""
        user = Principal(answer["user"], tuple(answer["teams"]), tuple(answer["roles"]),
                         f"login:{answer['provider']}", source)  # fmt: skip
        await self._record(head, op, user, who, outcome, started)
        return await self._write_json(head, writer, outcome, answer)

    async def _write_json(self, head: RequestHead, writer: asyncio.StreamWriter, outcome: _Outcome,
                          answer: Any) -> bool:  # fmt: skip
        data = _dump(answer)
        writer.write(
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            f"X-Moorage-Request-Id: {outcome.request_id}\r\n"
            f"{'' if head.keep_alive else 'Connection: close' + chr(13) + chr(10)}\r\n".encode()
            + data
        )
        await writer.drain()
        return head.keep_alive

    def _create_account(self, p: Principal, body: Any) -> dict[str, Any]:
        """A service account for a CI runner and its one-time enrolment token."""
        if self.certs is None or self.login is None:
            raise NotServed("moorage: this gateway issues no login certificates (moorage up --identity)")
        args = body if isinstance(body, dict) else {}
        name, team = str(args.get("name") or ""), str(args.get("team") or "")
        if not re.match(r"^[a-z0-9][a-z0-9._-]{0,62}$", name) or not team:
            raise ClientError('moorage: give {"name": "ci-payments", "team": "payments"} (a lowercase name)')
        roles = tuple(str(r) for r in args.get("roles") or ["developer"])
        bad = [r for r in roles if r not in ROLES or r in GLOBAL_ROLES]
        if bad:
            raise ClientError(f"moorage: a service account can't have role {bad[0]!r} (team roles only)")
        try:
            lifetime = min(
                parse_lifetime(args.get("lifetime", "1h"), "lifetime"), self.login.mapping.max_lifetime
            )
        except IdentityError as exc:
            raise ClientError(f"moorage: {exc}") from exc
        lifetime = min(lifetime, self.login.mapping.max_lifetime)
        token = self.certs.create_account(name, team, roles, lifetime, p.user)
        return {"name": name, "team": team, "roles": list(roles), "lifetime": lifetime, "token": token}

    def _session_api(self, kind: str, p: Principal, body: Any) -> dict[str, Any]:
        """logout, whoami and certificate revocation."""
        if kind == "moorage.whoami":
            out: dict[str, Any] = {"user": p.user, "teams": list(p.teams), "roles": list(p.roles),
                                   "auth": p.auth, "source": p.source}  # fmt: skip
            if p.cert is not None and self.certs is not None:
                record = self.certs.get(p.cert[0])
                if record is not None:
                    out.update(serial=record.serial, expires_at=record.expires_at, provider=record.provider,
                               subject=record.subject, groups=list(record.groups))  # fmt: skip
            return out
        if self.certs is None:
            raise NotServed("moorage: this gateway issues no login certificates (moorage up --identity)")
        if kind == "moorage.logout":
            if p.cert is None:
                raise ClientError("moorage: this connection has no login certificate to log out of")
            return {"user": p.user, "revoked": self.certs.revoke(p.cert[0], p.user, "logout")}
        args = body if isinstance(body, dict) else {}
        if not args.get("serial") and not args.get("user"):
            raise ClientError('moorage: give {"serial": HEX} or {"user": NAME}')
        serial = str(args["serial"]) if args.get("serial") else None
        user = str(args["user"]) if args.get("user") else None
        revoked = self.certs.revoke(serial, p.user, f"revoked by {p.user}", user=user)
        if not revoked:
            raise Hidden("moorage: no live certificate matches")
        return {"revoked": revoked, "user": user or ""}

    async def record_event(self, kind: str, obj: str, reason: str, summary: dict[str, Any]) -> None:
        """An audit record for something Moorage did by itself (the reconciler)."""
        if self.audit is None:
            return
        record = AuditRecord(
            time=self.clock(), request_id=secrets.token_hex(8), user="moorage", teams=(), roles=(),
            auth="moorage", source="moorage", method="EVENT", path=f"/moorage/{kind}/{obj}", kind=kind,
            object_ref=obj, decision="allow", reason=reason, status=200, duration_ms=0.0, object_id=obj,
            summary=summary,
        )  # fmt: skip
        await self.audit.record_async(record, durable=True)

    def _require_audit(self, op: Operation) -> None:
        """Fail closed before anything acts: a change must not happen unrecorded."""
        if not op.reads_only and self.audit is not None and not self.audit.healthy:
            raise AuditError("the last audit write failed (disk full or read-only store?)")

    # ---------------------------------------------------- Moorage's own API
    async def _moorage_api(
        self,
        head: RequestHead,
        op: Operation,
        p: Principal,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        outcome: _Outcome,
    ) -> bool:
        """Exceptions and policy status, answered by the gateway itself."""
        started = time.perf_counter()
        body: Any = None
        if head.has_body:
            outcome.body = "reading"
            raw = await read_body(reader, head.chunked, head.content_length, _SMALL_BODY)
            outcome.body = "read"
            body = tenancy.parse_json_strict(raw, op.kind) if raw.strip() else None
        self._require_audit(op)
        status = 200
        answer: Any
        if op.kind.startswith(cluster_api.CLUSTER_KINDS):
            status, answer, summary = await cluster_api.answer(self.cluster, self.upstream, op.kind,
                                                               op.object_ref, body, p)  # fmt: skip
            outcome.summary = summary
            outcome.object_id = summary.get("id") or summary.get("node")
        elif op.kind == "moorage.sa.create":
            answer = self._create_account(p, body)
            outcome.summary = {k: answer[k] for k in ("name", "team", "roles", "lifetime")}  # never the token
        elif op.kind in ("moorage.logout", "moorage.whoami", "moorage.cert.revoke"):
            answer = self._session_api(op.kind, p, body)
            outcome.summary = {k: answer[k] for k in ("revoked", "user") if k in answer}
        elif op.kind == "moorage.policy.status":
            pset = getattr(self.admission, "policies", None)
            answer = {"version": getattr(pset, "version", ""), "documents": [
                {"name": d.name, "version": d.version, "mode": d.mode, "scope": d.scope, "source": d.source}
                for d in getattr(pset, "documents", ())]}  # fmt: skip
        else:
            store = self.exceptions
            if store is None:
                raise NotServed("moorage: this gateway keeps no exceptions (no data folder)")
            try:
                if op.kind == "moorage.exception.list":
                    answer = store.list(None if p.sees_all else p.teams)
                elif op.kind == "moorage.exception.request":
                    answer, status = store.request(p.user, p.teams, p.sees_all, body), 201
                elif op.kind == "moorage.exception.approve":
                    answer = store.approve(str(op.object_ref), p.user, p.roles)
                else:
                    answer = store.revoke(str(op.object_ref), p.user, p.roles)
            except ExceptionsError as exc:
                raise for_status(exc.status, f"moorage: {exc.message}") from exc
            if isinstance(answer, dict):
                outcome.object_id = answer.get("id")
                outcome.summary = {k: answer.get(k) for k in ("rule", "team", "image", "status")}
        outcome.status = status
        await self._record(head, op, p, p, outcome, started)
        data = _dump(answer)
        writer.write(
            f"HTTP/1.1 {status} {'Created' if status == 201 else 'OK'}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nX-Moorage-Request-Id: {outcome.request_id}\r\n"
            f"{'' if head.keep_alive else 'Connection: close' + chr(13) + chr(10)}\r\n".encode()
            + data
        )
        await writer.drain()
        return head.keep_alive

    # ------------------------------------------------------------- tenancy
    async def _inspect(self, obj_type: str, ref: str) -> tuple[int, Any]:
        return await fetch(self.upstream, Inspect(obj_type, ref))

    def _tenancy(self, p: Principal) -> ownership.Tenancy:
        return ownership.Tenancy(p, self._shared(), self.owners)

    async def _check_owner(self, op: Operation, p: Principal, obj_type: str, ref: str) -> Owned:
        """Resolve the object; another team's answers 404 (see ``ownership.check_owner``)."""
        return await drive(ownership.check_owner(self._tenancy(p), op, obj_type, ref), self.upstream)

    def _shared(self) -> tenancy.SharedObjects:
        """The shared objects: the gateway's setting plus what the policy in force
        declares (``spec.shared``), so a reload changes them too."""
        pset = getattr(self.admission, "policies", None)
        shared = getattr(pset, "shared", None)
        if shared is None:
            return self.shared
        return tenancy.SharedObjects(
            networks=(*self.shared.networks, *shared("networks")),
            volumes=(*self.shared.volumes, *shared("volumes")),
            labels=(*self.shared.labels, *shared("labels")),
        )

    async def _spool(self, head: RequestHead, reader: asyncio.StreamReader) -> IO[bytes]:
        """The request body in a temporary file (bounded memory); closed with the request."""
        spool = tempfile.TemporaryFile(prefix="moorage-")  # noqa: SIM115 - _request closes it
        try:
            await spool_body(reader, head.chunked, head.content_length, spool, self.limits.max_archive_bytes,
                             self.limits)  # fmt: skip
        except BaseException:
            spool.close()
            raise
        return spool

    async def _check_build_reads(self, p: Principal, t: Target, context: IO[bytes]) -> None:
        """Check the images a spooled build context's Dockerfile reads."""
        dockerfile = await asyncio.to_thread(context_dockerfile, context, t.first("dockerfile") or "")
        check = bodies.check_build_reads(self._tenancy(p), dockerfile, t.first("buildargs") or "",
                                         t.first("target") or "")  # fmt: skip
        await drive(check, self.upstream)

    def _rewrite_ref(self, target: str, op: Operation, owned: Owned) -> str:
        """Name the object by full id upstream, so a name or prefix can't be re-pointed
        between the ownership check and the action."""
        how = kind(op.kind).path_ref
        if op.object_type == "image" or how == "as-sent":
            return target  # push and tag need the name the client gave
        path, sep, query = target.partition("?")
        if how == "query:container":
            params = parse_qs(query, keep_blank_values=True)
            params["container"] = [owned.full_id]
            return f"{path}?{urlencode(params, doseq=True)}"
        prefix = f"/v{op.version}" if op.version else ""
        route = _REF_SEGMENT.sub(lambda m: m.group(1) + quote(owned.full_id, safe=""), op.route, 1)
        return prefix + quote(route, safe="/:@%") + sep + query

    async def _answer_filter(
        self, op: Operation, p: Principal, outcome: _Outcome, inner: Callable[[Any], Any] | None
    ) -> Callable[[Any], Any] | None:
        """What to do to a JSON answer before it leaves (None: pass it as it is, except
        that Moorage's labels are always taken out of answers that can carry them)."""
        if op.kind == "task.list" and not p.sees_all:
            return await self._task_filter(p)
        if op.kind == "system.df" and not p.sees_all:
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
        if op.kind == "swarm.inspect" and "admin" not in p.roles:
            # The join tokens let a node join the swarm past Moorage: admins only.
            def without_tokens(doc: Any) -> Any:
                if isinstance(doc, dict):
                    doc.pop("JoinTokens", None)
                return inner(doc) if inner is not None else doc

            return without_tokens
        if op.kind == "network.inspect" and op.object_ref and outcome.object_id:
            expected, ref = outcome.object_id, op.object_ref

            def same_network(doc: Any) -> Any:
                # the reference was passed through: it must still name the checked network
                if isinstance(doc, dict) and doc.get("Id") != expected:
                    raise Hidden(tenancy.not_found("network", ref), engine_words=True)
                return doc

            return same_network
        if op.kind == "image.commit":
            owners, team = self.owners, p.team

            def record_commit(doc: Any) -> Any:
                # a committed image is its committer's team's, kept where no client writes
                if isinstance(doc, dict) and isinstance(doc.get("Id"), str):
                    owners.record(doc["Id"], team)
                return inner(doc) if inner is not None else doc

            return record_commit
        return inner

    async def _task_filter(self, p: Principal) -> Callable[[Any], Any]:
        target = tenancy.inject_team_filter("/services", p.team)
        status, services = await self.upstream.call_json("GET", target)
        mine = {s.get("ID") for s in services} if status == 200 and services else set()

        def keep(tasks: Any) -> Any:
            return [t for t in tasks if t.get("ServiceID") in mine] if isinstance(tasks, list) else []

        return keep

    async def _record_short_ids(self, watch: _BuildIds) -> None:
        """Builds on API versions before 1.30 name their image only as ``Successfully
        built <12 hex digits>``: resolve those to full ids for the owner store."""
        for short in watch.short_ids:
            status, doc = await self._inspect("image", short)
            if status == 200 and isinstance(doc, dict):
                watch.record(str(doc.get("Id", "")))

    async def _image_ids(self) -> frozenset[str]:
        """Every image id the engine holds now (intermediate images included)."""
        status, images = await self.upstream.call_json("GET", "/images/json?all=1", limit=256 << 20)
        if status != 200 or not isinstance(images, list):
            raise UpstreamError(f"listing images before a build answered {status}")
        return frozenset(str(i.get("Id", "")) for i in images if isinstance(i, dict))

    async def _learn_engine_headers(self) -> tuple[tuple[str, str], ...]:
        """The engine's identifying headers, from its ``/_ping`` answer, asked once."""
        if self.engine_headers is None:
            try:
                conn = await self.upstream.connect()
                try:
                    conn.writer.write(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
                    await conn.writer.drain()
                    raw = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), 5)
                finally:
                    conn.close()
                self.engine_headers = _engine_headers(parse_response_head(raw, self.limits))
            except (OSError, UpstreamError, HttpError, TimeoutError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError) as exc:  # fmt: skip
                log.debug("could not learn the engine's headers: %s", exc)
                return ()
        return self.engine_headers

    # ------------------------------------------------------------- forward
    async def _forward(
        self,
        head: RequestHead,
        op: Operation,
        p: Principal,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        body: bytes | IO[bytes] | None,
        outcome: _Outcome,
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
        before = await self._image_ids() if op.kind == "image.build" else None
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
            self.engine_headers = _engine_headers(resp) or None
        # The record is durable before the first byte of the answer leaves.
        await self._record(head, op, p, p, outcome, started)
        resp = resp.with_header("X-Moorage-Request-Id", outcome.request_id)
        watch = None
        if before is not None and resp.status == 200:
            watch = _BuildIds(self.owners, p.team, before)
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
        watch: _BuildIds | None = None,
    ) -> bool:
        ctype = (resp.get("content-type") or "").lower()
        if resp.status == 101 or (op.hijack and resp.status == 200 and ctype.startswith(HIJACK_TYPES)):
            writer.write(resp.encode())
            await writer.drain()
            await _splice(reader, writer, conn)
            return False
        upstream_keep = "close" not in (resp.get("connection") or "").lower()
        strip = kind(op.kind).strips_labels
        if head.method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200:
            writer.write(resp.encode())
        elif watch is not None or (op.kind == "system.events" and resp.status == 200):
            # streams: build progress is watched for the image id, events lose our labels
            feed = watch if watch is not None else _Lines(_strip_line)
            kept = await _relay_stream(resp, conn.reader, writer, feed, self.limits)
            upstream_keep = kept and upstream_keep
        elif (post_filter is not None or strip) and resp.status in (200, 201):
            raw = await read_body(conn.reader, resp.chunked, int(resp.get("content-length") or 0),
                                  64 << 20, self.limits, 502)  # fmt: skip
            if post_filter is not None:
                # the engine's own JSON: no duplicate-key check (label keys may differ in case)
                doc = post_filter(json.loads(raw) if raw.strip() else None)
                data = _dump(tenancy.strip_labels(doc) if strip else doc)
            else:
                data = tenancy.strip_answer(raw)
            if data is raw and not resp.chunked:
                writer.write(resp.encode() + data)
            else:
                writer.write(resp.encode((*_without_length(resp), ("Content-Length", str(len(data))))) + data)
        elif resp.chunked:
            writer.write(resp.encode())
            await relay_chunked(conn.reader, writer, self.limits, 502)
        elif (length := resp.get("content-length")) is not None:
            size = int(length)
            if size <= _SMALL_BODY:  # one write, one syscall, for the common small answer
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

    # --------------------------------------------------------------- audit
    async def _record(
        self,
        head: RequestHead,
        op: Operation,
        p: Principal | None,
        who: Principal | str,
        outcome: _Outcome,
        started: float,
    ) -> None:
        if self.audit is None:
            return
        record = self._make_record(head, op, p, who, outcome, started)
        try:
            await self.audit.record_async(record, durable=not op.reads_only)
        except AuditError:
            if not op.reads_only:
                raise
            log.error("audit write failed for a read-only request %s %s", head.method, head.path)

    def _make_record(
        self,
        head: RequestHead,
        op: Operation,
        p: Principal | None,
        who: Principal | str,
        outcome: _Outcome,
        started: float,
    ) -> AuditRecord:
        return AuditRecord(
            time=self.clock(),
            request_id=outcome.request_id,
            user=p.user if p else "?",
            teams=p.teams if p else (),
            roles=p.roles if p else (),
            auth=p.auth if p else "none",
            source=p.source if p else str(who),
            method=head.method,
            path=head.path,
            kind=op.kind,
            object_ref=op.object_ref,
            decision=outcome.decision,
            reason=outcome.reason,
            status=outcome.status,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            object_id=outcome.object_id,
            summary=outcome.summary,
            rules=outcome.rules,
            mutations=outcome.mutations,
            policy_version=outcome.policy_version,
            image_digest=outcome.image_digest,
            login=self._login_facts(p),
        )

    def _login_facts(self, p: Principal | None) -> dict[str, Any] | None:
        if p is None or p.cert is None or self.certs is None:
            return None
        record = self.certs.get(p.cert[0])
        if record is None:
            return None
        return {"provider": record.provider, "subject": record.subject, "groups": list(record.groups),
                "serial": record.serial}  # fmt: skip


# The headers that say which engine answers (the engine sends them on every answer).
_ENGINE_HEADERS = ("api-version", "docker-experimental", "ostype", "server")


def _engine_headers(resp: ResponseHead) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in resp.headers if k.lower() in _ENGINE_HEADERS)


def _as_engine(answer: bytes, headers: tuple[tuple[str, str], ...]) -> bytes:
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


def _without_length(resp: ResponseHead) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in resp.headers if k.lower() not in ("content-length", "transfer-encoding"))


class _Lines:
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
        rest, self.buf = self.buf, b""
        return self.each(rest) if rest else b""


def _strip_line(line: bytes) -> bytes:
    out = tenancy.strip_answer(line)
    return out if out is line else out.rstrip(b"\n")


_IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
_BUILT = re.compile(r"^Successfully built ([0-9a-f]{12,64})$")


class _BuildIds(_Lines):
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
        if image_id and image_id not in self.before:
            self.owners.record(image_id, self.team)

    def __call__(self, data: bytes) -> bytes:
        super().__call__(data)  # the lines are only looked at
        return data

    def end(self) -> bytes:
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


async def _relay_stream(
    resp: ResponseHead, src: asyncio.StreamReader, dst: asyncio.StreamWriter, feed: _Lines, limits: Limits
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
        dst.write(resp.encode((*_without_length(resp), ("Content-Length", str(len(data))))) + data)
        return True
    dst.write(resp.encode())
    while data := await src.read(1 << 16):
        dst.write(feed(data))
        await dst.drain()
    dst.write(feed.end())
    return False


async def _splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: Conn) -> None:
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


def _refusal(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, Refusal):
        return exc.status, exc.answer
    if isinstance(exc, HttpError):
        msg = (
            exc.message
            if exc.engine_words or exc.message.startswith("moorage:")
            else f"moorage: {exc.message}"
        )
        return exc.status, msg
    if isinstance(exc, UpstreamError):
        return 502, f"moorage: {exc}"
    if isinstance(exc, AuditError):
        return 503, f"moorage: refused because the audit trail can't be written ({exc})"
    return 503, f"moorage: admission could not decide, so the request was refused: {exc}"


def _add_warnings(lines: list[str]) -> Callable[[Any], Any]:
    def add(doc: Any) -> Any:
        if isinstance(doc, dict):
            doc["Warnings"] = [*(doc.get("Warnings") or []), *lines]
        return doc

    return add


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _uid_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"
