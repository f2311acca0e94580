"""The audit trail's SQLite file: its schema, the anchor, and everything that reads it
(rows, checkpoints, verify, query) or moves records out of it (export, archive).

Appending lives in audit/trail.py; :class:`TrailDatabase` is its base, so a read
first asks the trail to chain what its journal holds.
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moorage.audit.chain import GENESIS
from moorage.audit.interface import AuditError
from moorage.audit.keys import KeyRing
from moorage.audit.verify import Row, VerifyResult, verify_rows

__all__ = ["TrailDatabase", "verify_file"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, body TEXT NOT NULL,
                                    prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class TrailDatabase(ABC):
    """One audit trail's SQLite file (WAL), opened for reading and for archiving."""

    def __init__(self, path: Path, keys: KeyRing, writer: bool) -> None:
        self.path = path
        self.keys = keys
        path.parent.mkdir(parents=True, exist_ok=True)
        if not writer and not path.exists():
            raise AuditError(f"no audit trail at {path}")
        self._db = self._connect(path)
        row = self._db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        self._seq, self._head = (int(row[0]), str(row[1])) if row else self.anchor()
        cp = self._db.execute("SELECT MAX(size) FROM checkpoints").fetchone()
        self._checkpointed = int(cp[0] or 0)

    @staticmethod
    def _connect(path: Path, synchronous: str = "FULL", timeout: float = 10.0) -> sqlite3.Connection:
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=timeout)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.executescript(_SCHEMA)
        return db

    def anchor(self) -> tuple[int, str]:
        """(seq, hash) of the last archived record: where the stored chain starts."""
        rows = dict(self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'anchor_%'").fetchall())
        return int(rows.get("anchor_seq", 0)), str(rows.get("anchor_hash", GENESIS))

    @abstractmethod
    def apply_journals(self) -> None:
        """Chain journaled records into the store, so that a read sees them."""

    # ------------------------------------------------------------------- reads
    def rows(self, db: sqlite3.Connection | None = None) -> Iterator[Row]:
        """Every stored record in order, read in chunks."""
        self.apply_journals()
        cur = (db or self._db).execute("SELECT seq, body, prev, hash FROM records ORDER BY seq")
        while chunk := cur.fetchmany(4096):
            yield from map(Row._make, chunk)

    def checkpoints(self) -> list[tuple[int, str]]:
        """(size, signed note) of every checkpoint."""
        return [(int(s), str(n)) for s, n in self._db.execute("SELECT size, note FROM checkpoints")]

    def verify(self) -> VerifyResult:
        """Check the chain and every checkpoint signature from the anchor on."""
        self.apply_journals()
        db = self._connect(self.path)  # a reader of its own: verifying never blocks appends
        try:
            rows = db.execute("SELECT seq, body, prev, hash FROM records ORDER BY seq")
            return verify_rows(rows, self.checkpoints(), self.keys.verifiers(), self.anchor())
        finally:
            db.close()

    def query(
        self,
        user: str | None = None,
        team: str | None = None,
        obj: str | None = None,
        decision: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> list[tuple[int, dict[str, Any]]]:
        """(seq, record) of the stored records matching every filter given, in order."""
        self.apply_journals()
        where, args = ["seq > ?"], [after_seq]
        for column, value in (("user", user), ("decision", decision)):
            if value is not None:
                where.append(f"json_extract(body, '$.{column}') = ?")
                args.append(value)  # type: ignore[arg-type]
        if team is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(body, '$.teams') WHERE value = ?)")
            args.append(team)  # type: ignore[arg-type]
        if obj is not None:
            where.append(
                "(json_extract(body, '$.object_ref') = ? OR json_extract(body, '$.object_ref') LIKE ?)"
            )
            args += [obj, f"{obj}%"]  # type: ignore[list-item]
        if since is not None:
            where.append("json_extract(body, '$.time') >= ?")
            args.append(since)  # type: ignore[arg-type]
        if until is not None:
            where.append("json_extract(body, '$.time') <= ?")
            args.append(until)  # type: ignore[arg-type]
        sql = f"SELECT seq, body FROM records WHERE {' AND '.join(where)} ORDER BY seq"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [(int(s), json.loads(b)) for s, b in self._db.execute(sql, args)]

    # ---------------------------------------------------------- export, archive
    def export_lines(self, upto: int | None = None) -> Iterator[dict[str, Any]]:
        """JSON-lines documents: the anchor, every record, every checkpoint."""
        seq, head = self.anchor()
        yield {"type": "anchor", "seq": seq, "hash": head}
        for row in self.rows():
            if upto is not None and row.seq > upto:
                break
            yield {"type": "record", "seq": row.seq, "prev": row.prev, "hash": row.hash, "body": row.body}
        for size, note in sorted(self.checkpoints()):
            if upto is None or size <= upto:
                yield {"type": "checkpoint", "size": size, "note": note}

    def archive(self, upto: int, out: Path) -> int:
        """Move records 1..upto to ``out`` (a file that verifies on its own); the chain
        continues in the store from their last hash. Returns how many moved."""
        first, _ = self.anchor()
        if upto <= first or upto > self._seq:
            raise AuditError(f"can archive up to record {self._seq} (the first stored is {first + 1})")
        row = self._db.execute("SELECT hash FROM records WHERE seq = ?", (upto,)).fetchone()
        tmp = out.with_suffix(out.suffix + ".partial")
        with open(tmp, "w") as f:
            for doc in self.export_lines(upto):
                f.write(json.dumps(doc, separators=(",", ":")) + "\n")
        tmp.replace(out)
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute("DELETE FROM records WHERE seq <= ?", (upto,))
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('anchor_seq', ?), ('anchor_hash', ?)",
                         (str(upto), row[0]))  # fmt: skip
        self._db.execute("COMMIT")
        return upto - first


def verify_file(path: Path, keys: KeyRing) -> VerifyResult:
    """Verify an export or archive file written by :meth:`TrailDatabase.export_lines`."""
    anchor = (0, GENESIS)
    rows: list[Row] = []
    notes: list[tuple[int, str]] = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            try:
                doc = json.loads(line)
            except ValueError as exc:
                raise AuditError(f"{path}:{number}: not JSON") from exc
            kind = doc.get("type")
            if kind == "anchor":
                anchor = (int(doc["seq"]), str(doc["hash"]))
            elif kind == "record":
                rows.append(Row(int(doc["seq"]), str(doc["body"]), str(doc["prev"]), str(doc["hash"])))
            elif kind == "checkpoint":
                notes.append((int(doc["size"]), str(doc["note"])))
    return verify_rows(rows, notes, keys.verifiers(), anchor)
