"""The supply-chain map: registry → image → base image → vulnerable packages → workloads
→ networks → published ports → nodes. :func:`build_map` is pure (a
:class:`~moorage.admission.running.Snapshot` and scan reports by image id in); with
``team`` the map holds only that team's workloads and what they reach, never another
team's workloads, networks or the images only it runs. Exports: JSON, DOT, CycloneDX 1.5."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from moorage import __version__
from moorage.admission.running import ImageInfo, NetworkInfo, Snapshot, Workload
from moorage.engine_api.reference import parse_image_ref
from moorage.images.cvss import rank
from moorage.images.scanner import Report

__all__ = [
    "KINDS", "Exposure", "MapEdge", "MapNode", "SupplyMap", "build_map", "exposures", "to_cyclonedx",
    "to_dot", "to_json", "vulnerable_workloads",
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
    def _adjacent(self) -> dict[tuple[str, str], list[tuple[MapNode, str, bool]]]:
        # (node id, kind): its neighbours of that kind, without a walk over an image's 1,000 workloads
        adj: dict[tuple[str, str], list[tuple[MapNode, str, bool]]] = {}
        for e in self.edges:
            a, b = self.nodes[e.source], self.nodes[e.target]
            adj.setdefault((a.id, b.kind), []).append((b, e.rel, True))
            adj.setdefault((b.id, a.kind), []).append((a, e.rel, False))
        return adj

    def of_kind(self, *kinds: str) -> list[MapNode]:
        """The nodes of these kinds."""
        return [n for n in self.nodes.values() if n.kind in kinds]

    def neighbours(self, node_id: str, *kinds: str, rel: str = "", out: bool | None = None) -> list[MapNode]:
        """The nodes linked to ``node_id``: of these kinds, by ``rel``, and only along
        (``out=True``) or against (``out=False``) the edges' direction, when given."""
        found = (self._adjacent.get((node_id, k), ()) for k in kinds or KINDS)
        return [n for near in found for n, r, fwd in near if rel in ("", r) and out in (None, fwd)]


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
        return {**vars(self), "findings": [*self.findings], "ports": [*self.ports], "nodes": [*self.nodes]}


# fmt: off
def _label(ref: str) -> str:  # name:tag, or name@short digest when there is no tag
    name, _, digest = ref.partition("@")
    return name if not digest or ":" in name.rpartition("/")[2] else f"{name}@{digest[7:19]}"


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
            nodes = tuple(sorted({*svc.nodes, *c.nodes}))
            out[c.service] = replace(svc, nodes=nodes, image_id=svc.image_id or c.image_id)
    return list(out.values())


class _Graph:
    """Nodes and edges as they are found, with the teams gathered for each node."""

    def __init__(self, snap: Snapshot, reports: Mapping[str, Report], one_team: bool = False) -> None:
        self.snap, self.reports, self.one_team = snap, reports, one_team  # one team: its names only
        self.nodes: dict[str, MapNode] = {}
        self.attrs: dict[str, dict[str, Any]] = {}  # each node's attrs, the very dict it holds
        self.teams: dict[str, set[str]] = {}
        self.edges: set[tuple[str, str, str]] = set()

    def add(self, nid: str, kind: str, label: str, link: str = "", teams: Iterable[str] = (),
            **attrs: Any) -> str:
        if nid not in self.nodes:
            self.nodes[nid] = MapNode(nid, kind, label, (), link, self.attrs.setdefault(nid, attrs))
        self.teams.setdefault(nid, set()).update(t for t in teams if t)
        return nid

    def node(self, node_id: str) -> str:
        n = self.snap.nodes[node_id]
        return self.add(f"node:{node_id}", "node", n.hostname or node_id[:12], f"/nodes/{node_id}",
                        role=n.role)

    def done(self, team: str | None) -> SupplyMap:
        for source, target, rel in self.edges:  # a package: the teams of the images holding it
            if rel == "contains":
                self.teams[target] |= self.teams[source]
            elif rel == "runs":  # a workload: the worst finding of its image
                self.attrs[target]["severity"] = self.attrs[source]["severity"]
        ordered = sorted(self.nodes.values(), key=lambda n: (_ORDER[n.kind], n.id))
        nodes = {n.id: replace(n, teams=tuple(sorted(self.teams[n.id]))) for n in ordered}
        return SupplyMap(nodes, tuple(MapEdge(*e) for e in sorted(self.edges)), team)


def build_map(snapshot: Snapshot, reports: Mapping[str, Report], team: str | None = None) -> SupplyMap:
    """The map of what runs (only ``team``'s workloads and what they reach, when given).
    ``reports`` are scan reports by image id (or digest); an image without one has
    its packages unknown. Only packages with unsuppressed findings become nodes."""
    g = _Graph(snapshot, reports, team is not None)
    nets = {**{n.name: n for n in snapshot.networks.values()}, **snapshot.networks}
    used: dict[str, tuple[ImageInfo | None, set[str], set[str]]] = {}  # image node: info, refs, teams
    for w in _fold(snapshot):
        if team is not None and w.team != team:
            continue
        refs = {w.image} if w.image and not parse_image_ref(w.image).is_id else set()
        wid_link = f"/workloads/{w.kind}/{w.id}"
        wid = g.add(f"{w.kind}:{w.id}", w.kind, w.name or w.id[:12], wid_link, [w.team],
                    owner=w.owner, state=w.state, image=w.image, registry=min(_registries(refs), default=""))
        info = snapshot.images.get(w.image_id) or (snapshot.image_for(w.image) if w.image else None)
        pinned = parse_image_ref(w.image).digest if w.image else None
        iid = "image:" + (info.id if info else pinned or w.image or "unknown")
        used.setdefault(iid, (info, set(), set()))[1].update(refs)
        used[iid][2].add(w.team)
        g.edges.add((iid, wid, "runs"))
        for name in w.networks:
            net = nets.get(name) or NetworkInfo(name, name)
            if net.team and net.team != w.team:
                continue  # another team's network is never drawn in anyone else's map
            nid = g.add(f"network:{net.id}", "network", net.name, f"/networks/{net.id}", [net.team],
                        driver=net.driver, scope=net.scope)
            g.edges.add((wid, nid, "joins"))
        here = [snapshot.local_node] if w.kind == "container" else []  # a service: its tasks' nodes
        on = [n for n in w.nodes or here if n in snapshot.nodes]
        g.edges.update((wid, g.node(n), "runs-on") for n in on)
        for p in w.ports:
            label = f"{p.host_ip + ':' if p.host_ip else ''}{p.published}->{p.target}/{p.protocol}"
            pid = g.add(f"port:{w.id}:{p.published}/{p.protocol}", "port", label, wid_link, [w.team],
                        published=p.published, target=p.target, protocol=p.protocol, mode=p.mode)
            g.edges.add((wid, pid, "publishes"))
            reach = snapshot.nodes if p.mode == "ingress" else on  # the routing mesh listens on every node
            g.edges.update((pid, g.node(n), "reachable-on") for n in reach)
    for iid, (info, refs, teams) in used.items():
        _image(g, iid, "image", info, refs, teams)
    by_layers = {img.layers: img for img in snapshot.images.values() if img.layers}
    for iid, (info, _, teams) in used.items():  # then bases, once every image that runs has its kind
        _bases(g, by_layers, iid, info, teams)
    return g.done(team)


def _bases(g: _Graph, by_layers: Mapping[tuple[str, ...], ImageInfo], iid: str, info: ImageInfo | None,
           teams: set[str]) -> None:
    """The chain of base images under one image: the local image whose layers are the
    longest proper prefix of its own, else the base its builder named in its labels."""
    while info is not None:
        named, layers = info.labels.get(_BASE_NAME, ""), info.layers
        parent = next((b for n in range(len(layers) - 1, 0, -1) if (b := by_layers.get(layers[:n]))), None)
        parent = parent or (g.snap.image_for(named) if named else None)
        if parent is None:
            if named:
                bid = f"image:{info.labels.get(_BASE_DIGEST) or named}"
                g.edges.add((iid, _image(g, bid, "base", None, {named}, teams), "extends"))
            return
        base = _image(g, f"image:{parent.id}", "base", parent, set(), teams)
        g.edges.add((iid, base, "extends"))
        iid, info = base, parent


def _image(g: _Graph, iid: str, kind: str, info: ImageInfo | None, refs: set[str], teams: set[str]) -> str:
    """An image (or base) node, its registries and vulnerable packages; label and registries
    come from the references its workloads name (a tag another team gave it is not shown)."""
    if iid in g.nodes:
        return g.add(iid, kind, "", teams=teams)
    names = {parse_image_ref(r).name for r in refs}
    known = info.repo_digests if info and (refs or not g.one_team) else ()  # never another team's name
    mine = [d for d in known if not names or d.partition("@")[0] in names]
    digests = [r.partition("@")[2] for r in sorted(refs) if "@" in r] + [d.partition("@")[2] for d in mine]
    digest = digests[0] if digests else ("" if info else iid.removeprefix("image:"))
    tags = sorted(refs) or list(info.repo_tags[:1] if info and not g.one_team else ())
    report = (g.reports.get(info.id) if info else None) or (g.reports.get(digest) if digest else None)
    found: dict[str, list[Any]] = {}
    for f in report.active if report else ():
        pid = f.purl if f.purl.startswith("pkg:") else f"pkg:generic/{f.package}@{f.version}"
        found.setdefault(pid, []).append(f)
    g.add(iid, kind, _label(tags[0]) if tags else (digest or iid[6:])[:19],
          f"/images/{digest or (info.id if info else iid[6:])}", teams, digest=digest,
          image_id=info.id if info else "", references=sorted(refs), size=info.size if info else 0,
          severity=max((f.severity for fs in found.values() for f in fs), key=rank, default="none"),
          packages=len(report.inventory.packages) if report else None, vulnerable_packages=len(found))
    for reg in sorted(_registries([*refs, *mine] or (info.repo_tags if info and not g.one_team else ()))):
        g.edges.add((g.add(f"registry:{reg}", "registry", reg), iid, "provides"))
    for pid, fs in found.items():
        fs.sort(key=lambda f: (-rank(f.severity), f.id))
        g.add(pid, "package", f"{fs[0].package}@{fs[0].version}", "", (), name=fs[0].package,
              version=fs[0].version, ecosystem=fs[0].ecosystem, purl=fs[0].purl, severity=fs[0].severity,
              findings=[{"id": f.id, "severity": f.severity, "fixed": f.fixed} for f in fs])
        g.edges.add((iid, pid, "contains"))
    return iid
# fmt: on


def exposures(graph: SupplyMap) -> list[Exposure]:
    """Every (running workload, vulnerable package of its image) pair, worst first."""
    out = []
    for w in graph.of_kind(*_WORKLOADS):
        if w.attrs.get("state") in _STOPPED:
            continue
        ports = tuple(sorted(p.label for p in graph.neighbours(w.id, "port")))
        nodes = tuple(sorted({n.label for n in graph.neighbours(w.id, "node")}))
        for img in graph.neighbours(w.id, "image", rel="runs"):
            # the reference the workload names; for one named by id, its image's
            image, registry = _label(w.attrs["image"]), w.attrs["registry"]
            if not registry:
                image, registry = img.label, ", ".join(r.label for r in graph.neighbours(img.id, "registry"))
            for p in graph.neighbours(img.id, "package"):
                a, ids = p.attrs, tuple(f["id"] for f in p.attrs["findings"])
                out.append(Exposure(w.id, w.label, w.team, image, registry, a["name"], a["version"],
                                    p.id, a["severity"], ids, ports, nodes))  # fmt: skip
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
            "nodes": [n.as_dict() for n in graph.nodes.values()], "exposures": [e.as_dict() for e in found],
            "edges": [dict(vars(e)) for e in graph.edges]}  # fmt: skip


_COLOURS = {"critical": "#dc2626", "high": "#f97316", "medium": "#facc15", "low": "#93c5fd",
            "unknown": "#d1d5db"}  # fmt: skip


def _q(text: object) -> str:  # every id, label and attribute value in DOT goes through it
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
        groups.setdefault("workload" if n.kind in _WORKLOADS else n.kind, []).append(n)
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
    digest = str(a.get("digest") or "")
    hashes = [{"alg": "SHA-256", "content": digest[7:]}] if digest.startswith("sha256:") else []
    comp = {"type": "container", "bom-ref": n.id, "name": name, "version": tag or digest, "hashes": hashes}
    return {k: v for k, v in comp.items() if v} | {"properties": props}


def _service(graph: SupplyMap, n: MapNode) -> dict[str, Any]:
    """A workload as a CycloneDX service: team, endpoints (its ports on the nodes answering), image."""
    ends = sorted({f"{p.attrs['protocol']}://{h.label}:{p.attrs['published']}"
                   for p in graph.neighbours(n.id, "port") if p.attrs["published"]
                   for h in graph.neighbours(p.id, "node")})  # fmt: skip
    nets = ", ".join(x.label for x in graph.neighbours(n.id, "network"))
    hosts = ", ".join(x.label for x in graph.neighbours(n.id, "node", rel="runs-on"))
    props = _props(kind=n.kind, team=n.team, image=n.attrs.get("image"), networks=nets, nodes=hosts)
    svc = {"bom-ref": n.id, "name": n.label, "group": n.team, "endpoints": ends, "properties": props}
    return {k: v for k, v in svc.items() if v}


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
