"""The canonical request: Go's reading of bodies, the engine router's reading of targets."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from moorage.engine_api import gojson
from moorage.engine_api.canonical import RequestError, encode_body, read_body, read_target
from moorage.engine_api.models import BODY_TYPES, SCHEMA

FIXTURES = Path(__file__).parents[2] / "fixtures" / "engine_api"


def create(raw: str | bytes) -> Any:
    data = raw.encode() if isinstance(raw, str) else raw
    return read_body("container.create", data).value


# ------------------------------------------------------------------ key matching
@pytest.mark.parametrize(
    "key",
    ["Privileged", "privileged", "PRIVILEGED", "pRiViLeGeD", "\\u0050rivileged", "Privilege\\u0064"],
)
def test_key_spellings_reach_the_same_field(key: str) -> None:
    body = create(f'{{"Image":"x","HostConfig":{{"{key}":true}}}}')
    assert body["HostConfig"] == {"Privileged": True}


def test_unicode_simple_folds_match_s_and_k() -> None:
    # U+017F (long s) folds to s, U+212A (Kelvin sign) to k: Go matches both.
    body = create('{"Image":"x","HostConfig":{"Binds":["/:/h"],"\u017fecurityOpt":["a"],"Lin\u212as":["c"]}}')
    assert body["HostConfig"]["SecurityOpt"] == ["a"]
    assert body["HostConfig"]["Links"] == ["c"]


def test_other_non_ascii_letters_do_not_fold() -> None:
    key = "Pr\u0131vileged"  # dotless i: not a simple fold of i
    decoded = read_body("container.create", json.dumps({"Image": "x", "HostConfig": {key: True}}).encode())
    assert f"HostConfig.{key}" in decoded.unknown
    assert decoded.value["HostConfig"] == {}


# ------------------------------------------------------------------- duplicates
def test_later_scalar_wins() -> None:
    body = create('{"Image":"x","HostConfig":{"Privileged":false,"privileged":true}}')
    assert body["HostConfig"]["Privileged"] is True


def test_repeated_object_merges() -> None:
    body = create('{"Image":"x","HostConfig":{"Privileged":true},"HostConfig":{"Memory":5}}')
    assert body["HostConfig"] == {"Privileged": True, "Memory": 5}


def test_map_takes_the_last_value_per_key_and_merges_keys() -> None:
    body = create('{"Image":"x","Labels":{"a":"1"},"Labels":{"b":"2","a":"3"}}')
    assert body["Labels"] == {"a": "3", "b": "2"}


def test_repeated_array_is_decoded_into_the_existing_slice() -> None:
    # Go reuses the slice's elements: the second Mounts merges into the first element.
    body = create(
        '{"Image":"x","HostConfig":{"Mounts":[{"Type":"bind","Source":"/","Target":"/a"}]},'
        '"HostConfig":{"Mounts":[{"Target":"/b"}]}}'
    )
    assert body["HostConfig"]["Mounts"] == [{"Type": "bind", "Source": "/", "Target": "/b"}]


def test_null_clears_pointers_and_leaves_values() -> None:
    body = create(
        '{"Image":"x","HostConfig":{"Privileged":true,"Privileged":null,"Binds":["a:/b"],"Binds":null}}'
    )
    assert body["HostConfig"]["Privileged"] is True  # a bool is not a pointer
    assert body["HostConfig"]["Binds"] is None
    body = create('{"Image":"x","HostConfig":{"PidsLimit":5,"PidsLimit":null}}')
    assert body["HostConfig"]["PidsLimit"] is None


def test_empty_and_absent_lists_stay_distinct() -> None:
    assert create('{"Image":"x","HostConfig":{"MaskedPaths":[]}}')["HostConfig"]["MaskedPaths"] == []
    assert "MaskedPaths" not in create('{"Image":"x","HostConfig":{}}')["HostConfig"]


# ------------------------------------------------------------------ wrapper
def test_top_level_host_config_is_the_host_config_without_an_inner_one() -> None:
    body = create('{"Image":"x","Privileged":true,"Binds":["/:/host"],"CapAdd":"SYS_ADMIN"}')
    assert body == {
        "Image": "x",
        "HostConfig": {"Privileged": True, "Binds": ["/:/host"], "CapAdd": ["SYS_ADMIN"]},
    }


def test_with_an_inner_host_config_only_five_top_fields_fill_its_blanks() -> None:
    body = create('{"Image":"x","Privileged":true,"Memory":1024,"Cpuset":"0","HostConfig":{"CpuShares":2}}')
    assert body["HostConfig"] == {"CpuShares": 2, "Memory": 1024, "CpusetCpus": "0"}


# ------------------------------------------------------------------ types
def test_string_or_list() -> None:
    body = create('{"Image":"x","Cmd":"echo hi","Entrypoint":["sh","-c"],"HostConfig":{"CapDrop":"ALL"}}')
    assert body["Cmd"] == ["echo hi"]
    assert body["HostConfig"]["CapDrop"] == ["ALL"]


@pytest.mark.parametrize(
    "raw",
    [
        '{"Image":"x","HostConfig":{"Binds":5}}',  # a number where a list is expected
        '{"Image":"x","HostConfig":{"Memory":1.5}}',
        '{"Image":"x","HostConfig":{"Memory":1e3}}',
        '{"Image":"x","HostConfig":{"Memory":"5"}}',
        '{"Image":"x","HostConfig":{"Memory":99999999999999999999}}',
        '{"Image":"x","HostConfig":{"Privileged":"true"}}',
        '{"Image":"x","HostConfig":{"Memory":NaN}}',
        '{"Image":"x"} {"Image":"y"}',
        '{"Image":"x",}',
        "\ufeff{}",
        '{"Image":"x","HostConfig":{"Binds":[null]}}',
    ],
)
def test_what_go_refuses_is_refused(raw: str) -> None:
    with pytest.raises(RequestError) as err:
        create(raw)
    assert err.value.status == 400


def test_unknown_fields_are_named() -> None:
    decoded = read_body("container.create", b'{"Image":"x","HostConfig":{"Frobnicate":1},"Zap":2}')
    assert set(decoded.unknown) == {"HostConfig.Frobnicate", "Zap"}
    kept = read_body("container.create", b'{"Image":"x","Zap":2}', keep_unknown=True)
    assert kept.value["Zap"] == 2


def test_lone_surrogates_become_replacement_characters() -> None:
    body = create('{"Image":"x","Labels":{"a":"\\ud800"}}')
    assert body["Labels"]["a"] == "\ufffd"


def test_base64_fields_are_checked_and_canonical() -> None:
    good = read_body("secret.create", b'{"Name":"s","Data":"aGk=\\n"}').value
    assert good["Data"] == "aGk="
    with pytest.raises(RequestError):
        read_body("secret.create", b'{"Name":"s","Data":"not base64!"}')


# ------------------------------------------------------------ the spec coverage
def _walk(
    node: dict[str, Any], typ: Any, defs: dict[str, Any], where: str, missing: list[str], depth: int = 0
) -> None:
    """Every property the specification gives a request body must be a field of the
    model the decoder uses at that place (same name, exactly)."""
    if depth > 12 or typ is None:
        return
    if "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[1]]
    tag = typ[0]
    if tag == "list" or tag == "arr":
        if "items" in node:
            _walk(node["items"], typ[-1], defs, where + "[]", missing, depth + 1)
        return
    if tag == "map":
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            _walk(extra, typ[1], defs, where + "{}", missing, depth + 1)
        return
    if tag != "obj":
        return
    fields = SCHEMA.models[typ[1]]
    for part in node.get("allOf") or [node]:
        if "$ref" in part:
            _walk(part, typ, defs, where, missing, depth + 1)
            continue
        for name, sub in (part.get("properties") or {}).items():
            if name not in fields:
                missing.append(f"{where}.{name}")
                continue
            _walk(sub, fields[name], defs, f"{where}.{name}", missing, depth + 1)


@pytest.mark.parametrize("version", ["1.41", "1.47", "1.51"])
def test_every_request_field_of_the_specification_is_modelled(version: str) -> None:
    doc = yaml.safe_load(gzip.decompress((FIXTURES / f"swagger-v{version}.yaml.gz").read_bytes()))
    missing: list[str] = []
    checked = 0
    for route, ops in doc["paths"].items():
        for method, op in ops.items():
            if not isinstance(op, dict):
                continue
            for prm in op.get("parameters", []):
                schema = prm.get("schema") or {}
                if prm.get("in") != "body" or schema.get("type") == "string":
                    continue
                path = route.replace("{id}", "x").replace("{name}", "x")
                kind = read_target(method.upper(), path).op.kind
                if kind in ("volume.update", "system.auth"):
                    continue  # cluster volumes (not on 20.10); /auth is a read
                assert kind in BODY_TYPES, f"{method.upper()} {route} has a body but no model"
                typ = BODY_TYPES[kind]
                if kind == "container.create":
                    typ = ("obj", "ContainerCreateWrapper")
                _walk(schema, typ, doc["definitions"], kind, missing)
                checked += 1
    assert checked >= 20
    assert missing == []


# ------------------------------------------------------------------ targets
@pytest.mark.parametrize(
    ("method", "target", "kind", "ref"),
    [
        ("POST", "/containers/%63reate", "container.create", None),
        ("POST", "/v1.41/containers/create", "container.create", None),
        ("POST", "/v01.041/containers/create", "container.create", None),
        ("POST", "/containers/a%62c/start", "container.start", "abc"),
        ("GET", "/images/127.0.0.1:5000%2Fapp/json", "image.inspect", "127.0.0.1:5000/app"),
    ],
)
def test_targets_are_read_as_the_router_reads_them(
    method: str, target: str, kind: str, ref: str | None
) -> None:
    t = read_target(method, target)
    assert t.op.kind == kind
    assert t.op.object_ref == ref


@pytest.mark.parametrize(
    "target",
    ["/v1.23/containers/x/start", "/v1.99/_ping", "/v1.41.0/_ping", "/v1..41/_ping", "//containers/json",
     "/containers/./json", "/containers/x/../y/json", "/containers/%zz/json", "/_ping#x", "/_ping?a=1;b=2",
     "http://x/_ping", "/containers/\x01"],
)  # fmt: skip
def test_targets_the_engine_reads_otherwise_are_refused(target: str) -> None:
    with pytest.raises(RequestError):
        read_target("GET", target, (1, 41))


def test_the_first_value_of_a_parameter_is_what_is_forwarded() -> None:
    t = read_target("POST", "/build?networkmode=default&networkmode=host&t=a&t=b&n%65tworkmode=x")
    assert t.query["networkmode"] == ["default"]
    assert t.query["t"] == ["a", "b"]
    assert t.encoded == "/build?networkmode=default&t=a&t=b"


# ----------------------------------------------------------- round trip
_keys = st.sampled_from(["Privileged", "privileged", "Binds", "CapAdd", "Memory", "PidsLimit", "Mounts"])
_vals = st.one_of(st.booleans(), st.integers(-5, 5), st.none(), st.text(max_size=3),
                  st.lists(st.text(max_size=3), max_size=3))  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_keys, _vals), max_size=6))
def test_the_canonical_encoding_reads_back_to_itself(pairs: list[tuple[str, Any]]) -> None:
    """Whatever the client sent, the bytes forwarded decode to exactly what was judged."""
    raw = (
        '{"Image":"x","HostConfig":{' + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}}"
    )
    try:
        first = create(raw)
    except RequestError:
        return
    again = read_body("container.create", encode_body(first))
    assert again.value == first
    assert again.unknown == ()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_is_refused_cleanly(raw: bytes) -> None:
    try:
        read_body("container.create", raw)
    except RequestError as exc:
        assert exc.status == 400


def test_fold_is_ascii_lower_for_ascii() -> None:
    assert gojson.fold("HostConfig") == "hostconfig"


@pytest.mark.parametrize("digits", [22, 5000])
def test_numbers_too_long_for_go_are_refused_not_crashed(digits: int) -> None:
    for field in ("Memory", "NanoCpus"):
        with pytest.raises(RequestError):
            create('{"Image":"x","HostConfig":{"%s":%s}}' % (field, "1" * digits))  # noqa: UP031


def test_list_parameters_the_engine_reads_whole_are_kept_whole() -> None:
    t = read_target("POST", "/build?extrahosts=a:1.2.3.4&extrahosts=b:1.2.3.4&securityopt=x&securityopt=y")
    assert t.query == {"extrahosts": ["a:1.2.3.4", "b:1.2.3.4"], "securityopt": ["x", "y"]}


def test_an_unknown_field_set_to_null_sets_nothing_and_is_dropped() -> None:
    """docker-py >= 7.1 sends {"NetworkingConfig": {"NAME": null}}; Go ignores it."""
    decoded = read_body("container.create", b'{"Image":"x","NetworkingConfig":{"net1":null}}')
    assert decoded.unknown == () and decoded.value["NetworkingConfig"] == {}


def test_a_link_name_is_a_container_reference() -> None:
    t = read_target("DELETE", "/containers/app/db?link=1")
    assert (t.op.kind, t.op.object_ref) == ("container.delete", "app/db")
