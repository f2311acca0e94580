"""What a schema can't say about a policy document, checked on the typed model at load.

Every size, CPU count, duration, port range, address, pool, name pattern, registry,
package prefix, plugin privilege and placement constraint parses; placement teams map
to defined classes; runtime allow-list entries are acceptable; CEL compiles and custom
rule ids don't repeat. Each failure says which field, so the loader can name the line.
Pure.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator

import msgspec

from moorage.policy.custom import compile_cel
from moorage.policy.rules.operations_ipam import parse_cidr, parse_ip
from moorage.policy.rules.runtime_allow import RuntimeAllow
from moorage.policy.schema import PolicySpec
from moorage.policy.units import parse_cpus, parse_duration, parse_size

__all__ = ["PLUGIN_PRIVILEGES", "SpecError", "check_spec"]

Path = list[str | int]

# The privilege names the engine asks a client to grant a plugin
# (plugin/backend_linux.go, computePrivileges).
PLUGIN_PRIVILEGES = ("network", "mount", "device", "capabilities", "allow-all-devices",
                     "host pid namespace", "host ipc namespace")  # fmt: skip


class SpecError(ValueError):
    """A value the schema let through that doesn't hold: ``path`` is the field (from the
    document's root, ``["spec", ...]``); ``plain`` says the message already names it."""

    def __init__(self, path: Path, message: str, plain: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.plain = plain


def _ports(value: object) -> None:
    low, _, high = str(value).partition("-")
    a, b = int(low), int(high or low)
    if not 1 <= a <= b <= 65535:
        raise ValueError(f"not a port range: {value!r} (ports 1-65535, low-high with low <= high)")


def _ip(value: object) -> None:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        raise ValueError(f"not an IP address: {value!r} (e.g. 127.0.0.1 or 0.0.0.0)") from None


def _subnet(value: object) -> None:
    text = str(value)
    pool = parse_cidr(text)  # its ValueError says what is wrong
    if pool.network_address != parse_ip(text.partition("/")[0]):
        raise ValueError(f"not a CIDR pool: {text!r} has host bits set (did you mean {pool}?)")


def _name_pattern(value: object) -> None:
    text = str(value)
    rest = text.replace("{team}", "")
    if "{" in rest or "}" in rest:
        raise ValueError(f"unknown placeholder in {text!r}: only {{team}} is replaced")
    if any(c.isspace() for c in text):
        raise ValueError(f"{text!r} contains white space, which no name has")


def _registry(value: object) -> None:
    text = str(value)
    if "://" in text or any(c.isspace() for c in text) or text.strip("/") == "":
        raise ValueError(f"not a registry pattern: {text!r} (a host[:port] pattern, optionally with a "
                         "path, without a scheme: 127.0.0.1:*, docker.io/library)")  # fmt: skip


def _package(value: object) -> None:
    text = str(value)
    if text.lower().startswith("pkg:") and not re.match(r"^pkg:[a-z0-9.+-]+/.+", text.lower()):
        raise ValueError(f"not a package URL prefix: {text!r} (e.g. pkg:pypi/pyyaml)")


def _constraint(value: object) -> None:
    text = str(value)
    key, op, expected = text.partition("==") if "==" in text else text.partition("!=")
    if not op or not key.strip() or not expected.strip():
        raise ValueError(f"not a placement constraint: {text!r} (use node.labels.NAME==VALUE)")


def _privilege(value: object) -> None:
    name, eq, _ = str(value).partition("=")
    if not eq or name not in PLUGIN_PRIVILEGES:
        raise ValueError(f"not a plugin privilege: {value!r} (NAME=VALUE, NAME one of "
                         f"{', '.join(PLUGIN_PRIVILEGES)}; e.g. mount=/var/lib/app)")  # fmt: skip


def _at(model: object, path: tuple[str, ...]) -> object:
    """The value at ``path`` (encode names, as the YAML spells them), None when absent."""
    node: object = model
    for key in path:
        if not isinstance(node, msgspec.Struct):
            return None
        names = {f.encode_name: f.name for f in msgspec.structs.fields(node)}
        node = getattr(node, names[key]) if key in names else None
    return node


def _value_checks(spec: PolicySpec) -> Iterator[tuple[Path, object, Callable[[object], object]]]:
    """(field path, value, validator) for every value the schema can't fully check."""

    def each(
        path: tuple[str, ...], check: Callable[[object], object]
    ) -> Iterator[tuple[Path, object, Callable[[object], object]]]:
        values = _at(spec, path)
        for i, v in enumerate(values if isinstance(values, list) else []):
            yield ["spec", *path, i], v, check

    scalars: list[tuple[tuple[str, ...], Callable[[object], object]]] = [
        (("resources", "max", "memory"), parse_size), (("resources", "max", "cpus"), parse_cpus),
        (("quotas", "memory"), parse_size), (("quotas", "cpus"), parse_cpus),
        (("mutations", "memory"), parse_size), (("mutations", "cpus"), parse_cpus),
        (("images", "database", "maxAge"), parse_duration), (("images", "surface", "maxSize"), parse_size),
    ]  # fmt: skip
    for path, check in scalars:
        if _at(spec, path) is not None:
            yield ["spec", *path], _at(spec, path), check
    yield from each(("network", "publish", "ports"), _ports)
    yield from each(("network", "publish", "hostIPs"), _ip)
    yield from each(("network", "subnets"), _subnet)
    yield from each(("network", "create"), _name_pattern)
    yield from each(("network", "join"), _name_pattern)
    yield from each(("images", "registries"), _registry)
    yield from each(("images", "packages", "forbidden"), _package)
    yield from each(("images", "packages", "required"), _package)
    yield from each(("plugins", "privileges"), _privilege)
    classes = spec.placement.classes if spec.placement else None
    for cls, constraints in (classes or {}).items():
        for i, v in enumerate(constraints):
            yield ["spec", "placement", "classes", cls, i], v, _constraint


def check_spec(spec: PolicySpec) -> None:
    """Raise :class:`SpecError` naming the first value that doesn't hold."""
    for path, value, check in _value_checks(spec):
        try:
            check(value)
        except ValueError as exc:
            raise SpecError(path, str(exc)) from exc
    placement = spec.placement
    for team, cls in ((placement.teams if placement else None) or {}).items():
        if cls not in ((placement.classes if placement else None) or {}):
            raise SpecError(["spec", "placement", "teams", team],
                            f"class {cls!r} is not defined under placement.classes")  # fmt: skip
    if spec.runtime is not None:
        try:
            RuntimeAllow.from_spec(msgspec.to_builtins(spec.runtime))
        except ValueError as exc:
            where = str(exc).partition(":")[0]  # "runtime.seccompProfiles[0]"
            parts = [p for p in re.split(r"[.\[\]]+", where.strip("]")) if p]
            raise SpecError(["spec", *(int(p) if p.isdigit() else p for p in parts)], f"spec.{exc}",
                            plain=True) from exc  # fmt: skip
    seen: set[str] = set()
    for i, rule in enumerate(spec.custom or []):
        at: Path = ["spec", "custom", i, "expr"]
        try:
            compile_cel(rule.expr)
        except ValueError as exc:
            raise SpecError(at, str(exc)) from exc
        if rule.id in seen:
            raise SpecError(at[:3], f"custom id {rule.id!r} repeats", plain=True)
        seen.add(rule.id)
