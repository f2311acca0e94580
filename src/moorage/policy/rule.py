"""The vocabulary the built-in rules are written in: the :class:`Subject` every rule
looks at, a :class:`Rule` (its documentation and its check), and the compositions
that make packs of rules (:class:`AllOf`, :class:`Each`, :class:`Unseen`).

A composition is itself something with ``findings(subject)``, so packs nest: the
``baseline`` pack is an :class:`AllOf` of rules, and :data:`moorage.policy.pack.BUILT_IN`
an :class:`AllOf` of packs. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, NamedTuple, Protocol, TypeVar

from moorage.policy.documents import Document
from moorage.policy.request import Facts, Request
from moorage.policy.rules.base import Finding, RuleDoc
from moorage.policy.rules.images import view_images
from moorage.policy.rules.network import NetworkView, view_network
from moorage.policy.rules.operations_base import Operation
from moorage.policy.rules.resources import ResourceView, view_resources
from moorage.policy.rules.runtime_read import RuntimeView
from moorage.policy.rules.runtime_views import (
    view_build,
    view_container,
    view_exec,
    view_service,
    view_volume,
)

__all__ = [
    "RUNTIME_VIEWS",
    "AllOf",
    "Check",
    "Documented",
    "Each",
    "Family",
    "ItemRule",
    "Rule",
    "Subject",
    "Unseen",
    "When",
]

T = TypeVar("T")

RUNTIME_VIEWS: dict[str, Callable[[object], RuntimeView]] = {
    "container.create": view_container,
    "exec.create": view_exec,
    "service.create": view_service,
    "service.update": view_service,
    "volume.create": view_volume,
}
"""The runtime view of each kind whose body a pack reads (builds are read from the query)."""


class Subject(NamedTuple):
    """What every rule looks at: one document, the request, the body (the mutated
    one on the second pass), the facts, the request's labels, whether mutations may
    add a class's placement constraints, and the views the rules share, read once
    (see :meth:`of`): the limits the body sets; the runtime view and the operation
    when the document turns a pack on; the networks when it configures ``network``;
    the images named when it configures ``images``."""

    doc: Document
    req: Request
    body: object
    facts: Facts
    labels: dict[str, str]
    mutating: bool
    resources: ResourceView | None
    runtime: RuntimeView | None = None
    operation: Operation | None = None
    network: NetworkView | None = None
    images: list[tuple[str, str]] | None = None

    @classmethod
    def of(cls, doc: Document, req: Request, body: object, facts: Facts, labels: dict[str, str],
           mutating: bool) -> Subject:  # fmt: skip
        """The subject of one document's rules, with the body's limits read, and its
        runtime view when a pack will read it."""
        spec, kind = doc.spec, req.kind
        # the limits only for the sections that read them
        limits = (view_resources(kind, body)
                  if body is not None and (spec.resources is not None or spec.quotas is not None)
                  else None)  # fmt: skip
        runtime = operation = None
        if spec.packs:
            make_view = RUNTIME_VIEWS.get(kind)
            runtime = (make_view(body) if make_view is not None and body is not None
                       else view_build(dict(req.query)) if kind == "image.build" else None)  # fmt: skip
            compiled = doc.compiled
            operation = Operation(kind, body, req.query, req.object_ref, compiled.plugin_privileges,
                                  facts.operation(), compiled.subnets)  # fmt: skip
        network = view_network(kind, body, req.object_ref) if spec.network is not None else None
        images = view_images(kind, body, dict(req.query), req.object_ref) if spec.images is not None else None
        return cls(doc, req, body, facts, labels, mutating, limits, runtime, operation, network, images)


class Documented(Protocol):
    """A rule object: its documentation, its id and its findings."""

    @property
    def doc(self) -> RuleDoc:
        """The rule's entry in the catalog."""
        ...

    @property
    def id(self) -> str:
        """The rule's id."""
        ...

    def findings(self, subject: Subject, /) -> list[Finding]:
        """This rule's findings on ``subject``."""
        ...


class Check(Protocol):
    """Anything that reports findings on a subject: a rule or a composition of rules."""

    def findings(self, subject: Subject, /) -> list[Finding]:
        """The findings on ``subject``, in the order they are reported."""
        ...


@dataclass(frozen=True)
class Rule:
    """A built-in rule: its documentation (id, why, fix, ...) and its check, which
    returns exactly this rule's findings."""

    doc: RuleDoc
    check: Callable[[Subject], list[Finding]]

    @property
    def id(self) -> str:
        """The rule's id, as findings and ``moorage policy explain`` name it."""
        return self.doc.id

    def findings(self, subject: Subject) -> list[Finding]:
        """This rule's findings on ``subject``."""
        return self.check(subject)


@dataclass(frozen=True)
class ItemRule(Generic[T]):
    """A rule that checks each item of a view (a mount, an image, a published port):
    ``items`` reads them from the subject, ``check_item`` judges one. Rules that
    share ``items`` are composed with :class:`Each`, which keeps their findings in
    item order."""

    doc: RuleDoc
    items: Callable[[Subject], Iterable[T]]
    check_item: Callable[[Subject, T], list[Finding]]

    @property
    def id(self) -> str:
        """The rule's id, as findings and ``moorage policy explain`` name it."""
        return self.doc.id

    def check(self, subject: Subject) -> list[Finding]:
        """This rule's findings on every item of ``subject``."""
        return [f for item in self.items(subject) for f in self.check_item(subject, item)]

    def findings(self, subject: Subject) -> list[Finding]:
        """This rule's findings on ``subject``."""
        return self.check(subject)


class Each(Generic[T]):
    """Rules over the same items, item by item: for each item, every rule in order
    (so one reading of a mount reports either docker-socket or host-path where it
    stands)."""

    def __init__(self, *rules: ItemRule[T]) -> None:
        if len({id(r.items) for r in rules}) > 1:
            raise ValueError("the rules of an Each must read the same items")
        self.rules = rules
        self._items = rules[0].items
        self._checks = tuple(r.check_item for r in rules)

    def findings(self, subject: Subject) -> list[Finding]:
        """Every rule's findings, item by item."""
        out: list[Finding] = []
        for item in self._items(subject):
            for check_item in self._checks:
                out += check_item(subject, item)
        return out


@dataclass(frozen=True)
class Family:
    """Rules whose ids come from the policy document (``custom.*``, ``rego.*``): a
    name and the check that returns their findings."""

    name: str
    check: Callable[[Subject], list[Finding]]

    def findings(self, subject: Subject) -> list[Finding]:
        """The findings of this family's rules on ``subject``."""
        return self.check(subject)


def _flat(member: Check) -> tuple[Callable[[Subject], list[Finding]], ...]:
    if isinstance(member, AllOf):
        return member.checks
    return (member.check,) if isinstance(member, Rule) else (member.findings,)


class AllOf:
    """Every member's findings, in member order (like sigstore's ``AllOf``)."""

    def __init__(self, *members: Check) -> None:
        self.members = members
        # flattened once: a decision runs every rule of every document, twice when
        # mutations apply
        self.checks: tuple[Callable[[Subject], list[Finding]], ...] = tuple(
            c for m in members for c in _flat(m)
        )
        """Every member's check, flattened, in order."""

    def findings(self, subject: Subject) -> list[Finding]:
        """The findings of every member, in order."""
        out: list[Finding] = []
        for check in self.checks:
            out += check(subject)
        return out


class Unseen:
    """``first``'s findings, then those of ``then`` on a field ``first`` did not
    already report (the operations allow-list repeats nothing the runtime view said)."""

    def __init__(self, first: Check, then: Check) -> None:
        self.first = first
        self.then = then

    def findings(self, subject: Subject) -> list[Finding]:
        """``first``'s findings, then ``then``'s on the paths not yet reported."""
        reported = self.first.findings(subject)
        if not reported:
            return self.then.findings(subject)
        seen = {f.path for f in reported}
        return reported + [f for f in self.then.findings(subject) if f.path not in seen]


class When:
    """``check``'s findings when ``applies`` holds for the subject, else none (a pack
    runs only where a document turns it on)."""

    def __init__(self, applies: Callable[[Subject], bool], check: Check) -> None:
        self.applies = applies
        self.check = check

    def findings(self, subject: Subject) -> list[Finding]:
        """``check``'s findings, when ``applies``."""
        return self.check.findings(subject) if self.applies(subject) else []
