from __future__ import annotations

import pytest

from moorage.engine_api.endpoints import classify


@pytest.mark.parametrize(
    ("method", "path", "kind", "cls", "otype", "ref"),
    [
        ("GET", "/_ping", "system.ping", "system.read", None, None),
        ("HEAD", "/v1.41/_ping", "system.ping", "system.read", None, None),
        ("POST", "/v1.47/containers/create", "container.create", "container.write", None, None),
        ("POST", "/v1.24/containers/abc/start", "container.start", "container.write", "container", "abc"),
        ("DELETE", "/containers/web", "container.delete", "container.write", "container", "web"),
        ("POST", "/containers/abc/attach", "container.attach", "container.write", "container", "abc"),
        ("POST", "/exec/e1/start", "exec.start", "exec", "exec", "e1"),
        ("GET", "/images/127.0.0.1:5000/lab/debian:bookworm/json", "image.inspect", "image.read", "image",
         "127.0.0.1:5000/lab/debian:bookworm"),
        ("POST", "/images/reg/x/push", "image.push", "image.write", "image", "reg/x"),
        ("POST", "/containers/prune", "container.prune", "prune", None, None),
        ("POST", "/swarm/init", "swarm.init", "swarm.write", None, None),
        ("POST", "/services/s1/update", "service.update", "service.write", "service", "s1"),
        ("GET", "/tasks/t1/logs", "task.logs", "task.read", "task", "t1"),
        ("POST", "/secrets/create", "secret.create", "secret.write", None, None),
        ("POST", "/plugins/vieux/sshfs/enable", "plugin.enable", "plugin.write", None, "vieux/sshfs"),
        ("POST", "/session", "build.session", "build", None, None),
    ],
)  # fmt: skip
def test_known_endpoints(
    method: str, path: str, kind: str, cls: str, otype: str | None, ref: str | None
) -> None:
    op = classify(method, path)
    assert (op.kind, op.action_class, op.object_type, op.object_ref) == (kind, cls, otype, ref)


def test_version_prefix_is_kept_and_reported() -> None:
    op = classify("GET", "/v1.43/containers/json")
    assert op.version == "1.43" and op.route == "/containers/json" and op.kind == "container.list"


def test_commit_names_its_container_from_the_query() -> None:
    op = classify("POST", "/commit", {"container": ["c1"]})
    assert op.kind == "image.commit" and op.object_type == "container" and op.object_ref == "c1"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/containers/abc/secret-endpoint"), ("PATCH", "/containers/json"), ("GET", "/x")],
)
def test_unknown_is_unknown(method: str, path: str) -> None:
    assert classify(method, path).action_class == "unknown"


def test_hijack_endpoints_are_marked() -> None:
    assert classify("POST", "/containers/x/attach").hijack
    assert classify("POST", "/exec/x/start").hijack
    assert not classify("GET", "/containers/x/logs").hijack


def test_an_escaped_slash_is_a_slash_to_the_router() -> None:
    """The engine routes the percent-decoded path: /containers/a%2Fb/json is
    /containers/a/b/json, which no container route of Moorage's table matches."""
    from moorage.engine_api.canonical import read_target

    assert read_target("GET", "/containers/a%2Fb/json").op.kind == "unknown"
