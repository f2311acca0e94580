"""Checkpoint keys: one signing key, every public key it ever had kept to verify."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from moorage.audit.chain import key_id
from moorage.audit.interface import AuditError

__all__ = ["KeyRing"]


class KeyRing:
    """Checkpoint keys in a folder: ``checkpoint.key`` signs; every ``*.pub`` verifies,
    so checkpoints signed before a rotation still verify with the key that signed them."""

    def __init__(self, folder: Path, name: str = "moorage-audit") -> None:
        self.folder = folder
        self.name = name

    def signer(self) -> Ed25519PrivateKey:
        """The signing key, made on first use."""
        path = self.folder / "checkpoint.key"
        if not path.exists():
            return self.rotate()
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditError(f"{path} is not an Ed25519 private key")
        return key

    def rotate(self) -> Ed25519PrivateKey:
        """Make a new signing key; keep the old public keys for verification."""
        self.folder.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pub = key.public_key()
        kid = key_id(self.name, pub).hex()
        (self.folder / f"{kid}.pub").write_bytes(
            pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        tmp = self.folder / "checkpoint.key.tmp"
        tmp.touch(mode=0o600)
        tmp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))  # fmt: skip
        tmp.replace(self.folder / "checkpoint.key")
        return key

    def verifiers(self) -> dict[bytes, tuple[str, Ed25519PublicKey]]:
        """Every public key in the folder, by key id, for checking checkpoint notes."""
        keys: dict[bytes, tuple[str, Ed25519PublicKey]] = {}
        for path in sorted(self.folder.glob("*.pub")):
            pub = serialization.load_pem_public_key(path.read_bytes())
            if isinstance(pub, Ed25519PublicKey):
                keys[key_id(self.name, pub)] = (self.name, pub)
        return keys
