"""Console sessions, CSRF tokens, one-time sign-in links, and what a viewer sees."""

from __future__ import annotations

import os
from pathlib import Path

from moorage.console.auth import Sessions, Viewer
from moorage.console.mapsvg import draw
from moorage.console.views import decision_row, matches, record_visible
from moorage.identity.handoff import HANDOFF_TTL, console_key, digest, read_handoff, sign_handoff
from moorage.identity.interface import Identity
from moorage.identity.principal import Principal


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_cookie_reads_back_and_forgeries_do_not(tmp_path: Path) -> None:
    clock = Clock()
    s = Sessions(tmp_path / "key", clock)
    assert os.stat(tmp_path / "key").st_mode & 0o777 == 0o600
    cookie = s.issue(Identity("oidc", "sub-1", "pat"), ("payments",), ("developer",), lifetime=60)
    v = s.read(cookie)
    assert v is not None and (v.user, v.teams, v.roles, v.auth) == ("pat", ("payments",), ("developer",),
                                                                    "console:oidc")  # fmt: skip
    data, _, mac = cookie.rpartition(".")
    assert s.read(data.replace("A", "B", 1) + "." + mac) is None or data.count("A") == 0
    assert s.read(cookie[:-2]) is None and s.read("") is None and s.read("no-dot") is None
    assert Sessions(tmp_path / "other-key", clock).read(cookie) is None  # another console's key
    assert Sessions(tmp_path / "key", clock).read(cookie) is not None  # the same key after a restart
    clock.now += 61
    assert s.read(cookie) is None  # expired


def test_csrf_tokens_belong_to_one_session(tmp_path: Path) -> None:
    s = Sessions(tmp_path / "key", Clock())
    a = s.read(s.issue(Identity("ldap", "dn", "pat"), ("payments",), ("developer",)))
    b = s.read(s.issue(Identity("ldap", "dn", "pat"), ("payments",), ("developer",)))
    assert a is not None and b is not None
    assert s.check_csrf(a, s.csrf(a)) and not s.check_csrf(a, s.csrf(b)) and not s.check_csrf(a, "")


def test_a_handoff_link_is_signed_short_lived_and_names_the_person(tmp_path: Path) -> None:
    key = console_key(tmp_path / "k")
    assert console_key(tmp_path / "k") == key
    p = Principal("bob", ("search",), ("developer",), "tls")
    token = sign_handoff(key, p, 100.0)
    doc = read_handoff(key, token, 100.0 + HANDOFF_TTL - 1)
    assert doc is not None and (doc["u"], doc["t"], doc["r"], doc["a"]) == (
        "bob",
        ["search"],
        ["developer"],
        "tls",
    )
    assert read_handoff(key, token, 100.0 + HANDOFF_TTL + 1) is None
    assert read_handoff(b"another key", token, 100.0) is None
    assert read_handoff(key, token + "x", 100.0) is None and read_handoff(key, "garbage", 100.0) is None
    assert digest(token) != digest(sign_handoff(key, p, 100.0)) and token not in digest(token)


def _viewer(teams: tuple[str, ...], roles: tuple[str, ...] = ("developer",)) -> Viewer:
    return Viewer("pat", teams, roles, "console:oidc", 1e12, "n")


def test_a_developer_sees_their_teams_records_and_an_officer_all() -> None:
    dev, officer = _viewer(("payments",)), _viewer(("security",), ("security-officer",))
    theirs = {"user": "bob", "teams": ["search"], "decision": "deny"}
    ours = {"user": "alice", "teams": ["payments"], "decision": "deny"}
    mine = {"user": "pat", "teams": [], "decision": "allow"}
    assert record_visible(dev, ours) and record_visible(dev, mine) and not record_visible(dev, theirs)
    assert record_visible(officer, theirs)
    assert not dev.sees("") and not dev.sees("search") and dev.sees("payments") and officer.sees("")


def test_a_decision_row_carries_rule_field_value_and_fix() -> None:
    record = {"time": 0, "user": "alice", "teams": ["payments"], "kind": "container.create", "decision": "deny",
              "rules": ["runtime.privileged"], "object_ref": None,
              "reason": "denied by policy builtin-baseline: runtime.privileged at HostConfig.Privileged (True): "
                        "privileged mode. Fix: drop --privileged. To ask for an exception: ..."}  # fmt: skip
    row = decision_row(7, record)
    assert row["seq"] == 7 and row["rules"] == "runtime.privileged"
    assert row["violations"] == [{"rule": "runtime.privileged", "path": "HostConfig.Privileged", "value": "True",
                                  "message": "privileged mode", "fix": "drop --privileged"}]  # fmt: skip
    assert matches(row, record, "payments", "alice", "runtime.*", "deny")
    assert not matches(row, record, "search", "", "", "")
    assert not matches(row, record, "", "", "network.host", "")
    assert not matches(row, record, "", "", "", "allow")


def test_the_map_drawing_escapes_labels_and_links_each_node() -> None:
    graph = {"nodes": [{"id": "service:s1", "kind": "service", "label": "<script>x</script>",
                        "link": "/workloads/service/s1"},
                       {"id": "image:sha256:1", "kind": "image", "label": "busybox:1", "link": "/images?id=1"}],
             "edges": [{"from": "image:sha256:1", "to": "service:s1"}]}  # fmt: skip
    svg = draw(graph, [{"workload": "service:s1"}])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'href="/workloads/service/s1"' in svg and svg.count("<line") == 1 and "exposed" in svg


def test_a_compliance_warning_is_recorded_for_the_owners_team() -> None:
    import asyncio

    from moorage.admission.compliance import Item, ObjectReport
    from moorage.console.serve import Recorder

    class Trail:
        def __init__(self) -> None:
            self.records: list[object] = []

        async def record_async(self, record: object, durable: bool) -> None:
            assert durable
            self.records.append(record)

    trail = Trail()
    item = Item("resources.memory-required", "HostConfig.Memory", "0", "a memory limit is required",
                "add --memory 512m", "tight", "enforce", "warn", "fail")  # fmt: skip
    report = ObjectReport("container", "c1", "web", "payments", "alice", "busybox:1", "k", (item,), 1.0)
    asyncio.run(Recorder(trail).warn(report))
    (record,) = trail.records
    assert (record.kind, record.user, record.teams, record.decision) == (  # type: ignore[attr-defined]
        "compliance.warn",
        "alice",
        ("payments",),
        "warn",
    )
    assert "HostConfig.Memory" in record.reason and record.rules == ("resources.memory-required",)  # type: ignore[attr-defined]


def test_sign_in_returns_only_to_a_path_on_the_console_and_feed_events_stay_one_line() -> None:
    from moorage.console.app import _one_line, _safe_next

    assert (
        _safe_next("/map?team=payments&package=requests%402.19.0")
        == "/map?team=payments&package=requests%402.19.0"
    )
    for hostile in ("//evil.example", "/\\evil.example", "/\t/evil.example", "https://evil.example", "/x\nSet-Cookie: a",
                    "", "javascript:alert(1)"):  # fmt: skip
        assert _safe_next(hostile) == "/"
    assert "\r" not in _one_line("<td>a\r\nevent: forged\rdata: x</td>") and "\n" not in _one_line("a\nb")


def test_non_ascii_cookies_and_tokens_are_refused_not_errors(tmp_path: Path) -> None:
    s = Sessions(tmp_path / "key", Clock())
    v = s.read(s.issue(Identity("ldap", "dn", "pat"), ("payments",), ("developer",)))
    assert v is not None
    assert s.read("eyJ1IjoicGF0In0.é") is None and not s.check_csrf(v, "ü")
    assert read_handoff(b"k" * 32, "eyJ1IjoicGF0In0.ß", 0.0) is None
