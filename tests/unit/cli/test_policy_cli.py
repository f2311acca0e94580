"""moorage policy check/test/explain/validate: reports, SARIF and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moorage.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "policies"
COMPOSE = """\
services:
  web:
    image: busybox:1.36
    privileged: true
    volumes: ["/:/host"]
  ok:
    image: busybox:1.36
    cap_drop: [ALL]
volumes:
  etc:
    driver: local
    driver_opts: {type: none, o: bind, device: /etc}
"""


def test_check_a_compose_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(COMPOSE)
    assert main(["policy", "check", "--json", str(compose)]) == 1
    report = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in report["results"]}
    assert not by_name["services.web"]["allowed"]
    assert {v["rule"] for v in by_name["services.web"]["violations"] if v["level"] == "deny"} == {
        "runtime.privileged",
        "runtime.host-path",
    }
    assert by_name["services.ok"]["allowed"] and not by_name["volumes.etc"]["allowed"]
    compose.write_text("services:\n  ok:\n    image: busybox:1.36\n")
    assert main(["policy", "check", str(compose)]) == 0
    assert "services.ok: allowed" in capsys.readouterr().out


def test_sarif_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(COMPOSE)
    assert main(["policy", "check", "--sarif", str(compose)]) == 1
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["name"] == "moorage"
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    errors = [r for r in run["results"] if r["level"] == "error"]
    assert {r["ruleId"] for r in errors} == {"runtime.privileged", "runtime.host-path"}
    assert {r["ruleId"] for r in run["results"]} <= rule_ids
    loc = errors[0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == str(compose) and loc["region"]["startLine"] == 2


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert main(["policy", "check", str(tmp_path / "missing.yaml")]) == 2
    bad = tmp_path / "compose.yaml"
    bad.write_text("services: [")
    assert main(["policy", "check", str(bad)]) == 2
    assert main(["policy", "check", "--policy", str(tmp_path / "nope"), str(bad)]) == 2
    assert main(["policy", "explain", "no.such-rule"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["policy", "check", "--json", "--sarif", "x"])
    assert exc.value.code == 2


def test_policy_test_runner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test", str(EXAMPLES / "tests")]) == 0
    assert "7 passed, 0 failed" in capsys.readouterr().out
    failing = tmp_path / "my-test.yaml"
    failing.write_text(
        "cases:\n  - name: wrong\n    body: {Image: busybox:1, HostConfig: {Privileged: true}}\n"
        "    expect: allow\n"
    )
    assert main(["policy", "test", "--json", str(tmp_path)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] == 1 and "expected allow, got deny" in out["results"][0]["detail"]
    failing.write_text("cases:\n  - name: broken\n    expect: maybe\n")
    assert main(["policy", "test", str(tmp_path)]) == 2


def test_explain_validate_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "explain", "runtime.docker-socket"]) == 0
    assert "controls the host" in capsys.readouterr().out
    assert main(["policy", "explain"]) == 0
    assert "quota.containers" in capsys.readouterr().out
    assert main(["policy", "validate", str(EXAMPLES)]) == 0
    assert "payments (enforce)" in capsys.readouterr().out
    assert main(["policy", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Moorage policy document"
