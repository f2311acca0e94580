"""docs/policy.md's rule reference is generated from the rule objects and can't drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from moorage.policy.rules import RULES, reference_markdown, with_reference

DOC = Path(__file__).resolve().parents[4] / "docs" / "policy.md"


def test_docs_policy_md_matches_the_rules() -> None:
    text = DOC.read_text()
    assert with_reference(text) == text, "docs/policy.md is stale: run python scripts/gen_policy_docs.py"


def test_every_rule_has_an_entry_with_its_fix() -> None:
    reference = reference_markdown()
    for rule in RULES.values():
        assert f"#### `{rule.id}`" in reference
        assert f"- fix: {rule.fix}" in reference


def test_missing_markers_are_an_error() -> None:
    with pytest.raises(ValueError, match="markers"):
        with_reference("# Policy reference\n")
