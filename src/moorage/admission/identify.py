"""Who is asking: the principal behind a unix peer's uid or a TLS client
certificate, or the reason there is none (answered as a refusal)."""

from __future__ import annotations

import pwd
from typing import Any

from moorage.identity import Principal, UserDirectory
from moorage.identity.certs import CertStore, certificate_expired, certificate_identity

__all__ = ["by_certificate", "by_uid"]


def by_uid(users: UserDirectory, admin_uids: tuple[int, ...], uid: int, pid: int) -> Principal | str:
    """The principal of a unix socket peer (its kernel-reported uid and pid)."""
    source = f"unix:uid={uid},pid={pid}"
    user = users.by_uid(uid)
    if user is not None:
        return Principal(user.name, user.teams, user.roles, "peercred", source)
    if uid in admin_uids:
        return Principal(_uid_name(uid), (), ("admin",), "peercred", source)
    return (
        f"uid {uid} is not a Moorage user. Ask an administrator to add it to the users file (users.NAME.uid)"
    )


def by_certificate(users: UserDirectory, certs: CertStore | None, now: float,
                   tls_info: dict[str, Any]) -> Principal | str:  # fmt: skip
    """The principal of a TLS client: a live ``moorage login`` certificate, or a
    certificate whose common name is a user's."""
    cert = tls_info.get("peercert") or {}
    peer = tls_info.get("peername") or ("?", 0)
    source = f"tcp:{peer[0]}:{peer[1]}"
    if not cert:
        return "no client certificate: run moorage login (or use one from moorage cert issue)"
    if certs is not None:
        serial, digest = certificate_identity(tls_info.get("peercert_der") or b"")
        record, why = certs.live(serial, digest)
        if record is not None:
            return Principal(record.user, record.teams, record.roles, f"login:{record.provider}", source,
                             cert=(serial, digest))  # fmt: skip
        if certs.get(serial) is not None:
            return why  # ours, and no longer live: revoked or expired
        if certificate_expired(tls_info.get("peercert_der") or b"", now):
            return "the client certificate has expired: run moorage login, or ask for a new one"
    cn = next((v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"), None)
    if cn is None:
        return "the client certificate has no common name"
    user = users.by_cert(cn)
    if user is None:
        return f"certificate CN={cn!r} is not a Moorage user"
    return Principal(user.name, user.teams, user.roles, "tls", source)


def _uid_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"
