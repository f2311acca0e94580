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
