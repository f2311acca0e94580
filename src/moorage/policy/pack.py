"""The built-in checks as a composition of rule objects: :data:`BUILT_IN`, an
:class:`AllOf` of the packs (runtime rules, then the operation allow-list) and of the
rules a document configures, in the order their findings are reported.

Each rule sees the same :class:`Subject` (one document, one request, the facts, the
views read once) and returns its own findings; its id, documentation and fix are in
:mod:`moorage.policy.rules`, its object in :mod:`moorage.policy.builtin`. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from moorage.policy.builtin.configured import IMAGES, NETWORK, PLACEMENT, QUOTAS, RESOURCES, Required, Section
from moorage.policy.builtin.operations import (
    NETWORK_OPERATIONS,
    OPERATION_RULES,
    UNKNOWN_OPERATION,
    Operations,
)
from moorage.policy.builtin.runtime import PACKS, AsRead, Packs, RuntimePack
from moorage.policy.documents import Document
from moorage.policy.rule import (
    RUNTIME_VIEWS,
    AllOf,
    Check,
    Documented,
    Each,
    Family,
    ItemRule,
    Rule,
    Subject,
    Unseen,
    When,
)
from moorage.policy.rules.base import Finding

__all__ = [
    "BUILT_IN",
    "ENFORCED",
    "RUNTIME_VIEWS",
    "AllOf",
    "Family",
    "Plan",
    "Subject",
    "built_in_rules",
    "plan",
]


def _custom(s: Subject) -> list[Finding]:
    req, body, out = s.req, s.body, []
    variables: dict[str, object] | None = None
    for rule in s.doc.compiled.cel:
        if rule.kinds and req.kind not in rule.kinds:
            continue
        if variables is None:
            variables = {
                "request": body if body is not None else {}, "kind": req.kind, "method": req.method,
                "path": req.path, "query": {k: list(v) for k, v in req.query.items()}, "user": req.user,
                "team": req.team, "teams": list(req.teams), "labels": s.labels,
            }  # fmt: skip
        try:
            if rule.violated(variables):
                out.append(Finding(f"custom.{rule.id}", "(request)", rule.expr, rule.message, rule.fix))
        except RuntimeError as exc:
            out.append(Finding(f"custom.{rule.id}", "(request)", rule.expr,
                               f"the rule could not be evaluated ({exc}), so it fails closed",
                               "guard optional fields with has(...)"))  # fmt: skip
    return out


def _rego(s: Subject) -> list[Finding]:
    req, out = s.req, []
    for rego in s.doc.compiled.rego:
        rego_input: dict[str, object] = {
            "Method": req.method, "Path": req.path, "Query": {k: list(v) for k, v in req.query.items()},
            "Headers": dict(req.headers), "Body": s.body, "User": req.user, "AuthMethod": req.auth,
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


ENFORCED = When(lambda s: bool(s.doc.spec.packs), Unseen(Packs(), Operations()))
"""The packs a document turns on: their runtime rules, then the operation allow-list
(which repeats no field a runtime rule already reported, such as
HostConfig.NetworkMode=host or a build's networkmode)."""

BUILT_IN = AllOf(
    ENFORCED,
    # a section the document doesn't set costs one test, not one per rule
    Section("resources", RESOURCES),
    Section("quotas", QUOTAS),
    Section("images", IMAGES),
    Section("network", NETWORK),
    PLACEMENT,
    Family("custom", _custom),
    Family("rego", _rego),
)
"""Every rule a document can turn on, in the order findings are reported."""


_OPERATIONS = Operations()


class _Enforced:
    """:data:`ENFORCED` for one document: its packs resolved, then the operation
    allow-list on the fields they did not report."""

    def __init__(self, packs: tuple[RuntimePack, ...]) -> None:
        self.packs = packs

    def findings(self, subject: Subject) -> list[Finding]:
        """The packs' runtime findings, then the operation rules' on fields not yet reported."""
        reported: list[Finding] = []
        if subject.runtime is not None:
            for pack in self.packs:
                reported += pack.findings(subject)
        ops = _OPERATIONS.findings(subject)
        if not reported:
            return ops
        seen = {f.path for f in reported}
        return reported + [f for f in ops if f.path not in seen]


@dataclass(frozen=True)
class Plan:
    """One document's part of :data:`BUILT_IN`, compiled once at load: only the checks
    its sections turn on, flat and in the order :data:`BUILT_IN` reports them (a unit
    test holds the two to the same findings). A decision runs every check of every
    applicable document, twice when mutations apply, so nothing here is decided per
    request that the document already decides."""

    checks: tuple[Callable[[Subject], list[Finding]], ...]

    def findings(self, subject: Subject) -> list[Finding]:
        """The document's findings on ``subject``, in report order."""
        out: list[Finding] = []
        for check in self.checks:
            out += check(subject)
        return out


def plan(doc: Document) -> Plan:
    """The checks ``doc`` turns on, in report order (see :class:`Plan`)."""
    spec = doc.spec
    checks: list[Callable[[Subject], list[Finding]]] = []
    if spec.packs:
        unknown = [name for name in spec.packs if name not in PACKS]
        if unknown:
            raise ValueError(f"unknown pack {unknown[0]!r}: use baseline or restricted")
        checks.append(_Enforced(tuple(PACKS[name] for name in spec.packs)).findings)
    for name, section in (("resources", RESOURCES), ("quotas", QUOTAS), ("images", IMAGES),
                          ("network", NETWORK)):  # fmt: skip
        if getattr(spec, name):
            checks += AllOf(section).checks
    if spec.placement:
        checks.append(PLACEMENT.check)
    if doc.compiled.cel:
        checks.append(_custom)
    if doc.compiled.rego:
        checks.append(_rego)
    return Plan(tuple(checks))


def _walk(check: Check) -> list[Documented | Family]:
    if isinstance(check, (Rule, ItemRule, Family)):
        return [check]
    if isinstance(check, (AllOf, RuntimePack)):
        return [r for m in check.members for r in _walk(m)]
    if isinstance(check, Required):
        return list(check.rules.values())
    if isinstance(check, AsRead):
        return list(check.rules)
    if isinstance(check, Each):
        return list(check.rules)
    if isinstance(check, (When, Section)):
        return _walk(check.check)
    if isinstance(check, Unseen):
        return _walk(check.first) + _walk(check.then)
    return []


def built_in_rules() -> list[Documented | Family]:
    """Every built-in rule object, pack by pack (a rule both packs enforce is listed
    once per pack), then the operation rules and the configured ones; a
    :class:`Family` stands for rules whose findings can't be told apart by one check
    (the runtime view's reading, custom and rego rules)."""
    out: list[Documented | Family] = []
    for pack in PACKS.values():
        out += _walk(pack)
    out += [
        UNKNOWN_OPERATION,
        *(r for _, rules in OPERATION_RULES for r in rules),
        *_walk(NETWORK_OPERATIONS),
    ]
    for check in (RESOURCES, QUOTAS, IMAGES, NETWORK, PLACEMENT):
        out += _walk(check)
    return out
