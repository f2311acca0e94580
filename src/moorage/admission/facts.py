"""The one driver of policy facts: it gathers everything ``policy.needs`` named, at
once, from the engine and the image gate.

Anything that can't be gathered fails closed: live use that can't be counted is left
out (the policy core then denies with ``quota.unknown``), engine state that can't be
read refuses the request, and an image the engine lacks answers 404 (``NotLocal``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from moorage.admission.images import ImageGate, Resolved
from moorage.admission.interface import AdmissionError
from moorage.policy.needs import Needs
from moorage.policy.request import Request
from moorage.policy.rules.images import view_images
from moorage.policy.rules.resources import Usage, container_limits

__all__ = ["Gathered", "gather_facts"]

log = logging.getLogger("moorage.policy")
TEAM_LABEL = "io.moorage.team"


@dataclass
class Gathered:
    """What the driver found; the pipeline turns it into the policy's ``Facts``."""

    usage: Usage | None = None
    replaced: int = 0
    images: tuple[str, ...] = ()
    resolved: dict[str, Resolved] = field(default_factory=dict)
    host_networks: tuple[str, ...] = ()
    node_labels: Mapping[str, str] | None = None
    plugin_config: Mapping[str, object] | None = None


async def gather_facts(need: Needs, req: Request, engine: Any, images: ImageGate | None) -> Gathered:
    """Every fact in ``need``, fetched concurrently (a TaskGroup: the first failure
    cancels the rest and is raised)."""
    out = Gathered()
    if not need.any:
        return out
    ids: tuple[str, ...] = ()

    async def usage() -> None:
        try:
            out.usage, out.replaced = await _usage(engine, req)
        except Exception as exc:  # fail closed: the core denies with quota.unknown
            log.error("could not count the use of team %s: %s", req.team, exc)

    async def image_ids() -> None:
        nonlocal ids
        ids = await _image_ids(engine, req)

    async def trust() -> None:
        assert need.trust is not None and images is not None
        refs = [t for _, t in view_images(req.kind, req.body, dict(req.query), req.object_ref)]
        out.resolved = await images.gather(req.kind, refs, list(need.trust.keys), need.trust.scan)

    async def engine_state() -> None:
        found = await _engine_facts(engine, req, need.engine)
        out.host_networks = found.get("host_networks", ())
        out.node_labels = found.get("node_labels")
        out.plugin_config = found.get("plugin_config")

    try:
        async with asyncio.TaskGroup() as tg:
            if need.usage:
                tg.create_task(usage())
            if need.image_ids:
                tg.create_task(image_ids())
            if need.trust is not None and images is not None:
                tg.create_task(trust())
            if need.engine:
                tg.create_task(engine_state())
    except BaseExceptionGroup as group:
        raise group.exceptions[0] from None  # the first failure, as a sequential gather gave it
    out.images = ids + tuple(r.digest for r in out.resolved.values() if r.digest)
    return out


async def _usage(engine: Any, req: Request) -> tuple[Usage, int]:
    flt = quote(json.dumps({"label": [f"{TEAM_LABEL}={req.team}"]}))
    if req.kind == "container.create":
        status, items = await engine.call_json("GET", f"/containers/json?all=1&filters={flt}")
        if status != 200 or not isinstance(items, list):
            raise RuntimeError(f"listing containers answered {status}")
        cpus, memory = 0.0, 0
        # Limits aren't in the list: inspect each (a team's containers, in parallel).
        docs = await asyncio.gather(*(engine.call_json("GET", f"/containers/{c['Id']}/json") for c in items))
        for st, doc in docs:
            if st == 200 and isinstance(doc, dict):
                limits = container_limits(doc.get("HostConfig") or {})
                cpus += limits.cpus[1]
                memory += limits.memory[1]
        return Usage(containers=len(items), cpus=cpus, memory=memory), 0
    status, services = await engine.call_json("GET", f"/services?filters={flt}")
    if status != 200 or not isinstance(services, list):
        raise RuntimeError(f"listing services answered {status}")
    nodes = None
    total, replaced = 0, 0
    for s in services:
        mode = (s.get("Spec") or {}).get("Mode") or {}
        if "Replicated" in mode:
            n = int((mode["Replicated"] or {}).get("Replicas", 1))
        else:
            if nodes is None:
                st, node_list = await engine.call_json("GET", "/nodes")
                nodes = len(node_list) if st == 200 and isinstance(node_list, list) else 1
            n = nodes
        total += n
        ref = req.object_ref or ""
        named = s.get("ID", "").startswith(ref) or (s.get("Spec") or {}).get("Name") == ref
        if req.kind == "service.update" and ref and named:
            replaced = n
    return Usage(replicas=total), replaced


async def _engine_facts(engine: Any, req: Request, wanted: frozenset[str]) -> dict[str, Any]:
    """The engine state the packs compare a request against. A fact that can't be
    gathered is left out, and the policy core then applies its stricter reading."""
    out: dict[str, Any] = {}
    try:
        if "host_networks" in wanted:
            out["host_networks"] = await _host_networks(engine, req)
        if "node_labels" in wanted and req.object_ref:
            status, node = await engine.call_json("GET", f"/nodes/{quote(req.object_ref, safe='')}")
            if status == 200 and isinstance(node, dict):
                labels = (node.get("Spec") or {}).get("Labels") or {}
                out["node_labels"] = {str(k): str(v) for k, v in labels.items()}
        if "plugin_config" in wanted and req.object_ref:
            ref = quote(req.object_ref, safe="/:")
            status, plugin = await engine.call_json("GET", f"/plugins/{ref}/json")
            if status == 200 and isinstance(plugin, dict) and isinstance(plugin.get("Config"), dict):
                out["plugin_config"] = plugin["Config"]
    except Exception as exc:  # fail closed: a fact that can't be gathered can't be judged
        log.error("could not gather engine facts %s for %s: %s", sorted(wanted), req.kind, exc)
        raise AdmissionError(f"the engine's state ({', '.join(sorted(wanted))}) could not be read: {exc}") \
            from exc  # fmt: skip
    return out


async def _host_networks(engine: Any, req: Request) -> tuple[str, ...]:
    """Every reference the request makes to a host-driver network, as the engine would
    resolve it: each network it names is looked up the engine's own way (a service's
    in the swarm's scope: id, then name, then id prefix; swarm's predefined ``host``
    network is in no list), and a reference that resolves to one is returned as written,
    beside the network's id."""
    out: list[str] = []
    swarm = req.kind.startswith("service.")
    for ref in _named_networks(req.body):
        if not ref or ref.lower() in ("bridge", "none", "default", "host"):
            continue  # the names the policy core reads itself
        path = f"/networks/{quote(ref, safe='')}" + ("?scope=swarm" if swarm else "")
        status, net = await engine.call_json("GET", path)
        if status == 404:
            continue  # the engine refuses a network it can't find
        if status != 200 or not isinstance(net, dict):
            raise RuntimeError(f"looking up network {ref} answered {status}")
        if net.get("Driver") == "host":
            out += [ref, str(net.get("Id", ""))]
    return tuple(out)


def _named_networks(body: Any) -> list[str]:
    """The networks a request attaches to: a service's task template and deprecated
    top-level lists, a container's network mode and endpoints."""
    if not isinstance(body, dict):
        return []
    task = body.get("TaskTemplate")
    lists = [task.get("Networks") if isinstance(task, dict) else None, body.get("Networks")]
    names = [str(n.get("Target") or "") for nets in lists if isinstance(nets, list) for n in nets
             if isinstance(n, dict)]  # fmt: skip
    host = body.get("HostConfig")  # a container: its network mode and its endpoints
    mode = host.get("NetworkMode") if isinstance(host, dict) else None
    if isinstance(mode, str) and ":" not in mode:
        names.append(mode)
    endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") \
        if isinstance(body.get("NetworkingConfig"), dict) else None  # fmt: skip
    names += [str(k) for k in endpoints] if isinstance(endpoints, dict) else []
    return names


async def _image_ids(engine: Any, req: Request) -> tuple[str, ...]:
    out: list[str] = []
    for _, ref in view_images(req.kind, req.body, dict(req.query), req.object_ref):
        status, doc = await engine.call_json("GET", f"/images/{quote(ref, safe='')}/json")
        if status == 200 and isinstance(doc, dict):
            out.append(str(doc.get("Id", "")))
            out += [str(d).rpartition("@")[2] for d in doc.get("RepoDigests") or []]
    return tuple(x for x in out if x)
