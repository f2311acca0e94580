"""Who is looking at the console: the same people, teams and roles as the CLI.

A person signs in with one of ``moorage login``'s providers: the directory (user
name and password, checked by a bind) or the OpenID provider (the authorization
code flow with PKCE). Their teams and roles come from the same mapping. The
session is a signed cookie (HMAC-SHA256 with a key kept in the data folder) that
expires with the login's lifetime; every form that changes something carries a
token tied to the session (CSRF).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from moorage.identity.handoff import console_key
from moorage.identity.interface import Identity
from moorage.identity.login import LoginService
from moorage.identity.principal import GLOBAL_ROLES, Principal

__all__ = ["COOKIE", "Sessions", "Viewer"]

COOKIE = "moorage_session"
LIFETIME = 8 * 3600.0


@dataclass(frozen=True)
class Viewer:
    """A signed-in person."""

    user: str
    teams: tuple[str, ...]
    roles: tuple[str, ...]
    auth: str
    expires: float
    nonce: str

    @property
    def sees_all(self) -> bool:
        """Security officers and admins see every team's objects."""
        return bool(set(self.roles) & GLOBAL_ROLES)

    def sees(self, team: str) -> bool:
        """Whether an object of ``team`` is this viewer's to see."""
        return self.sees_all or (bool(team) and team in self.teams)

    def visible_teams(self) -> tuple[str, ...] | None:
        """The teams whose objects this viewer sees (None: every team)."""
        return None if self.sees_all else self.teams

    def principal(self) -> Principal:
        """The principal the gateway would see for this person."""
        return Principal(self.user, self.teams, self.roles, self.auth, "console")


class Sessions:
    """Signs and reads session cookies and CSRF tokens."""

    def __init__(self, key_file: Path, clock: object = time.time) -> None:
        self.key = console_key(key_file)
        self.clock = clock

    def _mac(self, data: bytes) -> str:
        return (
            base64.urlsafe_b64encode(hmac.new(self.key, data, hashlib.sha256).digest()).rstrip(b"=").decode()
        )

    def issue(
        self, who: Identity, teams: tuple[str, ...], roles: tuple[str, ...], lifetime: float = LIFETIME
    ) -> str:
        """A cookie value for a person the provider vouched for."""
        now = float(self.clock())  # type: ignore[operator]
        doc = {
            "u": who.user,
            "t": list(teams),
            "r": list(roles),
            "a": f"console:{who.provider}",
            "e": now + lifetime,
            "n": secrets.token_urlsafe(12),
        }
        data = base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).rstrip(b"=")
        return data.decode() + "." + self._mac(data)

    def read(self, value: str | None) -> Viewer | None:
        """The viewer of a cookie, or None when it is missing, forged or expired."""
        if not value or "." not in value:
            return None
        data, _, mac = value.rpartition(".")
        if not hmac.compare_digest(
            mac.encode(errors="replace"), self._mac(data.encode(errors="replace")).encode()
        ):
            return None
        try:
            doc = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
            viewer = Viewer(
                str(doc["u"]),
                tuple(map(str, doc["t"])),
                tuple(map(str, doc["r"])),
                str(doc["a"]),
                float(doc["e"]),
                str(doc["n"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return viewer if viewer.expires > float(self.clock()) else None  # type: ignore[operator]

    def csrf(self, viewer: Viewer) -> str:
        """The token a form of this session carries."""
        return self._mac(f"csrf:{viewer.user}:{viewer.nonce}".encode())

    def check_csrf(self, viewer: Viewer, token: str) -> bool:
        """Whether ``token`` is this session's."""
        return hmac.compare_digest(self.csrf(viewer).encode(), (token or "").encode(errors="replace"))


def grant_of(login: LoginService, who: Identity) -> tuple[tuple[str, ...], tuple[str, ...], float]:
    """Teams, roles and session lifetime for an identity, as ``moorage login`` grants them."""
    grant = login._grant(who)
    lifetime = float(getattr(login.mapping, "lifetime", LIFETIME) or LIFETIME)
    return grant.teams, grant.roles, min(lifetime, LIFETIME)
