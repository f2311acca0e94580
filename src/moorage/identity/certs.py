"""Short-lived client certificates from a login, and the store that keeps each one
live or not.

A login sends a CSR (the key pair never leaves the person's machine) and proves
who they are to a provider; the gateway signs a client certificate with a short
lifetime and records its serial and public key. A certificate counts only while
its record is live: signed by the CA *and* present, unexpired and unrevoked here,
so revocation is immediate, as UCP's registered bundle keys were.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from moorage.identity.interface import Identity, LoginRefused
from moorage.identity.mapping import Grant
from moorage.identity.pki import Pki
from moorage.identity.principal import IdentityError

__all__ = ["CertRecord", "CertStore", "certificate_expired", "certificate_identity", "spki_digest"]


def spki_digest(key: object) -> str:
    """``sha256:<hex>`` of a public key's SubjectPublicKeyInfo."""
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise IdentityError("the key must be ECDSA, RSA or Ed25519")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def certificate_identity(der: bytes) -> tuple[str, str]:
    """(serial in hex, key digest) of a DER certificate; ("", "") when it can't be read."""
    try:
        cert = x509.load_der_x509_certificate(der)
        return format(cert.serial_number, "x"), spki_digest(cert.public_key())
    except (ValueError, IdentityError):
        return "", ""


def certificate_expired(der: bytes, now: float) -> bool:
    """Whether a DER certificate is outside its validity period (or unreadable)."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return True
    return not cert.not_valid_before_utc.timestamp() <= now < cert.not_valid_after_utc.timestamp()


@dataclass(frozen=True)
class CertRecord:
    """One login certificate Moorage issued: whose, from which login, and its state."""

    serial: str  # hex
    user: str
    provider: str
    subject: str
    groups: tuple[str, ...]
    teams: tuple[str, ...]
    roles: tuple[str, ...]
    public_key: str  # spki digest
    issued_at: float
    expires_at: float
    revoked_at: float | None = None
    revoked_by: str | None = None
    reason: str = ""


_COLS = (
    "serial, user, provider, subject, groups, teams, roles, public_key, issued_at, expires_at, revoked_at,"
    " revoked_by, reason"
)


def _record(row: tuple[object, ...]) -> CertRecord:
    return CertRecord(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]),
        tuple(json.loads(str(row[4]))),
        tuple(json.loads(str(row[5]))),
        tuple(json.loads(str(row[6]))),
        str(row[7]),
        float(str(row[8])),
        float(str(row[9])),
        None if row[10] is None else float(str(row[10])),
        None if row[11] is None else str(row[11]),
        str(row[12] or ""),
    )


class CertStore:
    """Issued certificates (SQLite), signing with ``pki``'s CA."""

    def __init__(self, path: Path | str, pki: Pki, clock: Callable[[], float] = time.time) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self.pki = pki
        self.clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS certs (serial TEXT PRIMARY KEY, user TEXT NOT NULL,"
            " provider TEXT NOT NULL, subject TEXT NOT NULL, groups TEXT NOT NULL, teams TEXT NOT NULL,"
            " roles TEXT NOT NULL,"
            " public_key TEXT NOT NULL, issued_at REAL NOT NULL, expires_at REAL NOT NULL, revoked_at REAL,"
            " revoked_by TEXT, reason TEXT)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS service_accounts (name TEXT PRIMARY KEY, team TEXT NOT NULL,"
            " roles TEXT NOT NULL, lifetime INTEGER NOT NULL, created_by TEXT NOT NULL,"
            " created_at REAL NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS spent_tokens (digest TEXT PRIMARY KEY, until REAL NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS enrolment_tokens (digest TEXT PRIMARY KEY, account TEXT NOT NULL,"
            " expires_at REAL NOT NULL, used_at REAL)"
        )

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def spend_token(self, digest: str, until: float) -> bool:
        """Note a one-time credential (an ID token's digest) as used until ``until``.
        True the first time; False when any gateway worker saw it before."""
        with self._lock:
            self._db.execute("DELETE FROM spent_tokens WHERE until < ?", (self.clock(),))
            try:
                self._db.execute("INSERT INTO spent_tokens (digest, until) VALUES (?, ?)", (digest, until))
            except sqlite3.IntegrityError:
                return False
        return True

    # ----------------------------------------------------- service accounts
    def create_account(
        self, name: str, team: str, roles: tuple[str, ...], lifetime: int, by: str, token_ttl: int = 86400
    ) -> str:
        """Create (or renew the enrolment of) a service account; the one-time token."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._db.execute(
                "INSERT INTO service_accounts VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
                " team=excluded.team, roles=excluded.roles, lifetime=excluded.lifetime",
                (name, team, json.dumps(list(roles)), lifetime, by, now),
            )
            self._db.execute(
                "INSERT INTO enrolment_tokens VALUES (?, ?, ?, NULL)",
                (hashlib.sha256(token.encode()).hexdigest(), name, now + token_ttl),
            )
        return token

    def redeem(self, token: str) -> tuple[Identity, Grant, int]:
        """The service account a one-time token enrols (the token is spent)."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self.clock()
        with self._lock:
            row = self._db.execute(
                "SELECT account, expires_at, used_at FROM enrolment_tokens WHERE digest=?", (digest,)
            ).fetchone()
            if row is None:
                raise LoginRefused("the enrolment token is not one this gateway issued")
            if row[2] is not None:
                raise LoginRefused(
                    "the enrolment token was already used: ask for a new one (moorage sa create)"
                )
            if now >= float(row[1]):
                raise LoginRefused("the enrolment token has expired: ask for a new one (moorage sa create)")
            self._db.execute("UPDATE enrolment_tokens SET used_at=? WHERE digest=?", (now, digest))
            acct = self._db.execute(
                "SELECT name, team, roles, lifetime FROM service_accounts WHERE name=?", (row[0],)
            ).fetchone()
        if acct is None:
            raise LoginRefused("the service account of this token no longer exists")
        who = Identity("service-account", f"sa:{acct[0]}", str(acct[0]))
        return who, Grant((str(acct[1]),), tuple(json.loads(str(acct[2])))), int(acct[3])

    def issue(self, csr_pem: bytes, who: Identity, grant: Grant, lifetime: int) -> tuple[bytes, CertRecord]:
        """Sign ``csr_pem`` for ``who``: CN is the user, the lifetime ``lifetime`` seconds."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as exc:
            raise IdentityError(f"the certificate request is not a PEM CSR: {exc}") from exc
        if not csr.is_signature_valid:
            raise IdentityError(
                "the certificate request's signature does not verify (it must be signed by its key)"
            )
        pub = csr.public_key()
        digest = spki_digest(pub)
        self.pki.ensure_ca()
        ca_cert, ca_key = self.pki._ca()
        now = self.clock()
        start = dt.datetime.fromtimestamp(now, dt.UTC)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, who.user)]))
            .issuer_name(ca_cert.subject)
            .public_key(pub)
            .serial_number(serial)
            .not_valid_before(start - dt.timedelta(minutes=1))
            .not_valid_after(start + dt.timedelta(seconds=lifetime))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        record = CertRecord(
            format(serial, "x"),
            who.user,
            who.provider,
            who.subject,
            who.groups,
            grant.teams,
            grant.roles,
            digest,
            now,
            now + lifetime,
        )
        with self._lock:
            self._db.execute(
                f"INSERT INTO certs ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, '')",
                (
                    record.serial,
                    record.user,
                    record.provider,
                    record.subject,
                    json.dumps(list(record.groups)),
                    json.dumps(list(record.teams)),
                    json.dumps(list(record.roles)),
                    record.public_key,
                    record.issued_at,
                    record.expires_at,
                ),
            )
        return cert.public_bytes(serialization.Encoding.PEM), record

    def get(self, serial: str) -> CertRecord | None:
        """The record of certificate ``serial`` (hex, any case), if Moorage issued it."""
        with self._lock:
            row = self._db.execute(f"SELECT {_COLS} FROM certs WHERE serial=?", (serial.lower(),)).fetchone()
        return _record(row) if row else None

    def live(self, serial: str, public_key: str) -> tuple[CertRecord | None, str]:
        """The record of a presented certificate if it counts now, else (None, why).
        A store that can't be read lets nobody in (fails closed)."""
        try:
            record = self.get(serial)
        except sqlite3.Error as exc:
            return None, f"the certificate store can't be read ({exc}), so no login certificate counts"
        if record is None or record.public_key != public_key:
            return None, "this certificate was not issued by a Moorage login: run moorage login"
        if record.revoked_at is not None:
            return (
                None,
                f"this certificate was revoked ({record.reason or 'by ' + str(record.revoked_by)}): "
                "run moorage login",
            )
        if self.clock() >= record.expires_at:
            return None, "this certificate has expired: run moorage login"
        return record, ""

    def revoke(self, serial: str | None, by: str, reason: str, user: str | None = None) -> list[str]:
        """Revoke one certificate, or every live one of ``user``; the serials revoked."""
        now = self.clock()
        with self._lock:
            if user is not None:
                rows = self._db.execute(
                    "SELECT serial FROM certs WHERE user=? AND revoked_at IS NULL AND expires_at > ?",
                    (user, now),
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT serial FROM certs WHERE serial=? AND revoked_at IS NULL", (str(serial).lower(),)
                ).fetchall()
            serials = [str(r[0]) for r in rows]
            for s in serials:
                self._db.execute(
                    "UPDATE certs SET revoked_at=?, revoked_by=?, reason=? WHERE serial=?",
                    (now, by, reason, s),
                )
        return serials

    def live_records(self) -> list[CertRecord]:
        """Every certificate neither revoked nor expired."""
        now = self.clock()
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS} FROM certs WHERE revoked_at IS NULL AND expires_at > ?", (now,)
            ).fetchall()
        return [_record(r) for r in rows]
