"""Persistence behind one interface (:mod:`moorage.store.interface`): SQLite embedded
(the default), PostgreSQL for several gateways, picked by URL; numbered migrations
(:mod:`moorage.store.schema`)."""

from __future__ import annotations

from pathlib import Path

from moorage.store.interface import Database, SchemaError, Store, StoreError, StoreUnavailable

__all__ = ["Database", "SchemaError", "Store", "StoreError", "StoreUnavailable", "open_store"]


def open_store(spec: str | Path | None, data: Path) -> Store:
    """The store ``spec`` names: ``postgresql://...`` (or ``postgres://``), a
    ``sqlite:///folder`` URL or a folder; None is the data folder itself (SQLite)."""
    if spec is None:
        from moorage.store.sqlite import SqliteStore

        return SqliteStore(data)
    text = str(spec)
    if text.startswith(("postgresql://", "postgres://")):
        from moorage.store.postgres import PostgresStore

        return PostgresStore(text)
    if "://" in text and not text.startswith("sqlite://"):
        scheme = text.split("://")[0]
        raise StoreError(
            f"--store {scheme}://...: use postgresql://USER@HOST/DB, sqlite:///FOLDER or a folder"
        )
    from moorage.store.sqlite import SqliteStore

    return SqliteStore(Path(text.removeprefix("sqlite://")))
