"""DSSE envelopes over in-toto Statements: what verifies and every way one is refused."""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from moorage.cluster.attestation import (
    PAYLOAD_TYPE,
    AttestationError,
    Claim,
    key_id,
    pae,
    sign,
    statement,
    trust_root_digest,
    verify,
)
from tests.unit.cluster.fakes import PEM

CLAIM = Claim(
    node_id="node-a",
    swarm_id="swarm1",
    trust_root="sha256:" + "0f" * 32,
    classes=("pci", "gold-1"),
    evidence="QSA-2024-17",
    issued_at=1_700_000_000,
    expires_at=1_700_086_400,
    request_id="att-0123456789ab",
    requester="olga",
)

KEY = ec.generate_private_key(ec.SECP256R1())
KEYS = {key_id(KEY.public_key()): KEY.public_key()}


def envelope_of(payload: bytes, key: ec.EllipticCurvePrivateKey = KEY) -> dict[str, Any]:
    return sign(payload, key)


def with_payload(envelope: dict[str, Any], payload: bytes) -> dict[str, Any]:
    return {**envelope, "payload": base64.b64encode(payload).decode()}


def doc_of(claim: Claim = CLAIM) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(statement(claim))
    return out


def test_round_trip_gives_the_claim_and_the_signers_key_id() -> None:
    got, signer = verify(envelope_of(statement(CLAIM)), KEYS)
    assert got == CLAIM
    assert signer == key_id(KEY.public_key())


def test_the_signer_is_found_among_several_keys_without_a_keyid() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    envelope = envelope_of(statement(CLAIM))
    envelope["signatures"] = [{"sig": envelope["signatures"][0]["sig"]}]
    keys = {key_id(other.public_key()): other.public_key(), **KEYS}
    assert verify(envelope, keys) == (CLAIM, key_id(KEY.public_key()))


def test_the_statement_is_canonical_and_binds_node_swarm_and_root() -> None:
    raw = statement(CLAIM)
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    doc = json.loads(raw)
    assert doc["subject"] == [{"name": "swarm-node:swarm1/node-a", "digest": {"sha256": "0f" * 32}}]
    assert doc["predicate"]["classes"] == ["pci", "gold-1"]
    assert doc["predicate"]["request"] == {"id": "att-0123456789ab", "requester": "olga"}


def test_pae_matches_the_dsse_specification_example() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("", b"") == b"DSSEv1 0  0 "


def test_the_signature_covers_the_pae_not_the_bare_payload() -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes

    payload = statement(CLAIM)
    raw = base64.b64decode(sign(payload, KEY)["signatures"][0]["sig"])
    KEY.public_key().verify(raw, pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        KEY.public_key().verify(raw, payload, ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize("position", [0, 10, 100, -3])
def test_a_flipped_payload_byte_is_refused(position: int) -> None:
    envelope = envelope_of(statement(CLAIM))
    payload = bytearray(base64.b64decode(envelope["payload"]))
    payload[position] ^= 0x01
    with pytest.raises(AttestationError, match="no signature"):
        verify(with_payload(envelope, bytes(payload)), KEYS)


def test_a_signature_by_another_key_is_refused() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(AttestationError, match="no signature"):
        verify(envelope_of(statement(CLAIM), other), KEYS)
    # ... even when it claims the trusted key's id
    envelope = envelope_of(statement(CLAIM), other)
    envelope["signatures"][0]["keyid"] = key_id(KEY.public_key())
    with pytest.raises(AttestationError, match="no signature"):
        verify(envelope, KEYS)


def test_no_keys_verifies_nothing() -> None:
    with pytest.raises(AttestationError):
        verify(envelope_of(statement(CLAIM)), {})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: {**e, "payloadType": "application/json"}, "payloadType"),
        (lambda e: {k: v for k, v in e.items() if k != "payloadType"}, "payloadType"),
        (lambda e: {**e, "signatures": []}, "no signature"),
        (lambda e: {k: v for k, v in e.items() if k != "signatures"}, "no signature"),
        (lambda e: {**e, "signatures": "sig"}, "no signature"),
        (lambda e: {**e, "signatures": ["not an object"]}, "no signature"),
        (lambda e: {**e, "signatures": [{"keyid": "x", "sig": "%%%"}]}, "no signature"),
        (lambda e: {**e, "payload": "not base64!"}, "base64"),
        (lambda e: [e], "JSON object"),
        (lambda e: None, "JSON object"),
    ],
)
def test_malformed_envelopes_are_refused(change: Callable[[dict[str, Any]], Any], message: str) -> None:
    with pytest.raises(AttestationError, match=message):
        verify(change(envelope_of(statement(CLAIM))), KEYS)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["subject"][0].update(name="swarm-node:swarm1/node-b"),
        lambda d: d["subject"][0].update(name="swarm-node:swarm2/node-a"),
        lambda d: d["subject"][0]["digest"].update(sha256="1e" * 32),
        lambda d: d["subject"].append({"name": "swarm-node:swarm1/node-b", "digest": {"sha256": "0f" * 32}}),
        lambda d: d.update(subject=[]),
        lambda d: d.pop("subject"),
    ],
)
def test_a_subject_that_doesnt_match_the_predicate_is_refused(edit: Callable[[dict[str, Any]], Any]) -> None:
    doc = doc_of()
    edit(doc)
    with pytest.raises(AttestationError, match="subject"):
        verify(envelope_of(json.dumps(doc).encode()), KEYS)


@pytest.mark.parametrize("expires_at", [CLAIM.issued_at, CLAIM.issued_at - 1])
def test_an_attestation_expiring_before_it_is_issued_is_refused(expires_at: int) -> None:
    with pytest.raises(AttestationError, match="expires before"):
        verify(envelope_of(statement(replace(CLAIM, expires_at=expires_at))), KEYS)


@pytest.mark.parametrize(
    "classes",
    [(), ("PCI",), ("pci", "Gold"), ("-pci",), ("p" * 33,), ("pci.x",), ("pci x",), ("",)],
)
def test_bad_class_names_are_refused(classes: tuple[str, ...]) -> None:
    with pytest.raises(AttestationError, match="classes"):
        verify(envelope_of(statement(replace(CLAIM, classes=classes))), KEYS)


def test_the_longest_class_name_passes() -> None:
    claim = replace(CLAIM, classes=("p" * 32,))
    assert verify(envelope_of(statement(claim)), KEYS)[0] == claim


@pytest.mark.parametrize("root", ["sha256:12", "sha512:" + "0f" * 32, "0f" * 32, "sha256:" + "0F" * 32])
def test_a_malformed_trust_root_digest_is_refused(root: str) -> None:
    with pytest.raises(AttestationError, match="trust root"):
        verify(envelope_of(statement(replace(CLAIM, trust_root=root))), KEYS)


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"", b"\xff\xfe", b"[1, 2]", b'"a string"', b"{"],
)
def test_a_payload_that_is_not_a_json_statement_is_refused(payload: bytes) -> None:
    with pytest.raises(AttestationError):
        verify(envelope_of(payload), KEYS)


def test_a_non_json_payload_says_so() -> None:
    with pytest.raises(AttestationError, match="not JSON"):
        verify(envelope_of(b"not json"), KEYS)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(_type="https://in-toto.io/Statement/v0.1"), "in-toto Statement"),
        (lambda d: d.update(predicateType="https://slsa.dev/provenance/v1"), "predicateType"),
        (lambda d: d["predicate"].pop("evidence"), "incomplete"),
        (lambda d: d["predicate"].update(issuedAt="soon"), "incomplete"),
        (lambda d: d["predicate"].update(node="node-a"), "incomplete"),
        (lambda d: d["predicate"].update(classes=None), "incomplete"),
        (lambda d: d.update(predicate=None), "incomplete"),
    ],
)
def test_statements_missing_what_moorage_binds_are_refused(
    edit: Callable[[dict[str, Any]], Any], message: str
) -> None:
    doc = doc_of()
    edit(doc)
    with pytest.raises(AttestationError, match=message):
        verify(envelope_of(json.dumps(doc).encode()), KEYS)


def test_a_trust_root_digest_ignores_wrapping_and_armour_whitespace() -> None:
    body = "".join(PEM.strip().splitlines()[1:-1])
    digest = trust_root_digest(PEM)
    assert digest.startswith("sha256:") and len(digest) == 7 + 64
    for width in (16, 64, 76, len(body)):
        lines = "\n".join(body[i : i + width] for i in range(0, len(body), width))
        assert (
            trust_root_digest(f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n") == digest
        )
    crlf = PEM.replace("\n", "\r\n")
    assert trust_root_digest(crlf) == digest
    assert trust_root_digest("preamble\n" + PEM + "\ntrailer") == digest


def test_only_the_first_certificate_of_a_bundle_counts() -> None:
    from tests.unit.cluster.fakes import OTHER_PEM

    assert trust_root_digest(PEM + OTHER_PEM) == trust_root_digest(PEM)
    assert trust_root_digest(OTHER_PEM) != trust_root_digest(PEM)


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "not a certificate",
        PEM.replace("CERTIFICATE", "PUBLIC KEY"),
        "-----BEGIN CERTIFICATE-----\n@@not base64@@\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIB",
    ],
)
def test_a_trust_root_that_isnt_a_pem_certificate_is_refused(pem: str) -> None:
    with pytest.raises(AttestationError):
        trust_root_digest(pem)


ROOT = "sha256:" + "ab" * 32


def claim(**kw: Any) -> Claim:
    base: dict[str, Any] = dict(
        node_id="n2",
        swarm_id="s1",
        trust_root=ROOT,
        classes=("pci",),
        evidence="QSA-1",
        issued_at=1000,
        expires_at=2000,
        request_id="att-1",
        requester="olga",
    )
    base.update(kw)
    return Claim(**base)


def test_pae_matches_the_dsse_specification() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_a_signed_statement_verifies_and_names_its_signer() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    envelope = sign(statement(claim()), key)
    got, signer = verify(envelope, {key_id(key.public_key()): key.public_key()})
    assert got == claim() and signer == key_id(key.public_key())
    doc = json.loads(base64.b64decode(envelope["payload"]))
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["subject"] == [{"name": "swarm-node:s1/n2", "digest": {"sha256": "ab" * 32}}]


def _tampered(envelope: dict[str, Any]) -> dict[str, Any]:
    payload = base64.b64decode(envelope["payload"]).replace(b'"pci"', b'"pcx"')
    return {**envelope, "payload": base64.b64encode(payload).decode()}


@pytest.mark.parametrize(
    "change",
    [
        _tampered,
        lambda e: {**e, "payloadType": "application/json"},
        lambda e: {**e, "signatures": []},
        lambda e: {**e, "payload": "%%%"},
        lambda e: "not an envelope",
    ],
)
def test_tampered_or_malformed_envelopes_are_refused(change: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    envelope = sign(statement(claim()), key)
    with pytest.raises(AttestationError):
        verify(change(envelope), {key_id(key.public_key()): key.public_key()})


def test_another_keys_signature_is_refused() -> None:
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    envelope = sign(statement(claim()), other)
    with pytest.raises(AttestationError, match="verifies"):
        verify(envelope, {key_id(key.public_key()): key.public_key()})


@pytest.mark.parametrize("bad", [dict(expires_at=1000), dict(classes=("PCI",)), dict(trust_root="sha256:12")])
def test_claims_that_dont_hold_together_are_refused(bad: dict[str, Any]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(AttestationError):
        verify(sign(statement(claim(**bad)), key), {key_id(key.public_key()): key.public_key()})


def test_a_trust_root_digest_ignores_line_wrapping() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swarm-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    body = "".join(pem.splitlines()[1:-1])
    rewrapped = "-----BEGIN CERTIFICATE-----\n" + "\n".join(body[i : i + 40] for i in range(0, len(body), 40))
    rewrapped += "\n-----END CERTIFICATE-----\n"
    assert trust_root_digest(pem) == trust_root_digest(rewrapped)
    with pytest.raises(AttestationError):
        trust_root_digest("not a certificate")
