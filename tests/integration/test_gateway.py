"""The gateway in front of a real dockerd, driven by the real docker CLIs."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from moorage.engine import EngineClient
from moorage.lab import Lab, build_busybox, load_into
from tests.conftest import needs_root, unique_name
from tests.gateway_harness import DOCKER_CLIS, RunningGateway, docker, gateway_for, ok, raw


def engine(gw: RunningGateway) -> EngineClient:
    """The engine behind the gateway, asked directly (it shows what clients never see)."""
    assert gw.gateway.upstream.path is not None
    return EngineClient(gw.gateway.upstream.path)


@pytest.fixture(scope="module")
def gw() -> Iterator[RunningGateway]:
    needs_root()
    lab = Lab(unique_name("gw"))
    lab.up(nodes=1, owner_pid=os.getpid())
    try:
        load_into(build_busybox(), [lab.client(1)])
        yield from gateway_for(lab)
    finally:
        lab.down()


@pytest.mark.parametrize("cli", DOCKER_CLIS)
def test_everyday_commands_pass_through(gw: RunningGateway, cli: str, tmp_path: Path) -> None:
    name = f"c{os.getpid()}{Path(cli).parent.name}"
    ok(docker(gw, "run", "-d", "--name", name, "-p", "127.0.0.1::80", "moorage-lab/busybox",
              "sh", "-c", "echo started; exec sleep 300", cli=cli))  # fmt: skip
    try:
        assert ok(docker(gw, "exec", name, "echo", "exec-ok", cli=cli)) == "exec-ok"
        assert ok(docker(gw, "exec", "-i", name, "cat", cli=cli, stdin="piped\n")) == "piped"
        assert "started" in ok(docker(gw, "logs", name, cli=cli))
        # logs -f streams until stopped: read its first line, then end it
        follow = subprocess.Popen([cli, "logs", "-f", name], stdout=subprocess.PIPE, text=True,
                                  env={"PATH": os.environ["PATH"], "HOME": "/tmp", "DOCKER_HOST": f"unix://{gw.sock}"})  # fmt: skip
        assert follow.stdout is not None and follow.stdout.readline().strip() == "started"
        assert follow.poll() is None  # still following
        follow.kill()
        follow.wait()
        (tmp_path / "f.txt").write_text("copied")
        ok(docker(gw, "cp", str(tmp_path / "f.txt"), f"{name}:/tmp/f.txt", cli=cli))
        ok(docker(gw, "cp", f"{name}:/tmp/f.txt", str(tmp_path / "back.txt"), cli=cli))
        assert (tmp_path / "back.txt").read_text() == "copied"
        assert name in ok(docker(gw, "stats", "--no-stream", "--format", "{{.Name}}", name, cli=cli))
        assert "127.0.0.1:" in ok(docker(gw, "port", name, cli=cli))
        # a piped stdin is half-closed through the hijacked stream: cat must end
        assert (
            ok(docker(gw, "run", "-i", "--rm", "moorage-lab/busybox", "cat", cli=cli, stdin="in\n")) == "in"
        )
    finally:
        ok(docker(gw, "rm", "-f", name, cli=cli))


@pytest.mark.parametrize("cli", DOCKER_CLIS)
def test_build_save_load_network_volume(gw: RunningGateway, cli: str, tmp_path: Path) -> None:
    tag = f"t/built{abs(hash(cli)) % 1000}"
    (tmp_path / "Dockerfile").write_text("FROM moorage-lab/busybox\nRUN echo built > /b\n")
    ok(docker(gw, "build", "-q", "-t", tag, str(tmp_path), cli=cli))
    # the build is left as it was (no LABEL steps); the gateway records its owner apart
    image = engine(gw).call("GET", f"/images/{tag}/json")
    assert not any(k.startswith("io.moorage.") for k in image["Config"]["Labels"] or {})
    assert gw.gateway.owners.teams(image["Id"]) == ("user-root",)
    ok(docker(gw, "save", "-o", str(tmp_path / "i.tar"), tag, cli=cli))
    ok(docker(gw, "rmi", tag, cli=cli))
    assert tag in ok(docker(gw, "load", "-i", str(tmp_path / "i.tar"), cli=cli))
    ok(docker(gw, "rmi", tag, cli=cli))
    net, vol = f"n{tag[-3:]}", f"v{tag[-3:]}"
    ok(docker(gw, "network", "create", net, cli=cli))
    box = ok(docker(gw, "run", "-d", "moorage-lab/busybox", "sleep", "60", cli=cli))
    ok(docker(gw, "network", "connect", net, box, cli=cli))
    assert net in ok(docker(gw, "inspect", "--format", "{{json .NetworkSettings.Networks}}", box, cli=cli))
    ok(docker(gw, "rm", "-f", box, cli=cli))
    ok(docker(gw, "volume", "create", vol, cli=cli))
    assert engine(gw).call("GET", f"/volumes/{vol}")["Labels"]["io.moorage.team"] == "user-root"
    ok(docker(gw, "network", "rm", net, cli=cli))
    ok(docker(gw, "volume", "rm", vol, cli=cli))


def test_teams_cannot_see_or_touch_each_others_containers(gw: RunningGateway) -> None:
    cid = ok(
        docker(gw, "run", "-d", "--name", "alice-web", "moorage-lab/busybox", "sleep", "300", user="alice")
    )
    try:
        assert ok(docker(gw, "ps", "-q", "--no-trunc", user="alice")) == cid
        assert cid not in ok(docker(gw, "ps", "-aq", "--no-trunc", user="bob"))
        for ref in (cid, cid[:12], "alice-web"):
            for args in (["inspect", ref], ["exec", ref, "true"], ["stop", ref], ["rm", "-f", ref],
                         ["logs", ref]):  # fmt: skip
                out = docker(gw, *args, user="bob")
                # `rm -f` exits 0 on a missing container; what matters is the engine's answer
                assert out.returncode != 0 or args[:2] == ["rm", "-f"], args
                assert "No such container" in out.stderr or "No such object" in out.stderr, (args, out.stderr)
        state = ok(docker(gw, "inspect", "--format", "{{.State.Running}}", cid, user="alice"))
        assert state == "true"  # bob's stop and rm never reached it
        # the admin sees every team; a teammate with viewer role may look, not change
        assert cid in ok(docker(gw, "ps", "-q", "--no-trunc", user="root"))
        assert ok(docker(gw, "inspect", "--format", "{{.Name}}", "alice-web", user="val")) == "/alice-web"
        refused = docker(gw, "stop", "alice-web", user="val")
        assert refused.returncode != 0 and "moorage: val (roles: viewer) may not call" in refused.stderr
        labels = engine(gw).call("GET", f"/containers/{cid}/json")["Config"]["Labels"]
        assert labels["io.moorage.owner"] == "alice" and labels["io.moorage.team"] == "payments"
    finally:
        ok(docker(gw, "rm", "-f", cid, user="root"))


def test_labels_that_claim_ownership_are_refused(gw: RunningGateway) -> None:
    out = docker(
        gw, "run", "-d", "--label", "io.moorage.team=payments", "moorage-lab/busybox", "true", user="bob"
    )
    assert out.returncode != 0
    assert "Error response from daemon: moorage: label 'io.moorage.team'" in out.stderr
    out = docker(gw, "volume", "create", "--label", "io.moorage.owner=alice", "v-claim", user="bob")
    assert out.returncode != 0 and "reserved" in out.stderr


def test_roles_and_unknown_users(gw: RunningGateway) -> None:
    prune = docker(gw, "container", "prune", "-f", user="alice")
    assert prune.returncode != 0 and "container.prune" in prune.stderr
    swarm = docker(gw, "swarm", "init", user="alice")
    assert swarm.returncode != 0 and "swarm.init" in swarm.stderr
    nobody = subprocess.run(
        ["setpriv", "--reuid=52999", "--regid=52999", "--clear-groups", DOCKER_CLIS[0], "ps"],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"], "HOME": "/tmp",
                                             "DOCKER_HOST": f"unix://{gw.sock}"}, timeout=60,
    )  # fmt: skip
    assert nobody.returncode != 0 and "uid 52999 is not a Moorage user" in nobody.stderr


def test_malformed_input_is_refused_and_never_forwarded(gw: RunningGateway) -> None:
    status, body = raw(gw, b"NOT HTTP\r\n\r\n")
    assert status == 400 and "malformed request line" in body["message"]
    bad = b'{"Image": "moorage-lab/busybox", '
    status, body = raw(gw, b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: "
                       + str(len(bad)).encode() + b"\r\n\r\n" + bad)  # fmt: skip
    assert status == 400 and "not valid JSON" in body["message"]
    dup = b'{"Image": "moorage-lab/busybox", "Labels": {}, "labels": {"io.moorage.team": "x"}}'
    status, body = raw(gw, b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: "
                       + str(len(dup)).encode() + b"\r\n\r\n" + dup)  # fmt: skip
    # the engine merges a repeated object: the reserved label is in the engine's reading
    assert status == 403 and "reserved" in body["message"]
    status, body = raw(gw, b"GET /_ping HTTP/1.1\r\nHost: d\r\n" + b"X: " + b"a" * 70000 + b"\r\n\r\n")
    assert status == 431
    status, body = raw(gw, b"GET /containers/x/frobnicate HTTP/1.1\r\nHost: d\r\n\r\n")
    # unknown endpoints are refused for every role, admins included
    assert status == 403 and "not an Engine API endpoint" in body["message"]
    status, _ = raw(gw, b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
    assert status == 200


def test_keep_alive_and_pipelining(gw: RunningGateway) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(gw.sock))
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n" * 3 + b"HEAD /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        out = b""
        while out.count(b"HTTP/1.1 200") < 4:
            chunk = s.recv(65536)
            assert chunk, out
            out += chunk
    assert out.count(b"OK") >= 3


def test_unreachable_upstream_is_a_502_naming_it(tmp_path: Path) -> None:
    needs_root()
    gw = RunningGateway(f"unix://{tmp_path}/nothing.sock", tmp_path / "gw.sock")
    try:
        status, body = raw(gw, b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
    finally:
        gw.stop()
    assert status == 502 and f"unix://{tmp_path}/nothing.sock" in body["message"]


def test_a_half_closed_attach_survives_garbage_collection(gw: RunningGateway) -> None:
    """Regression: a client half-close left the connection task unreferenced and a GC
    pass destroyed it, cutting `docker run --rm` output before its first byte."""
    import gc

    body = b'{"Image":"moorage-lab/busybox","Cmd":["echo","x"]}'
    status, created = raw(gw, b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
                          + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
    assert status == 201, created
    cid = created["Id"]
    with socket.socket(socket.AF_UNIX) as att:
        att.settimeout(15)
        att.connect(str(gw.sock))
        att.sendall(f"POST /containers/{cid}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: d\r\n"
                    "Upgrade: tcp\r\nConnection: Upgrade\r\n\r\n".encode())  # fmt: skip
        got = b""
        while b"\r\n\r\n" not in got:
            got += att.recv(4096)
        assert got.startswith(b"HTTP/1.1 101")
        att.shutdown(socket.SHUT_WR)  # what docker CLIs do when stdin is not attached
        for _ in range(3):
            gc.collect()
        assert raw(gw, f"POST /containers/{cid}/start HTTP/1.1\r\nHost: d\r\n\r\n".encode())[0] == 204
        stream = got.split(b"\r\n\r\n", 1)[1]
        while chunk := att.recv(4096):
            stream += chunk
    raw(gw, f"DELETE /containers/{cid}?force=1 HTTP/1.1\r\nHost: d\r\n\r\n".encode())
    assert stream.endswith(b"x\n"), stream


@pytest.mark.parametrize("cli", DOCKER_CLIS)
def test_run_rm_prints_output_every_time(gw: RunningGateway, cli: str) -> None:
    outs = [ok(docker(gw, "run", "--rm", "moorage-lab/busybox", "echo", f"n{i}", cli=cli)) for i in range(15)]
    assert outs == [f"n{i}" for i in range(15)]


def test_an_unwritable_audit_trail_fails_closed(gw: RunningGateway, tmp_path: Path) -> None:
    from moorage.audit.trail import AuditTrail, KeyRing

    trail = AuditTrail(tmp_path / "audit.db", KeyRing(tmp_path / "keys"))
    upstream = gw.gateway.upstream.url
    audited = RunningGateway(upstream, tmp_path / "a.sock", audit=trail)
    body = b'{"Name": "must-not-exist"}'
    create = (b"POST /volumes/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
              + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
    try:
        assert raw(audited, b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")[0] == 200

        def store_writable(on: bool) -> None:
            # as a read-only or full store looks to SQLite
            trail._db.execute(f"PRAGMA query_only = {'OFF' if on else 'ON'}")

        def settled(healthy: bool) -> None:
            # read records are journaled, then chained by the writer thread shortly after
            deadline = time.monotonic() + 10
            while trail.healthy != healthy and time.monotonic() < deadline:
                time.sleep(0.01)
            assert trail.healthy == healthy

        store_writable(False)
        raw(audited, b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")  # chaining this fails: trail unhealthy
        settled(False)
        status, answer = raw(audited, create)
        assert status == 503 and "audit" in answer["message"]
        # the refused change never reached the engine
        assert raw(audited, b"GET /volumes/must-not-exist HTTP/1.1\r\nHost: d\r\n\r\n")[0] == 404
        # read-only requests keep working while the trail is down
        assert raw(audited, b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")[0] == 200
        store_writable(True)
        raw(audited, b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")  # a successful append heals it
        settled(True)
        status, _ = raw(audited, create)
        assert status == 201
        raw(audited, b"DELETE /volumes/must-not-exist HTTP/1.1\r\nHost: d\r\n\r\n")
        assert trail.verify().ok
    finally:
        audited.stop()
        trail.close()


def test_create_cannot_reach_another_teams_objects_by_reference(gw: RunningGateway) -> None:
    cid = ok(docker(gw, "run", "-d", "--name", "alice-db", "-v", "alice-data:/data", "moorage-lab/busybox",
                    "sleep", "300", user="alice"))  # fmt: skip
    ok(docker(gw, "network", "create", "alice-net", user="alice"))
    try:
        attempts = [
            ["--volumes-from", "alice-db"], ["--network", "container:alice-db"], ["--pid", "container:alice-db"],
            ["--ipc", "container:alice-db"], ["--link", "alice-db:db"], ["-v", "alice-data:/stolen"],
            ["--mount", "type=volume,src=alice-data,dst=/stolen"], ["--network", "alice-net"],
        ]  # fmt: skip
        for flags in attempts:
            out = docker(gw, "run", "--rm", *flags, "moorage-lab/busybox", "true", user="bob")
            assert out.returncode != 0, flags
            assert "No such container" in out.stderr or "not found" in out.stderr or "no such volume" in out.stderr, (
                flags, out.stderr)  # fmt: skip
        # the owner may; a volume a create names into existence belongs to whoever named it
        assert ok(docker(gw, "run", "--rm", "--volumes-from", "alice-db", "moorage-lab/busybox", "ls", "/data",
                         user="alice")) == ""  # fmt: skip
        ok(docker(gw, "run", "--rm", "-v", "bob-new:/n", "moorage-lab/busybox", "true", user="bob"))
        labels = engine(gw).call("GET", "/volumes/alice-data")["Labels"]
        assert labels["io.moorage.team"] == "payments"
        assert "bob-new" in ok(docker(gw, "volume", "ls", "-q", user="bob"))
    finally:
        ok(docker(gw, "rm", "-f", cid, user="root"))
        docker(gw, "network", "rm", "alice-net", user="root")
        docker(gw, "volume", "rm", "alice-data", "bob-new", user="root")
