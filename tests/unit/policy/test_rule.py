"""The rule vocabulary: a rule carries its documentation and its check, and the
compositions keep findings in the order they are reported."""

from __future__ import annotations

import pytest

from moorage.policy.documents import Document
from moorage.policy.loader import builtin_set
from moorage.policy.request import Facts, Request
from moorage.policy.rule import AllOf, Each, Family, ItemRule, Rule, Subject, Unseen, When
from moorage.policy.rules import RULES
from moorage.policy.rules.base import Finding


def _subject(body: object) -> Subject:
    doc: Document = builtin_set("restricted", None).documents[0]
    return Subject.of(doc, Request("container.create", body, user="alice"), body, Facts(), {}, False)


def _finding(rule: str, path: str = "(request)") -> Finding:
    return Finding(rule, path, None, "m", "f")


def test_a_rule_carries_its_documentation_and_its_check() -> None:
    doc = RULES["runtime.privileged"]
    rule = Rule(doc, lambda s: [_finding(doc.id)])
    assert rule.id == "runtime.privileged" and rule.doc is doc
    assert [f.rule for f in rule.findings(_subject({}))] == ["runtime.privileged"]


def test_each_interleaves_rules_item_by_item() -> None:
    def items(s: Subject) -> list[str]:
        return ["a", "b"]

    one = ItemRule(RULES["runtime.docker-socket"], items, lambda s, i: [_finding("one", i)])
    two = ItemRule(RULES["runtime.host-path"], items, lambda s, i: [_finding("two", i)])
    subject = _subject({})
    assert [(f.rule, f.path) for f in Each(one, two).findings(subject)] == [
        ("one", "a"), ("two", "a"), ("one", "b"), ("two", "b"),
    ]  # fmt: skip
    assert [f.path for f in one.findings(subject)] == ["a", "b"]


def test_each_refuses_rules_over_different_items() -> None:
    one = ItemRule(RULES["runtime.docker-socket"], lambda s: ["a"], lambda s, i: [])
    two = ItemRule(RULES["runtime.host-path"], lambda s: ["a"], lambda s, i: [])
    with pytest.raises(ValueError):
        Each(one, two)


def test_unseen_drops_what_the_first_already_reported() -> None:
    first = Family("first", lambda s: [_finding("a", "X")])
    then = Family("then", lambda s: [_finding("b", "X"), _finding("b", "Y")])
    assert [(f.rule, f.path) for f in Unseen(first, then).findings(_subject({}))] == [("a", "X"), ("b", "Y")]


def test_when_runs_only_where_it_applies() -> None:
    member = Family("m", lambda s: [_finding("m")])
    assert When(lambda s: False, member).findings(_subject({})) == []
    assert len(When(lambda s: True, member).findings(_subject({}))) == 1


def test_all_of_flattens_rules_and_compositions_in_order() -> None:
    rule = Rule(RULES["runtime.privileged"], lambda s: [_finding("r")])
    nested = AllOf(rule, AllOf(Family("f", lambda s: [_finding("f")]), rule), When(lambda s: True, rule))
    assert [f.rule for f in nested.findings(_subject({}))] == ["r", "f", "r", "r"]


def test_the_subject_reads_the_views_a_pack_needs_once() -> None:
    doc: Document = builtin_set("restricted", None).documents[0]
    start = Subject.of(doc, Request("container.start", None, user="alice"), None, Facts(), {}, False)
    assert start.runtime is None and start.operation is not None and start.operation.kind == "container.start"
    assert _subject({"Image": "busybox"}).runtime is not None
