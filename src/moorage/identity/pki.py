"""The gateway's own PKI: a CA, the server certificate, client certificates.

Files follow the docker CLI's ``DOCKER_CERT_PATH`` convention (``ca.pem``,
``cert.pem``, ``key.pem``), so ``docker --tlsverify -H tcp://...`` works unchanged.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Pki", "PkiError"]


class PkiError(Exception):
    """A certificate or key is missing, unreadable or invalid."""


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class Pki:
    """A CA kept in ``root`` (``ca.pem``, ``ca-key.pem``)."""

    root: Path

    @property
    def ca_cert_path(self) -> Path:
        """The CA certificate clients are given to trust the gateway."""
        return self.root / "ca.pem"

    def ensure_ca(self) -> None:
        """Create the CA's key and certificate on first use."""
        if self.ca_cert_path.exists():
            return
        key = _key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Moorage gateway CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
            .sign(key, hashes.SHA256())
        )
        _write(self.root / "ca-key.pem", _pem_key(key), private=True)
        _write(self.ca_cert_path, cert.public_bytes(serialization.Encoding.PEM))

    def _ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        try:
            cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
            key = serialization.load_pem_private_key((self.root / "ca-key.pem").read_bytes(), None)
        except (OSError, ValueError) as exc:
            raise PkiError(f"cannot load the CA in {self.root}: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"the CA key in {self.root} is not an EC key")
        return cert, key

    def issue(self, out: Path, common_name: str, server: bool = False, days: int = 365) -> None:
        """Write ``ca.pem``, ``cert.pem`` and ``key.pem`` for a client (or the server) to ``out``."""
        self.ensure_ca()
        ca_cert, ca_key = self._ca()
        key = _key()
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.DNSName(common_name),
                     x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )  # fmt: skip
        cert = builder.sign(ca_key, hashes.SHA256())
        _write(out / "key.pem", _pem_key(key), private=True)
        _write(out / "cert.pem", cert.public_bytes(serialization.Encoding.PEM))
        _write(out / "ca.pem", self.ca_cert_path.read_bytes())

    def server_context(self, server_dir: Path) -> ssl.SSLContext:
        """TLS for the gateway's listener: our server cert, client certs required."""
        if not (server_dir / "cert.pem").exists():
            self.issue(server_dir, "moorage-gateway", server=True)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca_cert_path))
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(str(server_dir / "cert.pem"), str(server_dir / "key.pem"))
        except (OSError, ssl.SSLError) as exc:
            raise PkiError(f"cannot load the server certificate in {server_dir}: {exc}") from exc
        return ctx
