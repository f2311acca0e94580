"""Tenancy against a real dockerd: objects nobody owns (made on the engine directly)
are not usable by developers, and Moorage's bookkeeping stays out of every answer."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from moorage.admission.tenancy import OWNER, SHARED, TEAM, SharedObjects
from moorage.engine import EngineError
from moorage.lab import Lab, build_busybox, load_into
from moorage.lab.images import BUSYBOX_REF
from tests.conftest import needs_root, unique_name
from tests.gateway_harness import DOCKER_CLIS, UIDS, RunningGateway, gateway_for, ok
from tests.gateway_harness import docker as docker_as

# The engine's own CLI generation (20.10): these tests are about tenancy, not about
# request fields a newer CLI sends.
CLI = DOCKER_CLIS[-1]


def docker(gw: RunningGateway, *args: str, user: str = "root", stdin: str | None = None,
           cli: str = CLI) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return docker_as(gw, *args, user=user, cli=cli, stdin=stdin)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    needs_root()
    lab = Lab(unique_name("ten"))
    lab.up(nodes=1, owner_pid=os.getpid())
    try:
        engine = lab.client(1)
        load_into(build_busybox(), [engine])
        engine.call("POST", "/swarm/init", {"ListenAddr": f"{lab.ip(1)}:2377", "AdvertiseAddr": lab.ip(1)})
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def gw(lab: Lab) -> Iterator[RunningGateway]:
    for gateway in gateway_for(lab):
        gateway.gateway.shared = SharedObjects(networks=("ops-named",))
        yield gateway


def engine_labels(lab: Lab, path: str, *keys: str) -> dict[str, str]:
    doc: Any = lab.client(1).call("GET", path)
    for key in keys:
        doc = doc[key]
    return dict(doc or {})


def refused(out: subprocess.CompletedProcess[str], why: str = "belongs to no team") -> None:
    assert out.returncode != 0, out.args
    assert why in out.stderr, (out.args, out.stderr)


def test_containers_and_volumes_nobody_owns_are_out_of_a_developers_reach(
    lab: Lab, gw: RunningGateway
) -> None:
    engine = lab.client(1)
    box = engine.call("POST", "/containers/create?name=ops-box",
                      {"Image": BUSYBOX_REF, "Cmd": ["sh", "-c", "echo secret-log; exec sleep 300"]})["Id"]  # fmt: skip
    engine.call("POST", f"/containers/{box}/start")
    engine.call("POST", "/volumes/create", {"Name": "ops-vol"})
    try:
        attempts = [
            ["run", "--rm", "--volumes-from", "ops-box", BUSYBOX_REF, "true"],
            ["run", "--rm", "--pid", "container:ops-box", BUSYBOX_REF, "true"],
            ["run", "--rm", "--network", "container:ops-box", BUSYBOX_REF, "true"],
            ["run", "--rm", "--ipc", "container:ops-box", BUSYBOX_REF, "true"],
            ["run", "--rm", "--link", "ops-box:db", BUSYBOX_REF, "true"],
            ["run", "--rm", "-v", "ops-vol:/stolen", BUSYBOX_REF, "true"],
            ["run", "--rm", "--mount", "type=volume,src=ops-vol,dst=/stolen", BUSYBOX_REF, "true"],
            ["exec", "ops-box", "true"],
            ["cp", "ops-box:/etc/hostname", "-"],
            ["export", "ops-box"],
            ["logs", "ops-box"],
            ["top", "ops-box"],
            ["diff", "ops-box"],
            ["stop", "ops-box"],
            ["volume", "inspect", "ops-vol"],
            ["volume", "rm", "ops-vol"],
        ]
        for args in attempts:
            out = docker(gw, *args, user="alice")
            refused(out)
            assert "secret-log" not in out.stdout
        # nothing reached the engine: no container of alice's, the box runs, one exec: none
        made = engine.call("GET", "/containers/json?all=1")
        assert [c["Names"] for c in made] == [["/ops-box"]]
        assert engine.call("GET", f"/containers/{box}/json")["ExecIDs"] is None
        # an admin may (tenancy's sees_all)
        assert "secret-log" in ok(docker(gw, "logs", "ops-box", user="root"))
        # declared shared, a volume is usable (not removable)
        engine.call("POST", "/volumes/create", {"Name": "ops-tools", "Labels": {SHARED: "true"}})
        ok(docker(gw, "run", "--rm", "-v", "ops-tools:/tools", BUSYBOX_REF, "true", user="alice"))
        refused(docker(gw, "volume", "rm", "ops-tools", user="alice"))
    finally:
        engine.call("DELETE", f"/containers/{box}?force=1")
        for vol in ("ops-vol", "ops-tools"):
            with contextlib.suppress(EngineError):
                engine.call("DELETE", f"/volumes/{vol}")


def test_networks_nobody_owns_are_joinable_only_when_default_or_shared(lab: Lab, gw: RunningGateway) -> None:
    engine = lab.client(1)
    engine.call("POST", "/networks/create", {"Name": "ops-net"})
    engine.call("POST", "/networks/create", {"Name": "ops-named"})
    engine.call("POST", "/networks/create", {"Name": "ops-labelled", "Labels": {SHARED: "true"}})
    own = ok(docker(gw, "run", "-d", BUSYBOX_REF, "sleep", "300", user="alice"))
    try:
        refused(docker(gw, "run", "--rm", "--network", "ops-net", BUSYBOX_REF, "true", user="alice"))
        refused(docker(gw, "network", "connect", "ops-net", own, user="alice"))
        refused(docker(gw, "run", "--rm", "--network", "host", BUSYBOX_REF, "true", user="alice"))
        assert engine.call("GET", "/networks/ops-net")["Containers"] == {}
        # the engine's default bridge, and networks declared shared by name or label
        ok(docker(gw, "run", "--rm", "--network", "bridge", BUSYBOX_REF, "true", user="alice"))
        ok(docker(gw, "run", "--rm", "--network", "ops-named", BUSYBOX_REF, "true", user="alice"))
        ok(docker(gw, "network", "connect", "ops-labelled", own, user="alice"))
        assert own in engine.call("GET", "/networks/ops-labelled")["Containers"]
        # sharing lets a team join, not change
        refused(docker(gw, "network", "rm", "ops-labelled", user="alice"))
        # a build's RUN steps don't join one either
        refused(docker(gw, "build", "--network", "ops-net", "-", user="alice",
                       stdin=f"FROM {BUSYBOX_REF}\nRUN true\n"))  # fmt: skip
    finally:
        engine.call("DELETE", f"/containers/{own}?force=1")
        for net in ("ops-net", "ops-named", "ops-labelled"):
            with contextlib.suppress(EngineError):
                engine.call("DELETE", f"/networks/{net}")


def test_owner_labels_never_show_and_survive_a_service_update(lab: Lab, gw: RunningGateway) -> None:
    ok(docker(gw, "network", "create", "--label", "app=web", "alice-net", user="alice"))
    ok(docker(gw, "volume", "create", "--label", "app=web", "alice-vol", user="alice"))
    box = ok(docker(gw, "run", "-d", "--label", "app=web", BUSYBOX_REF, "sleep", "300", user="alice"))
    ok(docker(gw, "service", "create", "--detach", "--no-resolve-image", "--replicas", "0", "--name", "alice-svc",
              "--label", "app=web", "--container-label", "c=1", BUSYBOX_REF, "true", user="alice"))  # fmt: skip
    try:
        for user in ("alice", "root"):
            for kind, ref in (("network", "alice-net"), ("volume", "alice-vol"), ("container", box),
                              ("service", "alice-svc")):  # fmt: skip
                shown = ok(docker(gw, kind, "inspect", ref, user=user))
                assert "io.moorage" not in shown, (user, kind)
                assert '"app": "web"' in shown
            for listing in (["ps", "--format", "{{.Labels}}"], ["network", "ls", "--format", "{{.Labels}}"],
                            ["volume", "ls", "--format", "{{.Labels}}"], ["service", "ls"]):  # fmt: skip
                shown = ok(docker(gw, *listing, user=user))
                assert "io.moorage" not in shown and ("app=web" in shown or "alice-svc" in shown), listing
        # --until a moment ahead: events of the second just begun would be cut off
        events = docker(gw, "events", "--since", "0", "--until", str(int(time.time()) + 2), "--format",
                        "{{json .}}", user="alice")  # fmt: skip
        leaked = [line for line in events.stdout.splitlines() if "io.moorage" in line]
        assert not leaked, leaked
        assert "app" in events.stdout, (events.stdout[-600:], events.stderr[-300:])
        # the engine itself still has them
        assert engine_labels(lab, "/networks/alice-net", "Labels")[TEAM] == "payments"
        assert engine_labels(lab, "/volumes/alice-vol", "Labels")[OWNER] == "alice"
        # an update sends back the spec it was shown (without owner labels): they stay
        ok(docker(gw, "service", "update", "--detach", "--label-add", "more=1", "--label-rm", "app",
                  "alice-svc", user="alice"))  # fmt: skip
        shown = json.loads(ok(docker(gw, "service", "inspect", "alice-svc", user="alice")))[0]["Spec"]
        assert shown["Labels"] == {"more": "1"}
        assert shown["TaskTemplate"]["ContainerSpec"]["Labels"] == {"c": "1"}
        spec = lab.client(1).call("GET", "/services/alice-svc")["Spec"]
        assert spec["Labels"] == {"more": "1", OWNER: "alice", TEAM: "payments"}
        assert spec["TaskTemplate"]["ContainerSpec"]["Labels"][TEAM] == "payments"
        # and still belongs to alice's team only
        assert "no such service" in docker(gw, "service", "inspect", "alice-svc", user="bob").stderr.lower()
    finally:
        ok(docker(gw, "service", "rm", "alice-svc", user="root"))
        ok(docker(gw, "rm", "-f", box, user="root"))
        ok(docker(gw, "network", "rm", "alice-net", user="root"))
        ok(docker(gw, "volume", "rm", "alice-vol", user="root"))


def build_steps(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("Step ")]


@pytest.mark.parametrize("cli", [CLI])
def test_a_build_is_the_same_build_and_its_image_is_the_builders(
    lab: Lab, gw: RunningGateway, cli: str
) -> None:
    tmp_path = Path(tempfile.mkdtemp(prefix="moorage-build-"))
    tmp_path.chmod(0o755)  # the CLIs run as other uids
    (tmp_path / "Dockerfile").write_text(f'FROM {BUSYBOX_REF}\nRUN echo built > /b\nCMD ["cat", "/b"]\n')
    direct = subprocess.run([cli, "build", "--no-cache", "-t", "direct-app", str(tmp_path)], capture_output=True,
                            text=True, env={**os.environ, "DOCKER_HOST": lab.docker_host(1),
                                            "DOCKER_BUILDKIT": "0"}, timeout=120)  # fmt: skip
    assert direct.returncode == 0, direct.stderr
    through = ok(docker(gw, "build", "--no-cache", "-t", "alice-app", str(tmp_path), user="alice", cli=cli))
    assert build_steps(through) == build_steps(direct.stdout) and len(build_steps(through)) == 3
    image = lab.client(1).call("GET", "/images/alice-app/json")
    assert not any(k.startswith("io.moorage") for k in (image["Config"]["Labels"] or {}))
    assert gw.gateway.owners.teams(image["Id"]) == ("payments",)
    # the builder's team runs it; another team can't see it, run it or take its name
    assert ok(docker(gw, "run", "--rm", "alice-app", user="alice", cli=cli)) == "built"
    refused(docker(gw, "run", "--rm", "alice-app", user="bob", cli=cli), "No such image")
    refused(docker(gw, "tag", BUSYBOX_REF, "alice-app", user="bob", cli=cli), "another team")
    refused(docker(gw, "build", "-q", "-t", "alice-app", str(tmp_path), user="bob", cli=cli), "another team")
    # nobody may write over a name no team owns (an operator's base image)
    refused(docker(gw, "tag", "alice-app", BUSYBOX_REF, user="alice", cli=cli), "no team owns")
    ok(docker(gw, "tag", BUSYBOX_REF, "alice-base:1", user="alice", cli=cli))
    assert lab.client(1).call("GET", "/images/alice-app/json")["Id"] == image["Id"]
    # a rebuild onto the team's own name is fine (the cache makes it the same image)
    ok(docker(gw, "build", "-q", "-t", "alice-app", str(tmp_path), user="alice", cli=cli))
    for ref in ("alice-app", "direct-app", "alice-base:1"):
        lab.client(1).call("DELETE", f"/images/{ref}")
    shutil.rmtree(tmp_path)


def raw_http(sock: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(sock)
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_answers_equal_the_engines_for_network_scope_and_errors(lab: Lab, gw: RunningGateway) -> None:
    engine_sock = lab.docker_host(1).removeprefix("unix://")
    ok(docker(gw, "network", "create", "-d", "overlay", "alice-ov", user="alice"))
    try:
        for query in ("?scope=local", "?scope=swarm", ""):
            request = f"GET /v1.41/networks/alice-ov{query} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"
            direct = raw_http(engine_sock, request.encode())
            through = raw_http(str(gw.sock), request.encode())
            assert through[0] == direct[0], (query, through, direct)
        assert direct[0] == 200 and raw_http(engine_sock, b"GET /networks/alice-ov?scope=local HTTP/1.1\r\n"
                                            b"Host: d\r\nConnection: close\r\n\r\n")[0] == 404  # fmt: skip
    finally:
        ok(docker(gw, "network", "rm", "alice-ov", user="root"))
    # Moorage's own answer (the lookup fails in the gateway) looks like the engine's
    request = (
        f"GET /containers/{quote('nope')}/json HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n".encode()
    )
    direct = raw_http(engine_sock, request)
    through = raw_http(str(gw.sock), request)
    assert through[0] == direct[0] == 404
    assert json.loads(through[2]) == json.loads(direct[2]) == {"message": "No such container: nope"}
    for name in ("api-version", "ostype", "server", "docker-experimental"):
        assert through[1].get(name) == direct[1].get(name), name


def test_join_tokens_are_for_admins_only(lab: Lab, gw: RunningGateway) -> None:
    """A node that joins with a token is beyond Moorage: operators don't see them."""
    token = docker_as(gw, "swarm", "join-token", "-q", "worker", user="root", cli=DOCKER_CLIS[-1])
    assert token.returncode == 0 and token.stdout.strip().startswith("SWMTKN-")
    hidden = docker_as(gw, "swarm", "join-token", "-q", "worker", user="olga", cli=DOCKER_CLIS[-1])
    assert "SWMTKN-" not in hidden.stdout
    assert "JoinTokens" in json.dumps(lab.client(1).call("GET", "/swarm"))  # the engine still has them


def _post_as(gw: RunningGateway, user: str, path: str, body: dict[str, Any]) -> tuple[int, str]:
    """A raw API request as ``user`` (curl on the gateway's socket, run as their uid)."""
    uid = str(UIDS[user])
    out = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "curl", "-s",
                          "-o", "-", "-w", "\n%{http_code}", "--unix-socket", str(gw.sock), "-H",
                          "Content-Type: application/json", "-d", json.dumps(body), f"http://d{path}"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    text, _, code = out.stdout.rpartition("\n")
    return int(code or 0), text


def test_a_service_gets_only_its_teams_secrets_and_configs(lab: Lab, gw: RunningGateway) -> None:
    """A secret or config given to a service is mounted into its tasks: another team's
    and one nobody owns are refused. The engine finds them by id, so ids are checked."""
    engine = lab.client(1)
    ops = engine.call("POST", "/secrets/create", {"Name": "ops-key", "Data": "c2VjcmV0"})["ID"]
    ok(docker(gw, "secret", "create", "search-key", "-", user="sam", stdin="s3cret"))
    ok(docker(gw, "secret", "create", "pay-key", "-", user="olga", stdin="ours"))
    ok(docker(gw, "config", "create", "search-conf", "-", user="bob", stdin="theirs"))
    search = engine.call("GET", "/secrets/search-key")["ID"]
    conf = engine.call("GET", "/configs/search-conf")["ID"]
    pay = engine.call("GET", "/secrets/pay-key")["ID"]

    def spec(name: str, secrets: list[dict[str, Any]], configs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Name": name,
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": BUSYBOX_REF,
                    "Command": ["sleep", "60"],
                    "Secrets": secrets,
                    "Configs": configs,
                }
            },
        }

    def file(name: str) -> dict[str, Any]:
        return {"Name": name, "UID": "0", "GID": "0", "Mode": 292}

    try:
        attempts = {
            "steal-ops": spec("steal-ops", [{"SecretID": ops, "SecretName": "ops-key", "File": file("k")}], []),
            "steal-search": spec("steal-search", [{"SecretID": search, "SecretName": "pay-key",
                                                   "File": file("k")}], []),
            "steal-conf": spec("steal-conf", [], [{"ConfigID": conf, "ConfigName": "x", "File": file("c")}]),
        }  # fmt: skip
        for name, body in attempts.items():
            status, answer = _post_as(gw, "olga", "/v1.41/services/create", body)
            assert 400 <= status < 500 and ("belongs to no team" in answer or "not found" in answer), (
                name,
                answer,
            )
            assert not [s for s in engine.call("GET", "/services") if s["Spec"]["Name"] == name]
        status, answer = _post_as(
            gw,
            "olga",
            "/v1.41/services/create",
            spec("own-key", [{"SecretID": pay, "SecretName": "pay-key", "File": file("k")}], []),
        )
        assert status == 201, answer
    finally:
        with contextlib.suppress(EngineError):
            engine.call("DELETE", "/services/own-key")
        for secret in ("ops-key", "search-key", "pay-key"):
            with contextlib.suppress(EngineError):
                engine.call("DELETE", f"/secrets/{secret}")
        with contextlib.suppress(EngineError):
            engine.call("DELETE", "/configs/search-conf")


def test_a_volume_named_with_its_own_options_keeps_them_and_is_the_callers(
    lab: Lab, gw: RunningGateway
) -> None:
    """`--mount type=volume,...,volume-opt=...` makes the engine create the volume with
    those options: the gateway stamps the owner labels in rather than creating it first."""
    engine = lab.client(1)
    mount = "type=volume,src=own-tmpfs,dst=/d,volume-opt=type=tmpfs,volume-opt=device=tmpfs"
    try:
        ok(docker(gw, "run", "--rm", "--mount", mount, BUSYBOX_REF, "true", user="alice"))
        vol = engine.call("GET", "/volumes/own-tmpfs")
        assert vol["Options"] == {"type": "tmpfs", "device": "tmpfs"}
        assert vol["Labels"][TEAM] == "payments"
        ok(docker(gw, "run", "--rm", "-v", "own-tmpfs:/d", BUSYBOX_REF, "true", user="alice"))  # still theirs
    finally:
        with contextlib.suppress(EngineError):
            engine.call("DELETE", "/volumes/own-tmpfs")


def test_links_are_removed_by_their_name_and_only_by_their_team(lab: Lab, gw: RunningGateway) -> None:
    """`docker rm --link PARENT/ALIAS` is DELETE /containers/PARENT/ALIAS?link=1: the
    engine's route takes the whole name; without link=1 it deletes what ALIAS points at."""
    engine = lab.client(1)
    ok(docker(gw, "run", "-d", "--name", "lk-db", BUSYBOX_REF, "sleep", "300", user="alice"))
    ok(
        docker(
            gw,
            "run",
            "-d",
            "--name",
            "lk-app",
            "--link",
            "lk-db:db",
            BUSYBOX_REF,
            "sleep",
            "300",
            user="alice",
        )
    )
    try:
        # not bob's: `rm -f` exits 0 on a missing container, but says so
        assert "No such container" in docker(gw, "rm", "-f", "lk-app/db", user="bob").stderr
        refused(docker(gw, "rm", "--link", "lk-app/db", user="bob"), "No such container")
        assert engine.call("GET", "/containers/lk-db/json")["State"]["Running"]
        ok(docker(gw, "rm", "--link", "lk-app/db", user="alice"))
        assert engine.call("GET", "/containers/lk-app/json")["HostConfig"]["Links"] in (None, [])
    finally:
        for name in ("lk-app", "lk-db"):
            with contextlib.suppress(EngineError):
                engine.call("DELETE", f"/containers/{name}?force=1")


def test_a_build_reads_only_images_its_team_may_run(lab: Lab, gw: RunningGateway) -> None:
    """FROM and COPY --from read images: another team's are refused however the
    Dockerfile names them (ARG expansion, stages), as `docker run` of them would be."""
    cli = DOCKER_CLIS[-1]
    ctx = Path(tempfile.mkdtemp(prefix="moorage-build-"))
    ctx.chmod(0o755)
    try:
        (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX_REF}\nRUN echo search > /secret\n")
        ok(docker(gw, "build", "-q", "-t", "search-base:1", str(ctx), user="bob", cli=cli))
        attempts = {
            "from": "FROM search-base:1\nRUN cat /secret\n",
            "arg": "ARG B=search-base:1\nFROM ${B}\n",
            "copy-from": f"FROM {BUSYBOX_REF}\nCOPY --from=search-base:1 /secret /stolen\n",
            "stage-then-image": f"FROM {BUSYBOX_REF} AS one\nFROM search-base:1\n",
        }
        for name, text in attempts.items():
            (ctx / "Dockerfile").write_text(text)
            out = docker(gw, "build", "-q", "-t", f"alice-{name}", str(ctx), user="alice", cli=cli)
            assert out.returncode != 0 and "named by the Dockerfile" in out.stderr, (name, out.stderr)
        # the base images nobody owns, and the team's own stages, are fine
        (ctx / "Dockerfile").write_text(
            f"FROM {BUSYBOX_REF} AS base\nRUN echo x > /x\nFROM base\nCOPY --from=0 /x /y\n"
        )
        ok(docker(gw, "build", "-q", "-t", "alice-ok", str(ctx), user="alice", cli=cli))
        # a build arg that names another team's image counts too
        (ctx / "Dockerfile").write_text(f"ARG B={BUSYBOX_REF}\nFROM $B\n")
        out = docker(gw, "build", "-q", "--build-arg", "B=search-base:1", "-t", "alice-argv", str(ctx),
                     user="alice", cli=cli)  # fmt: skip
        assert out.returncode != 0 and "named by the Dockerfile" in out.stderr, out.stderr
    finally:
        for ref in ("search-base:1", "alice-ok"):
            with contextlib.suppress(EngineError):
                lab.client(1).call("DELETE", f"/images/{ref}?force=1")
        shutil.rmtree(ctx, ignore_errors=True)


def test_disk_usage_shows_a_developer_only_their_teams_containers_and_volumes(
    lab: Lab, gw: RunningGateway
) -> None:
    engine = lab.client(1)
    ok(docker(gw, "create", "--name", "df-alice", BUSYBOX_REF, "true", user="alice"))
    ok(docker(gw, "create", "--name", "df-bob", BUSYBOX_REF, "true", user="bob"))
    ok(docker(gw, "volume", "create", "df-bob-vol", user="bob"))
    try:

        def df(user: str) -> dict[str, Any]:
            uid = str(UIDS[user])
            out = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "curl", "-s",
                                  "--unix-socket", str(gw.sock), "http://d/v1.41/system/df"],
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
            return dict(json.loads(out.stdout))

        mine = df("alice")
        names = {n for c in mine["Containers"] for n in c["Names"]}
        assert "/df-alice" in names and "/df-bob" not in names
        assert "df-bob-vol" not in {v["Name"] for v in mine["Volumes"]}
        assert "io.moorage" not in json.dumps(mine)
        everything = df("root")
        assert {"/df-alice", "/df-bob"} <= {n for c in everything["Containers"] for n in c["Names"]}
    finally:
        for name in ("df-alice", "df-bob"):
            with contextlib.suppress(EngineError):
                engine.call("DELETE", f"/containers/{name}?force=1")
        with contextlib.suppress(EngineError):
            engine.call("DELETE", "/volumes/df-bob-vol")
