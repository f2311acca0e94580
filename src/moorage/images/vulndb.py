"""The local vulnerability database: OSV records in an indexed SQLite file.

``import_source`` reads an OSV export (a per-ecosystem ``all.zip``, a folder of
``.json`` files, or either over HTTP), checks every record, and only then swaps
the new database in with one ``rename``: a corrupt or partial import is rejected
whole and the previous database stays. Records of other sources are carried over,
so importing ``Debian:12`` keeps the ``PyPI`` records already there.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moorage.images.catalogers.python import pep503
from moorage.images.interface import VulnDBError

__all__ = ["DBStatus", "VulnDB", "index_name"]

MAX_RECORD = 8 << 20
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (source TEXT PRIMARY KEY, imported_at REAL NOT NULL, records INTEGER NOT NULL,
                      sha256 TEXT NOT NULL);
CREATE TABLE records (id TEXT PRIMARY KEY, source TEXT NOT NULL, modified TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE affected (ecosystem TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL);
CREATE INDEX affected_pkg ON affected (ecosystem, name);
"""


def index_name(ecosystem: str, name: str) -> str:
    return pep503(name) if ecosystem.lower().startswith("pypi") else name


@dataclass(frozen=True)
class DBStatus:
    path: Path
    version: str
    built_at: float
    sources: tuple[tuple[str, float, int], ...]  # (source, imported_at, records)
    ecosystems: tuple[tuple[str, int], ...]
    records: int

    def age(self, now: float | None = None) -> float:
        return (now or time.time()) - self.built_at

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "version": self.version,
            "built_at": self.built_at,
            "age_seconds": round(self.age(now), 1),
            "records": self.records,
            "sources": [{"source": s, "imported_at": t, "records": n} for s, t, n in self.sources],
            "ecosystems": dict(self.ecosystems),
        }


def _check_record(doc: Any, where: str) -> dict[str, Any]:
    """The fields matching relies on; anything else malformed rejects the import."""
    if not isinstance(doc, dict):
        raise VulnDBError(f"{where}: an OSV record must be a JSON object")
    for key in ("id", "modified"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise VulnDBError(f"{where}: the OSV field {key!r} is missing or not a string")
    affected = doc.get("affected", [])
    if not isinstance(affected, list):
        raise VulnDBError(f"{where}: 'affected' must be a list")
    for i, a in enumerate(affected):
        at = f"{where}: affected[{i}]"
        if not isinstance(a, dict):
            raise VulnDBError(f"{at} must be an object")
        pkg = a.get("package")
        if pkg is not None and (
            not isinstance(pkg, dict)
            or not isinstance(pkg.get("name"), str)
            or not isinstance(pkg.get("ecosystem"), str)
        ):
            raise VulnDBError(f"{at}.package needs string 'ecosystem' and 'name'")
        for j, r in enumerate(a.get("ranges") or []):
            if not isinstance(r, dict) or r.get("type") not in ("ECOSYSTEM", "SEMVER", "GIT"):
                raise VulnDBError(f"{at}.ranges[{j}].type must be ECOSYSTEM, SEMVER or GIT")
            events = r.get("events")
            if not isinstance(events, list) or not events:
                raise VulnDBError(f"{at}.ranges[{j}].events must be a non-empty list")
            for k, ev in enumerate(events):
                if (
                    not isinstance(ev, dict)
                    or len(ev) != 1
                    or next(iter(ev)) not in ("introduced", "fixed", "last_affected", "limit")
                    or not isinstance(next(iter(ev.values())), str)
                ):
                    raise VulnDBError(
                        f"{at}.ranges[{j}].events[{k}] must be one of introduced, fixed, "
                        f"last_affected, limit with a string version"
                    )
        if not isinstance(a.get("versions", []), list):
            raise VulnDBError(f"{at}.versions must be a list")
    return doc


def _parse(data: bytes, where: str) -> dict[str, Any]:
    if len(data) > MAX_RECORD:
        raise VulnDBError(f"{where}: over {MAX_RECORD} bytes, not an OSV record")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VulnDBError(f"{where}: not valid JSON ({exc}); the import is rejected whole") from exc
    return _check_record(doc, where)


def _read_zip(data: bytes, where: str) -> Iterator[tuple[str, bytes]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        bad = zf.testzip()  # every member's CRC: a truncated or altered export is caught here
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise VulnDBError(f"{where} is not a complete zip archive ({exc}); the import is rejected") from exc
    if bad is not None:
        raise VulnDBError(f"{where}: {bad} fails its CRC check; the import is rejected")
    with zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            yield f"{where}:{info.filename}", zf.read(info)


def _records(source: str, progress: Callable[[int, int], None] | None) -> tuple[list[dict[str, Any]], str]:
    """All records of a source, checked, and the sha256 of what was read."""
    h = hashlib.sha256()
    items: list[tuple[str, bytes]] = []
    if source.startswith(("http://", "https://", "file://")):
        try:
            with urllib.request.urlopen(source, timeout=120) as resp:
                data = resp.read()
        except OSError as exc:
            raise VulnDBError(f"cannot download {source}: {exc}") from exc
        h.update(data)
        items = list(_read_zip(data, source)) if data[:2] == b"PK" else [(source, data)]
    else:
        path = Path(source)
        if path.is_dir():
            files = sorted(path.rglob("*.json"))
            if not files:
                raise VulnDBError(f"{path} holds no .json files: nothing to import")
            for f in files:
                data = f.read_bytes()
                h.update(data)
                items.append((str(f), data))
        elif path.is_file():
            data = path.read_bytes()
            h.update(data)
            items = list(_read_zip(data, str(path))) if data[:2] == b"PK" else [(str(path), data)]
        else:
            raise VulnDBError(
                f"{source} does not exist: give an OSV all.zip, a folder of .json files, or a URL"
            )
    out = []
    for n, (where, data) in enumerate(items):
        out.append(_parse(data, where))
        if progress and n % 200 == 0:
            progress(n, len(items))
    if not out:
        raise VulnDBError(f"{source} holds no OSV records")
    return out, h.hexdigest()


class VulnDB:
    """An OSV database file. Reading never writes; importing writes a new file and
    renames it into place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._stamp: tuple[int, int] | None = None

    # ------------------------------------------------------------------ read
    def exists(self) -> bool:
        return self.path.is_file()

    def _db(self) -> sqlite3.Connection:
        try:
            st = self.path.stat()
        except OSError as exc:
            raise VulnDBError(
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
                raise VulnDBError(f"{self.path} is not a Moorage vulnerability database: {exc}") from exc
            self._stamp = stamp
        return self._conn

    def _meta(self, key: str) -> str:
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else ""

    @property
    def version(self) -> str:
        return self._meta("version")

    @property
    def built_at(self) -> float:
        return float(self._meta("built_at") or 0)

    def status(self) -> DBStatus:
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

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ---------------------------------------------------------------- import
    def import_source(
        self, source: str, progress: Callable[[int, int], None] | None = None, now: float | None = None
    ) -> DBStatus:
        """Import one OSV export, all or nothing."""
        name = source if "://" in source else str(Path(source).resolve())
        records, sha = _records(source, progress)
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
