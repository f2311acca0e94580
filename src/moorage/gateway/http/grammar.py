"""RFC 9112's grammar pieces that request heads and chunked trailers share."""

from __future__ import annotations

import re
from typing import NoReturn

from moorage.gateway.http.errors import ClientFault

__all__ = ["FIELD", "TCHAR", "TOKEN", "refuse_field_line"]

TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
"""The characters of a token (RFC 9110 §5.6.2), as a regex character-class body."""
TOKEN = re.compile(f"[{TCHAR}]+")
"""A token: a method, a header name, a Transfer-Encoding."""
# field-line = field-name ":" OWS field-value OWS; a value has no control
# characters but HTAB (obs-text, 0x80-0xFF, is allowed, as RFC 9110 §5.5 says).
FIELD = re.compile(f"([{TCHAR}]+):([^\\x00-\\x08\\x0a-\\x1f\\x7f]*)")
"""A header or trailer line without its CRLF: groups are the name and the raw value."""


def refuse_field_line(line: str, who: str) -> NoReturn:
    """Name what is wrong with a header (or trailer) line that failed the grammar."""
    shown = repr(line[:60])
    if line[:1] in (" ", "\t"):
        raise ClientFault(400, f"{who}: obsolete header line folding is not accepted ({shown})")
    name, sep, _ = line.partition(":")
    if not sep:
        raise ClientFault(400, f"{who}: malformed header line {shown} (no colon)")
    if name != name.rstrip(" \t") and name.strip(" \t"):
        raise ClientFault(400, f"{who}: whitespace between header name and colon in {shown}")
    if not TOKEN.fullmatch(name):
        raise ClientFault(400, f"{who}: header name {name[:40]!r} is not a token")
    raise ClientFault(400, f"{who}: header {name[:40]!r} has a control character in its value")
