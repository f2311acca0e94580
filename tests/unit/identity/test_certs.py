"""Short-lived login certificates count only while their record is live."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from moorage.identity.certs import CertStore, spki_digest
from moorage.identity.interface import Identity
from moorage.identity.mapping import Grant
from moorage.identity.pki import Pki
from moorage.identity.principal import IdentityError


def who(*groups: str, **claims: object) -> Identity:
    return Identity("ldap", "uid=pat", "pat", tuple(groups), claims)


def _csr(key: ec.EllipticCurvePrivateKey, cn: str = "anything") -> bytes:
    from cryptography.hazmat.primitives import serialization

    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def test_a_certificate_counts_only_while_live(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = CertStore.in_folder(tmp_path / "store", Pki(tmp_path / "pki"), clock=lambda: now[0])
    key = ec.generate_private_key(ec.SECP256R1())
    pem, record = store.issue(
        _csr(key, "root"), who("payments-dev"), Grant(("payments",), ("developer",)), 3600
    )
    cert = x509.load_pem_x509_certificate(pem)
    # the name is the login's, not the CSR's
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "pat"
    assert format(cert.serial_number, "x") == record.serial
    digest = spki_digest(key.public_key())
    assert store.live(record.serial, digest)[0] == record
    other = spki_digest(ec.generate_private_key(ec.SECP256R1()).public_key())
    assert store.live(record.serial, other)[0] is None  # same serial, another key: not ours
    now[0] += 3601
    assert "expired" in store.live(record.serial, digest)[1]
    now[0] -= 3601
    assert store.revoke(None, "sofia", "logout", user="pat") == [record.serial]
    live, why = store.live(record.serial, digest)
    assert live is None and "revoked" in why and "moorage login" in why


def test_a_bad_csr_is_refused(tmp_path: Path) -> None:
    store = CertStore.in_folder(tmp_path / "store", Pki(tmp_path / "pki"))
    with pytest.raises(IdentityError):
        store.issue(
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            who("payments-dev"),
            Grant(("payments",), ("developer",)),
            60,
        )
