"""The canonical request: the path, query and body exactly as the engine reads them. Pure.

One reading: policy judges the object the engine will run, and the engine receives
exactly that object. So the request target is decoded the way the engine's router
decodes it (Go's ``net/url`` percent-decoding, its version prefix, its form
reading where the first value of a parameter wins), bodies the way Go's
``encoding/json`` reads them into the engine's types (:mod:`.gojson`,
:mod:`.models`), and the gateway forwards :attr:`Target.encoded` and
:func:`encode_body` of what was judged, never the client's bytes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from moorage.engine_api import gojson
from moorage.engine_api.endpoints import Operation, classify
from moorage.engine_api.models import CREATE_HOST_FIELDS, SCHEMA, SCHEMA_KEEP_UNKNOWN, body_type

__all__ = [
    "MAX_KNOWN_VERSION",
    "MIN_VERSION",
    "Body",
    "RequestError",
    "Target",
    "encode_body",
    "merge_create",
    "parse_version",
    "read_body",
    "read_target",
]

MIN_VERSION = (1, 24)
"""The oldest API version the engine accepts in a path prefix."""
MAX_KNOWN_VERSION = (1, 51)
"""The newest API version whose specification the models are generated from."""
_VERSION = re.compile(r"^/v([0-9.]+)(/.*)$")
_HEX = frozenset("0123456789abcdefABCDEF")
MULTI_VALUED = frozenset({"t", "names", "changes", "extrahosts", "securityopt"})
"""Query parameters the engine reads as lists (``r.Form["t"]``); every other one is
read with ``r.FormValue``, which takes the first value."""


class RequestError(Exception):
    """A request the engine would read differently, or not at all: the client's fault."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Target:
    """A request target as the engine reads it."""

    op: Operation
    version: tuple[int, int] | None  # from the path's /vX.Y prefix
    route: str  # the percent-decoded path without the version prefix
    query: dict[str, list[str]] = field(default_factory=dict)  # what the engine reads
    # The canonical target to forward: one spelling of the path, one value per
    # single-valued parameter.
    encoded: str = ""

    def first(self, name: str) -> str | None:
        """The value of query parameter ``name`` the engine reads (its first), or None."""
        values = self.query.get(name)
        return values[0] if values else None


def encode_target(version: tuple[int, int] | None, route: str, query: dict[str, list[str]]) -> str:
    """The canonical target for a version prefix, a decoded route and a query: one
    spelling of each, so the engine reads what was checked."""
    prefix = f"/v{version[0]}.{version[1]}" if version else ""
    path = prefix + quote(route, safe="/:@")
    if not query:
        return path
    parts = [f"{quote(k, safe='')}={quote(v, safe='')}" for k, values in query.items() for v in values]
    return path + "?" + "&".join(parts)


def _unescape(text: str, plus: bool, what: str) -> str:
    """Go's ``url.PathUnescape`` / ``QueryUnescape``: every % must start a valid escape."""
    if "%" not in text and not (plus and "+" in text):
        return text
    out = bytearray()
    i = 0
    raw = text.encode("latin-1")
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # %
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise RequestError(400, f"invalid URL escape {text[i : i + 3]!r} in the {what}")
            out.append(int(pair, 16))
            i += 3
            continue
        out.append(0x20 if plus and c == 0x2B else c)
        i += 1
    return out.decode("utf-8", errors="replace")


def parse_version(text: str) -> tuple[int, int]:
    """A ``MAJOR.MINOR`` API version; a RequestError (400) for anything else."""
    if not re.fullmatch(r"[0-9]{1,4}\.[0-9]{1,4}", text):
        raise RequestError(400, f"API version {text!r} is not of the form MAJOR.MINOR (for example 1.41)")
    major, minor = text.split(".")
    return int(major), int(minor)


def _read_query(raw: str) -> dict[str, list[str]]:
    """Go's ``url.ParseQuery``, refusing what it refuses (a ';' separator, a bad escape)."""
    out: dict[str, list[str]] = {}
    for part in raw.split("&"):
        if not part:
            continue
        if ";" in part:
            raise RequestError(400, "invalid semicolon separator in the query")
        key, _, value = part.partition("=")
        key = _unescape(key, True, "query")
        out.setdefault(key, []).append(_unescape(value, True, "query"))
    return out


def read_target(method: str, target: str, max_version: tuple[int, int] = MAX_KNOWN_VERSION) -> Target:
    """Decode a request target as the engine's router does (see :func:`_read_target`).
    Targets repeat (``/_ping``, list calls): readings are cached, and each caller gets
    its own copy of the query."""
    t = _cached_target(method, target, max_version)
    return Target(t.op, t.version, t.route, {k: list(v) for k, v in t.query.items()}, t.encoded)


@functools.lru_cache(maxsize=4096)
def _cached_target(method: str, target: str, max_version: tuple[int, int]) -> Target:
    return _read_target(method, target, max_version)


def _read_target(method: str, target: str, max_version: tuple[int, int]) -> Target:
    """Decode a request target as the engine's router does and name its operation.

    Refuses (400) what the engine would read differently or redirect: bytes outside
    visible ASCII, a fragment, bad escapes, paths that aren't clean (``//``, ``.``
    and ``..`` segments, which the engine answers with a redirect), and API versions
    outside 1.24 to the engine's maximum.
    """
    visible = target.isascii() and target.isprintable() and " " not in target
    if not (target[:1] == "/" and visible) or "#" in target:
        raise RequestError(400, f"malformed request target {target[:80]!r}")
    raw_path, _, raw_query = target.partition("?")
    path = _unescape(raw_path, False, "path")
    if path is not raw_path and not path.isprintable():
        raise RequestError(400, "the path holds a control character")
    if "//" in path or "/./" in path or "/../" in path or path.endswith(("/.", "/..")):
        raise RequestError(
            400, f"the path {path[:80]!r} is not in canonical form (empty, '.' or '..' segments)"
        )
    version = None
    route = path
    m = _VERSION.match(path) if path.startswith("/v") else None
    if m:
        version = parse_version(m.group(1))
        route = m.group(2)
        if version < MIN_VERSION:
            raise RequestError(
                400,
                f"client version {m.group(1)} is too old. Minimum supported API version is "
                f"{MIN_VERSION[0]}.{MIN_VERSION[1]}, please upgrade your client to a newer version",
            )
        if version > max_version:
            raise RequestError(
                400,
                f"client version {m.group(1)} is too new. Maximum supported API version is "
                f"{max_version[0]}.{max_version[1]}",
            )
    query = _canonical_query(_read_query(raw_query)) if raw_query else {}
    op = classify(method, route, query)
    if version is not None:
        op = Operation(op.kind, op.action_class, op.object_type, op.object_ref,
                       f"{version[0]}.{version[1]}", op.route, op.hijack)  # fmt: skip
    return Target(op, version, route, query, encode_target(version, route, query))


def _canonical_query(query: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: (v if k in MULTI_VALUED else v[:1]) for k, v in query.items()}


# ---------------------------------------------------------------------- bodies
@dataclass(frozen=True)
class Body:
    """A JSON body as the engine reads it, and the fields it holds that the engine's
    types (as Moorage knows them) don't."""

    value: Any
    unknown: tuple[str, ...] = ()


def read_body(kind: str, raw: bytes, keep_unknown: bool = False) -> Body:
    """Decode ``kind``'s body. An empty body reads as no body (None).

    With ``keep_unknown``, fields Moorage doesn't know are kept as sent (an admin
    setting); otherwise they are dropped from the value and listed in ``unknown``.
    """
    typ = body_type(kind)
    if typ is None:
        raise RequestError(400, f"{kind} takes no JSON body")
    if not raw.strip():
        return Body(None)
    try:
        node = gojson.parse(raw)
        decoded = gojson.decode(node, typ, SCHEMA_KEEP_UNKNOWN if keep_unknown else SCHEMA)
    except gojson.DecodeError as exc:
        where = f" at {exc.path}" if exc.path else ""
        raise RequestError(400, f"the {kind} body can't be read{where}: {exc.message}") from exc
    value = decoded.value
    if kind == "container.create" and isinstance(value, dict):
        value = merge_create(value)
    return Body(value, tuple(decoded.unknown))


_COPIED = ("Memory", "MemorySwap", "CpuShares", "CpusetCpus", "VolumeDriver")


def merge_create(wrapper: dict[str, Any]) -> dict[str, Any]:
    """The engine's reading of a create body: host config fields at the top level
    (the deprecated wrapper of API < 1.44 engines) become the host config when there
    is no ``HostConfig``; with one, only five of them fill its empty fields."""
    top = {k: wrapper.pop(k) for k in list(wrapper) if k in CREATE_HOST_FIELDS and k != "HostConfig"}
    cpuset = wrapper.pop("Cpuset", "")
    inner = wrapper.get("HostConfig")
    if top:
        if not isinstance(inner, dict):
            inner = {k: v for k, v in top.items() if v is not None}
        else:
            for name in _COPIED:
                if top.get(name) and not inner.get(name):
                    inner[name] = top[name]
    if isinstance(inner, dict):
        if cpuset and not inner.get("CpusetCpus"):
            inner["CpusetCpus"] = cpuset
        wrapper["HostConfig"] = inner
    return wrapper


def encode_body(value: Any) -> bytes:
    """The bytes the engine receives for a decoded body."""
    return b"" if value is None else gojson.encode(value)
