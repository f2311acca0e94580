"""policy.keys reads the keys a policy trusts without images/: same ids, same errors."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from moorage.images.interface import SignatureError
from moorage.images.sign import key_id, parse_public_keys
from moorage.policy.keys import key_ids


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_ids_match_the_image_signers_ids() -> None:
    pem = _pem(ec.generate_private_key(ec.SECP256R1())) + _pem(ec.generate_private_key(ec.SECP384R1()))
    assert key_ids(pem, "k.pub") == [key_id(k) for k in parse_public_keys(pem, "k.pub")]
    assert len(key_ids(pem, "k.pub")) == 2


@pytest.mark.parametrize(
    "pem",
    [
        b"not a key",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
    ],
)
def test_errors_are_worded_as_the_image_signer_words_them(pem: bytes) -> None:
    with pytest.raises(SignatureError) as theirs:
        parse_public_keys(pem, "k.pub")
    with pytest.raises(ValueError) as ours:
        key_ids(pem, "k.pub")
    assert str(ours.value) == str(theirs.value)
