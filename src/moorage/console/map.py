"""The supply-chain map: one graph from the engine's state and Moorage's SBOMs.

registries → images (by digest) → base images → packages with findings →
containers and services → networks → published ports → nodes. Pure: it takes a
:class:`~moorage.admission.running.Snapshot` and scan reports by image id, and it
holds only what one team may see when a team is given. Exports: JSON, Graphviz DOT
and CycloneDX (with ``dependencies`` for the whole deployment).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moorage import __version__
from moorage.admission.running import ImageInfo, Snapshot, Workload
from moorage.engine_api.reference import parse_image_ref
from moorage.images.scanner import Report

__all__ = [
    "Exposure",
    "MapNode",
    "SupplyMap",
    "build_map",
    "to_cyclonedx",
    "to_dot",
    "to_json",
    "vulnerable_workloads",
]

_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
BASE_LABEL = "org.opencontainers.image.base.name"


@dataclass(frozen=True)
class MapNode:
    """One thing on the map."""

    id: str
    kind: str  # registry, image, base, package, container, service, network, port, node
    label: str
    team: str = ""
    link: str = ""
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Exposure:
    """A running workload that contains a vulnerable package: from where, reachable how."""

    workload: str
    workload_label: str
    team: str
    image: str
    registry: str
    package: str
    version: str
    findings: tuple[str, ...]
    ports: tuple[str, ...]
    nodes: tuple[str, ...]


@dataclass
class SupplyMap:
    """The graph: nodes by id, edges (from, to), and each workload's vulnerable packages."""

    nodes: dict[str, MapNode] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    exposures: list[Exposure] = field(default_factory=list)

    def add(self, node: MapNode) -> str:
        """Add a node once; its id."""
        self.nodes.setdefault(node.id, node)
        return node.id

    def link(self, a: str, b: str) -> None:
        """Add an edge."""
        self.edges.add((a, b))


def _base(img: ImageInfo, images: Mapping[str, ImageInfo]) -> str:
    """The base image: the label its builder set, else the local tagged image whose
    layers are the longest proper prefix of this one's."""
    if img.labels.get(BASE_LABEL):
        return img.labels[BASE_LABEL]
    best, size = "", 0
    for other in images.values():
        n = len(other.layers)
        if (
            other.id != img.id
            and other.repo_tags
            and size < n < len(img.layers)
            and img.layers[:n] == other.layers
        ):
            best, size = other.repo_tags[0], n
    return best


def build_map(snap: Snapshot, reports: Mapping[str, Report], team: str | None = None) -> SupplyMap:
    """The map of what runs; only ``team``'s workloads and what they reach when given."""
    m = SupplyMap()
    for w in snap.top_level():
        if team is not None and w.team != team:
            continue
        _workload(m, snap, reports, w)
    return m


def _workload(m: SupplyMap, snap: Snapshot, reports: Mapping[str, Report], w: Workload) -> None:
    wid = m.add(
        MapNode(
            f"{w.kind}:{w.id}",
            w.kind,
            w.name,
            w.team,
            f"/workloads/{w.kind}/{w.id}",
            {"owner": w.owner, "image": w.image, "state": w.state},
        )
    )
    img = snap.images.get(w.image_id) or snap.image_for(w.image)
    ref = parse_image_ref(w.image) if w.image else None
    registry = ref.registry if ref is not None and not ref.is_id else "local"
    rid = m.add(MapNode(f"registry:{registry}", "registry", registry))
    digest = img.repo_digests[0].partition("@")[2] if img and img.repo_digests else ""
    image_key = digest or (img.id if img else w.image)
    iid = m.add(
        MapNode(
            f"image:{image_key}",
            "image",
            (img.repo_tags[0] if img and img.repo_tags else w.image),
            "",
            f"/images?id={img.id if img else ''}",
            {"digest": digest, "id": img.id if img else "", "size": img.size if img else 0},
        )
    )
    m.link(rid, iid)
    if img is not None:
        base = _base(img, snap.images)
        if base:
            m.link(m.add(MapNode(f"base:{base}", "base", base)), iid)
    report = reports.get(img.id) if img else None
    ports = tuple(
        f"{p.host_ip + ':' if p.host_ip else ''}{p.published}/{p.protocol}" for p in w.ports if p.published
    )
    nodes = tuple(snap.nodes[n].hostname if n in snap.nodes else n for n in w.nodes)
    if report is not None:
        by_pkg: dict[tuple[str, str], list[Any]] = {}
        for f in report.active:
            by_pkg.setdefault((f.package, f.version), []).append(f)
        purls = {(p.name, p.version): p.purl for p in report.inventory.packages}
        purls.update(
            {(p.source_name, p.source_version): p.purl for p in report.inventory.packages if p.source_name}
        )
        for (name, version), found in sorted(by_pkg.items()):
            worst = max((f.severity for f in found), key=lambda s: _RANK.get(s, 0))
            pid = m.add(
                MapNode(
                    f"pkg:{purls.get((name, version)) or name + '@' + version}",
                    "package",
                    f"{name} {version}",
                    "",
                    "",
                    {"findings": sorted(f.id for f in found), "severity": worst},
                )
            )
            m.link(iid, pid)
            m.link(pid, wid)
            m.exposures.append(
                Exposure(
                    wid,
                    w.name,
                    w.team,
                    m.nodes[iid].label,
                    registry,
                    name,
                    version,
                    tuple(sorted(f.id for f in found)),
                    ports,
                    nodes,
                )
            )
    m.link(iid, wid)
    for net in w.networks:
        info = next((n for n in snap.networks.values() if n.name == net or n.id == net), None)
        nid = m.add(
            MapNode(
                f"network:{info.id if info else net}",
                "network",
                info.name if info else net,
                info.team if info else "",
                "",
            )
        )
        m.link(wid, nid)
    for p, text in zip([p for p in w.ports if p.published], ports, strict=True):
        pid = m.add(
            MapNode(
                f"port:{w.id}:{p.published}/{p.protocol}",
                "port",
                text,
                w.team,
                "",
                {"target": p.target, "mode": p.mode},
            )
        )
        m.link(wid, pid)
    for n in w.nodes:
        node = snap.nodes.get(n)
        m.link(
            wid,
            m.add(
                MapNode(
                    f"node:{n}",
                    "node",
                    node.hostname if node else n,
                    "",
                    f"/nodes/{n}",
                    {"role": node.role if node else ""},
                )
            ),
        )


def vulnerable_workloads(m: SupplyMap, package: str, version: str | None = None) -> list[Exposure]:
    """Which running workloads contain ``package`` (at ``version``) at a vulnerable
    version, from which registry, reachable on which port."""
    name = package.lower()
    return [e for e in m.exposures if e.package.lower() == name and (version is None or e.version == version)]


def to_json(m: SupplyMap) -> dict[str, Any]:
    """Nodes, edges and exposures as JSON."""
    return {
        "nodes": [
            {"id": n.id, "kind": n.kind, "label": n.label, "team": n.team, "link": n.link, **dict(n.attrs)}
            for n in sorted(m.nodes.values(), key=lambda n: n.id)
        ],
        "edges": [{"from": a, "to": b} for a, b in sorted(m.edges)],
        "exposures": [e.__dict__ for e in m.exposures],
    }


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(m: SupplyMap) -> str:
    """The map in Graphviz DOT, left to right, packages coloured by worst severity."""
    colours = {"critical": "red", "high": "orangered", "medium": "orange", "low": "gold"}
    lines = ["digraph moorage {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
    for n in sorted(m.nodes.values(), key=lambda n: n.id):
        extra = f", color={colours.get(str(n.attrs.get('severity')), 'black')}" if n.kind == "package" else ""
        lines.append(f"  {_q(n.id)} [label={_q(n.kind + ': ' + n.label)}{extra}];")
    lines += [f"  {_q(a)} -> {_q(b)};" for a, b in sorted(m.edges)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_cyclonedx(m: SupplyMap) -> dict[str, Any]:
    """The deployment as a CycloneDX 1.5 BOM: images, packages and workloads as
    components, and ``dependencies`` linking each workload to its image and each
    image to its base and vulnerable packages."""
    types = {
        "image": "container",
        "base": "container",
        "package": "library",
        "service": "application",
        "container": "application",
        "network": "data",
        "port": "data",
        "node": "device",
        "registry": "data",
    }
    components = []
    for n in sorted(m.nodes.values(), key=lambda n: n.id):
        c: dict[str, Any] = {
            "bom-ref": n.id,
            "type": types.get(n.kind, "data"),
            "name": n.label,
            "properties": [{"name": "moorage:kind", "value": n.kind}],
        }
        if n.team:
            c["properties"].append({"name": "moorage:team", "value": n.team})
        if n.kind == "package" and n.id.startswith("pkg:pkg:"):
            c["purl"] = n.id.removeprefix("pkg:")
        components.append(c)
    deps: dict[str, set[str]] = {n: set() for n in m.nodes}
    for a, b in m.edges:
        # a workload depends on its image, an image on its base and packages; the rest is reach
        if (m.nodes[b].kind in ("container", "service") and m.nodes[a].kind == "image") or m.nodes[
            a
        ].kind == "base":
            deps[b].add(a)
        else:
            deps[a].add(b)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "moorage", "version": __version__}]},
            "component": {"type": "application", "name": "deployment", "bom-ref": "deployment"},
        },
        "components": components,
        "dependencies": [
            {
                "ref": "deployment",
                "dependsOn": sorted(n.id for n in m.nodes.values() if n.kind in ("container", "service")),
            }
        ]
        + [{"ref": k, "dependsOn": sorted(v)} for k, v in sorted(deps.items())],
    }
