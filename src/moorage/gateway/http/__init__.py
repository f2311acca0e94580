"""HTTP/1.1 framing for the gateway: the one framing core of both request paths.

Everything here is pure (bytes in, data out) except the stream drivers in
:mod:`.streams`, which apply the same pure rules to asyncio streams. The full path
(``Gateway._connection``) and the fast path (``fastpath.FastClient``) frame
requests and responses with these functions only, so they can't read a request
differently.

Request heads follow RFC 9112 strictly: anything a lenient reader (such as Go's
net/http in the engine) could take another way is refused with a 4xx that names
the problem. Limits are fields of :class:`Limits`. Errors say whose fault they
are: a client's (:class:`ClientFault`, 4xx, never forwarded) or the upstream's
(:class:`UpstreamFramingFault`, 502).

The modules, in reading order: ``limits`` and ``errors``; ``grammar`` (RFC 9112's
tokens and field lines); ``request`` (request heads); ``chunked`` (chunked bodies);
``response`` (the engine's response heads and the gateway's error answers);
``streams`` (the drivers). Import from this package; the layout may change.
"""

from __future__ import annotations

from moorage.gateway.http.chunked import ChunkedScanner, parse_chunk_size, parse_trailer_line
from moorage.gateway.http.errors import ClientFault, HttpError, UpstreamFramingFault, fault
from moorage.gateway.http.limits import Limits
from moorage.gateway.http.request import RequestHead, head_length, head_too_large, parse_request_head
from moorage.gateway.http.response import (
    ResponseHead,
    error_response,
    parse_response_head,
    scan_response_head,
)
from moorage.gateway.http.streams import iter_chunks, read_body, relay_chunked, relay_fixed, spool_body

__all__ = [
    "ChunkedScanner",
    "ClientFault",
    "HttpError",
    "Limits",
    "RequestHead",
    "ResponseHead",
    "UpstreamFramingFault",
    "error_response",
    "fault",
    "head_length",
    "head_too_large",
    "iter_chunks",
    "parse_chunk_size",
    "parse_request_head",
    "parse_response_head",
    "parse_trailer_line",
    "read_body",
    "relay_chunked",
    "relay_fixed",
    "scan_response_head",
    "spool_body",
]
