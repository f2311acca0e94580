"""The built-in checks are a composition of rule objects, reported in a fixed order."""

from __future__ import annotations

from pathlib import Path

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


def test_a_documents_compiled_plan_reports_what_the_built_in_composition_does(tmp_path: Path) -> None:
    from moorage.policy.loader import load_folder
    from moorage.policy.pack import plan

    (tmp_path / "all.yaml").write_text(
        "apiVersion: moorage.dev/v1\nkind: Policy\nmetadata: {name: all}\nspec:\n  mode: enforce\n"
        "  packs: [baseline, restricted]\n"
        "  resources: {require: [memory, cpus, pids], max: {memory: 1g, cpus: 2, pids: 500}}\n"
        "  quotas: {containers: 1}\n"
        "  images: {registries: ['127.0.0.1:*'], forbidLatest: true}\n"
        "  network: {hostNetwork: false, join: [team-*], publish: {hostIPs: [127.0.0.1], ports: ['8000']}}\n"
        "  placement: {classes: {pci: ['node.labels.pci==true']}, teams: {alice: pci}}\n"
        "  custom: [{id: no-busybox, expr: 'request.Image == \"busybox\"', message: m}]\n"
    )
    docs = [
        *load_folder(tmp_path).documents,
        *(builtin_set(p, None).documents[0] for p in ("baseline", "restricted")),
    ]
    compared = 0
    for doc in docs:
        for subject in subjects("baseline"):
            s = Subject.of(doc, subject.req, subject.body, Facts(), {}, False)
            assert plan(doc).findings(s) == BUILT_IN.findings(s), (doc.name, s.req.kind)
            compared += len(BUILT_IN.findings(s))
    assert compared > 50
    # a section a document doesn't set costs nothing: the built-in baseline compiles to one check
    assert len(plan(builtin_set("baseline", None).documents[0]).checks) == 1
