"""Admission by policy: gather the facts a decision needs, then ask the pure core.

Facts come from the engine (a team's live use for quotas, the digests an image
resolves to for image-scoped exceptions) and from the exception store. Anything
that can't be gathered fails closed: the policy core sees ``usage=None`` and
denies with ``quota.unknown``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from moorage.admission.exceptions import ExceptionStore
from moorage.admission.interface import Admission, AdmissionError, AdmissionRequest, Decision
from moorage.policy.documents import PolicyError, PolicySet, builtin_set, load_folder
from moorage.policy.engine import Facts, PolicyDecision, Request, evaluate, needs_usage
from moorage.policy.families import Usage, container_limits, view_images

__all__ = ["PolicyAdmission", "to_request"]

log = logging.getLogger("moorage.policy")
TEAM_LABEL = "io.moorage.team"


def to_request(r: AdmissionRequest) -> Request:
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
    ) -> None:
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
        req = to_request(request)
        return f"quota:{req.team}" if needs_usage(self.policies, req) else None

    def admit(self, request: AdmissionRequest) -> Decision:
        return self._decide(to_request(request), Facts(now=self.clock(), exceptions=self._grants()))

    async def admit_async(self, request: AdmissionRequest, engine: Any) -> Decision:
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
        facts = Facts(now=self.clock(), usage=usage, replaced_replicas=replaced, images=images,
                      exceptions=grants)  # fmt: skip
        return self._decide(req, facts)

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


async def _image_ids(engine: Any, req: Request) -> tuple[str, ...]:
    out: list[str] = []
    for _, ref in view_images(req.kind, req.body, dict(req.query), req.object_ref):
        status, doc = await engine.call_json("GET", f"/images/{quote(ref, safe='')}/json")
        if status == 200 and isinstance(doc, dict):
            out.append(str(doc.get("Id", "")))
            out += [str(d).rpartition("@")[2] for d in doc.get("RepoDigests") or []]
    return tuple(x for x in out if x)
