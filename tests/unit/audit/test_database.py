"""The trail's SQLite file on its own: opening to read, and export files."""

from __future__ import annotations

from pathlib import Path

import pytest

from moorage.audit import AuditError
from moorage.audit.database import TrailDatabase, verify_file
from moorage.audit.keys import KeyRing
from moorage.audit.trail import AuditTrail
from tests.unit.audit.test_trail import rec


def test_reading_a_trail_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="no audit trail at"):
        AuditTrail(tmp_path / "audit.db", KeyRing(tmp_path / "keys"), writer=False)
    assert not (tmp_path / "audit.db").exists()


def test_the_database_is_abstract_until_a_trail_chains_its_journal() -> None:
    assert TrailDatabase.__abstractmethods__ == frozenset({"apply_journals"})


def test_a_reader_sees_what_a_writer_appended_and_exports_it(tmp_path: Path) -> None:
    keys = KeyRing(tmp_path / "keys")
    writer = AuditTrail(tmp_path / "audit.db", keys)
    try:
        for i in range(3):
            writer.record(rec(i))
        writer.checkpoint_now()
    finally:
        writer.close()
    reader = AuditTrail(tmp_path / "audit.db", keys, writer=False)
    try:
        assert [seq for seq, _ in reader.query(user="alice")] == [1, 2, 3]
        docs = list(reader.export_lines())
    finally:
        reader.close()
    assert [d["type"] for d in docs] == ["anchor", "record", "record", "record", "checkpoint"]
    out = tmp_path / "export.jsonl"
    out.write_text("not json\n")
    with pytest.raises(AuditError, match=r"export\.jsonl:1: not JSON"):
        verify_file(out, keys)
