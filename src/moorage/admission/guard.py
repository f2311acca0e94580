"""What a rule's running action does at the gateway: a workload that fell out of
compliance with a ``block-update`` rule may not be updated (unless the update
cures it), and one with a ``require-at-restart`` rule may not be started again.
Nothing running is stopped. Pure, given the stored report."""

from __future__ import annotations

from moorage.admission.compliance import Item, ObjectReport, blocking, running_set
from moorage.policy.decision import Facts, Request, evaluate
from moorage.policy.loader import PolicySet
from moorage.policy.rules.base import _get

__all__ = ["GUARDED", "refusal"]

GUARDED = {
    "service.update": ("block-update",),
    # an update can add a restart policy, and the engine then restarts it by itself
    "container.update": ("block-update", "require-at-restart"),
    "container.rename": ("block-update",),
    "container.start": ("require-at-restart",),
    "container.restart": ("require-at-restart",),
    "container.unpause": ("require-at-restart",),
}
"""The operations each running action refuses."""

_STARTS = frozenset({"container.start", "container.restart", "container.unpause"})


def _image(body: object) -> object:
    return _get(_get(_get(body, "TaskTemplate"), "ContainerSpec"), "Image")


def _still(pset: PolicySet, req: Request, items: tuple[Item, ...], old_image: str) -> tuple[Item, ...]:
    """The items a service update leaves broken: judged on the new spec; an image rule
    is cured by a new image (which admission then judges on its own)."""
    new_image = _image(req.body)
    spec_req = Request("service.create", req.body, user=req.user, teams=req.teams, roles=req.roles)
    fired = {(v.finding.rule, v.finding.path) for v in (lambda d: d.denials + d.warnings)(
        evaluate(running_set(pset), spec_req, Facts(now=0.0)))}  # fmt: skip
    out = []
    for i in items:
        if i.rule.startswith("images."):
            if isinstance(new_image, str) and new_image.partition("@")[0] != old_image.partition("@")[0]:
                continue
            if isinstance(new_image, str) and new_image != old_image:
                continue
            out.append(i)
        elif (i.rule, i.path) in fired:
            out.append(i)
    return tuple(out)


def refusal(pset: PolicySet, req: Request, report: ObjectReport | None) -> tuple[str, tuple[str, ...]] | None:
    """Why ``req`` is refused because of its object's compliance, with the rules; None
    when the object's report doesn't stand in its way."""
    actions = GUARDED.get(req.kind)
    if actions is None or report is None:
        return None
    items = blocking(report, actions)
    if items and req.kind == "service.update":
        items = _still(pset, req, items, report.image)
    if not items:
        return None
    what = "started again" if req.kind in _STARTS else "updated"
    lines = "; ".join(f"{i.policy}: {i.line()}" for i in items)
    return (
        f"{report.kind} {report.name} fell out of compliance and may not be {what} until it complies "
        f"(spec.running: {items[0].action}): {lines}. To ask for an exception: moorage exception request "
        f"--rule {items[0].rule} --team {report.team or req.team} --reason '...' --expires 7d",
        tuple(i.rule for i in items),
    )
