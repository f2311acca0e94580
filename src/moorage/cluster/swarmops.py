"""Swarm operations as governed actions: what a ``POST /swarm/update`` changes, and
the rotations and autolock Moorage carries out itself, timed and checked.

``classify_update`` is pure. The operations talk to the engine they are given.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

from cryptography import x509

from moorage.cluster.attestation import trust_root_digest
from moorage.cluster.trust import ClusterError, ClusterTrust
from moorage.cluster.views import Engine

__all__ = [
    "SECURITY_ASPECTS",
    "ca_rotates",
    "classify_update",
    "rotate_ca",
    "rotate_tokens",
    "set_autolock",
    "status",
]

# What only security officers (and admins) may change.
SECURITY_ASPECTS = frozenset({"ca", "autolock", "tokens", "unlock-key"})
_TRUE = ("1", "true", "t", "yes", "y")


def _zeroless(value: Any) -> Any:
    """``value`` without zero values, so a field left out and a field sent as its
    zero value compare equal (the engine reads both the same)."""
    if isinstance(value, dict):
        out = {str(k): _zeroless(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [], "", 0, False)}
    if isinstance(value, list):
        return [_zeroless(v) for v in value]
    return value


def _fields(spec: Any) -> dict[str, str]:
    doc = _zeroless(json.loads(json.dumps(spec if isinstance(spec, dict) else {}, default=str)))
    return {k.lower(): json.dumps(v, sort_keys=True) for k, v in doc.items()}


def classify_update(current: Mapping[str, Any], new: Any, query: Mapping[str, list[str]]) -> set[str]:
    """The aspects of the swarm a ``POST /swarm/update`` changes: ``ca`` (CAConfig:
    rotation, certificate expiry, external CAs, a supplied root), ``autolock``,
    ``tokens`` and ``unlock-key`` (rotations asked in the query), ``settings``
    (anything else: raft, dispatcher, orchestration, task defaults, name, labels)."""
    out: set[str] = set()
    for name, aspect in (
        ("rotateworkertoken", "tokens"),
        ("rotatemanagertoken", "tokens"),
        ("rotatemanagerunlockkey", "unlock-key"),
    ):
        values = next((v for k, v in query.items() if k.lower() == name), [])
        if values and values[0].lower() in _TRUE:
            out.add(aspect)
    before, after = _fields(current), _fields(new)
    for key in set(before) | set(after):
        if before.get(key) == after.get(key):
            continue
        if key == "caconfig":
            out.add("ca")
        elif key == "encryptionconfig":
            out.add("autolock")
        else:
            out.add("settings")
    return out


def ca_rotates(current: Mapping[str, Any], new: Any) -> bool:
    """Whether a swarm update makes a new root CA: ``ForceRotate`` moved, or the caller
    supplies a root certificate."""

    def ca(spec: Any) -> dict[str, Any]:
        doc = _zeroless(json.loads(json.dumps(spec if isinstance(spec, dict) else {}, default=str)))
        block: Any = next((v for k, v in doc.items() if k.lower() == "caconfig"), {})
        return {k.lower(): v for k, v in block.items()} if isinstance(block, dict) else {}

    before, after = ca(current), ca(new)
    return any(before.get(k) != after.get(k) for k in ("forcerotate", "signingcacert"))


async def _swarm(engine: Engine) -> dict[str, Any]:
    status, doc = await engine.call_json("GET", "/swarm")
    if status != 200 or not isinstance(doc, dict):
        raise ClusterError(409, "the engine is not a Swarm manager")
    return doc


async def _update(engine: Engine, doc: dict[str, Any], spec: dict[str, Any], query: str = "") -> None:
    version = int((doc.get("Version") or {}).get("Index", 0))
    status, answer = await engine.call_json("POST", f"/swarm/update?version={version}{query}", body=spec)
    if status != 200:
        message = answer.get("message") if isinstance(answer, dict) else answer
        raise ClusterError(502, f"the swarm update failed: {message}")


async def rotate_ca(engine: Engine, trust: ClusterTrust, user: str, timeout: float = 120) -> dict[str, Any]:
    """Rotate the root CA, then wait until every ready node follows the new root."""
    started = time.monotonic()
    doc = await _swarm(engine)
    old = trust_root_digest(str((doc.get("TLSInfo") or {}).get("TrustRoot") or ""))
    spec = json.loads(json.dumps(doc.get("Spec") or {}))
    ca = spec.setdefault("CAConfig", {})
    ca["ForceRotate"] = int(ca.get("ForceRotate") or 0) + 1
    trust.rotation_expected = (trust.clock(), user)
    await _update(engine, doc, spec)
    deadline = started + timeout
    new, behind = old, ["(all)"]
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        doc = await _swarm(engine)
        new = trust_root_digest(str((doc.get("TLSInfo") or {}).get("TrustRoot") or ""))
        nodes = await trust.nodes(engine)
        behind = [n.hostname or n.id for n in nodes if n.state == "ready" and n.trust_root != new]
        if new != old and not behind:
            break
    took = round(time.monotonic() - started, 2)
    if new == old or behind:
        raise ClusterError(
            504,
            f"the CA rotation did not converge within {timeout:.0f} s (behind: "
            f"{', '.join(behind)}); check moorage cluster status",
        )
    trust.store.accept_root(
        new, str(doc.get("ID", "")), trust.clock(), f"CA rotation through Moorage by {user}"
    )
    trust.wake()
    return {
        "rotated": "ca",
        "old_trust_root": old,
        "trust_root": new,
        "seconds": took,
        "nodes_following": True,
    }


async def rotate_tokens(engine: Engine, which: str = "both") -> dict[str, Any]:
    """New join tokens; the old ones stop working at once. The tokens are never
    in the answer: an admin reads them with ``docker swarm join-token``."""
    if which not in ("worker", "manager", "both"):
        raise ClusterError(400, "which: worker, manager or both")
    started = time.monotonic()
    doc = await _swarm(engine)
    before = doc.get("JoinTokens") or {}
    query = "".join(
        f"&rotate{w.capitalize()}Token=true" for w in ("worker", "manager") if which in (w, "both")
    )
    await _update(engine, doc, doc.get("Spec") or {}, query)
    after = (await _swarm(engine)).get("JoinTokens") or {}
    changed = [w for w in ("Worker", "Manager") if before.get(w) != after.get(w)]
    return {"rotated": [w.lower() for w in changed], "seconds": round(time.monotonic() - started, 2)}


async def set_autolock(engine: Engine, on: bool) -> dict[str, Any]:
    """Turn autolock on or off. With it on, the answer carries the unlock key,
    which the caller must keep; it is never written to the audit trail."""
    started = time.monotonic()
    doc = await _swarm(engine)
    spec = json.loads(json.dumps(doc.get("Spec") or {}))
    spec.setdefault("EncryptionConfig", {})["AutoLockManagers"] = on
    await _update(engine, doc, spec)
    out: dict[str, Any] = {"autolock": on, "seconds": round(time.monotonic() - started, 2)}
    if on:
        status, key = await engine.call_json("GET", "/swarm/unlockkey")
        if status == 200 and isinstance(key, dict):
            out["unlock_key"] = key.get("UnlockKey")
    return out


def _cert_expiry(pem: str) -> str:
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return ""
    return cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")


async def status(engine: Engine, trust: ClusterTrust) -> dict[str, Any]:
    """The CA, autolock, overlays without encryption, and every node's trust state."""
    doc = await _swarm(engine)
    spec = doc.get("Spec") or {}
    pem = str((doc.get("TLSInfo") or {}).get("TrustRoot") or "")
    swarm = await trust.swarm(engine)
    roots = trust.store.roots()
    enrolled = trust.store.enrolled()
    st, nets = await engine.call_json("GET", "/networks")
    plain = sorted(
        str(n.get("Name"))
        for n in (nets if st == 200 and isinstance(nets, list) else [])
        if n.get("Driver") == "overlay" and "encrypted" not in (n.get("Options") or {})
    )
    nodes = await trust.nodes(engine)
    live = {r.node_id: r for r in trust.store.requests("approved")}
    out_nodes = []
    for n in sorted(nodes, key=lambda n: n.hostname):
        v = trust.validity(n, swarm)
        r = live.get(n.id)
        out_nodes.append(
            {
                "id": n.id,
                "hostname": n.hostname,
                "role": n.role,
                "availability": n.availability,
                "state": n.state,
                "trust_root": n.trust_root,
                "follows_current_root": n.trust_root == swarm.trust_root,
                "enrolled": n.id in enrolled,
                "attested": sorted(v.classes),
                "expires_at": r.expires_at if r is not None and v.classes else None,
                "problems": v.problems,
                "labels": {k: x for k, x in n.labels.items() if k.startswith("io.moorage.")},
            }
        )
    return {
        "swarm": swarm.id,
        "ca": {
            "trust_root": swarm.trust_root,
            "expires": _cert_expiry(pem),
            "accepted_roots": roots,
            "node_cert_expiry_hours": round(
                int((spec.get("CAConfig") or {}).get("NodeCertExpiry") or 0) / 3.6e12, 1
            ),
        },
        "autolock": bool((spec.get("EncryptionConfig") or {}).get("AutoLockManagers")),
        "overlays_without_encryption": plain,
        "nodes": out_nodes,
        "node_certificates": "the Engine API exposes no node certificate; each node renews within "
        "the swarm's node certificate expiry",
    }
