"""Errors of the framing core, typed by whose fault they are (as h11's are).

A :class:`ClientFault` is about a client's bytes: the request is refused with the
4xx (or 501/505) it carries and never forwarded. An :class:`UpstreamFramingFault` is about
the engine's bytes: the client gets a 502, or a cut answer once its first byte has
gone. Both are :class:`HttpError`, which the rest of the gateway catches, and
both are refusals of admission's hierarchy (:mod:`moorage.admission.errors`): the
type says whose fault it is and what the audit record says, wherever it is caught.
"""

from __future__ import annotations

from moorage.admission.errors import ClientError, Refusal, UpstreamFault

__all__ = ["ClientFault", "HttpError", "UpstreamFramingFault", "fault"]


class HttpError(Refusal):
    """A request the gateway refuses before it reaches the engine (4xx), or an
    answer the engine broke (502). Takes its status first, as HTTP writes it."""

    def __init__(self, status: int, message: str, engine_words: bool = False) -> None:
        """``engine_words``: see :class:`~moorage.admission.errors.Refusal`."""
        super().__init__(message, status, engine_words)


class ClientFault(HttpError, ClientError):
    """A client's request broke the framing rules, or asked for more than the limits allow."""


class UpstreamFramingFault(HttpError, UpstreamFault):
    """The engine's answer broke the framing rules, or was larger than the gateway reads."""


def fault(side: int) -> type[HttpError]:
    """The error type for bytes whose framing errors get status ``side``: 502 for
    the engine's bytes, anything else (400) for a client's. Functions that read
    either side's bodies take such a ``status`` argument."""
    return UpstreamFramingFault if side == 502 else ClientFault
