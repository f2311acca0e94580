"""`moorage lab` as a new user drives it, with the real docker CLIs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import needs_root, unique_name

MOORAGE = [sys.executable, "-m", "moorage.cli.main"]
DOCKER_CLIS = [p for p in ("/usr/local/bin/docker", "/usr/bin/docker") if Path(p).exists()]


def moorage(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*MOORAGE, *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"moorage {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def cli_lab() -> Iterator[str]:
    needs_root()
    name = unique_name("cli")
    moorage("lab", "up", "--name", name, "--nodes", "1")
    try:
        yield name
    finally:
        moorage("lab", "down", "--name", name)


def test_up_status_env_json(cli_lab: str) -> None:
    st = json.loads(moorage("lab", "status", "--name", cli_lab, "--json").stdout)
    assert st["exists"] is True
    assert st["nodes"][0]["running"] is True and st["nodes"][0]["role"] == "standalone"
    env = moorage("lab", "env", "--name", cli_lab).stdout
    assert env.splitlines()[0] == f"export DOCKER_HOST={st['nodes'][0]['docker_host']}"
    human = moorage("lab", "status", "--name", cli_lab).stdout
    assert "NODE" in human and "running" in human


@pytest.mark.parametrize("docker", DOCKER_CLIS)
def test_busybox_image_runs_with_each_docker_cli(cli_lab: str, docker: str) -> None:
    out = moorage("lab", "image", "busybox", "--name", cli_lab, "--json").stdout
    image = json.loads(out)
    assert image["loaded_into"] == [1]
    host = json.loads(moorage("lab", "env", "--name", cli_lab, "--json").stdout)["node1"]
    env = {**os.environ, "DOCKER_HOST": host}
    run = subprocess.run(
        [docker, "run", "--rm", image["ref"], "echo", "hello"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "hello"


def test_errors_are_clear_and_exit_nonzero(cli_lab: str) -> None:
    again = moorage("lab", "up", "--name", cli_lab, check=False)
    assert again.returncode == 1
    assert "already exists" in again.stderr and "Traceback" not in again.stderr
    missing = moorage("lab", "stop-node", "5", "--name", cli_lab, check=False)
    assert missing.returncode == 1 and "there is no node 5" in missing.stderr
    gone = moorage("lab", "env", "--name", unique_name("none"), check=False)
    assert gone.returncode == 1 and "is not up" in gone.stderr


def test_down_twice_is_safe() -> None:
    needs_root()
    name = unique_name("dn")
    moorage("lab", "up", "--name", name)
    assert "removed lab(s): " + name in moorage("lab", "down", "--name", name).stdout
    assert "nothing to remove" in moorage("lab", "down", "--name", name).stdout


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_start_script_is_valid_bash() -> None:
    repo = Path(__file__).resolve().parents[2]
    for script in ("scripts/start.sh", "scripts/test.sh", "scripts/bootstrap.sh", ".ci/run"):
        subprocess.run(["bash", "-n", str(repo / script)], check=True)
