"""Moorage's cluster API, answered by the gateway itself: enrolment, attestation
requests, approvals and revocations, status, and the Swarm operations Moorage
carries out (CA and token rotation, autolock)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from moorage.admission.errors import NotServed, for_status
from moorage.cluster import swarmops
from moorage.cluster.trust import ClusterError, ClusterTrust, Engine
from moorage.identity import Principal

__all__ = ["CLUSTER_KINDS", "answer"]

CLUSTER_KINDS = ("moorage.cluster.", "moorage.node.", "moorage.attestation.")


def _summary(kind: str, answer: Any) -> dict[str, Any]:
    """What the audit trail keeps: never an unlock key or a token."""
    if not isinstance(answer, dict):
        return {}
    keep = (
        "id",
        "node",
        "hostname",
        "classes",
        "evidence",
        "expires_at",
        "status",
        "signer",
        "revoked",
        "rotated",
        "seconds",
        "trust_root",
        "old_trust_root",
        "autolock",
        "requester",
        "approver",
    )
    return {k: answer[k] for k in keep if k in answer}


async def answer(
    trust: ClusterTrust | None, engine: Engine, kind: str, ref: str | None, body: Any, p: Principal
) -> tuple[int, Any, dict[str, Any]]:
    """(status, answer, audit summary) for one cluster API request."""
    if trust is None:
        raise NotServed("moorage: this gateway does not govern a cluster (moorage up --cluster on)")
    try:
        status, out = await _dispatch(trust, engine, kind, ref or "", body, p)
    except ClusterError as exc:
        raise for_status(exc.status, f"moorage: {exc.message}") from exc
    return status, out, _summary(kind, out)


_Handler = Callable[[ClusterTrust, Engine, str, dict[str, Any], Any, Principal], Awaitable[tuple[int, Any]]]


async def _status(trust: ClusterTrust, engine: Engine, ref: str, args: dict[str, Any], body: Any,
                  p: Principal) -> tuple[int, Any]:  # fmt: skip
    return 200, await swarmops.status(engine, trust)


async def _rotate_ca(trust: ClusterTrust, engine: Engine, ref: str, args: dict[str, Any], body: Any,
                     p: Principal) -> tuple[int, Any]:  # fmt: skip
    return 200, await swarmops.rotate_ca(engine, trust, p.user)


async def _rotate_tokens(trust: ClusterTrust, engine: Engine, ref: str, args: dict[str, Any], body: Any,
                         p: Principal) -> tuple[int, Any]:  # fmt: skip
    return 200, await swarmops.rotate_tokens(engine, str(args.get("which", "both")))


async def _autolock(trust: ClusterTrust, engine: Engine, ref: str, args: dict[str, Any], body: Any,
                    p: Principal) -> tuple[int, Any]:  # fmt: skip
    if not isinstance(args.get("enabled"), bool):
        raise ClusterError(400, 'the body must be {"enabled": true|false}')
    return 200, await swarmops.set_autolock(engine, bool(args["enabled"]))


async def _enrol(trust: ClusterTrust, engine: Engine, ref: str, args: dict[str, Any], body: Any,
                 p: Principal) -> tuple[int, Any]:  # fmt: skip
    return 200, await trust.enrol(engine, ref, p.user)


async def _list(trust: ClusterTrust, engine: Engine, ref: str, args: dict[str, Any], body: Any,
                p: Principal) -> tuple[int, Any]:  # fmt: skip
    return 200, trust.list()


async def _request(trust: ClusterTrust, engine: Engine, ref: str, args: dict[str, Any], body: Any,
                   p: Principal) -> tuple[int, Any]:  # fmt: skip
    return 201, await trust.request(engine, body, p.user)


async def _statement(trust: ClusterTrust, engine: Engine, ref: str, args: dict[str, Any], body: Any,
                     p: Principal) -> tuple[int, Any]:  # fmt: skip
    return 200, await trust.statement(engine, ref)


async def _approve(trust: ClusterTrust, engine: Engine, ref: str, args: dict[str, Any], body: Any,
                   p: Principal) -> tuple[int, Any]:  # fmt: skip
    return 200, await trust.approve(engine, ref, body, p.user)


async def _revoke(trust: ClusterTrust, engine: Engine, ref: str, args: dict[str, Any], body: Any,
                  p: Principal) -> tuple[int, Any]:  # fmt: skip
    classes = args.get("classes")
    wanted = [str(c) for c in classes] if isinstance(classes, list) else None
    return 200, await trust.revoke(engine, ref, p.user, wanted)


# One handler per route, as moby's routers have.
_ROUTES: dict[str, _Handler] = {
    "moorage.cluster.status": _status,
    "moorage.cluster.rotate-ca": _rotate_ca,
    "moorage.cluster.rotate-tokens": _rotate_tokens,
    "moorage.cluster.autolock": _autolock,
    "moorage.node.enrol": _enrol,
    "moorage.attestation.list": _list,
    "moorage.attestation.request": _request,
    "moorage.attestation.statement": _statement,
    "moorage.attestation.approve": _approve,
    "moorage.attestation.revoke": _revoke,
}


async def _dispatch(
    trust: ClusterTrust, engine: Engine, kind: str, ref: str, body: Any, p: Principal
) -> tuple[int, Any]:
    handler = _ROUTES.get(kind)
    if handler is None:
        raise ClusterError(404, f"no such cluster operation: {kind}")
    return await handler(trust, engine, ref, body if isinstance(body, dict) else {}, body, p)
