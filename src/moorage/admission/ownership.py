"""Who may touch which object, decided without I/O.

Each check is a generator: it yields the facts it needs (:class:`Inspect`,
:class:`ListImages`, ...) and is sent the engine's answer to each, as mitmproxy's
layers yield commands. One driver (:func:`moorage.admission.driver.drive`) fetches
them, so the checks are unit-tested with canned answers and no engine.

Another team's object answers 404 with the engine's own words, as if it did not
exist; what no team owns is usable only as :func:`check_unowned` says.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from moorage.admission import tenancy
from moorage.admission.errors import Hidden, PolicyRefusal, Refusal, UpstreamFault, for_status
from moorage.engine_api.endpoints import Operation
from moorage.engine_api.kinds import kind, object_type
from moorage.identity import Principal

__all__ = [
    "USE",
    "CreateVolume",
    "Fact",
    "Facts",
    "Inspect",
    "ListImages",
    "Owned",
    "OwnerStore",
    "Tenancy",
    "check_onbuild",
    "check_owner",
    "check_references",
    "check_targets",
    "check_unowned",
    "check_use",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Inspect:
    """The engine's inspect of one object: answered with ``(status, document)``."""

    obj_type: str
    ref: str


@dataclass(frozen=True)
class ListImages:
    """The local images of one repository: answered with ``(status, list)``."""

    repo: str


@dataclass(frozen=True)
class CreateVolume:
    """Create a volume owned by the caller: answered with ``(status, document)``."""

    name: str
    labels: dict[str, str]


@dataclass(frozen=True)
class ReadSwarm:
    """The swarm's current settings (``GET /swarm``): answered with ``(status, document)``."""


Fact = Inspect | ListImages | CreateVolume | ReadSwarm
Facts = Generator[Fact, Any, T]

# How a reference in a create body is checked: like a read, so shared objects are usable.
USE = Operation("reference.use", "container.read")
# Networks that no team owns and every team may join: the engine's defaults.
_JOINABLE = frozenset({"bridge", "none"})


class OwnerStore(Protocol):
    """Where image ownership is kept (images carry no trusted owner labels)."""

    def teams(self, image_id: str) -> tuple[str, ...]:
        """The teams that own the image ``image_id``."""
        ...


@dataclass(frozen=True)
class Tenancy:
    """The caller and the gateway's tenancy settings, for one request."""

    principal: Principal
    shared: tenancy.SharedObjects
    owners: OwnerStore

    def teams(self, obj_type: str, full_id: str, labels: dict[str, str]) -> tuple[str, ...]:
        """The teams an object belongs to: for images, only the owner store (builds and
        commits the gateway carried out). An image's labels are its author's words: an
        image loaded, imported or pulled with ``io.moorage.team`` claims nothing."""
        if obj_type == "image":
            return self.owners.teams(full_id)
        team = labels.get(tenancy.TEAM)
        return (team,) if team else ()

    def is_mine(self, teams: tuple[str, ...]) -> bool:
        """Whether one of ``teams`` is the caller's."""
        p = self.principal
        return bool(set(teams) & {*p.teams, p.team})


@dataclass
class Owned:
    """The object a request names, as the engine knows it."""

    full_id: str
    labels: dict[str, str] = field(default_factory=dict)


def _failed(status: int, doc: Any, what: str) -> Refusal:
    message = doc.get("message", "") if isinstance(doc, dict) else ""
    return for_status(status, str(message or what))


def check_owner(ctx: Tenancy, op: Operation, obj_type: str, ref: str) -> Facts[Owned]:
    """Resolve the object; answer 404 for another team's, as if it did not exist,
    and refuse what nobody owns unless it is usable by every team."""
    status, doc = yield Inspect(obj_type, ref)
    if status == 404 or not isinstance(doc, dict):
        raise Hidden(tenancy.not_found(obj_type, ref), engine_words=True)
    if status >= 400:
        raise _failed(status, doc, f"inspecting {obj_type} {ref} failed")
    row = object_type(obj_type)
    full_id = str(doc.get(row.id_field, ref))
    if row.parent is not None:  # exec and task belong to their container and service
        parent = yield from check_owner(ctx, op, row.parent[0], str(doc.get(row.parent[1], "")))
        return Owned(full_id, parent.labels)
    labels = tenancy.object_labels(obj_type, doc)
    if ctx.principal.sees_all:
        return Owned(full_id, labels)
    use = op.kind == USE.kind or kind(op.kind).shared_use
    name = str(doc.get("Name") or ref)
    if ctx.shared.shares(obj_type, name, labels) and (op.reads_only or use):
        return Owned(full_id, labels)
    teams = ctx.teams(obj_type, full_id, labels)
    if not teams:
        check_unowned(op, obj_type, ref, name, use)
        return Owned(full_id, labels)
    if not ctx.is_mine(teams):
        raise Hidden(tenancy.not_found(obj_type, ref), engine_words=True)
    return Owned(full_id, labels)


def check_unowned(op: Operation, obj_type: str, ref: str, name: str, use: bool) -> None:
    """Refuse what a developer may not do to an object no team owns (one made on the
    engine directly by an operator). Containers and volumes: nothing, not even read
    them (their files, logs and environment are the operator's). Networks: read them,
    join only the default ones. Images and the rest: read and use, never change."""
    if obj_type in ("secret", "config") and use:
        raise PolicyRefusal(f"moorage: {obj_type} {ref} belongs to no team (it was made on the engine "
                            "directly), so only an admin may give it to a service.")  # fmt: skip
    if obj_type in ("container", "volume"):
        hint = (" An admin can declare a volume shared (label io.moorage.shared=true, or the "
                "gateway's shared volumes)." if obj_type == "volume" else "")  # fmt: skip
        raise PolicyRefusal(f"moorage: {obj_type} {ref} belongs to no team (it was made on the engine "
                            f"directly), so only an admin may use or read it.{hint}")  # fmt: skip
    if obj_type == "network":
        if use and name in _JOINABLE:
            return
        if op.reads_only and not use:
            return
        if use:
            raise PolicyRefusal(f"moorage: network {ref} belongs to no team and is not declared "
                                "shared, so only an admin may attach to it. Use a network of your "
                                "team's (docker network create) or ask an admin to share it "
                                "(label io.moorage.shared=true).")  # fmt: skip
    elif op.reads_only or use:
        return
    raise PolicyRefusal(f"moorage: {obj_type} {ref} belongs to no team, so only an admin may "
                        f"{op.kind.split('.', 1)[1]} it")  # fmt: skip


def check_use(ctx: Tenancy, obj_type: str, ref: str, create: bool = True) -> Facts[None]:
    """A create that reaches another object (joins, mounts, links, attaches, runs
    an image) may reach the caller's own or shared ones; another team's answers
    404. A volume that does not exist yet is created by the engine, as it would be
    directly; a missing image is the engine's to report (the CLI then pulls)."""
    status, _ = yield Inspect(obj_type, ref)
    if status == 404 and obj_type == "image":
        return
    if status == 404 and obj_type == "volume" and not create:
        return  # the engine creates it with its options and the stamped owner labels
    if status == 404 and obj_type == "volume":
        # The engine would create it unlabelled, and so shared with every team:
        # create it here first, owned by the caller.
        labels = tenancy.stamp_labels(None, ctx.principal, None, "volume labels")
        created, doc = yield CreateVolume(ref, labels)
        if created >= 400:
            raise _failed(created, doc, f"creating volume {ref} failed")
        return
    yield from check_owner(ctx, USE, obj_type, ref)


def _named_in(exc: Refusal, where: str) -> Refusal:
    # 400, not 404: the CLI takes a 404 on create for a missing image and would try
    # to pull it. Same answer for absent and foreign.
    return for_status(400, f"{exc.message} ({where})")


def check_references(ctx: Tenancy, op_kind: str, body: Any) -> Facts[None]:
    """Every object a create body reaches must be usable by the caller."""
    inline = tenancy.inline_volumes(body) if op_kind == "container.create" else set()
    for obj_type, ref, where in tenancy.references(op_kind, body):
        try:
            yield from check_use(ctx, obj_type, ref, create=ref not in inline)
        except Refusal as exc:
            if exc.status != 404:
                raise
            raise _named_in(exc, f"named in {where}") from exc


def check_targets(ctx: Tenancy, op: Operation, query: dict[str, list[str]],
                  archive: list[str] | None = None) -> Facts[None]:  # fmt: skip
    """A tag, build or commit writes an image name, and what a build's RUN steps
    join. A name may be written over only when it is free or the caller's team's:
    never onto another team's image, nor onto one nobody owns (a base image)."""
    names: list[str] = []
    # A pull writes the name it fetches; an image nobody owns (a base image) may be
    # refreshed by anyone, another team's may not. An import writes its repo:tag.
    unowned_ok = op.kind == "image.pull" and not (query.get("fromSrc") or [""])[0]
    if op.kind == "image.pull" and unowned_ok:
        image = (query.get("fromImage") or [""])[0].removesuffix(":")  # as the engine trims it
        tag = (query.get("tag") or [""])[0]
        if image and (tag or tenancy.has_tag_or_digest(image)):
            if not tag.startswith("sha256:"):  # a pull by digest writes no tag
                names = [tenancy.image_name(image, tag)]
        elif image:
            # a name alone pulls every tag of the repository: each local one is written
            names = yield from _local_tags(image)
    elif archive is not None:
        names = archive
    elif op.kind == "image.build":
        names = [tenancy.image_name(t) for t in query.get("t", []) if t]
        for obj_type, ref, where in tenancy.build_references(query):
            try:
                yield from check_use(ctx, obj_type, ref)
            except Refusal as exc:
                if exc.status != 404:
                    raise
                raise _named_in(exc, f"named in the build's {where}") from exc
    else:
        repo = (query.get("repo") or [""])[0]
        if repo:
            names = [tenancy.image_name(repo, (query.get("tag") or [""])[0])]
    for name in names:
        status, doc = yield Inspect("image", name)
        if status == 404 or not isinstance(doc, dict):
            continue  # a new name: free to take
        if status >= 400:
            raise for_status(status, str(doc.get("message") or f"inspecting image {name} failed"))
        teams = ctx.teams("image", str(doc.get("Id", "")), tenancy.object_labels("image", doc))
        if not teams and unowned_ok:
            continue
        if not teams:
            raise PolicyRefusal(f"moorage: the image name {name} is taken by an image no team owns "
                                "(loaded or pulled by an operator), so only an admin may write "
                                "over it. Choose a name of your own.")  # fmt: skip
        if not ctx.is_mine(teams):
            raise PolicyRefusal(f"moorage: the image name {name} belongs to another team's image, "
                                "so you may not write over it. Choose a name of your own.")  # fmt: skip


def _local_tags(repo: str) -> Facts[list[str]]:
    """The local tags of ``repo`` (what pulling all its tags writes over)."""
    status, images = yield ListImages(repo)
    if status != 200 or not isinstance(images, list):
        raise UpstreamFault(f"listing the tags of {repo} answered {status}")
    tags = [t for i in images if isinstance(i, dict) for t in i.get("RepoTags") or []]
    return [str(t) for t in tags if t != "<none>:<none>"]


def check_onbuild(ref: str) -> Facts[None]:
    """A base image's ONBUILD triggers run in the build: one that copies from another
    image reads an image this check never saw, so it is refused."""
    status, doc = yield Inspect("image", ref)
    if status != 200 or not isinstance(doc, dict):
        return  # not local: the engine pulls it (pulled images are nobody's)
    triggers = (doc.get("Config") or {}).get("OnBuild") or []
    if any("--from" in str(trigger).lower() for trigger in triggers):
        raise PolicyRefusal(f"moorage: base image {ref} has an ONBUILD trigger that copies from another "
                            "image, which Moorage can't check")  # fmt: skip
