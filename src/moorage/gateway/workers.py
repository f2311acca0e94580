"""Several gateway processes ("workers") behind one listener.

One Python process uses one core. ``moorage up --workers N`` runs N gateway
processes that share the listening sockets: the unix socket is bound once by the
supervisor and inherited by every worker (each accepts from the same queue), and
the TLS port is bound by each worker with ``SO_REUSEPORT`` (the kernel spreads
connections over them).

What must hold across workers is kept where every worker sees it:
- the audit trail is one SQLite chain; each worker journals its reads and chains
  them under SQLite's write lock (audit/journal.py);
- decisions that count live state (quotas) take a per-key lock in the store as well
  as the in-process lock, so two workers (or two gateways on one PostgreSQL store)
  can't both admit the last unit;
- image ownership, exceptions, certificates and attestations are files or SQLite
  stores read again when another process changed them;
- the reconciler and the identity sync run in one worker of one gateway: whichever
  holds the store's lease (:func:`lead`); another takes over when it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from moorage.store import Store

__all__ = ["KeyLocks", "Supervisor", "bind_unix", "default_workers", "lead", "reserve_port"]

log = logging.getLogger("moorage.gateway")


class KeyLocks:
    """A lock per key, held across the event loop's tasks and across processes."""

    def __init__(self, store: Store | None) -> None:
        """``store`` holds the locks every worker and gateway sees (a lock file under the
        SQLite store's folder, an advisory lock in PostgreSQL); None: this process is
        the only gateway."""
        self.store = store
        self._local: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the ``async with`` block: first among this process's
        tasks, then (with a store) across processes, polled so the loop never blocks."""
        async with self._local.setdefault(key, asyncio.Lock()):
            if self.store is None:
                yield
                return
            delay = 0.0005
            while (lease := self.store.try_lock(key)) is None:  # never block the event loop
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.01)
            try:
                yield
            finally:
                lease.release()


async def lead(store: Store, name: str, run: Callable[[], Awaitable[None]], poll: float = 1.0) -> None:
    """Run ``run()`` while this process holds the store's lease ``name``, so one
    gateway (and one worker) of all that share the store runs it. The others poll every
    ``poll`` seconds; when the leader dies its lease ends with it (its lock file is
    closed, its PostgreSQL session ends), and another takes over at its next poll."""
    while True:
        lease = await asyncio.to_thread(store.try_lease, name)
        if lease is None:
            await asyncio.sleep(poll)
            continue
        log.info("this gateway leads %s", name)
        task = asyncio.ensure_future(run())
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=poll)
                if not task.done() and not await asyncio.to_thread(lease.held):
                    log.warning("lost the %s lease: another gateway leads it now", name)
                    break
        finally:
            task.cancel()
            lease.release()
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("%s stopped: %s", name, task.exception())
            await asyncio.sleep(poll)


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def bind_unix(path: str, mode: int = 0o666) -> socket.socket:
    """The unix listener every worker accepts from."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, mode)
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """Hold ``host:port`` (a free one for 0) with SO_REUSEPORT and without listening,
    so each worker can bind its own listener there and nobody else can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock, int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In a worker, before exec: be killed when the supervisor dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Supervisor:
    """Starts the workers, restarts one that dies, and passes signals on."""

    def __init__(self, argv: list[str], pass_fds: tuple[int, ...]) -> None:
        """``argv``: a worker's command line without ``--worker-index``/``--worker-ready-fd``."""
        self.argv = argv
        self.pass_fds = pass_fds
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def start(self, index: int) -> str:
        """Start worker ``index`` and wait until it serves. Returns what it reported
        (worker 0: the banner). Raises SystemExit with its code if it failed."""
        r, w = os.pipe()
        try:
            proc = subprocess.Popen(
                [*self.argv, "--worker-index", str(index), "--worker-ready-fd", str(w)],
                pass_fds=(*self.pass_fds, w), preexec_fn=_die_with_parent,
            )  # fmt: skip
        finally:
            os.close(w)
        with os.fdopen(r, "rb") as ready:
            report = ready.read().decode(errors="replace")  # until the worker closes its end
        if not report:
            code = proc.wait()
            raise SystemExit(code or 1)
        self.procs[index] = proc
        return report

    def run(self) -> int:
        """Watch the workers until SIGTERM or SIGINT; then stop them all."""

        def stop(signum: int, _frame: object) -> None:
            self.stopping = True
            for proc in self.procs.values():
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)

        def forward(signum: int, _frame: object) -> None:
            for proc in self.procs.values():
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, forward)
        while True:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                return 0 if self.stopping else 1
            except InterruptedError:
                continue
            index = next((i for i, p in self.procs.items() if p.pid == pid), None)
            if index is None:
                continue
            self.procs[index].returncode = os.waitstatus_to_exitcode(status)
            if self.stopping:
                del self.procs[index]
                if not self.procs:
                    return 0
                continue
            log.warning("gateway worker %d (pid %d) ended (%s); starting it again", index, pid,
                        self.procs[index].returncode)  # fmt: skip
            time.sleep(0.5)
            try:
                self.start(index)
            except SystemExit:
                log.error("gateway worker %d could not start again", index)
