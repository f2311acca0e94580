"""Admission's cluster step: every service that passes through Moorage lands only on
enrolled nodes, a service of a workload class only on nodes attested for it, and
other services stay off the nodes of exclusive classes. Overlays are created
encrypted, and a class service attaches only to encrypted overlays.

Runs after policy allowed the request, on the body policy produced.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any
from urllib.parse import quote

from moorage.admission.interface import AdmissionError, Decision
from moorage.cluster.placement import ATTESTED, MOORAGE_PREFIX, govern_service
from moorage.cluster.trust import ClusterTrust
from moorage.policy.decision import Request, workload_class
from moorage.policy.loader import PolicySet

__all__ = ["govern"]

_SERVICE = ("service.create", "service.update")


def _get(obj: Any, name: str) -> Any:
    if not isinstance(obj, dict):
        return None
    return next((v for k, v in obj.items() if isinstance(k, str) and k.lower() == name.lower()), None)


async def govern(
    trust: ClusterTrust, pset: PolicySet, req: Request, decision: Decision, engine: Any
) -> Decision:
    """The decision with the cluster's constraints added, or a refusal."""
    if req.kind == "node.update":
        return await _node_update(engine, req, decision)
    if req.kind not in (*_SERVICE, "network.create"):
        return decision
    body = copy.deepcopy(decision.body if decision.body is not None else req.body)
    if not isinstance(body, dict):
        return decision
    if req.kind == "network.create":
        return _encrypt_overlay(decision, body)
    wc = workload_class(pset, req)
    cls, exclusive = wc.name, wc.exclusive | trust.exclusive
    if wc.claim_refused():
        return Decision(
            False,
            reason=f"denied by cluster trust (cluster.placement): {wc.claim_refused()}",
            rules=("cluster.placement",),
            policy_version=decision.policy_version,
        )
    pins = trust.store.pins().get(cls, set()) if cls else set()
    out = govern_service(body, cls, exclusive, pins)
    if out.refused:
        where, value, message = out.refused[0]
        return Decision(
            False,
            reason=f"denied by cluster trust (cluster.placement): {where} = {value!r}: {message}. "
            "Remove that constraint; Moorage adds what the class needs.",
            rules=("cluster.placement",),
            policy_version=decision.policy_version,
        )
    if cls:
        problem = await _class_networks(engine, body, cls)
        if problem:
            return Decision(
                False,
                reason=f"denied by cluster trust (cluster.encryption): {problem}",
                rules=("cluster.encryption",),
                policy_version=decision.policy_version,
            )
    return dataclasses.replace(decision, body=body, mutations=(*decision.mutations, *out.added))


async def _node_update(engine: Any, req: Request, decision: Decision) -> Decision:
    """Whatever the policy packs say: no client adds, changes or removes a node label
    under ``io.moorage.`` (the reconciler projects them from the store), and an
    attested node isn't promoted."""
    status, node = await engine.call_json("GET", f"/nodes/{quote(str(req.object_ref or ''), safe='')}")
    if status != 200 or not isinstance(node, dict):
        return decision  # the engine answers the update itself (no such node)
    current = {str(k): str(v) for k, v in ((node.get("Spec") or {}).get("Labels") or {}).items()}
    body = decision.body if decision.body is not None else req.body
    labels = _get(body, "Labels")
    labels = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    ours = {k: v for k, v in current.items() if k.lower().startswith(MOORAGE_PREFIX)}
    theirs = {k: v for k, v in labels.items() if k.lower().startswith(MOORAGE_PREFIX)}
    if ours != theirs:
        changed = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
        return Decision(
            False,
            reason=f"denied by cluster trust (node.labels): Labels.{changed[0]}: node labels under "
            f"{MOORAGE_PREFIX} are Moorage's projection of enrolment and attestation; no update adds, "
            "changes or removes them. Use moorage node enrol | attest | revoke.",
            rules=("node.labels",),
            policy_version=decision.policy_version,
        )
    if str(_get(body, "Role")).lower() == "manager" and any(k.startswith(ATTESTED) for k in ours):
        return Decision(
            False,
            reason="denied by cluster trust (node.promote): Role = manager: an attested node can't "
            "be promoted (node.promote); revoke its attestation first, or promote another node",
            rules=("node.promote",),
            policy_version=decision.policy_version,
        )
    return decision


def _encrypt_overlay(decision: Decision, body: dict[str, Any]) -> Decision:
    driver = _get(body, "Driver")
    if driver != "overlay":
        return decision
    key = next((k for k in body if k.lower() == "options"), "Options")
    options = body.get(key)
    if not isinstance(options, dict):
        options = body[key] = {}
    if "encrypted" in options:
        return decision
    options["encrypted"] = ""
    return dataclasses.replace(decision, body=body, mutations=(*decision.mutations, 'Options.encrypted = ""'))


async def _class_networks(engine: Any, body: dict[str, Any], cls: str) -> str:
    """Why a class service's networks are not all encrypted overlays ("" if they are)."""
    task = _get(body, "TaskTemplate")
    lists = [_get(task, "Networks"), _get(body, "Networks")]
    targets = [str(_get(n, "Target") or "") for nets in lists if isinstance(nets, list) for n in nets]
    ports = _get(_get(body, "EndpointSpec"), "Ports")
    # the engine reads PublishMode in any case; anything but host is the ingress mesh
    if isinstance(ports, list) and any(str(_get(p, "PublishMode") or "").lower() != "host" for p in ports):
        targets.append("ingress")  # the routing mesh carries published ports
    for ref in targets:
        status, net = await engine.call_json("GET", f"/networks/{quote(ref, safe='')}?scope=swarm")
        if status == 404:
            continue  # the engine refuses the service itself
        if status != 200 or not isinstance(net, dict):
            raise AdmissionError(f"network {ref} could not be inspected ({status})")
        name = net.get("Name", ref)
        if net.get("Driver") != "overlay" or "encrypted" not in (net.get("Options") or {}):
            how = (
                "publish its ports with mode=host"
                if ref == "ingress" and name == "ingress"
                else "attach it to an encrypted overlay (overlays created through Moorage are)"
            )
            return (
                f"class {cls} services use encrypted overlay networks only, and {name} "
                f"({net.get('Driver')}) is not one: {how}"
            )
    return ""
