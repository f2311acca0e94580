"""Placement on attested nodes: the constraints every governed service carries, and
the node labels Moorage projects from its store. Pure.

Constraints are read the way swarmkit reads them (``manager/constraint``): the
first of ``==`` and ``!=`` found splits key from value, both trimmed; the
``node.labels.`` prefix matches in any case, the label name after it exactly, and
values compare case-insensitively. A missing label equals ``""``, so ``!=`` matches
every unlabelled node: only ``==`` requirements allow-list nodes, and exclusion
uses ``!=true``, which unlabelled nodes satisfy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ATTESTED",
    "ENROLLED",
    "MOORAGE_PREFIX",
    "Governed",
    "ServiceView",
    "canonical_constraint",
    "class_of_constraints",
    "govern_service",
    "moorage_labels",
    "parse_constraint",
    "projected_labels",
    "required_constraints",
]

MOORAGE_PREFIX = "io.moorage."
ENROLLED = "io.moorage.enrolled"
ATTESTED = "io.moorage.attested."
_LABELS = "node.labels."


def parse_constraint(text: str) -> tuple[str, str, str] | None:
    """``(key, op, value)`` as swarmkit splits it, or None when it has no operator."""
    for op in ("==", "!="):
        if op in text:
            key, _, value = text.partition(op)
            return key.strip(), op, value.strip()
    return None


def canonical_constraint(text: str) -> str:
    """One spelling per meaning: the key's fixed prefix in lower case, the label name
    as written (swarmkit looks it up exactly), the value in lower case."""
    parsed = parse_constraint(text)
    if parsed is None:
        return text
    key, op, value = parsed
    key = _LABELS + key[len(_LABELS) :] if key.lower().startswith(_LABELS) else key.lower()
    return f"{key}{op}{value.lower()}"


def _touches_moorage(text: str) -> bool:
    """A constraint on a label in Moorage's namespace, in any case (a label spelt
    ``IO.Moorage.x`` is not Moorage's, but a constraint on it is an attempt to look
    like one, and is refused with the rest)."""
    parsed = parse_constraint(text)
    if parsed is None:
        return MOORAGE_PREFIX in text.lower()
    key = parsed[0].lower()
    return key.startswith(_LABELS) and key[len(_LABELS) :].startswith(MOORAGE_PREFIX)


def required_constraints(cls: str, exclusive: Iterable[str], pins: Iterable[str]) -> list[str]:
    """What a service of class ``cls`` (``""`` for none) must carry: enrolled nodes
    only; its class's attested nodes; off nodes of exclusive classes other than its
    own; off nodes pinned out of its class."""
    out = [f"node.labels.{ENROLLED}==true"]
    if cls:
        out.append(f"node.labels.{ATTESTED}{cls}==true")
    out += [f"node.labels.{ATTESTED}{x}!=true" for x in sorted(set(exclusive)) if x != cls]
    if cls:
        out += [f"node.id!={n}" for n in sorted(set(pins))]
    return out


@dataclass
class Governed:
    """The service body to forward, what was added, and what can't be accepted."""

    body: Any
    added: list[str] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (field, value, message)


def _key(obj: dict[str, Any], name: str) -> str | None:
    return next((k for k in obj if isinstance(k, str) and k.lower() == name.lower()), None)


def _slot(obj: dict[str, Any], name: str, default: Any) -> Any:
    k = _key(obj, name)
    if k is None or obj[k] is None:
        obj[k or name] = default
        return default
    return obj[k]


def govern_service(body: Any, cls: str, exclusive: Iterable[str], pins: Iterable[str]) -> Governed:
    """Check and complete a service spec's constraints (changes ``body`` in place).

    A constraint on a label under ``io.moorage.`` must be one Moorage requires here:
    anything else (a dropped ``==``, an edited value, a ``!=`` on the class, another
    spelling that means something else) is refused. Required constraints that are
    missing are added, on create and update alike: a client that drops one gets it
    back."""
    out = Governed(body)
    if not isinstance(body, dict):
        return out
    required = required_constraints(cls, exclusive, pins)
    allowed = {canonical_constraint(c) for c in required}
    task = _slot(body, "TaskTemplate", {})
    if not isinstance(task, dict):
        return out
    placement = _slot(task, "Placement", {})
    if not isinstance(placement, dict):
        return out
    cons = _slot(placement, "Constraints", [])
    if not isinstance(cons, list):
        return out
    have = set()
    for i, c in enumerate(cons):
        text = str(c)
        canon = canonical_constraint(text)
        if _touches_moorage(text) and canon not in allowed:
            out.refused.append(
                (
                    f"TaskTemplate.Placement.Constraints[{i}]",
                    text,
                    "constraints on io.moorage. node labels are Moorage's: "
                    + (f"a class {cls} service carries exactly " if cls else "this service carries exactly ")
                    + ", ".join(c for c in required if c.startswith("node.labels.")),
                )
            )
        have.add(canon)
    for c in required:
        if canonical_constraint(c) not in have:
            cons.append(c)
            out.added.append(f"TaskTemplate.Placement.Constraints += {c}")
    return out


def class_of_constraints(constraints: Iterable[str]) -> set[str]:
    """The classes a service's constraints require (``attested.X==true``)."""
    out = set()
    for c in constraints:
        parsed = parse_constraint(str(c))
        if parsed is None:
            continue
        key, op, value = parsed
        prefix = _LABELS + ATTESTED
        ours = key.lower().startswith(_LABELS) and key[len(_LABELS) :].startswith(ATTESTED)
        if ours and op == "==" and value.lower() == "true" and len(key) > len(prefix):
            out.add(key[len(prefix) :])
    return out


@dataclass(frozen=True)
class ServiceView:
    """What the reconciler needs of a service."""

    id: str
    name: str
    version: int
    constraints: tuple[str, ...]
    spec: dict[str, Any]

    @property
    def classes(self) -> set[str]:
        """The workload classes the service's placement constraints ask for."""
        return class_of_constraints(self.constraints)


def moorage_labels(labels: dict[str, str]) -> dict[str, str]:
    """The labels in Moorage's namespace, in any case (a hand-made ``IO.MOORAGE.x``
    is drift too)."""
    return {k: v for k, v in labels.items() if k.lower().startswith(MOORAGE_PREFIX)}


def projected_labels(enrolled: bool, classes: Iterable[str]) -> dict[str, str]:
    """The ``io.moorage.*`` labels a node must carry, from the store's truth."""
    out = {ENROLLED: "true"} if enrolled else {}
    if enrolled:
        out.update({f"{ATTESTED}{c}": "true" for c in sorted(set(classes))})
    return out
