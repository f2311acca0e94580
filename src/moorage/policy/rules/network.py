"""Network names a team may create and join, host networking, and published ports. Pure."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from moorage.policy.rules.base import Finding, _finding, _get
from moorage.policy.schema import NetworkSpec

__all__ = [
    "NetworkView",
    "Publish",
    "check_network",
    "network_create",
    "network_host",
    "network_join",
    "publish_ip",
    "publish_port",
    "view_network",
]


# -------------------------------------------------------------------- network
@dataclass
class NetworkView:
    """The networks a request joins, creates or publishes on, with their field paths."""

    host: list[str] = field(default_factory=list)  # paths that ask for the host network
    joins: list[tuple[str, str]] = field(default_factory=list)  # (path, network name)
    creates: list[tuple[str, str]] = field(default_factory=list)
    publishes: list[tuple[str, str, str]] = field(default_factory=list)  # (path, host ip, host port)


_DEFAULT_NETS = frozenset({"", "default", "bridge", "none"})


def view_network(kind: str, body: object, object_ref: str | None) -> NetworkView:
    """The network view of a request, whatever endpoint or field spelling carried it."""
    v = NetworkView()
    if kind == "container.create":
        host = _get(body, "HostConfig")
        mode = str(_get(host, "NetworkMode") or "")
        if mode.lower() == "host":
            v.host.append("HostConfig.NetworkMode")
        elif mode.lower() not in _DEFAULT_NETS and not mode.lower().startswith("container:"):
            v.joins.append(("HostConfig.NetworkMode", mode))
        endpoints = _get(_get(body, "NetworkingConfig"), "EndpointsConfig")
        for name in endpoints if isinstance(endpoints, dict) else {}:
            if str(name).lower() == "host":
                v.host.append(f"NetworkingConfig.EndpointsConfig.{name}")
            elif str(name).lower() not in _DEFAULT_NETS and name != mode:
                v.joins.append((f"NetworkingConfig.EndpointsConfig.{name}", str(name)))
        bindings = _get(host, "PortBindings")
        for port, binds in (bindings if isinstance(bindings, dict) else {}).items():
            for i, b in enumerate(binds or []):
                v.publishes.append((f"HostConfig.PortBindings.{port}[{i}]", str(_get(b, "HostIp") or ""),
                                    str(_get(b, "HostPort") or "")))  # fmt: skip
        if _get(host, "PublishAllPorts"):
            v.publishes.append(("HostConfig.PublishAllPorts", "", ""))
    elif kind in ("service.create", "service.update"):
        task = _get(body, "TaskTemplate")
        for where, nets in (
            ("TaskTemplate.Networks", _get(task, "Networks")),
            ("Networks", _get(body, "Networks")),
        ):
            for i, net in enumerate(nets if isinstance(nets, list) else []):
                target = str(_get(net, "Target") or "")
                if target.lower() == "host":
                    v.host.append(f"{where}[{i}].Target")
                elif target:
                    v.joins.append((f"{where}[{i}].Target", target))
        ports = _get(_get(body, "EndpointSpec"), "Ports")
        for i, port in enumerate(ports if isinstance(ports, list) else []):
            # Every entry publishes: ingress and host mode (PublishMode=host) both
            # listen on every address of the node, and without a PublishedPort the
            # swarm (ingress) or the node (host mode) picks one.
            published = _get(port, "PublishedPort")
            v.publishes.append((f"EndpointSpec.Ports[{i}]", "", str(published) if published else ""))
    elif kind == "network.create":
        v.creates.append(("Name", str(_get(body, "Name") or "")))
    elif kind == "network.connect" and object_ref:
        if object_ref.lower() == "host":
            v.host.append("(network)")
        else:
            v.joins.append(("(network)", object_ref))
    return v


def _match_names(name: str, patterns: list[str], team: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p.replace("{team}", team)) for p in patterns)


def _port_ok(port: str, ranges: list[str]) -> bool:
    if not port:
        return True  # the engine picks a free ephemeral port
    try:
        low = high = int(port.split("-")[0])
        if "-" in port:
            high = int(port.split("-")[1])
    except ValueError:
        return False
    for r in ranges:
        a, _, b = r.partition("-")
        if int(a) <= low and high <= int(b or a):
            return True
    return False


def network_host(view: NetworkView, spec: NetworkSpec, team: str) -> list[Finding]:
    """``network.host``: no host network, when ``network.hostNetwork`` is false."""
    if spec.host_network is not False:
        return []
    return [_finding("network.host", path, "host", "the host network namespace is not allowed",
                     "use a user-defined network and publish ports") for path in view.host]  # fmt: skip


def network_create(view: NetworkView, spec: NetworkSpec, team: str) -> list[Finding]:
    """``network.create``: the networks a team creates match its patterns."""
    if spec.create is None:
        return []
    out: list[Finding] = []
    for path, name in view.creates:
        if not _match_names(name, spec.create, team):
            shown = ", ".join(p.replace("{team}", team) for p in spec.create)
            out.append(_finding("network.create", path, name, f"network name {name!r} is not one "
                                f"team {team} may create", f"name it to match {shown}"))  # fmt: skip
    return out


def network_join(view: NetworkView, spec: NetworkSpec, team: str) -> list[Finding]:
    """``network.join``: the networks a team joins match its patterns."""
    if spec.join is None:
        return []
    out: list[Finding] = []
    for path, name in view.joins:
        if not _match_names(name, spec.join, team):
            shown = ", ".join(p.replace("{team}", team) for p in spec.join)
            out.append(_finding("network.join", path, name, f"team {team} may not join network "
                                f"{name!r}", f"use a network matching {shown}"))  # fmt: skip
    return out


Publish = tuple[str, str, str]
"""One published port: its field path, host IP and host port."""


def publish_ip(item: Publish, spec: NetworkSpec) -> list[Finding]:
    """``network.publish-ip`` on one published port: it is on an allowed host IP."""
    path, ip, _ = item
    publish = spec.publish
    ips = publish.host_ips if publish else None
    if not ips or (ip or "0.0.0.0") in ips:
        return []
    return [_finding("network.publish-ip", path, ip or "0.0.0.0",
                     f"ports may be published only on {', '.join(ips)}",
                     f"publish as -p {ips[0]}:HOSTPORT:PORT")]  # fmt: skip


def publish_port(item: Publish, spec: NetworkSpec) -> list[Finding]:
    """``network.publish-port`` on one published port: its host port is in range."""
    path, _, port = item
    publish = spec.publish
    ports = publish.ports if publish else None
    if not ports or _port_ok(port, ports):
        return []
    return [_finding("network.publish-port", path, port, f"host port {port} is outside {', '.join(ports)}",
                     f"publish on a port in {ports[0]}")]  # fmt: skip


def check_network(view: NetworkView, spec: NetworkSpec, team: str) -> list[Finding]:
    """Host networking, network names for the team, and published host IPs and ports."""
    out = network_host(view, spec, team) + network_create(view, spec, team) + network_join(view, spec, team)
    for item in view.publishes:
        out += publish_ip(item, spec) + publish_port(item, spec)
    return out
