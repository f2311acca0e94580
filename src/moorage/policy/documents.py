"""Policy documents: YAML text validated once, into typed models.

A document::

    apiVersion: moorage.dev/v1
    kind: Policy
    metadata: {name: payments-prod, version: "3"}
    spec:
      mode: enforce            # or audit: violations become warnings
      scope: {teams: [payments]}
      packs: [baseline]
      resources: {require: [memory, pids], max: {memory: 2g}}
      ...

:func:`parse_document` turns one file's text into :class:`Document` values or raises
:class:`PolicyError` naming the file, the line and the field. The models are in
:mod:`moorage.policy.schema`, the checks a schema can't express in
:mod:`moorage.policy.checks`; reading folders is :mod:`moorage.policy.loader`'s. Pure.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import yaml

from moorage.policy.checks import SpecError, check_spec
from moorage.policy.custom import CelRule, RegoRule
from moorage.policy.rules.runtime_allow import DEFAULT_ALLOW, RuntimeAllow
from moorage.policy.schema import PolicyDocument, PolicySpec, Scope

__all__ = ["Compiled", "Document", "PolicyError", "parse_document"]

FieldPath = list[str | int]


class PolicyError(Exception):
    """A policy file or folder that can't be loaded: says which file, line and field."""


@dataclass(frozen=True)
class Compiled:
    """A document's compiled state, typed: its CEL rules, its Rego policies, the
    image-signing keys it trusts (id, PEM), what it adds to the runtime allow-lists, and
    the plugin privileges and IPAM pools the operation rules allow.
    ``ready`` is set by :func:`moorage.policy.loader.compile_document` only, so a
    document that was never compiled can't pass for one without rules."""

    cel: tuple[CelRule, ...] = ()
    rego: tuple[RegoRule, ...] = ()
    trusted_keys: tuple[tuple[str, bytes], ...] = ()
    runtime_allow: RuntimeAllow = DEFAULT_ALLOW
    plugin_privileges: frozenset[str] = frozenset()  # spec.plugins.privileges
    subnets: tuple[str, ...] = ()  # spec.network.subnets: the pools explicit IPAM must lie in
    ready: bool = False


@dataclass(frozen=True)
class Document:
    """One validated policy document: its typed ``spec``, and in ``compiled`` what
    was built from it at load."""

    name: str
    version: str
    mode: str
    scope: Scope
    spec: PolicySpec
    source: str = "(built in)"
    folder: Path | None = None
    compiled: Compiled = field(default_factory=Compiled, compare=False, repr=False)

    def summary(self) -> dict[str, object]:
        """The document as ``GET /moorage/v1/policy`` lists it (JSON-ready: the scope as
        the mapping it was written as)."""
        return {"name": self.name, "version": self.version, "mode": self.mode,
                "scope": msgspec.to_builtins(self.scope), "source": self.source}  # fmt: skip

    def applies_to(self, user: str, teams: Iterable[str], labels: dict[str, str]) -> bool:
        """Whether the document's scope takes in this user, these teams and labels."""
        scope = self.scope  # an empty scope takes in everyone: each test below passes
        if scope.teams is not None and not set(scope.teams) & set(teams):
            return False
        if scope.users is not None and user not in scope.users:
            return False
        wanted = scope.labels
        return not wanted or all(labels.get(k) == v for k, v in wanted.items())


def _line_of(node: yaml.Node | None, path: Iterable[str | int]) -> int | None:
    """The 1-based line of the value at ``path`` in a composed YAML node tree."""
    best = node.start_mark.line + 1 if node is not None else None
    for key in path:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(key):
                    node, best = v, k.start_mark.line + 1
                    break
            else:
                return best
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            best = node.start_mark.line + 1
        else:
            return best
    return best


def _field(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _value_at(data: object, path: Iterable[str | int]) -> object:
    node = data
    for key in path:
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return None
    return node


def _first_null(data: object, path: FieldPath) -> FieldPath | None:
    """The path of the first ``null`` in ``data``: no field of a document takes one, and
    the models read None as "absent"."""
    if data is None:
        return path
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        found = _first_null(value, [*path, key])
        if found is not None:
            return found
    return None


def _model_at(path: Iterable[str | int]) -> object:
    """The annotated type of the field at ``path`` (without its ``None`` choice)."""
    tp: object = PolicyDocument
    for key in path:
        tp = _strip(tp)
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            names = {f.encode_name: f.type for f in msgspec.structs.fields(tp)}
            tp = names.get(str(key))
        elif typing.get_origin(tp) in (list, dict):
            tp = typing.get_args(tp)[-1]
        else:
            return None
    return _strip(tp)


def _strip(tp: object) -> object:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        return _strip(rest[0]) if len(rest) == 1 else tp
    return tp


_AT = re.compile(r"^(?P<msg>.*?)(?: - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`)?$", re.DOTALL)
_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


def _convert(data: object) -> tuple[PolicyDocument | None, str, FieldPath]:
    """The document as a model, or (None, msgspec's message, the field path)."""
    try:
        return msgspec.convert(data, PolicyDocument), "", []
    except msgspec.ValidationError as exc:
        m = _AT.match(str(exc))
        assert m is not None  # the pattern matches any text
        path: FieldPath = [
            int(i) if i.isdigit() else i if i else n for n, i in _TOKEN.findall(m["path"] or "")
        ]
        if m["key"]:  # a mapping key of the wrong type: YAML reads `1:` as a number
            return None, "every key here must be a string (quote it)", path
        return None, m["msg"], path


def _resolve(data: object, message: str, path: FieldPath) -> FieldPath:
    """``path`` with each ``[...]`` (msgspec's stand-in for a mapping key) replaced by the
    key whose value fails the same way."""
    for i, part in enumerate(path):
        if part != "...":
            continue
        holder = _value_at(data, path[:i])
        for key in holder if isinstance(holder, dict) else ():
            trial = _narrowed(data, path[:i], key)
            if _convert(trial)[1] == message:
                path = [*path[:i], key, *path[i + 1 :]]
                break
    return path


def _narrowed(data: object, path: FieldPath, key: object) -> object:
    """``data`` with the mapping at ``path`` cut down to its entry ``key``."""
    if not path:
        return {key: data[key]} if isinstance(data, dict) else data
    if isinstance(data, dict):
        return {**data, path[0]: _narrowed(data[path[0]], path[1:], key)}
    if isinstance(data, list) and isinstance(path[0], int):
        return [*data[: path[0]], _narrowed(data[path[0]], path[1:], key), *data[path[0] + 1 :]]
    return data


def _explain(data: object, message: str, path: FieldPath) -> tuple[FieldPath, str]:
    """Where the document is wrong, and msgspec's message worded as a person would."""
    unknown = re.fullmatch(r"Object contains unknown field `(.*)`", message)
    if unknown:
        model = _model_at(path)
        fields = msgspec.structs.fields(model) if isinstance(model, type) else ()
        allowed = sorted(f.encode_name for f in fields)
        name = unknown[1]
        return [*path, name], (f"unknown field (Additional properties are not allowed ({name!r} was "
                               f"unexpected)); allowed here: {', '.join(allowed)}")  # fmt: skip
    missing = re.fullmatch(r"Object missing required field `(.*)`", message)
    if missing:
        return path, f"{missing[1]!r} is a required property"
    value = _value_at(data, path)
    if message.startswith("Invalid enum value"):
        choices = typing.get_args(_model_at(path))
        if len(choices) == 1:
            return path, f"must be {choices[0]!r}, found {value!r}"
        return path, f"{value!r} is not one of {', '.join(map(str, choices))}"
    return path, _worded(message, value)


_JSON_NAMES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
               "object": "object", "array": "array"}  # fmt: skip


def _worded(message: str, value: object) -> str:
    """msgspec's message in JSON Schema's words, which the published schema uses."""
    m = re.fullmatch(r"Expected `\w+` matching regex '(.*)'", message)
    if m and "bkmgtBKMGT" in m[1]:
        return f"not a size: {value!r} (use e.g. 512m or 2g)"
    if m:
        return f"{value!r} does not match {m[1]!r}"
    m = re.fullmatch(r"Expected `\w+` (>=|>) (\S+)", message)
    if m:
        return f"{value!r} is less than {'the' if m[1] == '>=' else 'or equal to the'} minimum of {m[2]}"
    if re.fullmatch(r"Expected `\w+` of length >= 1", message):
        return f"{value!r} should be non-empty"
    m = re.fullmatch(r"Expected `([^`]*)`, got `\w+`", message)
    if m:
        names = [_JSON_NAMES.get(t, t) for t in m[1].split(" | ") if t != "null"]
        return f"{value!r} is not of type {', '.join(map(repr, names))}"
    return message


def _document(data: object, node: yaml.Node, source: str, folder: Path | None) -> Document:
    null = _first_null(data, [])
    if null is not None:
        raise PolicyError(f"{source}:{_line_of(node, null)}: {_field(null)}: null is not allowed here "
                          "(give a value, or leave the key out)")  # fmt: skip
    model, message, path = _convert(data)
    if model is None:
        where, why = _explain(data, message, _resolve(data, message, path))
        raise PolicyError(f"{source}:{_line_of(node, where)}: {_field(where)}: {why}")
    spec = model.spec
    try:
        check_spec(spec)
    except SpecError as exc:
        line = _line_of(node, exc.path)
        raise PolicyError(
            f"{source}:{line}: {exc}" if exc.plain else f"{source}:{line}: {_field(exc.path)}: {exc}"
        ) from exc
    meta = model.metadata
    return Document(
        name=meta.name,
        version=str(meta.version if meta.version is not None else "1"),
        mode=spec.mode or "enforce",
        scope=spec.scope or Scope(),
        spec=spec,
        source=source,
        folder=folder,
    )


def parse_document(text: str, source: str, folder: Path | None = None) -> list[Document]:
    """Parse and validate the documents in one YAML file (``---`` separates several)."""
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        datas = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark else ""
        raise PolicyError(f"{source}{line}: not valid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from exc
    return [_document(d, n, source, folder) for n, d in zip(nodes, datas, strict=True) if d is not None]
