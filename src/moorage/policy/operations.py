"""What the built-in packs check beyond a workload's runtime view: every operation.

The packs (``baseline``, ``restricted``) are allow-lists of operations as well as of
fields. Each state-changing operation the engine offers is in exactly one of:

- :data:`MODELLED`: its body or query is read here (or by the runtime view) and
  only what is known to stay inside the container is allowed;
- :data:`PLAIN`: it changes state but carries nothing that reaches the host (stop,
  delete, tag...). RBAC and tenancy decide who may call it;
- :data:`READS`: it changes nothing.

Anything else, including an operation Moorage can't classify, is refused with
``runtime.unknown-operation``: an endpoint nobody has modelled is not passed.

Requests arrive canonical (decoded as the engine decodes them, with the engine's
field names), and a single-valued query parameter carries exactly one value, the one
the engine reads. Field lookups still fold case, so a hand-made request in a test or
``moorage policy check`` reads the same way. Pure.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from moorage.policy.runtime import Finding, _get

__all__ = [
    "BUILD_NETWORK_MODES",
    "BUILD_REMOTES",
    "IMPORT_SOURCES",
    "MODELLED",
    "PLAIN",
    "READS",
    "OperationFacts",
    "check_operation",
    "parse_cidr",
    "parse_ip",
    "plugin_privileges",
]

# Build steps may run on the build's own bridge, the engine's default, or no network.
# `host` and `container:<id>` join a namespace outside the build; a user-defined
# network name is a join that tenancy can't see (the builder connects it).
BUILD_NETWORK_MODES = frozenset({"", "default", "bridge", "none"})
BUILD_ISOLATION = frozenset({"", "default"})
# A build's `remote`: empty (the context is the request body) or BuildKit's
# "client-session" (the client streams it over the session). Anything else is a URL or
# Git repository the engine fetches itself, from the host's network namespace
# (builder/remotecontext/detect.go): a request from the host to whatever it can reach.
BUILD_REMOTES = frozenset({"", "client-session"})
# An image import's `fromSrc`: "-" is the tarball in the body; empty is a pull (or an
# import the engine refuses). Anything else is a URL the engine downloads from the host
# (daemon/images/image_import.go).
IMPORT_SOURCES = frozenset({"", "-"})

# container update: what the engine applies (container.UpdateContainer in 20.10 and
# 27.x); every other field of UpdateConfig is ignored by those engines and refused
# here when set, so a newer engine that starts honouring one is not passed.
UPDATE_FIELDS = frozenset({
    "BlkioWeight", "CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota", "CpusetCpus", "CpusetMems", "Memory",
    "MemorySwap", "MemoryReservation", "KernelMemory", "CpuRealtimePeriod", "CpuRealtimeRuntime",
    "PidsLimit", "RestartPolicy",
})  # fmt: skip

# network create: drivers whose networks stay inside the engine, and the driver
# options that only tune them. `com.docker.network.bridge.name` is not here: naming
# an existing host bridge attaches the network's containers to it.
NETWORK_DRIVERS = frozenset({"", "bridge", "overlay"})
NETWORK_OPTIONS = frozenset({
    "com.docker.network.bridge.enable_icc", "com.docker.network.bridge.enable_ip_masquerade",
    "com.docker.network.bridge.host_binding_ipv4", "com.docker.network.driver.mtu",
    "com.docker.network.container_iface_prefix", "com.docker.network.enable_ipv6", "encrypted",
})  # fmt: skip
IPAM_DRIVERS = frozenset({"", "default"})

MOORAGE_LABELS = "io.moorage."

MODELLED = frozenset({
    "container.create", "container.update", "exec.create", "service.create", "service.update",
    "volume.create", "image.build", "image.pull", "build.grpc", "network.create", "network.connect",
    "plugin.pull", "plugin.upgrade", "plugin.set", "plugin.create", "plugin.enable", "node.update",
    "swarm.init", "swarm.join", "swarm.update",
})  # fmt: skip

PLAIN = frozenset({
    "container.start", "container.stop", "container.restart", "container.kill", "container.pause",
    "container.unpause", "container.resize", "container.rename", "container.delete", "container.attach",
    "container.archive.put", "container.prune", "exec.start", "exec.resize", "image.commit",
    "image.push", "image.tag", "image.delete", "image.load", "image.prune", "build.prune", "build.cancel",
    "build.session", "network.disconnect", "network.delete", "network.prune", "volume.update",
    "volume.delete", "volume.prune", "service.delete", "secret.create", "secret.update", "secret.delete",
    "config.create", "config.update", "config.delete", "node.delete", "swarm.leave", "swarm.unlock",
    "swarm.unlockkey", "plugin.disable", "plugin.push", "plugin.delete",
})  # fmt: skip

READS = frozenset({
    "system.ping", "system.version", "system.info", "system.events", "system.df", "system.auth",
    "container.list", "container.inspect", "container.top", "container.logs", "container.changes",
    "container.export", "container.stats", "container.archive.get", "container.archive.stat",
    "container.wait", "exec.inspect", "image.list", "image.search", "image.save", "image.inspect",
    "image.history", "image.distribution", "network.list", "network.inspect", "volume.list",
    "volume.inspect", "swarm.inspect", "node.list", "node.inspect", "service.list", "service.inspect",
    "service.logs", "task.list", "task.inspect", "task.logs", "secret.list", "secret.inspect",
    "config.list", "config.inspect", "plugin.list", "plugin.privileges", "plugin.inspect",
})  # fmt: skip


@dataclass(frozen=True)
class OperationFacts:
    """Engine state some checks compare against, gathered by admission when it can.

    ``host_networks``: the full ids of the engine's networks with the ``host`` driver
    (local and swarm), so a reference by id or id prefix is recognised. ``node_labels``:
    a node's current labels (``node.update``). ``plugin_config``: the plugin's
    ``Config`` from ``GET /plugins/{name}/json`` (``plugin.set``, ``plugin.enable``).
    """

    host_networks: tuple[str, ...] = ()
    node_labels: Mapping[str, str] | None = None
    plugin_config: Mapping[str, Any] | None = None


_NO_FACTS = OperationFacts()


def _f(rule: str, path: str, value: Any, message: str, fix: str) -> Finding:
    return Finding(rule, path, value, message, fix)


def _first(query: Mapping[str, list[str]], name: str) -> str:
    """A single-valued parameter as the engine's ``r.FormValue`` reads it: the first."""
    values = query.get(name) or []
    return values[0] if values else ""


def _zero(value: Any) -> bool:
    """Go's zero value after decoding: the engine treats these as "not set"."""
    return value is None or value is False or value == 0 or value == "" or value == [] or value == {}


def _items(obj: Any) -> list[Any]:
    return obj if isinstance(obj, list) else []


# -------------------------------------------------------------------- networks
def _is_host_network(ref: str, facts: OperationFacts) -> bool:
    """``host`` in any case (swarmkit matches names case-insensitively), or the id or
    an id prefix of a host-driver network (the engine's FindNetwork accepts both)."""
    text = ref.strip()
    if text.lower() == "host":
        return True
    return bool(text) and any(nid == text or nid.startswith(text) for nid in facts.host_networks)


def _networks(
    kind: str, body: Any, object_ref: str | None, facts: OperationFacts, subnets: tuple[str, ...]
) -> list[Finding]:
    out: list[Finding] = []
    fix = "use a user-defined network and publish the ports you need"

    def host(path: str, value: str) -> None:
        out.append(_f("network.host", path, value, "the host's network namespace is not allowed", fix))

    def endpoint_options(path: str, opts: Any) -> None:
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
        for name in endpoints if isinstance(endpoints, dict) else {}:
            if _is_host_network(str(name), facts):
                host(f"NetworkingConfig.EndpointsConfig.{name}", str(name))
            endpoint_options(f"NetworkingConfig.EndpointsConfig.{name}", _get(endpoints[name], "DriverOpts"))
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


def _network_create(body: Any, subnets: tuple[str, ...]) -> list[Finding]:
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


def _ipam_config(ipam: Any, subnets: tuple[str, ...]) -> list[Finding]:
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


# ---------------------------------------------------------------------- builds
def _build(query: Mapping[str, list[str]]) -> list[Finding]:
    out: list[Finding] = []
    mode = _first(query, "networkmode")
    if mode not in BUILD_NETWORK_MODES:
        what = (
            "another container's network namespace"
            if mode.lower().startswith("container:")
            else "the host's network namespace"
            if mode.lower() == "host"
            else f"network {mode!r}"
        )
        out.append(
            _f(
                "build.network-mode",
                "networkmode",
                mode,
                f"build steps may not run in {what}",
                "build with --network default, bridge or none",
            )
        )
    parent = _first(query, "cgroupparent")
    if parent:
        out.append(
            _f(
                "build.cgroup-parent",
                "cgroupparent",
                parent,
                "build steps may not choose the host cgroup they run under",
                "remove --cgroup-parent",
            )
        )
    isolation = _first(query, "isolation")
    if isolation.lower() not in BUILD_ISOLATION:  # the engine's IsDefault folds case
        out.append(
            _f(
                "build.isolation",
                "isolation",
                isolation,
                f"isolation {isolation!r} is not the engine's default",
                "remove --isolation",
            )
        )
    remote = _first(query, "remote")
    if remote not in BUILD_REMOTES:
        out.append(
            _f(
                "build.remote",
                "remote",
                remote,
                f"the engine would fetch the build context {remote!r} itself, from the host's network "
                "(reaching services on the host's loopback and metadata addresses)",
                "send the build context from the client (docker build DIR, or a tarball on stdin)",
            )
        )
    for i, opt in enumerate(query.get("securityopt") or []):
        out.append(
            _f(
                "build.security-opt",
                f"securityopt[{i}]",
                opt,
                "security options on a build change the confinement of its steps",
                "remove --security-opt",
            )
        )
    return out


# ---------------------------------------------------------------------- images
def _image_create(query: Mapping[str, list[str]]) -> list[Finding]:
    """``POST /images/create``: a pull (``fromImage``) or an import (``fromSrc``)."""
    source = _first(query, "fromSrc")
    if source in IMPORT_SOURCES:
        return []
    return [
        _f(
            "images.import-url",
            "fromSrc",
            source,
            f"the engine would download {source!r} itself, from the host's network (reaching "
            "services on the host's loopback and metadata addresses)",
            "download the archive on the client and import it from there "
            "(docker import FILE, or curl URL | docker import -)",
        )
    ]


# ------------------------------------------------------------ container update
def _update(body: Any) -> list[Finding]:
    out: list[Finding] = []
    allowed = {f.lower() for f in UPDATE_FIELDS}
    for key, value in body.items() if isinstance(body, dict) else ():
        if str(key).lower() not in allowed and not _zero(value):
            out.append(_finding_update(str(key), value))
    return out


def _finding_update(key: str, value: Any) -> Finding:
    return _f(
        "runtime.update-field",
        key,
        value,
        f"docker update may change limits and the restart policy only, not {key}",
        f"recreate the container to change {key}",
    )


# --------------------------------------------------------------------- plugins
def plugin_privileges(body: Any) -> list[tuple[str, str, str]]:
    """(field path, privilege name, value) for each value a client grants a plugin:
    the body of ``plugin.pull`` / ``plugin.upgrade`` (``[{Name, Description, Value}]``).
    A privilege without a value is listed with value ``""``."""
    out: list[tuple[str, str, str]] = []
    for i, p in enumerate(_items(body)):
        name = str(_get(p, "Name") or "")
        values = _items(_get(p, "Value"))
        if not values:
            out.append((f"[{i}].Name", name, ""))
        out += [(f"[{i}].Value[{j}]", name, str(v)) for j, v in enumerate(values)]
    return out


def _privilege_allowed(name: str, value: str, allowed: Iterable[str]) -> bool:
    return f"{name}={value}" in allowed


def _config_privileges(config: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The privileges a plugin's ``Config`` needs, named as the engine names them
    (plugin/backend_linux.go computePrivileges)."""
    out: list[tuple[str, str, str]] = []
    net = str(_get(_get(config, "Network"), "Type") or "")
    if net not in ("", "null", "bridge"):
        out.append(("Config.Network.Type", "network", net))
    if _get(config, "IpcHost"):
        out.append(("Config.IpcHost", "host ipc namespace", "true"))
    if _get(config, "PidHost"):
        out.append(("Config.PidHost", "host pid namespace", "true"))
    for i, m in enumerate(_items(_get(config, "Mounts"))):
        if _get(m, "Source") is not None:
            out.append((f"Config.Mounts[{i}].Source", "mount", str(_get(m, "Source"))))
    linux = _get(config, "Linux")
    for i, d in enumerate(_items(_get(linux, "Devices"))):
        if _get(d, "Path") is not None:
            out.append((f"Config.Linux.Devices[{i}].Path", "device", str(_get(d, "Path"))))
    if _get(linux, "AllowAllDevices"):
        out.append(("Config.Linux.AllowAllDevices", "allow-all-devices", "true"))
    for i, cap in enumerate(_items(_get(linux, "Capabilities"))):
        out.append((f"Config.Linux.Capabilities[{i}]", "capabilities", str(cap)))
    return out


def _settable_kind(name: str, field: str, config: Mapping[str, Any] | None) -> str:
    """What a ``plugin set`` entry changes: ``env``, ``args``, ``mount``, ``device``,
    or ``unknown`` (no plugin config to tell by). Mirrors plugin/v2 Plugin.Set, which
    looks the name up in Env, then Mounts, then Devices, then Args."""
    if field == "source":
        return "mount"
    if field == "path":
        return "device"
    if field == "value":
        return "env"  # env or args: mounts and devices have no settable "value" field
    if config is None:
        return "unknown"
    for kind, items in (
        ("env", _items(_get(config, "Env"))),
        ("mount", _items(_get(config, "Mounts"))),
        ("device", _items(_get(_get(config, "Linux"), "Devices"))),
    ):
        if any(str(_get(x, "Name") or "") == name for x in items):
            return kind
    if str(_get(_get(config, "Args"), "Name") or "") == name:
        return "args"
    return "env"  # the engine refuses a name it doesn't find


def _plugins(kind: str, body: Any, allowed: frozenset[str], facts: OperationFacts) -> list[Finding]:
    out: list[Finding] = []
    shown = ", ".join(sorted(allowed)) or "(none)"
    if kind in ("plugin.pull", "plugin.upgrade", "plugin.enable"):
        grants = (
            plugin_privileges(body)
            if kind != "plugin.enable"
            else (_config_privileges(facts.plugin_config) if facts.plugin_config is not None else [])
        )
        for path, name, value in grants:
            if not _privilege_allowed(name, value, allowed):
                out.append(
                    _f(
                        "plugin.privilege",
                        path,
                        f"{name}={value}",
                        f"the plugin would get {name} {value!r}, which is not on the allow-list ({shown})",
                        "use a plugin that needs no host access, or ask an operator "
                        f"to allow '{name}={value}' under plugins.privileges",
                    )
                )
    elif kind == "plugin.create":
        out.append(
            _f(
                "plugin.create",
                "(body)",
                None,
                "a plugin made from an uploaded archive gets whatever host access its "
                "config.json asks for, and the engine doesn't ask anyone to grant it",
                "push the plugin to a registry and install it with docker plugin install, "
                "which grants its privileges explicitly",
            )
        )
    elif kind == "plugin.set":
        for i, arg in enumerate(_items(body)):
            text = str(arg)
            key = text.partition("=")[0]
            dot = key.rfind(".")
            name, field = (key[:dot], key[dot + 1 :]) if dot > 0 else (key, "")
            what = _settable_kind(name, field, facts.plugin_config)
            if what in ("mount", "device", "unknown"):
                why = (
                    f"it repoints the plugin's {what} at a host path"
                    if what != "unknown"
                    else "Moorage can't tell whether it sets a variable or repoints a host mount or device"
                )
                out.append(
                    _f(
                        "plugin.set",
                        f"[{i}]",
                        text,
                        f"plugin setting {key!r} is refused: {why}",
                        "set environment variables as NAME.value=VALUE; plugin mounts and "
                        "devices can't be changed",
                    )
                )
    return out


# --------------------------------------------------------------- swarm, nodes
def _node(body: Any, facts: OperationFacts) -> list[Finding]:
    out: list[Finding] = []
    labels = _get(body, "Labels")
    labels = labels if isinstance(labels, dict) else {}
    current = facts.node_labels
    for key, value in labels.items():
        if not str(key).lower().startswith(MOORAGE_LABELS):
            continue
        if current is not None and current.get(str(key)) == value:
            continue  # kept as it was: Moorage's own bookkeeping, carried across the update
        out.append(
            _f(
                "node.labels",
                f"Labels.{key}",
                value,
                f"labels under {MOORAGE_LABELS} are set by Moorage from attestation, never by hand",
                "remove the label; enrol and attest the node to earn it",
            )
        )
    ours = {k: v for k, v in (current or {}).items() if k.lower().startswith(MOORAGE_LABELS)}
    for key, value in ours.items():
        if labels.get(key) != value and not any(f.path == f"Labels.{key}" for f in out):
            out.append(
                _f(
                    "node.labels",
                    f"Labels.{key}",
                    None,
                    f"label {key} is Moorage's projection of the node's enrolment and attestation; "
                    "an update can't remove it",
                    "keep the label (docker node update sends it back unchanged); "
                    "moorage node revoke withdraws an attestation",
                )
            )
    role = _get(body, "Role")
    attested = any(k.lower().startswith(MOORAGE_LABELS + "attested.") for k in ours)
    if str(role).lower() == "manager" and attested:
        out.append(
            _f(
                "node.promote",
                "Role",
                role,
                "an attested node can't become a manager: a manager changes the cluster it was attested in",
                "revoke the node's attestation first (moorage node revoke), or promote another node",
            )
        )
    return out


def _swarm(kind: str, body: Any) -> list[Finding]:
    out: list[Finding] = []
    if kind == "swarm.join":
        out.append(
            _f(
                "swarm.join",
                "RemoteAddrs",
                _get(body, "RemoteAddrs"),
                "a node that joins a swarm runs whatever that swarm's managers schedule, past Moorage",
                "join nodes with Moorage's cluster enrolment, or ask for an exception",
            )
        )
        return out
    ca = _get(_get(body, "Spec"), "CAConfig") if kind == "swarm.init" else _get(body, "CAConfig")
    where = "Spec.CAConfig" if kind == "swarm.init" else "CAConfig"
    if not _zero(_get(ca, "SigningCAKey")):
        out.append(
            _f(
                "swarm.ca",
                f"{where}.SigningCAKey",
                "(key)",
                "a root CA key from the caller lets its holder mint swarm node certificates",
                "let the swarm generate its own root CA (docker swarm ca --rotate)",
            )
        )
    if not _zero(_get(ca, "ExternalCAs")):
        out.append(
            _f(
                "swarm.ca",
                f"{where}.ExternalCAs",
                _get(ca, "ExternalCAs"),
                "an external CA issues the swarm's node certificates outside Moorage",
                "remove --external-ca",
            )
        )
    return out


# ---------------------------------------------------------------------- entry
def check_operation(
    kind: str,
    body: Any,
    query: Mapping[str, list[str]],
    object_ref: str | None,
    plugin_allow: frozenset[str] = frozenset(),
    facts: OperationFacts | None = None,
    subnets: tuple[str, ...] = (),
) -> list[Finding]:
    """The pack's findings for one operation, beside its runtime view's.

    ``plugin_allow`` holds ``NAME=VALUE`` privileges a policy allows plugins to be
    granted (``plugins.privileges``); empty by default. ``subnets`` holds the CIDR
    pools a policy allows explicit network IPAM settings in (``network.subnets``);
    empty by default, so any explicit subnet, range, gateway or auxiliary address is
    refused.
    """
    if kind in PLAIN or kind in READS or kind.startswith("moorage."):
        return []  # nothing that reaches the host; Moorage's own API is RBAC's
    if kind not in MODELLED:
        return [
            _f(
                "runtime.unknown-operation",
                "(operation)",
                kind,
                f"operation {kind} is not one Moorage has modelled, so it is refused",
                "use a documented Engine API endpoint; if this one is needed, ask for it to be modelled",
            )
        ]
    facts = facts or _NO_FACTS
    if kind == "image.build":
        return _build(query)
    if kind == "image.pull":
        return _image_create(query)
    if kind == "container.update":
        return _update(body)
    if kind == "node.update":
        return _node(body, facts)
    if kind == "build.grpc":
        return [
            _f(
                "build.grpc",
                "(stream)",
                None,
                "BuildKit's gRPC API lets the client grant its build steps the host network "
                "(the network.host entitlement), inside a stream Moorage can't read",
                "build with the classic API (DOCKER_BUILDKIT=0 docker build, or docker-compose); or an "
                "operator disables the engine's network-host build entitlement and grants an exception",
            )
        ]
    if kind.startswith("plugin."):
        return _plugins(kind, body, plugin_allow, facts)
    if kind.startswith("swarm."):
        return _swarm(kind, body)
    return _networks(kind, body, object_ref, facts, subnets)
