"""The rule families beside runtime: resources, quotas, images, network, placement.

Each reads one normalised view of the request (whatever endpoint or field spelling
carried it) and returns :class:`~moorage.policy.runtime.Finding` values. Pure.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from moorage.engine_api.reference import ImageRef, parse_image_ref
from moorage.policy.runtime import Finding, _get
from moorage.policy.schema import ImagesSpec, NetworkSpec, PlacementSpec, Quotas, ResourcesSpec
from moorage.policy.units import parse_duration, parse_size

__all__ = [
    "ImageFacts",
    "NetworkView",
    "ResourceView",
    "Usage",
    "check_image_trust",
    "check_images",
    "check_network",
    "check_placement",
    "check_quotas",
    "check_resources",
    "container_limits",
    "placement_constraints",
    "view_images",
    "view_network",
    "view_resources",
]


def _finding(rule: str, path: str, value: Any, message: str, fix: str) -> Finding:
    return Finding(rule, path, value, message, fix)


def _human(n: float) -> str:
    for unit, size in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if n >= size and n % (size // 8 or 1) == 0:
            return f"{n / size:g}{unit}"
    return f"{int(n)}"


# ------------------------------------------------------------------ resources
@dataclass
class ResourceView:
    memory: tuple[str, int] = ("HostConfig.Memory", 0)  # (path, bytes; 0 = unlimited)
    cpus: tuple[str, float] = ("HostConfig.NanoCpus", 0.0)  # (path, CPUs; 0 = unlimited)
    pids: tuple[str, int] = ("HostConfig.PidsLimit", 0)  # (path, limit; 0 = unlimited)
    replicas: int = 1
    update: bool = False  # container update: only the fields it sets are checked


def _num(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def container_limits(host: Any, where: str = "HostConfig.") -> ResourceView:
    """A container's limits as the engine reads them: CPUs from ``NanoCpus``, else
    ``CpuQuota / CpuPeriod``; 0 means unlimited."""
    nano = _num(_get(host, "NanoCpus"))
    quota, period = _num(_get(host, "CpuQuota")), _num(_get(host, "CpuPeriod")) or 100000.0
    cpus = (f"{where}NanoCpus", nano / 1e9) if nano else (f"{where}CpuQuota", max(quota, 0) / period)
    return ResourceView(
        (f"{where}Memory", int(_num(_get(host, "Memory")))), cpus,
        (f"{where}PidsLimit", max(int(_num(_get(host, "PidsLimit"))), 0)),
    )  # fmt: skip


def view_resources(kind: str, body: Any) -> ResourceView | None:
    if kind == "container.create":
        return container_limits(_get(body, "HostConfig"))
    if kind == "container.update":
        # `docker update` sends the limits at the top level; 0 means "unchanged"
        view = container_limits(body, "")
        view.update = True
        return view
    if kind in ("service.create", "service.update"):
        where = "TaskTemplate.Resources.Limits"
        limits = _get(_get(_get(body, "TaskTemplate"), "Resources"), "Limits")
        mode = _get(body, "Mode")
        replicated = _get(mode, "Replicated")
        replicas = 1
        if isinstance(replicated, dict):
            replicas = int(
                _num(_get(replicated, "Replicas")) if _get(replicated, "Replicas") is not None else 1
            )
        return ResourceView(
            (f"{where}.MemoryBytes", int(_num(_get(limits, "MemoryBytes")))),
            (f"{where}.NanoCPUs", _num(_get(limits, "NanoCPUs")) / 1e9),
            (f"{where}.Pids", max(int(_num(_get(limits, "Pids"))), 0)),
            replicas,
        )
    return None


def check_resources(view: ResourceView, spec: ResourcesSpec) -> list[Finding]:
    out: list[Finding] = []
    flags = {"memory": "--memory 512m", "cpus": "--cpus 1", "pids": "--pids-limit 256"}
    values = {"memory": view.memory, "cpus": view.cpus, "pids": view.pids}
    for name in [] if view.update else spec.require or []:
        path, value = values[name]
        if not value:
            out.append(_finding(f"resources.{name}-required", path, None,
                                f"a {name} limit is required", f"add {flags[name]}"))  # fmt: skip
    maxima = spec.max
    if maxima is None:
        return out
    if maxima.memory is not None and view.memory[1] > parse_size(maxima.memory):
        out.append(_finding("resources.memory-max", view.memory[0], _human(view.memory[1]),
                            f"memory limit is over the maximum {maxima.memory}",
                            f"use --memory {maxima.memory} or less"))  # fmt: skip
    if maxima.cpus is not None and view.cpus[1] > float(maxima.cpus):
        out.append(_finding("resources.cpus-max", view.cpus[0], view.cpus[1],
                            f"CPU limit is over the maximum {maxima.cpus}",
                            f"use --cpus {maxima.cpus} or less"))  # fmt: skip
    if maxima.pids is not None and view.pids[1] > int(maxima.pids):
        out.append(_finding("resources.pids-max", view.pids[0], view.pids[1],
                            f"pids limit is over the maximum {maxima.pids}",
                            f"use --pids-limit {maxima.pids} or less"))  # fmt: skip
    return out


# --------------------------------------------------------------------- quotas
@dataclass(frozen=True)
class Usage:
    """A team's live use, counted from the engine before the decision."""

    containers: int = 0
    cpus: float = 0.0
    memory: int = 0
    replicas: int = 0


def check_quotas(kind: str, view: ResourceView | None, usage: Usage | None, spec: Quotas,
                 team: str, replaced: int = 0) -> list[Finding]:  # fmt: skip
    if view is None or not spec or view.update:
        return []
    if usage is None:
        return [_finding("quota.unknown", "(engine state)", None, "the team's use could not be counted",
                         "retry; if it persists, ask an operator to check the engine")]  # fmt: skip
    out: list[Finding] = []
    fix = "remove containers or services your team no longer needs, or ask for a higher quota"
    if kind == "container.create":
        if spec.containers is not None and usage.containers + 1 > int(spec.containers):
            out.append(_finding("quota.containers", "(team)", usage.containers + 1,
                                f"team {team} would have {usage.containers + 1} containers, over its "
                                f"quota of {spec.containers}", fix))  # fmt: skip
        if spec.cpus is not None and usage.cpus + view.cpus[1] > float(spec.cpus):
            out.append(_finding("quota.cpus", view.cpus[0], round(usage.cpus + view.cpus[1], 3),
                                f"team {team} would use {usage.cpus + view.cpus[1]:g} CPUs, over its "
                                f"quota of {spec.cpus}", fix))  # fmt: skip
        if spec.memory is not None and usage.memory + view.memory[1] > parse_size(spec.memory):
            out.append(_finding("quota.memory", view.memory[0], _human(usage.memory + view.memory[1]),
                                f"team {team} would use {_human(usage.memory + view.memory[1])} of "
                                f"memory, over its quota of {spec.memory}", fix))  # fmt: skip
    elif kind in ("service.create", "service.update") and spec.replicas is not None:
        total = usage.replicas - replaced + view.replicas
        if total > int(spec.replicas) and view.replicas > replaced:  # scaling down is always allowed
            out.append(_finding("quota.replicas", "Mode.Replicated.Replicas", total,
                                f"team {team} would run {total} service replicas, over its quota of "
                                f"{spec.replicas}", fix))  # fmt: skip
    return out


# --------------------------------------------------------------------- images
def _first(query: dict[str, list[str]], name: str) -> str:
    """A single-valued parameter as the engine reads it (``r.FormValue``: the first)."""
    values = query.get(name) or []
    return values[0] if values else ""


def view_images(kind: str, body: Any, query: dict[str, list[str]], object_ref: str | None
                ) -> list[tuple[str, str]]:  # fmt: skip
    """(field, image reference) pairs the request names."""
    out: list[tuple[str, str]] = []
    if kind == "container.create":
        image = _get(body, "Image")
        if isinstance(image, str):
            out.append(("Image", image))
    elif kind in ("service.create", "service.update"):
        image = _get(_get(_get(body, "TaskTemplate"), "ContainerSpec"), "Image")
        if isinstance(image, str):
            out.append(("TaskTemplate.ContainerSpec.Image", image))
    elif kind == "image.pull":
        src = _first(query, "fromImage")
        if src:
            tag = _first(query, "tag")
            if tag and "@" not in src:
                src = f"{src}@{tag}" if tag.startswith("sha256:") else f"{src}:{tag}"
            out.append(("fromImage", src))
    elif kind == "image.push" and object_ref:
        tag = _first(query, "tag")
        out.append(("name", f"{object_ref}:{tag}" if tag else object_ref))
    elif kind == "image.tag":
        repo = _first(query, "repo")
        if repo:
            tag = _first(query, "tag")
            out.append(("repo", f"{repo}:{tag}" if tag else repo))
    elif kind == "image.build":
        for t in query.get("t") or []:
            out.append(("t", t))
    return out


def _registry_allowed(ref: ImageRef, allowed: list[str]) -> bool:
    for pattern in allowed:
        pattern = pattern.lower().rstrip("/")
        if "/" in pattern:
            if fnmatch.fnmatchcase(ref.name.lower(), pattern) or ref.name.lower().startswith(pattern + "/"):
                return True
        elif fnmatch.fnmatchcase(ref.registry, pattern):
            return True
    return False


def check_images(kind: str, images: list[tuple[str, str]], spec: ImagesSpec) -> list[Finding]:
    out: list[Finding] = []
    # Names the request gives to something it makes (tag, build -t) aren't pins.
    produces = kind in ("image.tag", "image.build", "image.push")
    for path, text in images:
        ref = parse_image_ref(text)
        if ref.is_id:
            continue  # a content-addressed local image: pinned, and its pull was checked
        allowed = spec.registries
        if allowed and not _registry_allowed(ref, allowed):
            out.append(_finding("images.registry", path, text,
                                f"registry {ref.registry} ({ref.name}) is not on the allow-list",
                                f"use an image from {', '.join(allowed)}"))  # fmt: skip
        if spec.forbid_latest and ref.digest is None and (ref.tag in (None, "latest")):
            out.append(_finding("images.latest", path, text, "the latest tag moves under you",
                                "name a version tag or a digest (name@sha256:...)"))  # fmt: skip
        if spec.require_digest and not produces and ref.digest is None:
            fix = "use name@sha256:... (docker inspect --format '{{.RepoDigests}}')"
            out.append(_finding("images.digest", path, text, "the image must be pinned by digest", fix))
    return out


# -------------------------------------------------------------- image trust
TRUST_KINDS = ("container.create", "service.create", "service.update", "image.pull")
TRUST_KEYS = ("signatures", "vulnerabilities", "packages", "sbom", "database")
_SEV = ("unknown", "none", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class ImageFacts:
    """What the gateway learnt about one image before the decision (pure data)."""

    ref: str
    digest: str = ""
    error: str = ""  # the image could not be resolved or scanned: trust rules fail closed
    signers: tuple[str, ...] = ()  # ids of the keys whose signatures verified
    signature_error: str = ""
    packages: tuple[tuple[str, str, str, str], ...] = ()  # (name, version, purl, path)
    findings: tuple[tuple[str, str, str, str, str], ...] = ()  # (id, package, version, severity, fixed or "")
    suppressed: int = 0
    db_age: float | None = None  # seconds; None = no vulnerability database
    scanned: bool = False


def needs_trust(spec: ImagesSpec) -> bool:
    """Whether the images section asks for facts about the image itself."""
    return any(getattr(spec, k) for k in TRUST_KEYS)


def _pkg_matches(pattern: str, name: str, purl: str) -> bool:
    p = pattern.lower()
    if p.startswith("pkg:"):
        base = purl.lower().split("@")[0].split("?")[0]
        return fnmatch.fnmatchcase(base, p) or base == p
    return fnmatch.fnmatchcase(name.lower(), p)


def check_image_trust(
    images: list[tuple[str, str]], spec: ImagesSpec, reports: dict[str, ImageFacts], trusted: list[str]
) -> list[Finding]:
    """Signatures, vulnerability gate, packages, SBOM and database freshness."""
    out: list[Finding] = []
    for path, text in images:
        f = reports.get(text)
        if f is None or f.error:
            why = f.error if f is not None else "no report was gathered"
            out.append(
                _finding(
                    "images.unscanned",
                    path,
                    text,
                    f"the image could not be checked: {why}",
                    "make the image reachable (pushed, or present on the engine) and retry",
                )
            )
            continue
        sig = spec.signatures
        if sig and sig.required is not False and sig.keys and not set(f.signers) & set(trusted):
            why = f.signature_error or "signed, but not by a key this policy trusts"
            out.append(
                _finding(
                    "images.signature",
                    path,
                    text,
                    f"not signed by a trusted key: {why}",
                    "sign it: moorage image sign IMAGE --key KEY (a key the policy lists)",
                )
            )
        db = spec.database
        vul = spec.vulnerabilities
        if (db or vul) and f.db_age is None:
            out.append(
                _finding(
                    "images.database-missing",
                    path,
                    text,
                    "no vulnerability database is loaded",
                    "run moorage db update --from PATH|URL on the gateway host",
                )
            )
            vul = None
        if db and db.max_age is not None and f.db_age is not None:
            limit = parse_duration(db.max_age)  # validated when the policy loaded
            if f.db_age > limit:
                out.append(
                    _finding(
                        "images.database-stale",
                        path,
                        text,
                        f"the vulnerability database is {f.db_age / 3600:.0f} h old "
                        f"(older than {db.max_age})",
                        "run moorage db update",
                    )
                )
        if vul and vul.max_severity:
            ceiling = _SEV.index(vul.max_severity)
            over = [
                x
                for x in f.findings
                if _SEV.index(x[3] if x[3] in _SEV else "unknown") > ceiling and (x[4] or not vul.only_fixed)
            ]
            if over:
                shown = "; ".join(
                    f"{i} ({pkg} {ver}, {sev}, " + (f"fixed in {fx})" if fx else "unfixed)")
                    for i, pkg, ver, sev, fx in over[:5]
                )
                more = f" and {len(over) - 5} more" if len(over) > 5 else ""
                out.append(
                    _finding(
                        "images.vulnerabilities",
                        path,
                        text,
                        f"{len(over)} finding(s) over {vul.max_severity}: {shown}{more}",
                        "upgrade the packages named (moorage image scan IMAGE lists them all)",
                    )
                )
        pk = spec.packages
        for pattern in (pk.forbidden if pk else None) or []:
            hits = [p for p in f.packages if _pkg_matches(pattern, p[0], p[2])]
            if hits:
                names = ", ".join(f"{n} {v} ({where})" for n, v, _, where in hits[:5])
                out.append(
                    _finding(
                        "images.package-forbidden",
                        path,
                        text,
                        f"forbidden package {pattern!r} is installed: {names}",
                        f"remove {hits[0][0]} from the image",
                    )
                )
        for pattern in (pk.required if pk else None) or []:
            if not any(_pkg_matches(pattern, p[0], p[2]) for p in f.packages):
                out.append(
                    _finding(
                        "images.package-required",
                        path,
                        text,
                        f"required package {pattern!r} is not installed",
                        f"install {pattern} in the image",
                    )
                )
        if spec.sbom == "required" and not (f.scanned and f.packages):
            out.append(
                _finding(
                    "images.sbom",
                    path,
                    text,
                    "no SBOM could be made: no package database found",
                    "build from a base image with a package database (dpkg, apk, rpm)",
                )
            )
    return out


# -------------------------------------------------------------------- network
@dataclass
class NetworkView:
    host: list[str] = field(default_factory=list)  # paths that ask for the host network
    joins: list[tuple[str, str]] = field(default_factory=list)  # (path, network name)
    creates: list[tuple[str, str]] = field(default_factory=list)
    publishes: list[tuple[str, str, str]] = field(default_factory=list)  # (path, host ip, host port)


_DEFAULT_NETS = frozenset({"", "default", "bridge", "none"})


def view_network(kind: str, body: Any, object_ref: str | None) -> NetworkView:
    v = NetworkView()
    if kind == "container.create":
        host = _get(body, "HostConfig")
        mode = str(_get(host, "NetworkMode") or "")
        if mode.lower() == "host":
            v.host.append("HostConfig.NetworkMode")
        elif mode.lower() not in _DEFAULT_NETS and not mode.lower().startswith("container:"):
            v.joins.append(("HostConfig.NetworkMode", mode))
        endpoints = _get(_get(body, "NetworkingConfig"), "EndpointsConfig")
        for name in endpoints if isinstance(endpoints, dict) else {}:
            if str(name).lower() == "host":
                v.host.append(f"NetworkingConfig.EndpointsConfig.{name}")
            elif str(name).lower() not in _DEFAULT_NETS and name != mode:
                v.joins.append((f"NetworkingConfig.EndpointsConfig.{name}", str(name)))
        bindings = _get(host, "PortBindings")
        for port, binds in (bindings if isinstance(bindings, dict) else {}).items():
            for i, b in enumerate(binds or []):
                v.publishes.append((f"HostConfig.PortBindings.{port}[{i}]", str(_get(b, "HostIp") or ""),
                                    str(_get(b, "HostPort") or "")))  # fmt: skip
        if _get(host, "PublishAllPorts"):
            v.publishes.append(("HostConfig.PublishAllPorts", "", ""))
    elif kind in ("service.create", "service.update"):
        task = _get(body, "TaskTemplate")
        for where, nets in (
            ("TaskTemplate.Networks", _get(task, "Networks")),
            ("Networks", _get(body, "Networks")),
        ):
            for i, net in enumerate(nets if isinstance(nets, list) else []):
                target = str(_get(net, "Target") or "")
                if target.lower() == "host":
                    v.host.append(f"{where}[{i}].Target")
                elif target:
                    v.joins.append((f"{where}[{i}].Target", target))
        ports = _get(_get(body, "EndpointSpec"), "Ports")
        for i, port in enumerate(ports if isinstance(ports, list) else []):
            # Every entry publishes: ingress and host mode (PublishMode=host) both
            # listen on every address of the node, and without a PublishedPort the
            # swarm (ingress) or the node (host mode) picks one.
            published = _get(port, "PublishedPort")
            v.publishes.append((f"EndpointSpec.Ports[{i}]", "", str(published) if published else ""))
    elif kind == "network.create":
        v.creates.append(("Name", str(_get(body, "Name") or "")))
    elif kind == "network.connect" and object_ref:
        if object_ref.lower() == "host":
            v.host.append("(network)")
        else:
            v.joins.append(("(network)", object_ref))
    return v


def _match_names(name: str, patterns: list[str], team: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p.replace("{team}", team)) for p in patterns)


def _port_ok(port: str, ranges: list[str]) -> bool:
    if not port:
        return True  # the engine picks a free ephemeral port
    try:
        low = high = int(port.split("-")[0])
        if "-" in port:
            high = int(port.split("-")[1])
    except ValueError:
        return False
    for r in ranges:
        a, _, b = r.partition("-")
        if int(a) <= low and high <= int(b or a):
            return True
    return False


def check_network(view: NetworkView, spec: NetworkSpec, team: str) -> list[Finding]:
    out: list[Finding] = []
    if spec.host_network is False:
        for path in view.host:
            out.append(_finding("network.host", path, "host", "the host network namespace is not allowed",
                                "use a user-defined network and publish ports"))  # fmt: skip
    if spec.create is not None:
        for path, name in view.creates:
            if not _match_names(name, spec.create, team):
                shown = ", ".join(p.replace("{team}", team) for p in spec.create)
                out.append(_finding("network.create", path, name, f"network name {name!r} is not one "
                                    f"team {team} may create", f"name it to match {shown}"))  # fmt: skip
    if spec.join is not None:
        for path, name in view.joins:
            if not _match_names(name, spec.join, team):
                shown = ", ".join(p.replace("{team}", team) for p in spec.join)
                out.append(_finding("network.join", path, name, f"team {team} may not join network "
                                    f"{name!r}", f"use a network matching {shown}"))  # fmt: skip
    publish = spec.publish
    for path, ip, port in view.publishes:
        ips = publish.host_ips if publish else None
        if ips and (ip or "0.0.0.0") not in ips:
            out.append(_finding("network.publish-ip", path, ip or "0.0.0.0",
                                f"ports may be published only on {', '.join(ips)}",
                                f"publish as -p {ips[0]}:HOSTPORT:PORT"))  # fmt: skip
        ports = publish.ports if publish else None
        if ports and not _port_ok(port, ports):
            out.append(_finding("network.publish-port", path, port,
                                f"host port {port} is outside {', '.join(ports)}",
                                f"publish on a port in {ports[0]}"))  # fmt: skip
    return out


# ------------------------------------------------------------------ placement
def placement_constraints(spec: PlacementSpec, team: str, labels: dict[str, str]) -> tuple[str, list[str]]:
    """The workload class of a request (from its label, else its team) and the node
    constraints it requires. ``("", [])`` when it has none."""
    label = spec.label if spec.label is not None else "moorage.class"
    cls = labels.get(label) or (spec.teams or {}).get(team) or ""
    return cls, list((spec.classes or {}).get(cls, []))


def _service_constraints(body: Any) -> list[str]:
    cons = _get(_get(_get(body, "TaskTemplate"), "Placement"), "Constraints")
    return [str(c) for c in cons] if isinstance(cons, list) else []


def _norm(c: str) -> str:
    return c.replace(" ", "").lower()


def check_placement(kind: str, body: Any, spec: PlacementSpec, team: str, labels: dict[str, str],
                    mutating: bool) -> list[Finding]:  # fmt: skip
    """On create the required constraints are added (a mutation) unless the caller
    contradicts them; an update must keep them."""
    if kind not in ("service.create", "service.update"):
        return []
    cls, required = placement_constraints(spec, team, labels)
    team_cls = (spec.teams or {}).get(team)
    if team_cls and cls != team_cls:
        label = spec.label if spec.label is not None else "moorage.class"
        return [_finding("placement.class", f"Labels.{label}", cls,
                         f"team {team} runs class {team_cls} workloads; a label can't make them {cls}",
                         "remove the class label")]  # fmt: skip
    if not required:
        if cls and cls not in (spec.classes or {}):
            return [
                _finding(
                    "placement.class",
                    "Labels",
                    cls,
                    f"workload class {cls!r} is not defined",
                    f"use one of {', '.join(spec.classes or {}) or '(none defined)'}",
                )
            ]
        return []
    have = {_norm(c) for c in _service_constraints(body)}
    out: list[Finding] = []
    for c in required:
        key = _norm(c).split("==")[0]
        if any(h.startswith(key + "!=") for h in have):
            out.append(_finding("placement.class", "TaskTemplate.Placement.Constraints", c,
                                f"class {cls} requires {c}, and the request contradicts it",
                                "remove the contradicting --constraint"))  # fmt: skip
        elif _norm(c) not in have and (kind == "service.update" or not mutating):
            out.append(_finding("placement.class", "TaskTemplate.Placement.Constraints", c,
                                f"class {cls} workloads must keep the constraint {c}",
                                f"add --constraint '{c}' (it can't be dropped or changed)"))  # fmt: skip
    return out
