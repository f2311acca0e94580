"""The fast path's pool, the one owner of its state: idle engine connections and the sweeper."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, cast

from moorage.gateway.fastpool import FastPool, FastUpstream
from moorage.gateway.http import Limits
from moorage.gateway.upstream import Upstream


class _Client:
    def __init__(self, busy: bool, idle_for: float) -> None:
        self.busy = busy
        self.last = time.monotonic() - idle_for
        self.closed = False

    def close(self) -> None:
        self.closed = True


class _Transport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def _up(pool: FastPool) -> FastUpstream:
    up = FastUpstream(pool)
    up.transport = cast(Any, _Transport())
    return up


def test_the_pool_keeps_idle_connections_up_to_its_size() -> None:
    pool = FastPool(Upstream("unix:///nowhere.sock", pool_size=2), Limits())
    a, b, c = _up(pool), _up(pool), _up(pool)
    assert pool.take() is None
    assert pool.put(a) and pool.put(b)
    assert not pool.put(c), "full: the caller closes it"
    pool.forget(a)
    pool.forget(a)  # a connection lost twice, or never pooled, is no error
    assert pool.take() is b
    assert pool.take() is None


def test_release_pools_a_kept_connection_and_closes_the_rest() -> None:
    pool = FastPool(Upstream("unix:///nowhere.sock", pool_size=1), Limits())
    kept, spare, closing = _up(pool), _up(pool), _up(pool)
    kept.release()
    assert pool.take() is kept
    kept.release()
    spare.release()  # the pool is full
    assert cast(Any, spare.transport).closed
    closing.keep = False  # the engine said Connection: close
    closing.release()
    assert cast(Any, closing.transport).closed and pool.take() is kept


def test_sweep_closes_idle_clients_and_close_closes_everything() -> None:
    async def run() -> None:
        pool = FastPool(Upstream("unix:///nowhere.sock"), Limits(idle_timeout=10.0))
        idle, busy, fresh = _Client(False, 11.0), _Client(True, 11.0), _Client(False, 1.0)
        pool.clients.update(cast(Any, {idle, busy, fresh}))
        up = _up(pool)
        pool.put(up)
        pool.sweep()
        assert idle.closed and not busy.closed and not fresh.closed
        pool.close()
        assert busy.closed and fresh.closed and cast(Any, up.transport).closed
        assert pool.take() is None

    asyncio.run(run())


def test_connect_names_an_unreachable_engine(tmp_path: Path) -> None:
    async def run() -> None:
        pool = FastPool(Upstream(f"unix://{tmp_path}/none.sock"), Limits())
        try:
            await pool.connect()
        except OSError:
            return
        raise AssertionError("connected to nothing")

    asyncio.run(run())
