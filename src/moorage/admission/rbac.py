"""Role-based access: which roles may call which operation, and which aspects of a
swarm update are whose. Pure; refusals are :class:`PolicyRefusal` (or :class:`Hidden`
for a lookup the role may not make)."""

from __future__ import annotations

from moorage.admission.errors import Hidden, PolicyRefusal
from moorage.cluster.swarmops import SECURITY_ASPECTS
from moorage.engine_api.endpoints import Operation
from moorage.identity import Principal

__all__ = ["authorise", "judge_swarm_update"]


def authorise(p: Principal, op: Operation, method: str) -> None:
    """Refuse ``op`` unless one of the caller's roles grants its class."""
    if op.kind == "unknown":
        # Fail closed for every role: an endpoint Moorage can't classify can't be judged.
        raise PolicyRefusal(
            f"moorage: {method} {op.route} is not an Engine API endpoint Moorage knows, so it "
            "is refused for every role. If a newer engine added it, upgrade Moorage.",
        )
    security_update = op.kind == "swarm.update" and p.may("swarm.security")
    if not p.may(op.action_class) and not security_update:
        what = "an endpoint Moorage does not know" if op.kind == "unknown" else op.kind
        if op.reads_only and op.object_ref:
            # A lookup the role may not make answers like a missing object: it tells
            # nothing about what exists, and `docker inspect NAME`, which tries each
            # object type in turn, goes on to the next type.
            raise Hidden(f"moorage: {op.object_ref} not found ({what} is not granted to "
                                 f"roles {', '.join(p.roles) or 'none'})")  # fmt: skip
        raise PolicyRefusal(
            f"moorage: {p.user} (roles: {', '.join(p.roles) or 'none'}) may not call "
            f"{method} {op.route} ({what}, class {op.action_class}). Ask an "
            "administrator for a role that grants it.",
        )


def judge_swarm_update(p: Principal, aspects: set[str]) -> None:
    """A swarm update is judged by what it changes (``aspects``, from
    ``swarmops.classify_update``): the CA, autolock, join tokens and the unlock key
    are security officers' (and admins'); other settings are admins'."""
    security = aspects & SECURITY_ASPECTS
    if aspects - SECURITY_ASPECTS and not p.may("swarm.write"):
        raise PolicyRefusal(f"moorage: {p.user} may change the swarm's {', '.join(sorted(security))} "
                            f"but not its {', '.join(sorted(aspects - SECURITY_ASPECTS))}: that is an "
                            "administrator's (swarm.write)")  # fmt: skip
    if security and not p.may("swarm.security"):
        raise PolicyRefusal(
            f"moorage: changing the swarm's {', '.join(sorted(security))} is for security officers "
            "(moorage cluster rotate-ca | rotate-tokens | autolock)",
        )
