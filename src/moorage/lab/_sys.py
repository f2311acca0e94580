"""Linux plumbing for the lab: namespaces, processes and mounts.

Everything here works from what is on the machine (``/proc``, ``/run/netns``),
not from what the lab remembers, so that a lab left behind by a killed run can
still be found and removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
MNT_DETACH = 2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class SysError(Exception):
    """A system command or call failed."""


def run(args: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; raise SysError with its stderr on failure."""
    proc = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise SysError(f"`{' '.join(args)}` failed (exit {proc.returncode}): {detail}")
    return proc


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace open at ``fd``."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise SysError(f"setns failed: {os.strerror(err)}")


def netns_list() -> list[str]:
    """Names of the named network namespaces (``ip netns``)."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def netns_inode(name: str) -> int | None:
    """The inode of a named namespace (processes inside it link to the same one)."""
    try:
        return os.stat(NETNS_DIR / name).st_ino
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def read_pid(path: Path) -> int | None:
    """The pid written in ``path``, or None when there is none."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _processes() -> dict[int, tuple[int, str, int | None]]:
    """pid -> (ppid, cmdline, netns inode) for every process we can see."""
    table: dict[int, tuple[int, str, int | None]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        try:
            ino: int | None = os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            ino = None
        table[pid] = (ppid, cmd, ino)
    return table


def find_processes(markers: Iterable[str], netns_inodes: Iterable[int]) -> set[int]:
    """Processes whose command line names a marker or that live in one of the
    namespaces, together with all their descendants (container processes run in
    namespaces of their own but descend from a containerd shim we can find)."""
    marks = [m for m in markers if m]
    inodes = set(netns_inodes)
    table = _processes()
    me = os.getpid()
    roots = {
        pid
        for pid, (_, cmd, ino) in table.items()
        if pid != me and ((ino is not None and ino in inodes) or any(m in cmd for m in marks))
    }
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid in found or pid == me:
            continue
        found.add(pid)
        stack.extend(children.get(pid, []))
    return found


def terminate(pids: Iterable[int], grace: float) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL what is left."""
    pids = [p for p in pids if pid_alive(p)]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    kill(pids)


def kill(pids: Iterable[int]) -> None:
    """SIGKILL every live pid of ``pids`` and wait up to 5 s for them to go."""
    pids = [p for p in pids if pid_alive(p)]
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def mounts_under(prefix: Path) -> list[str]:
    """Mount points at or below ``prefix``, deepest first."""
    root = str(prefix).rstrip("/")
    points: list[str] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return points
    for line in lines:
        fields = line.split()
        if len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ")
        if point == root or point.startswith(root + "/"):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def unmount_all(prefix: Path) -> None:
    """Detach every mount below ``prefix``; repeat while something is still mounted."""
    for _ in range(5):
        points = mounts_under(prefix)
        if not points:
            return
        for point in points:
            _libc.umount2(point.encode(), MNT_DETACH)
    left = mounts_under(prefix)
    if left:
        raise SysError(f"could not unmount {len(left)} mount(s) below {prefix}, e.g. {left[0]}")


def remove_tree(path: Path) -> None:
    """Unmount everything below ``path``, then delete it."""
    if path.exists():
        unmount_all(path)
        shutil.rmtree(path, ignore_errors=True)
        if path.exists():
            # chattr'd or busy files: try once more after a short pause.
            time.sleep(0.5)
            shutil.rmtree(path)
