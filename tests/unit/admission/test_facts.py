"""The policy-facts driver against a scripted engine: what it asks, and how it fails
closed. No engine, no network."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from moorage.admission.facts import gather_facts
from moorage.admission.interface import AdmissionError
from moorage.policy.needs import Needs
from moorage.policy.request import Request

ALICE = {"user": "alice", "teams": ("payments",)}


class Engine:
    """Answers by path prefix; records every call; ``fail`` paths raise."""

    def __init__(self, answers: dict[str, tuple[int, Any]], fail: tuple[str, ...] = ()) -> None:
        self.answers, self.fail, self.calls = answers, fail, list[str]()

    async def call_json(self, method: str, path: str, limit: int = 0, body: Any = None) -> tuple[int, Any]:
        self.calls.append(path)
        await asyncio.sleep(0)
        if any(path.startswith(f) for f in self.fail):
            raise OSError("engine gone")
        for prefix, answer in self.answers.items():
            if path.startswith(prefix):
                return answer
        return 404, {"message": "not found"}


def _create(**body: Any) -> Request:
    return Request("container.create", {"Image": "busybox", "HostConfig": {}, **body}, **ALICE)  # type: ignore[arg-type]


def test_nothing_needed_means_no_engine_call() -> None:
    engine = Engine({})
    got = asyncio.run(gather_facts(Needs(), _create(), engine, None))
    assert engine.calls == [] and got.usage is None and got.images == ()


def test_usage_host_networks_and_image_ids_in_one_pass() -> None:
    engine = Engine({
        "/containers/json": (200, [{"Id": "c1"}, {"Id": "c2"}]),
        "/containers/c1/json": (200, {"HostConfig": {"Memory": 1 << 20, "NanoCpus": 500_000_000}}),
        "/containers/c2/json": (200, {"HostConfig": {"Memory": 1 << 20}}),
        "/networks/hostish": (200, {"Id": "n" * 64, "Driver": "host"}),
        "/images/busybox/json": (200, {"Id": "sha256:" + "b" * 64, "RepoDigests": ["busybox@sha256:" + "c" * 64]}),
    })  # fmt: skip
    need = Needs(usage=True, image_ids=True, engine=frozenset({"host_networks"}))
    got = asyncio.run(gather_facts(need, _create(HostConfig={"NetworkMode": "hostish"}), engine, None))
    assert got.usage is not None and got.usage.containers == 2 and got.usage.memory == 2 << 20
    assert got.host_networks == ("hostish", "n" * 64)
    assert got.images == ("sha256:" + "b" * 64, "sha256:" + "c" * 64)


def test_usage_that_cannot_be_counted_is_left_out_for_the_core_to_deny() -> None:
    engine = Engine({}, fail=("/containers/json",))
    got = asyncio.run(gather_facts(Needs(usage=True), _create(), engine, None))
    assert got.usage is None  # the core answers quota.unknown


def test_engine_state_that_cannot_be_read_refuses() -> None:
    engine = Engine({"/containers/json": (200, [])}, fail=("/networks/",))
    need = Needs(usage=True, engine=frozenset({"host_networks"}))
    with pytest.raises(AdmissionError, match="could not be read"):
        asyncio.run(gather_facts(need, _create(HostConfig={"NetworkMode": "x"}), engine, None))
