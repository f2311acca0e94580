"""Test doubles for the cluster modules: a Swarm manager answering the few Engine API
calls trust and the reconciler make, a clock cell, officers' keys and certificates."""

from __future__ import annotations

import base64
import copy
import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from moorage.cluster.attestation import key_id, sign
from moorage.cluster.store import ClusterStore
from moorage.cluster.trust import ClusterTrust
from moorage.store.sqlite import SqliteDatabase

T0 = 1_700_000_000  # an integer clock: issuedAt is int(clock())


def self_signed_pem(cn: str = "swarm-ca") -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


PEM = self_signed_pem()
OTHER_PEM = self_signed_pem("another-ca")


def node_doc(
    node_id: str,
    role: str = "worker",
    availability: str = "active",
    labels: dict[str, str] | None = None,
    pem: str = PEM,
) -> dict[str, Any]:
    return {
        "ID": node_id,
        "Version": {"Index": 10},
        "Spec": {"Role": role, "Availability": availability, "Labels": dict(labels or {})},
        "Description": {"Hostname": f"host-{node_id}", "TLSInfo": {"TrustRoot": pem}},
        "Status": {"State": "ready"},
    }


def service_doc(service_id: str, name: str, *constraints: str) -> dict[str, Any]:
    return {
        "ID": service_id,
        "Version": {"Index": 5},
        "Spec": {"Name": name, "TaskTemplate": {"Placement": {"Constraints": list(constraints)}}},
    }


class FakeEngine:
    """Answers like a Swarm manager; every POST is kept in ``posts``; updates check
    the version they name, as swarmkit does."""

    def __init__(self, pem: str = PEM) -> None:
        self.swarm: dict[str, Any] = {
            "ID": "swarm1",
            "TLSInfo": {"TrustRoot": pem},
            "Version": {"Index": 1},
            "Spec": {},
        }
        self.nodes: dict[str, dict[str, Any]] = {}
        self.services: dict[str, dict[str, Any]] = {}
        self.tasks: list[dict[str, Any]] = []
        self.own_node = ""
        self.posts: list[tuple[str, Any]] = []

    def add_node(self, doc: dict[str, Any]) -> None:
        self.nodes[doc["ID"]] = doc

    def add_service(self, doc: dict[str, Any]) -> None:
        self.services[doc["ID"]] = doc

    def set_labels(self, node_id: str, labels: dict[str, str]) -> None:
        """An edit made with the docker CLI, behind Moorage's back."""
        doc = self.nodes[node_id]
        doc["Spec"]["Labels"] = dict(labels)
        doc["Version"]["Index"] += 1

    def labels(self, node_id: str) -> dict[str, str]:
        return dict(self.nodes[node_id]["Spec"]["Labels"])

    def constraints(self, service_id: str) -> list[str]:
        return list(self.services[service_id]["Spec"]["TaskTemplate"]["Placement"]["Constraints"])

    async def call_json(self, method: str, path: str, limit: int = 0, body: Any = None) -> tuple[int, Any]:
        url = urlsplit(path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        query = parse_qs(url.query)
        if method == "POST":
            self.posts.append((path, copy.deepcopy(body)))
        if method == "GET" and parts == ["swarm"]:
            return 200, copy.deepcopy(self.swarm)
        if method == "GET" and parts == ["info"]:
            return 200, {"Swarm": {"NodeID": self.own_node}}
        if parts[0] == "nodes":
            return self._nodes(method, parts, query, body)
        if parts[0] == "services":
            return self._services(method, parts, query, body)
        if method == "GET" and parts == ["tasks"]:
            filters = json.loads(query.get("filters", ["{}"])[0])
            out = [
                t
                for t in self.tasks
                if t["NodeID"] in filters.get("node", [t["NodeID"]])
                and t["DesiredState"] in filters.get("desired-state", [t["DesiredState"]])
            ]
            return 200, copy.deepcopy(out)
        return 404, {"message": f"page not found: {method} {path}"}

    def _nodes(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        if method == "GET" and len(parts) == 1:
            return 200, copy.deepcopy(list(self.nodes.values()))
        doc = self.nodes.get(parts[1]) or next(  # by ID or hostname, as dockerd does
            (d for d in self.nodes.values() if d["Description"]["Hostname"] == parts[1]), None
        )
        if doc is None:
            return 404, {"message": f"node {parts[1]} not found"}
        if method == "GET" and len(parts) == 2:
            return 200, copy.deepcopy(doc)
        if method == "POST" and parts[2:] == ["update"]:
            return self._update(doc, query, body)
        return 404, {"message": "page not found"}

    def _services(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        if method == "GET" and len(parts) == 1:
            return 200, copy.deepcopy(list(self.services.values()))
        doc = self.services.get(parts[1])
        if doc is None:
            return 404, {"message": f"service {parts[1]} not found"}
        if method == "GET" and len(parts) == 2:
            return 200, copy.deepcopy(doc)
        if method == "POST" and parts[2:] == ["update"]:
            status, answer = self._update(doc, query, body)
            return status, ({"Warnings": None} if status == 200 else answer)
        return 404, {"message": "page not found"}

    @staticmethod
    def _update(doc: dict[str, Any], query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if query.get("version") != [str(doc["Version"]["Index"])]:
            return 500, {"message": "update out of sequence"}
        doc["Spec"] = copy.deepcopy(body)
        doc["Version"]["Index"] += 1
        return 200, None


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: list[float] = field(default_factory=lambda: [float(T0)])

    def __call__(self) -> float:
        return self.now[0]

    def advance(self, seconds: float) -> None:
        self.now[0] += seconds


@dataclass
class Officers:
    """Security officers' keys; ``keys`` is read at every call, as the gateway does."""

    private: dict[str, ec.EllipticCurvePrivateKey] = field(default_factory=dict)
    keys: dict[str, tuple[str, ec.EllipticCurvePublicKey]] = field(default_factory=dict)

    def add(self, user: str) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        self.private[user] = key
        self.keys[key_id(key.public_key())] = (user, key.public_key())
        return key

    def remove(self, user: str) -> None:
        self.keys = {k: v for k, v in self.keys.items() if v[0] != user}

    def __call__(self) -> Mapping[str, tuple[str, ec.EllipticCurvePublicKey]]:
        return dict(self.keys)


@dataclass
class World:
    engine: FakeEngine
    store: ClusterStore
    clock: Clock
    officers: Officers
    trust: ClusterTrust


def world(exclusive: frozenset[str] = frozenset()) -> World:
    store = ClusterStore(SqliteDatabase(Path(":memory:"), "cluster"))
    engine, clock, officers = FakeEngine(), Clock(), Officers()
    officers.add("sofia")
    officers.add("sid")
    trust = ClusterTrust(store, officers, exclusive=exclusive, clock=clock)
    return World(engine, store, clock, officers, trust)


def signed(stmt: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """The approval body: the statement's payload signed by ``key``."""
    return {"envelope": sign(base64.b64decode(stmt["payload"]), key)}


async def attest(
    w: World,
    node_id: str,
    classes: list[str] | None = None,
    expires: str = "90d",
    requester: str = "olga",
    approver: str = "sofia",
) -> str:
    """Request, fetch the statement, sign it, approve; the request id."""
    req = await w.trust.request(
        w.engine,
        {"node": node_id, "classes": classes or ["pci"], "evidence": "QSA-2024-17", "expires": expires},
        requester,
    )
    stmt = await w.trust.statement(w.engine, req["id"])
    await w.trust.approve(w.engine, req["id"], signed(stmt, w.officers.private[approver]), approver)
    return str(req["id"])
