"""The sans-io ownership checks, driven with canned engine answers (no engine)."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import pytest

from moorage.admission import bodies, ownership
from moorage.admission.driver import drive
from moorage.admission.errors import ClientError, Hidden, PolicyRefusal, Refusal, UpstreamFault
from moorage.admission.ownership import CreateVolume, Fact, Inspect, ListImages, Tenancy
from moorage.admission.tenancy import SharedObjects
from moorage.engine_api.endpoints import Operation
from moorage.identity import Principal

DEV = Principal("alice", ("payments",), ("developer",), "peercred", "unix:uid=1000")
ADMIN = Principal("root", (), ("admin",), "peercred", "unix:uid=0")
INSPECT = Operation("container.inspect", "container.read", "container", "web")


class Owners:
    def __init__(self, owned: dict[str, tuple[str, ...]] | None = None) -> None:
        self.owned = owned or {}

    def teams(self, image_id: str) -> tuple[str, ...]:
        return self.owned.get(image_id, ())


def ctx(p: Principal = DEV, owners: Owners | None = None) -> Tenancy:
    return Tenancy(p, SharedObjects(), owners or Owners())


def run(check: Generator[Fact, Any, Any], answers: dict[Fact, tuple[int, Any]]) -> tuple[Any, list[Fact]]:
    """Drive ``check`` from a table of answers; also return the facts it asked for."""
    asked: list[Fact] = []
    answer: Any = None
    while True:
        try:
            fact = check.send(answer)
        except StopIteration as done:
            return done.value, asked
        asked.append(fact)
        if isinstance(fact, CreateVolume):  # labels are a dict: not a key of the table
            answer = (201, {"Name": fact.name})
            continue
        answer = answers.get(fact, (404, {"message": "no such thing"}))


def container(team: str | None, cid: str = "c" * 64) -> tuple[int, Any]:
    labels = {"io.moorage.team": team} if team else {}
    return 200, {"Id": cid, "Name": "/web", "Config": {"Labels": labels}}


def test_the_callers_own_object_resolves_to_its_full_id() -> None:
    owned, asked = run(ownership.check_owner(ctx(), INSPECT, "container", "web"),
                       {Inspect("container", "web"): container("payments")})  # fmt: skip
    assert owned.full_id == "c" * 64 and asked == [Inspect("container", "web")]


def test_another_teams_object_looks_absent_in_the_engines_words() -> None:
    with pytest.raises(Hidden) as err:
        run(ownership.check_owner(ctx(), INSPECT, "container", "web"),
            {Inspect("container", "web"): container("search")})  # fmt: skip
    assert err.value.status == 404 and err.value.answer == "No such container: web"
    assert err.value.decision == "deny"


def test_an_admin_sees_every_teams_object() -> None:
    owned, _ = run(ownership.check_owner(ctx(ADMIN), INSPECT, "container", "web"),
                   {Inspect("container", "web"): container("search")})  # fmt: skip
    assert owned.labels == {"io.moorage.team": "search"}


def test_an_exec_belongs_to_its_containers_team() -> None:
    op = Operation("exec.start", "exec", "exec", "e1")
    answers = {Inspect("exec", "e1"): (200, {"ID": "e" * 64, "ContainerID": "c1"}),
               Inspect("container", "c1"): container("search")}  # fmt: skip
    with pytest.raises(Hidden):
        run(ownership.check_owner(ctx(), op, "exec", "e1"), answers)


def test_a_missing_volume_is_created_owned_by_the_caller() -> None:
    _, asked = run(ownership.check_use(ctx(), "volume", "data"), {})
    assert isinstance(asked[1], CreateVolume) and asked[1].labels["io.moorage.team"] == "payments"


def test_a_reference_to_another_teams_container_is_a_400_naming_the_field() -> None:
    body = {"Image": "alpine", "HostConfig": {"VolumesFrom": ["db"]}}
    answers = {Inspect("container", "db"): container("search")}
    with pytest.raises(ClientError) as err:
        run(ownership.check_references(ctx(), "container.create", body), answers)
    assert err.value.status == 400 and err.value.decision == "error"
    assert err.value.answer == "moorage: No such container: db (named in HostConfig.VolumesFrom[0])"


def test_a_tag_may_not_write_over_another_teams_image() -> None:
    op = Operation("image.tag", "image.write", "image", "alpine")
    answers = {Inspect("image", "app:1"): (200, {"Id": "sha256:x", "Config": {}})}
    owners = Owners({"sha256:x": ("search",)})
    with pytest.raises(PolicyRefusal, match="another team's image"):
        run(ownership.check_targets(ctx(owners=owners), op, {"repo": ["app"], "tag": ["1"]}), answers)


def test_pulling_every_tag_asks_for_the_local_tags() -> None:
    op = Operation("image.pull", "image.write")
    answers: dict[Fact, tuple[int, Any]] = {ListImages("app"): (500, "down")}
    with pytest.raises(UpstreamFault):
        run(ownership.check_targets(ctx(), op, {"fromImage": ["app"]}), answers)


def test_a_rollback_without_a_previous_spec_is_refused() -> None:
    with pytest.raises(ClientError, match="no previous spec"):
        run(bodies.previous_spec("s1"), {Inspect("service", "s1"): (200, {"ID": "s1"})})


def test_the_build_reads_are_checked_by_line() -> None:
    answers = {Inspect("image", "secret-base"): (200, {"Id": "sha256:b", "Config": {}})}
    check = bodies.check_build_reads(
        ctx(owners=Owners({"sha256:b": ("search",)})), b"FROM secret-base\n", "", ""
    )
    with pytest.raises(Refusal) as err:
        run(check, answers)
    assert err.value.status == 400 and "line 1" in err.value.message


def test_the_driver_answers_facts_from_the_engine() -> None:
    class Engine:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        async def call_json(
            self, method: str, path: str, limit: int = 0, body: Any = None
        ) -> tuple[int, Any]:
            self.calls.append((method, path))
            return container("payments")

    engine = Engine()
    owned = asyncio.run(drive(ownership.check_owner(ctx(), INSPECT, "container", "a b"), engine))
    assert owned.full_id == "c" * 64 and engine.calls == [("GET", "/containers/a%20b/json")]
