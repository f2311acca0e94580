"""One audit chain shared by every gateway, in PostgreSQL (the store's ``audit``
schema).

Each gateway's writer thread takes every record waiting, then in one transaction
locks the coordinator row (``head``, one row: the last sequence number and hash),
links the batch onto it, inserts it and moves the head on. Gateways therefore take
turns batch by batch, as Tessera sequences whole batches through one coordinator
row; a request's record is committed before its answer (read-only requests' batches
commit without waiting for the WAL flush: they survive the gateway being killed,
which is what the embedded trail promises for them too).

A checkpoint is signed by whichever gateway's batch crosses a multiple of
``checkpoint_every`` (or after ``checkpoint_seconds`` without one), with the
checkpoint key every gateway shares; the ``signer`` column names the key.
Reading, verifying, querying, exporting and archiving are in :mod:`.shared_reads`.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from moorage.audit.chain import canonical, key_id, link, sign_checkpoint
from moorage.audit.interface import AuditError, AuditRecord, AuditSink, await_soon
from moorage.audit.keys import KeyRing
from moorage.audit.shared_reads import SharedReads
from moorage.store.postgres import PostgresStore

__all__ = ["SharedTrail"]

log = logging.getLogger("moorage.audit")

Done = Callable[[BaseException | None], None]


class SharedTrail(SharedReads, AuditSink):
    """The audit chain every gateway on a PostgreSQL store appends to."""

    def __init__(
        self,
        store: PostgresStore,
        keys: KeyRing,
        origin: str = "moorage.audit",
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 10.0,
        batch_max: int = 2048,
        writer: bool = True,
    ) -> None:
        """``writer=False`` opens the chain to read (verify, log, export) only."""
        super().__init__(store, keys)
        self.origin = origin
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.batch_max = batch_max
        self._signer = keys.signer() if writer else None
        self._signer_name = ""
        if self._signer is not None:
            self._signer_name = f"{keys.name}+{key_id(keys.name, self._signer.public_key()).hex()}"
        self._queue: queue.Queue[tuple[str | None, Done, bool] | None] = queue.Queue()
        self._last_checkpoint = time.monotonic()
        self._writer: threading.Thread | None = None
        self._wconn: psycopg.Connection[Any] | None = None
        if writer:
            self._writer = threading.Thread(target=self._write_loop, name="audit-writer", daemon=True)
            self._writer.start()

    # ------------------------------------------------------------------ writes
    def record(self, record: AuditRecord) -> None:
        """Append one record; return once it is committed (durably)."""
        done = threading.Event()
        failure: list[BaseException | None] = [None]

        def finish(exc: BaseException | None) -> None:
            failure[0] = exc
            done.set()

        self._put(record, finish, True)
        done.wait()
        if failure[0] is not None:
            raise AuditError(str(failure[0]))

    def record_soon(self, record: AuditRecord, durable: bool, done: Done) -> None:
        """Queue ``record`` for the writer; ``done`` runs on the caller's loop once the
        batch holding it is committed."""
        loop = asyncio.get_running_loop()

        def settle(exc: BaseException | None) -> None:
            loop.call_soon_threadsafe(done, exc)

        self._put(record, settle, durable)

    async def record_async(self, record: AuditRecord, durable: bool = True) -> None:
        """:meth:`record_soon`, awaited; raises AuditError when the write failed."""
        await await_soon(self, record, durable)

    def _put(self, record: AuditRecord, done: Done, durable: bool) -> None:
        if self._writer is None:
            raise AuditError("this trail was opened read-only")
        try:
            body = canonical(record.to_dict())
        except (TypeError, ValueError) as exc:
            done(exc)
            return
        self._queue.put((body, done, durable))

    def _write_loop(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                self._checkpoint_if_due(force=False)
                continue
            stop = item is None
            batch: list[tuple[str, Done]] = []
            durable = False
            flush: list[Done] = []
            while item is not None:
                body, done, is_durable = item
                if body is None:
                    flush.append(done)  # a checkpoint asked for, after what came before
                else:
                    batch.append((body, done))
                    durable = durable or is_durable
                if len(batch) >= self.batch_max:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
            if batch:
                self._commit(batch, durable)
            if flush or stop:
                self._checkpoint_if_due(force=True)
                for done in flush:
                    done(None)
            else:
                self._checkpoint_if_due(force=False)
            if stop:
                return

    def _connection(self) -> psycopg.Connection[Any]:
        if self._wconn is None or self._wconn.closed or self._wconn.broken:
            self._wconn = self.store.connect("audit")
        return self._wconn

    def _commit(self, batch: list[tuple[str, Done]], durable: bool) -> None:
        error: BaseException | None = None
        for attempt in range(3):
            try:
                self._append([body for body, _ in batch], durable)
                self.healthy = True
                error = None
                break
            except psycopg.Error as exc:
                error = exc
                self.healthy = False
                if self._wconn is not None and (self._wconn.broken or self._wconn.closed):
                    self._wconn = None  # reconnect and try again: nothing was committed
                time.sleep(0.05 * (attempt + 1))
        if error is not None:
            log.error("could not append %d audit record(s) to the shared chain: %s", len(batch), error)
        for _, done in batch:
            done(error)

    def _append(self, bodies: list[str], durable: bool) -> None:
        conn = self._connection()
        with conn.transaction():
            if not durable:
                conn.execute("SET LOCAL synchronous_commit = off")
            seq, head = self._lock_head(conn)
            rows = []
            for body in bodies:
                seq += 1
                digest = link(head, body)
                rows.append((seq, body, head, digest))
                head = digest
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO records (seq, body, prev, hash) VALUES (%s, %s, %s, %s)", rows)
            conn.execute("UPDATE head SET seq = %s, hash = %s WHERE id = 1", (seq, head))
            first = rows[0][0]
            if self._signer is not None and (seq // self.checkpoint_every) > (
                (first - 1) // self.checkpoint_every
            ):
                self._sign(conn, seq, head)

    def _lock_head(self, conn: psycopg.Connection[Any]) -> tuple[int, str]:
        """The coordinator row, locked until the transaction ends (created at the
        anchor the first time)."""
        row = conn.execute("SELECT seq, hash FROM head WHERE id = 1 FOR UPDATE").fetchone()
        if row is None:
            anchor = self.anchor(conn)
            conn.execute("INSERT INTO head (id, seq, hash) VALUES (1, %s, %s) ON CONFLICT DO NOTHING", anchor)
            row = conn.execute("SELECT seq, hash FROM head WHERE id = 1 FOR UPDATE").fetchone()
        assert row is not None
        return int(row[0]), str(row[1])

    def _sign(self, conn: psycopg.Connection[Any], size: int, head: str) -> None:
        assert self._signer is not None
        note = sign_checkpoint(self.origin, size, head, self.keys.name, self._signer)
        conn.execute(
            "INSERT INTO checkpoints (size, note, signer) VALUES (%s, %s, %s) ON CONFLICT (size) DO NOTHING",
            (size, note, self._signer_name),
        )
        self._last_checkpoint = time.monotonic()

    def _checkpoint_if_due(self, force: bool) -> None:
        if self._signer is None or not (
            force or time.monotonic() - self._last_checkpoint >= self.checkpoint_seconds
        ):
            return
        try:
            conn = self._connection()
            with conn.transaction():
                seq, head = self._lock_head(conn)
                signed = conn.execute("SELECT COALESCE(MAX(size), 0) FROM checkpoints").fetchone()
                if seq > int(signed[0] if signed else 0) and seq > 0:
                    self._sign(conn, seq, head)
                else:
                    self._last_checkpoint = time.monotonic()
        except psycopg.Error as exc:
            log.warning("could not sign an audit checkpoint: %s", exc)
            self._wconn = None

    def checkpoint_now(self) -> None:
        """Sign a checkpoint at the head, after everything queued so far."""
        marker = threading.Event()
        self._queue.put((None, lambda _e: marker.set(), True))
        marker.wait()

    def rotate_key(self) -> None:
        """Sign further checkpoints with a new key (every gateway must get it too)."""
        self._signer = self.keys.rotate()
        self._signer_name = f"{self.keys.name}+{key_id(self.keys.name, self._signer.public_key()).hex()}"

    def close(self) -> None:
        """Commit what is queued, sign a final checkpoint, close the connections."""
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(30)
            self._writer = None
        if self._wconn is not None:
            self._wconn.close()
        super().close()
