"""Admission by policy: gather the facts a decision needs, then ask the pure core.

Facts come from the engine (a team's live use for quotas, the digests an image
resolves to for image-scoped exceptions) and from the exception store. Anything
that can't be gathered fails closed: the policy core sees ``usage=None`` and
denies with ``quota.unknown``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from moorage.admission.cluster import govern
from moorage.admission.exceptions import ExceptionStore
from moorage.admission.images import ImageGate, NotLocal, Resolved
from moorage.admission.interface import Admission, AdmissionError, AdmissionRequest, Decision
from moorage.cluster.trust import ClusterTrust
from moorage.engine_api.reference import parse_image_ref
from moorage.policy.decision import (
    Facts,
    PolicyDecision,
    Request,
    evaluate,
    fact_needs,
    needs_usage,
    trust_needs,
)
from moorage.policy.documents import PolicyError
from moorage.policy.loader import PolicySet, builtin_set, load_folder
from moorage.policy.rules.images import view_images
from moorage.policy.rules.resources import Usage, container_limits

__all__ = ["PolicyAdmission", "to_request"]

log = logging.getLogger("moorage.policy")
TEAM_LABEL = "io.moorage.team"


def to_request(r: AdmissionRequest) -> Request:
    """The policy request for an admission request."""
    p = r.principal
    return Request(
        kind=r.operation.kind, body=r.body, method=r.method, path=r.path.partition("?")[0],
        query=r.query, user=p.user, teams=p.teams or (p.team,), roles=p.roles, auth=p.auth,
        object_ref=r.operation.object_ref,
    )  # fmt: skip


class PolicyAdmission(Admission):
    """Decides with a policy set that can be reloaded (SIGHUP or a changed file)
    without ever being half-loaded."""

    def __init__(
        self,
        policies: PolicySet | None = None,
        source: Path | None = None,
        exceptions: ExceptionStore | None = None,
        clock: Callable[[], float] = time.time,
        images: ImageGate | None = None,
        cluster: ClusterTrust | None = None,
    ) -> None:
        """``cluster`` governs Swarm placement (enrolled and attested nodes) when given."""
        self.images = images
        self.cluster = cluster
        if policies is None:
            policies = load_folder(source) if source is not None else builtin_set()
        self.policies = policies
        self.source = source
        self.exceptions = exceptions
        self.clock = clock
        self._stamp = self._files_stamp()

    # ------------------------------------------------------------ reload
    def _files_stamp(self) -> tuple[Any, ...]:
        if self.source is None:
            return ()
        try:
            paths = [self.source] if self.source.is_file() else sorted(self.source.iterdir())
            return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in paths if p.is_file())
        except OSError:
            return ("unreadable",)

    def reload(self) -> str:
        """Load the source again. On error the previous set stays in force; the
        message says which file, line and field."""
        if self.source is None:
            return "built-in policies: nothing to reload"
        self._stamp = self._files_stamp()
        try:
            new = load_folder(self.source)
        except (PolicyError, ValueError) as exc:
            log.error("policy reload failed, keeping version %s: %s", self.policies.version, exc)
            return f"reload failed, version {self.policies.version} stays in force: {exc}"
        old, self.policies = self.policies.version, new
        log.info("policies reloaded: version %s -> %s (%d documents)", old, new.version, len(new.documents))
        return f"reloaded: version {new.version}"

    async def watch(self, interval: float = 1.0) -> None:
        """Reload when a file in the source changes."""
        while True:
            await asyncio.sleep(interval)
            if self._files_stamp() != self._stamp:
                self.reload()

    # ----------------------------------------------------------- decide
    def serial_key(self, request: AdmissionRequest) -> str | None:
        """Quota-counted creates of one team are decided one at a time."""
        req = to_request(request)
        return f"quota:{req.team}" if needs_usage(self.policies, req) else None

    def admit(self, request: AdmissionRequest) -> Decision:
        """Decide from the request alone (no facts gathered)."""
        return self._decide(to_request(request), Facts(now=self.clock(), exceptions=self._grants()))

    async def admit_async(self, request: AdmissionRequest, engine: Any) -> Decision:
        """Gather the facts the policy needs from ``engine``, then decide."""
        req = to_request(request)
        usage, replaced = None, 0
        if needs_usage(self.policies, req):
            try:
                usage, replaced = await _usage(engine, req)
            except Exception as exc:  # fail closed: the core denies with quota.unknown
                log.error("could not count the use of team %s: %s", req.team, exc)
        grants = self._grants()
        images: tuple[str, ...] = ()
        if any(g.image for g in grants):
            images = await _image_ids(engine, req)
        resolved: dict[str, Resolved] = {}
        need = trust_needs(self.policies, req)
        if need is not None and self.images is not None:
            refs = [t for _, t in view_images(req.kind, req.body, dict(req.query), req.object_ref)]
            try:
                resolved = await self.images.gather(req.kind, refs, need[0], need[1])
            except NotLocal as exc:
                return Decision(False, reason=f"No such image: {exc}", status=404)
            images = images + tuple(r.digest for r in resolved.values() if r.digest)
        extra = await _engine_facts(engine, req, fact_needs(self.policies, req))
        facts = Facts(now=self.clock(), usage=usage, replaced_replicas=replaced, images=images,
                      exceptions=grants, image_reports={k: r.facts for k, r in resolved.items()},
                      **extra)  # fmt: skip
        decision = self._decide(req, facts)
        digests = sorted({r.digest for r in resolved.values() if r.digest})
        if digests:
            decision = dataclasses.replace(decision, image_digest=",".join(digests))
        if decision.allowed and resolved:
            decision = _pin(request, req, decision, resolved)
        if decision.allowed and self.cluster is not None:
            decision = await govern(self.cluster, self.policies, req, decision, engine)
        return decision

    def _grants(self) -> tuple[Any, ...]:
        return self.exceptions.active() if self.exceptions is not None else ()

    def _decide(self, req: Request, facts: Facts) -> Decision:
        try:
            d: PolicyDecision = evaluate(self.policies, req, facts)
        except Exception as exc:  # a policy that errors denies (fail closed)
            raise AdmissionError(f"the policy could not be evaluated: {exc}") from exc
        return Decision(
            allowed=d.allowed,
            reason=d.reason(req.team) if not d.allowed else "",
            warnings=tuple(d.warning_lines()),
            rules=d.rules,
            body=d.body if d.allowed else None,
            mutations=tuple(d.mutations),
            policy_version=d.policy_version,
        )


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


def _pin(r: AdmissionRequest, req: Request, d: Decision, resolved: dict[str, Resolved]) -> Decision:
    """Run what was checked: a pull by tag becomes a pull of the checked digest plus a
    local tag, so a tag that moves between check and pull can't slip through; a
    service is pinned to the digest (as ``docker service create`` itself does)."""
    from dataclasses import replace
    from urllib.parse import urlencode

    if req.kind == "image.pull":
        ref, res = next(iter(resolved.items()))
        tag = parse_image_ref(ref).tag
        if not res.digest or not res.name or "@" in ref:
            return d
        query = {k: v for k, v in r.query.items() if k not in ("fromImage", "tag")}
        query["fromImage"], query["tag"] = [res.name], [res.digest]
        target = r.path.partition("?")[0] + "?" + urlencode(query, doseq=True)
        prefix = r.path.partition("/images/")[0]
        after: tuple[tuple[str, str], ...] = ()
        if tag:
            after = (("POST", f"{prefix}/images/{quote(res.name + '@' + res.digest, safe='')}/tag?"
                      + urlencode({"repo": res.name, "tag": tag})),)  # fmt: skip
        return replace(
            d, target=target, after=after, mutations=(*d.mutations, f"pull pinned to {res.digest}")
        )
    if req.kind in ("service.create", "service.update"):
        body = d.body if d.body is not None else req.body
        spec = (body or {}).get("TaskTemplate", {}).get("ContainerSpec", {}) if isinstance(body, dict) else {}
        image = spec.get("Image") if isinstance(spec, dict) else None
        pinned = resolved.get(image) if isinstance(image, str) else None
        if pinned is None or not pinned.digest or "@" in str(image):
            return d
        import copy

        body = copy.deepcopy(body)
        body["TaskTemplate"]["ContainerSpec"]["Image"] = f"{image}@{pinned.digest}"
        return replace(d, body=body, mutations=(*d.mutations, f"image pinned to {pinned.digest}"))
    return d
