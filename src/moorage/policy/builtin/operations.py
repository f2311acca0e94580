"""The packs' operation allow-list as rule objects: every operation is modelled, plain
or a read, and a modelled one is held to the rules of its kind."""

from __future__ import annotations

from collections.abc import Callable

from moorage.policy.rule import AllOf, Check, Each, ItemRule, Rule, Subject
from moorage.policy.rules.base import Finding
from moorage.policy.rules.catalog import RULES
from moorage.policy.rules.operations import (
    MODELLED,
    NETWORK_KINDS,
    ROUTES,
    OperationCheck,
    unknown_operation,
)
from moorage.policy.rules.operations_base import Operation
from moorage.policy.rules.operations_net import (
    NETWORK_FIELD_CHECKS,
    NetField,
    NetworkFieldCheck,
    network_fields,
)

__all__ = ["NETWORK_OPERATIONS", "OPERATION_RULES", "UNKNOWN_OPERATION", "Operations"]


def _for(kinds: frozenset[str], check: OperationCheck) -> Callable[[Subject], list[Finding]]:
    def on(s: Subject) -> list[Finding]:
        op = s.operation
        return check(op) if op is not None and op.kind in kinds else []

    return on


UNKNOWN_OPERATION = Rule(RULES["runtime.unknown-operation"], lambda s: unknown_operation(s.req.kind))
"""``runtime.unknown-operation``: an operation nobody has modelled is refused."""

OPERATION_RULES: tuple[tuple[frozenset[str], tuple[Rule, ...]], ...] = tuple(
    (kinds, tuple(Rule(RULES[rule_id], _for(kinds, check)) for rule_id, check in checks))
    for kinds, checks in ROUTES
)
"""The kinds each group of operation rules reads, with the rules, in report order."""


def _network_fields(s: Subject) -> list[NetField]:
    op = s.operation
    return network_fields(op) if op is not None and op.kind in NETWORK_KINDS else []


def _on_field(
    check: Callable[[Operation, NetField], list[Finding]],
) -> Callable[[Subject, NetField], list[Finding]]:
    def on(s: Subject, field: NetField) -> list[Finding]:
        return check(s.operation, field) if s.operation is not None else []

    return on


class FieldByField(Each[NetField]):
    """The network rules over an operation's network fields, field by field, as
    :class:`Each` runs them; a field goes only to the rules that judge its kind of
    field, with the operation read once."""

    def __init__(self) -> None:
        super().__init__(
            *(
                ItemRule(RULES[rule_id], _network_fields, _on_field(check))
                for rule_id, _, check in NETWORK_FIELD_CHECKS
            )
        )
        tags = {tag for _, judged, _ in NETWORK_FIELD_CHECKS for tag in judged}
        self._judges: dict[str, tuple[NetworkFieldCheck, ...]] = {
            tag: tuple(check for _, judged, check in NETWORK_FIELD_CHECKS if tag in judged) for tag in tags
        }

    def findings(self, subject: Subject) -> list[Finding]:
        """Every network rule's findings, field by field."""
        op = subject.operation
        if op is None or op.kind not in NETWORK_KINDS:
            return []
        out: list[Finding] = []
        for field in network_fields(op):
            for check in self._judges.get(field[0], ()):
                out += check(op, field)
        return out


NETWORK_OPERATIONS = FieldByField()
"""The network rules of every other modelled kind, judged field by field over the
fields that name or configure a network (host network, drivers, options, pools,
ingress)."""


class Operations:
    """The operation rules of the request's kind: only those of its kind can report."""

    def __init__(self) -> None:
        self._by_kind: dict[str, Check] = {
            k: AllOf(*rules) for kinds, rules in OPERATION_RULES for k in kinds
        }

    def findings(self, subject: Subject) -> list[Finding]:
        """The findings of the operation rules of ``subject``'s kind."""
        kind = subject.req.kind
        if kind not in MODELLED:
            return UNKNOWN_OPERATION.check(subject)
        return self._by_kind.get(kind, NETWORK_OPERATIONS).findings(subject)
