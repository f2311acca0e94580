"""Resources and quotas: the limits a workload must set, their maxima, and what a
team may hold at once. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from moorage.policy.rules.base import Finding, _finding, _get, _human
from moorage.policy.schema import Quotas, ResourcesSpec
from moorage.policy.units import parse_size

__all__ = [
    "QUOTA_CHECKS",
    "QuotaCase",
    "ResourceView",
    "Usage",
    "check_quotas",
    "check_resources",
    "container_limits",
    "cpus_max",
    "memory_max",
    "pids_max",
    "quota_containers",
    "quota_cpus",
    "quota_memory",
    "quota_replicas",
    "quota_unknown",
    "resource_required",
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


_FLAGS = {"memory": "--memory 512m", "cpus": "--cpus 1", "pids": "--pids-limit 256"}


def resource_required(name: str, view: ResourceView, spec: ResourcesSpec) -> list[Finding]:
    """``resources.{name}-required`` (memory, cpus or pids): the limit is set, when
    ``resources.require`` names it (a container update is checked only for maxima)."""
    if view.update or name not in (spec.require or []):
        return []
    path, value = {"memory": view.memory, "cpus": view.cpus, "pids": view.pids}[name]
    if value:
        return []
    return [_finding(f"resources.{name}-required", path, None, f"a {name} limit is required",
                     f"add {_FLAGS[name]}")]  # fmt: skip


def memory_max(view: ResourceView, spec: ResourcesSpec) -> list[Finding]:
    """``resources.memory-max``: the memory limit is at most ``resources.max.memory``."""
    maxima = spec.max
    if maxima is None or maxima.memory is None or not view.memory[1] > parse_size(maxima.memory):
        return []
    return [_finding("resources.memory-max", view.memory[0], _human(view.memory[1]),
                     f"memory limit is over the maximum {maxima.memory}",
                     f"use --memory {maxima.memory} or less")]  # fmt: skip


def cpus_max(view: ResourceView, spec: ResourcesSpec) -> list[Finding]:
    """``resources.cpus-max``: the CPU limit is at most ``resources.max.cpus``."""
    maxima = spec.max
    if maxima is None or maxima.cpus is None or not view.cpus[1] > float(maxima.cpus):
        return []
    return [_finding("resources.cpus-max", view.cpus[0], view.cpus[1],
                     f"CPU limit is over the maximum {maxima.cpus}",
                     f"use --cpus {maxima.cpus} or less")]  # fmt: skip


def pids_max(view: ResourceView, spec: ResourcesSpec) -> list[Finding]:
    """``resources.pids-max``: the pids limit is at most ``resources.max.pids``."""
    maxima = spec.max
    if maxima is None or maxima.pids is None or not view.pids[1] > int(maxima.pids):
        return []
    return [_finding("resources.pids-max", view.pids[0], view.pids[1],
                     f"pids limit is over the maximum {maxima.pids}",
                     f"use --pids-limit {maxima.pids} or less")]  # fmt: skip


def check_resources(view: ResourceView, spec: ResourcesSpec) -> list[Finding]:
    """Required limits that are missing (in ``resources.require``'s order), and limits
    over ``resources.max``."""
    out: list[Finding] = []
    for name in [] if view.update else spec.require or []:
        out += resource_required(name, view, spec)
    return out + memory_max(view, spec) + cpus_max(view, spec) + pids_max(view, spec)


# --------------------------------------------------------------------- quotas
@dataclass(frozen=True)
class Usage:
    """A team's live use, counted from the engine before the decision."""

    containers: int = 0
    cpus: float = 0.0
    memory: int = 0
    replicas: int = 0


@dataclass(frozen=True, slots=True)
class QuotaCase:
    """What the quota rules compare: the request's kind and limits, the team's live
    use (None when it couldn't be counted), the quotas, the team, and the replicas an
    update replaces."""

    kind: str
    view: ResourceView | None
    usage: Usage | None
    spec: Quotas
    team: str
    replaced: int = 0


_QUOTA_FIX = "remove containers or services your team no longer needs, or ask for a higher quota"


def _counted(case: QuotaCase) -> tuple[ResourceView, Usage] | None:
    view, usage = case.view, case.usage
    if view is None or not case.spec or view.update or usage is None:
        return None
    return view, usage


def quota_unknown(case: QuotaCase) -> list[Finding]:
    """``quota.unknown``: fails closed when the team's use couldn't be counted."""
    view = case.view
    if view is None or not case.spec or view.update or case.usage is not None:
        return []
    return [_finding("quota.unknown", "(engine state)", None, "the team's use could not be counted",
                     "retry; if it persists, ask an operator to check the engine")]  # fmt: skip


def quota_containers(case: QuotaCase) -> list[Finding]:
    """``quota.containers``: a container create stays within the team's container count."""
    counted, spec = _counted(case), case.spec
    if counted is None or case.kind != "container.create" or spec.containers is None:
        return []
    usage = counted[1]
    if not usage.containers + 1 > int(spec.containers):
        return []
    return [_finding("quota.containers", "(team)", usage.containers + 1,
                     f"team {case.team} would have {usage.containers + 1} containers, over its "
                     f"quota of {spec.containers}", _QUOTA_FIX)]  # fmt: skip


def quota_cpus(case: QuotaCase) -> list[Finding]:
    """``quota.cpus``: a container create keeps the team's CPU limits within the quota."""
    counted, spec = _counted(case), case.spec
    if counted is None or case.kind != "container.create" or spec.cpus is None:
        return []
    view, usage = counted
    if not usage.cpus + view.cpus[1] > float(spec.cpus):
        return []
    return [_finding("quota.cpus", view.cpus[0], round(usage.cpus + view.cpus[1], 3),
                     f"team {case.team} would use {usage.cpus + view.cpus[1]:g} CPUs, over its "
                     f"quota of {spec.cpus}", _QUOTA_FIX)]  # fmt: skip


def quota_memory(case: QuotaCase) -> list[Finding]:
    """``quota.memory``: a container create keeps the team's memory limits within the quota."""
    counted, spec = _counted(case), case.spec
    if counted is None or case.kind != "container.create" or spec.memory is None:
        return []
    view, usage = counted
    if not usage.memory + view.memory[1] > parse_size(spec.memory):
        return []
    return [_finding("quota.memory", view.memory[0], _human(usage.memory + view.memory[1]),
                     f"team {case.team} would use {_human(usage.memory + view.memory[1])} of "
                     f"memory, over its quota of {spec.memory}", _QUOTA_FIX)]  # fmt: skip


def quota_replicas(case: QuotaCase) -> list[Finding]:
    """``quota.replicas``: a service create or update keeps the team's replicas within
    the quota (scaling down is always allowed)."""
    counted, spec = _counted(case), case.spec
    if counted is None or case.kind not in ("service.create", "service.update") or spec.replicas is None:
        return []
    view, usage = counted
    total = usage.replicas - case.replaced + view.replicas
    if not (total > int(spec.replicas) and view.replicas > case.replaced):
        return []
    return [_finding("quota.replicas", "Mode.Replicated.Replicas", total,
                     f"team {case.team} would run {total} service replicas, over its quota of "
                     f"{spec.replicas}", _QUOTA_FIX)]  # fmt: skip


QUOTA_CHECKS = (
    ("quota.unknown", quota_unknown),
    ("quota.containers", quota_containers),
    ("quota.cpus", quota_cpus),
    ("quota.memory", quota_memory),
    ("quota.replicas", quota_replicas),
)
"""The quota rules' checks, by rule id, in report order."""


def check_quotas(kind: str, view: ResourceView | None, usage: Usage | None, spec: Quotas,
                 team: str, replaced: int = 0) -> list[Finding]:  # fmt: skip
    """What the team would hold after the request, against ``spec.quotas``; fails
    closed (``quota.unknown``) when the team's use couldn't be counted."""
    case = QuotaCase(kind, view, usage, spec, team, replaced)
    out: list[Finding] = []
    for _, rule_check in QUOTA_CHECKS:
        out += rule_check(case)
    return out
