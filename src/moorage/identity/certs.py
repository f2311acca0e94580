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
from moorage.store.interface import Conflict, Database, StoreError
from moorage.store.sqlite import SqliteStore

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


_COLS = (  # "user" is quoted: PostgreSQL reserves the word
    'serial, "user", provider, subject, groups, teams, roles, public_key, issued_at, expires_at, revoked_at,'
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
    """Issued certificates (the store's ``certs`` area), signing with ``pki``'s CA.
    Every check reads the store, so a revocation through any gateway counts on every
    other at its next request."""

    def __init__(self, db: Database, pki: Pki, clock: Callable[[], float] = time.time) -> None:
        """``db``: the store's ``certs`` area."""
        self.pki = pki
        self.clock = clock
        self._lock = threading.Lock()
        self._db = db

    @classmethod
    def in_folder(cls, folder: Path, pki: Pki, clock: Callable[[], float] = time.time) -> CertStore:
        """The embedded store's certificates, ``folder/certs.db``."""
        return cls(SqliteStore(folder).database("certs"), pki, clock)

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
            except Conflict:
                return False
        return True

    # ----------------------------------------------------- service accounts
    def create_account(
        self, name: str, team: str, roles: tuple[str, ...], lifetime: int, by: str, token_ttl: int = 86400
    ) -> str:
        """Create (or renew the enrolment of) a service account; the one-time token."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock, self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO service_accounts (name, team, roles, lifetime, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
                " team=excluded.team, roles=excluded.roles, lifetime=excluded.lifetime",
                (name, team, json.dumps(list(roles)), lifetime, by, now),
            )
            tx.execute(
                "INSERT INTO enrolment_tokens (digest, account, expires_at, used_at) VALUES (?, ?, ?, NULL)",
                (hashlib.sha256(token.encode()).hexdigest(), name, now + token_ttl),
            )
        return token

    def redeem(self, token: str) -> tuple[Identity, Grant, int]:
        """The service account a one-time token enrols (the token is spent)."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self.clock()
        with self._lock, self._db.transaction() as tx:
            # spent in the same transaction that reads it: two gateways can't both redeem it
            spent = tx.execute(
                "UPDATE enrolment_tokens SET used_at=? WHERE digest=? AND used_at IS NULL AND expires_at > ?"
                " RETURNING account",
                (now, digest, now),
            )
            if not spent:
                rows = tx.execute(
                    "SELECT expires_at, used_at FROM enrolment_tokens WHERE digest=?", (digest,)
                )
                if not rows:
                    raise LoginRefused("the enrolment token is not one this gateway issued")
                if rows[0][1] is not None:
                    raise LoginRefused(
                        "the enrolment token was already used: ask for a new one (moorage sa create)"
                    )
                raise LoginRefused("the enrolment token has expired: ask for a new one (moorage sa create)")
            found = tx.execute(
                "SELECT name, team, roles, lifetime FROM service_accounts WHERE name=?", (spent[0][0],)
            )
        acct = found[0] if found else None
        if acct is None:
            raise LoginRefused("the service account of this token no longer exists")
        who = Identity("service-account", f"sa:{acct[0]}", str(acct[0]))
        return who, Grant((str(acct[1]),), tuple(json.loads(str(acct[2])))), int(str(acct[3]))

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
            rows = self._db.execute(f"SELECT {_COLS} FROM certs WHERE serial=?", (serial.lower(),))
        return _record(rows[0]) if rows else None

    def live(self, serial: str, public_key: str) -> tuple[CertRecord | None, str]:
        """The record of a presented certificate if it counts now, else (None, why).
        A store that can't be read lets nobody in (fails closed)."""
        try:
            record = self.get(serial)
        except StoreError as exc:
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
        with self._lock, self._db.transaction() as tx:
            if user is not None:
                rows = tx.execute(
                    'SELECT serial FROM certs WHERE "user"=? AND revoked_at IS NULL AND expires_at > ?',
                    (user, now),
                )
            else:
                rows = tx.execute(
                    "SELECT serial FROM certs WHERE serial=? AND revoked_at IS NULL", (str(serial).lower(),)
                )
            serials = [str(r[0]) for r in rows]
            for s in serials:
                tx.execute(
                    "UPDATE certs SET revoked_at=?, revoked_by=?, reason=? WHERE serial=?",
                    (now, by, reason, s),
                )
            self._db.announce(tx)
        return serials

    def live_records(self) -> list[CertRecord]:
        """Every certificate neither revoked nor expired."""
        now = self.clock()
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS} FROM certs WHERE revoked_at IS NULL AND expires_at > ?", (now,)
            )
        return [_record(r) for r in rows]
