"""What the built-in packs check beyond a workload's runtime view: every operation.

The packs (``baseline``, ``restricted``) are allow-lists of operations as well as of
fields. Each state-changing operation the engine offers is in exactly one of:

- :data:`MODELLED`: its body or query is read here (or by the runtime view) and
  only what is known to stay inside the container is allowed;
- :data:`PLAIN`: it changes state but carries nothing that reaches the host (stop,
  delete, tag...). RBAC and tenancy decide who may call it;
- :data:`READS`: it changes nothing.

Anything else, including an operation Moorage can't classify, is refused with
``runtime.unknown-operation``: an endpoint nobody has modelled is not passed.

Requests arrive canonical (decoded as the engine decodes them, with the engine's
field names), and a single-valued query parameter carries exactly one value, the one
the engine reads. Field lookups still fold case, so a hand-made request in a test or
``moorage policy check`` reads the same way. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

from moorage.policy.rules.base import Finding, _get
from moorage.policy.rules.operations_base import (
    _NO_FACTS,
    BUILD_ISOLATION,
    BUILD_NETWORK_MODES,
    BUILD_REMOTES,
    IMPORT_SOURCES,
    MODELLED,
    MOORAGE_LABELS,
    PLAIN,
    READS,
    UPDATE_FIELDS,
    OperationFacts,
    _f,
    _first,
    _zero,
)
from moorage.policy.rules.operations_ipam import _networks
from moorage.policy.rules.plugins import _plugins

__all__ = [
    "BUILD_ISOLATION",
    "BUILD_NETWORK_MODES",
    "BUILD_REMOTES",
    "IMPORT_SOURCES",
    "MODELLED",
    "MOORAGE_LABELS",
    "PLAIN",
    "READS",
    "UPDATE_FIELDS",
    "OperationFacts",
    "check_operation",
]


# ---------------------------------------------------------------------- builds
def _build(query: Mapping[str, list[str]]) -> list[Finding]:
    out: list[Finding] = []
    mode = _first(query, "networkmode")
    if mode not in BUILD_NETWORK_MODES:
        what = (
            "another container's network namespace"
            if mode.lower().startswith("container:")
            else "the host's network namespace"
            if mode.lower() == "host"
            else f"network {mode!r}"
        )
        out.append(
            _f(
                "build.network-mode",
                "networkmode",
                mode,
                f"build steps may not run in {what}",
                "build with --network default, bridge or none",
            )
        )
    parent = _first(query, "cgroupparent")
    if parent:
        out.append(
            _f(
                "build.cgroup-parent",
                "cgroupparent",
                parent,
                "build steps may not choose the host cgroup they run under",
                "remove --cgroup-parent",
            )
        )
    isolation = _first(query, "isolation")
    if isolation.lower() not in BUILD_ISOLATION:  # the engine's IsDefault folds case
        out.append(
            _f(
                "build.isolation",
                "isolation",
                isolation,
                f"isolation {isolation!r} is not the engine's default",
                "remove --isolation",
            )
        )
    remote = _first(query, "remote")
    if remote not in BUILD_REMOTES:
        out.append(
            _f(
                "build.remote",
                "remote",
                remote,
                f"the engine would fetch the build context {remote!r} itself, from the host's network "
                "(reaching services on the host's loopback and metadata addresses)",
                "send the build context from the client (docker build DIR, or a tarball on stdin)",
            )
        )
    for i, opt in enumerate(query.get("securityopt") or []):
        out.append(
            _f(
                "build.security-opt",
                f"securityopt[{i}]",
                opt,
                "security options on a build change the confinement of its steps",
                "remove --security-opt",
            )
        )
    return out


# ---------------------------------------------------------------------- images
def _image_create(query: Mapping[str, list[str]]) -> list[Finding]:
    """``POST /images/create``: a pull (``fromImage``) or an import (``fromSrc``)."""
    source = _first(query, "fromSrc")
    if source in IMPORT_SOURCES:
        return []
    return [
        _f(
            "images.import-url",
            "fromSrc",
            source,
            f"the engine would download {source!r} itself, from the host's network (reaching "
            "services on the host's loopback and metadata addresses)",
            "download the archive on the client and import it from there "
            "(docker import FILE, or curl URL | docker import -)",
        )
    ]


# ------------------------------------------------------------ container update
def _update(body: object) -> list[Finding]:
    out: list[Finding] = []
    allowed = {f.lower() for f in UPDATE_FIELDS}
    for key, value in body.items() if isinstance(body, dict) else ():
        if str(key).lower() not in allowed and not _zero(value):
            out.append(_finding_update(str(key), value))
    return out


def _finding_update(key: str, value: object) -> Finding:
    return _f(
        "runtime.update-field",
        key,
        value,
        f"docker update may change limits and the restart policy only, not {key}",
        f"recreate the container to change {key}",
    )


# --------------------------------------------------------------- swarm, nodes
def _node(body: object, facts: OperationFacts) -> list[Finding]:
    out: list[Finding] = []
    labels = _get(body, "Labels")
    labels = labels if isinstance(labels, dict) else {}
    current = facts.node_labels
    for key, value in labels.items():
        if not str(key).lower().startswith(MOORAGE_LABELS):
            continue
        if current is not None and current.get(str(key)) == value:
            continue  # kept as it was: Moorage's own bookkeeping, carried across the update
        out.append(
            _f(
                "node.labels",
                f"Labels.{key}",
                value,
                f"labels under {MOORAGE_LABELS} are set by Moorage from attestation, never by hand",
                "remove the label; enrol and attest the node to earn it",
            )
        )
    ours = {k: v for k, v in (current or {}).items() if k.lower().startswith(MOORAGE_LABELS)}
    for key, value in ours.items():
        if labels.get(key) != value and not any(f.path == f"Labels.{key}" for f in out):
            out.append(
                _f(
                    "node.labels",
                    f"Labels.{key}",
                    None,
                    f"label {key} is Moorage's projection of the node's enrolment and attestation; "
                    "an update can't remove it",
                    "keep the label (docker node update sends it back unchanged); "
                    "moorage node revoke withdraws an attestation",
                )
            )
    role = _get(body, "Role")
    attested = any(k.lower().startswith(MOORAGE_LABELS + "attested.") for k in ours)
    if str(role).lower() == "manager" and attested:
        out.append(
            _f(
                "node.promote",
                "Role",
                role,
                "an attested node can't become a manager: a manager changes the cluster it was attested in",
                "revoke the node's attestation first (moorage node revoke), or promote another node",
            )
        )
    return out


def _swarm(kind: str, body: object) -> list[Finding]:
    out: list[Finding] = []
    if kind == "swarm.join":
        out.append(
            _f(
                "swarm.join",
                "RemoteAddrs",
                _get(body, "RemoteAddrs"),
                "a node that joins a swarm runs whatever that swarm's managers schedule, past Moorage",
                "join nodes with Moorage's cluster enrolment, or ask for an exception",
            )
        )
        return out
    ca = _get(_get(body, "Spec"), "CAConfig") if kind == "swarm.init" else _get(body, "CAConfig")
    where = "Spec.CAConfig" if kind == "swarm.init" else "CAConfig"
    if not _zero(_get(ca, "SigningCAKey")):
        out.append(
            _f(
                "swarm.ca",
                f"{where}.SigningCAKey",
                "(key)",
                "a root CA key from the caller lets its holder mint swarm node certificates",
                "let the swarm generate its own root CA (docker swarm ca --rotate)",
            )
        )
    if not _zero(_get(ca, "ExternalCAs")):
        out.append(
            _f(
                "swarm.ca",
                f"{where}.ExternalCAs",
                _get(ca, "ExternalCAs"),
                "an external CA issues the swarm's node certificates outside Moorage",
                "remove --external-ca",
            )
        )
    return out


# ---------------------------------------------------------------------- entry
def check_operation(
    kind: str,
    body: object,
    query: Mapping[str, list[str]],
    object_ref: str | None,
    plugin_allow: frozenset[str] = frozenset(),
    facts: OperationFacts | None = None,
    subnets: tuple[str, ...] = (),
) -> list[Finding]:
    """The pack's findings for one operation, beside its runtime view's.

    ``plugin_allow`` holds ``NAME=VALUE`` privileges a policy allows plugins to be
    granted (``plugins.privileges``); empty by default. ``subnets`` holds the CIDR
    pools a policy allows explicit network IPAM settings in (``network.subnets``);
    empty by default, so any explicit subnet, range, gateway or auxiliary address is
    refused.
    """
    if kind in PLAIN or kind in READS or kind.startswith("moorage."):
        return []  # nothing that reaches the host; Moorage's own API is RBAC's
    if kind not in MODELLED:
        return [
            _f(
                "runtime.unknown-operation",
                "(operation)",
                kind,
                f"operation {kind} is not one Moorage has modelled, so it is refused",
                "use a documented Engine API endpoint; if this one is needed, ask for it to be modelled",
            )
        ]
    facts = facts or _NO_FACTS
    if kind == "image.build":
        return _build(query)
    if kind == "image.pull":
        return _image_create(query)
    if kind == "container.update":
        return _update(body)
    if kind == "node.update":
        return _node(body, facts)
    if kind == "build.grpc":
        return [
            _f(
                "build.grpc",
                "(stream)",
                None,
                "BuildKit's gRPC API lets the client grant its build steps the host network "
                "(the network.host entitlement), inside a stream Moorage can't read",
                "build with the classic API (DOCKER_BUILDKIT=0 docker build, or docker-compose); or an "
                "operator disables the engine's network-host build entitlement and grants an exception",
            )
        ]
    if kind.startswith("plugin."):
        return _plugins(kind, body, plugin_allow, facts)
    if kind.startswith("swarm."):
        return _swarm(kind, body)
    return _networks(kind, body, object_ref, facts, subnets)
