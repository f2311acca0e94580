"""The audit seam: one record for every request through the gateway, and its outcome."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["AuditError", "AuditRecord", "AuditSink", "JsonLinesSink", "await_soon"]


class AuditError(Exception):
    """The record could not be written; state-changing requests must then fail closed."""


@dataclass(frozen=True)
class AuditRecord:
    """One request as the trail keeps it: who, what, the decision and why. Never a
    secret value: ``summary`` holds what matters of the body, not the body."""

    time: float
    request_id: str
    user: str
    teams: tuple[str, ...]
    roles: tuple[str, ...]
    auth: str
    source: str
    method: str
    path: str
    kind: str
    object_ref: str | None
    decision: str  # allow | deny
    reason: str
    status: int
    duration_ms: float
    object_id: str | None = None  # the full id the gateway resolved the reference to
    summary: dict[str, Any] | None = None  # what matters of the body; never secret values
    image_digest: str | None = None
    rules: tuple[str, ...] = ()
    mutations: tuple[str, ...] = ()
    policy_version: str = ""
    # how the caller got in, for a login certificate: provider, subject, groups at login, serial
    login: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON data, the form that is chained."""
        # Not dataclasses.asdict: its deep copy cost a quarter of the gateway's time.
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(f.name for f in fields(AuditRecord))


class AuditSink(ABC):
    """Where the gateway writes its records; implementations decide how durably."""

    healthy: bool = True  # False after a failed write, until a write succeeds again

    @abstractmethod
    def record(self, record: AuditRecord) -> None:
        """Write the record durably before returning; raise AuditError if that fails."""

    async def record_async(self, record: AuditRecord, durable: bool = True) -> None:
        """The same, for the gateway's event loop. Sinks that batch override it so a
        durable write does not hold up other connections. ``durable=False`` (read-only
        requests) may skip the fsync but must still survive the process being killed."""
        self.record(record)

    def record_soon(
        self, record: AuditRecord, durable: bool, done: Callable[[BaseException | None], None]
    ) -> None:
        """Write ``record``, then call ``done(None)`` (or ``done(error)``) on the caller's
        event loop. The gateway's fast path sends no byte of an answer before ``done``.
        ``done`` may run before this returns."""
        try:
            self.record(record)
        except AuditError as exc:
            done(exc)
            return
        done(None)


async def await_soon(sink: AuditSink, record: AuditRecord, durable: bool) -> None:
    """``sink.record_soon`` awaited: for sinks that batch off the event loop (their
    ``record_async``); raises AuditError when the write failed."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def done(exc: BaseException | None) -> None:
        if fut.done():
            return
        if exc is None:
            fut.set_result(None)
        else:
            fut.set_exception(AuditError(str(exc)))

    sink.record_soon(record, durable, done)
    await fut


class JsonLinesSink(AuditSink):
    """The built-in sink until the hash-chained trail lands: one JSON object a line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()

    def record(self, record: AuditRecord) -> None:
        line = (json.dumps(record.to_dict(), separators=(",", ":")) + "\n").encode()
        try:
            with self._lock:
                os.write(self._fd, line)
        except OSError as exc:
            self.healthy = False
            raise AuditError(f"cannot write the audit log: {exc.strerror}") from exc
        self.healthy = True
