from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from moorage.gateway import tenancy
from moorage.gateway.http import HttpError
from moorage.identity import Principal

ALICE = Principal("alice", ("payments",), ("developer",), "peercred")


def test_owner_labels_are_stamped() -> None:
    body = tenancy.apply_owner_labels(
        "container.create", {"Image": "x", "Labels": {"app": "web"}}, ALICE, None
    )
    assert body["Labels"] == {"app": "web", tenancy.OWNER: "alice", tenancy.TEAM: "payments"}


@pytest.mark.parametrize("key", ["io.moorage.team", "IO.MOORAGE.team", "io.moorage.owner", "io.moorage.x"])
def test_labels_claiming_ownership_are_refused(key: str) -> None:
    with pytest.raises(HttpError) as err:
        tenancy.apply_owner_labels("container.create", {"Labels": {key: "search"}}, ALICE, None)
    assert err.value.status == 403 and "reserved" in err.value.message


def test_other_spellings_of_a_field_are_refused() -> None:
    raw = json.dumps({"Image": "x"})[:-1] + ', "labels": {"io.moorage.team": "search"}, "Labels": {}}'
    with pytest.raises(HttpError, match="twice"):
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
    with pytest.raises(HttpError):
        tenancy.apply_owner_labels("service.update", {"Labels": {tenancy.TEAM: "search"}}, ALICE, existing)


def test_team_filter_is_added_to_the_clients_filters() -> None:
    target = tenancy.inject_team_filter(
        '/v1.41/containers/json?all=1&filters={"label":["app=web"]}', "payments"
    )
    params = parse_qs(target.split("?", 1)[1])
    assert params["all"] == ["1"]
    assert json.loads(params["filters"][0])["label"] == ["app=web", "io.moorage.team=payments"]
    legacy = tenancy.inject_team_filter('/containers/json?filters={"label":{"a=b":true}}', "t")
    assert json.loads(parse_qs(legacy.split("?", 1)[1])["filters"][0])["label"] == {
        "a=b": True,
        "io.moorage.team=t": True,
    }
    # `docker service ps` sends the legacy form for other keys; the label must match it
    mixed = tenancy.inject_team_filter('/services?filters={"name":{"web":true}}', "t")
    assert json.loads(parse_qs(mixed.split("?", 1)[1])["filters"][0]) == {
        "name": {"web": True},
        "label": {"io.moorage.team=t": True},
    }
    with pytest.raises(HttpError):
        tenancy.inject_team_filter("/containers/json?filters=nope", "t")


def test_bad_json_is_a_400_that_says_so() -> None:
    with pytest.raises(HttpError) as err:
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
