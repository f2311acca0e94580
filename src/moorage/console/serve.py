"""Start the console and the compliance sweeper beside the gateway (``moorage up``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import socket
import time
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from moorage.admission.compliance import ObjectReport
from moorage.admission.sweeper import Sweeper
from moorage.audit.interface import AuditRecord
from moorage.console.app import build_app
from moorage.console.views import ConsoleContext
from moorage.gateway.workers import lead
from moorage.identity.handoff import HANDOFF_TTL, console_key, sign_handoff
from moorage.identity.principal import Principal

__all__ = ["Recorder", "attestation_digest", "serve", "start", "sweeper_for"]

log = logging.getLogger("moorage.console")


class Recorder:
    """Audit records for what is done through the console and for compliance
    warnings, named after the person (or team) they concern."""

    def __init__(self, trail: Any) -> None:
        self.trail = trail

    async def __call__(
        self,
        kind: str,
        obj: str,
        outcome: str,
        details: dict[str, Any],
        user: str = "moorage",
        teams: tuple[str, ...] = (),
        roles: tuple[str, ...] = (),
    ) -> None:
        """Record one event; ``outcome`` is allow, deny or warn."""
        record = AuditRecord(
            time=time.time(),
            request_id=secrets.token_hex(8),
            user=user,
            teams=teams,
            roles=roles,
            auth="console" if kind.startswith(("console.", "exception.")) else "moorage",
            source="console",
            method="EVENT",
            path=f"/moorage/{kind}/{obj}",
            kind=kind,
            object_ref=obj,
            decision=outcome,
            reason=str(details.get("reason") or details.get("error") or ""),
            status=200 if outcome != "deny" else 403,
            duration_ms=0.0,
            object_id=obj,
            summary=details,
            rules=tuple(details.get("rules") or ()),
        )
        await self.trail.record_async(record, durable=True)

    async def warn(self, report: ObjectReport) -> None:
        """Tell the owner's team that their workload fell out of compliance (feed and audit)."""
        items = [i for i in report.items if i.result != "skip" and i.action != "report"]
        reason = f"{report.kind} {report.name} fell out of compliance: " + "; ".join(i.line() for i in items)
        await self(
            f"compliance.{items[0].action if items else 'warn'}",
            report.name,
            "warn",
            {"reason": reason, "rules": [i.rule for i in items], "owner": report.owner, "id": report.id},
            user=report.owner or "moorage",
            teams=(report.team,) if report.team else (),
        )


def attestation_digest(cluster: Any) -> str:
    """A value that changes when an attestation, a trust root or a pin does."""
    if cluster is None:
        return ""
    store = cluster.store
    parts = [
        sorted((r.id, r.status, r.expires_at, r.revoked_at) for r in store.requests()),
        sorted(store.roots().items()),
        sorted((k, sorted(v)) for k, v in store.pins().items()),
    ]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:32]


def sweeper_for(ctx: ConsoleContext, recorder: Recorder) -> Sweeper:
    """The compliance sweeper of a gateway."""
    return Sweeper(
        ctx.compliance,
        ctx.policies,
        ctx.engine,
        ctx.gate,
        ctx.exceptions.active,
        lambda: attestation_digest(ctx.cluster),
        recorder.warn,
    )


async def serve(ctx: ConsoleContext, recorder: Recorder, listen: str) -> tuple[asyncio.Task[None], str]:
    """Serve the console on ``HOST:PORT`` (port 0: any free one); the task and its URL."""
    host, _, port = listen.rpartition(":")
    sock = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]") or "127.0.0.1", int(port or 0)))
    sock.listen(128)
    app = build_app(ctx, recorder)
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    # the gateway owns SIGINT and SIGTERM (loop signal handlers); uvicorn must not take them
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    bound = sock.getsockname()
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    return task, f"http://{host or '127.0.0.1'}:{bound[1]}"


Tasks = list[asyncio.Task[Any]]


async def start(args: Any, data: Path, store: Any, trail: Any, exceptions: Any, admission: Any,
                engine: Any, gate: Any, cluster: Any, login: Any, gateway: Any, first: bool
                ) -> tuple[Tasks, str]:  # fmt: skip
    """``moorage up``'s console and compliance sweeper: the sweeper runs on whichever
    gateway holds the store's ``compliance`` lease; the console on the first worker;
    every worker hands out one-time sign-in links (``moorage console``)."""
    ctx = ConsoleContext(data, trail, exceptions, admission.compliance, lambda: admission.policies, engine,
                         gate, cluster, login, console_client_id=_console_client(args.identity))  # fmt: skip
    recorder = Recorder(trail)
    tasks: list[asyncio.Task[Any]] = []
    if args.compliance_interval > 0:
        sweeper = sweeper_for(ctx, recorder)
        ctx.sweeper = sweeper
        tasks.append(
            asyncio.ensure_future(lead(store, "compliance", lambda: sweeper.run(args.compliance_interval)))
        )
    url = ""
    if args.console == "off":
        return tasks, url
    key = console_key(data / "console-session.key")
    gateway.console_handoff = lambda p: _handoff(data, key, p)
    if first:
        try:
            task, url = await serve(ctx, recorder, args.console)
            tasks.append(task)
            (data / "console.url").write_text(url + "\n")
        except OSError as exc:  # the gateway still serves; the console says why it doesn't
            log.error("the console could not listen on %s: %s", args.console, exc)
            url = f"(not served: {exc.strerror})"
    return tasks, url


def _handoff(data: Path, key: bytes, p: Principal) -> dict[str, Any]:
    """A one-time sign-in link to the console for ``p`` (``moorage console``)."""
    try:
        url = (data / "console.url").read_text().strip()
    except OSError:
        url = ""
    token = sign_handoff(key, p, time.time())
    return {
        "url": f"{url}/session/{token}",
        "path": f"/session/{token}",
        "expires_in": HANDOFF_TTL,
        "user": p.user,
    }


def _console_client(identity: Any) -> str:
    """The OpenID client id of the console (``oidc.console_client_id``; default moorage-console)."""
    if identity is None:
        return "moorage-console"
    try:
        doc = yaml.safe_load(identity.read_text()) or {}
        return str(((doc.get("oidc") or {}).get("console_client_id")) or "moorage-console")
    except (OSError, yaml.YAMLError, AttributeError):
        return "moorage-console"
