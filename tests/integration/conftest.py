"""Fixtures for the store's tests: a private PostgreSQL for the module, and a store
opened on either backend (SQLite folder or a fresh PostgreSQL database)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from moorage.store import open_store
from moorage.store.interface import Store
from tests import pg_harness

Opener = Callable[[], Store]


@pytest.fixture(scope="module")
def postgres() -> Iterator[pg_harness.Postgres]:
    with pg_harness.running() as pg:
        yield pg


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """A function that opens the same (new, empty) store again, as another gateway would."""
    opened: list[Store] = []
    if request.param == "sqlite":
        spec = str(tmp_path / "store")
    else:
        pg: pg_harness.Postgres = request.getfixturevalue("postgres")
        spec = pg.create_database(f"t{time.monotonic_ns()}")

    def open_one() -> Store:
        store = open_store(spec, tmp_path)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()
