"""The journal: read-only requests' records, in an append-only file, before the answer.

A read's record must exist before its answer leaves, and must survive the gateway
being killed. A SQLite transaction per event-loop iteration did that for about
80 µs of CPU a record. The journal does it with one ``write()`` per iteration: the
canonical bodies of every read record of that iteration, one per line, appended to
a segment file. A ``write()`` to a regular file is in the kernel's page cache when
it returns, so it outlives the process (only power loss could take it, as with
SQLite's ``synchronous=NORMAL`` before).

The trail's writer thread chains journaled lines into the store in batches
(:meth:`AuditTrail.apply_journals`), and every reader applies them first, so a
query sees every answered request. Where a segment has been read up to is stored
in the same transaction as the records, so a line is chained exactly once, even
after a crash between the two.

Each writer holds an exclusive ``flock`` on its current segment. A segment nobody
holds is finished (its writer rotated or died): once read to its end it is
deleted. A tail without a newline in a finished segment is a write the dead writer
never completed, so no answer waited on it; it is dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

__all__ = ["Journal", "finished", "read_lines", "segments"]

SEGMENT_MAX = 64 << 20  # bytes before a writer starts a new segment
READ_MAX = 8 << 20  # bytes of one segment read in one transaction


class Journal:
    """The writing end, owned by one event loop (one process)."""

    def __init__(self, store: Path) -> None:
        self.store = store
        # unique per writer: the pid and the start time (a pid may be reused)
        self._stem = f"{store.name}.journal.{os.getpid()}-{time.time_ns()}"
        self._number = 0
        self._fd = -1
        self._size = 0

    def write(self, lines: list[str]) -> None:
        """Append ``lines`` (no newline inside any) in one ``write()``. Raises OSError or
        UnicodeError; then nothing of them counts as recorded."""
        data = ("\n".join(lines) + "\n").encode()
        if self._fd < 0 or self._size >= SEGMENT_MAX:
            self._open_next()
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._size += len(data)

    def _open_next(self) -> None:
        self._number += 1
        path = self.store.with_name(f"{self._stem}.{self._number:06d}")
        # Made under a name readers don't look for, locked, then renamed into view: a
        # segment readers can see is always locked while its writer lives. (Created in
        # place, a reader could find it unlocked and empty between open and flock, take
        # it for finished, delete it, and every line written after would be lost.)
        hidden = self.store.with_name(f"{self.store.name}.journal-new.{self._stem}.{self._number:06d}")
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # the segment is live while this is held
        os.rename(hidden, path)
        if self._fd >= 0:
            os.close(self._fd)  # the previous segment is now finished
        self._fd, self._size = fd, 0

    def close(self) -> None:
        """Close the live segment; it is finished once its lock is released."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def segments(store: Path) -> list[Path]:
    """Every journal segment beside ``store``, oldest writer first."""
    found = []
    for path in store.parent.glob(f"{store.name}.journal.*"):
        stem, _, number = path.name.rpartition(".")
        pid_time = stem.rpartition(".")[2]
        with contextlib.suppress(ValueError):
            found.append((int(pid_time.partition("-")[2]), int(number), path))
    return [s for _, _, s in sorted(found, key=lambda x: (x[0], x[1]))]


def finished(seg: Path) -> bool:
    """True when no writer holds ``seg``: nothing more will be appended to it."""
    try:
        fd = os.open(seg, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops a lock we took
    return True


def read_lines(seg: Path, offset: int) -> tuple[list[str], int]:
    """Complete lines of ``seg`` from ``offset`` (at most READ_MAX bytes of them) and
    the offset after the last one."""
    try:
        with open(seg, "rb") as f:
            f.seek(offset)
            data = f.read(READ_MAX)
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    return data[:end].decode().split("\n"), offset + end + 1
