"""Reading the shared audit chain in PostgreSQL: rows, checkpoints, verify, query,
export and archive, for :class:`moorage.audit.shared.SharedTrail` and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from moorage.audit.chain import GENESIS
from moorage.audit.interface import AuditError
from moorage.audit.keys import KeyRing
from moorage.audit.verify import Row, VerifyResult, verify_rows
from moorage.store.postgres import PostgresStore

__all__ = ["SharedReads"]


class SharedReads:
    """The shared chain, read."""

    healthy: bool = True

    def __init__(self, store: PostgresStore, keys: KeyRing) -> None:
        self.store = store
        self.keys = keys
        self._rconn: psycopg.Connection[Any] | None = None

    def _reader(self) -> psycopg.Connection[Any]:
        if self._rconn is None or self._rconn.closed or self._rconn.broken:
            self._rconn = self.store.connect("audit")
        return self._rconn

    def anchor(self, conn: psycopg.Connection[Any] | None = None) -> tuple[int, str]:
        """(seq, hash) of the last archived record: where the stored chain starts."""
        rows = dict(
            (conn or self._reader())
            .execute("SELECT key, value FROM meta WHERE key LIKE 'anchor_%'")
            .fetchall()
        )
        return int(rows.get("anchor_seq", 0)), str(rows.get("anchor_hash", GENESIS))

    def rows(self) -> Iterator[Row]:
        """Every stored record in order, streamed from a server-side cursor."""
        conn = self.store.connect("audit")
        try:
            with conn.transaction(), conn.cursor(name="audit_rows") as cur:
                cur.itersize = 4096
                cur.execute("SELECT seq, body, prev, hash FROM records ORDER BY seq")
                for seq, body, prev, digest in cur:
                    yield Row(int(seq), str(body), str(prev), str(digest))
        finally:
            conn.close()

    def checkpoints(self) -> list[tuple[int, str]]:
        """(size, signed note) of every checkpoint."""
        return [
            (int(s), str(n))
            for s, n in self._reader().execute("SELECT size, note FROM checkpoints ORDER BY size")
        ]

    def signers(self) -> dict[str, int]:
        """The key that signed checkpoints (name+key id) -> how many it signed."""
        rows = self._reader().execute("SELECT signer, count(*) FROM checkpoints GROUP BY signer").fetchall()
        return {str(r[0]) or "(unnamed)": int(r[1]) for r in rows}

    def verify(self) -> VerifyResult:
        """Check the whole shared chain and every checkpoint's signature from the anchor on."""
        return verify_rows(self.rows(), self.checkpoints(), self.keys.verifiers(), self.anchor())

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
        """(seq, record) of the records matching every filter given, in order."""
        where, args = ["seq > %s"], [after_seq]
        for column, value in (("user", user), ("decision", decision)):
            if value is not None:
                where.append(f"body::jsonb ->> '{column}' = %s")
                args.append(value)  # type: ignore[arg-type]
        if team is not None:
            where.append("(body::jsonb -> 'teams') @> jsonb_build_array(%s::text)")
            args.append(team)  # type: ignore[arg-type]
        if obj is not None:
            where.append("(body::jsonb ->> 'object_ref' = %s OR body::jsonb ->> 'object_ref' LIKE %s)")
            args += [obj, obj.replace("%", r"\%").replace("_", r"\_") + "%"]  # type: ignore[list-item]
        if since is not None:
            where.append("(body::jsonb ->> 'time')::float8 >= %s")
            args.append(since)  # type: ignore[arg-type]
        if until is not None:
            where.append("(body::jsonb ->> 'time')::float8 <= %s")
            args.append(until)  # type: ignore[arg-type]
        sql = f"SELECT seq, body FROM records WHERE {' AND '.join(where)} ORDER BY seq"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [(int(s), json.loads(b)) for s, b in self._reader().execute(sql, args)]

    def export_lines(self, upto: int | None = None) -> Iterator[dict[str, Any]]:
        """JSON-lines documents: the anchor, every record, every checkpoint."""
        seq, head = self.anchor()
        yield {"type": "anchor", "seq": seq, "hash": head}
        for row in self.rows():
            if upto is not None and row.seq > upto:
                break
            yield {"type": "record", "seq": row.seq, "prev": row.prev, "hash": row.hash, "body": row.body}
        for size, note in self.checkpoints():
            if upto is None or size <= upto:
                yield {"type": "checkpoint", "size": size, "note": note}

    def archive(self, upto: int, out: Path) -> int:
        """Move records 1..upto to ``out`` (a file that verifies on its own); the chain
        continues in the store from their last hash. Returns how many moved."""
        first, _ = self.anchor()
        conn = self._reader()
        last = conn.execute("SELECT hash FROM records WHERE seq = %s", (upto,)).fetchone()
        if upto <= first or last is None:
            raise AuditError(f"can archive only stored records (the first stored is {first + 1})")
        tmp = out.with_suffix(out.suffix + ".partial")
        with open(tmp, "w") as f:
            for doc in self.export_lines(upto):
                f.write(json.dumps(doc, separators=(",", ":")) + "\n")
        tmp.replace(out)
        with conn.transaction():
            conn.execute("DELETE FROM records WHERE seq <= %s", (upto,))
            for key, value in (("anchor_seq", str(upto)), ("anchor_hash", str(last[0]))):
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (key, value),
                )
        return upto - first

    def close(self) -> None:
        """Close the reading connection."""
        if self._rconn is not None:
            self._rconn.close()
            self._rconn = None
