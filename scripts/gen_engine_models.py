"""Generate src/moorage/engine_api/spec.json from the Engine API's swagger files.

Usage: python scripts/gen_engine_models.py SWAGGER.yaml [SWAGGER.yaml ...] > src/moorage/engine_api/spec.json

The files are moby's ``api/swagger.yaml`` for the API versions Moorage models (the
specification is data: field names and types, not code). Definitions are united:
a field any listed version documents is a known field, typed as the last file
that documents it says. Go-only facts (string-or-list fields, deprecated fields
the engine still reads) are not in the specification; ``models.py`` adds them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import yaml

Spec = Any


def _type(node: dict[str, Any], name: str, models: dict[str, dict[str, Spec]], defs: dict[str, Any]) -> Spec:
    if "$ref" in node:
        ref = node["$ref"].rsplit("/", 1)[1]
        target = defs[ref]
        if _is_object(target):
            _model(ref, target, models, defs)
            return ("obj", ref)
        return _type(target, ref, models, defs)
    if "allOf" in node or "properties" in node:
        _model(name, node, models, defs)
        return ("obj", name)
    kind = node.get("type")
    if kind == "array":
        return ("list", _type(node.get("items") or {}, name + "[]", models, defs))
    if kind == "object":
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return ("map", _type(extra, name + "{}", models, defs))
        return ("map", ("any",))
    if kind == "string":
        return ("s",)
    if kind == "boolean":
        return ("b",)
    if kind == "integer":
        fmt = str(node.get("format", ""))
        return ("u",) if fmt.startswith("uint") else ("i",)
    if kind == "number":
        return ("f",)
    return ("any",)


def _is_object(node: dict[str, Any]) -> bool:
    return "properties" in node or "allOf" in node


def _model(name: str, node: dict[str, Any], models: dict[str, dict[str, Spec]], defs: dict[str, Any]) -> None:
    fields = models.setdefault(name, {})
    parts = node.get("allOf") or [node]
    for part in parts:
        if "$ref" in part:
            ref = part["$ref"].rsplit("/", 1)[1]
            _model(name, defs[ref], models, defs)
            continue
        for field, sub in (part.get("properties") or {}).items():
            fields[field] = _type(sub, f"{name}.{field}", models, defs)


# Request bodies: (kind, definition or inline path in the spec) -> root model name.
BODIES = {
    ("post", "/containers/create"): "ContainerCreateRequest",
    ("post", "/containers/{id}/update"): "ContainerUpdateRequest",
    ("post", "/commit"): "ContainerConfig",
    ("post", "/containers/{id}/exec"): "ExecConfig",
    ("post", "/exec/{id}/start"): "ExecStartConfig",
    ("post", "/volumes/create"): "VolumeCreateOptions",
    ("post", "/networks/create"): "NetworkCreateRequest",
    ("post", "/networks/{id}/connect"): "NetworkConnectRequest",
    ("post", "/networks/{id}/disconnect"): "NetworkDisconnectRequest",
    ("post", "/plugins/pull"): "PluginPrivileges",
    ("post", "/plugins/{name}/upgrade"): "PluginPrivileges",
    ("post", "/plugins/{name}/set"): "PluginSetArgs",
    ("post", "/nodes/{id}/update"): "NodeSpec",
    ("post", "/swarm/init"): "SwarmInitRequest",
    ("post", "/swarm/join"): "SwarmJoinRequest",
    ("post", "/swarm/update"): "SwarmSpec",
    ("post", "/swarm/unlock"): "SwarmUnlockRequest",
    ("post", "/services/create"): "ServiceSpec",
    ("post", "/services/{id}/update"): "ServiceSpec",
    ("post", "/secrets/create"): "SecretSpec",
    ("post", "/secrets/{id}/update"): "SecretSpec",
    ("post", "/configs/create"): "ConfigSpec",
    ("post", "/configs/{id}/update"): "ConfigSpec",
    ("post", "/auth"): "AuthConfig",
}


def main(paths: list[str]) -> None:
    models: dict[str, dict[str, Spec]] = {}
    digests = []
    roots: dict[str, Spec] = {}
    for path in paths:
        with open(path, "rb") as f:
            raw = f.read()
        doc = yaml.safe_load(raw)
        digests.append((doc["info"]["version"], hashlib.sha256(raw).hexdigest()))
        defs = doc["definitions"]
        for (method, route), root in BODIES.items():
            op = (doc["paths"].get(route) or {}).get(method)
            if op is None:
                continue
            for prm in op.get("parameters", []):
                if prm.get("in") == "body":
                    roots[root] = _type(prm["schema"], root, models, defs)
    sys.stdout.write(render(digests, models, roots))


def render(digests: list[tuple[str, str]], models: dict[str, dict[str, Spec]], roots: dict[str, Spec]) -> str:
    """The JSON data file ``engine_api/_spec.py`` loads: one field per line, sorted,
    so a new swagger version shows as a readable diff."""

    def j(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    out = ["{", f' "sources": {j([list(d) for d in digests])},', ' "models": {']
    for i, name in enumerate(sorted(models)):
        out.append(f"  {j(name)}: {{")
        fields = sorted(models[name])
        out += [
            f"   {j(f)}: {j(models[name][f])}{',' if k < len(fields) - 1 else ''}"
            for k, f in enumerate(fields)
        ]
        out.append("  }" + ("," if i < len(models) - 1 else ""))
    out += [" },", ' "roots": {']
    names = sorted(roots)
    out += [f"  {j(r)}: {j(roots[r])}{',' if k < len(names) - 1 else ''}" for k, r in enumerate(names)]
    out += [" }", "}", ""]
    return "\n".join(out)


if __name__ == "__main__":
    main(sys.argv[1:])
