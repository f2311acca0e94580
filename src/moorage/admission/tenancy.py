"""Tenancy as data: owner labels, shared objects, the objects a body reaches, and
not-found answers. Pure."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moorage.admission.errors import ClientError, PolicyRefusal
from moorage.engine_api import kinds
from moorage.engine_api.kinds import get_ci
from moorage.identity import Principal

__all__ = [
    "OWNER",
    "PREFIX",
    "SHARED",
    "TEAM",
    "SharedObjects",
    "apply_owner_labels",
    "build_references",
    "get_ci",
    "has_tag_or_digest",
    "image_name",
    "inline_volumes",
    "not_found",
    "object_labels",
    "parse_json_strict",
    "references",
    "stamp_labels",
    "trim_reference",
]

PREFIX = "io.moorage."
OWNER = "io.moorage.owner"
TEAM = "io.moorage.team"
# An object labelled ``io.moorage.shared=true`` is usable by every team. Only an admin
# may set it through the gateway; operators set it on objects they make on the engine.
SHARED = "io.moorage.shared"


@dataclass(frozen=True)
class SharedObjects:
    """Networks and volumes that every team may use (join, mount, read), by name or
    label. Nothing else that no team owns is usable by developers.

    ``labels`` are selectors, ``key`` or ``key=value``; ``io.moorage.shared=true``
    always counts. Sharing never lets a team change or delete the object.
    """

    networks: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()

    def shares(self, obj_type: str, name: str, labels: dict[str, str]) -> bool:
        """Whether the network or volume ``name`` (with ``labels``) is declared shared."""
        if obj_type not in ("network", "volume"):
            return False
        if labels.get(SHARED) == "true":
            return True
        if name in (self.networks if obj_type == "network" else self.volumes):
            return True
        for selector in self.labels:
            key, sep, value = selector.partition("=")
            if key in labels and (not sep or labels[key] == value):
                return True
        return False


def parse_json_strict(raw: bytes, what: str) -> Any:
    """Parse a JSON body, refusing keys that repeat in another spelling.

    The engine (Go's encoding/json) matches field names case-insensitively and
    lets a later duplicate win, so ``{"Labels":..., "labels":...}`` would let a
    client show the gateway one value and the engine another.
    """

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, str] = {}
        for key, _ in items:
            folded = key.lower()
            if folded in seen:
                raise ClientError(
                    f"moorage: the {what} body has the field {key!r} twice "
                    f"(also as {seen[folded]!r}); send each field once"
                )
            seen[folded] = key
        return dict(items)

    if not raw.strip():
        return None
    try:
        return json.loads(raw, object_pairs_hook=pairs)
    except ClientError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ClientError(f"moorage: the {what} body is not valid JSON: {exc}") from exc


def _set_ci(obj: dict[str, Any], key: str, value: Any) -> None:
    for k in [k for k in obj if k.lower() == key.lower()]:
        del obj[k]
    obj[key] = value


def stamp_labels(
    labels: Any, principal: Principal, existing: dict[str, str] | None, where: str
) -> dict[str, str]:
    """The labels to forward: the caller's, plus the gateway's owner labels.

    A label in the ``io.moorage.`` namespace from the caller is refused, except
    that a spec read back and sent again unchanged may carry the very owner labels
    the gateway would write anyway, and an admin may set ``io.moorage.shared``.
    An update keeps the object's existing owner labels (and its shared mark),
    whether or not the client sent them back: clients never see them.
    """
    if labels is None:
        labels = {}
    if not isinstance(labels, dict):
        raise ClientError(f"moorage: {where} must be an object of string labels")
    want = {
        OWNER: (existing or {}).get(OWNER, principal.user),
        TEAM: (existing or {}).get(TEAM, principal.team),
    }
    admin = "admin" in principal.roles
    if existing and SHARED in existing:
        want[SHARED] = existing[SHARED]  # kept across updates; an admin may send another value
    out: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str):
            raise ClientError(f"moorage: {where} has a non-string label key")
        if key == SHARED and admin:
            want[SHARED] = value
            continue
        if key.lower().startswith(PREFIX):
            if want.get(key) != value:
                raise PolicyRefusal(
                    f"moorage: label {key!r} in {where} is reserved: the gateway sets "
                    f"{OWNER} and {TEAM} itself, and only an admin may set {SHARED}. "
                    "Remove it from the request.",
                )
            continue
        out[key] = value
    out.update(want)
    return out


def apply_owner_labels(kind: str, body: Any, principal: Principal, existing: dict[str, str] | None) -> Any:
    """Stamp owner labels into every place of ``body`` that labels an object."""
    if not isinstance(body, dict):
        raise ClientError(f"moorage: the {kind} body must be a JSON object")
    _set_ci(body, "Labels", stamp_labels(get_ci(body, "Labels"), principal, existing, "Labels"))
    where_mounts = kinds.kind(kind).label_mounts
    if where_mounts == "container":
        # A volume mount with its own driver options is created by the engine with them:
        # label it at birth (the gateway can't create it first without losing them).
        mounts = get_ci(get_ci(body, "HostConfig"), "Mounts")
        for i, mount in enumerate(mounts if isinstance(mounts, list) else []):
            if _inline_volume(mount):
                opts = get_ci(mount, "VolumeOptions")
                where = f"HostConfig.Mounts[{i}].VolumeOptions.Labels"
                _set_ci(opts, "Labels", stamp_labels(get_ci(opts, "Labels"), principal, existing, where))
    if where_mounts == "service":
        task = get_ci(body, "TaskTemplate")
        spec = get_ci(task, "ContainerSpec") if isinstance(task, dict) else None
        if isinstance(spec, dict):
            # Each node creates a service's named volumes itself: label them at birth.
            for i, mount in enumerate(get_ci(spec, "Mounts") or []):
                if isinstance(mount, dict) and str(get_ci(mount, "Type") or "volume").lower() == "volume":
                    opts = get_ci(mount, "VolumeOptions")
                    opts = opts if isinstance(opts, dict) else {}
                    where = f"TaskTemplate.ContainerSpec.Mounts[{i}].VolumeOptions.Labels"
                    _set_ci(opts, "Labels", stamp_labels(get_ci(opts, "Labels"), principal, existing, where))
                    _set_ci(mount, "VolumeOptions", opts)
            where = "TaskTemplate.ContainerSpec.Labels"
            _set_ci(spec, "Labels", stamp_labels(get_ci(spec, "Labels"), principal, existing, where))
    return body


def _inline_volume(mount: Any) -> bool:
    """A volume mount that carries its own driver configuration."""
    if not isinstance(mount, dict) or str(get_ci(mount, "Type") or "volume").lower() != "volume":
        return False
    opts = get_ci(mount, "VolumeOptions")
    return isinstance(opts, dict) and isinstance(get_ci(opts, "DriverConfig"), dict)


def inline_volumes(body: Any) -> set[str]:
    """The volumes a container create names with their own driver options: the engine
    creates those itself (with the owner labels the gateway stamped in)."""
    mounts = get_ci(get_ci(body, "HostConfig"), "Mounts") if isinstance(body, dict) else None
    if not isinstance(mounts, list):
        return set()
    return {str(get_ci(m, "Source")) for m in mounts if _inline_volume(m)}


def object_labels(obj_type: str, inspect: Any) -> dict[str, str]:
    """The labels of an inspected object, wherever its type keeps them."""
    if not isinstance(inspect, dict):
        return {}
    row = kinds.OBJECTS.get(obj_type)
    holder = get_ci(inspect, row.labels_at) if row is not None and row.labels_at else inspect
    labels = get_ci(holder, "Labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def not_found(obj_type: str, ref: str) -> str:
    """The engine's own not-found message, so another team's object looks absent."""
    row = kinds.OBJECTS.get(obj_type)
    return (row.not_found if row is not None else "{} not found").format(ref)


# Network modes that name no network object a team could own. ``host`` is not here:
# it is a network nobody owns, joinable only if declared shared (and policy allows).
_BUILTIN_NETWORKS = frozenset({"", "default", "bridge", "none"})


def references(kind: str, body: Any) -> list[tuple[str, str, str]]:
    """Other objects a create body reaches: (type, reference, field path).

    Joining another container's namespaces, mounting its volumes, linking to it,
    or attaching to a network all touch that object, so each must be the caller's
    own (or shared), whichever field or spelling names it.
    """
    extract = _REFERENCES.get(kind)
    return extract(body) if extract is not None and isinstance(body, dict) else []


def _container_references(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    image = get_ci(body, "Image")
    if isinstance(image, str) and image:
        out.append(("image", image, "Image"))
    host = get_ci(body, "HostConfig")
    host = host if isinstance(host, dict) else {}
    for i, ref in enumerate(get_ci(host, "VolumesFrom") or []):
        if isinstance(ref, str):
            out.append(("container", ref.split(":", 1)[0], f"HostConfig.VolumesFrom[{i}]"))
    for i, link in enumerate(get_ci(host, "Links") or []):
        if isinstance(link, str):
            out.append(("container", link.split(":", 1)[0].lstrip("/"), f"HostConfig.Links[{i}]"))
    for field_name in ("NetworkMode", "PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode"):
        mode = get_ci(host, field_name)
        if isinstance(mode, str) and mode.lower().startswith("container:"):
            out.append(("container", mode.split(":", 1)[1], f"HostConfig.{field_name}"))
        elif field_name == "NetworkMode" and isinstance(mode, str) and mode not in _BUILTIN_NETWORKS:
            out.append(("network", mode, "HostConfig.NetworkMode"))
    for i, bind in enumerate(get_ci(host, "Binds") or []):
        if isinstance(bind, str) and not bind.startswith("/") and ":" in bind:
            out.append(("volume", bind.split(":", 1)[0], f"HostConfig.Binds[{i}]"))
    out += _mounts(get_ci(host, "Mounts"), "HostConfig.Mounts")
    endpoints = get_ci(get_ci(body, "NetworkingConfig"), "EndpointsConfig")
    if isinstance(endpoints, dict):
        for name, settings in endpoints.items():
            if name not in _BUILTIN_NETWORKS:
                out.append(("network", name, f"NetworkingConfig.EndpointsConfig.{name}"))
            out += _endpoint_links(settings, f"NetworkingConfig.EndpointsConfig.{name}.Links")
    return out


def _service_references(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    task = get_ci(body, "TaskTemplate")
    task = task if isinstance(task, dict) else {}
    image = get_ci(get_ci(task, "ContainerSpec"), "Image")
    if isinstance(image, str) and image:
        out.append(("image", image, "TaskTemplate.ContainerSpec.Image"))
    spec = get_ci(task, "ContainerSpec")
    out += _mounts(get_ci(spec, "Mounts"), "TaskTemplate.ContainerSpec.Mounts")
    # A secret or config is mounted into the service's tasks: the engine finds it by id.
    for field_name, obj_type, id_field in _SPEC_REFS:
        for i, ref in enumerate(get_ci(spec, field_name) or []):
            ident = get_ci(ref, id_field) if isinstance(ref, dict) else None
            if isinstance(ident, str) and ident:
                out.append((obj_type, ident, f"TaskTemplate.ContainerSpec.{field_name}[{i}].{id_field}"))
    for where, nets in (("TaskTemplate.Networks", get_ci(task, "Networks")),
                        ("Networks", get_ci(body, "Networks"))):  # fmt: skip
        for i, net in enumerate(nets or []):
            target = get_ci(net, "Target") if isinstance(net, dict) else None
            if isinstance(target, str) and target not in _BUILTIN_NETWORKS:
                out.append(("network", target, f"{where}[{i}].Target"))
    return out


def _connect_references(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return _endpoint_links(get_ci(body, "EndpointConfig"), "EndpointConfig.Links")


def _endpoint_links(settings: Any, where: str) -> list[tuple[str, str, str]]:
    """The containers an endpoint's links name (``--link`` on a user network)."""
    links = get_ci(settings, "Links") if isinstance(settings, dict) else None
    items = links if isinstance(links, list) else []
    named = [(i, link) for i, link in enumerate(items) if isinstance(link, str)]
    return [("container", link.split(":", 1)[0].lstrip("/"), f"{where}[{i}]") for i, link in named]


_SPEC_REFS = (("Secrets", "secret", "SecretID"), ("Configs", "config", "ConfigID"))
_REFERENCES: dict[str, Callable[[dict[str, Any]], list[tuple[str, str, str]]]] = {
    "container.create": _container_references,
    "service.create": _service_references,
    "service.update": _service_references,
    "network.connect": _connect_references,
}


def _mounts(mounts: Any, where: str) -> list[tuple[str, str, str]]:
    out = []
    for i, m in enumerate(mounts or []):
        if not isinstance(m, dict):
            continue
        kind = str(get_ci(m, "Type") or "volume").lower()
        source = get_ci(m, "Source")
        if kind == "volume" and isinstance(source, str) and source:
            out.append(("volume", source, f"{where}[{i}].Source"))
    return out


def build_references(query: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """Objects a build reaches through its query: the network its RUN steps join."""
    mode = (query.get("networkmode") or [""])[0]
    if mode.lower().startswith("container:"):
        return [("container", mode.split(":", 1)[1], "networkmode")]
    if mode not in _BUILTIN_NETWORKS:
        return [("network", mode, "networkmode")]
    return []


def image_name(repo: str, tag: str = "") -> str:
    """The name a tag, build or commit writes, as the engine's tag store keys it:
    ``repo:tag``, with ``latest`` when no tag is given (a digest is kept as is)."""
    if tag:
        return f"{trim_reference(repo)}:{tag}"  # the engine's WithTag(TrimNamed(repo), tag)
    last = repo.rsplit("/", 1)[-1]
    return repo if ":" in last or "@" in repo else f"{repo}:latest"


def trim_reference(ref: str) -> str:
    """A reference without its tag or digest (the engine's ``reference.TrimNamed``)."""
    ref = ref.split("@", 1)[0]
    head, slash, last = ref.rpartition("/")
    return head + slash + last.split(":", 1)[0]


def has_tag_or_digest(ref: str) -> bool:
    """Whether an image reference names a tag or a digest."""
    return "@" in ref or ":" in ref.rpartition("/")[2]
