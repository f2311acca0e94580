"""Checkpoint keys: made on first use, private to the owner, old public keys kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from moorage.audit import AuditError
from moorage.audit.keys import KeyRing


def test_the_signing_key_is_made_once_and_private(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys")
    first = ring.signer()
    assert (tmp_path / "keys" / "checkpoint.key").stat().st_mode & 0o077 == 0
    assert ring.signer().public_key() == first.public_key()
    assert len(ring.verifiers()) == 1


def test_rotation_keeps_every_public_key(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path)
    old = ring.signer().public_key()
    new = ring.rotate().public_key()
    assert old != new and ring.signer().public_key() == new
    kept = [pub for _, pub in ring.verifiers().values()]
    assert len(kept) == 2 and old in kept and new in kept


def test_a_signing_key_of_another_kind_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "checkpoint.key").write_bytes(pem)
    with pytest.raises(AuditError, match="not an Ed25519 private key"):
        KeyRing(tmp_path).signer()
