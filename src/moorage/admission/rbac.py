"""Role-based access: which roles may call which operation, and which aspects of a
swarm update are whose. Pure; refusals are :class:`PolicyRefusal` (or :class:`Hidden`
for a lookup the role may not make)."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from moorage.admission.errors import Hidden, PolicyRefusal, for_status
from moorage.admission.ownership import Fact, ReadSwarm
from moorage.cluster.swarmops import SECURITY_ASPECTS, ca_rotates, classify_update
from moorage.engine_api.endpoints import Operation
from moorage.identity import Principal

__all__ = ["SwarmUpdate", "authorise", "judge_swarm_update", "read_swarm_update"]


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


def judge_swarm_update(p: Principal, aspects: frozenset[str] | set[str]) -> None:
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


@dataclass(frozen=True)
class SwarmUpdate:
    """What a swarm update changes (``aspects``), and whether it gives the swarm a new
    root CA (an expiry change doesn't)."""

    aspects: frozenset[str]
    rotates_ca: bool


def read_swarm_update(body: Any, query: dict[str, list[str]]) -> Generator[Fact, Any, SwarmUpdate]:
    """Compare a swarm update with the swarm's current settings (it asks for
    :class:`ReadSwarm`); the caller records the aspects, then judges them with
    :func:`judge_swarm_update`, so a refused change is recorded too."""
    status, current = yield ReadSwarm()
    if status != 200 or not isinstance(current, dict):
        raise for_status(
            503 if status >= 500 else status, "moorage: the swarm's settings can't be read to judge this"
        )
    spec = current.get("Spec") or {}
    return SwarmUpdate(frozenset(classify_update(spec, body, query)), ca_rotates(spec, body))
