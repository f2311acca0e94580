"""How a gateway is put together: the settings ``moorage up`` gives it, and the
named unsafe choices a test or a comparison may make instead."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from moorage.gateway.http import Limits

__all__ = ["GatewayConfig", "UnsafeNoAudit"]

log = logging.getLogger("moorage.gateway")


@dataclass(frozen=True)
class GatewayConfig:
    """The settings of one gateway (``moorage up``): where it keeps its data, who is
    an admin by uid, and the choices an operator makes on the command line."""

    data: Path  # the data folder: the image owner store lives here
    admin_uids: tuple[int, ...]
    fast_path: bool
    allow_unknown_fields: bool
    limits: Limits = field(default_factory=Limits)


class UnsafeNoAudit:
    """A gateway without an audit trail: nothing it does is recorded. For tests and
    benchmarks only; building one logs a warning."""

    def __init__(self) -> None:
        """Warn: changes through this gateway leave no record."""
        log.warning("UnsafeNoAudit: this gateway records nothing (tests and benchmarks only)")
