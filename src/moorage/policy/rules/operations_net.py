"""Networks in operations, read once as the fields that name or configure a network
(:func:`network_fields`) and judged field by field by each network rule. Pure.

A container joins by ``HostConfig.NetworkMode`` and by its endpoints, a service by
its task networks, ``network connect`` by the network it names; ``network create``
configures a driver, options, IPAM and ingress. Each rule reports the fields it
refuses where they stand, so the findings keep the order of the request.
"""

from __future__ import annotations

from collections.abc import Callable

from moorage.policy.rules.base import Finding, _get
from moorage.policy.rules.operations_base import (
    IPAM_DRIVERS,
    NETWORK_DRIVERS,
    NETWORK_OPTIONS,
    Operation,
    OperationFacts,
    _f,
    _items,
    _zero,
)
from moorage.policy.rules.operations_ipam import ipam_config

__all__ = [
    "NETWORK_FIELD_CHECKS",
    "NetField",
    "NetworkFieldCheck",
    "check_networks",
    "network_driver",
    "network_driver_option",
    "network_fields",
    "network_host",
    "network_ingress",
    "network_subnet",
]

NetField = tuple[str, str, object]
"""One field of an operation that names or configures a network: what it is (``ref``,
``endpoint-options``, ``driver``, ``options``, ``ipam-driver``, ``ipam``,
``config-from``, ``ingress``), its path and its value."""


def _is_host_network(ref: str, facts: OperationFacts) -> bool:
    """``host`` in any case (swarmkit matches names case-insensitively), or the id or
    an id prefix of a host-driver network (the engine's FindNetwork accepts both)."""
    text = ref.strip()
    if text.lower() == "host":
        return True
    return bool(text) and any(nid == text or nid.startswith(text) for nid in facts.host_networks)


def network_fields(op: Operation) -> list[NetField]:
    """The fields of ``op`` the network rules judge, in the order they are reported."""
    kind, body = op.kind, op.body
    out: list[NetField] = []
    if kind == "container.create":
        out.append(
            ("ref", "HostConfig.NetworkMode", str(_get(_get(body, "HostConfig"), "NetworkMode") or ""))
        )
        endpoints = _get(_get(body, "NetworkingConfig"), "EndpointsConfig")
        for name, endpoint in (endpoints if isinstance(endpoints, dict) else {}).items():
            where = f"NetworkingConfig.EndpointsConfig.{name}"
            out += [("ref", where, str(name)), ("endpoint-options", where, _get(endpoint, "DriverOpts"))]
    elif kind in ("service.create", "service.update"):
        # The engine uses TaskTemplate.Networks, or the deprecated top-level Networks
        # when that is empty; both are checked, whichever wins.
        for where, nets in (
            ("TaskTemplate.Networks", _get(_get(body, "TaskTemplate"), "Networks")),
            ("Networks", _get(body, "Networks")),
        ):
            for i, net in enumerate(_items(nets)):
                out += [
                    ("ref", f"{where}[{i}].Target", str(_get(net, "Target") or "")),
                    ("endpoint-options", f"{where}[{i}]", _get(net, "DriverOpts")),
                ]
    elif kind == "network.connect":
        if op.object_ref is not None:
            out.append(("ref", "(network)", op.object_ref))
        out.append(("endpoint-options", "EndpointConfig", _get(_get(body, "EndpointConfig"), "DriverOpts")))
    elif kind == "network.create":
        ipam = _get(body, "IPAM")
        out += [
            ("driver", "Driver", str(_get(body, "Driver") or "")),
            ("options", "Options", _get(body, "Options")),
            ("ipam-driver", "IPAM.Driver", str(_get(ipam, "Driver") or "")),
            ("ipam", "IPAM", ipam),
            ("config-from", "ConfigFrom", _get(body, "ConfigFrom")),
            ("ingress", "Ingress", _get(body, "Ingress")),
        ]
    return out


def network_host(op: Operation, field: NetField) -> list[Finding]:
    """``network.host`` on one network reference: it isn't the host network."""
    what, path, value = field
    if what != "ref" or not _is_host_network(str(value), op.facts):
        return []
    return [_f("network.host", path, value, "the host's network namespace is not allowed",
               "use a user-defined network and publish the ports you need")]  # fmt: skip


def network_driver_option(op: Operation, field: NetField) -> list[Finding]:
    """``network.driver-option``: an endpoint's driver options (none is known safe), and
    a created network's options outside the allow-list."""
    what, path, value = field
    keys = value if isinstance(value, dict) else {}
    if not keys:
        return []
    if what == "endpoint-options":
        # An endpoint's driver options go to the network driver (interface sysctls, MAC
        # and VLAN settings on newer engines): none is known safe, so none is allowed.
        return [_f("network.driver-option", f"{path}.DriverOpts.{key}", key,
                   f"endpoint driver option {key} is not on the allow-list",
                   "remove the network's driver-opt") for key in keys]  # fmt: skip
    if what == "options":
        return [_f("network.driver-option", f"Options.{key}", key,
                   f"network option {key} is not on the allow-list", f"remove --opt {key}")
                for key in keys if str(key) not in NETWORK_OPTIONS]  # fmt: skip
    return []


def network_driver(op: Operation, field: NetField) -> list[Finding]:
    """``network.driver``: a created network's driver and IPAM driver are the engine's
    own, and it isn't made from a config-only network."""
    what, path, value = field
    if what == "driver" and value not in NETWORK_DRIVERS:
        return [_f("network.driver", path, value, f"network driver {value!r} reaches outside the engine's "
                   "own networks", "use the bridge driver (or overlay on a swarm)")]  # fmt: skip
    if what == "ipam-driver" and value not in IPAM_DRIVERS:
        return [_f("network.driver", path, value, f"IPAM driver {value!r} is not the engine's default",
                   "remove --ipam-driver")]  # fmt: skip
    if what == "config-from" and not _zero(value):
        return [_f("network.driver", path, value, "a network made from a config-only network takes that "
                   "network's driver settings, which this request doesn't show",
                   "create the network directly")]  # fmt: skip
    return []


def network_subnet(op: Operation, field: NetField) -> list[Finding]:
    """``network.subnet``: a created network's explicit IPAM settings lie inside the
    policy's pools."""
    what, _, value = field
    return ipam_config(value, op.subnets) if what == "ipam" else []


def network_ingress(op: Operation, field: NetField) -> list[Finding]:
    """``network.ingress``: a created network isn't the swarm's ingress network."""
    what, path, value = field
    if what != "ingress" or value is not True:
        return []
    return [_f("network.ingress", path, True, "the ingress network carries every published port of the swarm",
               "leave the ingress network to operators")]  # fmt: skip


NetworkFieldCheck = Callable[[Operation, NetField], list[Finding]]
"""One network rule's check of one field."""

NETWORK_FIELD_CHECKS: tuple[tuple[str, frozenset[str], NetworkFieldCheck], ...] = (
    ("network.host", frozenset({"ref"}), network_host),
    ("network.driver-option", frozenset({"endpoint-options", "options"}), network_driver_option),
    ("network.driver", frozenset({"driver", "ipam-driver", "config-from"}), network_driver),
    ("network.subnet", frozenset({"ipam"}), network_subnet),
    ("network.ingress", frozenset({"ingress"}), network_ingress),
)
"""The network rules of an operation, by rule id, with the kinds of field each judges
(it reports nothing on any other)."""


def check_networks(op: Operation) -> list[Finding]:
    """The network rules' findings on ``op``, field by field."""
    out: list[Finding] = []
    for field in network_fields(op):
        for _, _, rule_check in NETWORK_FIELD_CHECKS:
            out += rule_check(op, field)
    return out
