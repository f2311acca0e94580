"""Admission by policy: gather the facts a decision needs, then ask the pure core.

Facts come from the engine (a team's live use for quotas, the digests an image
resolves to for image-scoped exceptions) and from the exception store. Anything
that can't be gathered fails closed: the policy core sees ``usage=None`` and
denies with ``quota.unknown``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from moorage.admission.cluster import govern
from moorage.admission.exceptions import ExceptionStore
from moorage.admission.facts import gather_facts
from moorage.admission.guard import GUARDED, refusal
from moorage.admission.images import ImageGate, NotLocal, Resolved
from moorage.admission.interface import Admission, AdmissionError, AdmissionRequest, Decision
from moorage.admission.sweeper import ComplianceResults
from moorage.cluster.trust import ClusterTrust
from moorage.engine_api.reference import parse_image_ref
from moorage.policy.decision import Facts, PolicyDecision, Request, evaluate
from moorage.policy.documents import PolicyError
from moorage.policy.loader import PolicySet, builtin_set, load_folder
from moorage.policy.needs import needs, needs_usage

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
        compliance: ComplianceResults | None = None,
    ) -> None:
        """``cluster`` governs Swarm placement (enrolled and attested nodes) when given;
        ``compliance`` holds running objects' results, whose rule actions may refuse an
        update or a restart."""
        self.images = images
        self.cluster = cluster
        self.compliance = compliance
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
        """Ask the policy once what the decision needs, gather all of it with one
        driver, then decide once."""
        req = to_request(request)
        if self.compliance is not None and req.kind in GUARDED and req.object_ref:
            # by the id the gateway's ownership check resolved, the object the engine acts
            # on: never by a name, which another object could be given to hide behind
            oid = request.object_id or await _full_id(engine, req)
            report = await asyncio.to_thread(self.compliance.by_id, oid)
            refused = refusal(self.policies, req, report)
            if refused is not None:
                return Decision(
                    False, reason=refused[0], rules=refused[1], policy_version=self.policies.version
                )
        grants = self._grants()
        try:
            got = await gather_facts(needs(self.policies, req, grants), req, engine, self.images)
        except NotLocal as exc:
            return Decision(False, reason=f"No such image: {exc}", status=404)
        facts = Facts(now=self.clock(), usage=got.usage, replaced_replicas=got.replaced, images=got.images,
                      exceptions=grants, image_reports={k: r.facts for k, r in got.resolved.items()},
                      host_networks=got.host_networks, node_labels=got.node_labels,
                      plugin_config=got.plugin_config)  # fmt: skip
        decision = self._decide(req, facts)
        digests = sorted({r.digest for r in got.resolved.values() if r.digest})
        if digests:
            decision = dataclasses.replace(decision, image_digest=",".join(digests))
        if decision.allowed and got.resolved:
            decision = _pin(request, req, decision, got.resolved)
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


async def _full_id(engine: Any, req: Request) -> str:
    """The full id of the object a request names, as the engine resolves it (a name, a
    short prefix, any spelling the engine takes); the reference itself when the engine
    can't say, so the stored report is looked up by it."""
    ref = str(req.object_ref)
    kind = "services" if req.kind.startswith("service.") else "containers"
    try:
        status, doc = await engine.call_json("GET", f"/{kind}/{quote(ref, safe='')}" +
                                             ("/json" if kind == "containers" else ""))  # fmt: skip
    except Exception:  # the engine's own answer to the request will say what is wrong
        return ref
    found = doc.get("Id") or doc.get("ID") if status == 200 and isinstance(doc, dict) else None
    return str(found) if found else ref


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
