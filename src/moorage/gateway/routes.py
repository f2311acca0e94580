"""Moorage's own HTTP routes (``/moorage/...``): login, service accounts, sessions,
exceptions, policy status and the cluster API, answered by the gateway itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from moorage.admission import accounts, tenancy
from moorage.admission.errors import NotServed, for_status
from moorage.admission.exceptions import ExceptionsError
from moorage.admission.records import Outcome
from moorage.engine_api.endpoints import Operation
from moorage.gateway import cluster_api
from moorage.gateway.forward import _Forwarding
from moorage.gateway.http import RequestHead, read_body
from moorage.gateway.streams import SMALL_BODY, dump_json
from moorage.identity import Principal
from moorage.identity.login import LoginError

__all__ = []


class _MoorageRoutes(_Forwarding):
    """The routes Moorage answers itself instead of the engine."""

    # set by moorage up when it serves the console: a one-time sign-in link for a principal
    console_handoff: Callable[[Principal], dict[str, Any]] | None = None

    async def _login_request(
        self,
        head: RequestHead,
        op: Operation,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        who: Principal | str,
        outcome: Outcome,
    ) -> bool:
        """``POST /moorage/v1/login``: needs no client certificate. Each login, refused or
        not, is a record of its own."""
        started = time.perf_counter()
        if self.login is None:
            raise NotServed("moorage: this gateway has no identity providers (moorage up --identity)")
        outcome.body = "reading"
        raw = await read_body(reader, head.chunked, head.content_length, SMALL_BODY)
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

    async def _write_json(self, head: RequestHead, writer: asyncio.StreamWriter, outcome: Outcome,
                          answer: Any, status: int = 200) -> bool:  # fmt: skip
        """Answer Moorage's own route with ``answer`` as JSON (200, or 201 Created)."""
        data = dump_json(answer)
        writer.write(
            f"HTTP/1.1 {status} {'Created' if status == 201 else 'OK'}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nX-Moorage-Request-Id: {outcome.request_id}\r\n"
            f"{'' if head.keep_alive else 'Connection: close' + chr(13) + chr(10)}\r\n".encode()
            + data
        )
        await writer.drain()
        return head.keep_alive

    async def _moorage_api(
        self,
        head: RequestHead,
        op: Operation,
        p: Principal,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        outcome: Outcome,
    ) -> bool:
        """Moorage's own routes, answered by the gateway itself: one handler per route."""
        started = time.perf_counter()
        body: Any = None
        if head.has_body:
            outcome.body = "reading"
            raw = await read_body(reader, head.chunked, head.content_length, SMALL_BODY)
            outcome.body = "read"
            body = tenancy.parse_json_strict(raw, op.kind) if raw.strip() else None
        self._require_audit(op)
        route: _Route
        if op.kind.startswith(cluster_api.CLUSTER_KINDS):
            route = _MoorageRoutes._route_cluster
        else:
            route = _ROUTES.get(op.kind, _MoorageRoutes._route_exceptions)
        status, answer = await route(self, op, p, body, outcome)
        outcome.status = status
        await self._record(head, op, p, p, outcome, started)
        return await self._write_json(head, writer, outcome, answer, status)

    async def _route_cluster(
        self, op: Operation, p: Principal, body: Any, outcome: Outcome
    ) -> tuple[int, Any]:
        status, answer, summary = await cluster_api.answer(self.cluster, self.upstream, op.kind,
                                                           op.object_ref, body, p)  # fmt: skip
        outcome.summary = summary
        outcome.object_id = summary.get("id") or summary.get("node")
        return status, answer

    async def _route_account(
        self, op: Operation, p: Principal, body: Any, outcome: Outcome
    ) -> tuple[int, Any]:
        answer = accounts.create_account(self.certs, self.login, p, body)
        outcome.summary = {k: answer[k] for k in ("name", "team", "roles", "lifetime")}  # never the token
        return 200, answer

    async def _route_session(
        self, op: Operation, p: Principal, body: Any, outcome: Outcome
    ) -> tuple[int, Any]:
        answer = accounts.session_api(self.certs, op.kind, p, body)
        outcome.summary = {k: answer[k] for k in ("revoked", "user") if k in answer}
        return 200, answer

    async def _route_console(
        self, op: Operation, p: Principal, body: Any, outcome: Outcome
    ) -> tuple[int, Any]:
        if self.console_handoff is None:
            raise NotServed("moorage: this gateway serves no console (moorage up --console off)")
        outcome.summary = {"user": p.user}
        return 200, self.console_handoff(p)

    async def _route_policy_status(
        self, op: Operation, p: Principal, body: Any, outcome: Outcome
    ) -> tuple[int, Any]:
        pset = getattr(self.admission, "policies", None)
        return 200, {"version": getattr(pset, "version", ""),
                     "documents": [d.summary() for d in getattr(pset, "documents", ())]}  # fmt: skip

    async def _route_exceptions(
        self, op: Operation, p: Principal, body: Any, outcome: Outcome
    ) -> tuple[int, Any]:
        store = self.exceptions
        if store is None:
            raise NotServed("moorage: this gateway keeps no exceptions (no data folder)")
        status = 200
        answer: Any
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
        return status, answer


# One handler per route, as moby's routers have; the rest of /moorage/v1 is exceptions.
_Route = Callable[[_MoorageRoutes, Operation, Principal, Any, Outcome], Awaitable[tuple[int, Any]]]
_ROUTES: dict[str, _Route] = {
    "moorage.sa.create": _MoorageRoutes._route_account,
    "moorage.logout": _MoorageRoutes._route_session,
    "moorage.whoami": _MoorageRoutes._route_session,
    "moorage.cert.revoke": _MoorageRoutes._route_session,
    "moorage.policy.status": _MoorageRoutes._route_policy_status,
    "moorage.console.session": _MoorageRoutes._route_console,
}
