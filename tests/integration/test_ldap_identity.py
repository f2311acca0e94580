"""LDAP as an identity provider, against a real OpenLDAP slapd started here."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import ldap3
import pytest

from moorage.identity.interface import LoginRefused, ProviderUnavailable
from moorage.identity.ldap import LdapConfig, LdapProvider
from moorage.identity.mapping import Mapping
from tests.conftest import needs_root, unique_name
from tests.ldap_harness import ADMIN_DN, ADMIN_PASSWORD, PEOPLE, SUFFIX, Slapd

MAPPING = Mapping.from_dict(
    {
        "groups": {
            "payments-dev": {"teams": ["payments"], "roles": ["developer"]},
            "search-dev": {"teams": ["search"], "roles": ["developer"]},
        }
    }
)


@pytest.fixture(scope="module")
def slapd() -> Iterator[Slapd]:
    needs_root()
    if shutil.which("slapd") is None:
        pytest.fail("slapd is missing: the README's test command installs Debian's slapd")
    server = Slapd(Path(f"/tmp/moorage-{unique_name('ldap')}"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def provider(s: Slapd, url: str | None = None, ca: str | None = None) -> LdapProvider:
    return LdapProvider(
        LdapConfig(
            url or s.url,
            f"uid={{user}},ou=people,{SUFFIX}",
            f"ou=groups,{SUFFIX}",
            ca or s.ca_file,
            bind_dn=ADMIN_DN,
            bind_password=ADMIN_PASSWORD,
        )
    )


@pytest.mark.parametrize("tls", ["starttls", "ldaps"])
def test_a_directory_user_logs_in_and_maps_to_their_team(slapd: Slapd, tls: str) -> None:
    p = provider(slapd, slapd.url if tls == "starttls" else slapd.ldaps_url)
    who = p.authenticate({"username": "pat", "password": PEOPLE["pat"][0]})
    assert who.provider == "ldap" and who.user == "pat" and who.groups == ("payments-dev",)
    assert who.subject == f"uid=pat,ou=people,{SUFFIX}"
    grant = MAPPING.grant(who)
    assert grant.teams == ("payments",) and grant.roles == ("developer",)


@pytest.mark.parametrize(
    ("username", "password"),
    [("pat", "wrong"), ("nobody-here", "x"), ("pat", ""), ("", "x"), ("pat)(uid=*", "x"), ("*", "x")],
)
def test_wrong_credentials_are_refused_precisely(slapd: Slapd, username: str, password: str) -> None:
    with pytest.raises(LoginRefused):
        provider(slapd).authenticate({"username": username, "password": password})


def test_a_user_in_no_mapped_group_gets_nothing(slapd: Slapd) -> None:
    who = provider(slapd).authenticate({"username": "remy", "password": PEOPLE["remy"][0]})
    assert who.groups == ()
    with pytest.raises(LoginRefused, match="no group"):
        MAPPING.grant(who)


def test_a_directory_whose_certificate_isnt_trusted_is_never_sent_a_password(slapd: Slapd) -> None:
    stranger = str(Path(slapd.ca_file).with_name("stranger-ca.pem"))
    for url in (slapd.url, slapd.ldaps_url):
        with pytest.raises(ProviderUnavailable):
            provider(slapd, url, stranger).authenticate({"username": "pat", "password": PEOPLE["pat"][0]})


def test_sync_sees_a_group_change(slapd: Slapd) -> None:
    p = provider(slapd)
    dn = f"uid=quinn,ou=people,{SUFFIX}"
    assert p.lookup(dn) is not None and p.lookup(dn).groups == ("search-dev",)  # type: ignore[union-attr]
    admin = ldap3.Connection(ldap3.Server(slapd.url), ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)
    assert admin.modify(f"cn=search-dev,ou=groups,{SUFFIX}", {"member": [(ldap3.MODIFY_DELETE, [dn])]})
    try:
        after = p.lookup(dn)
        assert after is not None and after.groups == ()
        with pytest.raises(LoginRefused):
            MAPPING.grant(after)
        assert p.lookup(f"uid=gone,ou=people,{SUFFIX}") is None
    finally:
        admin.modify(f"cn=search-dev,ou=groups,{SUFFIX}", {"member": [(ldap3.MODIFY_ADD, [dn])]})
        admin.unbind()
