"""Continuous compliance, the pure core: a running workload judged again by the same
``evaluate`` that admitted it, keyed by everything its result depends on, with the
action each rule sets for workloads that fall out of compliance.

A running object is judged as it runs: the policy set's mutations are taken out
(a default the gateway would have added is a finding on an object that lacks it),
and quota rules are left out (they count what a create would add). No I/O here;
:mod:`moorage.admission.sweeper` gathers the inputs and keeps the results.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from moorage.admission.running import Workload
from moorage.engine_api.canonical import RequestError, read_body
from moorage.policy.decision import Facts, PolicyDecision, Request, Violation, evaluate
from moorage.policy.loader import PolicySet
from moorage.policy.rules.images import ImageFacts

__all__ = [
    "ACTIONS",
    "Inputs",
    "Item",
    "ObjectReport",
    "action_for",
    "blocking",
    "image_digest_of",
    "judge",
    "result_key",
    "running_set",
]

ACTIONS = ("report", "warn", "block-update", "require-at-restart")
"""What happens to a workload that falls out of compliance with a rule, mildest first."""

_SKIPPED_FAMILIES = ("quota.",)  # creation-time counts: a running object is already counted


@dataclass(frozen=True)
class Inputs:
    """What a result depends on besides the object's own spec and image."""

    policy_version: str
    db_version: str = ""
    attestations: str = ""  # a digest of the attestations in force
    exceptions: str = ""  # a digest of the approved, unexpired exceptions

    def digest(self) -> str:
        """One value that changes when any input does."""
        return _digest([self.policy_version, self.db_version, self.attestations, self.exceptions])


def _digest(parts: object) -> str:
    data = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(data).hexdigest()[:32]


def image_digest_of(facts: ImageFacts | None) -> str:
    """What about an image a result depends on: its digest, signers and findings, and
    its base (found among the engine's images, which change under the same digest)."""
    if facts is None:
        return ""
    base = [facts.base, facts.base_aliases] if facts.base or facts.base_aliases else []
    return _digest([facts.digest, facts.error, facts.signers, facts.signature_error, facts.findings,
                    len(facts.packages), facts.db_age is None, *base])  # fmt: skip


def result_key(w: Workload, inputs: Inputs, image: ImageFacts | None) -> str:
    """The key of one object's result: spec hash, policy, database, attestations,
    exceptions and what is known of its image. Equal keys, equal results."""
    return _digest(
        [w.spec_hash, w.team, w.owner, tuple(sorted(w.nodes)), inputs.digest(), image_digest_of(image)]
    )


@dataclass(frozen=True)
class Item:
    """One rule a running object breaks, as the decision names it, with its action."""

    rule: str
    path: str
    value: str
    message: str
    fix: str
    policy: str
    mode: str  # enforce or audit
    action: str  # report, warn, block-update, require-at-restart
    result: str  # fail (an enforced rule), warn (audit mode), skip (an exception covers it)
    excepted_by: str = ""

    def line(self) -> str:
        """The item as one line: rule, field, value, message and fix."""
        return f"{self.rule} at {self.path} ({self.value}): {self.message}. Fix: {self.fix}"


@dataclass(frozen=True)
class ObjectReport:
    """One running object's compliance."""

    kind: str  # container or service
    id: str
    name: str
    team: str
    owner: str
    image: str
    key: str
    items: tuple[Item, ...] = ()
    evaluated_at: float = 0.0

    @property
    def status(self) -> str:
        """fail when an enforced rule is broken, warn for audit-mode findings, else pass."""
        results = {i.result for i in self.items}
        return "fail" if "fail" in results else "warn" if "warn" in results else "pass"

    def actions(self) -> set[str]:
        """The actions its unexcused items set."""
        return {i.action for i in self.items if i.result != "skip"}

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape (the store row's ``violations`` and the console's)."""
        d = dataclasses.asdict(self)
        d["status"] = self.status
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ObjectReport:
        """The inverse of :meth:`as_dict`."""
        items = tuple(Item(**i) for i in d.get("items") or ())
        return cls(d["kind"], d["id"], d["name"], d["team"], d["owner"], d["image"], d["key"], items,
                   float(d.get("evaluated_at") or 0.0))  # fmt: skip


_RUNNING: dict[int, tuple[PolicySet, PolicySet]] = {}


def running_set(pset: PolicySet) -> PolicySet:
    """The set as it judges running objects: the same documents without mutations."""
    hit = _RUNNING.get(id(pset))
    if hit is not None and hit[0] is pset:
        return hit[1]
    docs = tuple(
        dataclasses.replace(d, spec=msgspec.structs.replace(d.spec, mutations=None))
        if d.spec.mutations
        else d
        for d in pset.documents
    )
    out = (
        PolicySet(docs, pset.version)
        if any(a is not b for a, b in zip(docs, pset.documents, strict=True))
        else pset
    )
    if len(_RUNNING) > 8:
        _RUNNING.clear()
    _RUNNING[id(pset)] = (pset, out)
    return out


def action_for(pset: PolicySet, policy: str, rule: str) -> str:
    """The action ``policy``'s ``spec.running`` sets for ``rule``: the rule's own entry,
    else its ``family.*`` entry (the longest pattern wins), else the document's
    ``action``, else ``report``."""
    doc = next((d for d in pset.documents if d.name == policy), None)
    running = doc.spec.running if doc is not None else None
    if not running:
        return "report"
    rules = running.rules or {}
    if rule in rules:
        return rules[rule]
    matches = sorted((p for p in rules if fnmatch.fnmatchcase(rule, p)), key=len, reverse=True)
    if matches:
        return rules[matches[0]]
    return running.action or "report"


def decoded(kind: str, body: Mapping[str, Any]) -> object:
    """The body as the gateway reads a request: the engine's own decoding (its field
    names, Go's JSON rules), so a running object is judged by the same reading as a
    create. A body the decoder can't read is judged as it is (the rules read any
    spelling, only slower)."""
    try:
        return read_body(kind, json.dumps(body, default=str).encode()).value
    except RequestError:
        return dict(body)


def request_of(w: Workload) -> Request:
    """The create request a running workload stands for, on behalf of its owner."""
    teams = (w.team,) if w.team else ()
    path = f"/{'containers' if w.kind == 'container' else 'services'}/create"
    return Request(kind=w.request_kind, body=decoded(w.request_kind, w.body), user=w.owner or "unknown",
                   teams=teams, path=path)  # fmt: skip


def _items(pset: PolicySet, decision: PolicyDecision) -> tuple[Item, ...]:
    out: list[Item] = []

    def add(v: Violation, result: str) -> None:
        f = v.finding
        if f.rule.startswith(_SKIPPED_FAMILIES):
            return
        value = f.value if isinstance(f.value, str) else json.dumps(f.value, default=str)
        out.append(Item(f.rule, f.path, value, f.message, f.fix, v.policy, v.mode,
                        action_for(pset, v.policy, f.rule), result, v.excepted_by or ""))  # fmt: skip

    for v in decision.denials:
        add(v, "fail")
    for v in decision.warnings:
        add(v, "skip" if v.excepted_by else "warn")
    return tuple(out)


def judge(
    pset: PolicySet,
    w: Workload,
    inputs: Inputs,
    image: ImageFacts | None = None,
    facts: Facts | None = None,
    now: float = 0.0,
) -> ObjectReport:
    """Judge one running workload. ``facts`` carries the exceptions and engine state;
    ``image`` what is known of its image. Pure."""
    base = facts or Facts(now=now)
    reports = {w.image: image} if image is not None and w.image else {}
    ids = tuple(x for x in (w.image_id, image.digest if image else "") if x)
    facts = dataclasses.replace(base, now=now or base.now, image_reports=reports, images=ids)
    running = running_set(pset)
    decision = evaluate(running, request_of(w), facts)
    return ObjectReport(w.kind, w.id, w.name, w.team, w.owner, w.image, result_key(w, inputs, image),
                        _items(pset, decision), now)  # fmt: skip


def blocking(report: ObjectReport | None, actions: Iterable[str]) -> tuple[Item, ...]:
    """The unexcused items of ``report`` whose action is one of ``actions``."""
    if report is None:
        return ()
    wanted = set(actions)
    return tuple(i for i in report.items if i.result != "skip" and i.action in wanted)
