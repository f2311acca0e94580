"""`moorage login` on the gateway's side: a provider vouches for the person, the
mapping gives their teams and roles, and the gateway signs their CSR for a short
while. The answer never carries a private key: the client made it and keeps it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping as MappingType
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from moorage.identity.certs import CertStore
from moorage.identity.interface import Identity, IdentityProvider, LoginRefused, ProviderUnavailable
from moorage.identity.ldap import LdapConfig, LdapProvider
from moorage.identity.mapping import Grant, Mapping, parse_lifetime
from moorage.identity.oidc import OidcConfig, OidcProvider
from moorage.identity.principal import IdentityError
from moorage.identity.users import UsersFileProvider

__all__ = ["LoginError", "LoginService", "load_identity"]


@dataclass
class LoginError(Exception):
    """A refused login: ``status`` is the HTTP answer; ``summary`` what the audit keeps."""

    status: int
    message: str
    summary: dict[str, Any]

    def __str__(self) -> str:
        return self.message


class LoginService:
    """Turns a provider's identity into a short-lived login certificate: the
    provider says who, the mapping (or the users file) what they may, the store records it."""

    def __init__(
        self, providers: MappingType[str, IdentityProvider], mapping: Mapping, certs: CertStore
    ) -> None:
        self.providers = dict(providers)
        self.mapping = mapping
        self.certs = certs

    def _grant(self, who: Identity) -> Grant:
        """The users file says itself what its people get; other providers go through the mapping."""
        return UsersFileProvider.grant(who) if who.provider == "users" else self.mapping.grant(who)

    def oidc_settings(self) -> dict[str, str]:
        """What `moorage login --oidc` needs to run the device flow itself."""
        provider = self.providers.get("oidc")
        if not isinstance(provider, OidcProvider):
            raise LoginError(404, "this gateway has no OpenID provider (identity file: oidc)", {})
        c = provider.config
        return {"issuer": c.issuer, "client_id": c.client_id, "scope": c.scope}

    def sync(self) -> list[tuple[str, str, str]]:
        """Ask each provider again about everyone holding a live login certificate;
        revoke those it no longer vouches for, or whose groups no longer grant what the
        certificate carries. Returns (serial, user, reason) of each revocation. A
        provider that can't be asked revokes nothing: expiry bounds that case."""
        out: list[tuple[str, str, str]] = []
        for record in self.certs.live_records():
            provider = self.providers.get(record.provider)
            if provider is None:
                continue  # service accounts and static certificates: not the directory's
            try:
                now = provider.lookup(record.subject)
            except ProviderUnavailable:
                continue
            if now is None:
                reason = f"{record.user} is no longer in the directory"
            else:
                try:
                    grant = self._grant(now)
                except LoginRefused:
                    grant = None
                if (
                    grant is not None
                    and set(record.roles) <= set(grant.roles)
                    and set(record.teams) <= set(grant.teams)
                ):
                    continue
                reason = f"{record.user}'s directory groups no longer grant {', '.join(record.roles)}"
            if self.certs.revoke(record.serial, "directory sync", reason):
                out.append((record.serial, record.user, reason))
        return out

    def _enrol(self, body: dict[str, Any]) -> dict[str, Any]:
        """A CI runner's login: a one-time enrolment token for a service account."""
        summary: dict[str, Any] = {"provider": "token"}
        csr = _csr(body, summary)
        try:
            who, grant, lifetime = self.certs.redeem(str(body.get("token") or ""))
        except LoginRefused as exc:
            raise LoginError(401, f"login refused: {exc}", summary) from exc
        summary.update(subject=who.subject, user=who.user, groups=[])
        return self._sign(csr, who, grant, min(lifetime, self.mapping.max_lifetime), summary)

    async def login(self, body: Any) -> dict[str, Any]:
        """The signed certificate and what it grants, or LoginError."""
        if not isinstance(body, dict):
            raise LoginError(400, "the login body is a JSON object {provider, csr, ...}", {})
        name = str(body.get("provider", ""))
        if name == "token":
            return self._enrol(body)
        provider = self.providers.get(name)
        summary: dict[str, Any] = {"provider": name, "username": str(body.get("username", ""))[:200]}
        if body.get("failed"):  # the client's side of a login that failed at the provider, for the record
            raise LoginError(
                401, f"login refused by the {name} provider: {str(body['failed'])[:300]}", summary
            )
        if provider is None:
            known = ", ".join(sorted(self.providers)) or "none configured"
            raise LoginError(400, f"no identity provider {name!r} on this gateway (known: {known})", summary)
        csr = _csr(body, summary)
        lifetime = self.mapping.lifetime
        if body.get("lifetime") is not None:
            try:
                lifetime = min(parse_lifetime(body["lifetime"], "lifetime"), self.mapping.max_lifetime)
            except IdentityError as exc:
                raise LoginError(400, str(exc), summary) from exc
        try:
            who = await asyncio.to_thread(provider.authenticate, body)
        except LoginRefused as exc:
            raise LoginError(401, f"login refused: {exc}", summary) from exc
        except ProviderUnavailable as exc:
            raise LoginError(503, f"the identity provider can't be asked: {exc}", summary) from exc
        summary.update(subject=who.subject, user=who.user, groups=list(who.groups))
        try:
            grant = self._grant(who)
        except LoginRefused as exc:
            raise LoginError(403, f"login refused: {exc}", summary) from exc
        return self._sign(csr, who, grant, lifetime, summary)

    def _sign(
        self, csr: str, who: Identity, grant: Grant, lifetime: int, summary: dict[str, Any]
    ) -> dict[str, Any]:
        """Sign the CSR for ``who`` and say so: the answer, with what the audit keeps."""
        try:
            pem, record = self.certs.issue(csr.encode(), who, grant, lifetime)
        except IdentityError as exc:
            raise LoginError(400, str(exc), summary) from exc
        summary.update(serial=record.serial, teams=list(grant.teams), roles=list(grant.roles),
                       expires_at=record.expires_at)  # fmt: skip
        return {
            "certificate": pem.decode(),
            "ca": self.certs.pki.ca_cert_path.read_text(),
            "user": who.user,
            "provider": who.provider,
            "subject": who.subject,
            "groups": list(who.groups),
            "teams": list(grant.teams),
            "roles": list(grant.roles),
            "serial": record.serial,
            "expires_at": record.expires_at,
            "summary": summary,
        }


def _csr(body: dict[str, Any], summary: dict[str, Any]) -> str:
    csr = body.get("csr")
    if not isinstance(csr, str) or "BEGIN CERTIFICATE REQUEST" not in csr:
        raise LoginError(400, "csr: send a PEM certificate request made with your own key", summary)
    return csr


def load_identity(path: Path, certs: CertStore) -> LoginService:
    """The gateway's identity configuration (``moorage up --identity FILE``)::

    ldap:
      url: ldap://directory.example:389      # StartTLS is required; or ldaps://
      user_dn: "uid={user},ou=people,dc=example,dc=org"
      group_base: "ou=groups,dc=example,dc=org"
      ca_file: directory-ca.pem              # relative to this file
      bind_dn: "cn=moorage,dc=example,dc=org"  # for the periodic sync
      bind_password_file: sync-password
    mapping:                                 # see moorage.identity.mapping
      groups: {payments-dev: {teams: [payments], roles: [developer]}}
      lifetime: 8h
    """
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise IdentityError(f"cannot read the identity file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise IdentityError(f"the identity file {path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or "mapping" not in doc:
        raise IdentityError(f"{path}: expected a mapping with 'mapping' and a provider ('ldap')")
    unknown = set(doc) - {"ldap", "oidc", "mapping"}
    if unknown:
        raise IdentityError(f"{path}: unknown key {sorted(unknown)[0]!r} (known: ldap, oidc, mapping)")
    providers: dict[str, IdentityProvider] = {}
    if doc.get("ldap") is not None:
        spec = doc["ldap"]
        if not isinstance(spec, dict):
            raise IdentityError(f"{path}: ldap must be a mapping")
        missing = [k for k in ("url", "user_dn", "group_base", "ca_file") if not spec.get(k)]
        if missing:
            raise IdentityError(f"{path}: ldap.{missing[0]} is required")
        password = str(spec.get("bind_password", ""))
        if spec.get("bind_password_file"):
            try:
                password = (path.parent / str(spec["bind_password_file"])).read_text().strip()
            except OSError as exc:
                raise IdentityError(f"{path}: ldap.bind_password_file: {exc.strerror}") from exc
        providers["ldap"] = LdapProvider(
            LdapConfig(
                url=str(spec["url"]),
                user_dn=str(spec["user_dn"]),
                group_base=str(spec["group_base"]),
                ca_file=str(path.parent / str(spec["ca_file"])),
                bind_dn=str(spec.get("bind_dn", "")),
                bind_password=password,
            )
        )
    if doc.get("oidc") is not None:
        spec = doc["oidc"]
        if not isinstance(spec, dict) or not spec.get("issuer") or not spec.get("client_id"):
            raise IdentityError(f"{path}: oidc needs issuer and client_id")
        extra = {k: str(spec[k]) for k in ("scope", "username_claim", "groups_claim") if spec.get(k)}
        try:
            providers["oidc"] = OidcProvider(OidcConfig(str(spec["issuer"]), str(spec["client_id"]), **extra),
                                             spend=certs.spend_token)  # fmt: skip
        except ProviderUnavailable as exc:
            raise IdentityError(f"{path}: oidc: {exc}") from exc
    if not providers:
        raise IdentityError(f"{path}: configure at least one provider (ldap, oidc)")
    return LoginService(providers, Mapping.from_dict(doc["mapping"], f"{path}: mapping"), certs)
