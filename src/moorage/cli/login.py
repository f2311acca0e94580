"""``moorage login | logout | whoami`` and ``moorage cert revoke``.

``login`` makes a key pair here (it never leaves this machine), proves who you are
to the gateway's identity provider, and writes the short-lived certificate the
gateway signs into a Docker context, file by file with atomic renames, so plain
``docker --context NAME`` works at once and picks up the next login by itself.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import http.client
import json
import os
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from moorage.cli._output import emit_json, paint
from moorage.cli.exception import GatewayClientError, answer, call
from moorage.identity import IdentityError
from moorage.identity.oidc import device_login

__all__ = ["context_dir", "register"]


def _docker_config() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def context_dir(name: str) -> tuple[Path, Path]:
    """(meta folder, TLS folder) of Docker context ``name``, as the docker CLI stores them."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    root = _docker_config() / "contexts"
    return root / "meta" / digest, root / "tls" / digest / "docker"


def _atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".moorage-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _context(name: str) -> tuple[str, Path]:
    meta, tls = context_dir(name)
    try:
        doc = json.loads((meta / "meta.json").read_text())
        host = str(doc["Endpoints"]["docker"]["Host"])
    except (OSError, ValueError, KeyError) as exc:
        raise GatewayClientError(f"no Docker context {name!r} from moorage login: run moorage login") from exc
    return host, tls


def _request(
    host: str, ca: Path, method: str, path: str, body: Any = None, client: tuple[Path, Path] | None = None
) -> Any:
    url = urlparse(host)
    if url.scheme != "tcp" or not url.hostname:
        raise GatewayClientError(
            f"{host}: moorage login talks to the gateway's TLS listener, tcp://HOST:PORT"
        )
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False  # the gateway's CA is private to it; the chain is what is checked
    if client is not None:
        ctx.load_cert_chain(str(client[0]), str(client[1]))
    conn = http.client.HTTPSConnection(url.hostname, url.port or 2376, context=ctx, timeout=60)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        raw = resp.read()
    except (OSError, ssl.SSLError) as exc:
        raise GatewayClientError(f"cannot reach the Moorage gateway at {host}: {exc}") from exc
    finally:
        conn.close()
    return answer(resp.status, raw)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``moorage login``, ``logout`` and ``whoami`` to the command line."""
    lg = sub.add_parser(
        "login", help="log in with the company's directory; docker gets a short-lived identity"
    )
    how = lg.add_mutually_exclusive_group()
    how.add_argument(
        "--ldap", action="store_const", dest="provider", const="ldap", help="the directory (default)"
    )
    how.add_argument("--token", help="a service account's one-time enrolment token (CI runners)")
    how.add_argument(
        "--users",
        action="store_const",
        dest="provider",
        const="users",
        help="as the users-file user you are on the gateway's unix socket ($DOCKER_HOST)",
    )
    how.add_argument(
        "--oidc",
        action="store_const",
        dest="provider",
        const="oidc",
        help="the company's OpenID provider, with the device flow (approve in a browser)",
    )
    lg.add_argument("--host", help="the gateway's TLS listener, tcp://HOST:PORT (default: the context's)")
    lg.add_argument("--ca", type=Path, help="the gateway's CA certificate (default: the context's ca.pem)")
    lg.add_argument("--context", default="moorage", help="Docker context to write (default moorage)")
    lg.add_argument("--username", help="default: $USER")
    lg.add_argument("--lifetime", help="ask for a shorter certificate, e.g. 1h (policy caps it)")
    lg.set_defaults(func=_login, provider="ldap")
    lo = sub.add_parser("logout", help="revoke this context's certificate and remove it")
    lo.add_argument("--context", default="moorage")
    lo.set_defaults(func=_logout)
    who = sub.add_parser("whoami", help="who the gateway thinks you are")
    who.add_argument("--context", default="moorage")
    who.add_argument("--json", action="store_true")
    who.set_defaults(func=_whoami)


def register_cert(cc: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``revoke`` to ``moorage cert`` (whose group ``moorage up``'s module builds)."""
    r = cc.add_parser("revoke", help="revoke a login certificate now (security officer, admin)")
    what = r.add_mutually_exclusive_group(required=True)
    what.add_argument("serial", nargs="?", help="the certificate's serial (hex)")
    what.add_argument("--user", help="every live certificate of this user")
    r.add_argument("--host", help="gateway address (default: $DOCKER_HOST, else the data folder's socket)")
    r.set_defaults(func=_revoke)


def register_sa(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``moorage sa`` (service accounts for CI runners) to the command line."""
    sa = sub.add_parser("sa", help="service accounts for CI runners")
    sc = sa.add_subparsers(dest="sa_cmd", required=True, metavar="COMMAND")
    c = sc.add_parser(
        "create", help="a service account of one team, and its one-time enrolment token (admin)"
    )
    c.add_argument("name")
    c.add_argument("--team", required=True)
    c.add_argument("--role", dest="roles", action="append", help="developer (default), viewer or operator")
    c.add_argument(
        "--lifetime", default="1h", help="each certificate's lifetime (default 1h; policy caps it)"
    )
    c.add_argument("--host", help="gateway address (default: $DOCKER_HOST, else the data folder's socket)")
    c.set_defaults(func=_sa_create)


def _sa_create(args: argparse.Namespace) -> int:
    body = {
        "name": args.name,
        "team": args.team,
        "roles": args.roles or ["developer"],
        "lifetime": args.lifetime,
    }
    out = call(args.host, "POST", "/moorage/v1/service-accounts", body)
    print(f"service account {out['name']} ({', '.join(out['roles'])} of {out['team']}); one-time token:")
    print(out["token"])
    print("the runner logs in with: moorage login --token TOKEN --host tcp://HOST:PORT --ca CA --context ci")
    return 0


def _password() -> str:
    if os.environ.get("MOORAGE_PASSWORD"):
        return os.environ["MOORAGE_PASSWORD"]
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\n")


def _login(args: argparse.Namespace) -> int:
    host, ca = args.host, args.ca
    if args.provider == "users":
        return _login_users(args)
    if host is None or ca is None:
        known_host, tls = _context(args.context)
        host, ca = host or known_host, ca or tls / "ca.pem"
    username = args.username or os.environ.get("USER") or getpass.getuser()
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, username)]))
        .sign(key, hashes.SHA256())
    )
    pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    body: dict[str, Any]
    if args.token:
        body = {"provider": "token", "token": args.token, "csr": pem}
    elif args.provider == "oidc":
        settings = _request(host, Path(ca), "GET", "/moorage/v1/login/oidc")

        def show(uri: str, code: str, complete: str) -> None:
            print(
                f"To log in, open {complete or uri} and confirm the code {paint(code, 'bold')}",
                file=sys.stderr,
                flush=True,
            )

        try:
            token = device_login(settings["issuer"], settings["client_id"], settings["scope"], show)
        except IdentityError as exc:
            # the gateway records the failed attempt too, then answers with the reason
            _request(host, Path(ca), "POST", "/moorage/v1/login", {"provider": "oidc", "failed": str(exc)})
            raise GatewayClientError(str(exc)) from exc
        body = {"provider": "oidc", "id_token": token, "csr": pem}
    else:
        body = {"provider": args.provider, "username": username, "password": _password(), "csr": pem}
    if args.lifetime:
        body["lifetime"] = args.lifetime
    out = _request(host, Path(ca), "POST", "/moorage/v1/login", body)
    _write_context(args.context, host, key, out)
    return 0


def _write_context(name: str, host: str, key: ec.EllipticCurvePrivateKey, out: dict[str, Any]) -> None:
    meta, tls = context_dir(name)
    # the docker CLI refuses encrypted keys; the file is readable by you alone
    _atomic(
        tls / "key.pem",
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        0o600,
    )
    _atomic(tls / "ca.pem", out["ca"].encode())
    _atomic(tls / "cert.pem", out["certificate"].encode())
    doc = {
        "Name": name,
        "Metadata": {"Description": f"Moorage, logged in as {out['user']}"},
        "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}},
    }
    _atomic(meta / "meta.json", json.dumps(doc).encode())
    until = time.strftime("%Y-%m-%d %H:%M", time.localtime(out["expires_at"]))
    print(
        f"{paint('logged in', 'green')} as {out['user']} ({', '.join(out['roles'])} of "
        f"{', '.join(out['teams']) or 'no team'}) until {until}"
    )
    print(f"use it:  docker --context {name} ps")


def _login_users(args: argparse.Namespace) -> int:
    """The login of a users-file user, asked on the unix socket; the certificate is for
    the TLS listener named by --host."""
    if not args.host:
        raise GatewayClientError(
            "--users needs --host tcp://HOST:PORT, the TLS listener the context points at"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "users")]))
        .sign(key, hashes.SHA256())
    )
    body: dict[str, Any] = {"provider": "users", "csr": csr.public_bytes(serialization.Encoding.PEM).decode()}
    if args.lifetime:
        body["lifetime"] = args.lifetime
    out = call(None, "POST", "/moorage/v1/login", body)
    _write_context(args.context, args.host, key, out)
    return 0


def _client(context: str) -> tuple[str, Path, tuple[Path, Path]]:
    host, tls = _context(context)
    cert = tls / "cert.pem"
    try:
        expires = x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc.timestamp()
    except (OSError, ValueError) as exc:
        raise GatewayClientError(f"context {context!r} holds no certificate: run moorage login") from exc
    if expires <= time.time():
        raise GatewayClientError(f"your certificate for context {context!r} has expired: run moorage login")
    return host, tls / "ca.pem", (cert, tls / "key.pem")


def _logout(args: argparse.Namespace) -> int:
    host, ca, client = _client(args.context)
    out = _request(host, ca, "POST", "/moorage/v1/logout", {}, client)
    for path in client:
        path.unlink(missing_ok=True)
    print(f"logged out {out['user']}: certificate {', '.join(out['revoked'])} revoked")
    return 0


def _whoami(args: argparse.Namespace) -> int:
    host, ca, client = _client(args.context)
    out = _request(host, ca, "GET", "/moorage/v1/whoami", None, client)
    if args.json:
        emit_json(out)
        return 0
    until = (
        time.strftime("%Y-%m-%d %H:%M", time.localtime(out["expires_at"])) if out.get("expires_at") else "-"
    )
    print(
        f"{out['user']}  teams {', '.join(out['teams']) or '-'}  roles {', '.join(out['roles'])}  "
        f"via {out['auth']}  until {until}"
    )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    body = {"user": args.user} if args.user else {"serial": args.serial}
    out = call(args.host, "POST", "/moorage/v1/certs/revoke", body)
    print(f"revoked {', '.join(out['revoked'])}")
    return 0
