"""`moorage policy check -- docker ...`: the real docker CLIs build the request
against the dry-run endpoint; the report and exit code follow the policy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.gateway_harness import DOCKER_CLIS


def check(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "import sys; from moorage.cli.main import main; sys.exit(main())",
           "policy", "check", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("cli", DOCKER_CLIS)
@pytest.mark.parametrize(
    ("command", "rule"),
    [
        (["run", "--privileged", "busybox:1"], "runtime.privileged"),
        (["run", "-v", "/var/run/docker.sock:/s", "busybox:1"], "runtime.docker-socket"),
        (["run", "--cap-add", "sys_admin", "busybox:1"], "runtime.capabilities"),
        (["run", "--security-opt", "seccomp=unconfined", "busybox:1"], "runtime.unconfined"),
        (["service", "create", "--mount", "type=bind,src=/,dst=/h", "busybox:1"], "runtime.host-path"),
        (
            ["volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=/etc", "v"],
            "runtime.host-path",
        ),
    ],
)
def test_docker_commands_are_checked_offline(cli: str, command: list[str], rule: str) -> None:
    out = check("--json", "--", cli, *command)
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    denied = [v["rule"] for r in report["results"] for v in r["violations"] if v["level"] == "deny"]
    assert rule in denied


@pytest.mark.parametrize("cli", DOCKER_CLIS)
def test_a_clean_command_passes_and_sarif_is_written(cli: str) -> None:
    out = check("--", cli, "run", "--rm", "--read-only", "--user", "1000", "busybox:1", "true")
    assert out.returncode == 0, out.stderr + out.stdout
    assert "container.create: allowed" in out.stdout
    sarif = json.loads(check("--sarif", "--", cli, "run", "--privileged", "busybox:1").stdout)
    assert sarif["runs"][0]["results"][0]["ruleId"] == "runtime.privileged"


def test_a_command_that_creates_nothing_is_a_usage_error() -> None:
    out = check("--", DOCKER_CLIS[0], "version")
    assert out.returncode == 2 and "made no request policy checks" in out.stderr
