"""Networks in operations: host networks, network creation and IPAM pools.
A declared pool (``spec.network.subnets``) bounds every explicit address. Pure.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

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

__all__ = [
    "DEFAULT_POOLS",
    "Address",
    "Network",
    "parse_cidr",
    "parse_ip",
]


# -------------------------------------------------------------------- networks
def _is_host_network(ref: str, facts: OperationFacts) -> bool:
    """``host`` in any case (swarmkit matches names case-insensitively), or the id or
    an id prefix of a host-driver network (the engine's FindNetwork accepts both)."""
    text = ref.strip()
    if text.lower() == "host":
        return True
    return bool(text) and any(nid == text or nid.startswith(text) for nid in facts.host_networks)


def _networks(op: Operation) -> list[Finding]:
    kind, body, object_ref, facts, subnets = op.kind, op.body, op.object_ref, op.facts, op.subnets
    out: list[Finding] = []
    fix = "use a user-defined network and publish the ports you need"

    def host(path: str, value: str) -> None:
        out.append(_f("network.host", path, value, "the host's network namespace is not allowed", fix))

    def endpoint_options(path: str, opts: object) -> None:
        # An endpoint's driver options go to the network driver (interface sysctls, MAC
        # and VLAN settings on newer engines): none is known safe, so none is allowed.
        for key in opts if isinstance(opts, dict) else {}:
            out.append(_f("network.driver-option", f"{path}.DriverOpts.{key}", key,
                          f"endpoint driver option {key} is not on the allow-list",
                          "remove the network's driver-opt"))  # fmt: skip

    if kind == "container.create":
        hc = _get(body, "HostConfig")
        mode = str(_get(hc, "NetworkMode") or "")
        if _is_host_network(mode, facts):
            host("HostConfig.NetworkMode", mode)
        endpoints = _get(_get(body, "NetworkingConfig"), "EndpointsConfig")
        for name, endpoint in (endpoints if isinstance(endpoints, dict) else {}).items():
            if _is_host_network(str(name), facts):
                host(f"NetworkingConfig.EndpointsConfig.{name}", str(name))
            endpoint_options(f"NetworkingConfig.EndpointsConfig.{name}", _get(endpoint, "DriverOpts"))
    elif kind in ("service.create", "service.update"):
        # The engine uses TaskTemplate.Networks, or the deprecated top-level Networks
        # when that is empty; both are checked, whichever wins.
        for where, nets in (
            ("TaskTemplate.Networks", _get(_get(body, "TaskTemplate"), "Networks")),
            ("Networks", _get(body, "Networks")),
        ):
            for i, net in enumerate(_items(nets)):
                target = str(_get(net, "Target") or "")
                if _is_host_network(target, facts):
                    host(f"{where}[{i}].Target", target)
                endpoint_options(f"{where}[{i}]", _get(net, "DriverOpts"))
    elif kind == "network.connect":
        if object_ref is not None and _is_host_network(object_ref, facts):
            host("(network)", object_ref)
        endpoint_options("EndpointConfig", _get(_get(body, "EndpointConfig"), "DriverOpts"))
    elif kind == "network.create":
        out += _network_create(body, subnets)
    return out


def _network_create(body: object, subnets: tuple[str, ...]) -> list[Finding]:
    out: list[Finding] = []
    driver = str(_get(body, "Driver") or "")
    if driver not in NETWORK_DRIVERS:
        out.append(
            _f(
                "network.driver",
                "Driver",
                driver,
                f"network driver {driver!r} reaches outside the engine's own networks",
                "use the bridge driver (or overlay on a swarm)",
            )
        )
    options = _get(body, "Options")
    for key in options if isinstance(options, dict) else {}:
        if str(key) not in NETWORK_OPTIONS:
            out.append(
                _f(
                    "network.driver-option",
                    f"Options.{key}",
                    key,
                    f"network option {key} is not on the allow-list",
                    f"remove --opt {key}",
                )
            )
    ipam = _get(body, "IPAM")
    ipam_driver = str(_get(ipam, "Driver") or "")
    if ipam_driver not in IPAM_DRIVERS:
        out.append(
            _f(
                "network.driver",
                "IPAM.Driver",
                ipam_driver,
                f"IPAM driver {ipam_driver!r} is not the engine's default",
                "remove --ipam-driver",
            )
        )
    out += _ipam_config(ipam, subnets)
    if not _zero(_get(body, "ConfigFrom")):
        out.append(
            _f(
                "network.driver",
                "ConfigFrom",
                _get(body, "ConfigFrom"),
                "a network made from a config-only network takes that network's driver "
                "settings, which this request doesn't show",
                "create the network directly",
            )
        )
    if _get(body, "Ingress") is True:
        out.append(
            _f(
                "network.ingress",
                "Ingress",
                True,
                "the ingress network carries every published port of the swarm",
                "leave the ingress network to operators",
            )
        )
    return out


# Go's net.ParseIP / net.ParseCIDR, narrowed to what both readers agree on: digits,
# hex, dots and colons only (no zone, no netmask form). An IPv4 address inside IPv6
# notation (::ffff:10.0.0.1) is refused: Go reads it as IPv4, Python as IPv6.
_ADDRESS = re.compile(r"[0-9A-Fa-f:.]+")
_PREFIX = re.compile(r"[0-9]{1,3}")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(text: str) -> Address:
    """An IP address as the engine's ``net.ParseIP`` reads it; ValueError otherwise."""
    if not _ADDRESS.fullmatch(text) or (":" in text and "." in text):
        raise ValueError(f"not an IP address: {text!r}")
    return ipaddress.ip_address(text)


def parse_cidr(text: str, strict: bool = False) -> Network:
    """A CIDR block (``10.200.0.0/16``) as ``net.ParseCIDR`` reads it: the network of
    the address and prefix. ``strict``: the address must have no host bits set."""
    addr, slash, prefix = text.partition("/")
    if not slash or not _PREFIX.fullmatch(prefix):
        raise ValueError(f"not a CIDR block: {text!r} (use ADDRESS/PREFIX, e.g. 10.200.0.0/16)")
    try:
        return ipaddress.ip_network(f"{parse_ip(addr)}/{int(prefix)}", strict=strict)
    except ValueError as exc:
        raise ValueError(f"not a CIDR block: {text!r} ({exc})") from None


# With no pools declared, the range of the engine's own default bridge pools
# (172.17.0.0/16 to 172.31.0.0/16) is allowed; 192.168.0.0/16, its other default range,
# is where home and office networks and their DNS servers live, so it isn't. A policy
# that declares network.subnets replaces the default.
DEFAULT_POOLS = ("172.16.0.0/12",)


@lru_cache(maxsize=256)
def _pools(subnets: tuple[str, ...]) -> tuple[Network, ...]:
    out: list[Network] = []
    for text in subnets or DEFAULT_POOLS:
        try:
            out.append(parse_cidr(text, strict=True))
        except ValueError:
            continue  # refused at load; skipping one here only allows less
    return tuple(out)


_IPAM_FIELDS = (
    ("Subnet", "subnet", "--subnet", True),
    ("IPRange", "IP range", "--ip-range", True),
    ("Gateway", "gateway", "--gateway", False),
)


def _ipam_config(ipam: object, subnets: tuple[str, ...]) -> list[Finding]:
    """Explicit IPAM settings only inside the pools a policy declares (network.subnets).

    libnetwork checks a pool it picks against the host's routes, but skips that check
    for a pool the caller chose (network.go, requestPoolHelper), so a subnet naming an
    address the host routes elsewhere (its DNS server, a metadata service) pulls that
    address into the bridge. The gateway and auxiliary addresses must lie in the pool,
    and the IP range in the subnet, and are held to the declared pools too.
    """
    out: list[Finding] = []
    pools = _pools(subnets)
    shown = ", ".join(str(p) for p in pools)
    for i, entry in enumerate(_items(_get(ipam, "Config"))):
        where = f"IPAM.Config[{i}]"
        values = [
            (f"{where}.{key}", _get(entry, key), what, flag, net) for key, what, flag, net in _IPAM_FIELDS
        ]
        aux = _get(entry, "AuxiliaryAddresses")
        values += [
            (f"{where}.AuxiliaryAddresses.{name}", ip, "auxiliary address", "--aux-address", False)
            for name, ip in (aux.items() if isinstance(aux, dict) else ())
        ]
        for path, value, what, flag, is_net in values:
            if _zero(value):
                continue  # not set: the engine picks (or, for an empty subnet, refuses)
            text = str(value)
            try:
                parsed: Address | Network = parse_cidr(text) if is_net else parse_ip(text)
            except ValueError:
                why = f"{what} {text!r} is not an address Moorage reads as the engine does"
                fix = f"write the {what} as plain IPv4 or IPv6 (e.g. 10.200.1.0/24), or omit {flag}"
                out.append(_f("network.subnet", path, value, why, fix))
                continue
            if any(_inside(parsed, pool) for pool in pools):
                continue
            if not pools:
                message = (
                    f"an explicit {what} ({flag} {text}) is not allowed: the engine doesn't check a "
                    "subnet the caller chooses against the host's routes, so the network could take "
                    "over addresses the host uses (its DNS server, a metadata service)"
                )
                fix = (
                    "omit --subnet, --ip-range, --gateway and --aux-address so the engine picks a free "
                    "pool, or ask an operator to declare a pool under network.subnets"
                )
            else:
                message = f"{what} {text} is outside the address pools this policy allows ({shown})"
                fix = f"choose a {what} inside {shown}, or omit {flag} so the engine picks a free pool"
            out.append(_f("network.subnet", path, value, message, fix))
    return out


def _inside(value: Address | Network, pool: Network) -> bool:
    if value.version != pool.version:
        return False
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value.subnet_of(pool)  # type: ignore[arg-type]  # same version, checked above
    return value in pool
