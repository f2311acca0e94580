"""Node attestations: an in-toto Statement in a DSSE envelope, signed by an officer.

The statement binds what Swarm gives a node and nothing it says about itself: the
node ID (its certificate's CN), the swarm ID (the certificate's O) and the digest of
the trust root its certificate chains to. Keys change at every renewal and CA
rotation, so the key is never bound. Pure: signing and verifying take keys and a
time, and read no file or clock.

DSSE (github.com/secure-systems-lab/dsse, protocol v1): the signature covers
``PAE(payloadType, payload)`` = ``"DSSEv1" SP len(type) SP type SP len(body) SP body``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "CLASS_RE",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "AttestationError",
    "Claim",
    "key_id",
    "pae",
    "sign",
    "statement",
    "trust_root_digest",
    "verify",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://moorage.dev/attestation/swarm-node/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
CLASS_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class AttestationError(Exception):
    """An attestation that can't be made or doesn't verify; the message says why."""


@dataclass(frozen=True)
class Claim:
    """What an officer attests about one Swarm node."""

    node_id: str
    swarm_id: str
    trust_root: str  # sha256:<hex> of the DER of the swarm's root CA certificate
    classes: tuple[str, ...]
    evidence: str
    issued_at: int  # seconds since the epoch
    expires_at: int
    request_id: str
    requester: str

    def to_predicate(self) -> dict[str, Any]:
        """The claim as the in-toto predicate an officer signs."""
        return {
            "node": {"id": self.node_id, "swarm": self.swarm_id, "trustRoot": self.trust_root},
            "classes": list(self.classes),
            "evidence": self.evidence,
            "issuedAt": self.issued_at,
            "expiresAt": self.expires_at,
            "request": {"id": self.request_id, "requester": self.requester},
        }


def trust_root_digest(pem: str) -> str:
    """``sha256:<hex>`` of the DER of the first certificate in ``pem`` (Swarm's
    ``TLSInfo.TrustRoot``); the same root written with other line breaks or
    armour has the same digest."""
    body = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S)
    if not body:
        raise AttestationError("the trust root is not a PEM certificate")
    try:
        der = base64.b64decode("".join(body.group(1).split()), validate=True)
    except ValueError as exc:
        raise AttestationError(f"the trust root's PEM is malformed: {exc}") from exc
    return "sha256:" + hashlib.sha256(der).hexdigest()


def statement(claim: Claim) -> bytes:
    """The in-toto Statement, serialised canonically (sorted keys, no spaces)."""
    doc = {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": f"swarm-node:{claim.swarm_id}/{claim.node_id}",
                "digest": {"sha256": claim.trust_root.removeprefix("sha256:")},
            }
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": claim.to_predicate(),
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature covers."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def key_id(pub: ec.EllipticCurvePublicKey) -> str:
    """``sha256:<hex>`` of the key's SubjectPublicKeyInfo DER."""
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def sign(payload: bytes, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """A DSSE envelope over ``payload`` (an in-toto Statement), ECDSA P-256 SHA-256."""
    sig = key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key_id(key.public_key()), "sig": base64.b64encode(sig).decode()}],
    }


def verify(envelope: Any, keys: Mapping[str, ec.EllipticCurvePublicKey]) -> tuple[Claim, str]:
    """The claim an envelope carries and the id of the key that signed it, if one of
    ``keys`` (by key id) made a valid signature over it; else AttestationError."""
    if not isinstance(envelope, dict):
        raise AttestationError("the envelope is not a JSON object")
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise AttestationError(f"payloadType must be {PAYLOAD_TYPE}")
    try:
        payload = base64.b64decode(str(envelope.get("payload", "")), validate=True)
    except ValueError as exc:
        raise AttestationError(f"the payload is not base64: {exc}") from exc
    sigs = envelope.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise AttestationError("the envelope carries no signature")
    message = pae(PAYLOAD_TYPE, payload)
    signer = None
    for s in sigs:
        if not isinstance(s, dict):
            continue
        candidates = [keys[s["keyid"]]] if s.get("keyid") in keys else list(keys.values())
        try:
            raw = base64.b64decode(str(s.get("sig", "")), validate=True)
        except ValueError:
            continue
        for pub in candidates:
            try:
                pub.verify(raw, message, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                continue
            signer = key_id(pub)
            break
        if signer:
            break
    if signer is None:
        raise AttestationError("no signature on the envelope verifies with a security officer's key")
    return parse_statement(payload), signer


def parse_statement(payload: bytes) -> Claim:
    """The claim in a Statement's bytes, checked field by field."""
    try:
        doc = json.loads(payload)
    except ValueError as exc:
        raise AttestationError(f"the payload is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE:
        raise AttestationError(f"the payload is not an in-toto Statement ({STATEMENT_TYPE})")
    if doc.get("predicateType") != PREDICATE_TYPE:
        raise AttestationError(f"predicateType must be {PREDICATE_TYPE}")
    pred: Any = doc.get("predicate")
    try:
        node = pred["node"]
        claim = Claim(
            node_id=str(node["id"]),
            swarm_id=str(node["swarm"]),
            trust_root=str(node["trustRoot"]),
            classes=tuple(str(c) for c in pred["classes"]),
            evidence=str(pred["evidence"]),
            issued_at=int(pred["issuedAt"]),
            expires_at=int(pred["expiresAt"]),
            request_id=str(pred["request"]["id"]),
            requester=str(pred["request"]["requester"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AttestationError(f"the statement's predicate is incomplete: {exc}") from exc
    subject = doc.get("subject")
    want = {
        "name": f"swarm-node:{claim.swarm_id}/{claim.node_id}",
        "digest": {"sha256": claim.trust_root.removeprefix("sha256:")},
    }
    if subject != [want]:
        raise AttestationError("the statement's subject does not name the node it attests")
    if not _DIGEST_RE.match(claim.trust_root):
        raise AttestationError("the trust root digest must be sha256:<64 hex>")
    if not claim.classes or not all(CLASS_RE.match(c) for c in claim.classes):
        raise AttestationError("classes must be one or more names of lowercase letters, digits and '-'")
    if claim.expires_at <= claim.issued_at:
        raise AttestationError("the attestation expires before it is issued")
    return claim
