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
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from moorage.policy.custom import CelRule, RegoRule, compile_cel
from moorage.policy.keys import key_ids
from moorage.policy.operations import parse_cidr, parse_ip
from moorage.policy.runtime import DEFAULT_ALLOW, RuntimeAllow

__all__ = [
    "PLUGIN_PRIVILEGES",
    "SCHEMA",
    "Compiled",
    "Document",
    "PolicyError",
    "PolicySet",
    "builtin_set",
    "compile_document",
    "load_folder",
    "parse_cpus",
    "parse_digest",
    "parse_document",
    "parse_duration",
    "parse_size",
]

API_VERSION = "moorage.dev/v1"
_NAME = "^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$"
_SIZE = "^[0-9]+(\\.[0-9]+)?\\s*([bkmgtBKMGT][iI]?[bB]?)?$"
_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}
_SIZE_VALUE = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": _SIZE}]}
_CPU_VALUE = {"type": "number", "exclusiveMinimum": 0}

# spec.runtime: what a document adds to the packs' runtime allow-lists (RuntimeAllow)
_RUNTIME_KEYS = ("seccompProfiles", "appArmorProfiles", "selinuxTypes", "runtimes", "logDrivers")
# The privilege names the engine asks a client to grant a plugin
# (plugin/backend_linux.go, computePrivileges).
PLUGIN_PRIVILEGES = ("network", "mount", "device", "capabilities", "allow-all-devices",
                     "host pid namespace", "host ipc namespace")  # fmt: skip

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
                        # CIDR pools explicit IPAM settings (--subnet, --ip-range, --gateway,
                        # --aux-address) must lie in; none by default
                        "subnets": _STRINGS,
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
                "runtime": {
                    # what a document adds to the packs' runtime allow-lists; the values
                    # are checked by RuntimeAllow.from_spec when the document loads
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {k: _STRINGS for k in _RUNTIME_KEYS},
                },
                "shared": {
                    # networks and volumes no team owns that every team may use (join,
                    # mount, read); objects nobody owns are otherwise out of reach
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"networks": _STRINGS, "volumes": _STRINGS, "labels": _STRINGS},
                },
                "plugins": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        # NAME=VALUE, e.g. "mount=/var/lib/app" or "capabilities=CAP_NET_ADMIN"
                        "privileges": _STRINGS,
                    },
                },
                "placement": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "classes": {"type": "object", "additionalProperties": _STRINGS},
                        "teams": {"type": "object", "additionalProperties": {"type": "string"}},
                        "label": {"type": "string", "minLength": 1},
                        # classes whose attested nodes run nothing else
                        "exclusive": _STRINGS,
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
class Compiled:
    """A document's compiled state, typed: its CEL rules, its Rego policies, the
    image-signing keys it trusts (id, PEM) and what it adds to the runtime allow-lists.
    ``ready`` is set by :func:`compile_document` only, so a document that was never
    compiled can't pass for one without rules."""

    cel: tuple[CelRule, ...] = ()
    rego: tuple[RegoRule, ...] = ()
    trusted_keys: tuple[tuple[str, bytes], ...] = ()
    runtime_allow: RuntimeAllow = DEFAULT_ALLOW
    ready: bool = False


@dataclass(frozen=True)
class Document:
    """One validated policy document. ``spec`` keeps the YAML's own structure;
    ``compiled`` holds what was built from it at load."""

    name: str
    version: str
    mode: str
    scope: dict[str, Any]
    spec: dict[str, Any]
    source: str = "(built in)"
    folder: Path | None = None
    compiled: Compiled = field(default_factory=Compiled, compare=False, repr=False)

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
    """The documents in force, each compiled, and a version that changes whenever any
    of them does. A document handed in uncompiled is compiled here, so no set can
    hold a document whose CEL, Rego or keys were silently left out."""

    documents: tuple[Document, ...]
    version: str

    def __post_init__(self) -> None:
        if not all(d.compiled.ready for d in self.documents):
            docs = tuple(d if d.compiled.ready else compile_document(d) for d in self.documents)
            object.__setattr__(self, "documents", docs)

    def shared(self, kind: str) -> tuple[str, ...]:
        """What the documents declare shared: ``kind`` is networks, volumes or labels."""
        out: list[str] = []
        for doc in self.documents:
            for item in (doc.spec.get("shared") or {}).get(kind) or ():
                if item not in out:
                    out.append(str(item))
        return tuple(out)


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
    """A CPU count: a finite number above 0 (``1``, ``0.5``)."""
    if isinstance(value, bool):
        raise ValueError(f"not a CPU count: {value!r}")
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a CPU count: {value!r} (use e.g. 0.5 or 2)") from None
    if not math.isfinite(cpus) or cpus <= 0:
        raise ValueError(f"not a CPU count: {value!r} (a number above 0, e.g. 0.5 or 2)")
    return cpus


_DURATION_RE = re.compile(r"^\s*([0-9]+)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: Any) -> int:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` or a number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int):
        seconds = value
    else:
        m = _DURATION_RE.match(str(value))
        if not m:
            raise ValueError(f"not a duration: {value!r} (use e.g. 12h, 7d or 2w)")
        seconds = int(m.group(1)) * _SECONDS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"not a duration: {value!r} (must be more than 0)")
    return seconds


_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def parse_digest(value: Any) -> str:
    """A content digest, ``sha256:`` and 64 lower-case hex digits."""
    if not isinstance(value, str) or not _DIGEST_RE.match(value):
        raise ValueError(f"not a digest: {value!r} (use sha256: and 64 hex digits)")
    return value


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


def _ports(value: Any) -> None:
    low, _, high = str(value).partition("-")
    a, b = int(low), int(high or low)
    if not 1 <= a <= b <= 65535:
        raise ValueError(f"not a port range: {value!r} (ports 1-65535, low-high with low <= high)")


def _ip(value: Any) -> None:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        raise ValueError(f"not an IP address: {value!r} (e.g. 127.0.0.1 or 0.0.0.0)") from None


def _subnet(value: Any) -> None:
    text = str(value)
    pool = parse_cidr(text)  # its ValueError says what is wrong
    if pool.network_address != parse_ip(text.partition("/")[0]):
        raise ValueError(f"not a CIDR pool: {text!r} has host bits set (did you mean {pool}?)")


def _name_pattern(value: Any) -> None:
    text = str(value)
    rest = text.replace("{team}", "")
    if "{" in rest or "}" in rest:
        raise ValueError(f"unknown placeholder in {text!r}: only {{team}} is replaced")
    if any(c.isspace() for c in text):
        raise ValueError(f"{text!r} contains white space, which no name has")


def _registry(value: Any) -> None:
    text = str(value)
    if "://" in text or any(c.isspace() for c in text) or text.strip("/") == "":
        raise ValueError(f"not a registry pattern: {text!r} (a host[:port] pattern, optionally with a "
                         "path, without a scheme: 127.0.0.1:*, docker.io/library)")  # fmt: skip


def _package(value: Any) -> None:
    text = str(value)
    if text.lower().startswith("pkg:") and not re.match(r"^pkg:[a-z0-9.+-]+/.+", text.lower()):
        raise ValueError(f"not a package URL prefix: {text!r} (e.g. pkg:pypi/pyyaml)")


def _constraint(value: Any) -> None:
    text = str(value)
    key, op, expected = text.partition("==") if "==" in text else text.partition("!=")
    if not op or not key.strip() or not expected.strip():
        raise ValueError(f"not a placement constraint: {text!r} (use node.labels.NAME==VALUE)")


def _privilege(value: Any) -> None:
    name, eq, _ = str(value).partition("=")
    if not eq or name not in PLUGIN_PRIVILEGES:
        raise ValueError(f"not a plugin privilege: {value!r} (NAME=VALUE, NAME one of "
                         f"{', '.join(PLUGIN_PRIVILEGES)}; e.g. mount=/var/lib/app)")  # fmt: skip


def _value_checks(spec: dict[str, Any]) -> Iterable[tuple[list[Any], Any, Callable[[Any], Any]]]:
    """(field path, value, validator) for every value the schema can't fully check."""

    def at(*path: Any) -> Any:
        node: Any = spec
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    def each(path: tuple[Any, ...], check: Callable[[Any], Any]) -> Iterable[tuple[list[Any], Any, Any]]:
        values = at(*path)
        for i, v in enumerate(values if isinstance(values, list) else []):
            yield ["spec", *path, i], v, check

    scalars: list[tuple[tuple[Any, ...], Callable[[Any], Any]]] = [
        (("resources", "max", "memory"), parse_size), (("resources", "max", "cpus"), parse_cpus),
        (("quotas", "memory"), parse_size), (("quotas", "cpus"), parse_cpus),
        (("mutations", "memory"), parse_size), (("mutations", "cpus"), parse_cpus),
        (("images", "database", "maxAge"), parse_duration),
    ]  # fmt: skip
    for path, check in scalars:
        if at(*path) is not None:
            yield ["spec", *path], at(*path), check
    yield from each(("network", "publish", "ports"), _ports)
    yield from each(("network", "publish", "hostIPs"), _ip)
    yield from each(("network", "subnets"), _subnet)
    yield from each(("network", "create"), _name_pattern)
    yield from each(("network", "join"), _name_pattern)
    yield from each(("images", "registries"), _registry)
    yield from each(("images", "packages", "forbidden"), _package)
    yield from each(("images", "packages", "required"), _package)
    yield from each(("plugins", "privileges"), _privilege)
    for cls, constraints in (at("placement", "classes") or {}).items():
        yield from each(("placement", "classes", cls), _constraint)
        del constraints


def _check_values(spec: dict[str, Any], node: yaml.Node, source: str) -> None:
    """What the schema can't say: every size, CPU count, duration, port range,
    address and pattern parses; CEL compiles; placement classes exist."""
    for path, value, check in _value_checks(spec):
        try:
            check(value)
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
    if spec.get("runtime") is not None:
        try:
            RuntimeAllow.from_spec(spec["runtime"])
        except ValueError as exc:
            where = str(exc).partition(":")[0]  # "runtime.seccompProfiles[0]"
            path = ["spec", *re.split(r"[.\[\]]+", where.strip("]"))]
            path = [int(p) if p.isdigit() else p for p in path if p]
            raise PolicyError(f"{source}:{_line_of(node, path)}: spec.{exc}") from exc
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


def compile_document(doc: Document) -> Document:
    """The document with its CEL and Rego compiled and its trusted keys read (from its
    folder), as typed state. Raises :class:`PolicyError` naming the file and field."""
    spec = doc.spec
    cel = tuple(
        CelRule(r["id"], r["expr"], r["message"], r.get("fix", "change the request so the rule holds"),
                tuple(r.get("kinds") or ()), compile_cel(r["expr"]))
        for r in spec.get("custom") or []
    )  # fmt: skip
    rego: list[RegoRule] = []
    for i, r in enumerate(spec.get("rego") or []):
        where = f"{doc.source}: spec.rego[{i}]"
        if doc.folder is None:
            raise PolicyError(f"{where}: policy {doc.name}: a Rego file needs a policy folder")
        message = r.get("message", "the Rego policy does not allow this request")
        try:
            rego.append(RegoRule(r["id"], doc.folder / r["file"], r.get("query", "data.docker.authz.allow"),
                                 message))  # fmt: skip
        except OSError as exc:
            raise PolicyError(f"{where}.file: cannot read {doc.folder / r['file']}: {exc.strerror}") from exc
        except ValueError as exc:
            raise PolicyError(f"{where}.file: {exc}") from exc
    keys: tuple[tuple[str, bytes], ...] = ()
    if ((spec.get("images") or {}).get("signatures") or {}).get("keys"):
        keys = tuple(_trusted_keys(doc, doc.folder or Path(".")))
    try:
        runtime_allow = RuntimeAllow.from_spec(spec.get("runtime"))
    except ValueError as exc:
        raise PolicyError(f"{doc.source}: spec.{exc}") from exc
    return replace(doc, compiled=Compiled(cel, tuple(rego), keys, runtime_allow, ready=True))


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
            for i, rego in enumerate(doc.spec.get("rego") or []):
                rego_path = base / rego["file"]
                try:
                    digest.update(rego_path.read_bytes())
                except OSError as exc:
                    raise PolicyError(f"{path}: spec.rego[{i}].file: rego {rego['id']}: cannot read "
                                      f"{rego_path}: {exc.strerror}") from exc  # fmt: skip
            doc = compile_document(doc)
            for _, pem in doc.compiled.trusted_keys:
                digest.update(pem)
            docs.append(doc)
    if not docs:
        raise PolicyError(f"{folder}: no policy documents (*.yaml) found")
    return PolicySet(tuple(docs), digest.hexdigest()[:12])


def _trusted_keys(doc: Document, base: Path) -> list[tuple[str, bytes]]:
    """(key id, PEM) of each key a document trusts: a path (relative to the policy
    folder) or an inline PEM block. Read at load, so a bad key fails the load."""
    out = []
    for i, entry in enumerate(doc.spec["images"]["signatures"]["keys"]):
        where = f"{doc.source}: spec.images.signatures.keys[{i}]"
        if entry.lstrip().startswith("-----BEGIN"):
            pem = entry.encode()
        else:
            path = base / entry
            try:
                pem = path.read_bytes()
            except OSError as exc:
                raise PolicyError(f"{where}: cannot read {path}: {exc.strerror}") from exc
        try:
            ids = key_ids(pem, entry if not entry.startswith("-----") else "an inline key")
        except ValueError as exc:
            raise PolicyError(f"{where}: {exc}") from exc
        out += [(kid, pem) for kid in ids]
    return out


def builtin_set(enforce: str | None = "baseline", audit: str | None = "restricted") -> PolicySet:
    """The default for ``moorage up``: one pack enforced and one in audit."""
    docs = []
    if enforce:
        docs.append(Document(f"builtin-{enforce}", "1", "enforce", {}, {"packs": [enforce]}))
    if audit:
        docs.append(Document(f"builtin-{audit}-audit", "1", "audit", {}, {"packs": [audit]}))
    version = hashlib.sha256(json.dumps([enforce, audit]).encode()).hexdigest()[:12]
    return PolicySet(tuple(docs), f"builtin-{version}")
