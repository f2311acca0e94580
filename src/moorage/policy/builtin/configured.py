"""The rules a policy document configures, as rule objects: resources, quotas,
images, network and placement. Each reports nothing unless its section is set."""

from __future__ import annotations

from collections.abc import Callable

from moorage.policy.rule import AllOf, Check, Each, ItemRule, Rule, Subject, When
from moorage.policy.rules.base import Finding
from moorage.policy.rules.catalog import RULES
from moorage.policy.rules.image_surface import SURFACE_CHECKS
from moorage.policy.rules.image_trust import TRUST_CHECKS, TRUST_KINDS, TrustItem, needs_trust, trust_items
from moorage.policy.rules.images import NamedImage, image_digest, image_latest, image_registry, named_refs
from moorage.policy.rules.network import (
    NetworkView,
    Publish,
    network_create,
    network_host,
    network_join,
    publish_ip,
    publish_port,
)
from moorage.policy.rules.placement import check_placement
from moorage.policy.rules.resources import (
    QUOTA_CHECKS,
    QuotaCase,
    ResourceView,
    cpus_max,
    memory_max,
    pids_max,
    resource_required,
)
from moorage.policy.schema import ImagesSpec, NetworkSpec, ResourcesSpec

__all__ = ["IMAGES", "NETWORK", "PLACEMENT", "QUOTAS", "RESOURCES", "Required", "Section"]


class Section:
    """``check``'s findings when the document sets ``name`` (resources, quotas, images,
    network), else none: a section the document doesn't set costs one test, not one
    per rule (every rule checks it again, so this only saves time)."""

    def __init__(self, name: str, check: Check) -> None:
        self.name = name
        self.check = check

    def findings(self, subject: Subject) -> list[Finding]:
        """``check``'s findings, when the document sets the section."""
        return self.check.findings(subject) if getattr(subject.doc.spec, self.name) else []


# ------------------------------------------------------------------ resources
def _limits(
    check: Callable[[ResourceView, ResourcesSpec], list[Finding]],
) -> Callable[[Subject], list[Finding]]:
    def on(s: Subject) -> list[Finding]:
        view, spec = s.resources, s.doc.spec.resources
        return check(view, spec) if view is not None and spec else []

    return on


def _required(name: str) -> Rule:
    return Rule(
        RULES[f"resources.{name}-required"], _limits(lambda v, spec: resource_required(name, v, spec))
    )


class Required:
    """The ``*-required`` rules in the order ``resources.require`` names them."""

    def __init__(self, *names: str) -> None:
        self.rules = {name: _required(name) for name in names}

    def findings(self, subject: Subject) -> list[Finding]:
        """Each required limit that is missing, in ``resources.require``'s order."""
        view, spec = subject.resources, subject.doc.spec.resources
        if view is None or not spec or view.update:
            return []
        out: list[Finding] = []
        for name in spec.require or []:
            out += self.rules[name].check(subject)
        return out


RESOURCES = AllOf(
    Required("memory", "cpus", "pids"),
    Rule(RULES["resources.memory-max"], _limits(memory_max)),
    Rule(RULES["resources.cpus-max"], _limits(cpus_max)),
    Rule(RULES["resources.pids-max"], _limits(pids_max)),
)
"""Required limits, then maxima."""


# --------------------------------------------------------------------- quotas
def _quota(check: Callable[[QuotaCase], list[Finding]]) -> Callable[[Subject], list[Finding]]:
    def on(s: Subject) -> list[Finding]:
        quotas, view = s.doc.spec.quotas, s.resources
        if not quotas or view is None:
            return []
        return check(
            QuotaCase(s.req.kind, view, s.facts.usage, quotas, s.req.team, s.facts.replaced_replicas)
        )

    return on


QUOTAS = AllOf(*(Rule(RULES[rule_id], _quota(check)) for rule_id, check in QUOTA_CHECKS))
"""What a team may hold at once; fails closed when its use couldn't be counted."""


# --------------------------------------------------------------------- images
def _pins(s: Subject) -> list[NamedImage]:
    return named_refs(s.images) if s.images is not None else []


def _registry(s: Subject, item: NamedImage) -> list[Finding]:
    spec = s.doc.spec.images
    return image_registry(item, spec) if spec else []


def _latest(s: Subject, item: NamedImage) -> list[Finding]:
    spec = s.doc.spec.images
    return image_latest(item, spec) if spec else []


def _digest(s: Subject, item: NamedImage) -> list[Finding]:
    spec = s.doc.spec.images
    return image_digest(s.req.kind, item, spec) if spec else []


def _trust_items(s: Subject) -> list[TrustItem]:
    return trust_items(s.images, dict(s.facts.image_reports)) if s.images is not None else []


def _trust(
    check: Callable[[TrustItem, ImagesSpec, list[str]], list[Finding]],
) -> Callable[[Subject, TrustItem], list[Finding]]:
    def on(s: Subject, item: TrustItem) -> list[Finding]:
        spec = s.doc.spec.images
        if not spec:
            return []
        return check(item, spec, [kid for kid, _ in s.doc.compiled.trusted_keys])

    return on


def _judges_trust(s: Subject) -> bool:
    spec = s.doc.spec.images
    return bool(spec) and s.req.kind in TRUST_KINDS and spec is not None and needs_trust(spec)


IMAGES = AllOf(
    Each(
        ItemRule(RULES["images.registry"], _pins, _registry),
        ItemRule(RULES["images.latest"], _pins, _latest),
        ItemRule(RULES["images.digest"], _pins, _digest),
    ),
    When(_judges_trust, Each(*(ItemRule(RULES[rule_id], _trust_items, _trust(check))
                               for rule_id, check in (*TRUST_CHECKS, *SURFACE_CHECKS)))),
)  # fmt: skip
"""Registries and pins image by image, then (where images are run or pulled) each
image's signature, vulnerabilities, packages, SBOM, database and attack surface."""


# -------------------------------------------------------------------- network
def _network(
    check: Callable[[NetworkView, NetworkSpec, str], list[Finding]],
) -> Callable[[Subject], list[Finding]]:
    def on(s: Subject) -> list[Finding]:
        view, spec = s.network, s.doc.spec.network
        return check(view, spec, s.req.team) if view is not None and spec else []

    return on


def _publishes(s: Subject) -> list[Publish]:
    return s.network.publishes if s.network is not None else []


def _publish(
    check: Callable[[Publish, NetworkSpec], list[Finding]],
) -> Callable[[Subject, Publish], list[Finding]]:
    def on(s: Subject, item: Publish) -> list[Finding]:
        spec = s.doc.spec.network
        return check(item, spec) if spec else []

    return on


NETWORK = AllOf(
    Rule(RULES["network.host"], _network(network_host)),
    Rule(RULES["network.create"], _network(network_create)),
    Rule(RULES["network.join"], _network(network_join)),
    Each(
        ItemRule(RULES["network.publish-ip"], _publishes, _publish(publish_ip)),
        ItemRule(RULES["network.publish-port"], _publishes, _publish(publish_port)),
    ),
)
"""Host networking, the team's network names, then each published port's IP and port."""


# ------------------------------------------------------------------ placement
def _placement(s: Subject) -> list[Finding]:
    placement = s.doc.spec.placement
    if not placement:
        return []
    return check_placement(s.req.kind, s.body, placement, s.req.team, s.labels, s.mutating)


PLACEMENT = Rule(RULES["placement.class"], _placement)
"""A workload class's node constraints."""
