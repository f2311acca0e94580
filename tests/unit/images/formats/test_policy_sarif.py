"""formats/sarif.py writes ``moorage policy check``'s SARIF exactly as the command's
own writer did before there was one SARIF writer (the hand-written expectation), and
``moorage policy check`` builds its run with ``cli.policy._report_run``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from moorage import __version__
from moorage.cli import policy as cli_policy
from moorage.images.formats.sarif import sarif_log

# What the policy check decided: objects, each with denials and warnings.
DOCS = {
    "runtime.privileged": SimpleNamespace(
        checks="containers run privileged", why="privileged is root on the host", fix="drop privileged"
    ),
}


def _violation(rule: str, path: str, value: Any, message: str, fix: str, policy: str) -> SimpleNamespace:
    finding = SimpleNamespace(rule=rule, path=path, value=value, message=message, fix=fix)
    return SimpleNamespace(finding=finding, policy=policy)


def _checked() -> list[SimpleNamespace]:
    web = SimpleNamespace(
        name="services.web",
        line=2,
        decision=SimpleNamespace(
            denials=[
                _violation("runtime.privileged", "HostConfig.Privileged", True, "privileged", "remove it", "baseline"),
                _violation("runtime.host-path", "HostConfig.Binds", ["/:/host"], "host path /", "use a volume", "baseline"),
            ],
            warnings=[_violation("runtime.privileged", "HostConfig.Privileged", True, "again", "x", "restricted")],
        ),
    )  # fmt: skip
    ok = SimpleNamespace(name="services.ok", line=7, decision=SimpleNamespace(denials=[], warnings=[
        _violation("runtime.cap-add", "HostConfig.CapAdd", ["NET_ADMIN"], "adds a capability", "drop it", "restricted"),
    ]))  # fmt: skip
    return [web, ok]


def _expected(source: str) -> dict[str, Any]:
    """cli/policy.py's SARIF for ``_checked()``, written out by hand."""

    def loc(name: str, path: str, line: int) -> dict[str, Any]:
        out: dict[str, Any] = {"logicalLocations": [{"fullyQualifiedName": f"{name}:{path}"}]}
        if source != "(command)":
            out["physicalLocation"] = {"artifactLocation": {"uri": source}, "region": {"startLine": line}}
        return out

    def result(
        rule: str, level: str, text: str, name: str, path: str, line: int, policy: str
    ) -> dict[str, Any]:
        return {"ruleId": rule, "level": level, "message": {"text": text}, "locations": [loc(name, path, line)],
                "properties": {"policy": policy, "field": path}}  # fmt: skip

    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "moorage", "informationUri": "https://moorage.dev",
                                "semanticVersion": __version__, "rules": [
                {"id": "runtime.privileged", "shortDescription": {"text": "containers run privileged"},
                 "fullDescription": {"text": "privileged is root on the host"}, "help": {"text": "drop privileged"}},
                {"id": "runtime.host-path", "shortDescription": {"text": "host path /"},
                 "fullDescription": {"text": "host path /"}, "help": {"text": "use a volume"}},
                {"id": "runtime.cap-add", "shortDescription": {"text": "adds a capability"},
                 "fullDescription": {"text": "adds a capability"}, "help": {"text": "drop it"}},
            ]}},
            "results": [
                result("runtime.privileged", "error", "services.web: privileged (HostConfig.Privileged = True). Fix: remove it",
                       "services.web", "HostConfig.Privileged", 2, "baseline"),
                result("runtime.host-path", "error", "services.web: host path / (HostConfig.Binds = ['/:/host']). Fix: use a volume",
                       "services.web", "HostConfig.Binds", 2, "baseline"),
                result("runtime.privileged", "warning", "services.web: again (HostConfig.Privileged = True). Fix: x",
                       "services.web", "HostConfig.Privileged", 2, "restricted"),
                result("runtime.cap-add", "warning", "services.ok: adds a capability (HostConfig.CapAdd = ['NET_ADMIN']). Fix: drop it",
                       "services.ok", "HostConfig.CapAdd", 7, "restricted"),
            ],
            "properties": {"policyVersion": "v-123"},
        }],
    }  # fmt: skip


@pytest.mark.parametrize("source", ["compose.yaml", "(command)"])
def test_policy_check_sarif_is_reproduced(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # moorage policy check builds the neutral run and renders it with the one writer
    monkeypatch.setattr(cli_policy, "lookup", DOCS.get)
    run = cli_policy._report_run(_checked(), source, SimpleNamespace(version="v-123"))  # type: ignore[arg-type]
    assert sarif_log(run) == _expected(source)
