"""The per-kind table decides what the old ``if kind in ...`` sets decided."""

from __future__ import annotations

from moorage.engine_api import kinds
from moorage.engine_api.endpoints import OBJECT_TYPES


def _with(flag: str) -> set[str]:
    return {k for k, row in kinds.KINDS.items() if getattr(row, flag)}


def test_the_table_keeps_the_sets_it_replaced() -> None:
    assert _with("owner_labels") == {
        "container.create", "service.create", "service.update", "network.create", "volume.create",
        "secret.create", "secret.update", "config.create", "config.update",
    }  # fmt: skip
    assert _with("streamed_body") == {
        "image.build", "image.load", "image.pull", "container.archive.put", "plugin.create",
        "build.session", "build.grpc", "container.attach",
    }  # fmt: skip
    assert _with("team_filter") == {
        "container.list", "network.list", "volume.list", "service.list", "secret.list", "config.list",
        "system.events", "container.prune", "volume.prune", "network.prune",
    }  # fmt: skip
    assert _with("admin_only") == {"image.prune", "build.prune"}
    assert _with("warnings") == {"container.create", "service.create", "service.update"}
    assert _with("shared_use") == {"image.tag", "image.push", "network.connect", "network.disconnect"}
    assert _with("writes_image_name") == {"image.build", "image.tag", "image.commit", "image.pull"}
    assert len(_with("strips_labels")) == 19


def test_an_unlisted_kind_gets_the_safe_defaults() -> None:
    row = kinds.kind("no.such.kind")
    assert not row.owner_labels and not row.streamed_body and not row.shared_use
    assert row.path_ref == "id"


def test_every_owned_object_type_has_a_row() -> None:
    assert set(kinds.OBJECTS) == set(OBJECT_TYPES)
    assert kinds.object_type("exec").parent == ("container", "ContainerID")


def test_summaries_keep_names_and_images_never_data() -> None:
    body = {"Image": "alpine", "HostConfig": {"Privileged": True}, "Env": ["SECRET=1"]}
    assert kinds.summarise("container.create", body) == {"image": "alpine", "privileged": True}
    assert kinds.summarise("exec.create", {"Cmd": ["sh"]}) == {"user": "", "privileged": False}
    assert kinds.summarise("secret.create", {"Name": "s", "Data": "eA=="}) == {"name": "s"}
    svc = {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "nginx"}}}
    assert kinds.summarise("service.update", svc) == {"name": "web", "image": "nginx"}
    assert kinds.summarise("network.connect", {"Container": "c"}) == {"container": "c"}
    assert kinds.summarise("volume.create", []) is None


def test_each_special_case_of_the_request_phase_is_one_row() -> None:
    assert _with("keeps_owner") == {"service.update", "secret.update", "config.update"}
    assert {k: row.spool for k, row in kinds.KINDS.items() if row.spool} == {
        "image.build": "context",
        "image.load": "archive",
    }
    assert _with("rollback") == {"service.update"} and _with("by_changes") == {"swarm.update"}
    assert _with("line_stream") == {"system.events"} and _with("makes_images") == {"image.build"}
    assert {k: row.answer for k, row in kinds.KINDS.items() if row.answer} == {
        "task.list": "team-tasks",
        "system.df": "team-usage",
        "swarm.inspect": "no-join-tokens",
        "network.inspect": "same-network",
        "image.commit": "record-commit",
    }
