"""The console end to end: `moorage up` on a lab Swarm with ten services of three
teams, a real OpenID provider (code flow), Debian's chromium driven by Playwright.

Screenshots of each page go to $MOORAGE_ARTIFACTS/console (default
/tmp/moorage-artifacts/console)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright import sync_api as playwright_api

from moorage.images.vulns.osv import OsvDatabase
from moorage.lab import Lab
from moorage.lab.images import BUSYBOX_REF
from tests.conftest import unique_name
from tests.gateway_harness import USERS, RunningGateway, docker, ok
from tests.oidc_harness import OidcServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OSV = Path(__file__).parent.parent / "fixtures" / "osv" / "pypi"
ARTIFACTS = Path(os.environ.get("MOORAGE_ARTIFACTS", "/tmp/moorage-artifacts")) / "console"
TEAMS = {"alice": ("payments", 4), "bob": ("search", 3), "sid": ("security", 3)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Console:
    url: str
    gw: RunningGateway
    services: dict[str, list[str]]  # team -> service names
    vulnerable: str  # the service whose image has requests 2.19.0
    registry: str


def _direct(lab: Lab, *args: str) -> str:
    env = {**os.environ, "DOCKER_HOST": lab.docker_host(1), "DOCKER_BUILDKIT": "0"}
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, f"docker {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def _push(lab: Lab, ref: str) -> None:
    repo, _, tag = ref.rpartition(":")
    lab.client(1).call(
        "POST", f"/images/{repo}/push?tag={tag}", headers={"X-Registry-Auth": "e30="}, timeout=120
    )


@pytest.fixture(scope="module")
def console(swarm_lab: Lab) -> Iterator[Console]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is not installed: run the README's test command (scripts/bootstrap.sh)"
        )
    name = unique_name("cs")
    data = Path(f"/tmp/moorage-{name}")
    data.mkdir(mode=0o755, parents=True)
    port = _free_port()
    idp = OidcServer(data / "oidc", {"pat": ["payments-dev"], "olivia": ["security-officers"],
                                     "bea": ["search-dev"]}, console_redirect=f"http://127.0.0.1:{port}/callback")  # fmt: skip
    proc = None
    try:
        idp.start()
        reg = swarm_lab.registry
        assert reg
        base, vuln = f"{reg}/lab/busybox:1", f"{reg}/trust/oldpy:1"
        _direct(swarm_lab, "tag", BUSYBOX_REF, base)
        _push(swarm_lab, base)
        ctx = data / "ctx"
        info = ctx / "site" / "requests-2.19.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: requests\nVersion: 2.19.0\n")
        (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX_REF}\nCOPY site /usr/lib/python3.11/site-packages\n")
        _direct(swarm_lab, "build", "-q", "-t", vuln, str(ctx))
        _push(swarm_lab, vuln)
        OsvDatabase(data / "vulndb.sqlite").update(str(OSV))
        (data / "users.yaml").write_text(json.dumps(USERS))
        (data / "identity.yaml").write_text(json.dumps({
            "oidc": {"issuer": idp.issuer, "client_id": "moorage", "console_client_id": "moorage-console"},
            "mapping": {"groups": {"payments-dev": {"teams": ["payments"], "roles": ["developer"]},
                                   "search-dev": {"teams": ["search"], "roles": ["developer"]},
                                   "security-officers": {"teams": ["security"], "roles": ["security-officer"]}},
                        "lifetime": "8h"}}))  # fmt: skip
        sock = data / "docker.sock"
        log = open(data / "up.log", "wb")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(
            [sys.executable, "-m", "moorage.cli.main", "up", "--upstream", swarm_lab.docker_host(1), "--data-dir",
             str(data), "--listen", str(sock), "--tls-listen", "127.0.0.1:0", "--identity",
             str(data / "identity.yaml"), "--console", f"127.0.0.1:{port}", "--cluster", "off", "--workers", "1",
             "--context", ""], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 60
        while b"Use it:" not in (data / "up.log").read_bytes():
            assert time.monotonic() < deadline and proc.poll() is None, (data / "up.log").read_text()
            time.sleep(0.1)
        gw = RunningGateway.__new__(RunningGateway)
        gw.sock = sock
        services: dict[str, list[str]] = {}
        vulnerable = f"{name}-pay-api"
        for user, (team, n) in TEAMS.items():
            for i in range(n):
                svc = vulnerable if (user, i) == ("alice", 0) else f"{name}-{team[:3]}-{i}"
                args = [
                    "service",
                    "create",
                    "--detach",
                    "--name",
                    svc,
                    "--replicas",
                    "1",
                    "--limit-memory",
                    "64m",
                ]
                if svc == vulnerable:
                    args += ["--publish", "published=18080,target=80,mode=host", vuln]
                else:
                    args += [base]
                ok(docker(gw, *args, "sleep", "600", user=user))
                services.setdefault(team, []).append(svc)
        yield Console(f"http://127.0.0.1:{port}", gw, services, vulnerable, reg)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(15)
        env = {**os.environ, "DOCKER_HOST": swarm_lab.docker_host(1)}
        names = subprocess.run(["docker", "service", "ls", "-q", "--filter", f"name={name}"], env=env,
                               capture_output=True, text=True).stdout.split()  # fmt: skip
        if names:
            subprocess.run(["docker", "service", "rm", *names], env=env, capture_output=True)
        idp.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def _login(browser: object, c: Console, who: str) -> object:
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()  # type: ignore[attr-defined]
    page.goto(c.url + "/decisions")
    assert "/login" in page.url
    page.click("#oidc")
    page.fill("input[name=login]", who)
    page.fill("input[name=password]", "any")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if "/decisions" not in page.url:  # the provider's consent step
        page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/decisions.*"), timeout=15000)
    return page


def _shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_a_denial_reaches_the_feed_of_its_team_live(console: Console, browser: object) -> None:
    page = _login(browser, console, "pat")
    page.wait_for_selector("#feed")  # type: ignore[attr-defined]
    time.sleep(1.0)  # the event stream connects
    denied = docker(console.gw, "run", "--rm", "--privileged", f"{console.registry}/lab/busybox:1", "true",
                    user="alice")  # fmt: skip
    assert denied.returncode != 0 and "runtime.privileged" in denied.stderr, denied.stderr
    started = time.monotonic()
    row = page.wait_for_selector("#feed tr.decision >> text=runtime.privileged", timeout=5000)  # type: ignore[attr-defined]
    seen = time.monotonic() - started
    print(f"denial seen in the feed {seen:.3f} s after the client got its answer")
    assert row is not None
    assert "HostConfig.Privileged" in page.inner_text("#feed")  # type: ignore[attr-defined]
    _shot(page, "decisions")


def test_a_developer_sees_only_their_team_in_every_page(console: Console, browser: object) -> None:
    page = _login(browser, console, "pat")
    others = console.services["search"] + console.services["security"]
    mine = console.services["payments"]
    deadline = time.monotonic() + 60
    while True:  # the first sweep judges what runs
        page.goto(console.url + "/compliance")  # type: ignore[attr-defined]
        text = page.inner_text("main")  # type: ignore[attr-defined]
        if all(s in text for s in mine) or time.monotonic() > deadline:
            break
        time.sleep(2)
    for path in ("/decisions", "/audit", "/images", "/nodes", "/exceptions", "/policies", "/teams", "/compliance",
                 "/map", "/map.json", "/map.dot", "/compliance.json"):  # fmt: skip
        page.goto(console.url + path)  # type: ignore[attr-defined]
        body = page.content()  # type: ignore[attr-defined]
        for other in others:
            assert other not in body, f"{path} shows {other}"
        if "." not in path:
            _shot(page, path.strip("/"))
    page.goto(console.url + "/compliance")  # type: ignore[attr-defined]
    text = page.inner_text("main")  # type: ignore[attr-defined]
    assert all(s in text for s in mine), text


def test_an_exception_is_approved_by_a_second_person(console: Console, browser: object) -> None:
    dev = _login(browser, console, "pat")
    dev.goto(console.url + "/exceptions")  # type: ignore[attr-defined]
    dev.fill("input[name=rule]", "runtime.privileged")  # type: ignore[attr-defined]
    dev.fill("input[name=reason]", "console e2e: debugging a kernel module")  # type: ignore[attr-defined]
    dev.click("#request")  # type: ignore[attr-defined]
    message = dev.inner_text("#message")  # type: ignore[attr-defined]
    item = re.search(r"requested (\S+):", message)
    assert item, message
    assert dev.query_selector(f"#exception-{item.group(1)} button.approve") is None  # type: ignore[attr-defined]
    officer = _login(browser, console, "olivia")
    officer.goto(console.url + "/exceptions")  # type: ignore[attr-defined]
    officer.click(f"#exception-{item.group(1)} button.approve")  # type: ignore[attr-defined]
    officer.wait_for_selector(f"#exception-{item.group(1)} .status >> text=approved")  # type: ignore[attr-defined]
    _shot(officer, "exceptions")
    audit = subprocess.run([sys.executable, "-m", "moorage.cli.main", "audit", "log", "--json", "--data-dir",
                            str(console.gw.sock.parent)], capture_output=True, text=True)  # fmt: skip
    assert "exception.approve" in audit.stdout and "olivia" in audit.stdout


def test_the_map_finds_the_workload_with_a_vulnerable_package(console: Console, browser: object) -> None:
    page = _login(browser, console, "pat")
    page.goto(console.url + "/map?package=requests")  # type: ignore[attr-defined]
    table = page.inner_text("#exposures")  # type: ignore[attr-defined]
    assert console.vulnerable in table and "2.19.0" in table, table
    assert console.registry in table and "18080" in table, table
    _shot(page, "map")
    page.click(f"svg.map a[data-node^='service:'] >> text={console.vulnerable[:22]}")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r".*/workloads/service/.*"))  # type: ignore[attr-defined]
    page.goto(console.url + "/map")  # type: ignore[attr-defined]
    links = page.eval_on_selector_all("svg.map a", "els => els.map(e => e.getAttribute('href'))")  # type: ignore[attr-defined]
    assert any(h.startswith("/images/") for h in links) and any(h.startswith("/nodes/") for h in links), links
    for href in set(links):  # every node's link opens its page
        page.goto(console.url + href)  # type: ignore[attr-defined]
        assert page.query_selector("#error") is None, (href, page.inner_text("main"))  # type: ignore[attr-defined]
    bea = _login(browser, console, "bea")  # search's developer: none of payments' exposures
    bea.goto(console.url + "/map?package=requests")  # type: ignore[attr-defined]
    assert console.vulnerable not in bea.content()  # type: ignore[attr-defined]


def _handoff_tls(c: Console, data: Path, user: str) -> str:
    """A sign-in link asked for over the TLS listener with a client certificate."""
    import http.client
    import ssl

    certs = data / f"certs-{user}"
    ok_proc = subprocess.run([sys.executable, "-m", "moorage.cli.main", "cert", "issue", user, "--out", str(certs),
                              "--data-dir", str(data)], capture_output=True, text=True)  # fmt: skip
    assert ok_proc.returncode == 0, ok_proc.stderr
    port = int(re.search(r"tls\s+tcp://127\.0\.0\.1:(\d+)", (data / "up.log").read_text()).group(1))  # type: ignore[union-attr]
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    conn.request(
        "POST", "/moorage/v1/console/session", body=b"{}", headers={"Content-Type": "application/json"}
    )
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    assert resp.status == 200, doc
    return str(doc["url"])


def test_a_client_certificate_or_a_uid_signs_in_once(console: Console, browser: object) -> None:
    data = console.gw.sock.parent
    url = _handoff_tls(console, data, "bob")
    assert url.startswith(console.url + "/session/")
    page = browser.new_context().new_page()  # type: ignore[attr-defined]
    page.goto(url)
    assert "/decisions" in page.url and "bob" in page.inner_text("header")
    page.goto(console.url + "/compliance")
    body = page.content()
    assert all(s in body for s in console.services["search"])
    assert not any(s in body for s in console.services["payments"] + console.services["security"])
    replay = browser.new_context().new_page()  # type: ignore[attr-defined]
    replay.goto(url)  # a link works once
    assert "/login" in replay.url or "was used" in replay.content()
    forged = browser.new_context().new_page()  # type: ignore[attr-defined]
    forged.goto(url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB"))
    assert "bob" not in forged.inner_text("header")
    # the unix socket: the person behind the uid (moorage console as alice)
    cli = subprocess.run(["setpriv", "--reuid=52001", "--regid=52001", "--clear-groups", sys.executable, "-m",
                          "moorage.cli.main", "console", "--host", f"unix://{console.gw.sock}", "--json"],
                         capture_output=True, text=True, env={**os.environ, "HOME": "/tmp"})  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    alice = browser.new_context().new_page()  # type: ignore[attr-defined]
    alice.goto(json.loads(cli.stdout)["url"])
    assert "alice" in alice.inner_text("header") and "payments" in alice.inner_text("header")


def test_the_policy_dry_run_lists_who_a_change_would_catch(console: Console, browser: object) -> None:
    doc = ("apiVersion: moorage.dev/v1\nkind: Policy\nmetadata: {name: cpus-required}\n"
           "spec:\n  mode: enforce\n  resources: {require: [cpus]}\n")  # fmt: skip
    for who, expected in (("pat", console.services["payments"]),
                          ("olivia", [s for team in console.services.values() for s in team])):  # fmt: skip
        page = _login(browser, console, who)
        page.goto(console.url + "/policies")  # type: ignore[attr-defined]
        page.fill("textarea[name=document]", doc)  # type: ignore[attr-defined]
        page.click("#dry-run")  # type: ignore[attr-defined]
        result = page.inner_text("main")  # type: ignore[attr-defined]
        caught = [s for team in console.services.values() for s in team if f"service/{s}" in result]
        assert sorted(caught) == sorted(expected), (who, result)
        assert "resources.cpus-required" in result or "cpus" in result
    _shot(page, "policies-dry-run")
    broken = _login(browser, console, "pat")
    broken.goto(console.url + "/policies")  # type: ignore[attr-defined]
    broken.fill("textarea[name=document]", "apiVersion: moorage.dev/v1\nkind: Policy\nspec: {mode: block}\n")  # type: ignore[attr-defined]
    broken.click("#dry-run")  # type: ignore[attr-defined]
    assert broken.query_selector("#dry-error") is not None  # type: ignore[attr-defined]


def test_the_gateway_judges_a_new_workload_by_itself(console: Console, browser: object) -> None:
    """No sweep is asked for: the gateway's sweeper sees the new service within its poll."""
    name = console.services["payments"][0].rsplit("-", 2)[0] + "-late"
    ok(docker(console.gw, "service", "create", "--detach", "--name", name, "--limit-memory", "64m",
              f"{console.registry}/lab/busybox:1", "sleep", "600", user="alice"))  # fmt: skip
    page = _login(browser, console, "pat")
    deadline = time.monotonic() + 60
    objects: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        page.goto(console.url + "/compliance.json")  # type: ignore[attr-defined]
        objects = json.loads(page.inner_text("body"))["objects"]  # type: ignore[attr-defined]
        if any(o["name"] == name for o in objects):
            break
        time.sleep(1)
    mine = next(o for o in objects if o["name"] == name)
    assert mine["team"] == "payments" and mine["status"] in ("pass", "warn", "fail")
    assert all(o["team"] == "payments" for o in objects)  # a developer's export holds their team only
