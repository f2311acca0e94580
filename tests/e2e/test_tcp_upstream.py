"""`moorage up` in front of an engine reached over TCP: image trust inspects and
scans local images through the same engine, not only through a unix socket."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from moorage.lab import Lab
from moorage.lab.images import BUSYBOX_REF
from tests.conftest import busybox_lab, unique_name

MOORAGE = [sys.executable, "-m", "moorage.cli.main"]
POLICY = """\
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: packages}
spec:
  mode: enforce
  packs: [baseline]
  images:
    packages: {forbidden: [pyyaml]}
"""


class TcpToUnix:
    """127.0.0.1:PORT relayed to a unix socket, as an engine published on TCP."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX)
            engine.connect(self.target)
            for a, b in ((client, engine), (engine, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def lab() -> Iterator[Lab]:
    with busybox_lab("tcp") as lab:
        yield lab


def test_image_trust_works_when_the_engine_is_reached_over_tcp(lab: Lab) -> None:
    folder = Path(f"/tmp/moorage-{unique_name('tcpup')}")
    folder.mkdir()
    (folder / "policies").mkdir()
    (folder / "policies" / "packages.yaml").write_text(POLICY)
    relay = TcpToUnix(str(lab.socket_path(1)))
    log = folder / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*MOORAGE, "up", "--upstream", f"tcp://127.0.0.1:{relay.port}", "--data-dir", str(folder / "data"),
             "--listen", str(folder / "docker.sock"), "--policy", str(folder / "policies"), "--context", "",
             "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "Use it:" not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.1)
        env = {**os.environ, "DOCKER_HOST": f"unix://{folder / 'docker.sock'}", "HOME": str(folder)}
        run = subprocess.run(["docker", "run", "--rm", BUSYBOX_REF, "echo", "over tcp"],
                             capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
        assert run.returncode == 0 and run.stdout.strip() == "over tcp", run.stderr
        # the image was scanned through the TCP engine: its report is cached by digest
        assert any((folder / "data" / "image-cache").rglob("*")), "no image report was made"
    finally:
        proc.terminate()
        proc.wait(30)
        relay.close()
        shutil.rmtree(folder, ignore_errors=True)
