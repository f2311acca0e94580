"""``moorage map``: the supply-chain map of what runs (registries, images, base images,
vulnerable packages, workloads, networks, published ports, nodes) as a table, JSON,
Graphviz DOT or CycloneDX 1.5. ``--package NAME[@VERSION]`` answers which running
workloads hold it at a vulnerable version, from which registry, on which ports."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from moorage.admission.running import read_snapshot
from moorage.cli._output import error, paint, step, table
from moorage.cli.image import data_dir
from moorage.console.map import (
    Exposure,
    SupplyMap,
    build_map,
    to_cyclonedx,
    to_dot,
    to_json,
    vulnerable_workloads,
)
from moorage.engine import EngineClient, EngineError
from moorage.gateway.upstream import Upstream
from moorage.images.ignore import load_ignore
from moorage.images.interface import ImageError
from moorage.images.scanner import Report, Scanner
from moorage.images.sources import EngineSource
from moorage.images.vulns.osv import OsvDatabase
from moorage.lab import Lab

__all__ = ["register", "scan_reports"]

FORMATS = ("table", "json", "dot", "cyclonedx")
_SEVERITY_COLOUR = {"critical": "red", "high": "red", "medium": "yellow"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``moorage map`` to the command line."""
    p = sub.add_parser(
        "map", help="the supply-chain map of what runs: registry, image, packages, workload, port, node"
    )
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--team", help="only this team's workloads and what they reach")
    p.add_argument(
        "--package",
        metavar="NAME[@VERSION]",
        help="which running workloads hold this package at a vulnerable version (a name or a purl)",
    )
    p.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    p.add_argument("--host", metavar="URL", help="engine URL (default: $DOCKER_HOST)")
    p.add_argument("--lab", metavar="NAME", help="the engine of lab NAME's manager (node 1)")
    p.add_argument(
        "--data-dir", type=Path, help="where the scan cache and vulndb.sqlite are (default: $MOORAGE_DATA)"
    )
    p.set_defaults(func=_map)


def _engine(args: argparse.Namespace) -> EngineClient:
    """The engine, found the way ``moorage compliance`` finds it: ``--lab``, ``--host``,
    else ``$DOCKER_HOST``. Exporting an image to scan it can take a while."""
    url = Lab(args.lab).docker_host(1) if args.lab else args.host
    upstream = Upstream(url) if url else Upstream.from_env()
    if upstream.path is not None:
        return EngineClient(upstream.path, timeout=300)
    assert upstream.host is not None and upstream.port is not None
    return EngineClient(None, timeout=300, tcp=(upstream.host, upstream.port), tls=upstream.tls)


def scan_reports(engine: EngineClient, data: Path, image_ids: Iterable[str]) -> dict[str, Report]:
    """Scan reports by image id (cached by image id and database version), with the
    data folder's ignore file applied. Without a vulnerability database there are
    none, and stderr says so; an image that can't be scanned is named there too."""
    db = OsvDatabase(data / "vulndb.sqlite")
    if not db.exists():
        step(f"no vulnerability database at {data / 'vulndb.sqlite'}: the map shows no findings "
             "(load one with moorage db update --from PATH|URL)")  # fmt: skip
        return {}
    ignore_file = data / "ignore.yaml"
    ignore = load_ignore(ignore_file) if ignore_file.exists() else None
    scanner, source = Scanner(data / "image-cache", db), EngineSource(engine)
    out: dict[str, Report] = {}
    for image_id in sorted(set(image_ids)):
        try:
            out[image_id] = scanner.scan(source, image_id, ignore)
        except ImageError as exc:
            step(f"{image_id[:19]} not scanned, its packages are unknown: {exc}")
    return out


def _map(args: argparse.Namespace) -> int:
    purl = (args.package or "").startswith("pkg:")  # a purl names its version itself
    name, _, version = (args.package, "", "") if purl else (args.package or "").partition("@")
    if args.package is not None and not name:
        error("--package needs a package name: NAME or NAME@VERSION (e.g. openssl@3.0.11-1~deb12u1)")
        return 2
    try:
        engine = _engine(args)
        snap = read_snapshot(engine)
    except (EngineError, OSError, ValueError) as exc:
        error(f"cannot read the engine's state: {exc} (check --host or $DOCKER_HOST)")
        return 1
    wanted = [w.image_id for w in snap.workloads if w.image_id and args.team in (None, w.team)]
    reports = scan_reports(engine, args.data_dir or data_dir(), wanted)
    graph = build_map(snap, reports, args.team)
    exposed = vulnerable_workloads(graph, name, version or None) if name else None
    text = _render(args.format, graph, exposed)
    if args.output:
        args.output.write_text(re.sub(r"\x1b\[[0-9;]*m", "", text))  # a file gets no terminal colours
        step(f"wrote the {args.format} map to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _render(fmt: str, graph: SupplyMap, exposed: list[Exposure] | None) -> str:
    if fmt == "json":
        return json.dumps(to_json(graph, exposed), indent=2, sort_keys=True) + "\n"
    if fmt == "dot":
        return to_dot(graph)
    if fmt == "cyclonedx":
        return json.dumps(to_cyclonedx(graph), indent=2) + "\n"
    return _workload_table(graph) if exposed is None else _exposure_table(exposed)


def _sev(severity: str) -> str:
    return paint(severity, _SEVERITY_COLOUR[severity]) if severity in _SEVERITY_COLOUR else severity


def _workload_table(graph: SupplyMap) -> str:
    """One row per workload: team, kind, name, image, registry, how many vulnerable
    packages its image holds (? when its image wasn't scanned), ports and nodes."""
    rows = []
    for w in sorted(graph.of_kind("service", "container"), key=lambda n: (n.team, n.kind, n.label)):
        images = graph.neighbours(w.id, "image", rel="runs")
        scanned = [i for i in images if i.attrs.get("packages") is not None]
        vulnerable = sum(len(graph.neighbours(i.id, "package")) for i in scanned)
        worst = str(scanned[0].attrs.get("severity")) if scanned and vulnerable else ""
        count = (f"{vulnerable} ({_sev(worst)})" if vulnerable else "0") if scanned else "?"
        ports = ", ".join(p.label for p in graph.neighbours(w.id, "port")) or "-"
        nodes = ", ".join(sorted({n.label for n in graph.neighbours(w.id, "node", rel="runs-on")})) or "-"
        image, registry = str(w.attrs["image"]).partition("@")[0], str(w.attrs["registry"])
        if not registry:  # named by id: what its image is known as
            image = ", ".join(i.label for i in images)
            registry = ", ".join(
                sorted({r.label for i in images for r in graph.neighbours(i.id, "registry")})
            )
        rows.append([w.team or "-", w.kind, w.label, image or "-", registry or "-", count, ports, nodes])
    if not rows:
        return "no workloads" + (f" of team {graph.team}" if graph.team is not None else "") + "\n"
    head = ["TEAM", "KIND", "NAME", "IMAGE", "REGISTRY", "VULNERABLE PACKAGES", "PORTS", "NODES"]
    return table(head, rows) + "\n"


def _exposure_table(exposed: list[Exposure]) -> str:
    """The running workloads that hold the package at a vulnerable version."""
    if not exposed:
        return "no running workload holds it at a vulnerable version\n"
    rows = [[e.team or "-", e.workload_label, e.image, e.registry or "-", f"{e.package} {e.version}",
             _sev(e.severity), ", ".join(e.findings), ", ".join(e.ports) or "-", ", ".join(e.nodes) or "-"]
            for e in exposed]  # fmt: skip
    head = ["TEAM", "WORKLOAD", "IMAGE", "REGISTRY", "PACKAGE", "SEVERITY", "FINDINGS", "PORTS", "NODES"]
    return table(head, rows) + "\n"
