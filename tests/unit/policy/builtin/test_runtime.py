"""The ``baseline`` and ``restricted`` packs, composed of rule objects, report what
the runtime rule functions do, in the same order."""

from __future__ import annotations

import pytest

from moorage.policy.builtin.runtime import PACKS, RuntimeRule
from moorage.policy.rules.runtime import check
from tests.unit.policy.builtin.subjects import subjects


@pytest.mark.parametrize("pack", ["baseline", "restricted"])
def test_a_pack_reports_what_the_runtime_check_does(pack: str) -> None:
    for subject in subjects(pack):
        if subject.runtime is not None:
            assert PACKS[pack].findings(subject) == check(
                subject.runtime, pack, subject.doc.compiled.runtime_allow
            )
    assert all(r.pack == pack for r in PACKS[pack].members if isinstance(r, RuntimeRule))


@pytest.mark.parametrize("pack", ["baseline", "restricted"])
def test_a_check_reports_nothing_while_its_view_field_is_empty(pack: str) -> None:
    from msgspec.structs import replace

    from moorage.policy.rules.runtime import BASELINE_CHECKS, RESTRICTED_CHECKS, VIEW_FIELDS
    from moorage.policy.rules.runtime_allow import DEFAULT_ALLOW
    from moorage.policy.rules.runtime_views import view_container
    from tests.unit.policy.builtin.subjects import HOSTILE

    view = view_container(HOSTILE)
    for key, rule_check in BASELINE_CHECKS if pack == "baseline" else RESTRICTED_CHECKS:
        name = VIEW_FIELDS.get(key)
        if name is None:
            continue
        emptied = replace(view, **{name: type(getattr(view, name))()})
        assert rule_check(emptied, pack, DEFAULT_ALLOW) == [], key


def test_the_readers_refusals_are_all_under_its_listed_rules() -> None:
    import ast
    from pathlib import Path

    import moorage.policy.rules.runtime_read as reader
    from moorage.policy.rules.runtime_read import REFUSED_WHILE_READING

    folder = Path(reader.__file__).parent
    refused = set()
    for module in ("runtime_read.py", "runtime_views.py"):
        for node in ast.walk(ast.parse((folder / module).read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "refuse"
            ):
                first = node.args[0]
                assert isinstance(first, ast.Constant), ast.unparse(node)
                refused.add(f"runtime.{first.value}")
    assert refused == set(REFUSED_WHILE_READING)


@pytest.mark.parametrize("pack", ["baseline", "restricted"])
def test_as_read_reports_its_rules_findings_in_reading_order(pack: str) -> None:
    from moorage.policy.builtin.runtime import AsRead

    for subject in subjects(pack):
        for member in PACKS[pack].members:
            if isinstance(member, AsRead) and subject.runtime is not None:
                found = member.findings(subject)
                assert found == subject.runtime.refused
                # each refusal is exactly one listed rule's finding
                by_rules = [f for r in member.rules for f in r.findings(subject)]
                assert len(by_rules) == len(found) and all(f in by_rules for f in found)
