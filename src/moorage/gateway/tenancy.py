"""Tenancy as data: owner labels, list filters and not-found answers. Pure."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlencode

from moorage.gateway.http import HttpError
from moorage.identity import Principal

__all__ = [
    "OWNER",
    "PREFIX",
    "TEAM",
    "get_ci",
    "inject_team_filter",
    "not_found",
    "object_labels",
    "parse_json_strict",
    "stamp_labels",
]

PREFIX = "io.moorage."
OWNER = "io.moorage.owner"
TEAM = "io.moorage.team"


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
                raise HttpError(
                    400,
                    f"moorage: the {what} body has the field {key!r} twice "
                    f"(also as {seen[folded]!r}); send each field once",
                )
            seen[folded] = key
        return dict(items)

    if not raw.strip():
        return None
    try:
        return json.loads(raw, object_pairs_hook=pairs)
    except HttpError:
        raise
    except (ValueError, RecursionError) as exc:
        raise HttpError(400, f"moorage: the {what} body is not valid JSON: {exc}") from exc


def get_ci(obj: Any, key: str) -> Any:
    """A field of a JSON object as the engine would find it (case-insensitive)."""
    if not isinstance(obj, dict):
        return None
    if key in obj:
        return obj[key]
    folded = key.lower()
    return next((v for k, v in obj.items() if k.lower() == folded), None)


def _set_ci(obj: dict[str, Any], key: str, value: Any) -> None:
    for k in [k for k in obj if k.lower() == key.lower()]:
        del obj[k]
    obj[key] = value


def stamp_labels(
    labels: Any, principal: Principal, existing: dict[str, str] | None, where: str
) -> dict[str, str]:
    """The labels to forward: the caller's, plus the gateway's owner labels.

    A label in the ``io.moorage.`` namespace from the caller is refused, except
    that a spec read back and sent again unchanged (``docker service update``)
    may carry the very owner labels the gateway would write anyway.
    """
    if labels is None:
        labels = {}
    if not isinstance(labels, dict):
        raise HttpError(400, f"moorage: {where} must be an object of string labels")
    want = {
        OWNER: (existing or {}).get(OWNER, principal.user),
        TEAM: (existing or {}).get(TEAM, principal.team),
    }
    out: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str):
            raise HttpError(400, f"moorage: {where} has a non-string label key")
        if key.lower().startswith(PREFIX):
            if want.get(key) != value:
                raise HttpError(
                    403,
                    f"moorage: label {key!r} in {where} is reserved: the gateway sets "
                    f"{OWNER} and {TEAM} itself. Remove it from the request.",
                )
            continue
        out[key] = value
    out.update(want)
    return out


def apply_owner_labels(kind: str, body: Any, principal: Principal, existing: dict[str, str] | None) -> Any:
    """Stamp owner labels into every place of ``body`` that labels an object."""
    if not isinstance(body, dict):
        raise HttpError(400, f"moorage: the {kind} body must be a JSON object")
    _set_ci(body, "Labels", stamp_labels(get_ci(body, "Labels"), principal, existing, "Labels"))
    if kind in ("service.create", "service.update"):
        task = get_ci(body, "TaskTemplate")
        spec = get_ci(task, "ContainerSpec") if isinstance(task, dict) else None
        if isinstance(spec, dict):
            where = "TaskTemplate.ContainerSpec.Labels"
            _set_ci(spec, "Labels", stamp_labels(get_ci(spec, "Labels"), principal, existing, where))
    return body


def object_labels(obj_type: str, inspect: Any) -> dict[str, str]:
    """The labels of an inspected object, wherever its type keeps them."""
    if not isinstance(inspect, dict):
        return {}
    if obj_type in ("container", "image"):
        labels = get_ci(get_ci(inspect, "Config"), "Labels")
    elif obj_type in ("service", "secret", "config"):
        labels = get_ci(get_ci(inspect, "Spec"), "Labels")
    else:
        labels = get_ci(inspect, "Labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def inject_team_filter(target: str, team: str) -> str:
    """Add ``label=io.moorage.team=TEAM`` to a list request's filters (ANDed by the engine)."""
    path, _, query = target.partition("?")
    params = parse_qs(query, keep_blank_values=True)
    raw = params.get("filters", ["{}"])[-1] or "{}"
    try:
        filters = json.loads(raw)
    except ValueError as exc:
        raise HttpError(400, f"moorage: the filters parameter is not valid JSON: {exc}") from exc
    if not isinstance(filters, dict):
        raise HttpError(400, "moorage: the filters parameter must be a JSON object")
    mine = f"{TEAM}={team}"
    # Two forms exist: {"label": ["k=v"]} and the legacy {"label": {"k=v": true}}.
    # The engine refuses a mix, so answer in the form the client used.
    legacy = any(isinstance(v, dict) for v in filters.values())
    label = filters.get("label", {} if legacy else [])
    if isinstance(label, dict):
        filters["label"] = {**label, mine: True}
    elif isinstance(label, list):
        filters["label"] = [*label, mine] if not legacy else {**dict.fromkeys(label, True), mine: True}
    else:
        raise HttpError(400, "moorage: filters.label must be a list or an object")
    params["filters"] = [json.dumps(filters, separators=(",", ":"))]
    return f"{path}?{urlencode(params, doseq=True)}"


_NOT_FOUND = {
    "container": "No such container: {}",
    "exec": "No such exec instance: {}",
    "image": "No such image: {}",
    "network": "network {} not found",
    "volume": "get {}: no such volume",
    "service": "service {} not found",
    "task": "task {} not found",
    "secret": "secret {} not found",
    "config": "config {} not found",
}


def not_found(obj_type: str, ref: str) -> str:
    """The engine's own not-found message, so another team's object looks absent."""
    return _NOT_FOUND.get(obj_type, "{} not found").format(ref)
