"""The Swarm service `moorage cluster deploy` creates: global on the managers, the
store URL only in a secret, TLS published in host mode."""

from __future__ import annotations

import json
from pathlib import Path

from moorage.cluster.deploy import Deployment, secret_name

URL = "postgresql://moorage:s3cret@db.internal/moorage"


def test_the_gateway_runs_once_per_manager_in_front_of_its_own_engine() -> None:
    spec = Deployment(image="registry.local/moorage:1", store_url=URL).service(
        {name: f"id-{name}" for name, _, _ in Deployment(image="x", store_url=URL).secrets()}
    )
    assert spec["Mode"] == {"Global": {}}
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.role==manager"]
    container = spec["TaskTemplate"]["ContainerSpec"]
    args = container["Args"]
    assert args[args.index("--upstream") + 1] == "unix:///var/run/docker.sock"
    assert args[args.index("--store-file") + 1] == "/run/secrets/moorage-store"
    assert {"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/var/run/docker.sock"} in container[
        "Mounts"
    ]
    assert spec["EndpointSpec"]["Ports"][0]["PublishMode"] == "host"
    assert spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"


def test_the_store_url_is_only_in_a_secret() -> None:
    d = Deployment(image="x", store_url=URL)
    spec = d.service({name: "id" for name, _, _ in d.secrets()})
    assert "s3cret" not in json.dumps(spec)
    [(name, data, target)] = d.secrets()
    assert data == URL.encode() and target == "/run/secrets/moorage-store"
    assert spec["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretName"] == name


def test_a_new_value_is_a_new_secret_and_the_shared_ca_and_keys_are_secrets_too(tmp_path: Path) -> None:
    assert secret_name("m", b"a") != secret_name("m", b"b")
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki/ca.pem").write_text("cert")
    (tmp_path / "pki/ca-key.pem").write_text("key")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys/moorage-audit.key").write_text("audit")
    d = Deployment(image="x", store_url=URL, pki=tmp_path / "pki", audit_keys=tmp_path / "keys")
    targets = {target for _, _, target in d.secrets()}
    assert targets == {"/run/secrets/moorage-store", "/var/lib/moorage/pki/ca.pem", "/var/lib/moorage/pki/ca-key.pem",
                       "/var/lib/moorage/audit-keys/moorage-audit.key"}  # fmt: skip
