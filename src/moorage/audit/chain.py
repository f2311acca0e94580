"""The hash chain and its checkpoints, as pure functions.

A record's hash is SHA-256(previous hash || canonical JSON of the record). The
canonical form (sorted keys, no spaces, UTF-8) is what is stored, so a verifier
hashes the stored bytes without re-serialising.

Checkpoints are C2SP signed notes (https://c2sp.org/signed-note) over a
checkpoint body in the tlog-checkpoint layout: origin, size, base64 root hash.
Here the "root" is the chain head after ``size`` records.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = ["GENESIS", "Checkpoint", "canonical", "key_id", "link", "open_checkpoint", "sign_checkpoint"]

GENESIS = "0" * 64
_ED25519 = b"\x01"  # signed-note signature type for Ed25519


def canonical(record: dict[str, Any]) -> str:
    """The one serialisation that is hashed: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link(prev_hex: str, body: str) -> str:
    """The next hash of the chain: SHA-256 of the previous hash's bytes and the body."""
    return hashlib.sha256(bytes.fromhex(prev_hex) + body.encode()).hexdigest()


def _raw(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(name: str, pub: Ed25519PublicKey) -> bytes:
    """The signed-note key id: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + _raw(pub)).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    """A verified signed note: the trail ``origin`` had ``size`` records ending in ``root``."""

    origin: str
    size: int
    root: str  # hex
    key_name: str
    key_id: bytes


def sign_checkpoint(origin: str, size: int, root_hex: str, name: str, key: Ed25519PrivateKey) -> str:
    """A signed note (the transparency-log format) for the chain of ``size`` records
    ending in ``root_hex``, signed by ``key`` under ``name``."""
    body = f"{origin}\n{size}\n{base64.b64encode(bytes.fromhex(root_hex)).decode()}\n"
    sig = key.sign(body.encode())
    kid = key_id(name, key.public_key())
    return f"{body}\n\u2014 {name} {base64.b64encode(kid + sig).decode()}\n"


class CheckpointError(Exception):
    """A checkpoint that is malformed, or whose signature does not verify."""


def open_checkpoint(note: str, keys: dict[bytes, tuple[str, Ed25519PublicKey]]) -> Checkpoint:
    """Parse a signed note and verify it with one of ``keys`` (key id -> (name, key))."""
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        raise CheckpointError("not a signed note (no blank line before the signatures)")
    lines = body.split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint body needs origin, size and root hash")
    origin, size_text, root_b64 = lines[0], lines[1], lines[2]
    if not size_text.isdigit():
        raise CheckpointError(f"checkpoint size {size_text!r} is not a number")
    try:
        root = base64.b64decode(root_b64, validate=True).hex()
    except ValueError as exc:
        raise CheckpointError("checkpoint root hash is not base64") from exc
    signed = (body + "\n").encode()
    unknown = []
    for line in sigs.strip("\n").split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014":
            raise CheckpointError(f"malformed signature line {line[:60]!r}")
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except ValueError as exc:
            raise CheckpointError("signature is not base64") from exc
        kid, sig = blob[:4], blob[4:]
        known = keys.get(kid)
        if known is None or known[0] != parts[1]:
            unknown.append(f"{parts[1]}/{kid.hex()}")
            continue
        try:
            known[1].verify(sig, signed)
        except InvalidSignature as exc:
            raise CheckpointError(f"signature by {parts[1]} does not verify") from exc
        return Checkpoint(origin, int(size_text), root, parts[1], kid)
    raise CheckpointError(f"signed only by unknown keys: {', '.join(unknown) or 'none'}")
