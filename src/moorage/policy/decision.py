"""``evaluate(policies, request, facts) -> PolicyDecision``: pure, no I/O, no clock.

The families each see one normalised view of the request. Violations of documents
in ``audit`` mode become warnings; in ``enforce`` mode they deny unless an approved,
unexpired exception covers them. Declared mutations (safe defaults) are applied
after validation; a violation they cure is reported as fixed, not denied, and a
mutation never widens what the caller asked for.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import msgspec

from moorage.policy.documents import Document
from moorage.policy.loader import PolicySet
from moorage.policy.mutations import merge_mutations, mutate
from moorage.policy.pack import Subject
from moorage.policy.request import ExceptionGrant, Facts, Request
from moorage.policy.rules.base import Finding, _get
from moorage.policy.rules.placement import placement_constraints

__all__ = [
    "ExceptionGrant",
    "Facts",
    "PolicyDecision",
    "Request",
    "Violation",
    "WorkloadClass",
    "evaluate",
    "request_labels",
    "workload_class",
]  # fmt: skip


class Violation(msgspec.Struct, frozen=True):
    """One finding of one document, in its mode; ``excepted_by`` names the grant that excused it."""

    policy: str
    mode: str
    finding: Finding
    excepted_by: str | None = None

    def line(self) -> str:
        """The finding as one line: rule, field, value, message and fix."""
        f = self.finding
        return f"{f.rule} at {f.path} ({f.value!r}): {f.message}. Fix: {f.fix}"


class PolicyDecision(msgspec.Struct):
    """The outcome for one request: allowed or not, what denied, warned or was fixed, the
    mutations applied and the mutated body."""

    allowed: bool
    denials: list[Violation] = msgspec.field(default_factory=list)
    warnings: list[Violation] = msgspec.field(default_factory=list)  # audit mode and excepted
    fixed: list[Violation] = msgspec.field(default_factory=list)  # cured by a declared mutation
    mutations: list[str] = msgspec.field(default_factory=list)
    body: object = None  # the mutated body, or None when unchanged
    policy_version: str = ""
    policies: list[str] = msgspec.field(default_factory=list)  # names of the documents that applied

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


# ------------------------------------------------------------------ evaluate
def _findings(pset: PolicySet, doc: Document, req: Request, body: object, facts: Facts,
              labels: dict[str, str], mutating: bool) -> list[Finding]:  # fmt: skip
    return pset.plan(doc).findings(Subject.of(doc, req, body, facts, labels, mutating))


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
        (d, f) for d in docs for f in _findings(pset, d, req, req.body, facts, labels, mutating)
    ]
    after = before
    if mutating and isinstance(req.body, dict):
        body, applied = mutate(req.kind, req.body, declared, placement, req.team, labels)
        if applied:
            decision.body, decision.mutations = body, applied
            after = [(d, f) for d in docs for f in _findings(pset, d, req, body, facts, labels, mutating)]
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
