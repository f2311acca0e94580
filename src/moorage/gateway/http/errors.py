"""Errors of the framing core, typed by whose fault they are (as h11's are).

A :class:`ClientFault` is about a client's bytes: the request is refused with the
4xx (or 501/505) it carries and never forwarded. An :class:`UpstreamFault` is about
the engine's bytes: the client gets a 502, or a cut answer once its first byte has
gone. Both are :class:`HttpError`, which the rest of the gateway catches.
"""

from __future__ import annotations

__all__ = ["ClientFault", "HttpError", "UpstreamFault", "fault"]


class HttpError(Exception):
    """A request the gateway refuses before it reaches the engine (4xx), or an
    answer the engine broke (502)."""

    def __init__(self, status: int, message: str, engine_words: bool = False) -> None:
        """``engine_words``: the message is worded as the engine words that answer (a
        "No such container" for an object the caller may not see), so it goes out as
        it is; any other refusal is prefixed ``moorage:``, so people know who said no."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.engine_words = engine_words


class ClientFault(HttpError):
    """A client's request broke the framing rules, or asked for more than the limits allow."""


class UpstreamFault(HttpError):
    """The engine's answer broke the framing rules, or was larger than the gateway reads."""


def fault(side: int) -> type[HttpError]:
    """The error type for bytes whose framing errors get status ``side``: 502 for
    the engine's bytes, anything else (400) for a client's. Functions that read
    either side's bodies take such a ``status`` argument."""
    return UpstreamFault if side == 502 else ClientFault
