"""What the gateway does per operation kind and per object type, as tables.

Each decision the data path makes by kind (stamp owner labels? filter the list to
the team? strip labels from the answer? which fields does the audit keep?) is a
field of one :class:`Kind` row, so a new endpoint is one row here instead of a
branch in each of several ``if kind in ...`` ladders. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KINDS",
    "OBJECTS",
    "Kind",
    "ObjectType",
    "get_ci",
    "kind",
    "object_type",
    "summarise",
]


def get_ci(obj: Any, key: str) -> Any:
    """A field of a JSON object as the engine would find it (case-insensitive)."""
    if not isinstance(obj, dict):
        return None
    if key in obj:
        return obj[key]
    folded = key.lower()
    return next((v for k, v in obj.items() if k.lower() == folded), None)


# ------------------------------------------------------------------ audit summaries
# What an auditor needs of a body: names and images, never environment values,
# secret data or whole specs.
def _container_summary(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"image": get_ci(body, "Image")}
    host = get_ci(body, "HostConfig")
    if isinstance(host, dict) and get_ci(host, "Privileged"):
        out["privileged"] = True
    return out


def _service_summary(body: dict[str, Any]) -> dict[str, Any]:
    task = get_ci(body, "TaskTemplate")
    image = get_ci(get_ci(task, "ContainerSpec"), "Image") if isinstance(task, dict) else None
    return {"name": get_ci(body, "Name"), "image": image}


def _exec_summary(body: dict[str, Any]) -> dict[str, Any]:
    return {"user": get_ci(body, "User") or "", "privileged": bool(get_ci(body, "Privileged"))}


def _endpoint_summary(body: dict[str, Any]) -> dict[str, Any]:
    return {"container": get_ci(body, "Container")}


def _name_summary(body: dict[str, Any]) -> dict[str, Any]:
    # networks, volumes, secrets, configs: the name is enough (never Data)
    return {"name": get_ci(body, "Name")}


@dataclass(frozen=True)
class Kind:
    """How the data path treats one operation kind. The defaults are the safe ones:
    nothing stamped, nothing skipped, the body read in full before forwarding."""

    owner_labels: bool = False  # the create (or update) body gets owner labels stamped in
    label_mounts: str = ""  # where else it labels volumes at birth: "container" or "service"
    team_filter: bool = False  # lists, events and prunes get the team's label filter
    admin_only: bool = False  # removes every team's objects: only an admin may run it
    streamed_body: bool = False  # the engine reads the body as a stream (archive, context)
    strips_labels: bool = False  # the answer can carry Moorage's labels, to be taken out
    warnings: bool = False  # the answer has a Warnings list the Docker CLI prints
    shared_use: bool = False  # a change that only uses an object (tag, push, join)
    writes_image_name: bool = False  # writes an image name another team's image may hold
    names_container: bool = False  # the body's Container field names a container to check
    summary: Callable[[dict[str, Any]], dict[str, Any]] = _name_summary
    path_ref: str = "id"  # how the checked object goes upstream: "id", "as-sent", "query:container"
    keeps_owner: bool = False  # an update: the object's existing owner labels are kept
    tagged_ref: bool = False  # the query's tag is part of the object named (push NAME:TAG)
    query_names: bool = False  # more objects are named in the query (`docker save A B`)
    spool: str = ""  # a body read before the engine acts: "archive" (its tags) or "context" (its reads)
    by_changes: bool = False  # judged by which aspects it changes (swarm update)
    rollback: bool = False  # may ask the engine to run the previous spec instead of the body
    answer: str = ""  # a filter the JSON answer goes through (see gateway/forward.py)
    line_stream: bool = False  # a JSON stream whose lines lose Moorage's labels one by one
    makes_images: bool = False  # the images it makes are recorded as the caller's team's


_DEFAULT = Kind()
_LIST = Kind(team_filter=True, strips_labels=True)
_INSPECT = Kind(strips_labels=True)
_CONTAINER_CREATE = Kind(
    owner_labels=True, label_mounts="container", warnings=True, summary=_container_summary
)
_SERVICE_CREATE = Kind(owner_labels=True, label_mounts="service", warnings=True, summary=_service_summary)
_SERVICE_UPDATE = Kind(owner_labels=True, label_mounts="service", warnings=True, summary=_service_summary,
                       keeps_owner=True, rollback=True)  # fmt: skip
_CONNECT = Kind(shared_use=True, names_container=True, summary=_endpoint_summary)

KINDS: dict[str, Kind] = {
    "container.create": _CONTAINER_CREATE,
    "service.create": _SERVICE_CREATE,
    "service.update": _SERVICE_UPDATE,
    "network.create": Kind(owner_labels=True),
    "volume.create": Kind(owner_labels=True, strips_labels=True),
    "secret.create": Kind(owner_labels=True),
    "secret.update": Kind(owner_labels=True, keeps_owner=True),
    "config.create": Kind(owner_labels=True),
    "config.update": Kind(owner_labels=True, keeps_owner=True),
    "exec.create": Kind(summary=_exec_summary),
    "network.connect": _CONNECT,
    "network.disconnect": _CONNECT,
    # A committed image's owner is kept in the owner store, not in labels: a commit
    # body sent where the client sent none would replace the container's config.
    "image.commit": Kind(
        writes_image_name=True, summary=_container_summary, path_ref="query:container", answer="record-commit"
    ),
    "image.tag": Kind(writes_image_name=True, shared_use=True),
    "image.push": Kind(shared_use=True, tagged_ref=True),
    "image.save": Kind(query_names=True),
    "image.pull": Kind(writes_image_name=True, streamed_body=True),
    "image.build": Kind(writes_image_name=True, streamed_body=True, spool="context", makes_images=True),
    "image.load": Kind(streamed_body=True, spool="archive"),
    "container.archive.put": Kind(streamed_body=True),
    "plugin.create": Kind(streamed_body=True),
    "build.session": Kind(streamed_body=True),
    "build.grpc": Kind(streamed_body=True),
    "container.attach": Kind(streamed_body=True),
    "container.list": _LIST,
    "network.list": _LIST,
    "volume.list": _LIST,
    "service.list": _LIST,
    "secret.list": _LIST,
    "config.list": _LIST,
    "system.events": Kind(team_filter=True, strips_labels=True, line_stream=True),
    "image.list": _INSPECT,
    "task.list": Kind(strips_labels=True, answer="team-tasks"),
    "system.df": Kind(strips_labels=True, answer="team-usage"),
    "swarm.inspect": Kind(answer="no-join-tokens"),
    "swarm.update": Kind(by_changes=True),
    "container.inspect": _INSPECT,
    "image.inspect": _INSPECT,
    # The engine's lookup depends on the reference and `scope` together (by full id
    # it ignores scope): both pass through, and the answer's id is checked instead.
    "network.inspect": Kind(strips_labels=True, path_ref="as-sent", answer="same-network"),
    "volume.inspect": _INSPECT,
    "service.inspect": _INSPECT,
    "task.inspect": _INSPECT,
    "secret.inspect": _INSPECT,
    "config.inspect": _INSPECT,
    "container.prune": Kind(team_filter=True),
    "volume.prune": Kind(team_filter=True),
    "network.prune": Kind(team_filter=True),
    "image.prune": Kind(admin_only=True),
    "build.prune": Kind(admin_only=True),
}


def kind(name: str) -> Kind:
    """The row for an operation kind (the safe defaults for one not listed)."""
    return KINDS.get(name, _DEFAULT)


def summarise(name: str, body: Any) -> dict[str, Any] | None:
    """The audit summary of a request body of kind ``name``, without empty fields."""
    if not isinstance(body, dict):
        return None
    return {k: v for k, v in kind(name).summary(body).items() if v is not None}


@dataclass(frozen=True)
class ObjectType:
    """An object type a team can own, as the engine's inspect shows it."""

    inspect: str  # the inspect path, with {} for the quoted reference
    id_field: str  # the field of the inspect answer with the full id
    labels_at: str  # where its labels live: "Config", "Spec" or "" (top level)
    not_found: str  # the engine's own not-found message, with {} for the reference
    parent: tuple[str, str] | None = None  # (type, field): an object owned through another


OBJECTS: dict[str, ObjectType] = {
    "container": ObjectType("/containers/{}/json", "Id", "Config", "No such container: {}"),
    "exec": ObjectType("/exec/{}/json", "ID", "", "No such exec instance: {}", ("container", "ContainerID")),
    "image": ObjectType("/images/{}/json", "Id", "Config", "No such image: {}"),
    "network": ObjectType("/networks/{}", "Id", "", "network {} not found"),
    "volume": ObjectType("/volumes/{}", "Name", "", "get {}: no such volume"),
    "service": ObjectType("/services/{}", "ID", "Spec", "service {} not found"),
    "task": ObjectType("/tasks/{}", "ID", "", "task {} not found", ("service", "ServiceID")),
    "secret": ObjectType("/secrets/{}", "ID", "Spec", "secret {} not found"),
    "config": ObjectType("/configs/{}", "ID", "Spec", "config {} not found"),
}


def object_type(name: str) -> ObjectType:
    """The row for an object type (KeyError for a type no team can own)."""
    return OBJECTS[name]
