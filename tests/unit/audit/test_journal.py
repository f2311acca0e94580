"""The read-record journal: written before the answer, chained exactly once, even
across a kill."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from moorage.audit import AuditRecord
from moorage.audit import journal as journal_mod
from moorage.audit.journal import Journal, finished, segments
from moorage.audit.trail import AuditTrail, KeyRing


def rec(i: int) -> AuditRecord:
    return AuditRecord(
        time=1.0 + i, request_id=f"r{i}", user="alice", teams=("a",), roles=("developer",), auth="peer",
        source="unix", method="GET", path="/_ping", kind="system.ping", object_ref=None, decision="allow",
        reason="", status=200, duration_ms=0.1,
    )  # fmt: skip


async def read_records(trail: AuditTrail, first: int, n: int) -> None:
    loop = asyncio.get_running_loop()
    waits = []
    for i in range(first, first + n):
        fut: asyncio.Future[None] = loop.create_future()
        trail.record_soon(
            rec(i), False, lambda e, f=fut: f.set_result(None) if e is None else f.set_exception(e)
        )
        waits.append(fut)
    await asyncio.gather(*waits)


def ids(trail: AuditTrail) -> list[str]:
    return [json.loads(r.body)["request_id"] for r in trail.rows()]


def test_read_records_are_journaled_then_chained_in_order(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit.db", KeyRing(tmp_path / "keys"), journal_delay=0.01)
    try:
        asyncio.run(read_records(trail, 0, 50))
        # the journal holds them as soon as the callers are released
        segs = segments(tmp_path / "audit.db")
        assert len(segs) == 1 and not finished(segs[0])
        assert segs[0].read_text().count("\n") == 50
        assert ids(trail) == [f"r{i}" for i in range(50)]  # a reader chains what is journaled
        assert trail.verify().ok and trail.verify().records == 50
    finally:
        trail.close()
    assert segments(tmp_path / "audit.db") == []  # finished and chained: deleted
    again = AuditTrail(tmp_path / "audit.db", KeyRing(tmp_path / "keys"), writer=False)
    assert ids(again) == [f"r{i}" for i in range(50)]  # nothing chained twice


def test_every_answered_read_survives_a_sigkill(tmp_path: Path) -> None:
    # A child process journals records, says which were released, and is killed
    # before its writer thread could chain them (its delay is an hour).
    script = textwrap.dedent(f"""
        import asyncio, sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_journal import read_records
        from moorage.audit.trail import AuditTrail, KeyRing
        from pathlib import Path
        t = AuditTrail(Path({str(tmp_path / "audit.db")!r}), KeyRing(Path({str(tmp_path / "keys")!r})),
                       journal_delay=3600)
        asyncio.run(read_records(t, 0, 30))
        print("released", flush=True)
        time.sleep(3600)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "released"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    reader = AuditTrail(tmp_path / "audit.db", KeyRing(tmp_path / "keys"), writer=False)
    assert ids(reader) == [f"r{i}" for i in range(30)]
    assert reader.verify().ok
    assert segments(tmp_path / "audit.db") == []  # the dead writer's segment is finished


def test_a_torn_tail_of_a_dead_writer_is_dropped_and_a_live_one_is_waited_for(tmp_path: Path) -> None:
    store = tmp_path / "audit.db"
    trail = AuditTrail(store, KeyRing(tmp_path / "keys"), journal_delay=3600)
    try:
        asyncio.run(read_records(trail, 0, 2))
        seg = segments(store)[0]
        with open(seg, "a") as f:
            f.write('{"request_id":"half')  # a write still in progress
        assert ids(trail) == ["r0", "r1"]
        with open(seg, "a") as f:
            f.write('way"}\n')  # ... and completed
        assert ids(trail) == ["r0", "r1", "halfway"]
    finally:
        trail.close()
    # a dead writer's tail without a newline: nobody waited on it
    dead = Journal(store)
    dead.write([json.dumps({"request_id": "d0"})])
    os.write(dead._fd, b'{"request_id":"torn')
    dead.close()
    reader = AuditTrail(store, KeyRing(tmp_path / "keys"), writer=False)
    assert ids(reader)[-1] == "d0"
    assert segments(store) == []


def test_segments_rotate_and_each_is_chained_once(tmp_path: Path, monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setattr(journal_mod, "SEGMENT_MAX", 600)
    store = tmp_path / "audit.db"
    trail = AuditTrail(store, KeyRing(tmp_path / "keys"), journal_delay=3600)
    try:
        for k in range(5):
            asyncio.run(read_records(trail, k * 4, 4))
        segs = segments(store)
        assert len(segs) > 1 and [finished(s) for s in segs] == [True] * (len(segs) - 1) + [False]
        assert ids(trail) == [f"r{i}" for i in range(20)]
        assert len(segments(store)) == 1  # the finished ones were deleted once chained
        asyncio.run(read_records(trail, 20, 4))
    finally:
        trail.close()
    reader = AuditTrail(store, KeyRing(tmp_path / "keys"), writer=False)
    assert ids(reader) == [f"r{i}" for i in range(24)] and reader.verify().ok


def test_two_writers_journals_share_one_chain(tmp_path: Path) -> None:
    store = tmp_path / "audit.db"
    a = AuditTrail(store, KeyRing(tmp_path / "keys"), journal_delay=0.005)
    b = AuditTrail(store, KeyRing(tmp_path / "keys"), journal_delay=0.005)
    try:
        for k in range(10):
            asyncio.run(read_records(a if k % 2 else b, k * 10, 10))
        a.record(rec(1000))  # a durable one chains the journals first
    finally:
        a.close()
        b.close()
    reader = AuditTrail(store, KeyRing(tmp_path / "keys"), writer=False)
    got = ids(reader)
    assert sorted(got) == sorted([f"r{i}" for i in range(100)] + ["r1000"]) and reader.verify().ok


def test_a_segment_is_locked_before_any_reader_can_see_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that looks between the writer's open and its flock must not find an
    unlocked, empty segment (it would take it for finished and delete it)."""
    import fcntl as real_fcntl

    from moorage.audit import journal as journal_module

    store = tmp_path / "audit.db"
    seen: list[tuple[list[str], bool]] = []
    real_flock = real_fcntl.flock

    def flock_and_look(fd: int, op: int) -> None:
        if op == real_fcntl.LOCK_EX:  # the writer's lock, just before it is taken
            seen.append(([p.name for p in journal_module.segments(store)], True))
        real_flock(fd, op)

    monkeypatch.setattr(journal_module.fcntl, "flock", flock_and_look)
    j = journal_module.Journal(store)
    j.write(["a"])
    assert seen and seen[0][0] == []  # not visible to readers before it is locked
    monkeypatch.setattr(journal_module.fcntl, "flock", real_flock)
    (seg,) = journal_module.segments(store)
    assert not journal_module.finished(seg)
    j.close()
    assert journal_module.finished(seg) and sorted(p.name for p in tmp_path.iterdir()) == [
        "audit.db.journal." + seg.name.split(".journal.")[1]
    ]
