"""The store's behaviours, on both backends: SQLite (a folder) and a private
PostgreSQL cluster from the harness. Every test runs against each."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from moorage.store import open_store
from moorage.store.interface import Conflict, SchemaError, Store
from moorage.store.schema import AREAS, latest
from tests.integration.conftest import Opener

pytestmark = pytest.mark.integration


def test_a_new_store_migrates_every_area_to_the_latest_version(opener: Opener) -> None:
    store = opener()
    assert set(store.versions().values()) == {0}
    applied = store.migrate()
    assert [(a, v) for a, v, _ in applied] == [(a, m.version) for a, ms in AREAS.items() for m in ms]
    assert store.versions() == {area: latest(area) for area in AREAS}
    assert store.migrate() == []  # idempotent


def test_rows_written_by_one_gateway_are_read_by_another(opener: Opener) -> None:
    first = opener()
    first.migrate()
    db = first.database("exceptions")
    db.execute(
        "INSERT INTO exceptions (id, rule, reason, requester, requested_at, duration, status)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("EXC-1", "runtime.privileged", "a reason", "alice", 1700000000.123456, 3600, "pending"),
    )
    other = opener().database("exceptions")
    assert other.execute("SELECT id, requested_at FROM exceptions") == [("EXC-1", 1700000000.123456)]


def test_a_duplicate_key_is_a_conflict_and_the_transaction_rolls_back(opener: Opener) -> None:
    store = opener()
    store.migrate()
    db = store.database("cluster")
    db.execute("INSERT INTO roots (digest, swarm_id, at, how) VALUES (?, ?, ?, ?)", ("d1", "s", 1.0, "init"))
    with pytest.raises(Conflict), db.transaction() as tx:
        tx.execute("INSERT INTO roots (digest, swarm_id, at, how) VALUES (?, ?, ?, ?)", ("d2", "s", 1.0, "x"))
        tx.execute("INSERT INTO roots (digest, swarm_id, at, how) VALUES (?, ?, ?, ?)", ("d1", "s", 1.0, "x"))
    assert db.execute("SELECT digest FROM roots ORDER BY digest") == [("d1",)]


def test_a_change_committed_elsewhere_is_seen_within_a_second(opener: Opener) -> None:
    first, second = opener(), opener()
    first.migrate()
    writer, reader = first.database("exceptions"), second.database("exceptions")
    assert reader.changed()  # the first call always answers True
    assert not reader.changed()
    with writer.transaction() as tx:
        tx.execute(
            "INSERT INTO exceptions (id, rule, reason, requester, requested_at, duration, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            ("EXC-2", "runtime.privileged", "a reason", "alice", 1.0, 60, "pending"),
        )
        writer.announce(tx)
    deadline = time.monotonic() + 1.0
    while not reader.changed():
        assert time.monotonic() < deadline, "the change was not seen within 1 s"
        time.sleep(0.01)


def test_a_lease_has_one_holder_and_passes_on_when_released(opener: Opener) -> None:
    first, second = opener(), opener()
    lease = first.try_lease("reconciler")
    assert lease is not None and lease.held()
    assert second.try_lease("reconciler") is None
    lease.release()
    assert not lease.held()
    taken = second.try_lease("reconciler")
    assert taken is not None
    taken.release()


def test_a_lock_excludes_every_other_holder(opener: Opener) -> None:
    stores = [opener() for _ in range(3)]
    inside: list[int] = []
    overlaps: list[int] = []

    def work(store: Store) -> None:
        for _ in range(20):
            with store.lock("quota:payments"):
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.001)
                inside.pop()

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []


def test_a_schema_newer_than_this_moorage_is_refused(opener: Opener, tmp_path: Path) -> None:
    store = opener()
    store.migrate()
    if store.kind == "sqlite":
        db = sqlite3.connect(tmp_path / "store" / "audit.db")
        db.execute(f"PRAGMA user_version = {latest('audit') + 1}")
        db.close()
    else:
        with store.database("audit").transaction() as tx:
            tx.execute("UPDATE moorage.versions SET version = ? WHERE area = 'audit'", (latest("audit") + 1,))
    with pytest.raises(SchemaError, match=r"newer than this Moorage knows|upgrade Moorage"):
        opener().database("audit")


@pytest.mark.parametrize("start", range(1, latest("audit")))
def test_the_audit_area_migrates_from_each_earlier_version_keeping_its_rows(
    opener: Opener, start: int
) -> None:
    store = opener()
    store.migrate({area: (start if area == "audit" else latest(area)) for area in AREAS})
    assert store.versions()["audit"] == start
    if store.kind == "postgresql":
        with pytest.raises(SchemaError, match="moorage store migrate"):
            store.database("audit")
        raw = store.connect("audit")  # type: ignore[attr-defined]
        raw.execute("INSERT INTO records (seq, body, prev, hash) VALUES (1, '{}', 'p', 'h')")
        raw.close()
        store.migrate()
    else:
        db = sqlite3.connect(Path(store.url.removeprefix("sqlite://")) / "audit.db")
        db.execute("INSERT INTO records (seq, body, prev, hash) VALUES (1, '{}', 'p', 'h')")
        db.commit()
        db.close()
    audit = store.database("audit")  # SQLite migrates on open
    assert store.versions()["audit"] == latest("audit")
    assert audit.execute("SELECT seq, hash FROM records") == [(1, "h")]
    audit.execute("INSERT INTO checkpoints (size, note, signer) VALUES (1, 'n', 'moorage-audit')")


def test_a_data_folder_from_before_the_store_is_migrated_in_place(tmp_path: Path) -> None:
    legacy = tmp_path / "data"
    legacy.mkdir()
    db = sqlite3.connect(legacy / "exceptions.db")
    db.execute(
        "CREATE TABLE exceptions (id TEXT PRIMARY KEY, rule TEXT NOT NULL, team TEXT,"
        " image TEXT, reason TEXT NOT NULL, requester TEXT NOT NULL, requested_at REAL NOT NULL,"
        " duration INTEGER NOT NULL, status TEXT NOT NULL, approver TEXT, approved_at REAL, expires REAL)"
    )
    db.execute(
        "INSERT INTO exceptions VALUES ('EXC-0', 'r', 't', NULL, 'why', 'a', 1.0, 5, 'pending', NULL, NULL, NULL)"
    )
    db.commit()
    db.close()
    store = open_store(None, legacy)
    assert store.database("exceptions").execute("SELECT id FROM exceptions") == [("EXC-0",)]
    assert store.versions()["exceptions"] == latest("exceptions")


def test_the_leader_runs_the_job_and_another_takes_over_when_it_dies(opener: Opener) -> None:
    import asyncio

    from moorage.gateway.workers import lead

    first, second = opener(), opener()
    ran: list[str] = []

    async def scenario() -> float:
        async def job(who: str) -> None:
            ran.append(who)
            await asyncio.Event().wait()  # runs until cancelled

        leading = asyncio.ensure_future(lead(first, "reconciler", lambda: job("first"), poll=0.2))
        await asyncio.sleep(0.5)
        waiting = asyncio.ensure_future(lead(second, "reconciler", lambda: job("second"), poll=0.2))
        await asyncio.sleep(0.5)
        assert ran == ["first"]
        leading.cancel()  # the leader stops: its lease ends with it
        start = time.monotonic()
        while ran == ["first"]:
            await asyncio.sleep(0.05)
            assert time.monotonic() - start < 10
        waiting.cancel()
        return time.monotonic() - start

    took = asyncio.run(scenario())
    assert ran == ["first", "second"]
    assert took < 10
