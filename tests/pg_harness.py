"""A private PostgreSQL cluster for tests: ``initdb`` into a temporary folder, run by
``pg_ctl`` as the unprivileged ``postgres`` user (PostgreSQL refuses root), listening
only on a unix socket in that folder. Folders are named ``moorage-pg-*`` and carry the
pid of the run that made them, so a later run stops and removes what an interrupted
one left behind."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PREFIX = "moorage-pg-"


def bin_dir() -> Path:
    """Debian's PostgreSQL programs (/usr/lib/postgresql/N/bin), the newest."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (scripts/bootstrap.sh)")
    return Path(found[-1]).parent


def _user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("no postgres user: install Debian's postgresql package") from None


def _as_postgres(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload, no-any-return]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale() -> None:
    """Stop and remove every cluster folder whose run is gone."""
    for folder in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        owner = folder / "owner.pid"
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            pid = 0
        if pid and _alive(pid):
            continue
        if (folder / "data" / "postmaster.pid").exists():
            _as_postgres(
                [str(bin_dir() / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "-w", "stop"]
            )
        shutil.rmtree(folder, ignore_errors=True)


class Postgres:
    """One running private cluster; :attr:`url` reaches its ``moorage`` database."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.data = folder / "data"
        self.socket_dir = folder / "run"

    def url(self, database: str = "moorage") -> str:
        """A libpq URL for ``database`` over the unix socket."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def psql(self, sql: str, database: str = "moorage") -> str:
        """Run ``sql`` with psql; its output (raises on error)."""
        proc = _as_postgres([str(bin_dir() / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                             "-h", str(self.socket_dir), "-p", str(self.port), "-d", database, "-c", sql])  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"psql: {proc.stderr.strip()}")
        return str(proc.stdout)

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        self.psql(f'CREATE DATABASE "{name}"', database="postgres")
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        _as_postgres([str(bin_dir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(self.folder, ignore_errors=True)


def start(fsync: bool = False) -> Postgres:
    """A new private cluster, running. ``fsync=False`` for tests that never crash the
    host (benchmarks of durable appends pass True)."""
    clean_stale()
    user = _user()
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))
    (folder / "owner.pid").write_text(str(os.getpid()))
    pg = Postgres(folder, 20000 + secrets.randbelow(20000))
    pg.socket_dir.mkdir()
    os.chown(folder, user.pw_uid, user.pw_gid)
    os.chown(pg.socket_dir, user.pw_uid, user.pw_gid)
    os.chmod(folder, 0o755)
    init = _as_postgres([str(bin_dir() / "initdb"), "-D", str(pg.data), "-U", "postgres", "-A", "trust",
                         "-E", "UTF8", "--no-instructions"])  # fmt: skip
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed: {init.stderr.strip()[-2000:]}")
    options = (f"-k {pg.socket_dir} -p {pg.port} -c listen_addresses='' -c max_connections=200"
               f" -c fsync={'on' if fsync else 'off'} -c synchronous_commit={'on' if fsync else 'off'}")  # fmt: skip
    run = _as_postgres([str(bin_dir() / "pg_ctl"), "-D", str(pg.data), "-l", str(folder / "log"), "-o", options,
                        "-w", "-t", "60", "start"])  # fmt: skip
    if run.returncode != 0:
        log = (folder / "log").read_text()[-2000:] if (folder / "log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {run.stderr.strip()} {log}")
    deadline = time.monotonic() + 30
    while True:
        try:
            pg.psql("CREATE DATABASE moorage", database="postgres")
            break
        except RuntimeError:
            if time.monotonic() > deadline:
                pg.stop()
                raise
            time.sleep(0.2)
    return pg


@contextlib.contextmanager
def running(fsync: bool = False) -> Iterator[Postgres]:
    """A private cluster for the block."""
    pg = start(fsync)
    try:
        yield pg
    finally:
        pg.stop()
