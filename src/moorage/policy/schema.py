"""The policy document as typed models: what a YAML file may say, and nothing more.

Every model is a frozen msgspec Struct that refuses unknown fields, so a typo is a
load error, never a silently ignored rule. ``None`` means the key was absent (an
explicit ``null`` is refused before conversion, see :mod:`moorage.policy.documents`).
Numbers keep the type they were written with (``int | float``) because rule messages
quote them back as written. The published JSON Schema, :data:`SCHEMA`, is generated
from these models.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = [
    "API_VERSION",
    "NAME_PATTERN",
    "SCHEMA",
    "Action",
    "CelSpec",
    "Database",
    "ImagesSpec",
    "Limits",
    "Metadata",
    "Mutations",
    "NetworkSpec",
    "Pack",
    "Packages",
    "PlacementSpec",
    "PluginsSpec",
    "PolicyDocument",
    "PolicySpec",
    "Publish",
    "Quotas",
    "RegoSpec",
    "ResourcesSpec",
    "Running",
    "RuntimeSpec",
    "Scope",
    "SharedSpec",
    "Signatures",
    "Surface",
    "Vulnerabilities",
]

API_VERSION = "moorage.dev/v1"
NAME_PATTERN = "^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$"
_SIZE_PATTERN = "^[0-9]+(\\.[0-9]+)?\\s*([bkmgtBKMGT][iI]?[bB]?)?$"

Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN)]
Text = Annotated[str, msgspec.Meta(min_length=1)]
Strings = list[Text]
# A byte count or "512m"; parse_size reads it at load and again when a rule compares.
Size = Annotated[int, msgspec.Meta(ge=0)] | Annotated[str, msgspec.Meta(pattern=_SIZE_PATTERN)]
# A CPU count above 0; parse_cpus checks the range at load so NaN and infinity get
# the same "not a CPU count" message as 0 (the schema says it for other tools).
Cpus = Annotated[int | float, msgspec.Meta(extra_json_schema={"exclusiveMinimum": 0})]
Pack = Literal["baseline", "restricted"]
"""A built-in pack of runtime rules."""
Severity = Literal["none", "low", "medium", "high", "critical"]


class _Model(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A part of a policy document: frozen, unknown fields refused."""

    def __bool__(self) -> bool:
        # false when no key was given, as the YAML mapping it came from was: rules
        # treat ``images: {}`` like no ``images`` at all
        return any(getattr(self, name) is not None for name in self.__struct_fields__)


class Metadata(_Model, frozen=True, forbid_unknown_fields=True):
    """``metadata``: the document's name (unique in a folder) and version."""

    name: Name
    version: str | int | None = None
    description: str | None = None


class Scope(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.scope``: who a document applies to; an empty scope takes in everyone."""

    teams: Strings | None = None
    users: Strings | None = None
    labels: dict[str, str] | None = None


class Limits(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.resources.max``: the most one workload may ask for."""

    memory: Size | None = None
    cpus: Cpus | None = None
    pids: Annotated[int, msgspec.Meta(ge=1)] | None = None


class ResourcesSpec(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.resources``: limits every workload must set, and their maxima."""

    require: list[Literal["memory", "cpus", "pids"]] | None = None
    max: Limits | None = None


class Quotas(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.quotas``: what one team may hold at once."""

    containers: Annotated[int, msgspec.Meta(ge=0)] | None = None
    cpus: Cpus | None = None
    memory: Size | None = None
    replicas: Annotated[int, msgspec.Meta(ge=0)] | None = None


class Signatures(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.images.signatures``: the keys an image must be signed with."""

    keys: Annotated[Strings, msgspec.Meta(min_length=1)]
    required: bool | None = None


class Vulnerabilities(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.images.vulnerabilities``: the worst severity an image may carry."""

    max_severity: Severity | None = msgspec.field(default=None, name="maxSeverity")
    only_fixed: bool | None = msgspec.field(default=None, name="onlyFixed")
    ignore: Strings | None = None


class Packages(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.images.packages``: packages an image must not, or must, contain."""

    forbidden: Strings | None = None
    required: Strings | None = None


class Database(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.images.database``: how old the vulnerability database may be."""

    max_age: str | int | None = msgspec.field(default=None, name="maxAge")


class Surface(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.images.surface``: how much userland an image may carry (shells, package
    managers, packages, size) and the bases it may be built from."""

    shells: Literal["forbid", "allow"] | None = None
    package_managers: Literal["forbid", "allow"] | None = msgspec.field(default=None, name="packageManagers")
    max_packages: Annotated[int, msgspec.Meta(ge=0)] | None = msgspec.field(default=None, name="maxPackages")
    max_size: Size | None = msgspec.field(default=None, name="maxSize")
    bases: Annotated[Strings, msgspec.Meta(min_length=1)] | None = None


class ImagesSpec(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.images``: where images come from, and what a scan must show."""

    registries: Strings | None = None
    forbid_latest: bool | None = msgspec.field(default=None, name="forbidLatest")
    require_digest: bool | None = msgspec.field(default=None, name="requireDigest")
    signatures: Signatures | None = None
    vulnerabilities: Vulnerabilities | None = None
    packages: Packages | None = None
    sbom: Literal["required", "optional"] | None = None
    database: Database | None = None
    surface: Surface | None = None


class Publish(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.network.publish``: the host addresses and ports a port may bind."""

    host_ips: Strings | None = msgspec.field(default=None, name="hostIPs")
    ports: list[Annotated[str, msgspec.Meta(pattern="^[0-9]+(-[0-9]+)?$")]] | None = None


class NetworkSpec(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.network``: host networking, network names, IPAM pools, published ports."""

    host_network: bool | None = msgspec.field(default=None, name="hostNetwork")
    create: Strings | None = None
    join: Strings | None = None
    # CIDR pools explicit IPAM settings (--subnet, --ip-range, --gateway, --aux-address)
    # must lie in; none by default
    subnets: Strings | None = None
    publish: Publish | None = None


class RuntimeSpec(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.runtime``: what a document adds to the packs' runtime allow-lists
    (checked by RuntimeAllow.from_spec when the document loads)."""

    seccomp_profiles: Strings | None = msgspec.field(default=None, name="seccompProfiles")
    app_armor_profiles: Strings | None = msgspec.field(default=None, name="appArmorProfiles")
    selinux_types: Strings | None = msgspec.field(default=None, name="selinuxTypes")
    runtimes: Strings | None = None
    log_drivers: Strings | None = msgspec.field(default=None, name="logDrivers")


class SharedSpec(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.shared``: networks and volumes no team owns that every team may use
    (join, mount, read); objects nobody owns are otherwise out of reach."""

    networks: Strings | None = None
    volumes: Strings | None = None
    labels: Strings | None = None


class PluginsSpec(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.plugins``: the privileges a plugin may be granted."""

    # NAME=VALUE, e.g. "mount=/var/lib/app" or "capabilities=CAP_NET_ADMIN"
    privileges: Strings | None = None


class PlacementSpec(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.placement``: workload classes, the teams mapped to them, and the
    classes whose attested nodes run nothing else."""

    classes: dict[str, Strings] | None = None
    teams: dict[str, str] | None = None
    label: Text | None = None
    exclusive: Strings | None = None


class CelSpec(_Model, frozen=True, forbid_unknown_fields=True):
    """One ``spec.custom`` rule: a CEL expression that must hold."""

    id: Name
    expr: Text
    message: str
    fix: str | None = None
    kinds: Strings | None = None


class RegoSpec(_Model, frozen=True, forbid_unknown_fields=True):
    """One ``spec.rego`` policy: a Rego file (relative to the folder) and its query."""

    id: Name
    file: Text
    query: str | None = None
    message: str | None = None


class Mutations(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.mutations``: safe defaults set when a request leaves them unset."""

    no_new_privileges: bool | None = msgspec.field(default=None, name="noNewPrivileges")
    pids_limit: Annotated[int, msgspec.Meta(ge=1)] | None = msgspec.field(default=None, name="pidsLimit")
    memory: Size | None = None
    cpus: Cpus | None = None
    cap_drop: Strings | None = msgspec.field(default=None, name="capDrop")
    read_only_rootfs: bool | None = msgspec.field(default=None, name="readOnlyRootfs")


Action = Literal["report", "warn", "block-update", "require-at-restart"]
"""What happens to a running workload that falls out of compliance with a rule."""


class Running(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec.running``: what happens to running workloads this document's rules now
    catch. ``action`` is the default (``report``); ``rules`` sets it per rule id or
    ``family.*``. Nothing running is ever stopped."""

    action: Action | None = None
    rules: dict[Text, Action] | None = None


class PolicySpec(_Model, frozen=True, forbid_unknown_fields=True):
    """``spec``: the mode, the scope and one section per rule family."""

    mode: Literal["enforce", "audit"] | None = None
    scope: Scope | None = None
    packs: list[Pack] | None = None
    resources: ResourcesSpec | None = None
    quotas: Quotas | None = None
    images: ImagesSpec | None = None
    network: NetworkSpec | None = None
    runtime: RuntimeSpec | None = None
    shared: SharedSpec | None = None
    plugins: PluginsSpec | None = None
    placement: PlacementSpec | None = None
    custom: list[CelSpec] | None = None
    rego: list[RegoSpec] | None = None
    mutations: Mutations | None = None
    running: Running | None = None


class PolicyDocument(_Model, frozen=True, forbid_unknown_fields=True):
    """A whole policy document, as one YAML document of a policy file."""

    api_version: Literal["moorage.dev/v1"] = msgspec.field(name="apiVersion")
    kind: Literal["Policy"]
    metadata: Metadata
    spec: PolicySpec


def _no_null(node: object) -> object:
    """The schema without the ``null`` choices that stand for an absent key: a document
    may leave a key out but may not write ``null``."""
    if isinstance(node, list):
        return [_no_null(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _no_null(v) for k, v in node.items() if not (k == "default" and v is None)}
    given = out.get("anyOf")
    choices = [c for c in given if c != {"type": "null"}] if isinstance(given, list) else []
    if given is not None and len(choices) == 1 and isinstance(choices[0], dict):
        del out["anyOf"]
        out.update(choices[0])
    elif given is not None:
        out["anyOf"] = choices
    return out


def _schema() -> dict[str, object]:
    generated = _no_null(msgspec.json.schema(PolicyDocument))
    assert isinstance(generated, dict)  # msgspec's schema of a Struct is an object
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://moorage.dev/schemas/policy-v1.json",
        "title": "Moorage policy document",
        **generated,
    }


SCHEMA: dict[str, object] = _schema()
"""The published JSON Schema of policy documents (``moorage policy schema``)."""
