"""SIGKILL the gateway under load: every answered request has its record, the trail
verifies, and the restarted gateway continues the chain."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from moorage.lab import Lab
from tests.conftest import needs_root, unique_name
from tests.gateway_harness import raw

MOORAGE = [sys.executable, "-m", "moorage.cli.main"]


class _Sock:
    def __init__(self, path: Path) -> None:
        self.sock = path


def start(lab: Lab, data: Path) -> subprocess.Popen[bytes]:
    logfile = data / "up.log"
    seen = logfile.stat().st_size if logfile.exists() else 0  # the banner of this start, not the last
    log = open(logfile, "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen([*MOORAGE, "up", "--upstream", lab.docker_host(1), "--data-dir", str(data),
                             "--context", ""], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 30
    while b"Use it:" not in logfile.read_bytes()[seen:]:
        assert time.monotonic() < deadline and proc.poll() is None, (data / "up.log").read_text()
        time.sleep(0.05)
    return proc


@pytest.fixture
def lab() -> Iterator[Lab]:
    needs_root()
    lab = Lab(unique_name("cr"))
    lab.up(nodes=1, owner_pid=os.getpid())
    try:
        yield lab
    finally:
        lab.down()


def request_id(gw: _Sock, data: bytes) -> str | None:
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(gw.sock))
        s.sendall(data)
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = s.recv(65536)
            if not chunk:
                return None
            out += chunk
    for line in out.split(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"x-moorage-request-id:"):
            return line.split(b":", 1)[1].strip().decode()
    return None


def test_sigkill_under_load_loses_no_answered_record(lab: Lab) -> None:
    data = Path(f"/tmp/moorage-{lab.name}")
    data.mkdir()
    try:
        gw = _Sock(data / "docker.sock")
        proc = start(lab, data)
        answered: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def client(n: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                body = json.dumps({"Name": f"v{n}-{i}"}).encode()
                req = (b"POST /volumes/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
                       + f"Content-Length: {len(body)}\r\n\r\n".encode() + body) if i % 2 else \
                    b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n"  # fmt: skip
                try:
                    rid = request_id(gw, req)
                except OSError:
                    continue
                if rid:
                    with lock:
                        answered.append(rid)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        proc.send_signal(signal.SIGKILL)  # mid-load, no chance to flush anything
        proc.wait(10)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(10)
        assert len(answered) > 50, "the load did not run"

        proc = start(lab, data)  # the chain resumes
        assert raw(gw, b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")[0] == 200  # type: ignore[arg-type]
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)

        verify = subprocess.run([*MOORAGE, "audit", "verify", "--data-dir", str(data), "--json"],
                                capture_output=True, text=True)  # fmt: skip
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert json.loads(verify.stdout)["ok"] is True
        log = subprocess.run([*MOORAGE, "audit", "log", "--json", "--data-dir", str(data)],
                             capture_output=True, text=True, check=True)  # fmt: skip
        recorded = {json.loads(line)["request_id"] for line in log.stdout.splitlines()}
        missing = [rid for rid in answered if rid not in recorded]
        assert missing == [], f"{len(missing)} answered requests have no record"
    finally:
        shutil.rmtree(data, ignore_errors=True)
