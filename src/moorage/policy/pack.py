"""The built-in checks as a composition: one :class:`Family` per rule family, and
:data:`BUILT_IN`, an :class:`AllOf` of them in the order their findings are reported.

Each family sees the same :class:`Subject` (one document, one request, the facts) and
returns the findings of its own rules; the rule ids, documentation and fixes are in
:mod:`moorage.policy.rules`. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from moorage.policy.documents import Document
from moorage.policy.request import Facts, Request
from moorage.policy.rules.base import Finding
from moorage.policy.rules.images import TRUST_KINDS, check_image_trust, check_images, needs_trust, view_images
from moorage.policy.rules.network import check_network, view_network
from moorage.policy.rules.operations import check_operation
from moorage.policy.rules.placement import check_placement
from moorage.policy.rules.resources import ResourceView, check_quotas, check_resources, view_resources
from moorage.policy.rules.runtime import check
from moorage.policy.rules.runtime_read import RuntimeView
from moorage.policy.rules.runtime_views import (
    view_build,
    view_container,
    view_exec,
    view_service,
    view_volume,
)

__all__ = ["BUILT_IN", "RUNTIME_VIEWS", "AllOf", "Family", "Subject"]

RUNTIME_VIEWS: dict[str, Callable[[object], RuntimeView]] = {
    "container.create": view_container,
    "exec.create": view_exec,
    "service.create": view_service,
    "service.update": view_service,
    "volume.create": view_volume,
}
"""The runtime view of each kind whose body a pack reads (builds are read from the query)."""


@dataclass(frozen=True, slots=True)
class Subject:
    """What every family looks at: one document, the request, the body (the mutated
    one on the second pass), the facts, the request's labels, whether mutations may
    add a class's placement constraints, and the limits the body sets (read once, for
    resources and quotas; see :meth:`of`)."""

    doc: Document
    req: Request
    body: object
    facts: Facts
    labels: dict[str, str]
    mutating: bool
    resources: ResourceView | None

    @classmethod
    def of(cls, doc: Document, req: Request, body: object, facts: Facts, labels: dict[str, str],
           mutating: bool) -> Subject:  # fmt: skip
        """The subject of one document's rules, with the body's limits read."""
        limits = view_resources(req.kind, body) if body is not None else None
        return cls(doc, req, body, facts, labels, mutating, limits)


@dataclass(frozen=True)
class Family:
    """A rule family: its name and the check that returns its rules' findings."""

    name: str
    check: Callable[[Subject], list[Finding]]

    def findings(self, subject: Subject) -> list[Finding]:
        """The findings of this family's rules on ``subject``."""
        return self.check(subject)


class AllOf:
    """Every member's findings, in member order (like sigstore's ``AllOf``)."""

    def __init__(self, *members: Family | AllOf) -> None:
        self.members = members
        self._checks: tuple[Callable[[Subject], list[Finding]], ...]
        # flattened once: a decision runs every family of every document, twice when
        # mutations apply
        self._checks = tuple(c for m in members for c in ((m.check,) if isinstance(m, Family) else m._checks))

    def findings(self, subject: Subject) -> list[Finding]:
        """The findings of every member, in order."""
        out: list[Finding] = []
        for family_check in self._checks:
            out += family_check(subject)
        return out


def _packs(s: Subject) -> list[Finding]:
    spec, kind, body, req = s.doc.spec, s.req.kind, s.body, s.req
    if not spec.packs:
        return []
    make_view = RUNTIME_VIEWS.get(kind)
    view = (make_view(body) if make_view is not None and body is not None
            else view_build(dict(req.query)) if kind == "image.build" else None)  # fmt: skip
    runtime: list[Finding] = []
    if view is not None:
        for pack in spec.packs:
            runtime += check(view, pack, s.doc.compiled.runtime_allow)
    # Every operation, not only the workload creates: an allow-list of operations
    # and of the fields that reach the host. A field the runtime view already
    # reported (HostConfig.NetworkMode=host, a build's networkmode) isn't repeated.
    seen = {f.path for f in runtime}
    allow = frozenset((spec.plugins.privileges if spec.plugins else None) or ())
    pools = tuple((spec.network.subnets if spec.network else None) or ())
    ops = check_operation(kind, body, req.query, req.object_ref, allow, s.facts.operation(), pools)
    return runtime + [f for f in ops if f.path not in seen]


def _resources(s: Subject) -> list[Finding]:
    rview = s.resources
    resources = s.doc.spec.resources
    return check_resources(rview, resources) if rview is not None and resources else []


def _quotas(s: Subject) -> list[Finding]:
    quotas, kind = s.doc.spec.quotas, s.req.kind
    rview = s.resources
    if not quotas or rview is None:
        return []
    return check_quotas(kind, rview, s.facts.usage, quotas, s.req.team, s.facts.replaced_replicas)


def _images(s: Subject) -> list[Finding]:
    images, kind, req = s.doc.spec.images, s.req.kind, s.req
    if not images:
        return []
    named = view_images(kind, s.body, dict(req.query), req.object_ref)
    out = check_images(kind, named, images)
    if kind in TRUST_KINDS and needs_trust(images):
        trusted = [kid for kid, _ in s.doc.compiled.trusted_keys]
        out += check_image_trust(named, images, dict(s.facts.image_reports), trusted)
    return out


def _network(s: Subject) -> list[Finding]:
    network = s.doc.spec.network
    if not network:
        return []
    return check_network(view_network(s.req.kind, s.body, s.req.object_ref), network, s.req.team)


def _placement(s: Subject) -> list[Finding]:
    placement = s.doc.spec.placement
    if not placement:
        return []
    return check_placement(s.req.kind, s.body, placement, s.req.team, s.labels, s.mutating)


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


BUILT_IN = AllOf(
    Family("runtime and operations", _packs),
    Family("resources", _resources),
    Family("quotas", _quotas),
    Family("images", _images),
    Family("network", _network),
    Family("placement", _placement),
    Family("custom", _custom),
    Family("rego", _rego),
)  # fmt: skip
"""Every family a document can turn on, in the order findings are reported."""
