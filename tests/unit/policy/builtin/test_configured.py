"""The rules a document configures, as rule objects: the required limits are reported
in the order the document lists them, and a section it doesn't set reports nothing."""

from __future__ import annotations

from pathlib import Path

from moorage.policy.builtin.configured import NETWORK, RESOURCES, Section
from moorage.policy.loader import load_folder
from moorage.policy.request import Facts, Request
from moorage.policy.rule import Subject


def _subject(tmp_path: Path, spec: str, body: dict[str, object]) -> Subject:
    (tmp_path / "p.yaml").write_text(
        "apiVersion: moorage.dev/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n" + spec
    )
    doc = load_folder(tmp_path).documents[0]
    req = Request("container.create", body, user="alice", teams=("payments",))
    return Subject.of(doc, req, body, Facts(), {}, False)


def test_required_limits_follow_the_documents_order(tmp_path: Path) -> None:
    s = _subject(tmp_path, "  resources: {require: [pids, memory]}\n", {"Image": "busybox"})
    assert [f.rule for f in RESOURCES.findings(s)] == ["resources.pids-required", "resources.memory-required"]


def test_a_section_the_document_does_not_set_reports_nothing(tmp_path: Path) -> None:
    s = _subject(tmp_path, "  resources: {require: [memory]}\n", {"Image": "busybox"})
    assert s.network is None
    assert Section("network", NETWORK).findings(s) == []
    assert [f.rule for f in Section("resources", RESOURCES).findings(s)] == ["resources.memory-required"]
