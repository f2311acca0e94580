"""The framing core's limits: how much a head, a body or a chunk line may hold, and how
long a head may take."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT", "Limits"]


@dataclass(frozen=True)
class Limits:
    """Gateway limits. Each is a setting; these defaults are documented in docs/gateway.md."""

    max_head_bytes: int = 64 * 1024  # request line + headers
    max_headers: int = 128  # header fields in a head; trailer fields in a chunked body
    max_body_bytes: int = 16 * 1024 * 1024  # bodies the gateway must parse (create specs)
    max_chunk_line: int = 4096  # a chunk-size or trailer line (Go's net/http has the same)
    max_archive_bytes: int = 64 << 30  # an image archive spooled to disk before it is loaded
    head_timeout: float = 30.0  # from a request's first byte to its blank line; TLS handshake
    idle_timeout: float = 600.0  # keep-alive connection with no request


DEFAULT = Limits()
"""The limits of a caller that passes none."""
