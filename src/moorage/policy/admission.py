"""Admission by the built-in packs: one pack enforced, one evaluated for warnings."""

from __future__ import annotations

from moorage.admission import Admission, AdmissionRequest, Decision
from moorage.policy.runtime import Finding, check, view_container, view_exec, view_service, view_volume

__all__ = ["PackAdmission"]

_VIEWS = {
    "container.create": view_container,
    "exec.create": view_exec,
    "service.create": view_service,
    "service.update": view_service,
    "volume.create": view_volume,
}


def explain(findings: list[Finding], pack: str) -> str:
    parts = [f"{f.rule} at {f.path} ({f.value!r}): {f.message}. Fix: {f.fix}" for f in findings]
    return f"denied by the {pack} policy: " + "; ".join(parts)


class PackAdmission(Admission):
    """``enforce`` denies; ``audit`` only warns (and is recorded). ``None`` turns one off."""

    def __init__(self, enforce: str | None = "baseline", audit: str | None = "restricted") -> None:
        for pack in (enforce, audit):
            if pack not in (None, "baseline", "restricted"):
                raise ValueError(f"unknown pack {pack!r}: use baseline, restricted or off")
        self.enforce = enforce
        self.audit = audit

    def admit(self, request: AdmissionRequest) -> Decision:
        make_view = _VIEWS.get(request.operation.kind)
        if make_view is None or request.body is None:
            return Decision(True)
        view = make_view(request.body)
        denied = check(view, self.enforce) if self.enforce else []
        if denied:
            return Decision(False, explain(denied, self.enforce or ""), rules=tuple(f.rule for f in denied))
        warned = check(view, self.audit) if self.audit else []
        return Decision(
            True,
            warnings=tuple(f"{self.audit} policy (audit): {f.rule} at {f.path}: {f.message}. Fix: {f.fix}"
                           for f in warned),
            rules=tuple(f.rule for f in warned),
        )  # fmt: skip
