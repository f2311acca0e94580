"""The audit trail at scale: 100,000 records verify (kept out of the unit tier,
which must stay fast)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from moorage.audit.chain import GENESIS, canonical, link
from moorage.audit.trail import AuditTrail, KeyRing
from tests.unit.audit.test_trail import rec


def test_100k_records_verify(tmp_path: Path) -> None:
    t = AuditTrail(tmp_path / "big.db", KeyRing(tmp_path / "keys"), checkpoint_every=10_000, batch_max=4096)
    db = sqlite3.connect(t.path)
    prev = GENESIS
    rows = []
    for i in range(100_000):
        body = canonical(rec(i).to_dict())
        digest = link(prev, body)
        rows.append((i + 1, body, prev, digest))
        prev = digest
    db.executemany("INSERT INTO records VALUES (?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    t.close()
    t = AuditTrail(tmp_path / "big.db", KeyRing(tmp_path / "keys"))
    t.checkpoint_now()
    result = t.verify()
    t.close()
    assert result.ok and result.records == 100_000 and result.checkpoints == 1
