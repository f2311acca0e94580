"""The runtime rules of ``baseline`` and ``restricted``, as rule objects over the
subject's runtime view, and the two packs composed of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from moorage.policy.rule import Check, Each, ItemRule, Rule, Subject
from moorage.policy.rules.base import Finding
from moorage.policy.rules.catalog import RULES
from moorage.policy.rules.runtime import (
    BASELINE_CHECKS,
    MOUNTS,
    READ,
    RESTRICTED_CHECKS,
    VIEW_FIELDS,
    RuntimeCheck,
    docker_socket,
    host_path,
)
from moorage.policy.rules.runtime_allow import RuntimeAllow
from moorage.policy.rules.runtime_read import REFUSED_WHILE_READING, RuntimeView

__all__ = [
    "BASELINE",
    "PACKS",
    "RESTRICTED",
    "AsRead",
    "Packs",
    "RuntimePack",
    "RuntimeRule",
    "as_read",
    "runtime_rule",
]


def _unused(s: Subject) -> list[Finding]:
    return []


def _nothing(view: RuntimeView, pack: str, allow: RuntimeAllow) -> list[Finding]:
    return []


@dataclass(frozen=True)
class RuntimeRule(Rule):
    """A runtime rule as one pack enforces it (capabilities differ by pack): its check
    reads the subject's runtime view; :class:`RuntimePack` hands the view to
    ``runtime_check`` directly."""

    runtime_check: RuntimeCheck = field(default=_nothing)
    pack: str = "baseline"


def runtime_rule(rule_id: str, check: RuntimeCheck, pack: str) -> RuntimeRule:
    """The rule ``rule_id`` as ``pack`` enforces it."""

    def on(s: Subject) -> list[Finding]:
        view = s.runtime
        return check(view, pack, s.doc.compiled.runtime_allow) if view is not None else []

    return RuntimeRule(RULES[rule_id], on, check, pack)


def _mounts(s: Subject) -> list[tuple[str, str]]:
    return s.runtime.host_paths if s.runtime is not None else []


def _docker_socket(s: Subject, item: tuple[str, str]) -> list[Finding]:
    return docker_socket(*item)


def _host_path(s: Subject, item: tuple[str, str]) -> list[Finding]:
    return host_path(*item)


# One reading of each host path, reported under whichever of the two rules it breaks.
_MOUNT_RULES = Each(
    ItemRule(RULES["runtime.docker-socket"], _mounts, _docker_socket),
    ItemRule(RULES["runtime.host-path"], _mounts, _host_path),
)


def as_read(rule_id: str) -> Rule:
    """The part of rule ``rule_id`` the runtime view's reader found: its findings among
    the view's refusals."""

    def on(s: Subject) -> list[Finding]:
        view = s.runtime
        return [f for f in view.refused if f.rule == rule_id] if view is not None else []

    return Rule(RULES[rule_id], on)


class AsRead:
    """The rules' findings the runtime view's reader made, in the order it made them
    (which interleaves the rules). It reports every refusal of the reader, so one under
    a rule missing from ``rules`` is still refused; a test keeps ``rules`` complete."""

    def __init__(self, *rules: Rule) -> None:
        self.rules = rules

    def findings(self, subject: Subject) -> list[Finding]:
        """The reader's refusals, in reading order."""
        view = subject.runtime
        return list(view.refused) if view is not None and view.refused else []


_READ = AsRead(*(as_read(rule_id) for rule_id in REFUSED_WHILE_READING))


class RuntimePack:
    """A pack: its rules in report order, run over one reading of the runtime view and
    the policy's allow-list additions."""

    def __init__(self, name: str, *members: tuple[str, Check]) -> None:
        self.name = name
        self.members = tuple(m for _, m in members)
        # (the view's field the member reads, or "", its runtime check, or its findings)
        self._runs: tuple[tuple[str, RuntimeCheck, Callable[[Subject], list[Finding]]], ...] = tuple(
            (VIEW_FIELDS.get(key, ""), m.runtime_check, _unused)
            if isinstance(m, RuntimeRule)
            else (VIEW_FIELDS.get(key, ""), _nothing, m.findings)
            for key, m in members
        )

    def findings(self, subject: Subject) -> list[Finding]:
        """Every rule's findings, in order (none without a runtime view)."""
        view = subject.runtime
        if view is None:
            return []
        allow, pack = subject.doc.compiled.runtime_allow, self.name
        out: list[Finding] = []
        for field_name, runtime_check, other in self._runs:
            if field_name and not getattr(view, field_name):
                continue  # nothing to judge: the rule would report nothing
            # a runtime rule is handed the view read once; any other member reads the subject
            out += runtime_check(view, pack, allow) if other is _unused else other(subject)
        return out


def _pack(pack: str, checks: tuple[tuple[str, RuntimeCheck], ...]) -> RuntimePack:
    members: list[tuple[str, Check]] = []
    for key, check in checks:
        if key == MOUNTS:
            members.append((key, _MOUNT_RULES))
        elif key == READ:
            members.append((key, _READ))
        else:
            members.append((key, runtime_rule(key, check, pack)))
    return RuntimePack(pack, *members)


BASELINE = _pack("baseline", BASELINE_CHECKS)
"""``baseline``: no host-level escape, rule by rule in report order."""

RESTRICTED = _pack("restricted", RESTRICTED_CHECKS)
"""``restricted``: baseline plus least privilege, rule by rule in report order."""

PACKS: dict[str, RuntimePack] = {"baseline": BASELINE, "restricted": RESTRICTED}
"""The built-in packs by name."""


class Packs:
    """Every pack a document turns on, in its order, over the subject's runtime view."""

    def findings(self, subject: Subject) -> list[Finding]:
        """The findings of each pack the document lists."""
        if subject.runtime is None:
            return []
        out: list[Finding] = []
        for name in subject.doc.spec.packs or ():
            pack = PACKS.get(name)
            if pack is None:
                raise ValueError(f"unknown pack {name!r}: use baseline or restricted")
            out += pack.findings(subject)
        return out
