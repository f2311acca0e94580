"""A helper process started by a harness: wait for its ports, stop it."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def wait_for_ports(
    proc: subprocess.Popen[bytes], ports: list[int], log: Path, what: str, timeout: float = 30
) -> None:
    """Return once every port on 127.0.0.1 accepts; RuntimeError with the log's end if
    the process dies or the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            for port in ports:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{what} did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
