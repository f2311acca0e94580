"""Moorage's cluster API, answered by the gateway itself: enrolment, attestation
requests, approvals and revocations, status, and the Swarm operations Moorage
carries out (CA and token rotation, autolock)."""

from __future__ import annotations

from typing import Any

from moorage.cluster import swarmops
from moorage.cluster.trust import ClusterError, ClusterTrust, Engine
from moorage.gateway.http import HttpError
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
        raise HttpError(501, "moorage: this gateway does not govern a cluster (moorage up --cluster on)")
    try:
        status, out = await _dispatch(trust, engine, kind, ref or "", body, p)
    except ClusterError as exc:
        raise HttpError(exc.status, f"moorage: {exc.message}") from exc
    return status, out, _summary(kind, out)


async def _dispatch(
    trust: ClusterTrust, engine: Engine, kind: str, ref: str, body: Any, p: Principal
) -> tuple[int, Any]:
    args = body if isinstance(body, dict) else {}
    if kind == "moorage.cluster.status":
        return 200, await swarmops.status(engine, trust)
    if kind == "moorage.cluster.rotate-ca":
        return 200, await swarmops.rotate_ca(engine, trust, p.user)
    if kind == "moorage.cluster.rotate-tokens":
        return 200, await swarmops.rotate_tokens(engine, str(args.get("which", "both")))
    if kind == "moorage.cluster.autolock":
        if not isinstance(args.get("enabled"), bool):
            raise ClusterError(400, 'the body must be {"enabled": true|false}')
        return 200, await swarmops.set_autolock(engine, bool(args["enabled"]))
    if kind == "moorage.node.enrol":
        return 200, await trust.enrol(engine, ref, p.user)
    if kind == "moorage.attestation.list":
        return 200, trust.list()
    if kind == "moorage.attestation.request":
        return 201, await trust.request(engine, body, p.user)
    if kind == "moorage.attestation.statement":
        return 200, await trust.statement(engine, ref)
    if kind == "moorage.attestation.approve":
        return 200, await trust.approve(engine, ref, body, p.user)
    if kind == "moorage.attestation.revoke":
        classes = args.get("classes")
        wanted = [str(c) for c in classes] if isinstance(classes, list) else None
        return 200, await trust.revoke(engine, ref, p.user, wanted)
    raise ClusterError(404, f"no such cluster operation: {kind}")
