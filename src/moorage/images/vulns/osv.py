"""The OSV database: OSV records in an indexed SQLite file, the
:class:`VulnerabilitySource` Moorage ships.

``update`` reads an OSV export (a per-ecosystem ``all.zip``, a folder of ``.json``
files, or either over HTTP; see :mod:`.osv_records`), checks every record, and only
then swaps the new database in with one ``rename``: a corrupt or partial import is
rejected whole and the previous database stays. Records of other sources are
carried over, so importing ``Debian:12`` keeps the ``PyPI`` records already there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from moorage.images.catalogers.interface import Inventory
from moorage.images.vulns.interface import DBStatus, Matches, VulnerabilitySource
from moorage.images.vulns.osv_match import match_inventory
from moorage.images.vulns.osv_records import OsvDatabaseError, index_name, read_records

__all__ = ["OsvDatabase"]

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (source TEXT PRIMARY KEY, imported_at REAL NOT NULL, records INTEGER NOT NULL,
                      sha256 TEXT NOT NULL);
CREATE TABLE records (id TEXT PRIMARY KEY, source TEXT NOT NULL, modified TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE affected (ecosystem TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL);
CREATE INDEX affected_pkg ON affected (ecosystem, name);
"""
"""The database's tables: records, and an index of the packages each affects."""


class OsvDatabase(VulnerabilitySource):
    """An OSV database file. Reading never writes; an update writes a new file and
    renames it into place."""

    name: ClassVar[str] = "osv"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._stamp: tuple[int, int] | None = None

    # ------------------------------------------------------------------ read
    def exists(self) -> bool:
        """Whether the database file is there."""
        return self.path.is_file()

    def _db(self) -> sqlite3.Connection:
        try:
            st = self.path.stat()
        except OSError as exc:
            raise OsvDatabaseError(
                f"no vulnerability database at {self.path}: run moorage db update --from PATH|URL"
            ) from exc
        stamp = (st.st_ino, st.st_mtime_ns)
        if self._conn is None or stamp != self._stamp:  # a new import was renamed in
            if self._conn is not None:
                self._conn.close()
            try:
                self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
                self._conn.execute("SELECT 1 FROM meta LIMIT 1")
            except sqlite3.Error as exc:
                self._conn = None
                raise OsvDatabaseError(f"{self.path} is not a Moorage vulnerability database: {exc}") from exc
            self._stamp = stamp
        return self._conn

    def _meta(self, key: str) -> str:
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else ""

    @property
    def version(self) -> str:
        """A digest of the imported exports: it changes with every import that changes data."""
        return self._meta("version")

    @property
    def built_at(self) -> float:
        """When the last import finished."""
        return float(self._meta("built_at") or 0)

    def status(self) -> DBStatus:
        """The imported sources, records per ecosystem, version and age."""
        db = self._db()
        sources = tuple(
            (str(s), float(t), int(n))
            for s, t, n in db.execute("SELECT source, imported_at, records FROM sources ORDER BY source")
        )
        ecos = tuple(
            (str(e), int(n))
            for e, n in db.execute(
                "SELECT ecosystem, COUNT(DISTINCT id) FROM affected GROUP BY ecosystem ORDER BY ecosystem"
            )
        )
        total = int(db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
        return DBStatus(self.path, self.version, self.built_at, sources, ecos, total)

    def records_for(self, ecosystem: str, name: str) -> list[dict[str, Any]]:
        """Records naming ``name`` in ``ecosystem`` (``Debian:12`` also finds
        records filed under plain ``Debian``)."""
        base = ecosystem.partition(":")[0]
        ecos = {ecosystem.lower(), base.lower()}
        key = index_name(ecosystem, name)
        marks = ",".join("?" * len(ecos))
        rows = (
            self._db()
            .execute(
                f"SELECT DISTINCT r.data FROM affected a JOIN records r ON r.id = a.id "
                f"WHERE a.name = ? AND a.ecosystem IN ({marks})",
                (key, *sorted(ecos)),
            )
            .fetchall()
        )
        return [json.loads(r[0]) for r in rows]

    def query(self, inventory: Inventory) -> Matches:
        """Every record that affects a package of ``inventory``, in its ecosystem's version order."""
        findings, warnings = match_inventory(inventory, self.records_for)
        return Matches(tuple(findings), tuple(warnings))

    def close(self) -> None:
        """Close the read connection; the next read opens it again."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ---------------------------------------------------------------- import
    def update(
        self, source: str, progress: Callable[[int, int], None] | None = None, now: float | None = None
    ) -> DBStatus:
        """Import one OSV export, all or nothing."""
        name = source if "://" in source else str(Path(source).resolve())
        records, sha = read_records(source, progress)
        now = time.time() if now is None else now
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".vulndb-", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if self.path.exists():
                shutil.copyfile(self.path, tmp)
                conn = sqlite3.connect(tmp)
                try:
                    conn.execute("SELECT 1 FROM meta LIMIT 1")
                except sqlite3.Error:
                    conn.close()
                    tmp.unlink()
                    conn = sqlite3.connect(tmp)
                    conn.executescript(SCHEMA)
            else:
                conn = sqlite3.connect(tmp)
                conn.executescript(SCHEMA)
            with conn:
                ids = [r[0] for r in conn.execute("SELECT id FROM records WHERE source = ?", (name,))]
                conn.executemany("DELETE FROM affected WHERE id = ?", ((i,) for i in ids))
                conn.execute("DELETE FROM records WHERE source = ?", (name,))
                for rec in records:
                    rid = rec["id"]
                    conn.execute("DELETE FROM affected WHERE id = ?", (rid,))
                    conn.execute(
                        "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
                        (rid, name, rec["modified"], json.dumps(rec, separators=(",", ":"))),
                    )
                    seen = set()
                    for a in rec.get("affected") or []:
                        pkg = a.get("package") or {}
                        eco, pname = pkg.get("ecosystem"), pkg.get("name")
                        if not eco or not pname:
                            continue
                        k = (eco.lower(), index_name(eco, pname))
                        if k not in seen:
                            seen.add(k)
                            conn.execute("INSERT INTO affected VALUES (?, ?, ?)", (*k, rid))
                conn.execute(
                    "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?)", (name, now, len(records), sha)
                )
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('built_at', ?)", (repr(now),))
                version = hashlib.sha256(
                    "".join(
                        f"{s}{h}"
                        for s, h in conn.execute("SELECT source, sha256 FROM sources ORDER BY source")
                    ).encode()
                ).hexdigest()[:16]
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (version,))
            conn.execute("VACUUM")
            conn.close()
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.close()
        return self.status()
