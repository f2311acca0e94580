"""The identity seam: who someone is according to a provider the enterprise already
trusts (the users file, a directory, an OpenID provider), before Moorage maps it
to teams and roles."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moorage.identity.principal import IdentityError

__all__ = ["Identity", "IdentityError", "IdentityProvider", "LoginRefused", "ProviderUnavailable"]


class LoginRefused(IdentityError):
    """The credentials were wrong, the account unknown or disabled: the person's
    fault to fix; the message says what, never which of user or password was wrong."""


class ProviderUnavailable(IdentityError):
    """The provider could not be asked (down, TLS failed): nobody is let in."""


@dataclass(frozen=True)
class Identity:
    """Someone as a provider vouches for them."""

    provider: str  # "users" | "ldap" | "oidc"
    subject: str  # the provider's stable id: a DN, an OIDC sub, a user name
    user: str  # the name Moorage shows and records
    groups: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict)


class IdentityProvider(ABC):
    """Authenticates a person and looks them up again later (directory sync)."""

    name: str

    @abstractmethod
    def authenticate(self, credentials: Mapping[str, Any]) -> Identity:
        """The identity behind ``credentials``, or LoginRefused / ProviderUnavailable."""

    @abstractmethod
    def lookup(self, subject: str) -> Identity | None:
        """The identity as the provider sees it now (None: gone or disabled)."""
