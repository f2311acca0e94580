"""Who is asking: principals, the users file, and roles as classes of endpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["GLOBAL_ROLES", "ROLES", "IdentityError", "Principal", "User", "UserDirectory"]

_VIEW = frozenset({"system.read", "container.read", "image.read", "network.read", "volume.read",
                   "service.read", "task.read", "session"})  # fmt: skip
_DEV = _VIEW | {"container.write", "exec", "image.write", "build", "network.write",
                "volume.write", "service.write", "config.read", "config.write", "exception.read",
                "exception.request"}  # fmt: skip
_OPS = _DEV | {"swarm.read", "node.read", "secret.read", "secret.write", "plugin.read", "prune",
               "cluster.read", "node.enrol", "attestation.request"}  # fmt: skip
_SEC = _VIEW | {"swarm.read", "node.read", "node.write", "secret.read", "config.read",
                "plugin.read", "exception.read", "exception.request", "exception.approve",
                "cluster.read", "attestation.request", "attestation.approve", "swarm.security",
                "cert.revoke"}  # fmt: skip

ROLES: dict[str, frozenset[str]] = {
    "viewer": _VIEW,
    "developer": _DEV,
    "operator": frozenset(_OPS),
    "security-officer": frozenset(_SEC),
    "admin": frozenset({"*"}),
}
# Roles that see every team's objects; the others see their own team's.
GLOBAL_ROLES = frozenset({"security-officer", "admin"})


class IdentityError(Exception):
    """The caller could not be identified, or the users file is wrong."""


@dataclass(frozen=True)
class Principal:
    """The identity behind one request."""

    user: str
    teams: tuple[str, ...]
    roles: tuple[str, ...]
    auth: str  # "peercred" | "tls" | "login:ldap" | ...
    source: str = ""  # "unix:uid=1000" or "tcp:127.0.0.1:51234"
    cert: tuple[str, str] | None = None  # (serial, key digest) of a login certificate, checked per request

    @property
    def team(self) -> str:
        """The team stamped on what this principal creates (the first one)."""
        return self.teams[0] if self.teams else f"user-{self.user}"

    def may(self, action_class: str) -> bool:
        """Whether one of the roles allows ``action_class``."""
        return any("*" in ROLES.get(r, ()) or action_class in ROLES.get(r, ()) for r in self.roles)

    @property
    def sees_all(self) -> bool:
        """Whether a role sees every team's objects (security officer, admin)."""
        return any(r in GLOBAL_ROLES for r in self.roles)


@dataclass(frozen=True)
class User:
    """One person of the users file: teams, roles, and how the gateway recognises them."""

    name: str
    teams: tuple[str, ...]
    roles: tuple[str, ...]
    uid: int | None = None
    cert_cn: str | None = None
    keys: tuple[str, ...] = ()  # PEM public keys the user signs attestations with


@dataclass
class UserDirectory:
    """Users, teams and roles, from a YAML file::

    users:
      alice: {uid: 1001, teams: [payments], roles: [developer]}
      bob:   {cert: bob, teams: [search], roles: [developer]}   # TLS client cert CN
    """

    users: dict[str, User] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path) -> UserDirectory:
        """Read a users file; IdentityError naming the file when it can't be used."""
        try:
            doc = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise IdentityError(f"cannot read users file {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise IdentityError(f"users file {path} is not valid YAML: {exc}") from exc
        return cls.from_dict(doc, str(path), path.parent)

    @classmethod
    def from_dict(cls, doc: Any, where: str = "users", base: Path | None = None) -> UserDirectory:
        """Check and build a users document; errors name ``where`` and the user."""
        if not isinstance(doc, dict) or not isinstance(doc.get("users"), dict):
            raise IdentityError(f"{where}: expected a mapping with a 'users' mapping")
        users: dict[str, User] = {}
        for name, spec in doc["users"].items():
            if not isinstance(spec, dict):
                raise IdentityError(f"{where}: users.{name} must be a mapping")
            roles = tuple(spec.get("roles", []))
            bad = [r for r in roles if r not in ROLES]
            if bad:
                raise IdentityError(
                    f"{where}: users.{name}.roles: unknown role {bad[0]!r} (known: {', '.join(ROLES)})"
                )
            uid = spec.get("uid")
            if uid is not None and not isinstance(uid, int):
                raise IdentityError(f"{where}: users.{name}.uid must be a number")
            users[str(name)] = User(
                str(name), tuple(str(t) for t in spec.get("teams", [])), roles, uid,
                spec.get("cert"), _keys(spec.get("keys", []), where, str(name), base),
            )  # fmt: skip
        return cls(users)

    def officer_keys(self) -> list[tuple[str, str]]:
        """(user, PEM) for every key of every security officer."""
        return [(u.name, k) for u in self.users.values() if "security-officer" in u.roles for k in u.keys]

    def by_uid(self, uid: int) -> User | None:
        """The user with this unix uid (peer credentials on the socket), if any."""
        return next((u for u in self.users.values() if u.uid == uid), None)

    def by_cert(self, cn: str) -> User | None:
        """The user whose TLS client-certificate CN is ``cn`` (their name by default)."""
        return next(
            (u for u in self.users.values() if (u.cert_cn or u.name) == cn and u.cert_cn != ""),
            None,
        )


def _keys(value: Any, where: str, name: str, base: Path | None) -> tuple[str, ...]:
    """``keys:`` holds PEM public keys inline, or paths to them (relative to the users file)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise IdentityError(f"{where}: users.{name}.keys must be a list of PEM keys or key files")
    out = []
    for item in value:
        text = str(item)
        if "-----BEGIN PUBLIC KEY-----" not in text:
            path = Path(text) if base is None else base / text
            try:
                text = path.read_text()
            except OSError as exc:
                raise IdentityError(f"{where}: users.{name}.keys: cannot read {path}: {exc.strerror}") \
                    from exc  # fmt: skip
            if "-----BEGIN PUBLIC KEY-----" not in text:
                raise IdentityError(f"{where}: users.{name}.keys: {path} holds no PEM PUBLIC KEY")
        out.append(text)
    return tuple(out)
