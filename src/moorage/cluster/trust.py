"""Enrolment, attestation and their validity: the edge between the cluster store, the
engine (a Swarm manager) and the officers' keys.

An attestation counts for a node while all of this holds, checked at every use:
its envelope verifies with the key of the officer who approved it, that officer is
not the requester, it names this node, this swarm and a trust root Moorage accepted,
the node still follows an accepted trust root, it hasn't expired or been revoked,
the node is enrolled, and the node is a worker (a manager can change the cluster).
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric import ec

from moorage.cluster.attestation import (
    CLASS_RE,
    AttestationError,
    Claim,
    statement,
    verify,
)
from moorage.cluster.store import ClusterStore, Request
from moorage.cluster.views import Engine, NodeView, SwarmView

# Engine, NodeView and SwarmView are re-exported: callers have always imported them here.
__all__ = ["ClusterError", "ClusterTrust", "Engine", "NodeView", "SwarmView"]

MAX_SECONDS = 366 * 86400
CLOCK_SKEW = 300  # an approval's statement must have been made within this many seconds


class ClusterError(Exception):
    """A cluster request that can't be carried out; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Validity:
    """The classes a node is validly attested for now, and why each other one isn't."""

    classes: frozenset[str]
    problems: dict[str, str]  # class -> why an attestation for it doesn't count


def parse_duration(text: Any) -> int:
    """``12h``, ``90d``, ``2w`` (at most 366 days)."""
    m = re.match(r"^\s*(\d+)\s*([smhdw])\s*$", str(text))
    if not m:
        raise ClusterError(400, f"expires: {text!r} is not a duration (use e.g. 12h, 90d)")
    seconds = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[m.group(2)]
    if not 0 < seconds <= MAX_SECONDS:
        raise ClusterError(400, "expires: must be more than 0 and at most 366 days")
    return seconds


class ClusterTrust:
    """``officer_keys()`` gives every security officer's public keys (key id ->
    (user, key)); it is asked at each use, so whatever it returns now decides.
    (``moorage up`` reads the users file once at start: removing a key from the file
    takes effect when the gateway restarts.)"""

    def __init__(
        self,
        store: ClusterStore,
        officer_keys: Callable[[], Mapping[str, tuple[str, ec.EllipticCurvePublicKey]]],
        exclusive: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.officer_keys = officer_keys
        self.exclusive = exclusive
        self.clock = clock
        self.rotation_expected: tuple[float, str] | None = (
            None  # (when, by whom): a CA rotation through Moorage
        )
        self.wake: Callable[[], None] = lambda: None  # the reconciler sets this
        # (node, class) pins an approval lifted: the reconciler takes them off services
        self.released: set[tuple[str, str]] = set()

    # --------------------------------------------------------------- reads
    async def swarm(self, engine: Engine) -> SwarmView:
        """The swarm the engine manages; 409 when the engine is not a Swarm manager."""
        status, doc = await engine.call_json("GET", "/swarm")
        if status != 200 or not isinstance(doc, dict):
            msg = doc.get("message") if isinstance(doc, dict) else ""
            raise ClusterError(
                503 if status >= 500 else 409, f"the engine is not a Swarm manager: {msg or status}"
            )
        return SwarmView.from_engine(doc)

    async def node(self, engine: Engine, ref: str) -> NodeView:
        """One node by id or hostname; 404 when there is none."""
        status, doc = await engine.call_json("GET", f"/nodes/{quote(ref, safe='')}")
        if status == 404 or not isinstance(doc, dict):
            raise ClusterError(404, f"no such node: {ref}")
        if status != 200:
            raise ClusterError(502, f"inspecting node {ref} failed: {doc.get('message', status)}")
        return NodeView.from_engine(doc)

    async def nodes(self, engine: Engine) -> list[NodeView]:
        """Every node of the swarm."""
        status, docs = await engine.call_json("GET", "/nodes")
        if status != 200 or not isinstance(docs, list):
            raise ClusterError(502, f"listing nodes answered {status}")
        return [NodeView.from_engine(d) for d in docs if isinstance(d, dict)]

    def validity(self, node: NodeView, swarm: SwarmView, now: float | None = None) -> Validity:
        """The classes a node is validly attested for now, and why others aren't."""
        now = self.clock() if now is None else now
        keys = self.officer_keys()
        roots = self.store.roots()
        enrolled = self.store.enrolled()
        ok: set[str] = set()
        problems: dict[str, str] = {}
        for r in self.store.requests():
            if r.node_id != node.id or r.status == "pending":
                continue
            why = self._problem(r, node, swarm, now, keys, roots, enrolled)
            for c in r.classes:
                if why is None:
                    ok.add(c)
                else:
                    problems.setdefault(c, why)
        return Validity(frozenset(ok), {c: w for c, w in problems.items() if c not in ok})

    def _problem(
        self,
        r: Request,
        node: NodeView,
        swarm: SwarmView,
        now: float,
        keys: Mapping[str, tuple[str, ec.EllipticCurvePublicKey]],
        roots: Mapping[str, str],
        enrolled: Mapping[str, str],
    ) -> str | None:
        if r.status == "revoked":
            return f"attestation {r.id} was revoked by {r.revoked_by}"
        try:
            claim, signer = verify(r.envelope, {k: pub for k, (_, pub) in keys.items()})
        except AttestationError as exc:
            return f"attestation {r.id} does not verify: {exc}"
        owner = keys[signer][0]
        if owner != r.approver or owner == claim.requester:
            return f"attestation {r.id} is not signed by its approving officer, or is signed by its requester"
        if claim.node_id != node.id or claim.request_id != r.id:
            return f"attestation {r.id} names another node or request"
        if claim.swarm_id != swarm.id:
            return f"attestation {r.id} is for swarm {claim.swarm_id}, not this one ({swarm.id})"
        if node.id not in enrolled:
            return "the node is not enrolled"
        if claim.trust_root not in roots:
            return f"attestation {r.id} binds a trust root Moorage never accepted"
        if node.trust_root not in roots:
            return "the node follows a trust root Moorage did not accept (a CA change outside Moorage?)"
        if now >= claim.expires_at:
            when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(claim.expires_at))
            return f"attestation {r.id} expired at {when}"
        if node.role != "worker":
            return f"the node's role is {node.role or 'unknown'}: attested nodes must be workers"
        return None

    # ------------------------------------------------------------- changes
    async def enrol(self, engine: Engine, ref: str, user: str) -> dict[str, Any]:
        """Make node ``ref`` eligible for workloads (idempotent: ``new`` says if it was)."""
        swarm = await self.swarm(engine)
        node = await self.node(engine, ref)
        new = self.store.enrol(node.id, swarm.id, user, self.clock())
        self.wake()
        return {"node": node.id, "hostname": node.hostname, "swarm": swarm.id, "enrolled": True, "new": new}

    async def request(self, engine: Engine, body: Any, user: str) -> dict[str, Any]:
        """Record a pending attestation request from ``body`` ({node, classes, evidence,
        expires}); an officer other than ``user`` must approve it."""
        if not isinstance(body, dict):
            raise ClusterError(
                400, "the request body must be a JSON object {node, classes, evidence, expires}"
            )
        classes = body.get("classes")
        if isinstance(classes, str):
            classes = [classes]
        if (
            not isinstance(classes, list)
            or not classes
            or not all(isinstance(c, str) and CLASS_RE.match(c) for c in classes)
        ):
            raise ClusterError(400, "classes: give one or more class names (lowercase letters, digits, '-')")
        evidence = body.get("evidence")
        if not isinstance(evidence, str) or not evidence.strip() or len(evidence) > 500:
            raise ClusterError(400, "evidence: give a reference to the audit that supports the attestation")
        duration = parse_duration(body.get("expires", "90d"))
        node = await self.node(engine, str(body.get("node", "")))
        if node.id not in self.store.enrolled():
            raise ClusterError(
                409, f"node {node.hostname or node.id} is not enrolled: run moorage node enrol first"
            )
        rid = "att-" + secrets.token_hex(6)
        self.store.add_request(
            Request(
                rid,
                node.id,
                tuple(sorted(set(classes))),
                evidence,
                duration,
                user,
                self.clock(),
                "pending",
                None,
                None,
                None,
                None,
                None,
                None,
                None,
            )
        )
        return {
            "id": rid,
            "node": node.id,
            "hostname": node.hostname,
            "classes": sorted(set(classes)),
            "evidence": evidence,
            "duration": duration,
            "requester": user,
            "status": "pending",
        }

    def _pending(self, rid: str) -> Request:
        r = self.store.request(rid)
        if r is None:
            raise ClusterError(404, f"no such attestation request: {rid}")
        if r.status != "pending":
            raise ClusterError(409, f"attestation request {rid} is {r.status}, not pending")
        return r

    async def statement(self, engine: Engine, rid: str) -> dict[str, Any]:
        """The Statement an officer signs to approve ``rid``, made now."""
        r = self._pending(rid)
        swarm = await self.swarm(engine)
        node = await self.node(engine, r.node_id)
        if not node.trust_root:
            raise ClusterError(409, f"node {node.id} reports no trust root")
        now = int(self.clock())
        claim = Claim(
            node.id,
            swarm.id,
            node.trust_root,
            r.classes,
            r.evidence,
            now,
            now + r.duration,
            r.id,
            r.requester,
        )
        return {
            "id": rid,
            "payload": base64.b64encode(statement(claim)).decode(),
            "claim": claim.to_predicate(),
        }

    async def approve(self, engine: Engine, rid: str, body: Any, user: str) -> dict[str, Any]:
        """Approve ``rid`` with an envelope ``user`` signed over the current statement: the
        requester can't approve, and the statement must still match the node and be fresh."""
        r = self._pending(rid)
        if user == r.requester:
            raise ClusterError(403, f"{user} requested {rid}: another security officer must approve it")
        envelope = body.get("envelope") if isinstance(body, dict) else None
        if not isinstance(envelope, dict):
            raise ClusterError(400, 'the body must be {"envelope": a DSSE envelope}')
        mine = {k: pub for k, (who, pub) in self.officer_keys().items() if who == user}
        if not mine:
            raise ClusterError(403, f"{user} has no signing key in the users file (users.{user}.keys)")
        try:
            claim, signer = verify(envelope, mine)
        except AttestationError as exc:
            raise ClusterError(400, f"the attestation does not verify: {exc}") from exc
        swarm = await self.swarm(engine)
        node = await self.node(engine, r.node_id)
        now = self.clock()
        expected = (r.node_id, swarm.id, node.trust_root, r.classes, r.evidence, r.id, r.requester)
        got = (
            claim.node_id,
            claim.swarm_id,
            claim.trust_root,
            claim.classes,
            claim.evidence,
            claim.request_id,
            claim.requester,
        )
        if got != expected:
            raise ClusterError(
                400, "the signed statement does not match the request and the node as it is now"
            )
        if abs(claim.issued_at - now) > CLOCK_SKEW or claim.expires_at - claim.issued_at != r.duration:
            raise ClusterError(400, "the signed statement is stale: fetch it again and sign it at once")
        if not self.store.approve(rid, user, now, claim.expires_at, envelope, signer):
            raise ClusterError(409, f"attestation request {rid} is no longer pending")
        for c in claim.classes:
            if self.store.unpin(node.id, c):
                self.released.add((node.id, c))
        self.wake()
        return {
            "id": rid,
            "node": node.id,
            "hostname": node.hostname,
            "classes": list(claim.classes),
            "approver": user,
            "signer": signer,
            "expires_at": claim.expires_at,
            "status": "approved",
        }

    async def revoke(
        self, engine: Engine, ref: str, user: str, classes: list[str] | None = None
    ) -> dict[str, Any]:
        """Revoke request ``ref``, or every live attestation of node ``ref`` (of
        ``classes`` when given)."""
        node_id = ref
        if self.store.request(ref) is None:
            node_id = (await self.node(engine, ref)).id
        hits = [
            r
            for r in self.store.requests()
            if r.status in ("pending", "approved")
            and (r.id == ref or r.node_id == node_id)
            and (not classes or set(classes) & set(r.classes))
        ]
        if not hits:
            raise ClusterError(404, f"no live attestation or request matches {ref}")
        now = self.clock()
        done = [r.id for r in hits if self.store.revoke(r.id, user, now)]
        self.wake()
        return {"revoked": done, "node": hits[0].node_id, "by": user}

    def list(self) -> list[dict[str, Any]]:
        """Every attestation request as JSON data, oldest first."""
        return [r.to_json() for r in self.store.requests()]
