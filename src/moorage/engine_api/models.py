"""The engine's request body types, as data. Pure.

The field names and types come from the Engine API's specification (moby's
``api/swagger.yaml`` for API 1.41, 1.47 and 1.51, generated into :mod:`._spec` by
``scripts/gen_engine_models.py``). The specification doesn't say everything Go's
decoder does with them, so the facts below were read from the engine's own types
(moby v20.10.24, ``api/types/...`` and ``runconfig/config_unix.go``):

- ``strslice.StrSlice`` fields accept a string or a list (``Cmd``, ``Entrypoint``,
  ``Shell``, ``CapAdd``, ``CapDrop``);
- ``[]byte`` fields are base64 text (secret and config ``Data``, a service's custom
  seccomp ``Profile``);
- ``nat.PortSet`` and ``Volumes`` are ``map[string]struct{}``; ``ConsoleSize`` is
  ``[2]uint``; a Global service mode is an empty struct;
- the create body of API < 1.44 engines is a wrapper that still reads every host
  config field at the top level (and the deprecated ``Cpuset``), see
  :func:`moorage.engine_api.canonical.merge_create`;
- which nested structs are values rather than pointers (``null`` leaves a value
  struct as it was) and which scalars are pointers (``null`` clears them).
"""

from __future__ import annotations

from typing import Any

from moorage.engine_api import _spec
from moorage.engine_api.gojson import Schema

__all__ = ["BODY_TYPES", "CREATE_HOST_FIELDS", "SCHEMA", "body_type"]


def _build() -> dict[str, dict[str, Any]]:
    models = {name: dict(fields) for name, fields in _spec.MODELS.items()}
    for model in ("ContainerConfig", "ContainerCreateRequest"):
        for name in ("Cmd", "Entrypoint", "Shell"):
            models[model][name] = ("strs",)
        models[model]["ExposedPorts"] = ("set",)
        models[model]["Volumes"] = ("set",)
    models["HostConfig"]["CapAdd"] = ("strs",)
    models["HostConfig"]["CapDrop"] = ("strs",)
    models["HostConfig"]["ConsoleSize"] = ("arr", 2, ("u",))
    models["ExecConfig"]["ConsoleSize"] = ("arr", 2, ("u",))
    models["ExecStartConfig"]["ConsoleSize"] = ("arr", 2, ("u",))
    models["SecretSpec"]["Data"] = ("bytes",)
    models["ConfigSpec"]["Data"] = ("bytes",)
    models["TaskSpec.ContainerSpec.Privileges.Seccomp"]["Profile"] = ("bytes",)
    models["Empty"] = {}
    # fields the engine's Go types have and the specification leaves out
    models["ExecConfig"]["Detach"] = ("b",)
    models["SwarmInitRequest"]["AutoLockManagers"] = ("b",)
    models["SwarmInitRequest"]["Availability"] = ("s",)
    models["SwarmJoinRequest"]["Availability"] = ("s",)
    for name in ("auth", "identitytoken", "registrytoken"):
        models["AuthConfig"].setdefault(name, ("s",))
    models["Mount"]["ClusterOptions"] = ("obj", "Empty")
    # fields clients still send that the engines we support no longer read: known,
    # so not refused, and dropped, so they never reach the engine
    models["ExecConfig"]["Container"] = ("ignore",)  # docker-py
    models["ServiceSpec.Mode"]["Global"] = ("obj", "Empty")
    models["ServiceSpec.Mode"]["GlobalJob"] = ("obj", "Empty")
    # The 20.10 create wrapper: the config, the inner host config, the networking
    # config, the deprecated Cpuset, and every host config field again at the top.
    wrapper = dict(models["ContainerCreateRequest"])
    wrapper["Cpuset"] = ("s",)
    for name, typ in models["HostConfig"].items():
        wrapper.setdefault(name, typ)
    models["ContainerCreateWrapper"] = wrapper
    return models


_MODELS = _build()

CREATE_HOST_FIELDS = frozenset(_MODELS["HostConfig"])
"""Host config fields a create body may carry at the top level (20.10's wrapper)."""

# Nested structs that are values in the engine's types: null leaves them as they were.
_VALUE_STRUCTS = frozenset({
    ("HostConfig", "LogConfig"), ("HostConfig", "RestartPolicy"),
    ("ContainerCreateWrapper", "LogConfig"), ("ContainerCreateWrapper", "RestartPolicy"),
    ("ContainerUpdateRequest", "RestartPolicy"),
    ("ServiceSpec", "TaskTemplate"), ("ServiceSpec", "Mode"),
    ("SwarmSpec", "Orchestration"), ("SwarmSpec", "Raft"), ("SwarmSpec", "Dispatcher"),
    ("SwarmSpec", "CAConfig"), ("SwarmSpec", "TaskDefaults"), ("SwarmSpec", "EncryptionConfig"),
})  # fmt: skip

# Scalars that are pointers in the engine's types: null clears them.
_NULLABLE = frozenset({
    ("HostConfig", "Init"), ("HostConfig", "PidsLimit"), ("HostConfig", "MemorySwappiness"),
    ("HostConfig", "OomKillDisable"), ("ContainerCreateWrapper", "Init"),
    ("ContainerCreateWrapper", "PidsLimit"), ("ContainerCreateWrapper", "MemorySwappiness"),
    ("ContainerCreateWrapper", "OomKillDisable"), ("ContainerCreateWrapper", "StopTimeout"),
    ("ContainerConfig", "StopTimeout"), ("ContainerUpdateRequest", "PidsLimit"),
    ("ContainerUpdateRequest", "MemorySwappiness"), ("ContainerUpdateRequest", "OomKillDisable"),
    ("ContainerUpdateRequest", "Init"), ("TaskSpec.ContainerSpec", "Init"),
    ("TaskSpec.ContainerSpec", "StopGracePeriod"), ("ServiceSpec.Mode.Replicated", "Replicas"),
    ("ServiceSpec.Mode.ReplicatedJob", "MaxConcurrent"),
    ("ServiceSpec.Mode.ReplicatedJob", "TotalCompletions"),
    ("TaskSpec.RestartPolicy", "Delay"), ("TaskSpec.RestartPolicy", "MaxAttempts"),
    ("TaskSpec.RestartPolicy", "Window"),
})  # fmt: skip

SCHEMA = Schema(_MODELS, _VALUE_STRUCTS, _NULLABLE)
"""The request models, decoded as the engine decodes them; fields they don't name are
noted and left out of the re-encoded body."""
SCHEMA_KEEP_UNKNOWN = Schema(_MODELS, _VALUE_STRUCTS, _NULLABLE, keep_unknown=True)
"""The same models, keeping fields the specification doesn't name."""

BODY_TYPES: dict[str, tuple[Any, ...]] = {
    "container.create": ("obj", "ContainerCreateWrapper"),
    "container.update": ("obj", "ContainerUpdateRequest"),
    "image.commit": ("obj", "ContainerConfig"),
    "exec.create": ("obj", "ExecConfig"),
    "exec.start": ("obj", "ExecStartConfig"),
    "volume.create": ("obj", "VolumeCreateOptions"),
    "network.create": ("obj", "NetworkCreateRequest"),
    "network.connect": ("obj", "NetworkConnectRequest"),
    "network.disconnect": ("obj", "NetworkDisconnectRequest"),
    "plugin.pull": _spec.ROOTS["PluginPrivileges"],
    "plugin.upgrade": _spec.ROOTS["PluginPrivileges"],
    "plugin.set": _spec.ROOTS["PluginSetArgs"],
    "node.update": ("obj", "NodeSpec"),
    "swarm.init": ("obj", "SwarmInitRequest"),
    "swarm.join": ("obj", "SwarmJoinRequest"),
    "swarm.update": ("obj", "SwarmSpec"),
    "swarm.unlock": ("obj", "SwarmUnlockRequest"),
    "service.create": ("obj", "ServiceSpec"),
    "service.update": ("obj", "ServiceSpec"),
    "secret.create": ("obj", "SecretSpec"),
    "secret.update": ("obj", "SecretSpec"),
    "config.create": ("obj", "ConfigSpec"),
    "config.update": ("obj", "ConfigSpec"),
    "system.auth": ("obj", "AuthConfig"),
}
"""Operation kind -> the type of its JSON body."""


def body_type(kind: str) -> tuple[Any, ...] | None:
    """The type of ``kind``'s JSON body, or None when it has none (or streams one)."""
    return BODY_TYPES.get(kind)
