"""The cluster's pure core: DSSE-signed in-toto attestations, constraint spellings,
the label projection, and swarm update classification."""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from moorage.cluster.attestation import (
    AttestationError,
    Claim,
    key_id,
    pae,
    sign,
    statement,
    trust_root_digest,
    verify,
)
from moorage.cluster.placement import (
    canonical_constraint,
    class_of_constraints,
    govern_service,
    moorage_labels,
    projected_labels,
)
from moorage.cluster.swarmops import ca_rotates, classify_update

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


def service(*constraints: str) -> dict[str, Any]:
    return {"TaskTemplate": {"Placement": {"Constraints": list(constraints)}}}


def test_every_service_gets_enrolled_nodes_and_class_services_their_class() -> None:
    plain = govern_service(service(), "", {"pci"}, {"n3"})
    assert plain.body["TaskTemplate"]["Placement"]["Constraints"] == [
        "node.labels.io.moorage.enrolled==true",
        "node.labels.io.moorage.attested.pci!=true",
    ]
    pci = govern_service(service(), "pci", {"pci"}, {"n3"})
    assert pci.body["TaskTemplate"]["Placement"]["Constraints"] == [
        "node.labels.io.moorage.enrolled==true",
        "node.labels.io.moorage.attested.pci==true",
        "node.id!=n3",
    ]
    again = govern_service(pci.body, "pci", {"pci"}, {"n3"})
    assert again.added == [] and again.refused == []


@pytest.mark.parametrize(
    "constraint",
    [
        "node.labels.io.moorage.attested.pci!=true",
        "NODE.LABELS.io.moorage.attested.pci == false",
        "node.labels.io.moorage.enrolled!=true",
        "node.labels.IO.MOORAGE.attested.pci==true",
        "node.labels.io.moorage.attested.gold==true",
    ],
)
def test_constraints_on_moorages_labels_are_refused_in_any_spelling(constraint: str) -> None:
    assert govern_service(service(constraint), "pci", set(), set()).refused


@pytest.mark.parametrize(
    "constraint",
    [
        "NODE.LABELS.io.moorage.enrolled == TRUE",
        "node.labels.io.moorage.attested.pci==True",
        "node.role==worker",
    ],
)
def test_spellings_that_mean_what_moorage_requires_pass(constraint: str) -> None:
    out = govern_service(service(constraint), "pci", set(), set())
    assert out.refused == []
    assert len(
        {canonical_constraint(c) for c in out.body["TaskTemplate"]["Placement"]["Constraints"]}
    ) == len(out.body["TaskTemplate"]["Placement"]["Constraints"])


def test_the_projection_and_classes() -> None:
    assert projected_labels(False, ["pci"]) == {}
    assert projected_labels(True, ["pci"]) == {
        "io.moorage.enrolled": "true",
        "io.moorage.attested.pci": "true",
    }
    assert moorage_labels({"IO.Moorage.x": "1", "rack": "r1"}) == {"IO.Moorage.x": "1"}
    assert class_of_constraints(["node.labels.io.moorage.attested.pci == TRUE", "node.id!=x"]) == {"pci"}


SPEC = {
    "Name": "default",
    "Orchestration": {"TaskHistoryRetentionLimit": 5},
    "CAConfig": {"NodeCertExpiry": 7776000000000000},
    "EncryptionConfig": {"AutoLockManagers": False},
}


@pytest.mark.parametrize(
    ("new", "query", "aspects"),
    [
        (SPEC, {}, set()),
        ({**SPEC, "CAConfig": {"NodeCertExpiry": 7776000000000000, "ForceRotate": 1}}, {}, {"ca"}),
        ({**SPEC, "EncryptionConfig": {"AutoLockManagers": True}}, {}, {"autolock"}),
        (SPEC, {"rotateWorkerToken": ["true"]}, {"tokens"}),
        (SPEC, {"ROTATEMANAGERUNLOCKKEY": ["1"]}, {"unlock-key"}),
        ({**SPEC, "Orchestration": {"TaskHistoryRetentionLimit": 3}}, {}, {"settings"}),
        (
            {k: v for k, v in SPEC.items() if k != "EncryptionConfig"},
            {},
            set(),
        ),  # left out = zero = unchanged
    ],
)
def test_swarm_updates_are_classified_by_what_they_change(new: Any, query: Any, aspects: set[str]) -> None:
    assert classify_update(SPEC, new, query) == aspects


def test_only_a_new_root_counts_as_a_ca_rotation() -> None:
    rotated = {**SPEC, "CAConfig": {"NodeCertExpiry": 7776000000000000, "ForceRotate": 1}}
    expiry = {**SPEC, "CAConfig": {"NodeCertExpiry": 3600000000000}}
    assert ca_rotates(SPEC, rotated) and not ca_rotates(SPEC, expiry) and not ca_rotates(SPEC, SPEC)
    assert ca_rotates(SPEC, {**SPEC, "CAConfig": {"SigningCACert": "-----BEGIN CERTIFICATE-----"}})
