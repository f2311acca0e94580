"""A private OpenLDAP slapd for tests: its own cn=config and data in a folder, TLS
from a test CA, listening on 127.0.0.1 (ldap:// with StartTLS, and ldaps://), run
as an unprivileged user."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.process_harness import stop, wait_for_ports

SUFFIX = "dc=moorage,dc=test"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "admin-secret"
PEOPLE = {  # uid -> (password, groups)
    "pat": ("pat-password", ["payments-dev"]),
    "quinn": ("quinn-password", ["search-dev"]),
    "remy": ("remy-password", []),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cert(
    folder: Path, name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key


class Slapd:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.tls_port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.ca_file = str(folder / "ca.pem")
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.ldaps_url = f"ldaps://127.0.0.1:{self.tls_port}"

    def start(self) -> None:
        f = self.folder
        f.mkdir(parents=True, exist_ok=True)
        ca = _cert(f, "ca", None)
        _cert(f, "server", ca)
        _cert(f, "stranger-ca", None)  # a CA that signed nothing of this server's
        (f / "slapd.d").mkdir()
        (f / "data").mkdir()
        schema = Path("/etc/ldap/schema")
        config = [
            "dn: cn=config",
            "objectClass: olcGlobal",
            "cn: config",
            f"olcPidFile: {f}/slapd.pid",
            f"olcTLSCACertificateFile: {f}/ca.pem",
            f"olcTLSCertificateFile: {f}/server.pem",
            f"olcTLSCertificateKeyFile: {f}/server.key",
            "",
            "dn: cn=module{0},cn=config",
            "objectClass: olcModuleList",
            "cn: module{0}",
            "olcModulePath: /usr/lib/ldap",
            "olcModuleLoad: back_mdb",
            "",
            "dn: cn=schema,cn=config",
            "objectClass: olcSchemaConfig",
            "cn: schema",
            "",
        ]
        text = "\n".join(config) + "\n"
        for name in ("core", "cosine", "inetorgperson"):
            text += (schema / f"{name}.ldif").read_text().strip() + "\n\n"
        text += (
            "\n".join(
                [
                    "dn: olcDatabase={1}mdb,cn=config",
                    "objectClass: olcDatabaseConfig",
                    "objectClass: olcMdbConfig",
                    "olcDatabase: {1}mdb",
                    f"olcSuffix: {SUFFIX}",
                    f"olcRootDN: {ADMIN_DN}",
                    f"olcRootPW: {ADMIN_PASSWORD}",
                    f"olcDbDirectory: {f}/data",
                    "olcDbMaxSize: 104857600",
                    "olcAccess: {0}to attrs=userPassword by anonymous auth by self read by * none",
                    "olcAccess: {1}to * by users read by * none",
                    "",
                ]
            )
            + "\n"
        )
        (f / "config.ldif").write_text(text)
        data = [
            f"dn: {SUFFIX}",
            "objectClass: dcObject",
            "objectClass: organization",
            "dc: moorage",
            "o: Moorage test",
            "",
            f"dn: ou=people,{SUFFIX}",
            "objectClass: organizationalUnit",
            "ou: people",
            "",
            f"dn: ou=groups,{SUFFIX}",
            "objectClass: organizationalUnit",
            "ou: groups",
            "",
        ]
        for uid, (password, _) in PEOPLE.items():
            data += [
                f"dn: uid={uid},ou=people,{SUFFIX}",
                "objectClass: inetOrgPerson",
                f"uid: {uid}",
                f"cn: {uid}",
                f"sn: {uid}",
                f"userPassword: {password}",
                "",
            ]
        for group in ("payments-dev", "search-dev"):
            members = [u for u, (_, gs) in PEOPLE.items() if group in gs]
            data += [f"dn: cn={group},ou=groups,{SUFFIX}", "objectClass: groupOfNames", f"cn: {group}"]
            # groupOfNames needs a member: the admin keeps each group valid when people leave it
            data += [f"member: {ADMIN_DN}", *(f"member: uid={u},ou=people,{SUFFIX}" for u in members), ""]
        (f / "data.ldif").write_text("\n".join(data) + "\n")
        for args in (["-n0", "-l", str(f / "config.ldif")], ["-n1", "-l", str(f / "data.ldif")]):
            subprocess.run(["slapadd", "-F", str(f / "slapd.d"), *args], check=True, capture_output=True)
        nobody = pwd.getpwnam("nobody")
        for path in [f, *f.rglob("*")]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        log = open(f / "slapd.log", "wb")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [
                "slapd",
                "-d",
                "0",
                "-F",
                str(f / "slapd.d"),
                "-u",
                "nobody",
                "-g",
                "nogroup",
                "-h",
                f"{self.url}/ {self.ldaps_url}/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_ports(self.proc, [self.port, self.tls_port], f / "slapd.log", "slapd")

    def stop(self) -> None:
        stop(self.proc)
        shutil.rmtree(self.folder, ignore_errors=True)
