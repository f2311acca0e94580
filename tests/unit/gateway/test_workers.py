"""What several gateway workers (processes) share: image owners, exceptions and the
per-key decision lock, each seen by another process's view at once."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from pathlib import Path

from moorage.admission.exceptions import ExceptionStore
from moorage.admission.owners import ImageOwners
from moorage.gateway.workers import KeyLocks
from moorage.store.sqlite import SqliteStore

ID_A = "sha256:" + "a" * 64
ID_B = "sha256:" + "b" * 64


def test_an_image_owner_recorded_by_one_worker_is_seen_and_kept_by_another(tmp_path: Path) -> None:
    one, two = ImageOwners(tmp_path / "owners.json"), ImageOwners(tmp_path / "owners.json")
    one.record(ID_A, "payments")
    assert two.teams(ID_A) == ("payments",)
    two.record(ID_B, "search")  # rewrites the file: must keep what the other added
    assert one.teams(ID_A) == ("payments",) and one.teams(ID_B) == ("search",)
    assert ImageOwners(tmp_path / "owners.json").teams(ID_A) == ("payments",)


def test_an_exception_approved_through_one_worker_counts_in_another(tmp_path: Path) -> None:
    one, two = ExceptionStore.in_folder(tmp_path), ExceptionStore.in_folder(tmp_path)
    try:
        assert two.active() == ()
        item = one.request("alice", ("payments",), False,
                           {"rule": "runtime.privileged", "team": "payments", "reason": "a test that needs it",
                            "expires": "1d"})  # fmt: skip
        one.approve(item["id"], "sofia", ("security-officer",))
        assert [g.rule for g in two.active()] == ["runtime.privileged"]
        one.revoke(item["id"], "sofia", ("security-officer",))
        assert two.active() == ()
    finally:
        one.close()
        two.close()


def _hold(folder: str, key: str, seconds: float, held: mp.Event) -> None:  # type: ignore[valid-type]
    async def go() -> None:
        async with KeyLocks(SqliteStore(Path(folder))).hold(key):
            held.set()  # type: ignore[attr-defined]
            time.sleep(seconds)

    asyncio.run(go())


def test_a_key_lock_held_by_another_process_is_waited_for_without_blocking_the_loop(tmp_path: Path) -> None:
    held = mp.get_context("fork").Event()
    other = mp.get_context("fork").Process(target=_hold, args=(str(tmp_path), "quota:payments", 0.5, held))
    other.start()
    try:
        assert held.wait(10)

        async def go() -> tuple[float, int]:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.ensure_future(tick())
            start = time.monotonic()
            async with KeyLocks(SqliteStore(tmp_path)).hold("quota:payments"):
                waited = time.monotonic() - start
            async with KeyLocks(SqliteStore(tmp_path)).hold("quota:search"):  # another key: no wait
                pass
            ticker.cancel()
            return waited, ticks

        waited, ticks = asyncio.run(go())
        assert waited > 0.2  # it waited for the other process to let go
        assert ticks > 5  # and the loop kept running meanwhile
    finally:
        other.join(10)


def test_an_id_token_spent_through_one_worker_is_a_replay_in_another(tmp_path: Path) -> None:
    from moorage.identity.certs import CertStore
    from moorage.identity.pki import Pki

    one = CertStore.in_folder(tmp_path, Pki(tmp_path / "pki"))
    two = CertStore.in_folder(tmp_path, Pki(tmp_path / "pki"))
    until = time.time() + 60
    assert one.spend_token("d1", until) is True
    assert two.spend_token("d1", until) is False and one.spend_token("d1", until) is False
    assert two.spend_token("d2", time.time() - 1) is True  # already past: forgotten at the next spend
    assert one.spend_token("d2", until) is True
