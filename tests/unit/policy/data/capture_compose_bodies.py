"""Regenerate compose_bodies.json: what docker-compose 1.29 sends for compose-1.29.yml.

Compose inspects what it created before going on, so a dry run is not enough: this
starts a private lab engine (root), relays compose's requests to it, records the
client's bytes, and picks out the create bodies. Run it by hand:

    python tests/unit/policy/data/capture_compose_bodies.py
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from moorage.lab import Lab, build_busybox, load_into

HERE = Path(__file__).parent
KINDS = {"containers/create": "container.create", "volumes/create": "volume.create",
         "networks/create": "network.create"}  # fmt: skip


def _relay(client: socket.socket, upstream: str, log: list[bytes]) -> None:
    up = socket.socket(socket.AF_UNIX)
    up.connect(upstream)

    def pump(a: socket.socket, b: socket.socket, record: bool) -> None:
        try:
            while data := a.recv(65536):
                if record:
                    log.append(data)
                b.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                b.shutdown(socket.SHUT_WR)

    threading.Thread(target=pump, args=(up, client, False), daemon=True).start()
    pump(client, up, True)


def main() -> None:
    log: list[bytes] = []
    lab = Lab(f"cap{os.getpid() % 10000}")
    lab.up(nodes=1, registry=False, owner_pid=os.getpid())
    try:
        load_into(build_busybox(), [lab.client(1)])
        with tempfile.TemporaryDirectory() as tmp:
            sock = f"{tmp}/proxy.sock"
            server = socket.socket(socket.AF_UNIX)
            server.bind(sock)
            server.listen(50)

            def accept() -> None:
                while True:
                    conn, _ = server.accept()
                    threading.Thread(
                        target=_relay, args=(conn, str(lab.socket_path(1)), log), daemon=True
                    ).start()

            threading.Thread(target=accept, daemon=True).start()
            project = Path(tmp) / "proj"
            project.mkdir()
            (project / "docker-compose.yml").write_text((HERE / "compose-1.29.yml").read_text())
            env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}
            for args in (["up", "-d"], ["down", "-v"]):
                subprocess.run(["docker-compose", *args], cwd=project, env=env, check=True, timeout=180)
    finally:
        lab.down()
    raw = b"".join(log)
    out = []
    pattern = rb"POST (?:/v[0-9.]+)?/(containers/create|volumes/create|networks/create)[^ ]* HTTP/1.1\r\n(.*?)\r\n\r\n"
    for m in re.finditer(pattern, raw, re.S):
        length = int(re.search(rb"(?i)content-length: *(\d+)", m.group(2)).group(1))  # type: ignore[union-attr]
        body = json.loads(raw[m.end() : m.end() + length])
        out.append({"cli": "docker-compose 1.29", "command": "docker-compose up -d (compose-1.29.yml)",
                    "kind": KINDS[m.group(1).decode()], "body": body})  # fmt: skip
    (HERE / "compose_bodies.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{len(out)} bodies")


if __name__ == "__main__":
    main()
