"""The store: where the state every gateway must agree on is kept.

One :class:`Store` holds several *areas* (``audit``, ``exceptions``, ``certs``,
``cluster``), each a set of tables with its own numbered migrations
(:mod:`moorage.store.schema`). SQLite is the embedded default: a folder with one file
per area. PostgreSQL is for several gateways: one database, one schema per area, so
the same SQL runs on both.

SQL is written once, with ``?`` placeholders and the subset both engines read
(``INSERT ... ON CONFLICT``, no ``INSERT OR REPLACE``). What differs (audit appends,
JSON queries) is written per :attr:`Store.kind` where it is used.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Literal, Protocol

__all__ = [
    "Conflict",
    "Database",
    "Kind",
    "Lease",
    "SchemaError",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Transaction",
]

Kind = Literal["sqlite", "postgresql"]

Row = tuple[object, ...]


class StoreError(Exception):
    """Something about the store went wrong; the message says what to do next."""


class StoreUnavailable(StoreError):
    """The store can't be reached (the database is down, the folder unwritable)."""


class Conflict(StoreError):
    """A write broke a uniqueness rule (the row is already there)."""


class SchemaError(StoreError):
    """The store's schema is not the one this Moorage knows: newer (upgrade Moorage),
    or older and not migrated (run ``moorage store migrate``)."""


class Transaction(Protocol):
    """Statements run in one transaction (committed when the block ends without error)."""

    def execute(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        """Run one statement; its rows (none for a write)."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement for each row of arguments."""
        ...


class Database(ABC):
    """One area's tables in a store, migrated to the version this Moorage knows."""

    kind: Kind
    area: str

    @abstractmethod
    def execute(self, sql: str, args: Sequence[object] = ()) -> list[Row]:
        """Run one statement in a transaction of its own; its rows."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A transaction: committed when the block ends, rolled back on an exception."""

    @abstractmethod
    def changed(self) -> bool:
        """Whether anyone else (another gateway, worker or the CLI) committed a change
        to this area since the last call. The first call answers True."""

    @abstractmethod
    def announce(self, tx: Transaction) -> None:
        """Tell every other gateway, when ``tx`` commits, that this area changed (their
        :meth:`changed` answers True within a second)."""

    @abstractmethod
    def close(self) -> None:
        """Close the connections."""


class Lease(ABC):
    """A named lock held across gateways until released, or until the holder dies."""

    @abstractmethod
    def held(self) -> bool:
        """Whether this process still holds it (a lost connection loses it)."""

    @abstractmethod
    def release(self) -> None:
        """Let another gateway take it."""


class Store(ABC):
    """The state every gateway shares, behind one interface."""

    kind: Kind
    url: str

    @abstractmethod
    def database(self, area: str) -> Database:
        """``area``'s tables. Raises :class:`SchemaError` unless the area's schema is
        the one this Moorage knows (an embedded SQLite store is migrated on open)."""

    @abstractmethod
    def versions(self) -> dict[str, int]:
        """Each area's schema version in the store (0: not created)."""

    @abstractmethod
    def migrate(self, target: dict[str, int] | None = None) -> list[tuple[str, int, str]]:
        """Apply the migrations each area lacks, up to ``target`` (default: the latest);
        (area, version, description) of each one applied."""

    @abstractmethod
    def lock(self, key: str) -> AbstractContextManager[None]:
        """Hold ``key`` exclusively across every gateway for the block (blocking)."""

    @abstractmethod
    def try_lock(self, key: str) -> Lease | None:
        """Hold ``key`` exclusively across every gateway if nobody does (never waits);
        None when someone does. For a caller that polls (an event loop)."""

    @abstractmethod
    def try_lease(self, name: str) -> Lease | None:
        """Take the lease ``name`` if nobody holds it; None when someone does."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection."""

    def describe(self) -> str:
        """The store for people: its kind and where it is, without a password."""
        return redact(self.url)


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def split_statements(script: str) -> Iterator[str]:
    """The statements of a migration script (split on ``;`` at a line's end)."""
    for part in script.split(";\n"):
        stmt = part.strip().rstrip(";").strip()
        if stmt:
            yield stmt
