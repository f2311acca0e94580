"""The admission seam: the gateway asks it about every request that can change state."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from moorage.engine_api.endpoints import Operation
from moorage.identity import Principal

__all__ = ["Admission", "AdmissionError", "AdmissionRequest", "Decision", "UnsafeAllowAll"]

log = logging.getLogger("moorage.admission")


class AdmissionError(Exception):
    """Admission could not decide (a policy error, a fact it could not gather)."""


@dataclass(frozen=True)
class AdmissionRequest:
    """One request as admission sees it: who, what, and the body that matters."""

    principal: Principal
    operation: Operation
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any  # the parsed JSON body where the operation has one that matters, else None
    object_id: str | None = None  # the full id the gateway resolved the object to (its ownership check)


@dataclass(frozen=True)
class Decision:
    """What admission decided about one request, and what it changes in it."""

    allowed: bool
    reason: str = ""
    warnings: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    body: Any = None  # the (possibly mutated) body to forward; None = unchanged
    mutations: tuple[str, ...] = field(default=())
    policy_version: str = ""
    status: int = 403  # a refusal's HTTP status (404 makes the CLI pull a missing image first)
    target: str | None = None  # forward to this path?query instead (a pull pinned to its digest)
    after: tuple[tuple[str, str], ...] = ()  # engine calls once the request succeeded (tag the pin)
    image_digest: str | None = None  # the digest(s) image trust resolved the request's image(s) to


class Admission(ABC):
    """Decides one request. Implementations must not block the event loop for long."""

    @abstractmethod
    def admit(self, request: AdmissionRequest) -> Decision:
        """Decide ``request`` from what it carries (no engine facts)."""

    async def admit_async(self, request: AdmissionRequest, engine: Any) -> Decision:
        """Gather facts from ``engine`` (an object with ``call_json``), then decide.
        Implementations that need no facts keep the default."""
        return self.admit(request)

    def serial_key(self, request: AdmissionRequest) -> str | None:
        """Requests with the same key are decided and carried out one at a time (so
        concurrent creates can't overshoot a quota). None: no ordering needed."""
        return None


class UnsafeAllowAll(Admission):
    """Allows every request and changes nothing: no policy at all. For tests and
    comparisons only; building one logs a warning."""

    def __init__(self) -> None:
        """Warn: a gateway with this admits whatever RBAC and tenancy let through."""
        log.warning("UnsafeAllowAll: no policy judges requests (tests and comparisons only)")

    def admit(self, request: AdmissionRequest) -> Decision:
        """Allow, unchanged."""
        return Decision(True)
