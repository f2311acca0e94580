"""A one-time sign-in link for the web console, for someone the gateway already
knows: by their client certificate on the TLS listener, or their uid on the unix
socket. ``moorage console`` asks the gateway for one; the console redeems it once,
within a minute, for a session of the same person, teams and roles.

The link is an HMAC-SHA256 signed statement under the console's key (a file in the
data folder, made once, mode 0600), so every gateway worker can sign and the console
can check it without a shared table; spending it is recorded in the certificate store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from moorage.identity.principal import Principal

__all__ = ["HANDOFF_TTL", "console_key", "digest", "read_handoff", "sign_handoff"]

HANDOFF_TTL = 60.0


def console_key(path: Path) -> bytes:
    """The console's signing key, made on first use."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker made it first
            return path.read_bytes()
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key


def _mac(key: bytes, data: bytes) -> str:
    return (
        base64.urlsafe_b64encode(hmac.new(key, b"handoff:" + data, hashlib.sha256).digest())
        .rstrip(b"=")
        .decode()
    )


def sign_handoff(key: bytes, p: Principal, now: float) -> str:
    """A token that signs ``p`` in to the console once, until ``now`` + a minute."""
    doc = {"u": p.user, "t": list(p.teams), "r": list(p.roles), "a": p.auth, "e": now + HANDOFF_TTL,
           "n": secrets.token_urlsafe(12)}  # fmt: skip
    data = base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).rstrip(b"=")
    return data.decode() + "." + _mac(key, data)


def read_handoff(key: bytes, token: str, now: float) -> dict[str, Any] | None:
    """The signed statement of ``token``, or None when forged, malformed or expired."""
    data, _, mac = token.rpartition(".")
    if not data or not hmac.compare_digest(
        mac.encode(errors="replace"), _mac(key, data.encode(errors="replace")).encode()
    ):
        return None
    try:
        doc = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
        ok = isinstance(doc, dict) and float(doc["e"]) > now and isinstance(doc["u"], str)
    except (ValueError, KeyError, TypeError):
        return None
    return doc if ok else None


def digest(token: str) -> str:
    """What is recorded when a token is spent (never the token)."""
    return "handoff:" + hashlib.sha256(token.encode()).hexdigest()
