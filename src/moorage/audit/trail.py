"""The audit trail: hash-chained records in SQLite (WAL), signed checkpoints.

State-changing requests' records are batched by one writer thread: every waiting
record goes into one transaction, committed with ``synchronous=FULL``, and only
then are the callers released. So a request's record exists before its answer,
and the cost of the fsync is shared by everything that arrived while the last one
ran. Read-only requests' records go to the journal first (audit/journal.py): one
``write()`` per event-loop iteration before the answers, chained into the store by
the event loop shortly after (never waiting for the store), or by the writer thread
before its next commit, whichever comes first.

Reading, export and archiving are in audit/database.py, the class this one extends;
the checkpoint keys are in audit/keys.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moorage.audit.chain import canonical, link, sign_checkpoint
from moorage.audit.database import TrailDatabase, verify_file
from moorage.audit.interface import AuditError, AuditRecord, AuditSink, await_soon
from moorage.audit.journal import Journal, finished, read_lines, segments
from moorage.audit.keys import KeyRing

# KeyRing and verify_file are re-exported: callers have always imported them from here.
__all__ = ["AuditTrail", "KeyRing", "verify_file"]

log = logging.getLogger("moorage.audit")

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


class AuditTrail(TrailDatabase, AuditSink):
    """The hash-chained audit trail of one gateway: appends, checkpoints, the journal."""

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
        self.origin = origin
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.batch_max = batch_max
        self.clock = clock
        super().__init__(path, keys, writer)
        self._signer = keys.signer() if writer else None
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

    # ------------------------------------------------------------------ writes
    def record(self, record: AuditRecord) -> None:
        """Append one record through the writer thread; return once it is fsynced."""
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
        """:meth:`record_soon`, awaited; raises AuditError when the write failed."""
        await await_soon(self, record, durable)

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
        """Write what is pending, stop the writer, chain the last journal segment."""
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
        """Sign further checkpoints with a new key (the old one still verifies)."""
        self._signer = self.keys.rotate()
