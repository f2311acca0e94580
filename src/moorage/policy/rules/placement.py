"""Placement: a workload class's node constraints, added on create and kept on update. Pure."""

from __future__ import annotations

from moorage.policy.rules.base import Finding, _finding, _get
from moorage.policy.schema import PlacementSpec

__all__ = [
    "check_placement",
    "placement_constraints",
]


# ------------------------------------------------------------------ placement
def placement_constraints(spec: PlacementSpec, team: str, labels: dict[str, str]) -> tuple[str, list[str]]:
    """The workload class of a request (from its label, else its team) and the node
    constraints it requires. ``("", [])`` when it has none."""
    label = spec.label if spec.label is not None else "moorage.class"
    cls = labels.get(label) or (spec.teams or {}).get(team) or ""
    return cls, list((spec.classes or {}).get(cls, []))


def _service_constraints(body: object) -> list[str]:
    cons = _get(_get(_get(body, "TaskTemplate"), "Placement"), "Constraints")
    return [str(c) for c in cons] if isinstance(cons, list) else []


def _norm(c: str) -> str:
    return c.replace(" ", "").lower()


def check_placement(kind: str, body: object, spec: PlacementSpec, team: str, labels: dict[str, str],
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
