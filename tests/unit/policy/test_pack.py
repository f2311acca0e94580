"""The built-in checks are a composition of families, reported in a fixed order."""

from __future__ import annotations

from moorage.policy.documents import Document
from moorage.policy.loader import builtin_set
from moorage.policy.pack import BUILT_IN, AllOf, Family, Subject
from moorage.policy.request import Facts, Request
from moorage.policy.rules.base import Finding


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
