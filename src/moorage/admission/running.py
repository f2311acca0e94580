"""What is running, as data: containers and services with the request that would
create each (the object the engine runs, judged again by the same pure
``evaluate``), the images they use, the networks, ports and nodes they reach.

:func:`build_snapshot` is pure: it takes the engine's own answers (inspect and list
documents) and returns a :class:`Snapshot`. :func:`read_snapshot` asks one engine
for them. Compliance, the supply-chain map and the console all read this one view.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from moorage.admission.tenancy import OWNER, TEAM
from moorage.engine import EngineError

__all__ = [
    "ImageInfo",
    "NetworkInfo",
    "NodeInfo",
    "Port",
    "Snapshot",
    "Workload",
    "build_snapshot",
    "container_body",
    "read_snapshot",
    "spec_hash",
]

SERVICE_LABEL = "com.docker.swarm.service.id"


@dataclass(frozen=True)
class Port:
    """A published port: where a workload is reachable from outside."""

    target: int
    published: int
    protocol: str = "tcp"
    host_ip: str = ""
    mode: str = "host"  # host (container or host-mode service), ingress (the routing mesh)


@dataclass(frozen=True)
class Workload:
    """A running container or a service, with the create request it stands for."""

    kind: Literal["container", "service"]
    id: str
    name: str
    team: str  # the owner's team, stamped by the gateway ("" when nobody owns it)
    owner: str
    image: str  # the reference as the spec names it
    image_id: str  # the local image id ("" when the engine doesn't have it)
    body: Mapping[str, Any]  # the container.create or service.create body it runs
    spec_hash: str
    networks: tuple[str, ...] = ()  # network names
    ports: tuple[Port, ...] = ()
    nodes: tuple[str, ...] = ()  # node ids its tasks (or it) run on
    service: str = ""  # a swarm task's container: its service id
    state: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def request_kind(self) -> str:
        """The operation that creates such an object."""
        return "container.create" if self.kind == "container" else "service.create"


@dataclass(frozen=True)
class ImageInfo:
    """One local image."""

    id: str
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    size: int = 0
    layers: tuple[str, ...] = ()  # RootFS diff ids, base first
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkInfo:
    """One network."""

    id: str
    name: str
    driver: str = ""
    scope: str = ""
    team: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeInfo:
    """One Swarm node (or the single engine, when there is no swarm)."""

    id: str
    hostname: str
    role: str = ""
    availability: str = ""
    state: str = ""
    address: str = ""
    leader: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)  # spec labels (Moorage projects them)
    engine_labels: Mapping[str, str] = field(default_factory=dict)  # the node's own (claims nothing)


@dataclass(frozen=True)
class Snapshot:
    """The engine's state at one moment."""

    workloads: tuple[Workload, ...] = ()
    images: Mapping[str, ImageInfo] = field(default_factory=dict)  # by image id
    networks: Mapping[str, NetworkInfo] = field(default_factory=dict)  # by id
    nodes: Mapping[str, NodeInfo] = field(default_factory=dict)  # by id
    local_node: str = ""  # the node id of the engine asked ("" without a swarm)

    def image_for(self, ref_or_id: str) -> ImageInfo | None:
        """The local image a reference or id names, when the engine has it."""
        if ref_or_id in self.images:
            return self.images[ref_or_id]
        name, _, digest = ref_or_id.partition("@")
        for img in self.images.values():
            if ref_or_id in img.repo_tags or (
                digest and any(d.endswith("@" + digest) for d in img.repo_digests)
            ):
                return img
            if not digest and ":" not in name.rpartition("/")[2] and f"{name}:latest" in img.repo_tags:
                return img
        return None

    def top_level(self) -> tuple[Workload, ...]:
        """The workloads compliance judges: services, and containers that are not a
        service's task (a task runs its service's spec)."""
        return tuple(w for w in self.workloads if not w.service)


def spec_hash(body: object) -> str:
    """A stable hash of a spec: its canonical JSON."""
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _labels(doc: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}


# What the engine fills in when a create leaves it out (moby's oci defaults): inspect
# shows them, a create that asked for nothing did not say them.
_MASKED = frozenset(
    {
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
    }
)
_READONLY = frozenset({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"})


def _as_created(host_config: Mapping[str, Any], cgroup_version: str) -> dict[str, Any]:
    """A container's host config without the defaults the engine filled in: the
    masked and read-only paths (when at least the defaults), and the cgroup namespace
    mode that is the daemon's default for its cgroup version."""
    hc = dict(host_config)
    if set(hc.get("MaskedPaths") or ()) >= _MASKED:
        hc.pop("MaskedPaths", None)
    if set(hc.get("ReadonlyPaths") or ()) >= _READONLY:
        hc.pop("ReadonlyPaths", None)
    if hc.get("CgroupnsMode") == ("host" if cgroup_version == "1" else "private"):
        hc.pop("CgroupnsMode", None)
    return hc


def container_body(inspect: Mapping[str, Any], cgroup_version: str = "2") -> dict[str, Any]:
    """The ``container.create`` body of a container, from its inspect document: its
    ``Config``, its ``HostConfig`` (less the defaults the engine filled in) and the
    endpoints it was attached with."""
    body = dict(inspect.get("Config") or {})
    body["HostConfig"] = _as_created(inspect.get("HostConfig") or {}, cgroup_version)
    nets = (inspect.get("NetworkSettings") or {}).get("Networks") or {}
    endpoints = {}
    for name, ep in nets.items():
        ep = ep or {}
        keep = {k: ep[k] for k in ("Aliases", "IPAMConfig", "Links", "DriverOpts", "MacAddress") if ep.get(k)}
        endpoints[name] = keep
    if endpoints:
        body["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    return body


def _container_ports(inspect: Mapping[str, Any]) -> tuple[Port, ...]:
    out = []
    bindings = (inspect.get("HostConfig") or {}).get("PortBindings") or {}
    for spec, binds in sorted(bindings.items()):
        port, _, proto = str(spec).partition("/")
        for b in binds or ():
            hp = str((b or {}).get("HostPort") or "0")
            out.append(
                Port(int(port), int(hp) if hp.isdigit() else 0, proto or "tcp", (b or {}).get("HostIp", ""))
            )
    return tuple(out)


def _service_ports(svc: Mapping[str, Any]) -> tuple[Port, ...]:
    ports = (
        ((svc.get("Endpoint") or {}).get("Ports"))
        or ((svc.get("Spec") or {}).get("EndpointSpec") or {}).get("Ports")
        or []
    )
    return tuple(
        Port(
            int(p.get("TargetPort") or 0),
            int(p.get("PublishedPort") or 0),
            p.get("Protocol") or "tcp",
            "",
            p.get("PublishMode") or "ingress",
        )
        for p in ports
    )


# fmt: off
def build_snapshot(
    containers: Iterable[Mapping[str, Any]],
    services: Iterable[Mapping[str, Any]] = (),
    tasks: Iterable[Mapping[str, Any]] = (),
    images: Iterable[Mapping[str, Any]] = (),
    networks: Iterable[Mapping[str, Any]] = (),
    nodes: Iterable[Mapping[str, Any]] = (),
    info: Mapping[str, Any] | None = None,
) -> Snapshot:
    """The snapshot of the engine's answers: container inspects, ``/services``,
    ``/tasks``, image inspects, ``/networks``, ``/nodes`` and ``/info``. Pure."""
    info = info or {}
    local = str(((info.get("Swarm") or {}).get("NodeID")) or "")
    nets = {
        n["Id"]: NetworkInfo(n["Id"], n.get("Name", ""), n.get("Driver", ""), n.get("Scope", ""),
                             _labels(n.get("Labels")).get(TEAM, ""), _labels(n.get("Labels")))
        for n in networks
        if isinstance(n, dict) and n.get("Id")
    }
    net_names = {n.id: n.name for n in nets.values()}
    imgs = {}
    for i in images:
        if not isinstance(i, dict) or not i.get("Id"):
            continue
        imgs[i["Id"]] = ImageInfo(
            i["Id"], tuple(i.get("RepoTags") or ()), tuple(i.get("RepoDigests") or ()),
            int(i.get("Size") or 0), tuple((i.get("RootFS") or {}).get("Layers") or ()),
            _labels((i.get("Config") or {}).get("Labels")))
    node_map = {}
    for n in nodes:
        if not isinstance(n, dict) or not n.get("ID"):
            continue
        spec, desc, status = n.get("Spec") or {}, n.get("Description") or {}, n.get("Status") or {}
        node_map[n["ID"]] = NodeInfo(
            n["ID"], (desc.get("Hostname") or ""), spec.get("Role", ""), spec.get("Availability", ""),
            status.get("State", ""), status.get("Addr", ""),
            bool((n.get("ManagerStatus") or {}).get("Leader")),
            _labels(spec.get("Labels")), _labels((desc.get("Engine") or {}).get("Labels")))
    if not node_map:
        name = str(info.get("Name") or "engine")
        node_map[name] = NodeInfo(name, name, "engine", "active", "ready")
        local = name
    running: dict[str, set[str]] = {}
    for t in tasks:
        if isinstance(t, dict) and (t.get("Status") or {}).get("State") == "running" and t.get("NodeID"):
            running.setdefault(str(t.get("ServiceID")), set()).add(str(t["NodeID"]))
    out: list[Workload] = []
    for svc in services:
        if not isinstance(svc, dict) or not svc.get("ID"):
            continue
        spec = svc.get("Spec") or {}
        labels = _labels(spec.get("Labels"))
        cs = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
        image = str(cs.get("Image") or "")
        attached = (spec.get("TaskTemplate") or {}).get("Networks") or spec.get("Networks") or []
        net_list = tuple(
            str(net_names.get(a.get("Target", ""), a.get("Target", "")))
            for a in attached
            if isinstance(a, dict)
        )
        img = None
        for candidate in (image, image.partition("@")[0]):
            img = img or _find_image(imgs, candidate)
        out.append(Workload(
            "service", svc["ID"], str(spec.get("Name") or svc["ID"][:12]), labels.get(TEAM, ""),
            labels.get(OWNER, ""), image, img.id if img else "", spec, spec_hash(spec), net_list,
            _service_ports(svc), tuple(sorted(running.get(svc["ID"], ()))), "", "running", labels))
    for c in containers:
        if not isinstance(c, dict) or not c.get("Id"):
            continue
        config = c.get("Config") or {}
        labels = _labels(config.get("Labels"))
        body = container_body(c, str(info.get("CgroupVersion") or "2"))
        nets_of = tuple(((c.get("NetworkSettings") or {}).get("Networks") or {}).keys())
        out.append(Workload(
            "container", c["Id"], str(c.get("Name") or "").lstrip("/"), labels.get(TEAM, ""),
            labels.get(OWNER, ""), str(config.get("Image") or ""), str(c.get("Image") or ""), body,
            spec_hash(body), nets_of, _container_ports(c), (local,) if local else (),
            labels.get(SERVICE_LABEL, ""), str((c.get("State") or {}).get("Status") or ""), labels))
    return Snapshot(tuple(out), imgs, nets, node_map, local)
# fmt: on


def _find_image(imgs: Mapping[str, ImageInfo], ref: str) -> ImageInfo | None:
    if not ref:
        return None
    return Snapshot(images=imgs).image_for(ref)


def read_snapshot(engine: Any) -> Snapshot:
    """Ask one engine (a synchronous :class:`~moorage.engine.EngineClient`) for its state.

    A manager answers for the swarm (services, tasks, nodes); containers, images and
    networks are this engine's own."""
    info = engine.call("GET", "/info") or {}
    swarm = bool((info.get("Swarm") or {}).get("ControlAvailable"))
    listed = engine.call("GET", "/containers/json?all=1") or []
    containers = [_inspect(engine, f"/containers/{quote(c['Id'])}/json") for c in listed]
    images = [
        _inspect(engine, f"/images/{quote(i['Id'], safe='')}/json")
        for i in engine.call("GET", "/images/json") or []
    ]
    services = engine.call("GET", "/services") if swarm else []
    tasks = engine.call("GET", "/tasks") if swarm else []
    nodes = engine.call("GET", "/nodes") if swarm else []
    networks = engine.call("GET", "/networks") or []
    return build_snapshot(
        [c for c in containers if c],
        services or [],
        tasks or [],
        [i for i in images if i],
        networks,
        nodes or [],
        info,
    )


def _inspect(engine: Any, path: str) -> Any:
    """An inspect document, or None for an object removed since it was listed."""
    try:
        return engine.call("GET", path)
    except EngineError as exc:
        if exc.status == 404:
            return None
        raise
