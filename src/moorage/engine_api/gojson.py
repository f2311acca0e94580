"""JSON read the way Go's ``encoding/json`` reads it into typed structs. Pure.

The engine decodes request bodies with Go's ``encoding/json`` into its own types,
and that reading differs from a Python dict lookup in ways an attacker can use:

- a key matches a struct field exactly, or else under Unicode simple case folding
  (U+017F, the long s, matches ``s``, the Kelvin sign U+212A matches ``k``);
- keys are applied in order: a later scalar wins, a repeated object merges into the
  same struct, a map element is replaced per key, and an array is decoded *into* the
  existing slice (elements are reused, not zeroed, which merges repeated arrays of
  structs element by element);
- ``null`` sets pointers, slices, maps and interfaces to nil and leaves every other
  kind untouched;
- numbers must fit the field's Go type: no fraction or exponent for integers, no
  negative unsigned values, no ``NaN``; strings are UTF-8 with invalid sequences
  and lone surrogates replaced by U+FFFD;
- fields the type doesn't have are ignored (Moorage records them, to refuse them).

:func:`parse` keeps every key and number literal of the document;
:func:`decode` applies one type to it and returns plain Python data with the
canonical field names, which :func:`encode` writes back so that Go reads exactly
that data again.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DecodeError", "Decoded", "GoNumber", "Pairs", "Struct", "decode", "encode", "fold", "parse"]

Type = tuple[Any, ...]
"""A field's type: ('s',) ('b',) ('i',) ('u',) ('f',) ('any',) ('bytes',) ('strs',) ('set',)
('list', T) ('arr', n, T) ('map', T) ('obj', MODEL)."""


class DecodeError(Exception):
    """The body can't be read as the engine would read it: the client's fault (400)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class Pairs(list[tuple[str, Any]]):
    """A JSON object with its keys in order, duplicates kept."""


class Struct(dict[str, Any]):
    """A decoded struct: its keys are exactly the engine's field names, so a reader
    may look fields up by name without folding case (policy does, on its hot path)."""


@dataclass(frozen=True)
class GoNumber:
    """A JSON number literal, kept as written until a field's Go type reads it."""

    text: str


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    """Lone surrogates (``\\ud800``) become U+FFFD, as Go's decoder makes them."""
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


def parse(raw: bytes) -> Any:
    """Parse one JSON document, keeping duplicate keys in order and numbers as text.

    Raises :class:`DecodeError` for what Go's decoder refuses: invalid JSON,
    ``NaN``/``Infinity``, a byte-order mark, content after the value.
    """
    try:
        text = raw.decode("utf-8", errors="replace")
    except UnicodeDecodeError as exc:  # pragma: no cover - 'replace' never raises
        raise DecodeError("", f"the body is not UTF-8: {exc}") from exc
    try:
        return json.loads(
            text,
            object_pairs_hook=lambda items: Pairs((_clean(k), v) for k, v in items),
            parse_int=GoNumber,
            parse_float=GoNumber,
            parse_constant=_reject_constant,
        )
    except RecursionError as exc:
        raise DecodeError("", "the body is nested too deeply") from exc
    except ValueError as exc:
        raise DecodeError("", f"the body is not valid JSON: {exc}") from exc


# ------------------------------------------------------------------ key folding
_SPECIAL = {"\u017f": "s", "\u212a": "k"}


def fold(name: str) -> str:
    """Go's simple case folding, as far as it can make a key equal an ASCII field name."""
    if name.isascii():
        return name.lower()
    return "".join(_SPECIAL.get(c, c.lower() if c.isascii() else c) for c in name)


_ZERO = object()  # a Go zero value not yet written


@dataclass
class Decoded:
    """The outcome of decoding: the data, and the fields the type doesn't have."""

    value: Any
    unknown: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Schema:
    """The models a decode needs: fields per model, which struct fields are values (not
    pointers, so ``null`` leaves them alone), and which scalars are pointers."""

    models: Mapping[str, Mapping[str, Type]]
    value_structs: frozenset[tuple[str, str]] = frozenset()
    nullable_scalars: frozenset[tuple[str, str]] = frozenset()
    keep_unknown: bool = False
    _index: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict, compare=False)
    _table: dict[str, dict[str, tuple[str, Type, bool]]] = field(default_factory=dict, compare=False)

    def fields(self, model: str) -> dict[str, tuple[str, Type, bool]]:
        """Field name -> (name, type, whether null clears it), for exact lookups."""
        table = self._table.get(model)
        if table is None:
            table = {}
            for name, typ in self.models[model].items():
                nullable = (
                    (model, name) not in self.value_structs
                    if typ[0] == "obj"
                    else (model, name) in self.nullable_scalars
                )
                table[name] = (name, typ, nullable)
            self._table[model] = table
        return table

    def lookup(self, model: str, key: str) -> str | None:
        """The field name ``key`` selects in ``model``: exact, else folded."""
        fields = self.models[model]
        if key in fields:
            return key
        index = self._index.get(model)
        if index is None:
            index = {}
            for name in fields:
                index.setdefault(fold(name), (name, name))
            self._index[model] = index
        hit = index.get(fold(key))
        return hit[0] if hit else None


_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64 = (0, (1 << 64) - 1)


def _go_int(value: Any, path: str, bounds: tuple[int, int], what: str) -> int:
    if not isinstance(value, GoNumber):
        raise DecodeError(path, f"expected {what}, got {_json_kind(value)}")
    text = value.text
    if any(c in text for c in ".eE"):
        raise DecodeError(path, f"expected {what}, got the number {text}")
    if len(text) > 21:  # longer than any 64-bit integer (and than Python converts by default)
        raise DecodeError(path, f"the number {text[:24]}... does not fit {what}")
    n = int(text)
    if not bounds[0] <= n <= bounds[1]:
        raise DecodeError(path, f"the number {text} does not fit {what}")
    return n


def _go_float(value: Any, path: str) -> float | int:
    if not isinstance(value, GoNumber):
        raise DecodeError(path, f"expected a number, got {_json_kind(value)}")
    if len(value.text) > 400:
        raise DecodeError(path, f"the number {value.text[:24]}... is too long to be a 64-bit float")
    f = float(value.text)
    if math.isinf(f):
        raise DecodeError(path, f"the number {value.text} does not fit a 64-bit float")
    if not any(c in value.text for c in ".eE"):
        return int(value.text)
    return f


def _json_kind(value: Any) -> str:
    if isinstance(value, Pairs):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, GoNumber):
        return f"the number {value.text}"
    return "null" if value is None else type(value).__name__


class _Decoder:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.unknown: list[str] = []
        # the backing arrays of decoded slices past their length, by the slice's id
        # (every slice the decoder reads into again is one it made, so ids are its own)
        self.spare: dict[int, list[Any]] = {}

    def value(self, node: Any, typ: Type, existing: Any, path: str, nullable: bool = True) -> Any:
        """Decode ``node`` as ``typ`` into ``existing`` (Go's zero is ``_ZERO``).
        Returns the new value; ``_ZERO`` when the field stays unset."""
        tag = typ[0]
        if tag == "ignore":  # a field old clients send that no engine reads any more
            return _ZERO
        if node is None:
            # null: nil for pointers, slices, maps, interfaces; no-op for the rest
            if tag in ("list", "map", "set", "any", "bytes", "strs") or (nullable and tag != "arr"):
                return None
            return existing
        if tag == "obj":
            if not isinstance(node, Pairs):
                raise DecodeError(path, f"expected an object, got {_json_kind(node)}")
            return self.struct(node, typ[1], existing if isinstance(existing, dict) else None, path)
        if tag == "map":
            if not isinstance(node, Pairs):
                raise DecodeError(path, f"expected an object, got {_json_kind(node)}")
            out: dict[str, Any] = existing if isinstance(existing, dict) else {}
            for key, sub in node:
                # a map element starts from its zero value each time: a repeated key replaces
                decoded = self.value(sub, typ[1], _ZERO, f"{path}.{key}")
                out[key] = _zero_of(typ[1]) if decoded is _ZERO else decoded
            return out
        if tag == "set":  # map[string]struct{}
            if not isinstance(node, Pairs):
                raise DecodeError(path, f"expected an object, got {_json_kind(node)}")
            out = existing if isinstance(existing, dict) else {}
            for key, sub in node:
                if sub is not None and not isinstance(sub, Pairs):
                    raise DecodeError(f"{path}.{key}", f"expected an object, got {_json_kind(sub)}")
                out[key] = {}
            return out
        if tag == "list":
            return self.slice(node, typ[1], existing, path)
        if tag == "arr":
            if not isinstance(node, list):
                raise DecodeError(path, f"expected a list, got {_json_kind(node)}")
            size = typ[1]
            base = list(existing) if isinstance(existing, list) else [_ZERO] * size
            for i, sub in enumerate(node):
                if sub is None:
                    raise DecodeError(f"{path}[{i}]", "null is not accepted as a list element")
                if i < size:
                    base[i] = self.value(sub, typ[2], base[i], f"{path}[{i}]")
            # Go zeroes the elements past the input's length
            for i in range(len(node), size):
                base[i] = _ZERO
            return [_zero_of(typ[2]) if v is _ZERO else v for v in base]
        if tag == "strs":  # string or list of strings (the engine's StrSlice)
            if isinstance(node, str):
                one = [_clean(node)]
                self.spare[id(one)] = []
                return one
            return self.slice(node, ("s",), existing, path)
        if tag == "s":
            if not isinstance(node, str):
                raise DecodeError(path, f"expected a string, got {_json_kind(node)}")
            return _clean(node)
        if tag == "b":
            if not isinstance(node, bool):
                raise DecodeError(path, f"expected true or false, got {_json_kind(node)}")
            return node
        if tag == "i":
            return _go_int(node, path, _INT64, "a 64-bit integer")
        if tag == "u":
            return _go_int(node, path, _UINT64, "an unsigned integer")
        if tag == "f":
            return _go_float(node, path)
        if tag == "bytes":
            if not isinstance(node, str):
                raise DecodeError(path, f"expected base64 text, got {_json_kind(node)}")
            try:
                data = base64.b64decode(node.replace("\r", "").replace("\n", ""), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise DecodeError(path, f"is not valid base64: {exc}") from exc
            return base64.b64encode(data).decode("ascii")
        if tag == "any":
            return _plain(node)
        raise DecodeError(path, f"unsupported type {typ!r}")  # pragma: no cover - a schema bug

    def slice(self, node: Any, elem: Type, existing: Any, path: str) -> list[Any]:
        """Decode an array into a slice the way Go does: into the existing slice's
        backing array, whose elements past its length survive a shorter array and
        come back (not zeroed) when a later array is longer again."""
        if not isinstance(node, list):
            raise DecodeError(path, f"expected a list, got {_json_kind(node)}")
        n = len(node)
        if n == 0:
            return []  # Go makes a new empty slice
        if isinstance(existing, list):
            items = existing + self.spare.get(id(existing), [])  # the backing array
            length = len(existing)
        else:
            items, length = [], 0
        for at, sub in enumerate(node):
            if at >= len(items):  # grow as Go's decoder does: cap + cap/2, at least 4
                cap = len(items)
                items = items[:length] + [_ZERO] * (max(cap + cap // 2, 4) - length)
            if at >= length:
                length = at + 1
            if sub is None:
                # Go leaves the element as it was; no client sends this, so refuse it
                raise DecodeError(f"{path}[{at}]", "null is not accepted as a list element")
            items[at] = self.value(sub, elem, items[at], f"{path}[{at}]")
        out = items[:n]
        self.spare[id(out)] = items[n:]
        return out

    def struct(self, node: Pairs, model: str, existing: dict[str, Any] | None, path: str) -> dict[str, Any]:
        out = existing if existing is not None else Struct()
        fields = self.schema.fields(model)
        for key, sub in node:
            hit = fields.get(key)
            if hit is None:
                name = self.schema.lookup(model, key)
                if name is None and sub is None:
                    continue  # null sets nothing in any engine's types: nothing to judge or send
                if name is None:
                    where = f"{path}.{key}" if path else key
                    self.unknown.append(where)
                    if self.schema.keep_unknown:
                        out[key] = _plain(sub)
                    continue
                hit = fields[name]
            name, typ, nullable = hit
            decoded = self.value(sub, typ, out.get(name, _ZERO), f"{path}.{name}" if path else name, nullable)
            if decoded is _ZERO:
                out.pop(name, None)
            else:
                out[name] = decoded
        return out


def _zero_of(typ: Type) -> Any:
    return {"s": "", "b": False, "i": 0, "u": 0, "f": 0}.get(typ[0])


def _plain(node: Any) -> Any:
    """An untyped value as Go's ``interface{}`` holds it: objects keep the last of
    repeated keys."""
    if isinstance(node, Pairs):
        return {k: _plain(v) for k, v in node}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, GoNumber):
        # Go's interface{} holds every number as a float64
        if len(node.text) > 400:
            raise DecodeError("", f"the number {node.text[:24]}... is too long to be a 64-bit float")
        f = float(node.text)
        if math.isinf(f):
            raise DecodeError("", f"the number {node.text[:24]} does not fit a 64-bit float")
        return int(node.text) if not any(c in node.text for c in ".eE") else f
    return _clean(node) if isinstance(node, str) else node


def decode(node: Any, typ: Type, schema: Schema) -> Decoded:
    """Read a parsed document (:func:`parse`) as ``typ``, the engine's way."""
    d = _Decoder(schema)
    value = d.value(node, typ, _ZERO, "")
    return Decoded(None if value is _ZERO else value, d.unknown)


def encode(value: Any) -> bytes:
    """The canonical encoding: one key per field, the canonical names, no spaces."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def walk(value: Any, visit: Callable[[str, Any], None], path: str = "") -> None:
    """Call ``visit(path, value)`` for every node (for tests and summaries)."""
    visit(path, value)
    if isinstance(value, dict):
        for k, v in value.items():
            walk(v, visit, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            walk(v, visit, f"{path}[{i}]")
