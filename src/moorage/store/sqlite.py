"""The embedded store: a folder with one SQLite file (WAL) per area.

An area's schema version is its file's ``PRAGMA user_version``; opening an area
migrates it (the embedded store has one owner, the gateway on this machine). Another
process's commit is seen through ``PRAGMA data_version``. Locks and leases are
``flock`` on files under ``locks/``, so they hold across worker processes and end
with the process that held them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from moorage.store.interface import (
    Conflict,
    Database,
    Lease,
    Row,
    SchemaError,
    Store,
    StoreUnavailable,
    Transaction,
    split_statements,
)
from moorage.store.schema import AREAS, latest, render

__all__ = ["SqliteDatabase", "SqliteStore", "connect"]


def connect(path: Path, synchronous: str = "NORMAL", timeout: float = 10.0) -> sqlite3.Connection:
    """A connection to ``path`` in autocommit mode, WAL, usable from any thread."""
    try:
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=timeout)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot open {path}: {exc}") from exc
    return db


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        try:
            return self._db.execute(sql, tuple(args)).fetchall()
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        try:
            self._db.executemany(sql, [tuple(r) for r in rows])
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from exc


def migrate_file(db: sqlite3.Connection, area: str, target: int | None = None) -> list[tuple[str, int, str]]:
    """Bring one area's file to ``target`` (default: the latest); the steps applied."""
    have = int(db.execute("PRAGMA user_version").fetchone()[0])
    known = latest(area)
    if have > known:
        raise SchemaError(
            f"the {area} store is at schema version {have}, newer than this Moorage knows ({known}): "
            "upgrade Moorage, or restore a backup taken before the upgrade"
        )
    applied = []
    for m in AREAS[area]:
        if m.version <= have or (target is not None and m.version > target):
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            for stmt in split_statements(render(m.script, "sqlite")):
                db.execute(stmt)
            db.execute(f"PRAGMA user_version = {int(m.version)}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append((area, m.version, m.description))
    return applied


class SqliteDatabase(Database):
    """One area's file."""

    kind = "sqlite"

    def __init__(self, path: Path, area: str) -> None:
        self.area = area
        self.path = path
        self._lock = threading.RLock()
        self._db = connect(path)
        migrate_file(self._db, area)
        self._seen = -1

    def execute(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        """Run one statement in a transaction of its own; its rows."""
        with self._lock:
            return _Tx(self._db).execute(sql, args)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A transaction (``BEGIN IMMEDIATE``: writers queue, readers never block)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _Tx(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def changed(self) -> bool:
        """Whether another connection committed since the last call (``data_version``)."""
        with self._lock:
            version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
            seen, self._seen = self._seen, version
            return version != seen

    def announce(self, tx: Transaction) -> None:
        """Nothing to do: other connections see the commit through ``data_version``."""

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()


class _FileLease(Lease):
    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None


class SqliteStore(Store):
    """A folder of SQLite files, one per area (``audit.db``, ``exceptions.db``, ...)."""

    kind = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.url = f"sqlite://{folder}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the store folder {folder}: {exc.strerror}") from exc

    def path(self, area: str) -> Path:
        """The file of ``area``."""
        if area not in AREAS:
            raise KeyError(area)
        return self.folder / f"{area}.db"

    def database(self, area: str) -> SqliteDatabase:
        """``area``'s file, migrated."""
        return SqliteDatabase(self.path(area), area)

    def versions(self) -> dict[str, int]:
        """Each area's ``user_version`` (0 for a file not yet created)."""
        out = {}
        for area in AREAS:
            path = self.path(area)
            if not path.exists():
                out[area] = 0
                continue
            db = connect(path)
            try:
                out[area] = int(db.execute("PRAGMA user_version").fetchone()[0])
            finally:
                db.close()
        return out

    def migrate(self, target: dict[str, int] | None = None) -> list[tuple[str, int, str]]:
        """Migrate every area's file."""
        applied = []
        for area in AREAS:
            db = connect(self.path(area))
            try:
                applied += migrate_file(db, area, (target or {}).get(area))
            finally:
                db.close()
        return applied

    def _lock_fd(self, key: str) -> int:
        folder = self.folder / "locks"
        folder.mkdir(exist_ok=True)
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        return os.open(folder / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """``flock`` on the key's file for the block."""
        fd = self._lock_fd(key)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def try_lock(self, key: str) -> Lease | None:
        """The key's file, locked without waiting; None when another holder has it."""
        fd = self._lock_fd(key)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return _FileLease(fd)

    def try_lease(self, name: str) -> Lease | None:
        """The lease's file, locked without waiting; None when another process holds it."""
        fd = self._lock_fd(f"lease:{name}")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return _FileLease(fd)

    def close(self) -> None:
        """Nothing is held open by the store itself."""
