"""The audit trail a store holds: the embedded SQLite trail (``audit.db`` in the data
folder, tuned for one host) or the chain every gateway on a PostgreSQL store shares."""

from __future__ import annotations

from moorage.audit.keys import KeyRing
from moorage.audit.shared import SharedTrail
from moorage.audit.trail import AuditTrail
from moorage.store.interface import Store
from moorage.store.postgres import PostgresStore
from moorage.store.sqlite import SqliteStore

__all__ = ["open_trail"]


def open_trail(store: Store, keys: KeyRing, writer: bool = True) -> AuditTrail | SharedTrail:
    """The trail in ``store``, to append to (``writer``) or only to read."""
    if isinstance(store, PostgresStore):
        return SharedTrail(store, keys, writer=writer)
    if not isinstance(store, SqliteStore):
        raise TypeError(f"no audit trail for a {store.kind} store")
    path = store.path("audit")
    if writer or path.exists():
        store.database("audit").close()  # the file's schema, migrated by the store
    return AuditTrail(path, keys, writer=writer)
