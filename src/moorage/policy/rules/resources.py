"""Resources and quotas: the limits a workload must set, their maxima, and what a
team may hold at once. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from moorage.policy.rules.base import Finding, _finding, _get, _human
from moorage.policy.schema import Quotas, ResourcesSpec
from moorage.policy.units import parse_size

__all__ = [
    "ResourceView",
    "Usage",
    "check_quotas",
    "check_resources",
    "container_limits",
    "view_resources",
]


# ------------------------------------------------------------------ resources
@dataclass
class ResourceView:
    """The limits a request sets, each with its field path (0 means unlimited)."""

    memory: tuple[str, int] = ("HostConfig.Memory", 0)  # (path, bytes; 0 = unlimited)
    cpus: tuple[str, float] = ("HostConfig.NanoCpus", 0.0)  # (path, CPUs; 0 = unlimited)
    pids: tuple[str, int] = ("HostConfig.PidsLimit", 0)  # (path, limit; 0 = unlimited)
    replicas: int = 1
    update: bool = False  # container update: only the fields it sets are checked


_NUMERIC = (int, float, str, bytes)  # what float() reads as it is


def _num(value: object) -> float:
    try:
        return float(value if isinstance(value, _NUMERIC) else str(value) if value else 0)
    except (TypeError, ValueError):
        return 0.0


def container_limits(host: object, where: str = "HostConfig.") -> ResourceView:
    """A container's limits as the engine reads them: CPUs from ``NanoCpus``, else
    ``CpuQuota / CpuPeriod``; 0 means unlimited."""
    nano = _num(_get(host, "NanoCpus"))
    quota, period = _num(_get(host, "CpuQuota")), _num(_get(host, "CpuPeriod")) or 100000.0
    cpus = (f"{where}NanoCpus", nano / 1e9) if nano else (f"{where}CpuQuota", max(quota, 0) / period)
    return ResourceView(
        (f"{where}Memory", int(_num(_get(host, "Memory")))), cpus,
        (f"{where}PidsLimit", max(int(_num(_get(host, "PidsLimit"))), 0)),
    )  # fmt: skip


def view_resources(kind: str, body: object) -> ResourceView | None:
    """The limits of a create or update request; None for a kind that sets none."""
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
    """Required limits that are missing, and limits over ``resources.max``."""
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
    """What the team would hold after the request, against ``spec.quotas``; fails
    closed (``quota.unknown``) when the team's use couldn't be counted."""
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
