"""Image-signing public keys a policy trusts, read at load.

The policy core may not import ``images/`` (it stays free of image I/O), so it reads
PEM keys with ``cryptography`` itself. A key id is the same digest
``moorage.images.sign.key_id`` computes (the first 16 hex digits of the SHA-256 of the
key's DER SubjectPublicKeyInfo), so the ids a policy lists match the ids a signature
names; a unit test compares the two.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["key_ids"]

_BEGIN = b"-----BEGIN PUBLIC KEY-----"
_END = b"-----END PUBLIC KEY-----"


def key_ids(pem: bytes, where: str) -> list[str]:
    """The id of every ECDSA ``PUBLIC KEY`` block in ``pem`` (one file may hold several).
    Raises ValueError, worded as the image signer words it, naming ``where``."""
    blocks = [b for b in pem.split(_END) if _BEGIN in b]
    if not blocks:
        raise ValueError(f"{where} holds no PEM PUBLIC KEY block")
    out = []
    for block in blocks:
        try:
            key = serialization.load_pem_public_key(block + _END + b"\n")
        except ValueError as exc:
            raise ValueError(f"{where}: a PUBLIC KEY block is malformed: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError(f"{where}: only ECDSA public keys are supported")
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        out.append(hashlib.sha256(der).hexdigest()[:16])
    return out
