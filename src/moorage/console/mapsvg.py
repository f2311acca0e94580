"""The supply-chain map drawn as SVG on the server: one column per kind, left to
right as the chain goes (registry, image, base, package, workload, network, port,
node), each node a link to its page. No script is needed to read it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

__all__ = ["COLUMNS", "draw"]

COLUMNS = ("registry", "image", "base", "package", "workload", "network", "port", "node")
"""The kinds, left to right."""

_PLURAL = {"registry": "registries", "base": "base images"}
_W, _H, _GAP, _ROW = 170, 24, 40, 30
_COLOURS = {
    "registry": "#6b7280",
    "image": "#2563eb",
    "base": "#7c3aed",
    "package": "#dc2626",
    "workload": "#059669",
    "network": "#d97706",
    "port": "#0891b2",
    "node": "#374151",
}


def _column(kind: str) -> str:
    if kind in ("container", "service"):
        return "workload"
    if kind in ("base-image", "base_image"):
        return "base"
    return kind if kind in COLUMNS else "node"


def _end(edge: Mapping[str, Any], *names: str) -> str:
    return str(next((edge[n] for n in names if n in edge), ""))


def draw(graph: Mapping[str, Any], exposures: Iterable[Any] = ()) -> str:
    """The SVG of a map's JSON form (``nodes`` and ``edges``); the workloads and
    packages of ``exposures`` are outlined."""
    marked: set[str] = set()
    for e in exposures:
        d = e if isinstance(e, Mapping) else getattr(e, "__dict__", {})
        for key in ("workload", "workload_id", "package", "package_id", "image"):
            value = d.get(key)
            if isinstance(value, str):
                marked.add(value)
            elif isinstance(value, Mapping) and "id" in value:
                marked.add(str(value["id"]))
    nodes = list(graph.get("nodes") or ())
    by_col: dict[str, list[Mapping[str, Any]]] = {c: [] for c in COLUMNS}
    for n in nodes:
        by_col[_column(str(n.get("kind", "")))].append(n)
    pos: dict[str, tuple[int, int]] = {}
    for ci, col in enumerate(COLUMNS):
        for ri, n in enumerate(sorted(by_col[col], key=lambda n: str(n.get("label", "")))):
            pos[str(n["id"])] = (20 + ci * (_W + _GAP), 40 + ri * _ROW)
    height = 60 + max((len(v) for v in by_col.values()), default=0) * _ROW
    width = 40 + len(COLUMNS) * (_W + _GAP)
    out = [
        # scaled to the page's width (the viewBox keeps the proportions); zoom to read a wide map
        f'<svg xmlns="http://www.w3.org/2000/svg" class="map" width="100%" style="min-width:{width // 2}px" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="supply-chain map">'
    ]
    for ci, col in enumerate(COLUMNS):
        out.append(
            f'<text x="{20 + ci * (_W + _GAP)}" y="22" class="col">{_PLURAL.get(col, col + "s")}</text>'
        )
    for e in graph.get("edges") or ():
        a, b = pos.get(_end(e, "from", "source", "ref")), pos.get(_end(e, "to", "target", "dependsOn"))
        if a and b:
            out.append(
                f'<line x1="{a[0] + _W}" y1="{a[1] + _H // 2}" x2="{b[0]}" y2="{b[1] + _H // 2}" '
                'stroke="#9ca3af" stroke-width="1"/>'
            )
    for n in nodes:
        nid = str(n["id"])
        if nid not in pos:
            continue
        x, y = pos[nid]
        col = _column(str(n.get("kind", "")))
        label = str(n.get("label") or nid)
        hot = nid in marked or str(n.get("label")) in marked
        stroke = ' stroke="#facc15" stroke-width="3"' if hot else ""
        link = escape(str(n.get("link") or ""), quote=True)
        title = escape(f"{n.get('kind')}: {label}" + (f" (team {n['team']})" if n.get("team") else ""))
        text = escape(label if len(label) <= 24 else label[:22] + "…")
        node = (
            f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="4" fill="{_COLOURS[col]}"{stroke}/>'
            f'<text x="{x + 6}" y="{y + 16}" fill="#fff" class="label">{text}</text>'
        )
        body = f'<a href="{link}" data-node="{escape(nid, quote=True)}">{node}</a>' if link else node
        out.append(f'<g class="node {col}{" exposed" if hot else ""}"><title>{title}</title>{body}</g>')
    out.append("</svg>")
    return "".join(out)
