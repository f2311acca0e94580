"""The one driver of admission's sans-io checks: it fetches each fact a check
yields from the engine and sends the answer back in."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import quote

from moorage.admission.ownership import CreateVolume, Fact, Inspect, ListImages, ReadSwarm
from moorage.engine_api.kinds import object_type

__all__ = ["JsonEngine", "drive", "fetch"]

T = TypeVar("T")


class JsonEngine(Protocol):
    """What the driver needs of an engine client: one JSON call."""

    async def call_json(self, method: str, path: str, limit: int = ..., body: Any = None) -> tuple[int, Any]:
        """``(status, decoded answer)`` of one engine call."""
        ...


async def fetch(engine: JsonEngine, fact: Fact) -> tuple[int, Any]:
    """The engine's answer to one fact."""
    if isinstance(fact, Inspect):
        path = object_type(fact.obj_type).inspect.format(quote(fact.ref, safe=""))
        return await engine.call_json("GET", path)
    if isinstance(fact, ListImages):
        flt = quote(json.dumps({"reference": [fact.repo]}))
        return await engine.call_json("GET", f"/images/json?filters={flt}")
    if isinstance(fact, CreateVolume):
        return await engine.call_json(
            "POST", "/volumes/create", body={"Name": fact.name, "Labels": fact.labels}
        )
    if isinstance(fact, ReadSwarm):
        return await engine.call_json("GET", "/swarm")
    raise TypeError(f"no way to fetch {fact!r}")


async def drive(check: Generator[Fact, Any, T], engine: JsonEngine) -> T:
    """Run ``check`` to its end, answering every fact it asks for from ``engine``.
    An engine that can't be reached raises here, outside the check."""
    answer: Any = None
    while True:
        try:
            fact = check.send(answer)
        except StopIteration as done:
            return cast(T, done.value)
        answer = await fetch(engine, fact)
