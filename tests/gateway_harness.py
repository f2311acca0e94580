"""Shared harness for gateway tests: an in-process gateway, users, CLIs as other uids."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moorage.admission import Admission
from moorage.admission.exceptions import ExceptionStore
from moorage.audit import AuditSink
from moorage.gateway.upstream import Upstream
from moorage.identity import UserDirectory
from moorage.lab import Lab
from tests.gateway_build import build_gateway

DOCKER_CLIS = [p for p in ("/usr/local/bin/docker", "/usr/bin/docker") if Path(p).exists()]
USERS = {
    "users": {
        "alice": {"uid": 52001, "teams": ["payments"], "roles": ["developer"]},
        "bob": {"uid": 52002, "teams": ["search"], "roles": ["developer"]},
        "val": {"uid": 52003, "teams": ["payments"], "roles": ["viewer"]},
        "olga": {"uid": 52004, "teams": ["payments"], "roles": ["operator"]},
        "sam": {"uid": 52005, "teams": ["search"], "roles": ["operator"]},
        "sofia": {"uid": 52006, "teams": ["security"], "roles": ["security-officer"]},
        "sid": {"uid": 52007, "teams": ["security"], "roles": ["security-officer", "developer"]},
    }
}
UIDS = {"alice": 52001, "bob": 52002, "val": 52003, "olga": 52004, "sam": 52005, "sofia": 52006,
        "sid": 52007, "root": 0}  # fmt: skip


class RunningGateway:
    def __init__(
        self,
        upstream: str,
        sock: Path,
        audit: AuditSink | None = None,
        admission: Admission | None = None,
        exceptions: ExceptionStore | None = None,
    ) -> None:
        self.sock = sock
        self.loop = asyncio.new_event_loop()
        self.gateway = build_gateway(
            Upstream(upstream), users=UserDirectory.from_dict(USERS), audit=audit, admission=admission,
            exceptions=exceptions,
        )  # fmt: skip
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.gateway.listen_unix(str(sock)))
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        async def shutdown() -> None:
            await self.gateway.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock)


def gateway_for(lab: Lab, node: int = 1) -> Iterator[RunningGateway]:
    """A gateway in front of a lab node, its socket reachable by every uid."""
    folder = Path(f"/tmp/moorage-{lab.name}-gw")
    folder.mkdir(mode=0o755, exist_ok=True)
    gateway = RunningGateway(lab.docker_host(node), folder / "docker.sock")
    try:
        yield gateway
    finally:
        gateway.stop()
        shutil.rmtree(folder, ignore_errors=True)


def docker(gw: RunningGateway, *args: str, user: str = "root", cli: str = DOCKER_CLIS[0],
           stdin: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    uid = UIDS[user]
    home = Path(f"/tmp/moorage-test-home-{uid}")
    home.mkdir(exist_ok=True)
    os.chown(home, uid, uid)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "DOCKER_HOST": f"unix://{gw.sock}",
           "DOCKER_BUILDKIT": "0"}  # fmt: skip
    cmd = [cli, *args]
    if uid:
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, input=stdin, timeout=120)


def moorage(gw: RunningGateway, *args: str, user: str = "root") -> subprocess.CompletedProcess[str]:
    """The moorage CLI as another uid, talking to the gateway."""
    uid = UIDS[user]
    env = {"PATH": os.environ["PATH"], "HOME": "/tmp", "DOCKER_HOST": f"unix://{gw.sock}", "NO_COLOR": "1"}
    cmd = [sys.executable, "-c", "import sys; from moorage.cli.main import main; sys.exit(main())", *args]
    if uid:
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"{proc.args}: {proc.stderr}"
    return proc.stdout.strip()


def raw(gw: RunningGateway, data: bytes) -> tuple[int, dict[str, Any]]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(gw.sock))
        s.sendall(data)
        out = b""
        while b"\r\n\r\n" not in out or len(out.split(b"\r\n\r\n", 1)[1]) < int(
            next(
                (ln.split(b":")[1] for ln in out.split(b"\r\n") if ln.lower().startswith(b"content-length")),
                b"0",
            )
        ):
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    try:
        doc = json.loads(body) if body else {}
    except ValueError:
        doc = {"message": body.decode(errors="replace")}
    return int(head.split()[1]), doc
