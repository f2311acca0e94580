"""The packs' operation allow-list as rule objects: every operation is modelled, plain
or a read, and a modelled one is held to the rules of its kind."""

from __future__ import annotations

from collections.abc import Callable

from moorage.policy.rule import AllOf, Check, Family, Rule, Subject
from moorage.policy.rules.base import Finding
from moorage.policy.rules.catalog import RULES
from moorage.policy.rules.operations import (
    MODELLED,
    NETWORK_CHECK,
    NETWORK_KINDS,
    ROUTES,
    OperationCheck,
    unknown_operation,
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

NETWORK_OPERATIONS = Family("network operations", _for(NETWORK_KINDS, NETWORK_CHECK))
"""network.host, network.driver, network.driver-option, network.subnet and
network.ingress, read in one pass over the request's networks (their findings
interleave by network, so they stay one check)."""


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
