"""Building a gateway in tests: every constructor choice is explicit there, so the
test stand-ins (no policy, no audit, memory-only owners) are spelled out once here."""

from __future__ import annotations

import time
from typing import Any

from moorage.admission import UnsafeAllowAll, tenancy
from moorage.admission.owners import ImageOwners
from moorage.gateway.config import UnsafeNoAudit
from moorage.gateway.http import Limits
from moorage.gateway.server import Gateway
from moorage.gateway.upstream import Upstream
from moorage.identity import UserDirectory


def build_gateway(upstream: Upstream, **choices: Any) -> Gateway:
    """A gateway for a test: the stand-ins below, except what ``choices`` sets
    (a None ``admission`` or ``audit`` means the stand-in)."""
    settings: dict[str, Any] = {
        "users": UserDirectory(),
        "admission": None,
        "audit": None,
        "limits": Limits(),
        "admin_uids": (0,),
        "clock": time.time,
        "exceptions": None,
        "fast_path": True,
        "shared": tenancy.SharedObjects(),
        "owners": ImageOwners(),
        "allow_unknown_fields": False,
        "cluster": None,
        "login": None,
    }
    settings.update(choices)
    if settings["admission"] is None:
        settings["admission"] = UnsafeAllowAll()
    if settings["audit"] is None:
        settings["audit"] = UnsafeNoAudit()
    return Gateway(upstream, **settings)
