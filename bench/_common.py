"""What bench/gateway.py and bench/profile.py share: a lab engine with the busybox
image, `moorage up` in front of it, a cheap keep-alive load generator on unix
sockets, and the CPU time and memory of a process tree read from /proc.

A process tree is a process and all its descendants, found through the parent
pid in /proc/PID/stat: `moorage up` with several workers is a supervisor and its
worker processes, and its cost is the sum over all of them.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from moorage.lab import Lab, build_busybox, load_into

IMAGE = "moorage-lab/busybox"
PING, LIST = "/_ping", "/v1.41/containers/json?all=1"
MOORAGE = [sys.executable, "-m", "moorage.cli.main", "up"]


# ----------------------------------------------------------------- HTTP client
class Client:
    """A minimal keep-alive HTTP/1.1 client on a unix socket (the load must be cheap)."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.buf = b""

    def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {target} HTTP/1.1\r\nHost: d\r\n"
        if body or method in ("POST", "PUT"):
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + body)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        raw_head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = raw_head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
        if headers.get(b"transfer-encoding") == b"chunked":
            out = b""
            while True:
                while b"\r\n" not in self.buf:
                    self.buf += self._recv()
                size_line, _, self.buf = self.buf.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    self.buf += self._recv()
                out, self.buf = out + self.buf[:size], self.buf[size + 2 :]
                if size == 0:
                    return status, out
        length = int(headers.get(b"content-length", b"0"))
        while len(self.buf) < length:
            self.buf += self._recv()
        body_out, self.buf = self.buf[:length], self.buf[length:]
        return status, body_out

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        return data

    def close(self) -> None:
        self.sock.close()


# --------------------------------------------------------------- process trees
def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (by the parent pid in /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue  # ended meanwhile
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of every process in ``pid``'s tree (all their threads), in seconds."""
    ticks = 0
    for p in tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            f = _stat(p)
            ticks += int(f[11]) + int(f[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """VmRSS summed over ``pid``'s tree, in MiB."""
    kib = 0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kib += int(line.split()[1])
    return kib / 1024


# ------------------------------------------------------------------------ load
@dataclass
class Load:
    """What one load phase did: answers in the window, failures, and the CPU seconds
    each watched process tree spent in the same window."""

    seconds: float
    requests: int = 0  # answered inside the window (any status)
    errors: int = 0  # socket errors (the connection is reopened, as wrk does)
    bad: int = 0  # answers other than 200
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def cpu_us(self, name: str) -> float:
        """CPU per answered request of the tree watched as ``name``, in µs."""
        return self.cpu[name] / max(1, self.requests) * 1e6


def _load_worker(path: str, ops: list[str], first: int, conns: int, seconds: float, start: float,
                 q: mp.Queue) -> None:  # type: ignore[type-arg]  # fmt: skip
    """``conns`` threads, each a keep-alive connection issuing requests back to back
    from ``start`` to ``start + seconds``, cycling through ``ops`` (thread k starts at
    ``ops[(first + k) % len(ops)]``); reports (answers, socket errors, non-200)."""
    counts = [0, 0, 0]
    lock = threading.Lock()

    def loop(k: int) -> None:
        done = errors = bad = 0
        i = first + k
        c = Client(path)
        while time.time() < start:
            time.sleep(0.001)
        end = start + seconds
        while time.time() < end:
            try:
                status, _ = c.request("GET", ops[i % len(ops)])
                done += 1
                bad += status != 200
            except OSError:
                errors += 1
                c.close()
                c = Client(path)
            i += 1
        c.close()
        with lock:
            counts[0] += done
            counts[1] += errors
            counts[2] += bad

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(conns)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        q.put(tuple(counts))


def load(
    path: str,
    ops: list[str],
    clients: int = 32,
    procs: int = 4,
    seconds: float = 3.0,
    watch: dict[str, int] | None = None,
    on_start: Callable[[], None] | None = None,
    sample: Callable[[float], None] | None = None,
    every: float = 10.0,
) -> Load:
    """``clients`` keep-alive connections spread over ``procs`` client processes for
    ``seconds``. ``watch`` names process trees (root pids) whose CPU time is read at
    the window's start and end; ``on_start`` is called as the window opens (after
    every connection is made), ``sample(elapsed)`` at its start, every ``every``
    seconds, and at its end."""
    procs = max(1, min(procs, clients))
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    start = time.time() + 0.5 + clients * 0.005
    shares = [clients // procs + (i < clients % procs) for i in range(procs)]
    ps = [mp.Process(target=_load_worker, args=(path, ops, sum(shares[:i]), n, seconds, start, q))
          for i, n in enumerate(shares)]  # fmt: skip
    for p in ps:
        p.start()
    out = Load(seconds)
    time.sleep(max(0.0, start - time.time()))
    before = {name: cpu_seconds(pid) for name, pid in (watch or {}).items()}
    if on_start is not None:
        on_start()
    end, next_sample = start + seconds, start
    while (now := time.time()) < end:
        if sample is not None and now >= next_sample:
            sample(now - start)
            next_sample += every
        time.sleep(max(0.0, min(end, next_sample if sample is not None else end) - time.time()))
    out.cpu = {name: cpu_seconds(pid) - before[name] for name, pid in (watch or {}).items()}
    if sample is not None:
        sample(time.time() - start)
    for _ in ps:
        done, errors, bad = q.get(timeout=seconds + 60)
        out.requests += done
        out.errors += errors
        out.bad += bad
    for p in ps:
        p.join()
    if out.errors or out.bad:
        print(f"  {path} {','.join(sorted(set(ops)))}: {out.errors} socket errors (reconnected), "
              f"{out.bad} answers other than 200", file=sys.stderr)  # fmt: skip
    return out


# ------------------------------------------------------------------ the set-up
@contextlib.contextmanager
def lab_engine(prefix: str) -> Iterator[tuple[Lab, str, Path]]:
    """A private one-node lab engine with IMAGE loaded and 10 stopped containers (a
    realistic list), and a scratch folder. Yields (lab, engine socket, folder)."""
    lab = Lab(f"{prefix}{os.getpid() % 10000}")
    work = Path(tempfile.mkdtemp(prefix=f"moorage-{prefix}-"))
    try:
        lab.up(nodes=1, owner_pid=os.getpid())
        load_into(build_busybox(), [lab.client(1)])
        for _ in range(10):
            lab.client(1).call("POST", "/containers/create", {"Image": IMAGE, "Cmd": ["true"]})
        yield lab, str(lab.socket_path(1)), work
    finally:
        lab.down()
        shutil.rmtree(work, ignore_errors=True)


def engine_pid(lab: Lab) -> int | None:
    """dockerd's pid in node 1 of ``lab``."""
    with contextlib.suppress(OSError, ValueError):
        return int((lab.node_dir(1) / "docker.pid").read_text().strip())
    return None


@cache
def moorage_up_options() -> str:
    """`moorage up --help` of the code this bench runs."""
    return subprocess.run([*MOORAGE, "--help"], capture_output=True, text=True, check=False).stdout


def supports_workers() -> bool:
    return "--workers" in moorage_up_options()


@dataclass
class Moorage:
    """A running `moorage up`: its process (the root of its tree), socket and workers."""

    proc: subprocess.Popen[bytes]
    sock: str
    workers: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_moorage(engine: str, work: Path, name: str = "moorage", workers: int | None = None) -> Moorage:
    """`moorage up` in front of ``engine`` with its default packs (baseline enforced,
    restricted recorded) and the durable audit trail; ``--workers N`` when given and
    this `moorage up` has that option. Returns once it printed its banner (every
    worker serves)."""
    sock = work / f"{name}.sock"
    log = work / f"{name}.log"
    cmd = [*MOORAGE, "--upstream", f"unix://{engine}", "--data-dir", str(work / f"{name}-data"),
           "--listen", str(sock), "--context", ""]  # fmt: skip
    if workers is not None and supports_workers():
        cmd += ["--workers", str(workers)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while "Use it:" not in (text := log.read_text(errors="replace")):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"moorage up did not start:\n{text}")
        time.sleep(0.1)
    m = re.search(r"^\s*workers\s+(\d+)", text, re.M)
    return Moorage(proc, str(sock), int(m.group(1)) if m else 1, log)


def wait_for(path: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear")
        time.sleep(0.05)
