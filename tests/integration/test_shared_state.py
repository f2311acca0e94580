"""State two gateways share through one store, on both backends: what gateway A
changes, gateway C (another Store object on the same store, as another process
would hold) acts on. Each test opens the store twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from moorage.admission.compliance import Inputs, judge
from moorage.admission.exceptions import ExceptionsError, ExceptionStore
from moorage.admission.guard import refusal
from moorage.admission.running import build_snapshot
from moorage.admission.sweeper import ComplianceResults, Sweeper, grants_digest
from moorage.cluster.store import ClusterStore, Request
from moorage.identity.certs import CertStore, spki_digest
from moorage.identity.interface import Identity
from moorage.identity.mapping import Grant
from moorage.identity.pki import Pki
from moorage.policy.decision import Request as PolicyRequest
from moorage.policy.documents import parse_document
from moorage.policy.loader import PolicySet
from tests.integration.conftest import Opener

pytestmark = pytest.mark.integration


def _within(seconds: float, done: Callable[[], bool]) -> float:
    """How long until ``done()``; fails after ``seconds``."""
    start = time.monotonic()
    while not done():
        assert time.monotonic() - start < seconds, "not seen in time"
        time.sleep(0.01)
    return time.monotonic() - start


def _csr(key: ec.EllipticCurvePrivateKey) -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pat")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def test_a_certificate_revoked_through_gateway_a_is_refused_by_gateway_c(
    opener: Opener, tmp_path: Path
) -> None:
    pki = Pki(tmp_path / "pki")  # the CA every gateway shares
    first = opener()
    first.migrate()
    a = CertStore(first.database("certs"), pki)
    c = CertStore(opener().database("certs"), pki)
    key = ec.generate_private_key(ec.SECP256R1())
    _, record = a.issue(
        _csr(key), Identity("ldap", "uid=pat", "pat"), Grant(("payments",), ("developer",)), 3600
    )
    digest = spki_digest(key.public_key())
    assert c.live(record.serial, digest)[0] == record  # issued by A, live on C
    assert a.revoke(None, "sofia", "left the team", user="pat") == [record.serial]
    _within(1.0, lambda: c.live(record.serial, digest)[0] is None)
    assert "revoked" in c.live(record.serial, digest)[1]


def test_an_id_token_is_spent_once_across_gateways(opener: Opener, tmp_path: Path) -> None:
    first = opener()
    first.migrate()
    a = CertStore(first.database("certs"), Pki(tmp_path / "pki"))
    c = CertStore(opener().database("certs"), Pki(tmp_path / "pki"))
    assert a.spend_token("digest-1", time.time() + 60)
    assert not c.spend_token("digest-1", time.time() + 60)  # replayed at another gateway


def test_an_enrolment_token_enrols_once_across_gateways(opener: Opener, tmp_path: Path) -> None:
    first = opener()
    first.migrate()
    a = CertStore(first.database("certs"), Pki(tmp_path / "pki"))
    c = CertStore(opener().database("certs"), Pki(tmp_path / "pki"))
    token = a.create_account("ci", "payments", ("developer",), 3600, "olga")
    who, grant, lifetime = c.redeem(token)
    assert who.user == "ci" and grant.teams == ("payments",) and lifetime == 3600
    with pytest.raises(Exception, match="already used"):
        a.redeem(token)


def test_an_exception_approved_or_revoked_through_a_counts_on_c_within_a_second(opener: Opener) -> None:
    first = opener()
    first.migrate()
    a = ExceptionStore(first.database("exceptions"))
    c = ExceptionStore(opener().database("exceptions"))
    item = a.request("alice", ("payments",), False,
                     {"rule": "runtime.privileged", "team": "payments", "reason": "a driver needs it"})["id"]  # fmt: skip
    assert c.active() == ()
    with pytest.raises(ExceptionsError, match="another security officer"):
        c.approve(item, "alice", ("security-officer",))  # four eyes hold on every gateway
    a.approve(item, "sofia", ("security-officer",))
    _within(1.0, lambda: [g.id for g in c.active()] == [item])
    c.revoke(item, "sofia", ("security-officer",))
    _within(1.0, lambda: a.active() == ())


def test_an_attestation_approved_or_revoked_through_a_is_seen_by_c(opener: Opener) -> None:
    first = opener()
    first.migrate()
    a = ClusterStore(first.database("cluster"))
    c = ClusterStore(opener().database("cluster"))
    a.add_request(Request("ATT-1", "node-1", ("pci",), "audit 42", 86400, "olga", 1.0, "pending",
                          None, None, None, None, None, None, None))  # fmt: skip
    assert c.approve("ATT-1", "sofia", 2.0, 86402.0, {"statement": "signed"}, "sofia")
    assert not a.approve("ATT-1", "sid", 3.0, 86403.0, {"statement": "again"}, "sid")  # approved once
    seen = a.request("ATT-1")
    assert seen is not None and seen.status == "approved" and seen.envelope == {"statement": "signed"}
    assert a.revoke("ATT-1", "sofia", 4.0)
    after = c.request("ATT-1")
    assert after is not None and after.status == "revoked"
    assert a.enrol("node-1", "swarm", "olga", 1.0) and not c.enrol("node-1", "swarm", "olga", 1.0)
    assert c.pin("node-1", "pci", 1.0, "drift") and a.pins() == {"pci": {"node-1"}}


def test_compliance_results_one_gateway_keeps_are_what_another_reads_and_refuses_by(opener: Opener) -> None:
    """The sweeper runs on one gateway; every gateway's guard and console read its results."""
    first = opener()
    first.migrate()
    text = ("apiVersion: moorage.dev/v1\nkind: Policy\nmetadata: {name: tight}\nspec:\n  mode: enforce\n"
            "  resources: {require: [memory]}\n  running: {action: block-update}\n")  # fmt: skip
    pset = PolicySet(tuple(parse_document(text, "tight.yaml")), "tight-1")
    container = {"Id": "c" * 64, "Name": "/web", "Image": "sha256:1", "State": {"Status": "running"},
                 "Config": {"Image": "busybox:1", "Labels": {"io.moorage.team": "payments"}},
                 "HostConfig": {"Memory": 0}}  # fmt: skip
    snap = build_snapshot([container], info={"CgroupVersion": "2"})
    a = ComplianceResults(first.database("compliance"))
    summary = asyncio.run(Sweeper(a, lambda: pset, None, clock=lambda: 5.0).judge(snap, images={}))
    assert (summary.objects, summary.failing) == (1, 1)
    c = ComplianceResults(opener().database("compliance"))
    for ref in ("web", "c" * 64, "c" * 12):
        report = c.get(ref)
        assert report is not None and report.status == "fail", ref
    update = PolicyRequest(
        "container.update", {"CpuShares": 512}, user="alice", teams=("payments",), object_ref="web"
    )
    assert refusal(pset, update, c.get("web")) is not None
    assert [s["objects"] for s in c.sweeps()] == [1]
    inputs = Inputs("tight-1", "", "", grants_digest(()))  # what the sweeper keyed it by
    assert judge(pset, snap.top_level()[0], inputs, now=5.0).key == c.get("web").key  # type: ignore[union-attr]
