"""Moorage's own account and session operations: service accounts for CI runners,
whoami, logout and certificate revocation. The gateway routes to them."""

from __future__ import annotations

import re
from typing import Any

from moorage.admission.errors import ClientError, Hidden, NotServed
from moorage.identity import GLOBAL_ROLES, ROLES, IdentityError, Principal
from moorage.identity.certs import CertStore
from moorage.identity.login import LoginService
from moorage.identity.mapping import parse_lifetime

__all__ = ["create_account", "session_api"]


def create_account(
    certs: CertStore | None, login: LoginService | None, p: Principal, body: Any
) -> dict[str, Any]:
    """A service account for a CI runner and its one-time enrolment token."""
    if certs is None or login is None:
        raise NotServed("moorage: this gateway issues no login certificates (moorage up --identity)")
    args = body if isinstance(body, dict) else {}
    name, team = str(args.get("name") or ""), str(args.get("team") or "")
    if not re.match(r"^[a-z0-9][a-z0-9._-]{0,62}$", name) or not team:
        raise ClientError('moorage: give {"name": "ci-payments", "team": "payments"} (a lowercase name)')
    roles = tuple(str(r) for r in args.get("roles") or ["developer"])
    bad = [r for r in roles if r not in ROLES or r in GLOBAL_ROLES]
    if bad:
        raise ClientError(f"moorage: a service account can't have role {bad[0]!r} (team roles only)")
    try:
        lifetime = min(parse_lifetime(args.get("lifetime", "1h"), "lifetime"), login.mapping.max_lifetime)
    except IdentityError as exc:
        raise ClientError(f"moorage: {exc}") from exc
    lifetime = min(lifetime, login.mapping.max_lifetime)
    token = certs.create_account(name, team, roles, lifetime, p.user)
    return {"name": name, "team": team, "roles": list(roles), "lifetime": lifetime, "token": token}


def session_api(certs: CertStore | None, kind: str, p: Principal, body: Any) -> dict[str, Any]:
    """Logout, whoami and certificate revocation."""
    if kind == "moorage.whoami":
        out: dict[str, Any] = {"user": p.user, "teams": list(p.teams), "roles": list(p.roles),
                               "auth": p.auth, "source": p.source}  # fmt: skip
        if p.cert is not None and certs is not None:
            record = certs.get(p.cert[0])
            if record is not None:
                out.update(serial=record.serial, expires_at=record.expires_at, provider=record.provider,
                           subject=record.subject, groups=list(record.groups))  # fmt: skip
        return out
    if certs is None:
        raise NotServed("moorage: this gateway issues no login certificates (moorage up --identity)")
    if kind == "moorage.logout":
        if p.cert is None:
            raise ClientError("moorage: this connection has no login certificate to log out of")
        return {"user": p.user, "revoked": certs.revoke(p.cert[0], p.user, "logout")}
    args = body if isinstance(body, dict) else {}
    if not args.get("serial") and not args.get("user"):
        raise ClientError('moorage: give {"serial": HEX} or {"user": NAME}')
    serial = str(args["serial"]) if args.get("serial") else None
    user = str(args["user"]) if args.get("user") else None
    revoked = certs.revoke(serial, p.user, f"revoked by {p.user}", user=user)
    if not revoked:
        raise Hidden("moorage: no live certificate matches")
    return {"revoked": revoked, "user": user or ""}
