"""The gateway: an Engine API endpoint that knows who is asking.

One asyncio task per client connection. For each request: parse the head
(limits), name the operation, identify the caller, check the role, check the
object belongs to the caller's team, parse the body only where a decision needs
it, ask admission, forward, record. Everything else streams through.

This module holds the listeners and the connection loop; the request phase is in
``request.py``, Moorage's own routes in ``routes.py``, forwarding and the response
phase in ``forward.py`` and ``streams.py``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moorage.admission import Admission, AdmissionError, identify, tenancy
from moorage.admission.errors import InternalError, PolicyRefusal, Refusal, for_status
from moorage.admission.exceptions import ExceptionStore
from moorage.admission.owners import ImageOwners
from moorage.admission.records import Outcome, RequestIds
from moorage.audit import AuditError, AuditSink
from moorage.cluster.trust import ClusterTrust
from moorage.engine_api.canonical import RequestError, read_target
from moorage.engine_api.endpoints import Operation
from moorage.gateway.config import GatewayConfig, UnsafeNoAudit
from moorage.gateway.fastpath import FastClient
from moorage.gateway.fastpool import FastPool
from moorage.gateway.http import HttpError, Limits, RequestHead, error_response, parse_request_head
from moorage.gateway.request import _RequestFlow
from moorage.gateway.streams import as_engine
from moorage.gateway.tls import terminate_tls
from moorage.gateway.upstream import Upstream, UpstreamError
from moorage.gateway.workers import KeyLocks
from moorage.identity import Principal, UserDirectory
from moorage.identity.certs import CertStore
from moorage.identity.login import LoginService

__all__ = ["Gateway"]

log = logging.getLogger("moorage.gateway")


# The operation of a request whose target could not be read.
_UNREAD = Operation("malformed", "unknown")


class Gateway(_RequestFlow):
    """Serve the Engine API on listeners, in front of one upstream engine."""

    def __init__(
        self,
        upstream: Upstream,
        *,
        users: UserDirectory,
        admission: Admission,
        audit: AuditSink | UnsafeNoAudit,
        limits: Limits,
        admin_uids: tuple[int, ...],
        clock: Callable[[], float],
        exceptions: ExceptionStore | None,
        fast_path: bool,
        shared: tenancy.SharedObjects,
        owners: ImageOwners,
        allow_unknown_fields: bool,
        cluster: ClusterTrust | None,
        login: LoginService | None,
    ) -> None:
        """Every choice is the caller's: no default can quietly weaken a gateway.
        ``fast_path=False`` serves every request on the full path (for comparison).
        ``shared`` names the networks and volumes no team owns that every team may use;
        ``owners`` keeps who built which image. ``exceptions``, ``cluster`` and
        ``login`` are None for a gateway without those features."""
        self.upstream = upstream
        self.fast_path = fast_path
        self.users = users
        self.admission = admission
        self.audit = None if isinstance(audit, UnsafeNoAudit) else audit
        self.limits = limits
        self.fast_pool = FastPool(upstream, self.limits)  # the fast path's connections
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
        self.shared = shared
        self.owners = owners
        # The engine's identifying headers (Api-Version, Ostype, ...), learnt once, so
        # the gateway's own answers carry them as the engine's do.
        self.engine_headers: tuple[tuple[str, str], ...] | None = None
        self.request_ids = RequestIds()

    @classmethod
    def from_config(
        cls,
        config: GatewayConfig,
        upstream: Upstream,
        users: UserDirectory,
        admission: Admission,
        audit: AuditSink,
        exceptions: ExceptionStore,
        cluster: ClusterTrust | None,
        login: LoginService | None,
    ) -> Gateway:
        """The gateway ``moorage up`` runs: audited, image owners kept in the data
        folder, shared objects only as the policy declares them."""
        return cls(upstream, users=users, admission=admission, audit=audit, limits=config.limits,
                   admin_uids=config.admin_uids, clock=time.time, exceptions=exceptions,
                   fast_path=config.fast_path, shared=tenancy.SharedObjects(),
                   owners=ImageOwners(config.data / "image-owners.json"),
                   allow_unknown_fields=config.allow_unknown_fields, cluster=cluster,
                   login=login)  # fmt: skip

    async def listen_unix(self, path: str, mode: int = 0o666, sock: socket.socket | None = None) -> None:
        """Listen on a unix socket. Anyone may connect; the uid decides what they may do.
        ``sock``: a listening socket already bound to ``path`` (shared by workers)."""
        if sock is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        where: dict[str, Any] = {"sock": sock} if sock is not None else {"path": path}
        if self.fast_path:
            server = await asyncio.get_running_loop().create_unix_server(lambda: FastClient(self), **where)
            self.fast_pool.sweep()
        else:
            server = await asyncio.start_unix_server(
                lambda r, w: self._connection(r, w, "unix"), limit=self.limits.max_head_bytes, **where
            )
        if sock is None:
            os.chmod(path, mode)
        self._servers.append(server)

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
        """Stop listening, end every connection, and close the upstream pool."""
        for server in self._servers:
            server.close()
        self.fast_pool.close()
        live = [t for t in self._live if t is not asyncio.current_task()]
        for task in live:
            task.cancel()
        await asyncio.gather(*live, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self.upstream.close()

    def _identify(self, extra: Callable[[str], Any], how: str, tls_info: dict[str, Any]) -> Principal | str:
        """The principal behind a connection (``extra`` is its transport's
        ``get_extra_info``), or the reason there is none."""
        if how == "unix":
            sock: socket.socket = extra("socket")
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            pid, uid, _ = struct.unpack("3i", creds)
            return identify.by_uid(self.users, self.admin_uids, uid, pid)
        return identify.by_certificate(self.users, self.certs, self.clock(), tls_info)

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
                outcome = Outcome(decision="deny", reason=message, status=error.status,
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
                writer.write(as_engine(answer, self.engine_headers or ()))
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

    async def _request(
        self,
        head: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        who: Principal | str,
    ) -> bool:
        """Handle one request; return whether the client connection may be reused."""
        outcome = Outcome(request_id=self.request_ids.next())
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
        outcome: Outcome,
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
