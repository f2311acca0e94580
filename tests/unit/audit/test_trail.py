from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from moorage.audit import AuditError, AuditRecord
from moorage.audit.chain import GENESIS, link
from moorage.audit.trail import AuditTrail, KeyRing, verify_file


def rec(i: int, user: str = "alice", decision: str = "allow") -> AuditRecord:
    return AuditRecord(time=1_700_000_000 + i, request_id=f"r{i}", user=user, teams=("payments",),
                       roles=("developer",), auth="peercred", source="unix:uid=1", method="POST",
                       path="/containers/create", kind="container.create", object_ref=f"c{i}",
                       decision=decision, reason="", status=201, duration_ms=1.0)  # fmt: skip


@pytest.fixture
def trail(tmp_path: Path) -> Iterator[AuditTrail]:
    t = AuditTrail(tmp_path / "audit.db", KeyRing(tmp_path / "keys"), checkpoint_every=10)
    yield t
    t.close()


def fill(t: AuditTrail, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        t.record(rec(i))


def tamper(t: AuditTrail, sql: str, *args: object) -> None:
    db = sqlite3.connect(t.path)
    db.execute(sql, args)
    db.commit()
    db.close()


def test_an_intact_trail_verifies_with_checkpoints(trail: AuditTrail) -> None:
    fill(trail, 25)
    trail.checkpoint_now()
    result = trail.verify()
    assert result.ok and result.records == 25 and result.checkpoints == 3  # 10, 20, 25
    assert trail.checkpoints()[0][1].startswith("moorage.audit\n10\n")


def test_an_edited_record_is_located(trail: AuditTrail) -> None:
    fill(trail, 25)
    body = json.loads(trail.query()[6][1] and next(r.body for r in trail.rows() if r.seq == 7))
    body["user"] = "mallory"
    tamper(trail, "UPDATE records SET body = ? WHERE seq = 7", json.dumps(body))
    problem = trail.verify().problem
    assert problem is not None and (problem.seq, problem.kind) == (7, "changed")


def test_an_edited_and_rehashed_record_is_caught_by_the_next_link(trail: AuditTrail) -> None:
    fill(trail, 25)
    row = next(r for r in trail.rows() if r.seq == 7)
    body = row.body.replace("alice", "mallo")
    tamper(trail, "UPDATE records SET body = ?, hash = ? WHERE seq = 7", body, link(row.prev, body))
    problem = trail.verify().problem
    assert problem is not None and problem.seq == 8 and problem.kind == "reordered"


def test_a_deleted_record_is_located(trail: AuditTrail) -> None:
    fill(trail, 25)
    tamper(trail, "DELETE FROM records WHERE seq = 12")
    problem = trail.verify().problem
    assert problem is not None and (problem.seq, problem.kind) == (12, "missing")


def test_swapped_records_are_located(trail: AuditTrail) -> None:
    fill(trail, 25)
    tamper(trail, "UPDATE records SET seq = -1 WHERE seq = 5")
    tamper(trail, "UPDATE records SET seq = 5 WHERE seq = 6")
    tamper(trail, "UPDATE records SET seq = 6 WHERE seq = -1")
    problem = trail.verify().problem
    assert problem is not None and (problem.seq, problem.kind) == (5, "reordered")
    assert "it follows record 6" in problem.detail  # what stands at 5 is the old 6, after the old 5


def test_truncation_after_a_checkpoint_is_detected(trail: AuditTrail) -> None:
    fill(trail, 25)
    tamper(trail, "DELETE FROM records WHERE seq > 15")
    problem = trail.verify().problem
    assert problem is not None and problem.kind == "truncated" and problem.seq == 16


def test_a_forged_or_edited_checkpoint_is_detected(trail: AuditTrail) -> None:
    fill(trail, 25)
    note = dict(trail.checkpoints())[20]
    tamper(trail, "UPDATE checkpoints SET note = ? WHERE size = 20", note.replace("\n20\n", "\n21\n"))
    problem = trail.verify().problem
    assert problem is not None and problem.kind == "checkpoint" and "does not verify" in problem.detail


def test_a_rewritten_history_does_not_match_its_checkpoint(trail: AuditTrail) -> None:
    fill(trail, 10)  # checkpoint at 10
    # rewrite the whole chain consistently: every link is valid, only the checkpoint knows
    rows = list(trail.rows())
    prev = GENESIS
    for r in rows:
        body = r.body.replace("alice", "mallo")
        digest = link(prev, body)
        tamper(
            trail, "UPDATE records SET body = ?, prev = ?, hash = ? WHERE seq = ?", body, prev, digest, r.seq
        )
        prev = digest
    problem = trail.verify().problem
    assert problem is not None and problem.kind == "changed" and problem.seq == 10


def test_rotation_keeps_old_checkpoints_verifiable(tmp_path: Path) -> None:
    keys = KeyRing(tmp_path / "keys")
    t = AuditTrail(tmp_path / "a.db", keys, checkpoint_every=5)
    fill(t, 5)
    t.rotate_key()
    fill(t, 5, 5)
    t.close()
    assert len(list((tmp_path / "keys").glob("*.pub"))) == 2
    t2 = AuditTrail(tmp_path / "a.db", keys, checkpoint_every=5)
    try:
        assert t2.verify().ok
        kids = {note.rsplit(" ", 1)[1][:8] for _, note in t2.checkpoints()}
        assert len(kids) == 2  # signed by two different keys
        # without the old public key the first checkpoint no longer verifies
        for pub in sorted((tmp_path / "keys").glob("*.pub"), key=os.path.getmtime)[:1]:
            pub.unlink()
        problem = t2.verify().problem
        assert problem is not None and problem.kind == "checkpoint" and "unknown keys" in problem.detail
    finally:
        t2.close()


def test_the_chain_resumes_after_a_restart(tmp_path: Path) -> None:
    keys = KeyRing(tmp_path / "keys")
    t = AuditTrail(tmp_path / "a.db", keys)
    fill(t, 3)
    t.close()
    t = AuditTrail(tmp_path / "a.db", keys)
    fill(t, 3, 3)
    assert t.verify().ok and t.verify().records == 6
    t.close()


def test_archive_verifies_alone_and_the_chain_continues(trail: AuditTrail, tmp_path: Path) -> None:
    fill(trail, 25)
    moved = trail.archive(20, tmp_path / "old.jsonl")
    assert moved == 20
    assert verify_file(tmp_path / "old.jsonl", trail.keys).ok
    fill(trail, 5, 25)
    result = trail.verify()
    assert result.ok and result.first == 21 and result.last == 30
    lines = (tmp_path / "old.jsonl").read_text().splitlines()
    doctored = [ln.replace("alice", "mallo") if '"seq":3,' in ln else ln for ln in lines]
    (tmp_path / "bad.jsonl").write_text("\n".join(doctored) + "\n")
    problem = verify_file(tmp_path / "bad.jsonl", trail.keys).problem
    assert problem is not None and (problem.seq, problem.kind) == (3, "changed")


def test_query_filters(trail: AuditTrail) -> None:
    for i in range(6):
        trail.record(rec(i, user="bob" if i % 2 else "alice", decision="deny" if i == 3 else "allow"))
    assert [s for s, _ in trail.query(user="bob")] == [2, 4, 6]
    assert [d["request_id"] for _, d in trail.query(decision="deny")] == ["r3"]
    assert len(trail.query(team="payments")) == 6 and trail.query(team="search") == []
    assert [d["object_ref"] for _, d in trail.query(obj="c5")] == ["c5"]
    assert [s for s, _ in trail.query(since=1_700_000_004)] == [5, 6]


def test_a_read_only_store_fails_closed(tmp_path: Path) -> None:
    t = AuditTrail(tmp_path / "a.db", KeyRing(tmp_path / "keys"))
    fill(t, 1)
    t._db.execute("PRAGMA query_only = ON")  # what a read-only or full disk looks like to SQLite
    with pytest.raises(AuditError):
        t.record(rec(9))
    t._db.execute("PRAGMA query_only = OFF")
    t.record(rec(10))  # and recovers, with no gap in the chain
    assert t.verify().ok and t.verify().records == 2
    t.close()


def test_two_writers_share_one_chain(tmp_path: Path) -> None:
    """The gateway and a CLI command append to the same store; the chain stays whole."""
    from moorage.audit.admin import record_admin

    keys = KeyRing(tmp_path / "audit-keys")  # the layout of a data folder
    gateway = AuditTrail(tmp_path / "audit.db", keys)
    try:
        fill(gateway, 3)
        rid = record_admin(tmp_path, "admin.cert.issue", "carol")  # another writer, same files
        fill(gateway, 3, 3)
        result = gateway.verify()
        assert result.ok and result.records == 7
        admin = gateway.query(user=None, obj="carol")
        assert [(d["kind"], d["request_id"], d["auth"]) for _, d in admin] == [
            ("admin.cert.issue", rid, "local")
        ]
    finally:
        gateway.close()
