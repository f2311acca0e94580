"""The Docker Engine API endpoint table: method + path -> Operation. Pure, no I/O.

Every endpoint of API 1.24-1.47 is listed with the class of action it belongs to
(the unit roles are granted in) and the object it names. A path may carry a
version prefix (``/v1.43/containers/json``); it is reported, never dropped.
Anything not in the table is ``unknown``, which the gateway refuses for everyone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["OBJECT_TYPES", "READ_CLASSES", "Operation", "classify"]

_VERSION = re.compile(r"^/v(\d+\.\d+)(/.*)$")

OBJECT_TYPES = ("container", "exec", "image", "network", "volume", "service", "task", "secret",
                "config")  # fmt: skip
"""Object types that belong to a team (tenancy applies)."""


@dataclass(frozen=True)
class Operation:
    """What one request does."""

    kind: str  # e.g. "container.create"
    action_class: str  # e.g. "container.write": what roles grant
    object_type: str | None = None  # e.g. "container"
    object_ref: str | None = None  # id, id prefix or name, as the client wrote it
    version: str | None = None  # "1.43" when the path had a version prefix
    route: str = ""  # the path without the version prefix
    hijack: bool = False  # the connection may be hijacked (attach, exec start, session)

    @property
    def reads_only(self) -> bool:
        """The operation changes nothing (its action class is a read)."""
        return self.action_class in READ_CLASSES


READ_CLASSES = frozenset(
    {"system.read", "container.read", "image.read", "network.read", "volume.read",
     "service.read", "task.read", "swarm.read", "node.read", "secret.read", "config.read",
     "plugin.read", "exception.read", "cluster.read"}
)  # fmt: skip
"""Action classes that only read: what a read-only role grants."""

_ID = r"(?P<ref>[^/]+)"
_NAME = r"(?P<ref>.+?)"  # image and plugin names contain '/'

# (method, pattern, kind, class, object type, hijack)
_TABLE: list[tuple[str, str, str, str, str | None, bool]] = [
    # system
    ("GET", r"/_ping", "system.ping", "system.read", None, False),
    ("HEAD", r"/_ping", "system.ping", "system.read", None, False),
    ("GET", r"/version", "system.version", "system.read", None, False),
    ("GET", r"/info", "system.info", "system.read", None, False),
    ("GET", r"/events", "system.events", "system.read", None, False),
    ("GET", r"/system/df", "system.df", "system.read", None, False),
    ("POST", r"/auth", "system.auth", "system.read", None, False),
    ("POST", r"/session", "build.session", "build", None, True),
    ("POST", r"/grpc", "build.grpc", "build", None, True),
    # containers
    ("GET", r"/containers/json", "container.list", "container.read", None, False),
    ("POST", r"/containers/create", "container.create", "container.write", None, False),
    ("POST", r"/containers/prune", "container.prune", "prune", None, False),
    ("GET", rf"/containers/{_ID}/json", "container.inspect", "container.read", "container", False),
    ("GET", rf"/containers/{_ID}/top", "container.top", "container.read", "container", False),
    ("GET", rf"/containers/{_ID}/logs", "container.logs", "container.read", "container", False),
    ("GET", rf"/containers/{_ID}/changes", "container.changes", "container.read", "container", False),
    ("GET", rf"/containers/{_ID}/export", "container.export", "container.read", "container", False),
    ("GET", rf"/containers/{_ID}/stats", "container.stats", "container.read", "container", False),
    ("GET", rf"/containers/{_ID}/archive", "container.archive.get", "container.read", "container", False),
    ("HEAD", rf"/containers/{_ID}/archive", "container.archive.stat", "container.read", "container", False),
    ("PUT", rf"/containers/{_ID}/archive", "container.archive.put", "container.write", "container", False),
    ("GET", rf"/containers/{_ID}/attach/ws", "container.attach", "container.write", "container", True),
    ("POST", rf"/containers/{_ID}/attach", "container.attach", "container.write", "container", True),
    ("POST", rf"/containers/{_ID}/exec", "exec.create", "exec", "container", False),
    ("POST", rf"/containers/{_ID}/update", "container.update", "container.write", "container", False),
    ("POST", rf"/containers/{_ID}/wait", "container.wait", "container.read", "container", False),
    ("POST", rf"/containers/{_ID}/(?P<verb>start|stop|restart|kill|pause|unpause|resize|rename)",
     "container.{verb}", "container.write", "container", False),
    ("DELETE", rf"/containers/{_ID}", "container.delete", "container.write", "container", False),
    # the engine's route is /containers/{name:.*}: NAME/ALIAS names the container a link
    # points at (deleted), or with link=1 the link itself (removed from NAME)
    ("DELETE", r"/containers/(?P<ref>[^/]+/[^/]+)", "container.delete", "container.write", "container",
     False),
    ("POST", r"/commit", "image.commit", "image.write", "container", False),
    # exec
    ("POST", rf"/exec/{_ID}/start", "exec.start", "exec", "exec", True),
    ("POST", rf"/exec/{_ID}/resize", "exec.resize", "exec", "exec", False),
    ("GET", rf"/exec/{_ID}/json", "exec.inspect", "container.read", "exec", False),
    # images
    ("GET", r"/images/json", "image.list", "image.read", None, False),
    ("POST", r"/build", "image.build", "build", None, False),
    ("POST", r"/build/prune", "build.prune", "prune", None, False),
    ("POST", r"/build/cancel", "build.cancel", "build", None, False),
    ("POST", r"/images/create", "image.pull", "image.write", None, False),
    ("POST", r"/images/load", "image.load", "image.write", None, False),
    ("POST", r"/images/prune", "image.prune", "prune", None, False),
    ("GET", r"/images/search", "image.search", "image.read", None, False),
    ("GET", r"/images/get", "image.save", "image.read", None, False),
    ("GET", rf"/images/{_NAME}/json", "image.inspect", "image.read", "image", False),
    ("GET", rf"/images/{_NAME}/history", "image.history", "image.read", "image", False),
    ("GET", rf"/images/{_NAME}/get", "image.save", "image.read", "image", False),
    ("POST", rf"/images/{_NAME}/push", "image.push", "image.write", "image", False),
    ("POST", rf"/images/{_NAME}/tag", "image.tag", "image.write", "image", False),
    ("DELETE", rf"/images/{_NAME}", "image.delete", "image.write", "image", False),
    ("GET", rf"/distribution/{_NAME}/json", "image.distribution", "image.read", None, False),
    # networks
    ("GET", r"/networks", "network.list", "network.read", None, False),
    ("POST", r"/networks/create", "network.create", "network.write", None, False),
    ("POST", r"/networks/prune", "network.prune", "prune", None, False),
    ("GET", rf"/networks/{_ID}", "network.inspect", "network.read", "network", False),
    ("POST", rf"/networks/{_ID}/(?P<verb>connect|disconnect)", "network.{verb}", "network.write",
     "network", False),
    ("DELETE", rf"/networks/{_ID}", "network.delete", "network.write", "network", False),
    # volumes
    ("GET", r"/volumes", "volume.list", "volume.read", None, False),
    ("POST", r"/volumes/create", "volume.create", "volume.write", None, False),
    ("POST", r"/volumes/prune", "volume.prune", "prune", None, False),
    ("GET", rf"/volumes/{_ID}", "volume.inspect", "volume.read", "volume", False),
    ("PUT", rf"/volumes/{_ID}", "volume.update", "volume.write", "volume", False),
    ("DELETE", rf"/volumes/{_ID}", "volume.delete", "volume.write", "volume", False),
    # swarm
    ("GET", r"/swarm", "swarm.inspect", "swarm.read", None, False),
    ("GET", r"/swarm/unlockkey", "swarm.unlockkey", "swarm.write", None, False),
    ("POST", r"/swarm/(?P<verb>init|join|leave|update|unlock)", "swarm.{verb}", "swarm.write",
     None, False),
    ("GET", r"/nodes", "node.list", "node.read", None, False),
    ("GET", rf"/nodes/{_ID}", "node.inspect", "node.read", None, False),
    ("POST", rf"/nodes/{_ID}/update", "node.update", "node.write", None, False),
    ("DELETE", rf"/nodes/{_ID}", "node.delete", "node.write", None, False),
    ("GET", r"/services", "service.list", "service.read", None, False),
    ("POST", r"/services/create", "service.create", "service.write", None, False),
    ("GET", rf"/services/{_ID}", "service.inspect", "service.read", "service", False),
    ("GET", rf"/services/{_ID}/logs", "service.logs", "service.read", "service", False),
    ("POST", rf"/services/{_ID}/update", "service.update", "service.write", "service", False),
    ("DELETE", rf"/services/{_ID}", "service.delete", "service.write", "service", False),
    ("GET", r"/tasks", "task.list", "task.read", None, False),
    ("GET", rf"/tasks/{_ID}", "task.inspect", "task.read", "task", False),
    ("GET", rf"/tasks/{_ID}/logs", "task.logs", "task.read", "task", False),
    ("GET", r"/secrets", "secret.list", "secret.read", None, False),
    ("POST", r"/secrets/create", "secret.create", "secret.write", None, False),
    ("GET", rf"/secrets/{_ID}", "secret.inspect", "secret.read", "secret", False),
    ("POST", rf"/secrets/{_ID}/update", "secret.update", "secret.write", "secret", False),
    ("DELETE", rf"/secrets/{_ID}", "secret.delete", "secret.write", "secret", False),
    ("GET", r"/configs", "config.list", "config.read", None, False),
    ("POST", r"/configs/create", "config.create", "config.write", None, False),
    ("GET", rf"/configs/{_ID}", "config.inspect", "config.read", "config", False),
    ("POST", rf"/configs/{_ID}/update", "config.update", "config.write", "config", False),
    ("DELETE", rf"/configs/{_ID}", "config.delete", "config.write", "config", False),
    # plugins
    ("GET", r"/plugins", "plugin.list", "plugin.read", None, False),
    ("GET", r"/plugins/privileges", "plugin.privileges", "plugin.read", None, False),
    ("POST", r"/plugins/(?P<verb>pull|create)", "plugin.{verb}", "plugin.write", None, False),
    ("GET", rf"/plugins/{_NAME}/json", "plugin.inspect", "plugin.read", None, False),
    ("POST", rf"/plugins/{_NAME}/(?P<verb>enable|disable|upgrade|push|set)", "plugin.{verb}",
     "plugin.write", None, False),
    ("DELETE", rf"/plugins/{_NAME}", "plugin.delete", "plugin.write", None, False),
    # Moorage's own API, served by the gateway itself (never forwarded)
    ("GET", r"/moorage/v1/exceptions", "moorage.exception.list", "exception.read", None, False),
    ("POST", r"/moorage/v1/exceptions", "moorage.exception.request", "exception.request", None, False),
    ("POST", r"/moorage/v1/exceptions/(?P<ref>[A-Za-z0-9-]+)/(?P<verb>approve|revoke)",
     "moorage.exception.{verb}", "exception.approve", None, False),
    ("GET", r"/moorage/v1/policy", "moorage.policy.status", "system.read", None, False),
    ("POST", r"/moorage/v1/login", "moorage.login", "login", None, False),
    ("GET", r"/moorage/v1/login/oidc", "moorage.login.oidc", "login", None, False),
    ("POST", r"/moorage/v1/logout", "moorage.logout", "session", None, False),
    ("GET", r"/moorage/v1/whoami", "moorage.whoami", "system.read", None, False),
    ("POST", r"/moorage/v1/console/session", "moorage.console.session", "session", None, False),
    ("POST", r"/moorage/v1/certs/revoke", "moorage.cert.revoke", "cert.revoke", None, False),
    ("POST", r"/moorage/v1/service-accounts", "moorage.sa.create", "sa.write", None, False),
    ("GET", r"/moorage/v1/cluster", "moorage.cluster.status", "cluster.read", None, False),
    ("POST", r"/moorage/v1/cluster/(?P<verb>rotate-ca|rotate-tokens|autolock)", "moorage.cluster.{verb}",
     "swarm.security", None, False),
    ("POST", r"/moorage/v1/nodes/(?P<ref>[A-Za-z0-9._-]+)/enrol", "moorage.node.enrol", "node.enrol", None,
     False),
    ("GET", r"/moorage/v1/attestations", "moorage.attestation.list", "cluster.read", None, False),
    ("POST", r"/moorage/v1/attestations", "moorage.attestation.request", "attestation.request", None, False),
    ("GET", r"/moorage/v1/attestations/(?P<ref>att-[0-9a-f]+)/statement", "moorage.attestation.statement",
     "attestation.approve", None, False),
    ("POST", r"/moorage/v1/attestations/(?P<ref>att-[0-9a-f]+)/approve", "moorage.attestation.approve",
     "attestation.approve", None, False),
    ("POST", r"/moorage/v1/nodes/(?P<ref>[A-Za-z0-9._-]+)/revoke", "moorage.attestation.revoke",
     "attestation.approve", None, False),
]  # fmt: skip

_COMPILED: dict[str, list[tuple[re.Pattern[str], str, str, str | None, bool]]] = {}
for _m, _p, _k, _c, _o, _h in _TABLE:
    _COMPILED.setdefault(_m, []).append((re.compile(f"^{_p}$"), _k, _c, _o, _h))
# a few exact paths answer the hot path without regex work
_FAST: dict[tuple[str, str], Operation] = {}
for _m, _p, _k, _c, _o, _h in _TABLE:
    if _o is None and "(" not in _p:
        _FAST[(_m, _p.replace("\\", ""))] = Operation(_k, _c, None, None, None, _p, _h)


def classify(method: str, path: str, query: dict[str, list[str]] | None = None) -> Operation:
    """Name the operation of a request. ``path`` is the percent-decoded URL path
    without the query (:func:`moorage.engine_api.canonical.read_target` decodes it);
    a trailing slash is not stripped, because the engine's router doesn't either."""
    version = None
    route = path
    m = _VERSION.match(path)
    if m:
        version, route = m.group(1), m.group(2)
    method = method.upper()
    fast = _FAST.get((method, route))
    if fast is not None:
        if version is None:
            return fast
        return Operation(fast.kind, fast.action_class, None, None, version, route, fast.hijack)
    for pattern, kind, cls, otype, hijack in _COMPILED.get(method, ()):
        hit = pattern.match(route)
        if hit is None:
            continue
        groups = hit.groupdict()
        if "verb" in groups:
            kind = kind.format(verb=groups["verb"])
        ref = groups["ref"] if groups.get("ref") else None
        if kind == "image.commit":
            ref = (query or {}).get("container", [None])[0]
        return Operation(kind, cls, otype, ref, version, route, hijack)
    return Operation("unknown", "unknown", None, None, version, route, False)
