"""The shared store: one PostgreSQL database for every gateway (psycopg 3).

Each area is a schema of its own (``audit``, ``exceptions``, ...), so the SQL the
areas share with SQLite runs unchanged under the area's ``search_path``. Schema
versions are rows of ``moorage.versions``; migrations run under an advisory lock, so
gateways starting together migrate once. A change is announced with ``pg_notify`` in
the writing transaction and heard by every gateway's listener (``LISTEN``) when it
commits. Locks and leases are advisory locks: a lease lives on a connection of its
own and ends with it, so a gateway that dies hands it on.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from moorage.store.interface import (
    Conflict,
    Database,
    Lease,
    Row,
    SchemaError,
    Store,
    StoreUnavailable,
    Transaction,
    redact,
    split_statements,
)
from moorage.store.schema import AREAS, latest, render

__all__ = ["PostgresDatabase", "PostgresStore"]

log = logging.getLogger("moorage.store")

_MIGRATE_LOCK = 0x6D6F6F7261676501  # "moorage" + 1: one migrator at a time
# pg_stat_activity shows which gateway holds each connection
_APP = f"moorage@{socket.gethostname()}"[:63]


def _sql(sql: str) -> str:
    """Moorage's ``?`` placeholders in psycopg's spelling."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Tx:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        try:
            cur = self._conn.execute(_sql(sql), tuple(args))
        except pg_errors.UniqueViolation as exc:
            raise Conflict(str(exc).strip()) from exc
        return [tuple(r) for r in cur.fetchall()] if cur.description else []

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        try:
            with self._conn.cursor() as cur:
                cur.executemany(_sql(sql), [tuple(r) for r in rows])
        except pg_errors.UniqueViolation as exc:
            raise Conflict(str(exc).strip()) from exc


class _Listener:
    """One connection that LISTENs on every area's channel and counts notifications."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.counts: dict[str, int] = {}
        self._channels: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake: psycopg.Connection[Any] | None = None
        self._thread = threading.Thread(target=self._run, name="store-listener", daemon=True)
        self._started = False
        self._listening: frozenset[str] = frozenset()

    def channel(self, name: str) -> None:
        """Listen on ``name``; returns once the listener does (a change announced
        before then would be missed)."""
        with self._lock:
            self._channels.add(name)
            self.counts.setdefault(name, 0)
            if not self._started:
                self._started = True
                self._thread.start()
        deadline = time.monotonic() + 5
        while name not in self._listening and time.monotonic() < deadline:
            time.sleep(0.02)  # the listener takes a new channel up within 0.2 s

    def _run(self) -> None:
        listening: set[str] = set()
        conn: psycopg.Connection[Any] | None = None
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = psycopg.connect(self.url, autocommit=True, application_name=_APP)
                    listening = set()
                    self._listening = frozenset()
                    self._bump_all()  # anything may have changed while nobody listened
                with self._lock:
                    wanted = set(self._channels)
                for name in wanted - listening:
                    conn.execute(f'LISTEN "{name}"')
                    listening.add(name)
                self._listening = frozenset(listening)
                for note in conn.notifies(timeout=0.2):
                    with self._lock:
                        self.counts[note.channel] = self.counts.get(note.channel, 0) + 1
            except psycopg.Error as exc:
                log.warning("store listener: %s; reconnecting", exc)
                self._bump_all()
                conn = None
                time.sleep(0.5)
        if conn is not None:
            conn.close()

    def _bump_all(self) -> None:
        with self._lock:
            for name in self.counts:
                self.counts[name] += 1

    def stop(self) -> None:
        self._stop.set()
        if self._started:
            self._thread.join(2)


class PostgresDatabase(Database):
    """One area's schema, on a connection of its own (thread-safe)."""

    kind = "postgresql"

    def __init__(self, store: PostgresStore, area: str) -> None:
        self.area = area
        self._store = store
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        self._channel = f"moorage_{area}"
        self._seen = -1
        store.listener.channel(self._channel)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self._store.connect(self.area)
        return self._conn

    def execute(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        """Run one statement in a transaction of its own; its rows."""
        with self.transaction() as tx:
            return tx.execute(sql, args)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A transaction on the area's connection."""
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    yield _Tx(conn)
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(f"the store at {redact(self._store.url)} failed: {exc}") from exc

    def changed(self) -> bool:
        """Whether a notification for this area arrived since the last call."""
        count = self._store.listener.counts.get(self._channel, 0)
        seen, self._seen = self._seen, count
        return count != seen

    def announce(self, tx: Transaction) -> None:
        """``pg_notify`` on the area's channel, delivered when ``tx`` commits."""
        tx.execute("SELECT pg_notify(?, '')", (self._channel,))

    def close(self) -> None:
        """Close the area's connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class _AdvisoryLease(Lease):
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn: psycopg.Connection[Any] | None = conn
        self._lock = threading.Lock()

    def held(self) -> bool:
        with self._lock:
            if self._conn is None:
                return False
            try:
                self._conn.execute("SELECT 1")
                return True
            except psycopg.Error:
                self._conn = None
                return False

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(psycopg.Error):
                    self._conn.close()  # the session's advisory locks end with it
                self._conn = None


class _PooledLock(Lease):
    def __init__(self, store: PostgresStore, conn: psycopg.Connection[Any], key: str) -> None:
        self._store, self._conn, self._key = store, conn, key
        self._held = True

    def held(self) -> bool:
        return self._held and not self._conn.closed and not self._conn.broken

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        try:
            self._conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", _key(self._key))
        except psycopg.Error:
            self._conn.close()  # the session ends, and its locks with it
            return
        self._store._give_back(self._conn)


def _key(name: str) -> tuple[str]:
    return (name,)


class PostgresStore(Store):
    """Every area in one PostgreSQL database."""

    kind = "postgresql"

    def __init__(self, url: str, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.listener = _Listener(url)
        self._pool: list[psycopg.Connection[Any]] = []
        self._pool_lock = threading.Lock()
        with self._admin() as conn:
            conn.execute("CREATE SCHEMA IF NOT EXISTS moorage")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS moorage.versions (area TEXT PRIMARY KEY, version BIGINT NOT NULL)"
            )

    def connect(self, area: str | None = None) -> psycopg.Connection[Any]:
        """A new connection in autocommit mode, in ``area``'s schema."""
        options = f"-c search_path={area}" if area else ""
        try:
            return psycopg.connect(self.url, autocommit=True, options=options, application_name=_APP,
                                   connect_timeout=max(1, int(self.connect_timeout)))  # fmt: skip
        except psycopg.Error as exc:
            raise StoreUnavailable(
                f"cannot reach the store at {redact(self.url)}: {str(exc).strip()}; "
                "check that PostgreSQL runs and the URL's host, user and database are right"
            ) from exc

    @contextlib.contextmanager
    def _admin(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool_lock:
            conn = self._pool.pop() if self._pool else None
        if conn is None or conn.closed or conn.broken:
            conn = self.connect()
        try:
            yield conn
        except psycopg.OperationalError as exc:
            conn.close()
            raise StoreUnavailable(f"the store at {redact(self.url)} failed: {exc}") from exc
        self._give_back(conn)

    def database(self, area: str) -> PostgresDatabase:
        """``area``'s schema; refused unless it is at the version this Moorage knows."""
        if area not in AREAS:
            raise KeyError(area)
        have, known = self.versions()[area], latest(area)
        if have != known:
            raise SchemaError(
                f"the {area} schema in {redact(self.url)} is at version {have}, this Moorage needs {known}: "
                + ("upgrade Moorage" if have > known else "run moorage store migrate --store URL")
            )
        return PostgresDatabase(self, area)

    def versions(self) -> dict[str, int]:
        """Each area's version from ``moorage.versions``."""
        with self._admin() as conn:
            rows = dict(conn.execute("SELECT area, version FROM moorage.versions").fetchall())
        return {area: int(rows.get(area, 0)) for area in AREAS}

    def migrate(self, target: dict[str, int] | None = None) -> list[tuple[str, int, str]]:
        """Every area's missing migrations, in one transaction each, under one lock."""
        applied = []
        with self._admin() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
            for area, steps in AREAS.items():
                row = conn.execute("SELECT version FROM moorage.versions WHERE area = %s", (area,)).fetchone()
                have = int(row[0]) if row else 0
                if have > latest(area):
                    raise SchemaError(
                        f"the {area} schema is at version {have}, newer than this Moorage knows "
                        f"({latest(area)}): upgrade Moorage"
                    )
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{area}"')
                conn.execute(f'SET LOCAL search_path TO "{area}"')
                for m in steps:
                    if m.version <= have or (target and area in target and m.version > target[area]):
                        continue
                    for stmt in split_statements(render(m.script, "postgresql")):
                        conn.execute(stmt)
                    conn.execute(
                        "INSERT INTO moorage.versions (area, version) VALUES (%s, %s)"
                        " ON CONFLICT (area) DO UPDATE SET version = EXCLUDED.version",
                        (area, m.version),
                    )
                    applied.append((area, m.version, m.description))
        return applied

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """``pg_advisory_lock`` on the key for the block, on a pooled connection."""
        with self._admin() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", _key(key))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", _key(key))

    def try_lock(self, key: str) -> Lease | None:
        """``pg_try_advisory_lock`` on a pooled connection, handed back on release."""
        with self._pool_lock:
            conn = self._pool.pop() if self._pool else None
        if conn is None or conn.closed or conn.broken:
            conn = self.connect()
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", _key(key)).fetchone()
        except psycopg.Error as exc:
            conn.close()
            raise StoreUnavailable(f"the store at {redact(self.url)} failed: {exc}") from exc
        if row and row[0]:
            return _PooledLock(self, conn, key)
        self._give_back(conn)
        return None

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        with self._pool_lock:
            if len(self._pool) < 8 and not conn.closed and not conn.broken:
                self._pool.append(conn)
                return
        conn.close()

    def try_lease(self, name: str) -> Lease | None:
        """``pg_try_advisory_lock`` on a connection kept for the lease."""
        conn = self.connect()
        row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", _key(f"lease:{name}"))
        got = row.fetchone()
        if not got or not got[0]:
            conn.close()
            return None
        return _AdvisoryLease(conn)

    def close(self) -> None:
        """Stop the listener and close the pool."""
        self.listener.stop()
        with self._pool_lock:
            for conn in self._pool:
                conn.close()
            self._pool.clear()
