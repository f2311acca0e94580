from __future__ import annotations

import json

import pytest

from moorage.admission import tenancy
from moorage.admission.errors import Refusal
from moorage.identity import Principal

ALICE = Principal("alice", ("payments",), ("developer",), "peercred")


ADMIN = Principal("root", (), ("admin",), "peercred")


def test_owner_labels_are_stamped() -> None:
    body = tenancy.apply_owner_labels(
        "container.create", {"Image": "x", "Labels": {"app": "web"}}, ALICE, None
    )
    assert body["Labels"] == {"app": "web", tenancy.OWNER: "alice", tenancy.TEAM: "payments"}


@pytest.mark.parametrize("key", ["io.moorage.team", "IO.MOORAGE.team", "io.moorage.owner", "io.moorage.x"])
def test_labels_claiming_ownership_are_refused(key: str) -> None:
    with pytest.raises(Refusal) as err:
        tenancy.apply_owner_labels("container.create", {"Labels": {key: "search"}}, ALICE, None)
    assert err.value.status == 403 and "reserved" in err.value.message


def test_other_spellings_of_a_field_are_refused() -> None:
    raw = json.dumps({"Image": "x"})[:-1] + ', "labels": {"io.moorage.team": "search"}, "Labels": {}}'
    with pytest.raises(Refusal, match="twice"):
        tenancy.parse_json_strict(raw.encode(), "container.create")


def test_lower_case_labels_field_is_still_stamped() -> None:
    body = tenancy.apply_owner_labels("container.create", {"labels": {"a": "b"}}, ALICE, None)
    assert "labels" not in body and body["Labels"][tenancy.TEAM] == "payments"


def test_service_labels_reach_the_task_containers() -> None:
    spec = {"Name": "s", "TaskTemplate": {"ContainerSpec": {"Image": "x"}}}
    out = tenancy.apply_owner_labels("service.create", spec, ALICE, None)
    assert out["TaskTemplate"]["ContainerSpec"]["Labels"][tenancy.TEAM] == "payments"


def test_an_update_may_send_back_the_existing_owner_labels() -> None:
    existing = {tenancy.OWNER: "carol", tenancy.TEAM: "payments"}
    spec = {"Labels": dict(existing), "TaskTemplate": {"ContainerSpec": {"Labels": dict(existing)}}}
    out = tenancy.apply_owner_labels("service.update", spec, ALICE, existing)
    assert out["Labels"][tenancy.OWNER] == "carol"  # ownership does not move to the updater
    with pytest.raises(Refusal):
        tenancy.apply_owner_labels("service.update", {"Labels": {tenancy.TEAM: "search"}}, ALICE, existing)


def test_bad_json_is_a_400_that_says_so() -> None:
    with pytest.raises(Refusal) as err:
        tenancy.parse_json_strict(b'{"Image": ', "container.create")
    assert err.value.status == 400 and "not valid JSON" in err.value.message


def test_references_in_a_container_create_are_found_in_any_spelling() -> None:
    body = {
        "hostconfig": {  # the engine reads field names case-insensitively
            "VolumesFrom": ["other:ro"],
            "Links": ["/db:db"],
            "NetworkMode": "container:web",
            "PidMode": "container:web2",
            "IpcMode": "host",
            "Binds": ["data:/d", "/etc:/e"],
            "Mounts": [{"Type": "volume", "Source": "vol2"}, {"Type": "bind", "Source": "/x"}],
        },
        "NetworkingConfig": {"EndpointsConfig": {"backend": {}, "bridge": {}}},
    }
    refs = {(t, r) for t, r, _ in tenancy.references("container.create", body)}
    assert refs == {("container", "other"), ("container", "db"), ("container", "web"),
                    ("container", "web2"), ("volume", "data"), ("volume", "vol2"), ("network", "backend")}  # fmt: skip


def test_references_in_a_service_spec() -> None:
    spec = {"TaskTemplate": {"ContainerSpec": {"Mounts": [{"Source": "v1"}]}, "Networks": [{"Target": "n1"}]},
            "Networks": [{"Target": "n2"}]}  # fmt: skip
    assert {(t, r) for t, r, _ in tenancy.references("service.create", spec)} == {
        ("volume", "v1"), ("network", "n1"), ("network", "n2")}  # fmt: skip


def test_shared_objects_by_name_and_label() -> None:
    shared = tenancy.SharedObjects(
        networks=("ops-net",), volumes=("tools",), labels=("com.example.share=yes",)
    )
    assert shared.shares("network", "ops-net", {})
    assert not shared.shares("volume", "ops-net", {})
    assert shared.shares("volume", "tools", {})
    assert shared.shares("volume", "x", {"com.example.share": "yes"})
    assert not shared.shares("volume", "x", {"com.example.share": "no"})
    assert shared.shares("network", "x", {tenancy.SHARED: "true"})
    # containers are never shared, whatever their labels
    assert not shared.shares("container", "ops-net", {tenancy.SHARED: "true"})
    assert tenancy.SharedObjects(labels=("team-tools",)).shares("network", "n", {"team-tools": ""})


def test_only_an_admin_may_mark_an_object_shared() -> None:
    with pytest.raises(Refusal) as err:
        tenancy.stamp_labels({tenancy.SHARED: "true"}, ALICE, None, "Labels")
    assert err.value.status == 403 and "only an admin" in err.value.message
    labels = tenancy.stamp_labels({tenancy.SHARED: "true"}, ADMIN, None, "Labels")
    assert labels[tenancy.SHARED] == "true" and labels[tenancy.TEAM] == "user-root"


def test_an_update_keeps_owner_labels_the_client_never_saw() -> None:
    existing = {tenancy.OWNER: "bob", tenancy.TEAM: "payments", tenancy.SHARED: "true", "app": "old"}
    labels = tenancy.stamp_labels({"app": "new"}, ALICE, existing, "Labels")
    assert labels == {"app": "new", tenancy.OWNER: "bob", tenancy.TEAM: "payments", tenancy.SHARED: "true"}


def test_a_create_names_its_image_and_a_build_its_network() -> None:
    refs = tenancy.references("container.create", {"Image": "app:1", "HostConfig": {"NetworkMode": "host"}})
    assert ("image", "app:1", "Image") in refs
    assert ("network", "host", "HostConfig.NetworkMode") in refs  # nobody's network, not a builtin
    refs = tenancy.references("container.create", {"Image": "x", "HostConfig": {"NetworkMode": "bridge"}})
    assert all(t != "network" for t, _, _ in refs)
    spec = {"TaskTemplate": {"ContainerSpec": {"Image": "svc:2"}}}
    assert ("image", "svc:2", "TaskTemplate.ContainerSpec.Image") in tenancy.references(
        "service.create", spec
    )
    assert tenancy.build_references({"networkmode": ["container:abc"]}) == [
        ("container", "abc", "networkmode")
    ]
    assert tenancy.build_references({"networkmode": ["ops"]}) == [("network", "ops", "networkmode")]
    assert tenancy.build_references({"networkmode": ["default"]}) == []
    assert tenancy.build_references({}) == []


@pytest.mark.parametrize(
    ("repo", "tag", "name"),
    [("app", "", "app:latest"), ("app", "v1", "app:v1"), ("127.0.0.1:5000/app", "", "127.0.0.1:5000/app:latest"),
     ("127.0.0.1:5000/app:2", "", "127.0.0.1:5000/app:2"), ("app@sha256:ab", "", "app@sha256:ab")],
)  # fmt: skip
def test_image_names_as_the_tag_store_keys_them(repo: str, tag: str, name: str) -> None:
    assert tenancy.image_name(repo, tag) == name
