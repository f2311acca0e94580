"""The audit trail: hash-chained records in SQLite (WAL), signed checkpoints.

State-changing requests' records are batched by one writer thread: every waiting
record goes into one transaction, committed with ``synchronous=FULL``, and only
then are the callers released. So a request's record exists before its answer,
and the cost of the fsync is shared by everything that arrived while the last one
ran. Read-only requests' records go to the journal first (audit/journal.py): one
``write()`` per event-loop iteration before the answers, chained by the writer
thread shortly after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from moorage.audit.chain import GENESIS, canonical, key_id, link, sign_checkpoint
from moorage.audit.interface import AuditError, AuditRecord, AuditSink
from moorage.audit.journal import Journal, finished, read_lines, segments
from moorage.audit.verify import Row, VerifyResult, verify_rows

__all__ = ["AuditTrail", "KeyRing"]

log = logging.getLogger("moorage.audit")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, body TEXT NOT NULL,
                                    prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
Done = Callable[[BaseException | None], None]


def _busy(exc: BaseException) -> bool:
    """The store is locked by another writer: try again elsewhere, nothing is broken."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)


def _on_loop(loop: asyncio.AbstractEventLoop, done: Done) -> Done:
    """``done``, called from the writer thread, run on ``loop``."""

    def settle(exc: BaseException | None) -> None:
        loop.call_soon_threadsafe(done, exc)

    return settle


class KeyRing:
    """Checkpoint keys in a folder: ``checkpoint.key`` signs; every ``*.pub`` verifies,
    so checkpoints signed before a rotation still verify with the key that signed them."""

    def __init__(self, folder: Path, name: str = "moorage-audit") -> None:
        self.folder = folder
        self.name = name

    def signer(self) -> Ed25519PrivateKey:
        path = self.folder / "checkpoint.key"
        if not path.exists():
            return self.rotate()
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditError(f"{path} is not an Ed25519 private key")
        return key

    def rotate(self) -> Ed25519PrivateKey:
        """Make a new signing key; keep the old public keys for verification."""
        self.folder.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pub = key.public_key()
        kid = key_id(self.name, pub).hex()
        (self.folder / f"{kid}.pub").write_bytes(
            pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        tmp = self.folder / "checkpoint.key.tmp"
        tmp.touch(mode=0o600)
        tmp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))  # fmt: skip
        tmp.replace(self.folder / "checkpoint.key")
        return key

    def verifiers(self) -> dict[bytes, tuple[str, Ed25519PublicKey]]:
        keys: dict[bytes, tuple[str, Ed25519PublicKey]] = {}
        for path in sorted(self.folder.glob("*.pub")):
            pub = serialization.load_pem_public_key(path.read_bytes())
            if isinstance(pub, Ed25519PublicKey):
                keys[key_id(self.name, pub)] = (self.name, pub)
        return keys


class AuditTrail(AuditSink):
    def __init__(
        self,
        path: Path,
        keys: KeyRing,
        origin: str = "moorage.audit",
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 10.0,
        batch_max: int = 1024,
        clock: Callable[[], float] = time.time,
        writer: bool = True,
        journal_delay: float = 0.02,
    ) -> None:
        """``writer=False`` opens the store to read (verify, query, export) without a
        writer thread or a signing key, e.g. beside a running gateway.
        ``journal_delay``: how long the event loop lets journaled read records gather
        before it chains them into the store (one transaction for all)."""
        self.path = path
        self.keys = keys
        self.origin = origin
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.batch_max = batch_max
        self.clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        if not writer and not path.exists():
            raise AuditError(f"no audit trail at {path}")
        self._db = self._connect(path)
        self._signer = keys.signer() if writer else None
        row = self._db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        self._seq, self._head = (int(row[0]), str(row[1])) if row else self.anchor()
        cp = self._db.execute("SELECT MAX(size) FROM checkpoints").fetchone()
        self._checkpointed = int(cp[0] or 0)
        self._last_checkpoint_time = clock()
        # (record, done, durable) to append; (None, done, True) asks for a checkpoint;
        # None stops the writer
        self._queue: queue.Queue[tuple[dict[str, Any] | None, Done, bool] | None] = queue.Queue()
        self._synchronous = "FULL"
        # One appender at a time inside this process (the writer thread, or a reader
        # chaining the journal); other processes are kept out by SQLite's write lock.
        self._lock = threading.Lock()
        # read records of the current event-loop iteration: (canonical body, done)
        self._pending: list[tuple[str, Done]] = []
        self._journal = Journal(path) if writer else None
        self.journal_delay = journal_delay
        self._chain_timer: asyncio.TimerHandle | None = None
        self._chain_loop: asyncio.AbstractEventLoop | None = None  # the loop record_soon runs on
        self._loop_thread = 0
        self._loop_db: sqlite3.Connection | None = None  # the event loop's, for chaining the journal
        self._writer: threading.Thread | None = None
        if writer:
            self.apply_journals()  # what an earlier gateway journaled before it stopped
            self._writer = threading.Thread(target=self._write_loop, name="audit-writer", daemon=True)
            self._writer.start()

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

    # ------------------------------------------------------------------ writes
    def record(self, record: AuditRecord) -> None:
        done = threading.Event()
        failure: list[BaseException | None] = [None]

        def finish(exc: BaseException | None) -> None:
            failure[0] = exc
            done.set()

        self._queue.put((record.to_dict(), finish, True))
        done.wait()
        if failure[0] is not None:
            raise AuditError(str(failure[0]))

    def _write_loop(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.checkpoint_seconds)
            except queue.Empty:
                self._commit([], durable=False)  # chains what the loop left in the journal
                self._maybe_checkpoint(force=False)
                continue
            if item is None:
                self._commit([], durable=False)
                self._maybe_checkpoint(force=True)
                return
            batch: list[tuple[dict[str, Any], Done]] = []
            durable = False
            while item is not None and item[0] is not None:
                batch.append((item[0], item[1]))
                durable = durable or item[2]
                if len(batch) >= self.batch_max:
                    item = None
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            if batch:
                self._commit(batch, durable)  # chains the journal first
            if item is not None and item[0] is None:  # a checkpoint request, after the records
                self._commit([], durable=False)
                self._maybe_checkpoint(force=True)
                item[1](None)
            self._maybe_checkpoint(force=False)

    def _commit(self, batch: list[tuple[dict[str, Any], Done]], durable: bool = True) -> None:
        error: BaseException | None = None
        # WAL with synchronous=NORMAL: the commit is in the WAL file without an fsync,
        # which survives the process being killed; only power loss could take it. A
        # batch holding any state-changing record is fsynced (FULL), which also makes
        # every earlier WAL frame durable.
        mode = "FULL" if durable else "NORMAL"
        with self._lock:
            try:
                if mode != self._synchronous:
                    self._db.execute(f"PRAGMA synchronous={mode}")
                    self._synchronous = mode
                self._append(self._db, [canonical(doc) for doc, _ in batch])
            except (sqlite3.Error, OSError, UnicodeError) as exc:
                error = exc
                self.healthy = False
        for _, done in batch:
            done(error)

    def _append(self, db: sqlite3.Connection, bodies: list[str]) -> None:
        """Chain the journal's new lines, then ``bodies``, in one transaction. Call
        with ``_lock`` held."""
        finished_segments: list[Path] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            # The head is read inside the write lock: another process (another gateway
            # worker, the CLI recording an administrative action) may have appended.
            last = db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
            seq, head = (int(last[0]), str(last[1])) if last else self.anchor()
            journaled, finished_segments = self._read_journals(db)
            rows = []
            for body in journaled + bodies:
                seq += 1
                digest = link(head, body)
                rows.append((seq, body, head, digest))
                head = digest
            if rows:
                db.executemany("INSERT INTO records (seq, body, prev, hash) VALUES (?, ?, ?, ?)", rows)
            if seq - self._checkpointed >= self.checkpoint_every and self._signer is not None:
                # another writer (a gateway worker) may have signed one since
                self._checkpointed = int(db.execute("SELECT MAX(size) FROM checkpoints").fetchone()[0] or 0)
                if seq - self._checkpointed >= self.checkpoint_every:
                    self._write_checkpoint(seq, head, db)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            self._checkpointed = min(self._checkpointed, self._seq)
            if not _busy(exc):
                self.healthy = False
            raise
        self._seq, self._head = seq, head
        self.healthy = True
        for path in finished_segments:  # read to the end in a committed transaction
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _read_journals(self, db: sqlite3.Connection) -> tuple[list[str], list[Path]]:
        """Inside the transaction: every journaled line not yet chained (positions are
        moved on in the same transaction), and the segments now fully chained."""
        found = segments(self.path)
        known = {
            k[8:]: int(v) for k, v in db.execute("SELECT key, value FROM meta WHERE key LIKE 'journal:%'")
        }
        lines: list[str] = []
        done: list[Path] = []
        names = set()
        for seg in found:
            names.add(seg.name)
            offset = known.get(seg.name, 0)
            over = finished(seg)  # asked before reading: a line written after is read next time
            new, end = read_lines(seg, offset)
            while new:
                lines += new
                offset = end
                new, end = read_lines(seg, offset)
            if end != known.get(seg.name, 0):
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"journal:{seg.name}", str(end)))
            if over:
                done.append(seg)
        for name in known.keys() - names:  # its file was deleted after an earlier commit
            db.execute("DELETE FROM meta WHERE key = ?", (f"journal:{name}",))
        return lines, done

    def apply_journals(self) -> None:
        """Chain every journaled record into the store now (readers call this first,
        so they see every answered request). Best effort: a busy or read-only store
        leaves them for the gateway's writer."""
        if not segments(self.path):
            return
        with self._lock, contextlib.suppress(sqlite3.Error, OSError, UnicodeError):
            self._append(self._db, [])

    # ------------------------------------------------- read records, in the loop
    def record_soon(
        self, record: AuditRecord, durable: bool, done: Callable[[BaseException | None], None]
    ) -> None:
        """A state-changing record goes to the writer thread (its fsync must not stall
        the event loop). A read-only one goes to the journal at the end of the current
        loop iteration, in one ``write()`` with every other record of that iteration,
        and ``done`` runs when it is there; the event loop chains it soon after."""
        loop = self._chain_loop
        if loop is None or not loop.is_running() or self._loop_thread != threading.get_ident():
            # asked once per loop: get_running_loop() costs a getpid() system call
            loop = self._chain_loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            self._chain_timer = None  # one left on a loop that stopped never fires
        if durable or self._journal is None:
            self._queue.put((record.to_dict(), _on_loop(loop, done), durable))
            return
        try:
            body = canonical(record.to_dict())
        except (TypeError, ValueError) as exc:
            done(exc)
            return
        self._pending.append((body, done))
        if len(self._pending) == 1:
            loop.call_soon(self._flush_pending)

    def _flush_pending(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        error: BaseException | None = None
        try:
            assert self._journal is not None
            self._journal.write([body for body, _ in batch])
        except (OSError, UnicodeError) as exc:
            error = exc
            self.healthy = False
        for _, done in batch:
            done(error)
        if error is None:
            self._chain_later()

    def _chain_later(self) -> None:
        loop = self._chain_loop
        if self._chain_timer is None and loop is not None and loop.is_running():
            self._chain_timer = loop.call_later(self.journal_delay, self._chain_journal)

    def _chain_journal(self) -> None:
        """On the event loop: chain the journal into the store, in one transaction. The
        loop never waits: if the writer thread or another process holds the store, it
        tries again a little later (the records are safe in the journal meanwhile)."""
        self._chain_timer = None
        was_healthy = self.healthy
        if self._lock.acquire(blocking=False):
            try:
                if self._loop_db is None:
                    self._loop_db = self._connect(self.path, synchronous="NORMAL", timeout=0.0)
                self._append(self._loop_db, [])
                return
            except (sqlite3.Error, OSError, UnicodeError) as exc:
                if not _busy(exc) and was_healthy:  # once, not every retry
                    log.error("could not chain the audit journal into %s: %s", self.path, exc)
            finally:
                self._lock.release()
        self._chain_later()

    async def record_async(self, record: AuditRecord, durable: bool = True) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def done(exc: BaseException | None) -> None:
            if fut.done():
                return
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(AuditError(str(exc)))

        self.record_soon(record, durable, done)
        await fut

    def _write_checkpoint(self, size: int, head: str, db: sqlite3.Connection | None = None) -> None:
        if self._signer is None:
            raise AuditError("this trail was opened read-only")
        note = sign_checkpoint(self.origin, size, head, self.keys.name, self._signer)
        sql = "INSERT OR REPLACE INTO checkpoints (size, note) VALUES (?, ?)"
        (db or self._db).execute(sql, (size, note))
        self._checkpointed = size
        self._last_checkpoint_time = self.clock()

    def _maybe_checkpoint(self, force: bool) -> None:
        due = self.clock() - self._last_checkpoint_time >= self.checkpoint_seconds
        if not (due or force):
            return
        with self._lock:  # the loop may be appending; read the head under the lock
            if self._seq <= self._checkpointed:
                return
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._write_checkpoint(self._seq, self._head)
                self._db.execute("COMMIT")
            except sqlite3.Error:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")

    def checkpoint_now(self) -> None:
        """Sign a checkpoint at the current head, after everything queued so far."""
        marker = threading.Event()
        self._queue.put((None, lambda _e: marker.set(), True))
        marker.wait()

    def close(self) -> None:
        self._flush_pending()  # read records of the last loop iteration
        if self._chain_timer is not None:
            self._chain_timer.cancel()
            self._chain_timer = None
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(30)
        if self._journal is not None:
            self._journal.close()
            self.apply_journals()  # the segment is finished now: chain what is left, delete it
        if self._loop_db is not None:
            self._loop_db.close()
        self._db.close()

    def rotate_key(self) -> None:
        self._signer = self.keys.rotate()

    # ------------------------------------------------------------------- reads
    def rows(self, db: sqlite3.Connection | None = None) -> Iterator[Row]:
        self.apply_journals()
        cur = (db or self._db).execute("SELECT seq, body, prev, hash FROM records ORDER BY seq")
        while chunk := cur.fetchmany(4096):
            yield from map(Row._make, chunk)

    def checkpoints(self) -> list[tuple[int, str]]:
        return [(int(s), str(n)) for s, n in self._db.execute("SELECT size, note FROM checkpoints")]

    def verify(self) -> VerifyResult:
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
    """Verify an export or archive file written by :meth:`AuditTrail.export_lines`."""
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
