"""Mutations: safe defaults the enforcing documents declare, set on a request that
left them unset (``no-new-privileges``, a pids limit, memory, CPUs, dropped
capabilities, a read-only root filesystem) and a class's placement constraints.
A mutation never widens what the caller asked for. Pure.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

from moorage.policy.documents import Document
from moorage.policy.rules.base import _get
from moorage.policy.rules.placement import placement_constraints
from moorage.policy.schema import PlacementSpec
from moorage.policy.units import parse_size

__all__ = ["Declared", "merge_mutations", "mutate"]


@dataclass(frozen=True)
class Declared:
    """The strictest of what the enforcing documents declare; false when nothing is."""

    no_new_privileges: bool = False
    read_only_rootfs: bool = False
    pids_limit: int | None = None
    cpus: int | float | None = None
    memory: int | None = None  # bytes
    cap_drop: tuple[str, ...] = ()  # upper-cased, sorted

    def __bool__(self) -> bool:
        return self is not _NOTHING and self != _NOTHING


_NOTHING = Declared()


def merge_mutations(docs: list[Document]) -> Declared:
    """The strictest of what the enforcing documents declare."""
    out = _NOTHING
    for d in docs:
        m = d.spec.mutations
        if m is None:
            continue
        if m.no_new_privileges:
            out = replace(out, no_new_privileges=True)
        if m.read_only_rootfs:
            out = replace(out, read_only_rootfs=True)
        if m.pids_limit is not None:
            out = replace(out, pids_limit=min(out.pids_limit if out.pids_limit is not None else m.pids_limit,
                                              m.pids_limit))  # fmt: skip
        if m.cpus is not None:
            out = replace(out, cpus=min(out.cpus if out.cpus is not None else m.cpus, m.cpus))
        if m.memory is not None:
            size = parse_size(m.memory)
            out = replace(out, memory=min(out.memory if out.memory is not None else size, size))
        if m.cap_drop:
            out = replace(out, cap_drop=tuple(sorted({*out.cap_drop, *(c.upper() for c in m.cap_drop)})))
    return out


def _slot(obj: dict[str, Any], key: str, default: object) -> Any:
    """The value under ``key`` in any spelling, created (as ``default``) when absent."""
    for k in obj:
        if isinstance(k, str) and k.lower() == key.lower():
            if obj[k] is None:
                obj[k] = default
            return obj[k]
    obj[key] = default
    return default


def _set_if_unset(obj: dict[str, object], key: str, value: object, unset: tuple[object, ...]) -> bool:
    existing = next((k for k in obj if isinstance(k, str) and k.lower() == key.lower()), None)
    if existing is not None and obj[existing] not in unset:
        return False
    obj[existing or key] = value
    return True


def mutate(kind: str, body: dict[str, object], m: Declared, placement: PlacementSpec | None,
            team: str, labels: dict[str, str]) -> tuple[dict[str, object], list[str]]:  # fmt: skip
    """The body with the declared mutations (and a class's placement constraints) set
    where the request left them unset, and a line per change; the body itself, and no
    lines, when nothing changed. Never widens what the caller asked for."""
    new = copy.deepcopy(body)
    applied: list[str] = []
    if kind == "container.create":
        host = _slot(new, "HostConfig", {})
        if not isinstance(host, dict):
            return body, []
        if m.no_new_privileges:
            opts = _slot(host, "SecurityOpt", [])
            if not any(str(o).replace("=", ":").lower().startswith("no-new-privileges") for o in opts):
                opts.append("no-new-privileges:true")
                applied.append("HostConfig.SecurityOpt += no-new-privileges:true")
        if m.pids_limit is not None and _set_if_unset(host, "PidsLimit", m.pids_limit, (None, 0, -1)):
            applied.append(f"HostConfig.PidsLimit = {m.pids_limit}")
        if m.memory is not None and _set_if_unset(host, "Memory", m.memory, (None, 0)):
            applied.append(f"HostConfig.Memory = {m.memory}")
        if (
            m.cpus is not None
            and not _get(host, "CpuQuota")
            and _set_if_unset(host, "NanoCpus", int(m.cpus * 1e9), (None, 0))
        ):
            applied.append(f"HostConfig.NanoCpus = {int(m.cpus * 1e9)}")
        if m.cap_drop:
            drop = _slot(host, "CapDrop", [])
            have = {str(c).upper().removeprefix("CAP_") for c in drop}
            for cap in m.cap_drop:
                if cap.removeprefix("CAP_") not in have:
                    drop.append(cap)
                    applied.append(f"HostConfig.CapDrop += {cap}")
        if m.read_only_rootfs and _set_if_unset(host, "ReadonlyRootfs", True, (None, False)):
            applied.append("HostConfig.ReadonlyRootfs = true")
    elif kind in ("service.create", "service.update"):
        task = _slot(new, "TaskTemplate", {})
        if not isinstance(task, dict):
            return body, []
        cs = _slot(task, "ContainerSpec", {})
        where = "TaskTemplate.ContainerSpec"
        if m.no_new_privileges and isinstance(cs, dict):
            priv = _slot(cs, "Privileges", {})
            if _set_if_unset(priv, "NoNewPrivileges", True, (None, False)):
                applied.append(f"{where}.Privileges.NoNewPrivileges = true")
        limits = _slot(_slot(task, "Resources", {}), "Limits", {})
        if m.pids_limit is not None and _set_if_unset(limits, "Pids", m.pids_limit, (None, 0, -1)):
            applied.append(f"TaskTemplate.Resources.Limits.Pids = {m.pids_limit}")
        if m.memory is not None and _set_if_unset(limits, "MemoryBytes", m.memory, (None, 0)):
            applied.append(f"TaskTemplate.Resources.Limits.MemoryBytes = {m.memory}")
        if m.cpus is not None and _set_if_unset(limits, "NanoCPUs", int(m.cpus * 1e9), (None, 0)):
            applied.append(f"TaskTemplate.Resources.Limits.NanoCPUs = {int(m.cpus * 1e9)}")
        if m.cap_drop and isinstance(cs, dict):
            drop = _slot(cs, "CapabilityDrop", [])
            have = {str(c).upper().removeprefix("CAP_") for c in drop}
            for cap in m.cap_drop:
                if cap.removeprefix("CAP_") not in have:
                    drop.append(cap if cap == "ALL" or cap.startswith("CAP_") else f"CAP_{cap}")
                    applied.append(f"{where}.CapabilityDrop += {cap}")
        if m.read_only_rootfs and isinstance(cs, dict) and _set_if_unset(cs, "ReadOnly", True, (None, False)):
            applied.append(f"{where}.ReadOnly = true")
        if placement and kind == "service.create":
            cls, required = placement_constraints(placement, team, labels)
            cons = _slot(_slot(task, "Placement", {}), "Constraints", [])
            have = {str(c).replace(" ", "").lower() for c in cons}
            for c in required:
                if c.replace(" ", "").lower() not in have:
                    cons.append(c)
                    applied.append(f"TaskTemplate.Placement.Constraints += {c} (class {cls})")
    return (new, applied) if applied else (body, [])
