"""`moorage up` as a user runs it, with real clients: both docker CLIs (unix and
mutual TLS, a real pty), docker-compose 1.29, the docker Python SDK."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker as docker_sdk
import pytest

from moorage.lab import Lab, build_busybox, load_into
from tests.conftest import needs_root, unique_name

CLIS = [p for p in ("/usr/local/bin/docker", "/usr/bin/docker") if Path(p).exists()]
BUSYBOX = "moorage-lab/busybox"


@dataclass
class Up:
    lab: Lab
    data: Path
    sock: Path
    tls_port: int
    context: str
    proc: subprocess.Popen[str]

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": os.environ["PATH"], "HOME": str(self.data / "home"),
                "DOCKER_HOST": f"unix://{self.sock}", **extra}  # fmt: skip


@pytest.fixture(scope="module")
def up() -> Iterator[Up]:
    needs_root()
    lab = Lab(unique_name("e2"))
    lab.up(nodes=1, owner_pid=os.getpid())
    data = Path(f"/tmp/moorage-{lab.name}")
    proc = None
    context = f"moorage-{lab.name}"
    try:
        load_into(build_busybox(), [lab.client(1)])
        (data / "home").mkdir(parents=True)
        (data / "users.yaml").write_text(
            "users:\n  carol: {cert: carol, teams: [payments], roles: [developer]}\n"
        )
        # output goes to a file: a pipe nobody reads would fill and stall the gateway
        log = data / "moorage-up.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moorage.cli.main", "up", "--upstream", lab.docker_host(1),
                 "--data-dir", str(data), "--tls-listen", "127.0.0.1:0", "--context", context],
                stdout=out, stderr=subprocess.STDOUT, text=True,
                env={**os.environ, "HOME": str(data / "home")},
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while "Use it:" not in (banner := log.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, banner
            time.sleep(0.1)
        port = int(re.search(r"tls\s+tcp://127\.0\.0\.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
        assert f"docker --context {context} ps" in banner
        yield Up(lab, data, data / "docker.sock", port, context, proc)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        lab.down()
        shutil.rmtree(data, ignore_errors=True)


def run(up: Up, *args: str, cli: str = CLIS[0], env: dict[str, str] | None = None,
        stdin: str | None = None) -> str:  # fmt: skip
    proc = subprocess.run([cli, *args], capture_output=True, text=True, env=env or up.env(),
                          input=stdin, timeout=120)  # fmt: skip
    assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc.stdout.strip()


def test_the_docker_context_points_at_the_gateway(up: Up) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(up.data / "home")}
    out = run(up, "--context", up.context, "run", "--rm", BUSYBOX, "echo", "via-context", env=env)
    assert out == "via-context"
    log = subprocess.run([sys.executable, "-m", "moorage.cli.main", "audit", "log", "--json", "--data-dir",
                          str(up.data), "--user", "root"], capture_output=True, text=True, check=True)  # fmt: skip
    records = [json.loads(line) for line in log.stdout.splitlines()]
    create = [r for r in records if r["kind"] == "container.create"]
    assert create and create[-1]["summary"] == {"image": BUSYBOX} and create[-1]["status"] == 201


@pytest.mark.parametrize("cli", CLIS)
def test_mutual_tls_identifies_the_client_certificate(up: Up, cli: str) -> None:
    certs = up.data / "carol"
    subprocess.run([sys.executable, "-m", "moorage.cli.main", "cert", "issue", "carol", "--out",
                    str(certs), "--data-dir", str(up.data)], check=True, capture_output=True)  # fmt: skip
    env = {"PATH": os.environ["PATH"], "HOME": str(up.data / "home"), "DOCKER_CERT_PATH": str(certs),
           "DOCKER_TLS_VERIFY": "1", "DOCKER_HOST": f"tcp://127.0.0.1:{up.tls_port}"}  # fmt: skip
    out = run(up, "run", "--rm", BUSYBOX, "echo", "tls-ok", cli=cli, env=env)
    assert out == "tls-ok"
    cid = run(up, "create", BUSYBOX, "true", cli=cli, env=env)
    labels = up.lab.client(1).call("GET", f"/containers/{cid}/json")["Config"]["Labels"]  # the engine's view
    assert labels["io.moorage.owner"] == "carol" and labels["io.moorage.team"] == "payments"
    run(up, "rm", cid)
    # a developer over TLS is still a developer
    refused = subprocess.run([cli, "container", "prune", "-f"], capture_output=True, text=True, env=env)
    assert refused.returncode != 0 and "carol (roles: developer) may not call" in refused.stderr
    # no client certificate: no TLS session at all
    bare = {k: v for k, v in env.items() if k != "DOCKER_CERT_PATH"}
    bare["DOCKER_TLS_VERIFY"] = ""
    no_cert = subprocess.run([cli, "--tls", "--tlscacert", str(certs / "ca.pem"), "ps"],
                             capture_output=True, text=True, env=bare, timeout=30)  # fmt: skip
    assert no_cert.returncode != 0


def pty_session(
    cmd: list[str], env: dict[str, str], send: list[tuple[str, str]], timeout: float = 30, rc: int = 0
) -> str:
    """Run ``cmd`` on a real pseudo-terminal; for each (wait_for, type) pair, wait for
    the text to appear on screen, then type."""
    master, slave = os.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env={**env, "TERM": "xterm"},
                            start_new_session=True)  # fmt: skip
    os.close(slave)
    screen = ""
    deadline = time.monotonic() + timeout
    try:
        for wait_for, typed in send:
            while wait_for not in screen:
                assert time.monotonic() < deadline, f"waiting for {wait_for!r}; screen: {screen!r}"
                ready, _, _ = select.select([master], [], [], 0.5)
                if ready:
                    try:
                        screen += os.read(master, 4096).decode(errors="replace")
                    except OSError:
                        break
            os.write(master, typed.encode())
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    screen += os.read(master, 4096).decode(errors="replace")
                except OSError:
                    break
        assert proc.wait(max(1, deadline - time.monotonic())) == rc, screen
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return screen


@pytest.mark.parametrize("cli", CLIS)
def test_interactive_terminals(up: Up, cli: str) -> None:
    screen = pty_session([cli, "run", "-it", "--rm", BUSYBOX, "sh"], up.env(),
                         [("#", "echo $((6*7))\r"), ("42", "exit\r")])  # fmt: skip
    assert "42" in screen
    name = f"tty{abs(hash(cli)) % 1000}"
    run(up, "run", "-dit", "--name", name, BUSYBOX, "sh")
    try:
        screen = pty_session([cli, "exec", "-it", name, "sh"], up.env(),
                             [("#", "echo exec-$((2+3))\r"), ("exec-5", "exit\r")])  # fmt: skip
        assert "exec-5" in screen
        # attach, then leave with the detach keys: the container keeps running (the CLI
        # exits 1 with "read escape sequence" on a detach, direct to the engine as well)
        screen = pty_session([cli, "attach", name], up.env(),
                             [("", "\recho att-$((1+1))\r"), ("att-2", "\x10\x11")], rc=1)  # fmt: skip
        assert "read escape sequence" in screen
        assert "att-2" in screen
        assert run(up, "inspect", "--format", "{{.State.Running}}", name) == "true"
    finally:
        run(up, "rm", "-f", name)


@pytest.mark.parametrize("cli", CLIS)
def test_events_stream(up: Up, cli: str) -> None:
    since = str(int(time.time()) - 1)
    events = subprocess.Popen([cli, "events", "--since", since, "--format", "{{.Action}} {{.Actor.Attributes.name}}"],
                              stdout=subprocess.PIPE, text=True, env=up.env())  # fmt: skip
    try:
        run(up, "create", "--name", "ev-probe", BUSYBOX, "true", cli=cli)
        run(up, "rm", "ev-probe", cli=cli)
        assert events.stdout is not None
        seen = []
        deadline = time.monotonic() + 20
        while "destroy ev-probe" not in seen:
            assert time.monotonic() < deadline, seen
            seen.append(events.stdout.readline().strip())
        assert "create ev-probe" in seen
    finally:
        events.kill()
        events.wait()


def test_docker_compose_1_29(up: Up, tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed")
    (tmp_path / "docker-compose.yml").write_text(
        "version: '3'\nservices:\n  web:\n    image: moorage-lab/busybox\n"
        "    command: sh -c 'echo compose-says-hi; exec sleep 300'\n"
        "volumes:\n  data: {}\n"
    )
    env = {**up.env(), "COMPOSE_PROJECT_NAME": "mp"}

    def compose(*args: str) -> str:
        proc = subprocess.run(["docker-compose", *args], cwd=tmp_path, capture_output=True, text=True,
                              env=env, timeout=120)  # fmt: skip
        assert proc.returncode == 0, f"{args}: {proc.stdout}{proc.stderr}"
        return proc.stdout + proc.stderr

    compose("up", "-d")
    try:
        assert "Up" in compose("ps")
        deadline = time.monotonic() + 20
        while "compose-says-hi" not in compose("logs"):
            assert time.monotonic() < deadline
            time.sleep(0.5)
        net = up.lab.client(1).call("GET", "/networks/mp_default")["Labels"]  # the engine's view
        assert net["io.moorage.owner"] == "root"
    finally:
        compose("down", "-v")
    assert "mp_web" not in run(up, "ps", "-a", "--format", "{{.Names}}")


def test_the_python_sdk_behaves_the_same_direct_and_through_the_gateway(up: Up) -> None:
    direct = docker_sdk.DockerClient(base_url=up.lab.docker_host(1))
    via = docker_sdk.DockerClient(base_url=f"unix://{up.sock}")
    try:
        assert via.version()["ApiVersion"] == direct.version()["ApiVersion"]
        assert via.ping() is True
        assert via.containers.run(BUSYBOX, ["echo", "sdk"], remove=True) == b"sdk\n"
        c = via.containers.run(BUSYBOX, ["sh", "-c", "echo line1; sleep 300"], detach=True, name="sdk-c")
        try:
            seen_direct = direct.containers.get("sdk-c")
            assert seen_direct.id == via.containers.get("sdk-c").id == c.id
            assert {x.id for x in via.containers.list()} == {x.id for x in direct.containers.list()}
            assert c.exec_run(["echo", "ex"]).output == b"ex\n"
            deadline = time.monotonic() + 10
            while b"line1" not in c.logs():
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert c.logs() == seen_direct.logs()
            assert {i.id for i in via.images.list()} == {i.id for i in direct.images.list()}
            with pytest.raises(docker_sdk.errors.NotFound):
                via.containers.get("no-such-container-here")
        finally:
            c.remove(force=True)
        vol = via.volumes.create("sdk-vol")
        assert direct.volumes.get("sdk-vol").attrs["Labels"]["io.moorage.owner"] == "root"
        vol.remove()
    finally:
        direct.close()
        via.close()


ESCAPES = [
    (["--privileged"], "runtime.privileged"),
    (["-v", "/:/host"], "runtime.host-path"),
    (["--mount", "type=bind,src=/,dst=/h"], "runtime.host-path"),
    (["--pid", "host"], "runtime.host-namespace"),
    (["--cap-add", "sys_admin"], "runtime.capabilities"),
    (["--security-opt", "seccomp=unconfined"], "runtime.unconfined"),
    (["-v", "/var/run/docker.sock:/s"], "runtime.docker-socket"),
]


@pytest.mark.parametrize("cli", CLIS)
@pytest.mark.parametrize(("flags", "rule"), ESCAPES)
def test_baseline_refuses_host_escapes_with_rule_and_fix(
    up: Up, cli: str, flags: list[str], rule: str
) -> None:
    proc = subprocess.run([cli, "run", "--rm", *flags, BUSYBOX, "true"], capture_output=True, text=True,
                          env=up.env(), timeout=60)  # fmt: skip
    assert proc.returncode != 0
    assert "Error response from daemon: moorage: denied by policy builtin-baseline" in proc.stderr, (
        proc.stderr
    )
    assert rule in proc.stderr and "Fix:" in proc.stderr


def test_baseline_refuses_a_local_volume_bound_to_a_host_path_and_exec_privileged(up: Up) -> None:
    vol = subprocess.run([CLIS[0], "volume", "create", "--driver", "local", "--opt", "type=none", "--opt", "o=bind",
                          "--opt", "device=/etc", "etc-vol"], capture_output=True, text=True, env=up.env())  # fmt: skip
    assert vol.returncode != 0 and "runtime.host-path" in vol.stderr
    name = "exec-target"
    run(up, "run", "-d", "--name", name, BUSYBOX, "sleep", "60")
    try:
        ex = subprocess.run([CLIS[0], "exec", "--privileged", name, "true"], capture_output=True, text=True,
                            env=up.env())  # fmt: skip
        assert ex.returncode != 0 and "runtime.privileged" in ex.stderr
        assert run(up, "exec", name, "echo", "plain-exec-ok") == "plain-exec-ok"
    finally:
        run(up, "rm", "-f", name)
    # the refusals are in the trail with the rules that fired
    log = subprocess.run([sys.executable, "-m", "moorage.cli.main", "audit", "log", "--json", "--decision", "deny",
                          "--data-dir", str(up.data)], capture_output=True, text=True, check=True)  # fmt: skip
    rules = {r for line in log.stdout.splitlines() for r in json.loads(line)["rules"]}
    assert {"runtime.host-path", "runtime.privileged"} <= rules
