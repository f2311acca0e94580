"""Refusals that say whose fault they are, each knowing its audit decision.

A refusal is the client's (a request it must fix: 4xx), policy's (a rule or the
tenancy model said no: 401/403/404, recorded as ``deny``), the upstream engine's
(it answered what Moorage can't use: 502), or Moorage's own (it can't decide right
now: 5xx). The type carries the decision, so nothing reads a message to guess it.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ClientError",
    "Hidden",
    "InternalError",
    "NotServed",
    "PolicyRefusal",
    "Refusal",
    "Unavailable",
    "UpstreamFault",
    "for_status",
]


class Refusal(Exception):
    """A request Moorage answers itself, without forwarding it."""

    decision: ClassVar[str] = "error"  # what the audit record says
    default_status: ClassVar[int] = 400

    def __init__(self, message: str, status: int | None = None, engine_words: bool = False) -> None:
        """``engine_words``: the message is worded as the engine words that answer (a
        "No such container" for an object the caller may not see), so it goes out as
        it is; any other refusal is prefixed ``moorage:``, so people know who said no."""
        super().__init__(message)
        self.status = self.default_status if status is None else status
        self.message = message
        self.engine_words = engine_words

    @property
    def answer(self) -> str:
        """The message the client reads."""
        if self.engine_words or self.message.startswith("moorage:"):
            return self.message
        return f"moorage: {self.message}"


class ClientError(Refusal):
    """The client's request is malformed or incomplete: it must change it (4xx)."""

    default_status = 400


class PolicyRefusal(Refusal):
    """Policy or tenancy refuses the request (403), or hides the object it names (404)."""

    decision = "deny"
    default_status = 403


class Hidden(PolicyRefusal):
    """Tenancy hides the object: it answers as if it did not exist (404)."""

    default_status = 404


class UpstreamFault(Refusal):
    """The engine answered something Moorage can't use (502)."""

    default_status = 502


class Unavailable(Refusal):
    """Moorage itself can't serve the request now, or this gateway lacks the feature (5xx)."""

    default_status = 503


class NotServed(Unavailable):
    """This gateway was started without what the request needs (501)."""

    default_status = 501


class InternalError(Unavailable):
    """A bug of Moorage's own refused the request (500); the log has the details."""

    default_status = 500


def for_status(status: int, message: str, engine_words: bool = False) -> Refusal:
    """The refusal for a status another component chose (the engine's answer, a login,
    the exception store), typed by whose fault that status says it is."""
    cls: type[Refusal]
    if status in (401, 403, 404):
        cls = PolicyRefusal
    elif status < 500:
        cls = ClientError
    elif status == 502:
        cls = UpstreamFault
    else:
        cls = Unavailable
    return cls(message, status, engine_words)
