"""policy.testing: the runner behind ``moorage policy test``, without the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from moorage.policy.loader import builtin_set
from moorage.policy.testing import SuiteError, load_suite, run_case

BASELINE = builtin_set("baseline", None)


def test_a_case_passes_or_says_what_it_expected() -> None:
    privileged = {"body": {"Image": "busybox", "HostConfig": {"Privileged": True}}, "expect": "deny"}
    assert run_case(BASELINE, privileged, "t") == (True, "runtime.privileged")
    ok, detail = run_case(BASELINE, {**privileged, "expect": "allow"}, "t")
    assert not ok and detail == "expected allow, got deny (runtime.privileged)"
    ok, detail = run_case(BASELINE, {**privileged, "rules": ["runtime.host-path"]}, "t")
    assert not ok and detail == "expected rules ['runtime.host-path'], got ['runtime.privileged']"


def test_an_exception_in_a_case_turns_a_denial_into_a_warning() -> None:
    case = {"body": {"Image": "busybox", "HostConfig": {"Privileged": True}}, "teams": ["ops"], "expect": "warn",
            "exceptions": [{"rule": "runtime.privileged", "team": "ops"}]}  # fmt: skip
    assert run_case(BASELINE, case, "t") == (True, "runtime.privileged")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("cases: [{expect: maybe}]", "cases[0].expect must be allow, warn or deny"),
        ("cases: [{expect: deny, kind: 3}]", "cases[0].kind must be an operation"),
        ("policies: x", "expected a mapping with a 'cases' list"),
        ("cases: [", "not valid YAML"),
    ],
)
def test_a_bad_suite_says_what_is_wrong(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "suite-test.yaml"
    path.write_text(text)
    with pytest.raises(SuiteError, match=re.escape(error)):
        load_suite(path)
