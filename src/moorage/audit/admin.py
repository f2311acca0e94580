"""Records for administrative actions taken outside the gateway (CLI commands):
key rotation, certificate issue, and later policy changes, exceptions, attestation."""

from __future__ import annotations

import os
import pwd
import secrets
import time
from pathlib import Path
from typing import Any

from moorage.audit.factory import open_trail
from moorage.audit.interface import AuditRecord
from moorage.audit.keys import KeyRing
from moorage.store import open_store

__all__ = ["record_admin"]


def record_admin(
    data_dir: Path, kind: str, object_ref: str | None, summary: dict[str, Any] | None = None
) -> str:
    """Append one record for an administrative action to the trail in ``data_dir``, or
    the shared one when ``$MOORAGE_STORE`` names a PostgreSQL store (safe beside a
    running gateway). Returns its request id."""
    uid = os.geteuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = f"uid{uid}"
    rid = secrets.token_hex(8)
    trail = open_trail(
        open_store(os.environ.get("MOORAGE_STORE") or None, data_dir), KeyRing(data_dir / "audit-keys")
    )
    try:
        trail.record(AuditRecord(
            time=time.time(), request_id=rid, user=user, teams=(), roles=(), auth="local",
            source=f"cli:uid={uid},pid={os.getpid()}", method="CLI", path=f"moorage {kind}",
            kind=kind, object_ref=object_ref, decision="allow", reason="", status=0, duration_ms=0.0,
            summary=summary,
        ))  # fmt: skip
    finally:
        trail.close()
    return rid
