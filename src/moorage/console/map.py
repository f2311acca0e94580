"""The supply-chain map: which registry an image came from, the base it extends, the
vulnerable packages it carries, the workloads that run it, the networks they join,
the ports they publish and the nodes they run on.

:func:`build_map` is pure: a :class:`~moorage.admission.running.Snapshot` and scan
reports by image id in, a :class:`SupplyMap` out. With ``team`` the map holds only
that team's workloads and what they reach: another team's workloads, its networks
and the images only it runs never appear. Exports: :func:`to_json` (read back by
:func:`from_json`), :func:`to_dot` (Graphviz) and :func:`to_cyclonedx` (CycloneDX 1.5).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from moorage import __version__
from moorage.admission.running import ImageInfo, NetworkInfo, Port, Snapshot, Workload
from moorage.engine_api.reference import parse_image_ref
from moorage.images.cvss import rank
from moorage.images.scanner import Report

__all__ = [
    "KINDS", "Exposure", "MapEdge", "MapNode", "SupplyMap", "build_map", "exposures", "from_json",
    "to_cyclonedx", "to_dot", "to_json", "vulnerable_workloads",
]  # fmt: skip

KINDS = ("registry", "image", "base", "package", "service", "container", "network", "port", "node")
"""Node kinds in the order the chain runs, left to right; every edge points rightwards."""
_ORDER = {k: i for i, k in enumerate(KINDS)}
_WORKLOADS = ("service", "container")
_STOPPED = frozenset({"exited", "dead", "created", "removing"})  # nothing of it runs
_BASE_NAME, _BASE_DIGEST = "org.opencontainers.image.base.name", "org.opencontainers.image.base.digest"


@dataclass(frozen=True)
class MapNode:
    """One node: a stable ``id`` (``image:sha256:…``, ``service:ID``, ``pkg:deb/…``), its
    kind, a label for people, the teams it belongs to, the console's link, and
    JSON-ready attributes (``severity``: the worst unsuppressed finding it carries)."""

    id: str
    kind: str
    label: str
    teams: tuple[str, ...] = ()
    link: str = ""
    attrs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def team(self) -> str:
        """The teams as one string ("" for shared or unowned objects)."""
        return ", ".join(self.teams)

    def as_dict(self) -> dict[str, Any]:
        """The node in :func:`to_json`."""
        return {"id": self.id, "kind": self.kind, "label": self.label, "team": self.team,
                "teams": list(self.teams), "link": self.link, "attrs": dict(self.attrs)}  # fmt: skip


@dataclass(frozen=True)
class MapEdge:
    """``source`` → ``target`` (from a kind to one further right), and what links them:
    provides, extends, contains, runs, joins, publishes, runs-on or reachable-on."""

    source: str
    target: str
    rel: str


@dataclass(frozen=True)
class SupplyMap:
    """The graph: nodes by id (ordered by kind, then id), edges, and whose map it is."""

    nodes: Mapping[str, MapNode]
    edges: tuple[MapEdge, ...]
    team: str | None = None

    @cached_property
    def _adjacent(self) -> dict[str, list[tuple[str, str, bool]]]:
        adj: dict[str, list[tuple[str, str, bool]]] = {}
        for e in self.edges:
            adj.setdefault(e.source, []).append((e.target, e.rel, True))
            adj.setdefault(e.target, []).append((e.source, e.rel, False))
        return adj

    def of_kind(self, *kinds: str) -> list[MapNode]:
        """The nodes of these kinds."""
        return [n for n in self.nodes.values() if n.kind in kinds]

    def neighbours(self, node_id: str, *kinds: str, rel: str = "", out: bool | None = None) -> list[MapNode]:
        """The nodes linked to ``node_id``: of these kinds, by ``rel``, and only along
        (``out=True``) or against (``out=False``) the edges' direction, when given."""
        return [self.nodes[o] for o, r, forward in self._adjacent.get(node_id, ())
                if (not kinds or self.nodes[o].kind in kinds) and rel in ("", r) and out in (None, forward)]  # fmt: skip


@dataclass(frozen=True)
class Exposure:
    """A running workload whose image holds a package with unsuppressed findings: from
    which registry, reachable on which ports, running on which nodes."""

    workload: str  # node id
    workload_label: str
    team: str
    image: str  # label
    registry: str
    package: str
    version: str
    package_id: str  # node id
    severity: str
    findings: tuple[str, ...]
    ports: tuple[str, ...]
    nodes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The exposure in :func:`to_json`."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def _worst(severities: Iterable[str]) -> str:
    return max(severities, key=rank, default="none")


def _short(digest: str) -> str:
    return digest.partition(":")[2][:12] or digest[:12]


def _label(ref: str) -> str:
    """``name:tag`` of a reference (a short digest only when there is no tag)."""
    name, _, digest = ref.partition("@")
    return name if not digest or ":" in name.rpartition("/")[2] else f"{name}@{_short(digest)}"


def _registries(refs: Iterable[str]) -> set[str]:
    return {r.registry for r in map(parse_image_ref, refs) if r.registry and not r.is_id}


def _fold(snap: Snapshot) -> list[Workload]:
    """Services and lone containers; a task's container is folded into its service (one
    made up from the task's labels when this engine doesn't list services)."""
    out = {w.id: w for w in snap.workloads if w.kind == "service" or not w.service}
    for c in snap.workloads:
        if c.kind == "container" and c.service:
            name = c.labels.get("com.docker.swarm.service.name", c.service[:12])
            svc = out.get(c.service) or replace(c, kind="service", id=c.service, name=name, service="")
            out[c.service] = replace(svc, nodes=tuple(sorted({*svc.nodes, *c.nodes})), image_id=svc.image_id or c.image_id)  # fmt: skip
    return list(out.values())


def _parent(img: ImageInfo, by_layers: Mapping[tuple[str, ...], ImageInfo]) -> ImageInfo | None:
    """The local image whose layers are the longest proper prefix of ``img``'s."""
    for n in range(len(img.layers) - 1, 0, -1):
        if (found := by_layers.get(img.layers[:n])) is not None:
            return found
    return None


class _Graph:
    """Nodes and edges as they are found, with the teams gathered for each node."""

    def __init__(self) -> None:
        self.nodes: dict[str, MapNode] = {}
        self.teams: dict[str, set[str]] = {}
        self.edges: set[tuple[str, str, str]] = set()

    def add(self, nid: str, kind: str, label: str, link: str = "", teams: Iterable[str] = (), **attrs: Any) -> str:  # fmt: skip
        if nid not in self.nodes:
            self.nodes[nid] = MapNode(nid, kind, label, (), link, attrs)
        self.teams.setdefault(nid, set()).update(t for t in teams if t)
        return nid

    def node(self, snap: Snapshot, node_id: str) -> str:
        host = snap.nodes[node_id].hostname or node_id[:12]
        return self.add(f"node:{node_id}", "node", host, f"/nodes/{node_id}", role=snap.nodes[node_id].role)

    def done(self, team: str | None) -> SupplyMap:
        for src, pid, rel in self.edges:  # a package belongs to the teams of the images holding it
            if rel == "contains":
                self.teams[pid] |= self.teams[src]
        ordered = sorted(self.nodes.values(), key=lambda n: (_ORDER[n.kind], n.id))
        nodes = {n.id: replace(n, teams=tuple(sorted(self.teams[n.id]))) for n in ordered}
        return SupplyMap(nodes, tuple(MapEdge(*e) for e in sorted(self.edges)), team)


def build_map(snapshot: Snapshot, reports: Mapping[str, Report], team: str | None = None) -> SupplyMap:
    """The map of what runs (only ``team``'s workloads and what they reach, when given).
    ``reports`` are scan reports by image id (or digest); an image without one has
    its packages unknown. Only packages with unsuppressed findings become nodes."""
    g = _Graph()
    nets = {**{n.name: n for n in snapshot.networks.values()}, **snapshot.networks}
    used: dict[str, tuple[ImageInfo | None, set[str], set[str]]] = {}  # image node: info, refs, teams
    for w in _fold(snapshot):
        if team is not None and w.team != team:
            continue
        ref = w.image if w.image and not parse_image_ref(w.image).is_id else ""
        registry = min(_registries([ref]), default="")
        wid = g.add(f"{w.kind}:{w.id}", w.kind, w.name or w.id[:12], f"/workloads/{w.kind}/{w.id}", [w.team],
                    owner=w.owner, state=w.state, image=w.image, registry=registry)  # fmt: skip
        info = snapshot.images.get(w.image_id) or (snapshot.image_for(w.image) if w.image else None)
        pinned = parse_image_ref(w.image).digest if w.image else None
        iid = "image:" + (info.id if info else pinned or w.image or "unknown")
        entry = used.setdefault(iid, (info, set(), set()))
        entry[1].update([ref] if ref else [])
        entry[2].add(w.team)
        g.edges.add((iid, wid, "runs"))
        for name in w.networks:
            net = nets.get(name) or NetworkInfo(name, name)
            if net.team and net.team != w.team:
                continue  # another team's network is never drawn in anyone else's map
            nid = g.add(f"network:{net.id}", "network", net.name, f"/networks/{net.id}", [net.team],
                        driver=net.driver, scope=net.scope)  # fmt: skip
            g.edges.add((wid, nid, "joins"))
        here = [snapshot.local_node] if w.kind == "container" else []  # a service has its tasks' nodes
        on = [n for n in w.nodes or here if n in snapshot.nodes]
        g.edges.update((wid, g.node(snapshot, n), "runs-on") for n in on)
        for p in w.ports:
            pid = g.add(f"port:{w.id}:{p.published}/{p.protocol}", "port", _port_label(p),
                        f"/workloads/{w.kind}/{w.id}", [w.team], published=p.published, target=p.target,
                        protocol=p.protocol, mode=p.mode)  # fmt: skip
            g.edges.add((wid, pid, "publishes"))
            reach = snapshot.nodes if p.mode == "ingress" else on  # the routing mesh listens on every node
            g.edges.update((pid, g.node(snapshot, n), "reachable-on") for n in reach)
    for iid, (info, refs, teams) in used.items():
        _image(g, iid, "image", info, refs, teams, reports)
    by_layers = {img.layers: img for img in snapshot.images.values() if img.layers}
    for iid, (info, _, teams) in used.items():  # bases, once every image that runs has its kind
        _bases(g, snapshot, by_layers, iid, info, teams, reports)
    return g.done(team)


def _port_label(p: Port) -> str:
    return f"{p.host_ip + ':' if p.host_ip else ''}{p.published}->{p.target}/{p.protocol}"


def _bases(g: _Graph, snap: Snapshot, by_layers: Mapping[tuple[str, ...], ImageInfo], iid: str,
           info: ImageInfo | None, teams: set[str], reports: Mapping[str, Report]) -> None:  # fmt: skip
    """The chain of base images under one image: local images whose layers it extends,
    else the base its builder named in its labels."""
    while info is not None:
        parent, named = _parent(info, by_layers), info.labels.get(_BASE_NAME, "")
        parent = parent or (snap.image_for(named) if named else None)
        if parent is None:
            if named:
                bid = f"image:{info.labels.get(_BASE_DIGEST) or named}"
                g.edges.add((iid, _image(g, bid, "base", None, {named}, teams, reports), "extends"))
            return
        base = _image(g, f"image:{parent.id}", "base", parent, set(), teams, reports)
        g.edges.add((iid, base, "extends"))
        iid, info = base, parent


def _image(g: _Graph, iid: str, kind: str, info: ImageInfo | None, refs: set[str], teams: set[str],
           reports: Mapping[str, Report]) -> str:  # fmt: skip
    """An image (or base) node, the registries it came from and its vulnerable packages.
    Its label and registries come from the references its workloads name, so a tag
    another team gave the same image is not shown."""
    if iid in g.nodes:
        g.add(iid, kind, "", teams=teams)
        return iid
    names = {parse_image_ref(r).name for r in refs}
    mine = [d for d in (info.repo_digests if info else ()) if not names or d.partition("@")[0] in names]
    digests = [r.partition("@")[2] for r in sorted(refs) if "@" in r] + [d.partition("@")[2] for d in mine]
    digest = digests[0] if digests else ("" if info else iid.removeprefix("image:"))
    tags = sorted(refs) or list(info.repo_tags[:1] if info else ())
    label = _label(tags[0]) if tags else f"@{_short(digest or iid[6:])}"
    report = (reports.get(info.id) if info else None) or (reports.get(digest) if digest else None)
    found: dict[str, list[Any]] = {}
    for f in report.active if report else ():
        pid = f.purl if f.purl.startswith("pkg:") else f"pkg:generic/{f.package}@{f.version}"
        found.setdefault(pid, []).append(f)
    g.add(iid, kind, label, f"/images/{digest or (info.id if info else iid[6:])}", teams, digest=digest,
          image_id=info.id if info else "", references=sorted(refs), size=info.size if info else 0,
          severity=_worst(f.severity for fs in found.values() for f in fs), vulnerable_packages=len(found),
          packages=len(report.inventory.packages) if report else None)  # fmt: skip
    for reg in sorted(_registries([*refs, *mine] or (info.repo_tags if info else ()))):
        g.edges.add((g.add(f"registry:{reg}", "registry", reg), iid, "provides"))
    for pid, fs in found.items():
        fs.sort(key=lambda f: (-rank(f.severity), f.id))
        f = fs[0]
        g.add(pid, "package", f"{f.package}@{f.version}", "", (), name=f.package, version=f.version,
              ecosystem=f.ecosystem, purl=f.purl, severity=f.severity,
              findings=[{"id": x.id, "severity": x.severity, "fixed": x.fixed} for x in fs])  # fmt: skip
        g.edges.add((iid, pid, "contains"))
    return iid


def exposures(graph: SupplyMap) -> list[Exposure]:
    """Every (running workload, vulnerable package of its image) pair, worst first."""
    out = []
    for w in graph.of_kind(*_WORKLOADS):
        if w.attrs.get("state") in _STOPPED:
            continue
        ports = tuple(sorted(p.label for p in graph.neighbours(w.id, "port")))
        nodes = tuple(sorted({n.label for n in graph.neighbours(w.id, "node")}))
        registry = str(w.attrs.get("registry") or "")
        for img in graph.neighbours(w.id, "image", rel="runs"):
            for p in graph.neighbours(img.id, "package"):
                a = p.attrs
                ids = tuple(f["id"] for f in a["findings"])
                out.append(Exposure(w.id, w.label, w.team, img.label, registry, a["name"],
                                    a["version"], p.id, a["severity"], ids, ports, nodes))  # fmt: skip
    return sorted(out, key=lambda e: (-rank(e.severity), e.team, e.workload_label, e.package, e.version))


def vulnerable_workloads(graph: SupplyMap, package: str, version: str | None = None) -> list[Exposure]:
    """Which running workloads hold ``package`` (a name, or a purl) at a vulnerable
    version (at ``version``, when given): from which registry, on which ports and nodes."""
    want = package.strip().lower()
    found = [e for e in exposures(graph) if want in (e.package.lower(), e.package_id.lower())]
    return [e for e in found if version is None or e.version == version]


def to_json(graph: SupplyMap, exposed: Sequence[Exposure] | None = None) -> dict[str, Any]:
    """Nodes, edges, counts by kind and the exposures (all, unless ``exposed`` is given)."""
    found = exposures(graph) if exposed is None else exposed
    return {"team": graph.team, "counts": {k: len(graph.of_kind(k)) for k in KINDS},
            "nodes": [n.as_dict() for n in graph.nodes.values()],
            "edges": [{"source": e.source, "target": e.target, "rel": e.rel} for e in graph.edges],
            "exposures": [e.as_dict() for e in found]}  # fmt: skip


def from_json(doc: Mapping[str, Any]) -> SupplyMap:
    """The map :func:`to_json` wrote."""
    nodes = [
        MapNode(n["id"], n["kind"], n["label"], tuple(n["teams"]), n["link"], n["attrs"])
        for n in doc["nodes"]
    ]
    edges = tuple(MapEdge(e["source"], e["target"], e["rel"]) for e in doc["edges"])
    return SupplyMap({n.id: n for n in nodes}, edges, doc.get("team"))


_COLOURS = {"critical": "#dc2626", "high": "#f97316", "medium": "#facc15", "low": "#93c5fd",
            "unknown": "#d1d5db"}  # fmt: skip
_GROUPS = {"service": "workloads", "container": "workloads", "registry": "registries", "base": "base images",
           "package": "vulnerable packages", "port": "published ports"}  # fmt: skip


def _q(text: object) -> str:
    """A DOT quoted string; every id, label and attribute value goes through it."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: SupplyMap) -> str:
    """Graphviz DOT: left to right, one cluster per kind, each node filled with the
    colour of the worst finding it carries and linked to its console page."""
    title = "supply chain" + (f" of {graph.team}" if graph.team is not None else "")
    out = [f"digraph {_q(title)} {{", f"  rankdir={_q('LR')}; label={_q(title)}; labelloc={_q('t')};",
           '  node [shape="box", style="rounded,filled", fontname="Helvetica", fillcolor="#ffffff"];',
           '  edge [color="#6b7280", fontsize="9"];']  # fmt: skip
    groups: dict[str, list[MapNode]] = {}
    for n in graph.nodes.values():
        groups.setdefault(_GROUPS.get(n.kind, n.kind + "s"), []).append(n)
    for i, (name, members) in enumerate(groups.items()):
        out.append(f'  subgraph {_q(f"cluster_{i}")} {{ label={_q(name)}; style="dashed"; color="#9ca3af";')
        for n in members:
            sev = str(n.attrs.get("severity") or "")
            label = "\n".join(x for x in (n.label, n.team, sev if sev in _COLOURS else "") if x)
            link = f", URL={_q(n.link)}" if n.link else ""
            fill = _COLOURS.get(sev, "#ffffff")
            out.append(f"    {_q(n.id)} [label={_q(label)}, fillcolor={_q(fill)}, class={_q(n.kind)}{link}];")
        out.append("  }")
    out.extend(f"  {_q(e.source)} -> {_q(e.target)} [label={_q(e.rel)}];" for e in graph.edges)
    return "\n".join([*out, "}", ""])


def _props(**values: object) -> list[dict[str, str]]:
    return [{"name": f"moorage:{k}", "value": str(v)} for k, v in values.items() if v not in (None, "")]


def _component(n: MapNode) -> dict[str, Any]:
    """An image or a package as a CycloneDX component."""
    a = n.attrs
    if n.kind == "package":
        return {"type": "library", "bom-ref": n.id, "name": a["name"], "version": a["version"],
                **({"purl": a["purl"]} if a.get("purl") else {})}  # fmt: skip
    repo, colon, tag = n.label.rpartition(":")
    name, tag = (repo, tag) if colon and "/" not in tag else (n.label, "")
    props = _props(kind=n.kind, team=n.team, image_id=a.get("image_id"), packages=a.get("packages"))
    comp = {"type": "container", "bom-ref": n.id, "name": name, "properties": props}
    if tag or a.get("digest"):
        comp["version"] = tag or a["digest"]
    if str(a.get("digest")).startswith("sha256:"):
        comp["hashes"] = [{"alg": "SHA-256", "content": a["digest"][7:]}]
    return comp


def _service(graph: SupplyMap, n: MapNode) -> dict[str, Any]:
    """A workload as a CycloneDX service: its team, endpoints (published ports on the
    nodes that answer them), networks and nodes."""
    ends = sorted({f"{p.attrs['protocol']}://{h.label}:{p.attrs['published']}"
                   for p in graph.neighbours(n.id, "port") if p.attrs["published"]
                   for h in graph.neighbours(p.id, "node")})  # fmt: skip
    a = n.attrs
    svc: dict[str, Any] = {"bom-ref": n.id, "name": n.label, "properties": _props(
        kind=n.kind, team=n.team, owner=a.get("owner"), state=a.get("state"), image=a.get("image"),
        registry=a.get("registry"), networks=", ".join(x.label for x in graph.neighbours(n.id, "network")),
        nodes=", ".join(x.label for x in graph.neighbours(n.id, "node", rel="runs-on")))}  # fmt: skip
    if n.team:
        svc["group"] = n.team
    if ends:
        svc["endpoints"] = ends
    return svc


def to_cyclonedx(graph: SupplyMap, now: dt.datetime | None = None) -> dict[str, Any]:
    """A CycloneDX 1.5 BOM of the deployment: images and packages as components,
    workloads as services, findings as vulnerabilities, and ``dependencies`` running
    deployment → every workload → its image → base images and packages."""
    components, services, deps = [], [], []
    vulns: dict[str, dict[str, Any]] = {}
    for n in graph.nodes.values():
        if n.kind in _WORKLOADS:
            services.append(_service(graph, n))
            after = graph.neighbours(n.id, "image", rel="runs")
        elif n.kind in ("image", "base", "package"):
            components.append(_component(n))
            after = graph.neighbours(n.id, "base", "image", "package", out=True)
        else:
            continue
        deps.append({"ref": n.id, "dependsOn": sorted(o.id for o in after)})
        for f in n.attrs.get("findings", ()) if n.kind == "package" else ():
            sev = f["severity"] if f["severity"] in _COLOURS else "unknown"
            v = vulns.setdefault(f["id"], {"bom-ref": f"vuln:{f['id']}", "id": f["id"],
                                           "ratings": [{"severity": sev}], "affects": []})  # fmt: skip
            v["affects"].append({"ref": n.id})
    root = "deployment" + (f":{graph.team}" if graph.team is not None else "")
    deps.insert(0, {"ref": root, "dependsOn": sorted(s["bom-ref"] for s in services)})
    when = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tool = {"type": "application", "name": "moorage", "version": __version__}
    return {"bomFormat": "CycloneDX", "specVersion": "1.5", "serialNumber": f"urn:uuid:{uuid.uuid4()}",
            "version": 1, "metadata": {"timestamp": when, "tools": {"components": [tool]},
                                       "component": {"type": "platform", "bom-ref": root, "name": root}},
            "components": components, "services": services, "dependencies": deps,
            "vulnerabilities": list(vulns.values())}  # fmt: skip
