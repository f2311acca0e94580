"""The users file as an identity provider: someone the gateway already knows on its
unix socket (by uid) can get a short-lived certificate for its TLS listener. The
gateway, never the client, says who that is; teams and roles come from the file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moorage.identity.interface import Identity, IdentityProvider, LoginRefused
from moorage.identity.mapping import Grant
from moorage.identity.principal import UserDirectory

__all__ = ["UsersFileProvider"]


class UsersFileProvider(IdentityProvider):
    """The users file as a provider: the gateway vouches for its unix-socket caller."""

    name = "users"

    def __init__(self, directory: UserDirectory) -> None:
        self.directory = directory

    def _identity(self, name: str) -> Identity | None:
        user = self.directory.users.get(name)
        if user is None or not user.roles:
            return None
        return Identity(
            "users",
            f"users:{user.name}",
            user.name,
            (),
            {"teams": list(user.teams), "roles": list(user.roles)},
        )

    def authenticate(self, credentials: Mapping[str, Any]) -> Identity:
        who = self._identity(str(credentials.get("peer_user") or ""))
        if who is None:
            raise LoginRefused(
                "moorage login --users works on the gateway's unix socket, for a user of the "
                "users file (by uid)"
            )
        return who

    def lookup(self, subject: str) -> Identity | None:
        return self._identity(subject.removeprefix("users:"))

    @staticmethod
    def grant(identity: Identity) -> Grant:
        """Teams and roles straight from the users file, without a mapping."""
        return Grant(tuple(identity.claims.get("teams") or ()), tuple(identity.claims.get("roles") or ()))
