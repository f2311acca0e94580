"""Who owns a built image, kept by the gateway instead of in the image.

A build's owner could be stamped with the build's ``labels`` parameter, but the
classic builder turns those into extra ``LABEL`` steps: step counts change and the
cache is missed. So the gateway leaves the build alone and, once it has succeeded,
records the resulting image ids and the team here; commits are recorded the same way.
Image ownership is this store alone: labels inside an image (loaded, imported or
pulled) are what its author wrote, and claim nothing.

The store is a small JSON file, rewritten whole on each change (builds are rare)
under a lock file, and read again when another gateway worker changed it; or memory
only when no path is given. Losing it makes built images nobody's:
usable by every team, and no team may tag onto their names.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ImageOwners"]

log = logging.getLogger("moorage.gateway")  # the name operators filter on


class ImageOwners:
    """Image id (``sha256:...``) -> the teams whose builds produced it.

    The same build by two teams gives the same id (the builder's cache), so an id
    may have several teams; each may use it. Nobody else may.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._teams: dict[str, list[str]] = {}
        self._stamp: tuple[int, int] | None = None  # (mtime_ns, size) of the file last read
        self._load()

    def _load(self) -> None:
        """Read the file again when another gateway worker rewrote it."""
        if self.path is None:
            return
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            log.error("image owner store %s is unreadable, keeping what is known: %s", self.path, exc)
            return
        self._stamp = stamp
        if isinstance(data, dict):
            self._teams = {str(k): [str(t) for t in v] for k, v in data.items() if isinstance(v, list) and v}

    def teams(self, image_id: str) -> tuple[str, ...]:
        """The teams that built ``image_id`` through the gateway (none if it saw no build)."""
        self._load()
        return tuple(self._teams.get(image_id, ()))

    def record(self, image_id: str, team: str) -> None:
        """Note that ``team`` built ``image_id``."""
        if not image_id.startswith("sha256:"):
            return
        with self._lock, self._file_lock():
            self._load()  # under the lock: what another worker added is kept
            if team in self._teams.get(image_id, ()):
                return
            self._teams.setdefault(image_id, []).append(team)
            self._save()

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Gateway workers (processes) take turns rewriting the file."""
        if self.path is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(self._teams, sort_keys=True))
            os.replace(tmp, self.path)
            st = self.path.stat()
            self._stamp = (st.st_mtime_ns, st.st_size)
        except OSError as exc:
            log.error("could not save the image owner store %s: %s", self.path, exc)
