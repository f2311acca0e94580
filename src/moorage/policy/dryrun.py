"""``moorage policy check -- docker ...``: the real docker CLI builds the request.

The CLI is pointed at a throwaway unix-socket endpoint that answers the few reads it
makes first (ping, version, info), records each state-changing request, decoded with
the gateway's own reader, and refuses it, so nothing is ever created. Policy then
judges exactly the bodies the gateway would have seen.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from socketserver import ThreadingMixIn, UnixStreamServer
from urllib.parse import urlsplit

from moorage.engine_api.canonical import RequestError, read_body, read_target
from moorage.engine_api.models import body_type

__all__ = ["CHECKED_KINDS", "Captured", "DryRunError", "dry_run"]

Captured = tuple[str, str, dict[str, list[str]], object]
"""One captured request: (operation kind, route, query, decoded body)."""


class DryRunError(Exception):
    """The docker command could not be dry-run: not found, too slow, or it made no
    request policy checks. The message says what to do instead."""


def dry_run(command: list[str]) -> list[Captured]:
    """Run the real docker CLI against a throwaway endpoint that records the
    state-changing requests it builds and answers them with an error."""
    captured: list[Captured] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: object) -> None:
            pass

        def address_string(self) -> str:
            return "dry-run"

        def _send(self, status: int, doc: object) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Api-Version", "1.47")
            self.send_header("Ostype", "linux")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def do_HEAD(self) -> None:
            self._send(200, "OK")

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            try:
                op = read_target("GET", self.path).op
            except RequestError:
                self._send(400, {"message": "moorage dry run: a target the engine would not read"})
                return
            if op.kind == "system.ping":
                self._send(200, "OK")
            elif op.kind == "system.version":
                self._send(200, {"ApiVersion": "1.47", "MinAPIVersion": "1.24", "Version": "moorage-dry-run",
                                 "Os": "linux", "Arch": "amd64"})  # fmt: skip
            elif op.kind == "system.info":
                self._send(200, {"Swarm": {"LocalNodeState": "active", "ControlAvailable": True}})
            else:
                self._send(404, {"message": f"moorage dry run: no such object ({url.path})"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            # the gateway's own reading: the same decoder judges in CI and at the gateway
            try:
                t = read_target(self.command, self.path)
                body = read_body(t.op.kind, raw).value if body_type(t.op.kind) else None
            except RequestError as exc:
                self._send(400, {"message": f"moorage dry run: {exc.message}"})
                return
            captured.append((t.op.kind, t.route, t.query, body))
            self._send(
                400, {"message": "moorage policy check: request captured (dry run, nothing was created)"}
            )

        do_DELETE = do_PUT = do_POST

    class Server(ThreadingMixIn, UnixStreamServer):
        daemon_threads = True

    docker = shutil.which(command[0])
    if docker is None:
        raise DryRunError(f"{command[0]}: not found on PATH")
    with tempfile.TemporaryDirectory(prefix="moorage-dry-") as tmp:
        sock = str(Path(tmp) / "docker.sock")
        server = Server(sock, Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_HOST"] = f"unix://{sock}"
        env["DOCKER_CONFIG"] = tmp  # no credential helpers, no contexts
        try:
            proc = subprocess.run([docker, *command[1:]], env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=60)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise DryRunError(f"{' '.join(command)} did not finish in 60 s") from exc
        finally:
            server.shutdown()
            server.server_close()
    wanted = [c for c in captured if c[0] in CHECKED_KINDS]
    if not wanted:
        msg = proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else []
        raise DryRunError(
            f"{' '.join(command)} made no request policy checks"
            + (f" (it said: {msg[0]})" if msg else "")
            + ". Use a command that creates something: run, create, service create, network/volume create"
        )
    return wanted


CHECKED_KINDS = frozenset({"container.create", "service.create", "service.update", "network.create",
                            "volume.create", "image.pull", "exec.create", "image.build", "image.push",
                            "image.tag", "network.connect"})  # fmt: skip
"""The operations a dry run keeps: the ones policy judges a body or query of."""
