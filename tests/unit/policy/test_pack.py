"""The built-in checks are a composition of rule objects, reported in a fixed order."""

from __future__ import annotations

import pytest

from moorage.policy.documents import Document
from moorage.policy.loader import builtin_set
from moorage.policy.pack import BUILT_IN, AllOf, Family, Subject, built_in_rules
from moorage.policy.request import Facts, Request
from moorage.policy.rules import RULES
from moorage.policy.rules.base import Finding
from tests.unit.policy.builtin.subjects import subjects


def _subject(body: object) -> Subject:
    doc: Document = builtin_set("baseline", None).documents[0]
    return Subject.of(doc, Request("container.create", body, user="alice"), body, Facts(), {}, False)


def test_all_of_reports_every_member_in_order() -> None:
    def one(rule: str) -> Family:
        return Family(rule, lambda s: [Finding(rule, "(request)", None, "m", "f")])

    nested = AllOf(one("a"), AllOf(one("b"), one("c")), one("d"))
    assert [f.rule for f in nested.findings(_subject({}))] == ["a", "b", "c", "d"]


def test_the_built_in_composition_runs_the_packs_first() -> None:
    found = BUILT_IN.findings(_subject({"Image": "busybox", "HostConfig": {"Privileged": True}}))
    assert [f.rule for f in found] == ["runtime.privileged"]
    assert BUILT_IN.findings(_subject({"Image": "busybox"})) == []


def test_every_rule_object_carries_the_catalog_entry_of_its_id() -> None:
    rules = [r for r in built_in_rules() if not isinstance(r, Family)]
    assert rules and all(RULES[r.id] is r.doc for r in rules)


def test_every_documented_rule_is_a_rule_object() -> None:
    objects = built_in_rules()
    assert not [r for r in objects if isinstance(r, Family)]
    assert {r.id for r in objects} == set(RULES)


@pytest.mark.parametrize("pack", ["baseline", "restricted"])
def test_each_rule_reports_only_its_own_id(pack: str) -> None:
    seen: set[str] = set()
    for subject in subjects(pack):
        for rule in built_in_rules():
            if isinstance(rule, Family):
                continue
            found = rule.findings(subject)
            assert {f.rule for f in found} <= {rule.id}, rule.id
            seen |= {f.rule for f in found}
    assert len(seen) > 20  # the subjects reach most rules


def test_the_built_in_composition_reports_the_runtime_view_before_the_operations() -> None:
    found = BUILT_IN.findings(subjects("baseline")[0])
    rules = [f.rule for f in found]
    assert rules[0] == "runtime.privileged"
    assert rules.index("runtime.docker-socket") < rules.index("runtime.host-path")
    # NetworkMode=host is reported once, by the runtime view, not again by the operations
    assert [f.path for f in found].count("HostConfig.NetworkMode") == 1
