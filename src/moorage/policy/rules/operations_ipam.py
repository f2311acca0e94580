"""Networks in operations: host networks, network creation and IPAM pools.
A declared pool (``spec.network.subnets``) bounds every explicit address. Pure.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from moorage.policy.rules.base import Finding, _get
from moorage.policy.rules.operations_base import _f, _items, _zero

__all__ = [
    "DEFAULT_POOLS",
    "Address",
    "Network",
    "ipam_config",
    "parse_cidr",
    "parse_ip",
]


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


def ipam_config(ipam: object, subnets: tuple[str, ...]) -> list[Finding]:
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
