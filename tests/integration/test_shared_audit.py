"""One audit chain shared by several gateways in PostgreSQL: appends from three
trails (three gateways) racing, none lost and the sequence contiguous; checkpoints
signed and named; a trail killed mid-load loses nothing it acknowledged; a tampered
row is found."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from moorage.audit.interface import AuditRecord
from moorage.audit.keys import KeyRing
from moorage.audit.shared import SharedTrail
from moorage.store.postgres import PostgresStore
from tests import pg_harness

pytestmark = pytest.mark.integration


def _record(i: int, who: str = "alice") -> AuditRecord:
    return AuditRecord(
        time=1_800_000_000.0 + i, request_id=f"{who}-{i}", user=who, teams=("payments",), roles=("developer",),
        auth="peer", source="test", method="GET", path="/_ping", kind="system.ping", object_ref=None,
        decision="allow", reason="", status=200, duration_ms=0.1,
    )  # fmt: skip


@pytest.fixture
def store(postgres: pg_harness.Postgres) -> Iterator[PostgresStore]:
    s = PostgresStore(postgres.create_database(f"a{time.monotonic_ns()}"))
    s.migrate()
    yield s
    s.close()


def test_three_gateways_appending_at_once_make_one_contiguous_chain_that_verifies(
    store: PostgresStore, tmp_path: Path
) -> None:
    keys = KeyRing(tmp_path / "keys")
    trails = [SharedTrail(PostgresStore(store.url), keys, checkpoint_every=100) for _ in range(3)]

    def append(trail: SharedTrail, who: str) -> None:
        for i in range(150):
            trail.record(_record(i, who))

    threads = [
        threading.Thread(target=append, args=(t, f"{g}{k}")) for g, t in enumerate(trails) for k in "ab"
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for t in trails:
        t.close()
    reader = SharedTrail(store, keys, writer=False)
    try:
        rows = list(reader.rows())
        assert [r.seq for r in rows] == list(range(1, 901))
        assert {json.loads(r.body)["request_id"] for r in rows} == {
            f"{g}{k}-{i}" for g in range(3) for k in "ab" for i in range(150)
        }
        result = reader.verify()
        assert result.ok and result.records == 900 and result.checkpoints >= 9
        assert all(name.startswith("moorage-audit+") for name in reader.signers())
        assert len(reader.query(user="1a")) == 150 and len(reader.query(team="payments", limit=5)) == 5
    finally:
        reader.close()


def test_a_tampered_row_is_found(store: PostgresStore, tmp_path: Path, postgres: pg_harness.Postgres) -> None:
    keys = KeyRing(tmp_path / "keys")
    trail = SharedTrail(store, keys, checkpoint_every=10)
    for i in range(25):
        trail.record(_record(i))
    trail.close()
    db = urlsplit(store.url).path.lstrip("/")
    postgres.psql(
        "UPDATE audit.records SET body = replace(body, 'alice', 'mallory') WHERE seq = 7", database=db
    )
    result = SharedTrail(store, keys, writer=False).verify()
    assert not result.ok and result.problem is not None and result.problem.seq == 7


def _append_forever(url: str, keys: str, out: str) -> None:
    trail = SharedTrail(PostgresStore(url), KeyRing(Path(keys)))
    with open(out, "a") as acked:
        for i in range(1_000_000):
            trail.record(_record(i, "k"))
            acked.write(f"k-{i}\n")
            acked.flush()  # written only after record() returned: acknowledged


def test_a_gateway_killed_mid_append_loses_nothing_it_acknowledged(
    store: PostgresStore, tmp_path: Path
) -> None:
    keys = KeyRing(tmp_path / "keys")
    keys.signer()
    acked = tmp_path / "acked"
    proc = mp.get_context("spawn").Process(
        target=_append_forever, args=(store.url, str(tmp_path / "keys"), str(acked))
    )
    proc.start()
    deadline = time.monotonic() + 30
    while not acked.exists() or len(acked.read_text().splitlines()) < 200:
        assert time.monotonic() < deadline and proc.is_alive()
        time.sleep(0.05)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    reader = SharedTrail(store, keys, writer=False)
    try:
        stored = {json.loads(r.body)["request_id"] for r in reader.rows()}
        told = set(acked.read_text().split())
        assert told and told <= stored
        assert reader.verify().ok
    finally:
        reader.close()
    # the next gateway continues the same chain
    after = SharedTrail(store, keys)
    after.record(_record(0, "next"))
    after.close()
    assert SharedTrail(store, keys, writer=False).verify().ok
