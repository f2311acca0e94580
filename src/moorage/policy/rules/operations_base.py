"""What the operation rules share: the allow-lists of build, import, update and network
settings, the operations the packs know, and the engine state they compare against
(:class:`OperationFacts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from moorage.policy.rules.base import Finding

__all__ = [
    "BUILD_ISOLATION",
    "BUILD_NETWORK_MODES",
    "BUILD_REMOTES",
    "IMPORT_SOURCES",
    "IPAM_DRIVERS",
    "MODELLED",
    "MOORAGE_LABELS",
    "NETWORK_DRIVERS",
    "NETWORK_OPTIONS",
    "PLAIN",
    "READS",
    "UPDATE_FIELDS",
    "Operation",
    "OperationFacts",
]


# Build steps may run on the build's own bridge, the engine's default, or no network.
# `host` and `container:<id>` join a namespace outside the build; a user-defined
# network name is a join that tenancy can't see (the builder connects it).
BUILD_NETWORK_MODES = frozenset({"", "default", "bridge", "none"})
BUILD_ISOLATION = frozenset({"", "default"})
# A build's `remote`: empty (the context is the request body) or BuildKit's
# "client-session" (the client streams it over the session). Anything else is a URL or
# Git repository the engine fetches itself, from the host's network namespace
# (builder/remotecontext/detect.go): a request from the host to whatever it can reach.
BUILD_REMOTES = frozenset({"", "client-session"})
# An image import's `fromSrc`: "-" is the tarball in the body; empty is a pull (or an
# import the engine refuses). Anything else is a URL the engine downloads from the host
# (daemon/images/image_import.go).
IMPORT_SOURCES = frozenset({"", "-"})

# container update: what the engine applies (container.UpdateContainer in 20.10 and
# 27.x); every other field of UpdateConfig is ignored by those engines and refused
# here when set, so a newer engine that starts honouring one is not passed.
UPDATE_FIELDS = frozenset({
    "BlkioWeight", "CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota", "CpusetCpus", "CpusetMems", "Memory",
    "MemorySwap", "MemoryReservation", "KernelMemory", "CpuRealtimePeriod", "CpuRealtimeRuntime",
    "PidsLimit", "RestartPolicy",
})  # fmt: skip

# network create: drivers whose networks stay inside the engine, and the driver
# options that only tune them. `com.docker.network.bridge.name` is not here: naming
# an existing host bridge attaches the network's containers to it.
NETWORK_DRIVERS = frozenset({"", "bridge", "overlay"})
NETWORK_OPTIONS = frozenset({
    "com.docker.network.bridge.enable_icc", "com.docker.network.bridge.enable_ip_masquerade",
    "com.docker.network.bridge.host_binding_ipv4", "com.docker.network.driver.mtu",
    "com.docker.network.container_iface_prefix", "com.docker.network.enable_ipv6", "encrypted",
})  # fmt: skip
IPAM_DRIVERS = frozenset({"", "default"})

MOORAGE_LABELS = "io.moorage."

MODELLED = frozenset({
    "container.create", "container.update", "exec.create", "service.create", "service.update",
    "volume.create", "image.build", "image.pull", "build.grpc", "network.create", "network.connect",
    "plugin.pull", "plugin.upgrade", "plugin.set", "plugin.create", "plugin.enable", "node.update",
    "swarm.init", "swarm.join", "swarm.update",
})  # fmt: skip

PLAIN = frozenset({
    "container.start", "container.stop", "container.restart", "container.kill", "container.pause",
    "container.unpause", "container.resize", "container.rename", "container.delete", "container.attach",
    "container.archive.put", "container.prune", "exec.start", "exec.resize", "image.commit",
    "image.push", "image.tag", "image.delete", "image.load", "image.prune", "build.prune", "build.cancel",
    "build.session", "network.disconnect", "network.delete", "network.prune", "volume.update",
    "volume.delete", "volume.prune", "service.delete", "secret.create", "secret.update", "secret.delete",
    "config.create", "config.update", "config.delete", "node.delete", "swarm.leave", "swarm.unlock",
    "swarm.unlockkey", "plugin.disable", "plugin.push", "plugin.delete",
})  # fmt: skip

READS = frozenset({
    "system.ping", "system.version", "system.info", "system.events", "system.df", "system.auth",
    "container.list", "container.inspect", "container.top", "container.logs", "container.changes",
    "container.export", "container.stats", "container.archive.get", "container.archive.stat",
    "container.wait", "exec.inspect", "image.list", "image.search", "image.save", "image.inspect",
    "image.history", "image.distribution", "network.list", "network.inspect", "volume.list",
    "volume.inspect", "swarm.inspect", "node.list", "node.inspect", "service.list", "service.inspect",
    "service.logs", "task.list", "task.inspect", "task.logs", "secret.list", "secret.inspect",
    "config.list", "config.inspect", "plugin.list", "plugin.privileges", "plugin.inspect",
})  # fmt: skip


@dataclass(frozen=True)
class OperationFacts:
    """Engine state some checks compare against, gathered by admission when it can.

    ``host_networks``: the full ids of the engine's networks with the ``host`` driver
    (local and swarm), so a reference by id or id prefix is recognised. ``node_labels``:
    a node's current labels (``node.update``). ``plugin_config``: the plugin's
    ``Config`` from ``GET /plugins/{name}/json`` (``plugin.set``, ``plugin.enable``).
    """

    host_networks: tuple[str, ...] = ()
    node_labels: Mapping[str, str] | None = None
    plugin_config: Mapping[str, object] | None = None


_NO_FACTS = OperationFacts()


class Operation(NamedTuple):
    """One operation as the operation rules read it: its kind, body and query, the
    object it names, the plugin privileges and IPAM pools the policy allows, and the
    engine state gathered for it. (A named tuple: one is made per document and
    request, and a tuple is the cheapest immutable record to make.)"""

    kind: str
    body: object
    query: Mapping[str, list[str]]
    object_ref: str | None
    plugin_allow: frozenset[str]
    facts: OperationFacts
    subnets: tuple[str, ...]


def _f(rule: str, path: str, value: object, message: str, fix: str) -> Finding:
    return Finding(rule, path, value, message, fix)


def _first(query: Mapping[str, list[str]], name: str) -> str:
    """A single-valued parameter as the engine's ``r.FormValue`` reads it: the first."""
    values = query.get(name) or []
    return values[0] if values else ""


def _zero(value: object) -> bool:
    """Go's zero value after decoding: the engine treats these as "not set"."""
    return value is None or value is False or value == 0 or value == "" or value == [] or value == {}


def _items(obj: object) -> list[object]:
    return obj if isinstance(obj, list) else []
