"""What a decision is about: the request as data, the facts gathered before it, and
the approved exceptions that may excuse a finding. Pure data.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moorage.policy.rules.images import ImageFacts
from moorage.policy.rules.operations_base import OperationFacts
from moorage.policy.rules.resources import Usage

__all__ = ["ExceptionGrant", "Facts", "Request"]


@dataclass(frozen=True)
class Request:
    """What the caller asked, as data."""

    kind: str
    body: Any = None
    method: str = "POST"
    path: str = ""
    query: Mapping[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    user: str = "anonymous"
    teams: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    auth: str = ""
    object_ref: str | None = None

    @property
    def team(self) -> str:
        """The team the request counts against: the first team, else the user's own."""
        return self.teams[0] if self.teams else f"user-{self.user}"


@dataclass(frozen=True)
class ExceptionGrant:
    """An approved exception: a rule (or ``family.*``) for a team or an image digest."""

    id: str
    rule: str
    expires: float
    team: str | None = None
    image: str | None = None
    reason: str = ""
    approver: str = ""

    def covers(self, rule: str, team: str, images: tuple[str, ...], now: float) -> bool:
        """Whether the grant excuses ``rule`` for this team and these images at ``now``."""
        if now >= self.expires:
            return False
        if not (self.rule == rule or fnmatch.fnmatchcase(rule, self.rule)):
            return False
        if self.team is not None and self.team != team:
            return False
        return not (self.image is not None and self.image not in images)


@dataclass(frozen=True)
class Facts:
    """What was gathered before the decision: the clock, live use, image ids, exceptions."""

    now: float = 0.0
    usage: Usage | None = None
    replaced_replicas: int = 0  # a service update: the replicas it replaces
    images: tuple[str, ...] = ()  # digests and ids the request's image resolves to
    exceptions: tuple[ExceptionGrant, ...] = ()
    image_reports: Mapping[str, ImageFacts] = field(default_factory=dict)  # by reference text
    # Engine state the packs compare against (see rules.operations_base.OperationFacts): the ids of
    # host-driver networks, a node's current labels (node.update), a plugin's Config
    # (plugin.set, plugin.enable). Empty / None: the stricter reading applies.
    host_networks: tuple[str, ...] = ()
    node_labels: Mapping[str, str] | None = None
    plugin_config: Mapping[str, object] | None = None

    def operation(self) -> OperationFacts:
        """The engine state the operation rules compare against."""
        return OperationFacts(self.host_networks, self.node_labels, self.plugin_config)
