from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from moorage.admission import tenancy
from moorage.gateway import answers
from moorage.gateway.http import HttpError
from moorage.identity import Principal

ALICE = Principal("alice", ("payments",), ("developer",), "peercred")


ADMIN = Principal("root", (), ("admin",), "peercred")


def test_team_filter_is_added_to_the_clients_filters() -> None:
    target = answers.inject_team_filter(
        '/v1.41/containers/json?all=1&filters={"label":["app=web"]}', "payments"
    )
    params = parse_qs(target.split("?", 1)[1])
    assert params["all"] == ["1"]
    assert json.loads(params["filters"][0])["label"] == ["app=web", "io.moorage.team=payments"]
    legacy = answers.inject_team_filter('/containers/json?filters={"label":{"a=b":true}}', "t")
    assert json.loads(parse_qs(legacy.split("?", 1)[1])["filters"][0])["label"] == {
        "a=b": True,
        "io.moorage.team=t": True,
    }
    # `docker service ps` sends the legacy form for other keys; the label must match it
    mixed = answers.inject_team_filter('/services?filters={"name":{"web":true}}', "t")
    assert json.loads(parse_qs(mixed.split("?", 1)[1])["filters"][0]) == {
        "name": {"web": True},
        "label": {"io.moorage.team=t": True},
    }
    with pytest.raises(HttpError):
        answers.inject_team_filter("/containers/json?filters=nope", "t")


def test_owner_labels_are_taken_out_of_every_answer_shape() -> None:
    mine = {"app": "web", tenancy.OWNER: "alice", tenancy.TEAM: "payments", "IO.Moorage.x": "1"}
    service = {"Spec": {"Labels": dict(mine), "TaskTemplate": {"ContainerSpec": {"Labels": dict(mine),
               "Mounts": [{"VolumeOptions": {"Labels": dict(mine)}}]}}}, "PreviousSpec": {"Labels": dict(mine)}}  # fmt: skip
    out = answers.strip_labels(service)
    spec = out["Spec"]
    assert spec["Labels"] == {"app": "web"} and out["PreviousSpec"]["Labels"] == {"app": "web"}
    assert spec["TaskTemplate"]["ContainerSpec"]["Labels"] == {"app": "web"}
    assert spec["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["VolumeOptions"]["Labels"] == {"app": "web"}
    event = {"Type": "container", "Actor": {"ID": "x", "Attributes": {"name": "c", tenancy.TEAM: "payments"}}}
    assert answers.strip_labels(event)["Actor"]["Attributes"] == {"name": "c"}
    listing = [{"Id": "1", "Labels": dict(mine)}, {"Id": "2", "Labels": None}]
    assert [c["Labels"] for c in answers.strip_labels(listing)] == [{"app": "web"}, None]
    # a label value or another field that merely mentions the prefix is left alone
    doc = {"Config": {"Labels": {"note": "io.moorage.team"}, "Env": ["X=io.moorage.team"]}}
    assert answers.strip_labels(json.loads(json.dumps(doc))) == doc


def test_an_answer_without_our_labels_passes_byte_for_byte() -> None:
    raw = b'{"Name":"v","Labels":{"a":"b"},"Weird":1.50}\n'
    assert answers.strip_answer(raw) is raw
    raw = b'{"Name":"v","Labels":{"a":"\xc3\xa9","io.moorage.team":"payments"}}\n'
    assert json.loads(answers.strip_answer(raw)) == {"Name": "v", "Labels": {"a": "\u00e9"}}
    assert answers.strip_answer(raw).endswith(b"}\n")
    assert answers.strip_answer(b"io.moorage. not json") == b"io.moorage. not json"
