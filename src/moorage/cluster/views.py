"""What Moorage reads of a Swarm through the engine: nodes and the swarm itself.

Both views are read fresh at each use; the store (cluster/store.py) holds what
Moorage decided, these hold what the cluster says now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from moorage.cluster.attestation import AttestationError, trust_root_digest

__all__ = ["Engine", "NodeView", "SwarmView"]


class Engine(Protocol):
    """The one engine call cluster code makes (the gateway's upstream, or a fake)."""

    async def call_json(self, method: str, path: str, limit: int = ..., body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON answer) of one engine API call."""
        ...


@dataclass(frozen=True)
class NodeView:
    """What Moorage reads of a Swarm node."""

    id: str
    hostname: str
    role: str
    availability: str
    state: str
    trust_root: str  # sha256:<hex>, or "" when the node reports none
    labels: dict[str, str]
    version: int
    spec: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_engine(cls, doc: dict[str, Any]) -> NodeView:
        """The node as the engine's ``GET /nodes/{id}`` answers it; an unreadable trust
        root reads as none."""
        spec = doc.get("Spec") or {}
        desc = doc.get("Description") or {}
        pem = str((desc.get("TLSInfo") or {}).get("TrustRoot") or "")
        try:
            root = trust_root_digest(pem) if pem else ""
        except AttestationError:
            root = ""
        return cls(
            id=str(doc.get("ID", "")),
            hostname=str(desc.get("Hostname", "")),
            role=str(spec.get("Role", "")),
            availability=str(spec.get("Availability", "")),
            state=str((doc.get("Status") or {}).get("State", "")),
            trust_root=root,
            labels={str(k): str(v) for k, v in (spec.get("Labels") or {}).items()},
            version=int((doc.get("Version") or {}).get("Index", 0)),
            spec=spec,
        )


@dataclass(frozen=True)
class SwarmView:
    """What Moorage reads of the swarm: its id, trust root, version and spec."""

    id: str
    trust_root: str
    version: int
    spec: dict[str, Any]

    @classmethod
    def from_engine(cls, doc: dict[str, Any]) -> SwarmView:
        """The swarm as the engine's ``GET /swarm`` answers it."""
        pem = str((doc.get("TLSInfo") or {}).get("TrustRoot") or "")
        return cls(
            str(doc.get("ID", "")),
            trust_root_digest(pem) if pem else "",
            int((doc.get("Version") or {}).get("Index", 0)),
            doc.get("Spec") or {},
        )
