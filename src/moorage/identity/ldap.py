"""A directory as an identity provider: a simple bind as the person, over LDAPS or
StartTLS only (a password never crosses in the clear), then a search for their
groups. ldap3 is the client; the server's certificate is verified against the CA
given."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ldap3
from ldap3.core import exceptions as lexc
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from moorage.identity.interface import Identity, IdentityProvider, LoginRefused, ProviderUnavailable

__all__ = ["LdapConfig", "LdapProvider"]


@dataclass(frozen=True)
class LdapConfig:
    """Where the directory is and how to find a user's entry and groups in it."""

    url: str  # ldaps://host:636 or ldap://host:389 (then StartTLS is required)
    user_dn: str  # "uid={user},ou=people,dc=example,dc=org"
    group_base: str  # "ou=groups,dc=example,dc=org"
    ca_file: str  # the CA that signed the directory's certificate
    group_filter: str = "(&(objectClass=groupOfNames)(member={dn}))"
    # a service account that may read users and groups (for the periodic sync)
    bind_dn: str = ""
    bind_password: str = ""
    timeout: float = 10.0


class LdapProvider(IdentityProvider):
    """Logs people in with a bind as their own DN over TLS; groups by search."""

    name = "ldap"

    def __init__(self, config: LdapConfig) -> None:
        self.config = config
        tls = ldap3.Tls(
            ca_certs_file=config.ca_file, validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT
        )
        self._server = ldap3.Server(
            config.url,
            use_ssl=config.url.startswith("ldaps://"),
            tls=tls,
            connect_timeout=int(config.timeout),
            get_info=ldap3.NONE,
        )

    def _connect(self, dn: str, password: str) -> ldap3.Connection:
        conn = ldap3.Connection(
            self._server,
            user=dn,
            password=password,
            auto_bind=ldap3.AUTO_BIND_NONE,
            receive_timeout=int(self.config.timeout),
            raise_exceptions=False,
        )
        try:
            conn.open()
            if not self.config.url.startswith("ldaps://") and not conn.start_tls():
                raise ProviderUnavailable(
                    f"the directory at {self.config.url} refused StartTLS; Moorage never "
                    "sends a password in the clear"
                )
        except (lexc.LDAPException, OSError, ssl.SSLError) as exc:
            raise ProviderUnavailable(
                f"cannot reach the directory at {self.config.url} over TLS: {exc}"
            ) from exc
        return conn

    def _groups(self, conn: ldap3.Connection, dn: str) -> tuple[str, ...]:
        flt = self.config.group_filter.format(dn=escape_filter_chars(dn))
        if not conn.search(self.config.group_base, flt, attributes=["cn"]):
            return ()
        return tuple(sorted(str(e.cn.value) for e in conn.entries if e.cn.value))

    def authenticate(self, credentials: Mapping[str, Any]) -> Identity:
        user = str(credentials.get("username") or "")
        password = str(credentials.get("password") or "")
        if not user or not password:
            raise LoginRefused("give a user name and a password")  # an empty password is an anonymous bind
        dn = self.config.user_dn.format(user=escape_rdn(user))
        conn = self._connect(dn, password)
        try:
            if not conn.bind():
                raise LoginRefused(f"the directory refused the login of {user}: wrong user name or password")
            return Identity("ldap", dn, user, self._groups(conn, dn))
        except lexc.LDAPException as exc:
            raise ProviderUnavailable(f"the directory failed during the login: {exc}") from exc
        finally:
            conn.unbind()

    def lookup(self, subject: str) -> Identity | None:
        """The person's groups now, read with the sync account; None when the entry is gone."""
        if not self.config.bind_dn:
            raise ProviderUnavailable("no sync account (bind_dn) is configured for the directory")
        conn = self._connect(self.config.bind_dn, self.config.bind_password)
        try:
            if not conn.bind():
                raise ProviderUnavailable("the directory refused the sync account's bind")
            if not conn.search(subject, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["uid"]):
                return None
            user = str(conn.entries[0].uid.value or subject) if conn.entries else subject
            return Identity("ldap", subject, user, self._groups(conn, subject))
        except lexc.LDAPNoSuchObjectResult:
            return None
        except lexc.LDAPException as exc:
            raise ProviderUnavailable(f"the directory failed during the sync: {exc}") from exc
        finally:
            conn.unbind()
