"""The adversarial suite: every attempt escapes on a bare engine, and Moorage refuses it.

One private dockerd (Debian's 20.10, a one-node Swarm) with busybox, and in front of
it ``moorage up`` itself, run as a process with its defaults (baseline enforced,
restricted in audit) and the harness's users file: alice is a developer in
``payments``, root (uid 0) is an admin.

For each attempt of ``escapes_corpus.ATTEMPTS`` the test

1. sends its exact bytes straight to the engine and asserts the judge finds the
   dangerous state there (the escape is real, not a typo in the corpus);
2. sends the same bytes through Moorage as alice and as root, and asserts that
   Moorage answered with a 4xx in Docker's error shape and that the engine holds
   no object in the dangerous state. The engine is the judge, never Moorage's answer.

Tenancy attempts (objects nobody owns, another team's images) are a developer's:
an admin may use any object, so they are tried as alice only.

Each ordinary workload of ``escapes_corpus.WORKLOADS`` runs with the real docker CLI
(or an SDK's raw request) straight to the engine as root, then through Moorage as
alice and as root: it must pass, and leave the same state on the engine (Moorage's
own ``io.moorage.*`` bookkeeping aside). That also shows the refusals above are
decisions about the request, not a principal refused wholesale.

Objects made by attempts and workloads are named ``mx`` + digits and swept after
every run; the fixtures' objects are named ``mx-...`` and kept for the module.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from moorage.engine import EngineClient, EngineError
from moorage.lab import Lab, build_busybox, load_into
from moorage.lab.images import BUSYBOX_REF
from tests.conftest import needs_root, unique_name
from tests.gateway_harness import DOCKER_CLIS, UIDS, USERS
from tests.integration.escapes_corpus import (
    ATTEMPTS,
    WORKLOADS,
    Attempt,
    Response,
    SetupRefused,
    Workload,
    fill,
    http,
    tar,
)

SWEPT = re.compile(r"^/?(mx\d|mxown/)")  # what attempts and workloads make; fixtures are mx-...


# ------------------------------------------------------------------ the wire
def _read_responses(sock: socket.socket, count: int) -> list[Response]:
    """Read up to ``count`` HTTP/1.1 responses; stop early when the peer closes."""
    buf = b""
    out: list[Response] = []

    def more() -> bool:
        nonlocal buf
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return False
        buf += chunk
        return bool(chunk)

    while len(out) < count:
        while b"\r\n\r\n" not in buf:
            if not more():
                return out
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower().decode(errors="replace")] = v.strip().decode(errors="replace")
        if 100 <= status < 200 and status != 101:
            continue
        body = b""
        if status in (101, 204, 304):
            pass
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                while b"\r\n" not in buf:
                    if not more():
                        out.append(Response(status, headers, body + buf))
                        return out
                size_line, _, buf = buf.partition(b"\r\n")
                size = int(size_line.split(b";")[0] or b"0", 16)
                while len(buf) < size + 2:
                    if not more():
                        break
                body, buf = body + buf[:size], buf[size + 2 :]
                if size == 0:
                    break
        elif "content-length" in headers:
            length = int(headers["content-length"])
            while len(buf) < length and more():
                pass
            body, buf = buf[:length], buf[length:]
        else:
            while more():
                pass
            body, buf = buf, b""
        out.append(Response(status, headers, body))
        if status == 101:
            return out
    return out


def exchange(path: str, data: bytes, uid: int, responses: int = 1, timeout: float = 120) -> list[Response]:
    """Send ``data`` in one write on a fresh connection made as ``uid``.

    The gateway reads SO_PEERCRED, which holds the effective uid at connect time,
    so switching the effective uid around ``connect`` is enough (this process
    runs no other threads that could notice)."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(timeout)
    if uid:
        os.seteuid(uid)
    try:
        sock.connect(path)
    finally:
        if uid:
            os.seteuid(0)
    with sock:
        with contextlib.suppress(
            OSError
        ):  # the peer may refuse early and close; its answer is still readable
            sock.sendall(data)
        try:
            return _read_responses(sock, responses)
        except OSError:
            return []


# ------------------------------------------------------------------ the lab
@dataclass
class Escapes:
    lab: Lab
    engine: EngineClient
    bare: str  # the engine's socket
    gateway: str  # Moorage's socket
    folder: Path
    vars: dict[str, str] = field(default_factory=dict)


@dataclass
class Channel:
    """One run of an attempt (an ``escapes_corpus.Env``)."""

    engine: EngineClient
    vars: dict[str, str]
    phase: str
    path: str
    uid: int

    def send(self, data: bytes, responses: int = 1) -> list[Response]:
        return exchange(self.path, data, self.uid, responses)


def _start_moorage_up(lab: Lab, folder: Path, serving: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    """``moorage up`` as its own process, with its default policy; ``serving`` says
    how many workers and whether the fast path takes plain reads."""
    users = folder / "users.yaml"
    users.write_text(yaml.safe_dump(USERS))
    sock = str(folder / "docker.sock")
    log = open(folder / "up.log", "wb")  # noqa: SIM115 - handed to the child
    cmd = [sys.executable, "-c", "import sys; from moorage.cli.main import main; sys.exit(main())", "up",
           "--upstream", lab.docker_host(1), "--listen", sock, "--data-dir", str(folder / "data"),
           "--users", str(users), "--context", "",
           # one reading of every request is judged here; cluster placement (which adds
           # Moorage's constraints to every service) has its own suite, test_cluster_trust
           "--cluster", "off", *serving]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"moorage up exited: {(folder / 'up.log').read_text()[-3000:]}")
        got = exchange(sock, http("GET", "/_ping", None, {}), 0, timeout=5) if os.path.exists(sock) else []
        if got and got[0].status == 200:
            return proc, sock
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"moorage up did not answer: {(folder / 'up.log').read_text()[-3000:]}")


def _build_on(path: str, uid: int, ref: str, dockerfile: str) -> None:
    body = tar({"Dockerfile": dockerfile.encode()})
    got = exchange(path, http("POST", f"/build?t={ref}&rm=1", body, {}, ctype="application/x-tar"), uid)
    assert got and got[0].status == 200 and b"errorDetail" not in got[0].body, (ref, got)


def _fixtures(ex: Escapes) -> None:
    """Objects an operator made straight on the engine (nobody owns them), and one of bob's."""
    e = ex.engine
    e.call("POST", "/containers/create?name=mx-ops-agent",
           {"Image": BUSYBOX_REF, "Cmd": ["sleep", "3600"],
            "HostConfig": {"Binds": ["/:/host:ro"], "NetworkMode": "host", "PidMode": "host",
                           "IpcMode": "shareable"}})  # fmt: skip
    e.call("POST", "/containers/mx-ops-agent/start")
    e.call("POST", "/volumes/create", {"Name": "mx-ops-data"})
    e.call("POST", "/volumes/create",
           {"Name": "mx-ops-root", "DriverOpts": {"type": "none", "o": "bind", "device": "/"}})  # fmt: skip
    e.call("POST", "/networks/create", {"Name": "mx-ops-net"})
    _build_on(ex.bare, 0, "mx-ops/base:1", f"FROM {BUSYBOX_REF}\nRUN echo ops > /ops\n")
    # bob's team image, made through Moorage so that Moorage knows its owner
    _build_on(ex.gateway, UIDS["bob"], "mx-search/app:1", f"FROM {BUSYBOX_REF}\nRUN echo bob > /bob\n")
    ex.vars = {
        "IMG": BUSYBOX_REF,
        "LABSOCK": str(ex.lab.socket_path(1)),
        "AGENT": "mx-ops-agent",
        "OPS_IMAGE": e.call("GET", "/images/mx-ops/base:1/json")["Id"],
        "BOB_IMAGE": e.call("GET", "/images/mx-search/app:1/json")["Id"],
    }


# Every attempt runs through two gateways: two workers with the fast path taking
# plain reads, and one worker with every request on the full path. Both must refuse.
SERVING = {"2-workers-fast-path": ["--workers", "2"], "full-path": ["--workers", "1", "--fast-path", "off"]}


@pytest.fixture(scope="module", params=list(SERVING))
def escapes(request: pytest.FixtureRequest) -> Iterator[Escapes]:
    needs_root()
    lab = Lab(unique_name("esc"))
    lab.up(nodes=1, owner_pid=os.getpid())
    folder = Path(f"/tmp/moorage-{lab.name}-esc")
    proc: subprocess.Popen[bytes] | None = None
    try:
        engine = lab.client(1, timeout=120)
        load_into(build_busybox(), [engine])
        engine.call(
            "POST", "/swarm/init", {"ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": f"{lab.ip(1)}:2377"}
        )
        folder.mkdir(mode=0o755)
        os.chmod(folder, 0o755)
        proc, sock = _start_moorage_up(lab, folder, SERVING[request.param])
        ex = Escapes(lab, engine, str(lab.socket_path(1)), sock, folder)
        _fixtures(ex)
        yield ex
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        lab.down()
        shutil.rmtree(folder, ignore_errors=True)


def sweep(ex: Escapes) -> None:
    """Remove what an attempt or a workload made, and put moved names back."""
    e = ex.engine
    for s in e.call("GET", "/services") or []:
        if SWEPT.match(s["Spec"]["Name"]):
            e.call("DELETE", f"/services/{s['ID']}")
    for c in e.call("GET", "/containers/json?all=1") or []:
        if any(SWEPT.match(n) for n in c["Names"]):
            e.call("DELETE", f"/containers/{c['Id']}?force=1&v=1")
    for p in e.call("GET", "/plugins") or []:
        if SWEPT.match(p["Name"]):
            e.call("DELETE", f"/plugins/{p['Name']}?force=1")
    for n in e.call("GET", "/networks") or []:
        if SWEPT.match(n["Name"]):
            e.call("DELETE", f"/networks/{n['Id']}")
    for t in ("mx-ops/base:1", "mx-search/app:1"):
        image = ex.vars["OPS_IMAGE" if "ops" in t else "BOB_IMAGE"]
        repo, tag = t.rsplit(":", 1)
        e.call("POST", f"/images/{image}/tag?repo={repo}&tag={tag}")
    for i in e.call("GET", "/images/json") or []:
        for ref in i.get("RepoTags") or []:
            if SWEPT.match(ref):
                e.call("DELETE", f"/images/{ref}?force=1")
    for v in (e.call("GET", "/volumes") or {}).get("Volumes") or []:
        if SWEPT.match(v["Name"]):
            _retry_gone(lambda name=v["Name"]: e.call("DELETE", f"/volumes/{name}?force=1"))


def _retry_gone(call: Any) -> None:
    # a volume stays in use for a moment after a swarm task's container goes
    for _ in range(50):
        try:
            call()
            return
        except EngineError as exc:
            if exc.status == 404:
                return
            if exc.status != 409:
                raise
        time.sleep(0.2)


def _clean_agent(ex: Escapes) -> None:
    made = ex.engine.call("POST", "/containers/mx-ops-agent/exec", {"Cmd": ["sh", "-c", "rm -f /tmp/mx*"]})
    ex.engine.call("POST", f"/exec/{made['Id']}/start", {"Detach": True})


# ------------------------------------------------------------------ attempts
def _run(ex: Escapes, attempt: Attempt, name: str, phase: str) -> tuple[list[Response], str | None]:
    path, uid = (ex.bare, 0) if phase == "bare" else (ex.gateway, UIDS[phase])
    env = Channel(ex.engine, {**ex.vars, "NAME": name}, phase, path, uid)
    try:
        if attempt.setup is not None:
            attempt.setup(env)
        got = env.send(attempt.attack(env.vars), attempt.responses)
        return got, attempt.judge(env, got)
    finally:
        if attempt.name.startswith("unowned-archive-write"):
            _clean_agent(ex)
        sweep(ex)


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=[a.name for a in ATTEMPTS])
def test_attempt_escapes_a_bare_engine_and_moorage_refuses_it(escapes: Escapes, attempt: Attempt) -> None:
    name = f"mx{ATTEMPTS.index(attempt):03d}"
    got, found = _run(escapes, attempt, name, "bare")
    if not found:
        _report(attempt.name, attempt.group, [f"bare: NOT AN ESCAPE: {got}"])
    assert found, f"not an escape on the bare engine (fix the corpus): engine answered {got}"
    problems: list[str] = []
    for user in attempt.users:
        try:
            got, found = _run(escapes, attempt, name, user)
        except SetupRefused as exc:
            problems.append(f"{user}: FALSE DENIAL of the attempt's ordinary setup: {exc}")
            continue
        if found:
            problems.append(f"{user}: ESCAPED ({found}); Moorage answered {got}")
        elif not any(r.is_docker_refusal() for r in got):
            problems.append(f"{user}: no escape, but no 4xx in Docker's error shape either: {got}")
    _report(attempt.name, attempt.group, problems)
    assert not problems, "\n".join(problems)


def _report(name: str, group: str, problems: list[str]) -> None:
    """With MOORAGE_ESCAPES_REPORT=FILE, one JSON line per test (for the owners' triage)."""
    if target := os.environ.get("MOORAGE_ESCAPES_REPORT"):
        with open(target, "a") as out:
            out.write(json.dumps({"name": name, "group": group, "problems": problems}) + "\n")


# ------------------------------------------------------------------ workloads
def _cli(
    ex: Escapes, host: str, user: str, args: tuple[str, ...], ctx: Path
) -> subprocess.CompletedProcess[str]:
    uid = UIDS[user]
    home = Path(f"/tmp/moorage-test-home-{uid}")
    home.mkdir(exist_ok=True)
    os.chown(home, uid, uid)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "DOCKER_HOST": f"unix://{host}",
           "DOCKER_BUILDKIT": "0"}  # fmt: skip
    cmd = [DOCKER_CLIS[0], *args]
    if uid:
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180, cwd=ctx)


def _workload(ex: Escapes, w: Workload, name: str, host: str, user: str) -> Any:
    tmp = ex.folder / "ctx" / f"{name}-{user}"  # reachable by alice, unlike pytest's tmp_path
    tmp.mkdir(mode=0o755, parents=True, exist_ok=True)
    v = {**ex.vars, "NAME": name, "CTX": str(tmp)}
    for fname, text in w.files.items():
        (tmp / fname).write_text(fill(text, v))
    try:
        for step in w.steps:
            if isinstance(step, tuple):
                args = tuple(fill(a, v) for a in step)
                proc = _cli(ex, host, user, args, tmp)
                said = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip() and "legacy builder" not in ln
                        and "BuildKit" not in ln and "environment-variable" not in ln]  # fmt: skip
                assert proc.returncode == 0, f"{user}: `docker {' '.join(args)}` failed: {' '.join(said)}"
            else:
                got = exchange(host, step(v), UIDS[user])
                assert got and 200 <= got[-1].status < 300, f"{user}: refused: {got}"
        return w.state(ex.engine, v)
    finally:
        sweep(ex)


@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.name for w in WORKLOADS])
def test_ordinary_workload_passes_and_leaves_the_same_state(escapes: Escapes, workload: Workload) -> None:
    name = f"mx9{WORKLOADS.index(workload):02d}"
    direct = _workload(escapes, workload, name, escapes.bare, "root")
    problems = []
    for user in ("alice", "root"):  # a developer, and an admin (who must not be refused wholesale either)
        try:
            through = _workload(escapes, workload, name, escapes.gateway, user)
        except AssertionError as exc:
            problems.append(f"FALSE DENIAL: {exc}")
            continue
        if through != direct:
            problems.append(f"{user}: DIFFERENT STATE: {_diff(direct, through)}")
    _report(workload.name, "workload", problems)
    assert not problems, "\n".join(problems)


def _diff(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        return "; ".join(_diff(a.get(k), b.get(k), f"{where}.{k}") for k in sorted(set(a) | set(b))
                         if a.get(k) != b.get(k))  # fmt: skip
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return "; ".join(
            _diff(x, y, f"{where}[{i}]") for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y
        )
    return f"{where or '.'}: direct {json.dumps(a)[:200]} != through Moorage {json.dumps(b)[:200]}"


def test_the_corpus_is_large_enough() -> None:
    assert len(ATTEMPTS) >= 100, len(ATTEMPTS)
    assert len(WORKLOADS) >= 30, len(WORKLOADS)
    assert len({a.name for a in ATTEMPTS}) == len(ATTEMPTS)
    groups = {a.group for a in ATTEMPTS}
    assert {"container create", "exec", "services", "volumes", "networks", "builds", "tenancy", "old API",
            "paths", "plugins", "framing"} <= groups  # fmt: skip
