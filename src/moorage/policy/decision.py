"""``evaluate(policies, request, facts) -> PolicyDecision``: pure, no I/O, no clock.

The families each see one normalised view of the request. Violations of documents
in ``audit`` mode become warnings; in ``enforce`` mode they deny unless an approved,
unexpired exception covers them. Declared mutations (safe defaults) are applied
after validation; a violation they cure is reported as fixed, not denied, and a
mutation never widens what the caller asked for.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moorage.policy.documents import Document
from moorage.policy.loader import PolicySet
from moorage.policy.mutations import merge_mutations, mutate
from moorage.policy.rules.base import Finding, _get
from moorage.policy.rules.images import (
    TRUST_KINDS,
    ImageFacts,
    check_image_trust,
    check_images,
    needs_trust,
    view_images,
)
from moorage.policy.rules.network import check_network, view_network
from moorage.policy.rules.operations import check_operation
from moorage.policy.rules.operations_base import OperationFacts
from moorage.policy.rules.placement import check_placement, placement_constraints
from moorage.policy.rules.resources import Usage, check_quotas, check_resources, view_resources
from moorage.policy.rules.runtime import check
from moorage.policy.rules.runtime_read import RuntimeView
from moorage.policy.rules.runtime_views import (
    view_build,
    view_container,
    view_exec,
    view_service,
    view_volume,
)

__all__ = [
    "ExceptionGrant",
    "Facts",
    "PolicyDecision",
    "Request",
    "Violation",
    "WorkloadClass",
    "evaluate",
    "fact_needs",
    "needs_usage",
    "request_labels",
    "workload_class",
]  # fmt: skip

RUNTIME_VIEWS: dict[str, Callable[[object], RuntimeView]] = {
    "container.create": view_container,
    "exec.create": view_exec,
    "service.create": view_service,
    "service.update": view_service,
    "volume.create": view_volume,
}


@dataclass(frozen=True)
class Request:
    """What the caller asked, as data."""

    kind: str
    body: Any = None
    method: str = "POST"
    path: str = ""
    query: Mapping[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    user: str = "anonymous"
    teams: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    auth: str = ""
    object_ref: str | None = None

    @property
    def team(self) -> str:
        """The team the request counts against: the first team, else the user's own."""
        return self.teams[0] if self.teams else f"user-{self.user}"


@dataclass(frozen=True)
class ExceptionGrant:
    """An approved exception: a rule (or ``family.*``) for a team or an image digest."""

    id: str
    rule: str
    expires: float
    team: str | None = None
    image: str | None = None
    reason: str = ""
    approver: str = ""

    def covers(self, rule: str, team: str, images: tuple[str, ...], now: float) -> bool:
        """Whether the grant excuses ``rule`` for this team and these images at ``now``."""
        if now >= self.expires:
            return False
        if not (self.rule == rule or fnmatch.fnmatchcase(rule, self.rule)):
            return False
        if self.team is not None and self.team != team:
            return False
        return not (self.image is not None and self.image not in images)


@dataclass(frozen=True)
class Facts:
    """What was gathered before the decision: the clock, live use, image ids, exceptions."""

    now: float = 0.0
    usage: Usage | None = None
    replaced_replicas: int = 0  # a service update: the replicas it replaces
    images: tuple[str, ...] = ()  # digests and ids the request's image resolves to
    exceptions: tuple[ExceptionGrant, ...] = ()
    image_reports: Mapping[str, ImageFacts] = field(default_factory=dict)  # by reference text
    # Engine state the packs compare against (see operations.OperationFacts): the ids of
    # host-driver networks, a node's current labels (node.update), a plugin's Config
    # (plugin.set, plugin.enable). Empty / None: the stricter reading applies.
    host_networks: tuple[str, ...] = ()
    node_labels: Mapping[str, str] | None = None
    plugin_config: Mapping[str, object] | None = None

    def operation(self) -> OperationFacts:
        """The engine state the operation rules compare against."""
        return OperationFacts(self.host_networks, self.node_labels, self.plugin_config)


@dataclass(frozen=True)
class Violation:
    """One finding of one document, in its mode; ``excepted_by`` names the grant that excused it."""

    policy: str
    mode: str
    finding: Finding
    excepted_by: str | None = None

    def line(self) -> str:
        """The finding as one line: rule, field, value, message and fix."""
        f = self.finding
        return f"{f.rule} at {f.path} ({f.value!r}): {f.message}. Fix: {f.fix}"


@dataclass
class PolicyDecision:
    """The outcome for one request: allowed or not, what denied, warned or was fixed, the
    mutations applied and the mutated body."""

    allowed: bool
    denials: list[Violation] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)  # audit mode and excepted
    fixed: list[Violation] = field(default_factory=list)  # cured by a declared mutation
    mutations: list[str] = field(default_factory=list)
    body: Any = None  # the mutated body, or None when unchanged
    policy_version: str = ""
    policies: list[str] = field(default_factory=list)  # names of the documents that applied

    @property
    def rules(self) -> tuple[str, ...]:
        """The ids of every rule that fired (denied, warned or fixed)."""
        return tuple(v.finding.rule for v in self.denials + self.warnings + self.fixed)

    def reason(self, team: str = "TEAM") -> str:
        """Why the request was denied, by policy, and how to ask for an exception."""
        by_policy: dict[str, list[Violation]] = {}
        for v in self.denials:
            by_policy.setdefault(v.policy, []).append(v)
        parts = [
            f"denied by policy {name}: " + "; ".join(v.line() for v in vs) for name, vs in by_policy.items()
        ]
        rule = self.denials[0].finding.rule if self.denials else "RULE"
        return (" | ".join(parts) + f". To ask for an exception: moorage exception request --rule {rule} "
                f"--team {team} --reason '...' --expires 7d")  # fmt: skip

    def warning_lines(self) -> list[str]:
        """One line per warning and per fix, for the client's Warnings."""
        out = []
        for v in self.warnings:
            tag = f"excepted by {v.excepted_by}" if v.excepted_by else f"{v.policy} (audit)"
            out.append(f"moorage: {tag}: {v.line()}")
        out += [f"moorage: fixed by {v.policy}: {v.finding.rule}: {v.finding.message}" for v in self.fixed]
        return out


# ------------------------------------------------------------------ requests
def request_labels(kind: str, body: object) -> dict[str, str]:
    """The labels a request body sets (``Labels``), as strings."""
    if not isinstance(body, dict):
        return {}
    labels = _get(body, "Labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def applicable(pset: PolicySet, req: Request, labels: dict[str, str] | None = None) -> list[Document]:
    """The documents whose scope takes in this request."""
    if labels is None:
        labels = request_labels(req.kind, req.body)
    teams = req.teams or (req.team,)
    return [d for d in pset.documents if d.applies_to(req.user, teams, labels)]


@dataclass(frozen=True)
class WorkloadClass:
    """A service's workload class and what the policy set says about classes."""

    name: str  # "" when the service has none
    team: str  # the team whose service it is (the owner's, on update)
    exclusive: frozenset[str]  # classes whose nodes run nothing else (placement.exclusive)
    members: frozenset[str]  # the teams placement.teams maps to this class

    def claim_refused(self) -> str:
        """Why this service may not be of its class ("" when it may): an exclusive
        class runs only the workloads of the teams mapped to it."""
        if self.name in self.exclusive and self.team not in self.members:
            teams = ", ".join(sorted(self.members)) or "no team"
            return f"class {self.name} is exclusive to {teams} (placement.teams), not to team {self.team}"
        return ""


def workload_class(pset: PolicySet, req: Request) -> WorkloadClass:
    """The workload class of a service request (by the enforcing policy's
    ``placement``, else its ``moorage.class`` label), with the classes any enforcing
    document declares exclusive and the teams mapped to the class, whatever the
    documents' scope."""
    labels = request_labels(req.kind, req.body)
    owner = labels.get("io.moorage.team")  # stamped by the gateway: on update, the service's own team
    if owner and owner != req.team:
        req = dataclasses.replace(req, teams=(owner,))
    docs = [d for d in applicable(pset, req, labels) if d.mode == "enforce"]
    placement = next((d.spec.placement for d in docs if d.spec.placement), None)
    if placement:
        cls = placement_constraints(placement, req.team, labels)[0]
    else:
        cls = labels.get("moorage.class", "")
    enforcing = [d.spec.placement for d in pset.documents if d.mode == "enforce" and d.spec.placement]
    exclusive = frozenset(str(c) for p in enforcing for c in p.exclusive or ())
    members = frozenset(str(t) for p in enforcing for t, c in (p.teams or {}).items() if c == cls)
    return WorkloadClass(cls, req.team, exclusive, members)


def trust_needs(pset: PolicySet, req: Request) -> tuple[list[tuple[str, bytes]], bool] | None:
    """Whether the decision needs image facts; if so, the trusted keys (id, PEM) of
    every applicable document and whether a scan is needed."""
    if req.kind not in TRUST_KINDS:
        return None
    keys: list[tuple[str, bytes]] = []
    scan, any_trust = False, False
    for d in applicable(pset, req):
        spec = d.spec.images
        if spec is None or not needs_trust(spec):
            continue
        any_trust = True
        keys += list(d.compiled.trusted_keys)
        scan = scan or bool(spec.vulnerabilities or spec.packages or spec.sbom or spec.database)
    return (keys, scan) if any_trust else None


_FACT_NEEDS: dict[str, frozenset[str]] = {
    "container.create": frozenset({"host_networks"}),
    "service.create": frozenset({"host_networks"}),
    "service.update": frozenset({"host_networks"}),
    "network.connect": frozenset({"host_networks"}),
    "node.update": frozenset({"node_labels"}),
    "plugin.set": frozenset({"plugin_config"}),
    "plugin.enable": frozenset({"plugin_config"}),
}


def fact_needs(pset: PolicySet, req: Request) -> frozenset[str]:
    """The engine facts (names of :class:`Facts` fields) the packs compare this request
    against: ``host_networks`` (ids of host-driver networks), ``node_labels`` (the
    node's current labels), ``plugin_config`` (the plugin's ``Config``). Without them
    the stricter reading applies (see :mod:`moorage.policy.operations`)."""
    wanted = _FACT_NEEDS.get(req.kind, frozenset())
    if not wanted or not any(d.spec.packs for d in applicable(pset, req)):
        return frozenset()
    return wanted


def needs_usage(pset: PolicySet, req: Request) -> bool:
    """Whether the decision needs the team's live use (quota facts)."""
    if req.kind not in ("container.create", "service.create", "service.update"):
        return False
    return any(d.spec.quotas for d in applicable(pset, req))


# ------------------------------------------------------------------ evaluate
def _findings(doc: Document, pset: PolicySet, req: Request, body: object, facts: Facts,
              labels: dict[str, str], mutating: bool) -> list[Finding]:  # fmt: skip
    spec = doc.spec
    kind = req.kind
    out: list[Finding] = []
    if spec.packs:
        make_view = RUNTIME_VIEWS.get(kind)
        view = (make_view(body) if make_view is not None and body is not None
                else view_build(dict(req.query)) if kind == "image.build" else None)  # fmt: skip
        runtime: list[Finding] = []
        if view is not None:
            for pack in spec.packs:
                runtime += check(view, pack, doc.compiled.runtime_allow)
        out += runtime
        # Every operation, not only the workload creates: an allow-list of operations
        # and of the fields that reach the host. A field the runtime view already
        # reported (HostConfig.NetworkMode=host, a build's networkmode) isn't repeated.
        seen = {f.path for f in runtime}
        allow = frozenset((spec.plugins.privileges if spec.plugins else None) or ())
        pools = tuple((spec.network.subnets if spec.network else None) or ())
        ops = check_operation(kind, body, req.query, req.object_ref, allow, facts.operation(), pools)
        out += [f for f in ops if f.path not in seen]
    rview = view_resources(kind, body) if body is not None else None
    if rview is not None and spec.resources:
        out += check_resources(rview, spec.resources)
    if spec.quotas and rview is not None:
        out += check_quotas(kind, rview, facts.usage, spec.quotas, req.team, facts.replaced_replicas)
    if spec.images:
        named = view_images(kind, body, dict(req.query), req.object_ref)
        out += check_images(kind, named, spec.images)
        if kind in TRUST_KINDS and needs_trust(spec.images):
            trusted = [kid for kid, _ in doc.compiled.trusted_keys]
            out += check_image_trust(named, spec.images, dict(facts.image_reports), trusted)
    if spec.network:
        out += check_network(view_network(kind, body, req.object_ref), spec.network, req.team)
    if spec.placement:
        out += check_placement(kind, body, spec.placement, req.team, labels, mutating)
    compiled = doc.compiled
    variables: dict[str, object] | None = None
    for rule in compiled.cel:
        if rule.kinds and kind not in rule.kinds:
            continue
        if variables is None:
            variables = {
                "request": body if body is not None else {}, "kind": kind, "method": req.method,
                "path": req.path, "query": {k: list(v) for k, v in req.query.items()}, "user": req.user,
                "team": req.team, "teams": list(req.teams), "labels": labels,
            }  # fmt: skip
        try:
            if rule.violated(variables):
                out.append(Finding(f"custom.{rule.id}", "(request)", rule.expr, rule.message, rule.fix))
        except RuntimeError as exc:
            out.append(Finding(f"custom.{rule.id}", "(request)", rule.expr,
                               f"the rule could not be evaluated ({exc}), so it fails closed",
                               "guard optional fields with has(...)"))  # fmt: skip
    for rego in compiled.rego:
        rego_input = {
            "Method": req.method, "Path": req.path, "Query": {k: list(v) for k, v in req.query.items()},
            "Headers": dict(req.headers), "Body": body, "User": req.user, "AuthMethod": req.auth,
        }  # fmt: skip
        try:
            ok = rego.allowed(rego_input)
        except RuntimeError as exc:
            out.append(Finding(f"rego.{rego.id}", "(request)", None, f"the Rego policy failed: {exc}",
                               "fix the Rego policy"))  # fmt: skip
            continue
        if not ok:
            out.append(Finding(f"rego.{rego.id}", "(request)", rego.query, rego.message,
                               "change the request so the Rego policy allows it"))  # fmt: skip
    return out


def evaluate(pset: PolicySet, req: Request, facts: Facts) -> PolicyDecision:
    """The decision of the policy set on one request, given the facts gathered. Pure."""
    labels = request_labels(req.kind, req.body)
    docs = applicable(pset, req, labels)
    decision = PolicyDecision(True, policy_version=pset.version, policies=[d.name for d in docs])
    if not docs:
        return decision
    enforcing = [d for d in docs if d.mode == "enforce"]
    declared = merge_mutations(enforcing)
    placement = next((d.spec.placement for d in enforcing if d.spec.placement), None)
    mutating = bool(declared or placement)
    before: list[tuple[Document, Finding]] = [
        (d, f) for d in docs for f in _findings(d, pset, req, req.body, facts, labels, mutating)
    ]
    after = before
    if mutating and isinstance(req.body, dict):
        body, applied = mutate(req.kind, req.body, declared, placement, req.team, labels)
        if applied:
            decision.body, decision.mutations = body, applied
            after = [(d, f) for d in docs for f in _findings(d, pset, req, body, facts, labels, mutating)]
            still = {(d.name, f.rule, f.path) for d, f in after}
            decision.fixed = [Violation(d.name, d.mode, f) for d, f in before
                              if (d.name, f.rule, f.path) not in still]  # fmt: skip
    denied_keys = {(f.rule, f.path) for d, f in after if d.mode == "enforce"}
    for d, f in after:
        if d.mode == "audit":
            if (f.rule, f.path) in denied_keys:
                continue  # already reported by an enforcing policy
            decision.warnings.append(Violation(d.name, d.mode, f))
            continue
        grant = next(
            (g for g in facts.exceptions if g.covers(f.rule, req.team, facts.images, facts.now)), None
        )
        if grant is not None:
            decision.warnings.append(Violation(d.name, d.mode, f, grant.id))
        else:
            decision.denials.append(Violation(d.name, d.mode, f))
    decision.allowed = not decision.denials
    if not decision.allowed:
        decision.body, decision.mutations = None, []  # nothing is carried out
    return decision
