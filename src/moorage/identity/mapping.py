"""Groups and claims to teams and roles.

A mapping file::

    groups:                      # directory groups (LDAP cn, OIDC "groups" claim)
      payments-dev: {teams: [payments], roles: [developer]}
      payments-ops: {teams: [payments], roles: [operator]}
      security:     {roles: [security-officer]}
    claims:                      # OIDC claims: CLAIM=VALUE
      "department=payments": {teams: [payments]}
    lifetime: 8h                 # a login's certificate (default 8h, at most max)
    max_lifetime: 24h

Precedence: every matching entry counts, groups first in the file's order, then
claims; teams keep that order (the first is the team stamped on what the person
creates) and roles are their union. Someone no entry matches, or who ends with no
role, gets nothing: the login is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from moorage.identity.interface import Identity, LoginRefused
from moorage.identity.principal import ROLES, IdentityError

__all__ = ["Grant", "Mapping", "parse_lifetime"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_lifetime(text: Any, where: str) -> int:
    """Seconds in ``8h``, ``30m``, ``1d``...; IdentityError naming ``where`` otherwise."""
    m = _DURATION.match(str(text))
    if not m or int(m.group(1)) <= 0:
        raise IdentityError(f"{where}: {text!r} is not a lifetime (use e.g. 8h, 30m, 1d)")
    return int(m.group(1)) * _UNIT[m.group(2)]


@dataclass(frozen=True)
class Grant:
    """What an identity is allowed: its teams and roles."""

    teams: tuple[str, ...]
    roles: tuple[str, ...]


@dataclass(frozen=True)
class _Entry:
    key: str
    teams: tuple[str, ...]
    roles: tuple[str, ...]


class Mapping:
    """From a provider's groups and claims to Moorage teams and roles, and how long a
    login lasts."""

    def __init__(
        self,
        groups: list[_Entry],
        claims: list[_Entry],
        lifetime: int = 8 * 3600,
        max_lifetime: int = 24 * 3600,
    ) -> None:
        self.groups = groups
        self.claims = claims
        self.lifetime = min(lifetime, max_lifetime)
        self.max_lifetime = max_lifetime

    @classmethod
    def from_file(cls, path: Path) -> Mapping:
        """Read a mapping file; IdentityError naming the file when it can't be used."""
        try:
            doc = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise IdentityError(f"cannot read the mapping file {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise IdentityError(f"the mapping file {path} is not valid YAML: {exc}") from exc
        return cls.from_dict(doc, str(path))

    @classmethod
    def from_dict(cls, doc: Any, where: str = "mapping") -> Mapping:
        """Check and build a mapping document; errors name ``where`` and the key."""
        if not isinstance(doc, dict):
            raise IdentityError(f"{where}: expected a mapping with 'groups' and/or 'claims'")
        unknown = set(doc) - {"groups", "claims", "lifetime", "max_lifetime"}
        if unknown:
            raise IdentityError(
                f"{where}: unknown key {sorted(unknown)[0]!r} (known: groups, claims, lifetime, max_lifetime)"
            )

        def entries(section: str) -> list[_Entry]:
            items = doc.get(section) or {}
            if not isinstance(items, dict):
                raise IdentityError(f"{where}: {section} must be a mapping of NAME: {{teams, roles}}")
            out = []
            for key, spec in items.items():
                at = f"{where}: {section}.{key}"
                if not isinstance(spec, dict) or set(spec) - {"teams", "roles"}:
                    raise IdentityError(f"{at}: expected {{teams: [...], roles: [...]}}")
                if section == "claims" and "=" not in str(key):
                    raise IdentityError(f"{at}: a claim entry is CLAIM=VALUE")
                roles = tuple(str(r) for r in spec.get("roles") or ())
                bad = [r for r in roles if r not in ROLES]
                if bad:
                    raise IdentityError(f"{at}.roles: unknown role {bad[0]!r} (known: {', '.join(ROLES)})")
                out.append(_Entry(str(key), tuple(str(t) for t in spec.get("teams") or ()), roles))
            return out

        max_lifetime = parse_lifetime(doc.get("max_lifetime", "24h"), f"{where}: max_lifetime")
        lifetime = parse_lifetime(doc.get("lifetime", "8h"), f"{where}: lifetime")
        if lifetime > max_lifetime:
            raise IdentityError(f"{where}: lifetime is longer than max_lifetime")
        return cls(entries("groups"), entries("claims"), lifetime, max_lifetime)

    def grant(self, identity: Identity) -> Grant:
        """The teams and roles of ``identity``; LoginRefused when it has none."""
        groups = set(identity.groups)
        hits = [e for e in self.groups if e.key in groups]
        for e in self.claims:
            claim, _, value = e.key.partition("=")
            have = identity.claims.get(claim)
            values = have if isinstance(have, list) else [have]
            if value in [str(v) for v in values if v is not None]:
                hits.append(e)
        teams: list[str] = []
        roles: list[str] = []
        for e in hits:
            teams += [t for t in e.teams if t not in teams]
            roles += [r for r in e.roles if r not in roles]
        if not roles:
            raise LoginRefused(
                f"{identity.user} is in no group the mapping grants a role to: ask an "
                "administrator to map one of your groups"
            )
        return Grant(tuple(teams), tuple(roles))
