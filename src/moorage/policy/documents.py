"""Policy documents: YAML files in a folder, validated against a published JSON Schema.

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

Loading is all or nothing: :func:`load_folder` returns a complete :class:`PolicySet`
or raises :class:`PolicyError` naming the file, the line and the field. The caller
keeps its previous set on error. Parsing is pure except for reading the files.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "SCHEMA",
    "Document",
    "PolicyError",
    "PolicySet",
    "builtin_set",
    "load_folder",
    "parse_cpus",
    "parse_document",
    "parse_size",
]

API_VERSION = "moorage.dev/v1"
_NAME = "^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$"
_SIZE = "^[0-9]+(\\.[0-9]+)?\\s*([bkmgt]i?b?)?$"
_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}
_SIZE_VALUE = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": _SIZE}]}
_CPU_VALUE = {"type": "number", "exclusiveMinimum": 0}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://moorage.dev/schemas/policy-v1.json",
    "title": "Moorage policy document",
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": "Policy"},
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": _NAME},
                "version": {"type": ["string", "integer"]},
                "description": {"type": "string"},
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "mode": {"enum": ["enforce", "audit"]},
                "scope": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "teams": _STRINGS,
                        "users": _STRINGS,
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
                "packs": {"type": "array", "items": {"enum": ["baseline", "restricted"]}},
                "resources": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "require": {"type": "array", "items": {"enum": ["memory", "cpus", "pids"]}},
                        "max": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "memory": _SIZE_VALUE,
                                "cpus": _CPU_VALUE,
                                "pids": {"type": "integer", "minimum": 1},
                            },
                        },
                    },
                },
                "quotas": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "containers": {"type": "integer", "minimum": 0},
                        "cpus": _CPU_VALUE,
                        "memory": _SIZE_VALUE,
                        "replicas": {"type": "integer", "minimum": 0},
                    },
                },
                "images": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "registries": _STRINGS,
                        "forbidLatest": {"type": "boolean"},
                        "requireDigest": {"type": "boolean"},
                        "signatures": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["keys"],
                            "properties": {
                                "required": {"type": "boolean"},
                                "keys": {**_STRINGS, "minItems": 1},
                            },
                        },
                        "vulnerabilities": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "maxSeverity": {"enum": ["none", "low", "medium", "high", "critical"]},
                                "onlyFixed": {"type": "boolean"},
                                "ignore": _STRINGS,
                            },
                        },
                        "packages": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"forbidden": _STRINGS, "required": _STRINGS},
                        },
                        "sbom": {"enum": ["required", "optional"]},
                        "database": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"maxAge": {"type": ["string", "integer"]}},
                        },
                    },
                },
                "network": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "hostNetwork": {"type": "boolean"},
                        "create": _STRINGS,
                        "join": _STRINGS,
                        "publish": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "hostIPs": _STRINGS,
                                "ports": {
                                    "type": "array",
                                    "items": {"type": "string", "pattern": "^[0-9]+(-[0-9]+)?$"},
                                },
                            },
                        },
                    },
                },
                "placement": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "classes": {"type": "object", "additionalProperties": _STRINGS},
                        "teams": {"type": "object", "additionalProperties": {"type": "string"}},
                        "label": {"type": "string", "minLength": 1},
                    },
                },
                "custom": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["id", "expr", "message"],
                        "properties": {
                            "id": {"type": "string", "pattern": _NAME},
                            "expr": {"type": "string", "minLength": 1},
                            "message": {"type": "string"},
                            "fix": {"type": "string"},
                            "kinds": _STRINGS,
                        },
                    },
                },
                "rego": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["id", "file"],
                        "properties": {
                            "id": {"type": "string", "pattern": _NAME},
                            "file": {"type": "string", "minLength": 1},
                            "query": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
                "mutations": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "noNewPrivileges": {"type": "boolean"},
                        "pidsLimit": {"type": "integer", "minimum": 1},
                        "memory": _SIZE_VALUE,
                        "cpus": _CPU_VALUE,
                        "capDrop": _STRINGS,
                        "readOnlyRootfs": {"type": "boolean"},
                    },
                },
            },
        },
    },
}


class PolicyError(Exception):
    """A policy file or folder that can't be loaded: says which file, line and field."""


@dataclass(frozen=True)
class Document:
    """One validated policy document. ``spec`` keeps the YAML's own structure."""

    name: str
    version: str
    mode: str
    scope: dict[str, Any]
    spec: dict[str, Any]
    source: str = "(built in)"
    folder: Path | None = None

    def applies_to(self, user: str, teams: Iterable[str], labels: dict[str, str]) -> bool:
        scope = self.scope
        if not scope:
            return True
        if "teams" in scope and not set(scope["teams"]) & set(teams):
            return False
        if "users" in scope and user not in scope["users"]:
            return False
        wanted = scope.get("labels") or {}
        return all(labels.get(k) == v for k, v in wanted.items())


@dataclass(frozen=True)
class PolicySet:
    """The documents in force, and a version that changes whenever any of them does."""

    documents: tuple[Document, ...]
    version: str
    extra: dict[str, Any] = field(default_factory=dict)  # compiled rules, keyed by document


_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([bkmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value: Any) -> int:
    """``512m``, ``2g``, ``1.5GiB`` or a byte count, as Docker reads ``--memory``."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError(f"not a size: {value!r} (use e.g. 512m or 2g)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_cpus(value: Any) -> float:
    return float(value)


@cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(SCHEMA)


def _line_of(node: yaml.Node | None, path: list[Any]) -> int | None:
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


def _field(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


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
    docs: list[Document] = []
    for node, data in zip(nodes, datas, strict=True):
        if data is None:
            continue
        errors = list(_validator().iter_errors(data))
        if errors:
            err = min(errors, key=lambda e: (len(list(e.absolute_path)), str(e.message)))
            where: list[Any] = list(err.absolute_path)
            if err.validator == "additionalProperties" and isinstance(err.instance, dict):
                allowed = err.schema.get("properties", {})
                extra = next((k for k in err.instance if k not in allowed), None)
                if extra is not None:
                    where.append(extra)
            raise PolicyError(f"{source}:{_line_of(node, where)}: {_field(where)}: {_explain(err)}")
        spec = data["spec"]
        meta = data["metadata"]
        _check_values(spec, node, source)
        docs.append(
            Document(
                name=meta["name"],
                version=str(meta.get("version", "1")),
                mode=spec.get("mode", "enforce"),
                scope=spec.get("scope") or {},
                spec=spec,
                source=source,
                folder=folder,
            )
        )
    return docs


def _explain(err: Any) -> str:
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        return f"unknown field ({err.message}); allowed here: {', '.join(allowed)}"
    if err.validator == "required":
        return str(err.message)
    if err.validator == "enum":
        return f"{err.instance!r} is not one of {', '.join(map(str, err.validator_value))}"
    if err.validator == "const":
        return f"must be {err.validator_value!r}, found {err.instance!r}"
    return str(err.message)


def _check_values(spec: dict[str, Any], node: yaml.Node, source: str) -> None:
    """What the schema can't say: sizes parse, CEL compiles, Rego files exist."""
    sizes: list[tuple[list[Any], Any]] = [
        (["spec", "resources", "max", "memory"], (spec.get("resources") or {}).get("max", {}).get("memory")),
        (["spec", "quotas", "memory"], (spec.get("quotas") or {}).get("memory")),
        (["spec", "mutations", "memory"], (spec.get("mutations") or {}).get("memory")),
    ]
    for path, value in sizes:
        if value is not None:
            try:
                parse_size(value)
            except ValueError as exc:
                raise PolicyError(f"{source}:{_line_of(node, path)}: {_field(path)}: {exc}") from exc
    placement = spec.get("placement") or {}
    for team, cls in (placement.get("teams") or {}).items():
        if cls not in (placement.get("classes") or {}):
            path = ["spec", "placement", "teams", team]
            raise PolicyError(
                f"{source}:{_line_of(node, path)}: {_field(path)}: class {cls!r} is not "
                "defined under placement.classes"
            )
    from moorage.policy.custom import compile_cel

    seen: set[str] = set()
    for i, rule in enumerate(spec.get("custom") or []):
        at: list[Any] = ["spec", "custom", i, "expr"]
        try:
            compile_cel(rule["expr"])
        except ValueError as exc:
            raise PolicyError(f"{source}:{_line_of(node, at)}: {_field(at)}: {exc}") from exc
        if rule["id"] in seen:
            raise PolicyError(f"{source}:{_line_of(node, at[:3])}: custom id {rule['id']!r} repeats")
        seen.add(rule["id"])


def load_folder(folder: Path) -> PolicySet:
    """Every ``*.yaml`` / ``*.yml`` in ``folder``, or one file. All or nothing."""
    if folder.is_file():
        files = [folder]
        base = folder.parent
    elif folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        base = folder
    else:
        raise PolicyError(f"{folder}: no such policy file or folder")
    docs: list[Document] = []
    digest = hashlib.sha256()
    names: dict[str, str] = {}
    for path in files:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"{path}: cannot read: {exc}") from exc
        digest.update(path.name.encode() + b"\0" + text.encode() + b"\0")
        for doc in parse_document(text, str(path), base):
            if doc.name in names:
                raise PolicyError(f"{path}: policy name {doc.name!r} is also used in {names[doc.name]}")
            names[doc.name] = str(path)
            docs.append(doc)
            for rego in doc.spec.get("rego") or []:
                rego_path = base / rego["file"]
                try:
                    digest.update(rego_path.read_bytes())
                except OSError as exc:
                    raise PolicyError(f"{path}: rego {rego['id']}: cannot read {rego_path}: "
                                      f"{exc.strerror}") from exc  # fmt: skip
    if not docs:
        raise PolicyError(f"{folder}: no policy documents (*.yaml) found")
    keys = {doc.name: _trusted_keys(doc, base, digest) for doc in docs
            if ((doc.spec.get("images") or {}).get("signatures") or {}).get("keys")}  # fmt: skip
    pset = PolicySet(tuple(docs), digest.hexdigest()[:12])
    from moorage.policy.engine import compile_set

    pset = compile_set(pset)
    pset.extra["keys"] = keys
    return pset


def _trusted_keys(doc: Document, base: Path, digest: Any) -> list[tuple[str, bytes]]:
    """(key id, PEM) of each key a document trusts: a path (relative to the policy
    folder) or an inline PEM block. Read at load, so a bad key fails the load."""
    from moorage.images.interface import SignatureError
    from moorage.images.sign import key_id, parse_public_keys

    out = []
    for entry in doc.spec["images"]["signatures"]["keys"]:
        if entry.lstrip().startswith("-----BEGIN"):
            pem = entry.encode()
        else:
            path = base / entry
            try:
                pem = path.read_bytes()
            except OSError as exc:
                raise PolicyError(f"{doc.source}: spec.images.signatures.keys: cannot read {path}: "
                                  f"{exc.strerror}") from exc  # fmt: skip
        try:
            parsed = parse_public_keys(pem, entry if not entry.startswith("-----") else "an inline key")
        except SignatureError as exc:
            raise PolicyError(f"{doc.source}: spec.images.signatures.keys: {exc}") from exc
        digest.update(pem)
        out += [(key_id(k), pem) for k in parsed]
    return out


def builtin_set(enforce: str | None = "baseline", audit: str | None = "restricted") -> PolicySet:
    """The default for ``moorage up``: one pack enforced and one in audit."""
    docs = []
    if enforce:
        docs.append(Document(f"builtin-{enforce}", "1", "enforce", {}, {"packs": [enforce]}))
    if audit:
        docs.append(Document(f"builtin-{audit}-audit", "1", "audit", {}, {"packs": [audit]}))
    version = hashlib.sha256(json.dumps([enforce, audit]).encode()).hexdigest()[:12]
    from moorage.policy.engine import compile_set

    return compile_set(PolicySet(tuple(docs), f"builtin-{version}"))
