"""`moorage login --ldap` against a real slapd: plain docker (both CLIs) works through
the context the login wrote, as the directory's groups say; revocation, logout and
expiry take effect on the next request with a message that says what to do."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap3
import pytest
import requests

from moorage.lab import Lab
from moorage.lab.images import BUSYBOX_REF, build_busybox, load_into
from tests.conftest import needs_root, unique_name
from tests.gateway_harness import DOCKER_CLIS, UIDS
from tests.ldap_harness import ADMIN_DN, ADMIN_PASSWORD, PEOPLE, SUFFIX, Slapd
from tests.oidc_harness import OidcServer, approve

MOORAGE = [sys.executable, "-m", "moorage.cli.main"]
SLAPD: list[Slapd] = []  # the module's directory, for tests that edit it
IDP: list[OidcServer] = []


@dataclass
class Env:
    data: Path
    home: Path
    port: int
    lab: Lab

    def env(self) -> dict[str, str]:
        return {"PATH": os.environ["PATH"], "HOME": str(self.home), "NO_COLOR": "1", "DOCKER_BUILDKIT": "0"}

    def login(self, user: str, password: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *MOORAGE,
                "login",
                "--ldap",
                "--host",
                f"tcp://127.0.0.1:{self.port}",
                "--ca",
                str(self.data / "pki/ca.pem"),
                "--context",
                "mlogin",
                "--username",
                user,
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**self.env(), "MOORAGE_PASSWORD": password},
        )

    def docker(
        self, *args: str, cli: str = DOCKER_CLIS[0], context: str = "mlogin"
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [cli, "--context", context, *args], capture_output=True, text=True, timeout=120, env=self.env()
        )

    def moorage(self, *args: str, admin: bool = False) -> subprocess.CompletedProcess[str]:
        env = self.env()
        if admin:
            env["DOCKER_HOST"] = f"unix://{self.data / 'docker.sock'}"
        return subprocess.run([*MOORAGE, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    needs_root()
    name = unique_name("li")
    lab = Lab(name)
    data = Path(f"/tmp/moorage-{name}")
    slapd = Slapd(data / "slapd")
    # ID tokens live 1 s (plus the gateway's 60 s of leeway): the expiry test waits them out
    idp = OidcServer(data / "oidc", {"pat": ["payments-dev"], "remy": []}, id_token_ttl=1)
    proc = None
    try:
        slapd.start()
        SLAPD.append(slapd)
        idp.start()
        IDP.append(idp)
        lab.up(nodes=1, registry=True, owner_pid=os.getpid())
        load_into(build_busybox(), [lab.client(1)])
        (data / "home").mkdir(parents=True)
        (data / "users.yaml").write_text(
            f"users:\n  alice: {{uid: {UIDS['alice']}, teams: [payments], roles: [developer]}}\n"
        )
        (data / "identity.yaml").write_text(
            json.dumps(
                {
                    "ldap": {
                        "url": slapd.url,
                        "user_dn": f"uid={{user}},ou=people,{SUFFIX}",
                        "group_base": f"ou=groups,{SUFFIX}",
                        "ca_file": slapd.ca_file,
                        "bind_dn": ADMIN_DN,
                        "bind_password": ADMIN_PASSWORD,
                    },
                    "oidc": {"issuer": idp.issuer, "client_id": "moorage"},
                    "mapping": {
                        "groups": {
                            "payments-dev": {"teams": ["payments"], "roles": ["developer"]},
                            "search-dev": {"teams": ["search"], "roles": ["developer"]},
                        },
                        "lifetime": "8h",
                        "max_lifetime": "12h",
                    },
                }
            )
        )
        log = open(data / "up.log", "wb")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(
            [
                *MOORAGE,
                "up",
                "--upstream",
                lab.docker_host(1),
                "--data-dir",
                str(data),
                "--tls-listen",
                "127.0.0.1:0",
                "--identity",
                str(data / "identity.yaml"),
                "--identity-sync",
                "1",
                "--context",
                "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while b"Use it:" not in (data / "up.log").read_bytes():
            assert time.monotonic() < deadline and proc.poll() is None, (data / "up.log").read_text()
            time.sleep(0.1)
        port = int(re.search(r"tls\s+tcp://127\.0\.0\.1:(\d+)", (data / "up.log").read_text()).group(1))  # type: ignore[union-attr]
        yield Env(data, data / "home", port, lab)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        lab.down()
        slapd.stop()
        idp.stop()
        shutil.rmtree(data, ignore_errors=True)


def test_a_directory_login_gives_plain_docker_a_short_lived_identity(env: Env) -> None:
    out = env.login("pat", PEOPLE["pat"][0])
    assert out.returncode == 0, out.stderr
    assert "developer of payments" in out.stdout
    key = env.home / ".docker/contexts/tls"
    assert [p.stat().st_mode & 0o777 for p in key.rglob("key.pem")] == [0o600]
    for cli in DOCKER_CLIS:
        ran = env.docker("run", "--rm", BUSYBOX_REF, "echo", "hello-from-pat", cli=cli)
        assert ran.returncode == 0 and "hello-from-pat" in ran.stdout, ran.stderr
    who = json.loads(env.moorage("whoami", "--context", "mlogin", "--json").stdout)
    assert who["user"] == "pat" and who["teams"] == ["payments"] and who["auth"] == "login:ldap"
    assert who["subject"] == f"uid=pat,ou=people,{SUFFIX}" and who["groups"] == ["payments-dev"]
    trail = env.moorage("audit", "log", "--data-dir", str(env.data), "--json").stdout
    logins = [json.loads(x) for x in trail.splitlines() if '"moorage.login"' in x]
    assert logins and logins[-1]["summary"]["serial"] == who["serial"]
    runs = [json.loads(x) for x in trail.splitlines() if '"container.create"' in x]
    assert runs and runs[-1]["login"] == {
        "provider": "ldap",
        "subject": f"uid=pat,ou=people,{SUFFIX}",
        "groups": ["payments-dev"],
        "serial": who["serial"],
    }


@pytest.mark.parametrize(
    ("user", "password", "status"),
    [("pat", "wrong", "401"), ("nobody-here", "x", "401"), ("remy", PEOPLE["remy"][0], "403")],
)
def test_refused_logins_say_why_and_are_recorded(env: Env, user: str, password: str, status: str) -> None:
    out = env.login(user, password)
    assert out.returncode != 0 and "login refused" in out.stderr, out.stderr
    trail = env.moorage("audit", "log", "--data-dir", str(env.data), "--json").stdout
    refused = [json.loads(x) for x in trail.splitlines() if '"moorage.login"' in x and '"deny"' in x]
    assert any(r["summary"].get("username") == user for r in refused)


def test_revocation_counts_on_the_next_request(env: Env) -> None:
    assert env.login("pat", PEOPLE["pat"][0]).returncode == 0
    assert env.docker("ps").returncode == 0
    revoked = env.moorage("cert", "revoke", "--user", "pat", admin=True)
    assert revoked.returncode == 0, revoked.stderr
    after = env.docker("ps")
    assert after.returncode != 0 and "revoked" in after.stderr and "moorage login" in after.stderr


def test_logout_ends_the_identity(env: Env) -> None:
    assert env.login("pat", PEOPLE["pat"][0]).returncode == 0
    tls = next((env.home / ".docker/contexts/tls").rglob("cert.pem")).parent
    saved = {n: (tls / n).read_bytes() for n in ("cert.pem", "key.pem")}
    out = env.moorage("logout", "--context", "mlogin")
    assert out.returncode == 0, out.stderr
    assert env.docker("ps").returncode != 0  # the files are gone
    for n, data in saved.items():  # a copy kept from before is refused too
        (tls / n).write_bytes(data)
    again = env.docker("ps")
    assert again.returncode != 0 and "revoked" in again.stderr, again.stderr


def test_an_expired_certificate_says_run_moorage_login(env: Env) -> None:
    assert env.login("pat", PEOPLE["pat"][0], "--lifetime", "2s").returncode == 0
    time.sleep(3)
    out = env.docker("ps")
    assert out.returncode != 0 and "expired" in out.stderr and "moorage login" in out.stderr, out.stderr
    who = env.moorage("whoami", "--context", "mlogin")
    assert who.returncode != 0 and "run moorage login" in who.stderr


def test_a_ci_service_account_builds_and_pushes_as_its_team_only(env: Env, tmp_path: Path) -> None:
    made = env.moorage("sa", "create", "ci-pay", "--team", "payments", "--lifetime", "30m", admin=True)
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[1].strip()
    login = [
        *MOORAGE,
        "login",
        "--token",
        token,
        "--host",
        f"tcp://127.0.0.1:{env.port}",
        "--ca",
        str(env.data / "pki/ca.pem"),
        "--context",
        "ci",
    ]
    first = subprocess.run(login, capture_output=True, text=True, timeout=60, env=env.env())
    assert first.returncode == 0 and "developer of payments" in first.stdout, first.stderr
    replay = subprocess.run(login, capture_output=True, text=True, timeout=60, env=env.env())
    assert replay.returncode != 0 and "already used" in replay.stderr
    (tmp_path / "Dockerfile").write_text(f"FROM {BUSYBOX_REF}\nRUN echo built-by-ci > /ci.txt\n")
    image = f"{env.lab.registry}/payments/ci-app:1"
    built = env.docker("build", "-t", image, str(tmp_path), context="ci")
    assert built.returncode == 0, built.stderr
    pushed = env.docker("push", image, context="ci")
    assert pushed.returncode == 0, pushed.stderr
    # another team's container is out of reach
    engine = env.lab.client(1)
    engine.call(
        "POST",
        "/containers/create?name=search-db",
        {
            "Image": BUSYBOX_REF,
            "Cmd": ["sleep", "60"],
            "Labels": {"io.moorage.team": "search", "io.moorage.owner": "quinn"},
        },
    )
    try:
        assert env.docker("inspect", "search-db", context="ci").returncode != 0
        gone = env.docker("rm", "-f", "search-db", context="ci")  # -f exits 0 for a missing container
        assert "No such container" in gone.stderr
        assert engine.call("GET", "/containers/search-db/json")["State"]["Status"] == "created"
        assert env.docker("node", "ls", context="ci").returncode != 0
    finally:
        engine.call("DELETE", "/containers/search-db?force=1")
    who = json.loads(env.moorage("whoami", "--context", "ci", "--json").stdout)
    assert who["user"] == "ci-pay" and who["auth"] == "login:service-account" and who["teams"] == ["payments"]
    trail = env.moorage("audit", "log", "--data-dir", str(env.data), "--json").stdout
    assert token not in trail
    pushes = [json.loads(x) for x in trail.splitlines() if '"image.push"' in x]
    assert pushes and pushes[-1]["user"] == "ci-pay" and pushes[-1]["login"]["provider"] == "service-account"


def test_someone_removed_from_their_group_is_refused_after_the_sync(env: Env) -> None:
    assert env.login("quinn", PEOPLE["quinn"][0]).returncode == 0
    assert env.docker("ps").returncode == 0
    dn = f"uid=quinn,ou=people,{SUFFIX}"
    admin = ldap3.Connection(ldap3.Server(SLAPD[0].url), ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)
    assert admin.modify(f"cn=search-dev,ou=groups,{SUFFIX}", {"member": [(ldap3.MODIFY_DELETE, [dn])]})
    try:
        deadline = time.monotonic() + 15
        while (out := env.docker("ps")).returncode == 0:
            assert time.monotonic() < deadline, "the sync did not revoke quinn's certificate"
            time.sleep(0.5)
        assert "revoked" in out.stderr and "moorage login" in out.stderr, out.stderr
        again = env.login("quinn", PEOPLE["quinn"][0])  # the next login is checked too
        assert again.returncode != 0 and "no group" in again.stderr
    finally:
        admin.modify(f"cn=search-dev,ou=groups,{SUFFIX}", {"member": [(ldap3.MODIFY_ADD, [dn])]})
        admin.unbind()


def oidc_login(env: Env, person: str, context: str = "moidc") -> subprocess.CompletedProcess[str]:
    """`moorage login --oidc` as a person would run it: read the address it prints,
    approve there, and let the CLI finish."""
    proc = subprocess.Popen(
        [
            *MOORAGE,
            "login",
            "--oidc",
            "--host",
            f"tcp://127.0.0.1:{env.port}",
            "--ca",
            str(env.data / "pki/ca.pem"),
            "--context",
            context,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env.env(),
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    m = re.search(r"open (\S+) and confirm the code (\S+)", line)
    assert m, line
    approve(m.group(1), person)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, line + err)


def test_an_oidc_device_login_gives_plain_docker_an_identity(env: Env) -> None:
    done = oidc_login(env, "pat")
    assert done.returncode == 0 and "developer of payments" in done.stdout, done.stderr
    ran = env.docker("run", "--rm", BUSYBOX_REF, "echo", "hello-oidc", context="moidc")
    assert ran.returncode == 0 and "hello-oidc" in ran.stdout, ran.stderr
    who = json.loads(env.moorage("whoami", "--context", "moidc", "--json").stdout)
    assert (
        who["auth"] == "login:oidc"
        and who["subject"] == f"{IDP[0].issuer}#pat"
        and who["teams"] == ["payments"]
    )


def _device_token(client_id: str, person: str) -> tuple[str, str]:
    """(ID token, device code) from the provider's device flow, approved by ``person``."""
    base = IDP[0].issuer
    start = requests.post(
        f"{base}/device/auth", data={"client_id": client_id, "scope": "openid profile"}
    ).json()
    approve(start["verification_uri_complete"], person)
    grant = {
        "client_id": client_id,
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": start["device_code"],
    }
    answer = requests.post(f"{base}/token", data=grant).json()
    return answer["id_token"], start["device_code"]


def _post_login(env: Env, body: dict[str, Any]) -> str:
    from moorage.cli.exception import GatewayClientError
    from moorage.cli.login import _request

    try:
        _request(f"tcp://127.0.0.1:{env.port}", env.data / "pki/ca.pem", "POST", "/moorage/v1/login", body)
    except GatewayClientError as exc:
        return str(exc)
    return "accepted"


def test_wrong_oidc_tokens_are_refused_and_recorded(env: Env) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509 import CertificateSigningRequestBuilder, Name, NameAttribute
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        CertificateSigningRequestBuilder()
        .subject_name(Name([NameAttribute(NameOID.COMMON_NAME, "x")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    other, _ = _device_token("another-app", "pat")
    assert "not for Moorage's client" in _post_login(env, {"provider": "oidc", "id_token": other, "csr": csr})
    time.sleep(1.1)  # tokens issued in the same second to the same person are the same bytes
    good, device_code = _device_token("moorage", "pat")
    head, body, sig = good.split(".")
    forged = (
        base64.urlsafe_b64encode(
            json.dumps({**json.loads(base64.urlsafe_b64decode(body + "==")), "groups": ["security"]}).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    assert "signature" in _post_login(
        env, {"provider": "oidc", "id_token": f"{head}.{forged}.{sig}", "csr": csr}
    )
    assert _post_login(env, {"provider": "oidc", "id_token": good, "csr": csr}) == "accepted"
    assert "already used" in _post_login(env, {"provider": "oidc", "id_token": good, "csr": csr})
    # a spent device code is refused by the provider; the CLI reports that attempt to the gateway
    replay = requests.post(
        f"{IDP[0].issuer}/token",
        data={
            "client_id": "moorage",
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": device_code,
        },
    ).json()
    assert replay["error"] == "invalid_grant"
    noted = _post_login(
        env, {"provider": "oidc", "failed": "invalid_grant (a spent device code)", "csr": csr}
    )
    assert "invalid_grant" in noted
    no_group = oidc_login(env, "remy", "mremy")
    assert no_group.returncode != 0 and "no group" in no_group.stderr
    trail = env.moorage("audit", "log", "--data-dir", str(env.data), "--json").stdout
    refused = [json.loads(x) for x in trail.splitlines() if '"moorage.login"' in x and '"deny"' in x]
    reasons = " ".join(r["reason"] for r in refused)
    for why in ("not for Moorage's client", "signature", "already used", "invalid_grant", "no group"):
        assert why in reasons, why


def test_a_users_file_user_gets_a_certificate_on_the_unix_socket(env: Env) -> None:
    os.chmod(env.data / "docker.sock", 0o666)
    home = env.data / "alice-home"
    home.mkdir(exist_ok=True)
    os.chown(home, UIDS["alice"], UIDS["alice"])
    as_alice = ["setpriv", f"--reuid={UIDS['alice']}", f"--regid={UIDS['alice']}", "--clear-groups"]
    e = {**env.env(), "HOME": str(home), "DOCKER_HOST": f"unix://{env.data / 'docker.sock'}"}
    out = subprocess.run(
        [
            *as_alice,
            *MOORAGE,
            "login",
            "--users",
            "--host",
            f"tcp://127.0.0.1:{env.port}",
            "--context",
            "ulogin",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=e,
    )
    assert out.returncode == 0 and "developer of payments" in out.stdout, out.stderr
    e.pop("DOCKER_HOST")
    ran = subprocess.run(
        [*as_alice, "docker", "--context", "ulogin", "ps"], capture_output=True, text=True, timeout=60, env=e
    )
    assert ran.returncode == 0, ran.stderr
    # root is an admin by uid but not a users-file user: no certificate; nor for a claimed name
    refused = env.moorage(
        "login", "--users", "--host", f"tcp://127.0.0.1:{env.port}", "--context", "x", admin=True
    )
    assert refused.returncode != 0 and "users file" in refused.stderr


def test_a_token_from_another_issuer_is_refused(env: Env, tmp_path: Path) -> None:
    stranger = OidcServer(tmp_path / "other-idp", {"pat": ["payments-dev"]})
    stranger.start()
    try:
        start = requests.post(
            f"{stranger.issuer}/device/auth", data={"client_id": "moorage", "scope": "openid"}
        ).json()
        approve(start["verification_uri_complete"], "pat")
        token = requests.post(
            f"{stranger.issuer}/token",
            data={
                "client_id": "moorage",
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": start["device_code"],
            },
        ).json()["id_token"]
    finally:
        stranger.stop()
    refused = _post_login(
        env, {"provider": "oidc", "id_token": token, "csr": "-----BEGIN CERTIFICATE REQUEST-----"}
    )
    assert "issued by" in refused or "does not publish" in refused or "signature" in refused, refused


def test_an_expired_id_token_is_refused_and_recorded(env: Env) -> None:
    token, _ = _device_token("moorage", "pat")
    time.sleep(63)  # the token's 1 s, and the gateway's 60 s of leeway for clock skew
    refused = _post_login(
        env, {"provider": "oidc", "id_token": token, "csr": "-----BEGIN CERTIFICATE REQUEST-----"}
    )
    assert "expired" in refused, refused
    trail = env.moorage("audit", "log", "--data-dir", str(env.data), "--json").stdout
    assert any("expired" in json.loads(x)["reason"] for x in trail.splitlines() if '"moorage.login"' in x)
