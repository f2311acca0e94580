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

from collections.abc import Callable, Mapping

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
    Operation,
    OperationFacts,
    _f,
    _first,
    _zero,
)
from moorage.policy.rules.operations_net import check_networks
from moorage.policy.rules.plugins import PLUGIN_CHECKS

__all__ = [
    "BUILD_ISOLATION",
    "BUILD_NETWORK_MODES",
    "BUILD_REMOTES",
    "IMPORT_SOURCES",
    "MODELLED",
    "MOORAGE_LABELS",
    "NETWORK_CHECK",
    "NETWORK_KINDS",
    "PLAIN",
    "READS",
    "ROUTES",
    "UPDATE_FIELDS",
    "OperationCheck",
    "OperationFacts",
    "check_operation",
    "unknown_operation",
    "unmodelled",
]


# ---------------------------------------------------------------------- builds
def _build_network_mode(op: Operation) -> list[Finding]:
    mode = _first(op.query, "networkmode")
    if mode in BUILD_NETWORK_MODES:
        return []
    what = (
        "another container's network namespace"
        if mode.lower().startswith("container:")
        else "the host's network namespace"
        if mode.lower() == "host"
        else f"network {mode!r}"
    )
    return [
        _f(
            "build.network-mode",
            "networkmode",
            mode,
            f"build steps may not run in {what}",
            "build with --network default, bridge or none",
        )
    ]


def _build_cgroup_parent(op: Operation) -> list[Finding]:
    parent = _first(op.query, "cgroupparent")
    if not parent:
        return []
    return [
        _f(
            "build.cgroup-parent",
            "cgroupparent",
            parent,
            "build steps may not choose the host cgroup they run under",
            "remove --cgroup-parent",
        )
    ]


def _build_isolation(op: Operation) -> list[Finding]:
    isolation = _first(op.query, "isolation")
    if isolation.lower() in BUILD_ISOLATION:  # the engine's IsDefault folds case
        return []
    return [
        _f(
            "build.isolation",
            "isolation",
            isolation,
            f"isolation {isolation!r} is not the engine's default",
            "remove --isolation",
        )
    ]


def _build_remote(op: Operation) -> list[Finding]:
    remote = _first(op.query, "remote")
    if remote in BUILD_REMOTES:
        return []
    return [
        _f(
            "build.remote",
            "remote",
            remote,
            f"the engine would fetch the build context {remote!r} itself, from the host's network "
            "(reaching services on the host's loopback and metadata addresses)",
            "send the build context from the client (docker build DIR, or a tarball on stdin)",
        )
    ]


def _build_security_opt(op: Operation) -> list[Finding]:
    return [
        _f(
            "build.security-opt",
            f"securityopt[{i}]",
            opt,
            "security options on a build change the confinement of its steps",
            "remove --security-opt",
        )
        for i, opt in enumerate(op.query.get("securityopt") or [])
    ]


def _build_grpc(op: Operation) -> list[Finding]:
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


# ---------------------------------------------------------------------- images
def _image_create(op: Operation) -> list[Finding]:
    """``POST /images/create``: a pull (``fromImage``) or an import (``fromSrc``)."""
    source = _first(op.query, "fromSrc")
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
def _update(op: Operation) -> list[Finding]:
    body = op.body
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
def _node_labels(op: Operation) -> list[Finding]:
    body, facts = op.body, op.facts
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
    return out


def _node_promote(op: Operation) -> list[Finding]:
    out: list[Finding] = []
    current = op.facts.node_labels
    ours = {k: v for k, v in (current or {}).items() if k.lower().startswith(MOORAGE_LABELS)}
    role = _get(op.body, "Role")
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


def _swarm_join(op: Operation) -> list[Finding]:
    if op.kind != "swarm.join":
        return []
    return [
        _f(
            "swarm.join",
            "RemoteAddrs",
            _get(op.body, "RemoteAddrs"),
            "a node that joins a swarm runs whatever that swarm's managers schedule, past Moorage",
            "join nodes with Moorage's cluster enrolment, or ask for an exception",
        )
    ]


def _swarm_ca(op: Operation) -> list[Finding]:
    kind, body = op.kind, op.body
    out: list[Finding] = []
    if kind == "swarm.join":
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
OperationCheck = Callable[[Operation], list[Finding]]
"""One operation rule's check."""

ROUTES: tuple[tuple[frozenset[str], tuple[tuple[str, OperationCheck], ...]], ...] = (
    (frozenset({"image.build"}), (
        ("build.network-mode", _build_network_mode),
        ("build.cgroup-parent", _build_cgroup_parent),
        ("build.isolation", _build_isolation),
        ("build.remote", _build_remote),
        ("build.security-opt", _build_security_opt),
    )),
    (frozenset({"image.pull"}), (("images.import-url", _image_create),)),
    (frozenset({"container.update"}), (("runtime.update-field", _update),)),
    (frozenset({"node.update"}), (("node.labels", _node_labels), ("node.promote", _node_promote))),
    (frozenset({"build.grpc"}), (("build.grpc", _build_grpc),)),
    (frozenset(k for k in MODELLED if k.startswith("plugin.")), PLUGIN_CHECKS),
    (frozenset(k for k in MODELLED if k.startswith("swarm.")),
     (("swarm.join", _swarm_join), ("swarm.ca", _swarm_ca))),
)  # fmt: skip
"""The modelled kinds whose rules are checked here, with each rule's check (by rule
id, in report order). Every other modelled kind is :data:`NETWORK_KINDS`'."""

NETWORK_KINDS = MODELLED - frozenset(k for kinds, _ in ROUTES for k in kinds)
"""The modelled kinds read only for their networks (:data:`NETWORK_CHECK`)."""

NETWORK_CHECK: OperationCheck = check_networks
"""The network rules of an operation (network.host, network.driver, network.driver-option,
network.subnet, network.ingress), read in one pass over the request's networks."""

_ROUTE = {k: checks for kinds, checks in ROUTES for k in kinds}


def unmodelled(kind: str) -> bool:
    """Whether ``kind`` is refused as ``runtime.unknown-operation``: neither modelled,
    nor plain, nor a read, nor Moorage's own API."""
    return not (kind in PLAIN or kind in READS or kind.startswith("moorage.") or kind in MODELLED)


def unknown_operation(kind: str) -> list[Finding]:
    """``runtime.unknown-operation`` for a kind nobody has modelled."""
    if not unmodelled(kind):
        return []
    return [
        _f(
            "runtime.unknown-operation",
            "(operation)",
            kind,
            f"operation {kind} is not one Moorage has modelled, so it is refused",
            "use a documented Engine API endpoint; if this one is needed, ask for it to be modelled",
        )
    ]


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
    if kind not in MODELLED:
        return unknown_operation(kind)  # plain, reads and Moorage's own API are RBAC's
    op = Operation(kind, body, query, object_ref, plugin_allow, facts or _NO_FACTS, subnets)
    checks = _ROUTE.get(kind)
    if checks is None:
        return NETWORK_CHECK(op)
    out: list[Finding] = []
    for _, rule_check in checks:
        out += rule_check(op)
    return out
