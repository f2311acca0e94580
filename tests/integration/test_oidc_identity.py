"""OpenID Connect against a real, certified provider (npm's oidc-provider): the device
flow a terminal uses, and the authorization code flow with PKCE the console will use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

import pytest

from moorage.identity.interface import LoginRefused
from moorage.identity.mapping import Mapping
from moorage.identity.oidc import OidcConfig, OidcProvider, device_login, finish_code_flow, start_code_flow
from tests.conftest import unique_name
from tests.oidc_harness import OidcServer, approve, follow_to

CALLBACK = "http://127.0.0.1:9/callback"
MAPPING = Mapping.from_dict({"groups": {"payments-dev": {"teams": ["payments"], "roles": ["developer"]}}})


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcServer]:
    server = OidcServer(Path(f"/tmp/moorage-{unique_name('oidc')}"), {"pat": ["payments-dev"]})
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_the_device_flow_as_a_terminal_runs_it(idp: OidcServer) -> None:
    shown: list[str] = []

    def show(uri: str, code: str, complete: str) -> None:
        shown.append(code)
        approve(complete, "pat")

    token = device_login(idp.issuer, "moorage", "openid profile", show, sleep=lambda s: None)
    who = OidcProvider(OidcConfig(idp.issuer, "moorage")).authenticate({"id_token": token})
    assert who.user == "pat" and who.groups == ("payments-dev",) and shown
    assert MAPPING.grant(who).teams == ("payments",)


def test_the_code_flow_with_pkce(idp: OidcServer) -> None:
    provider = OidcProvider(OidcConfig(idp.issuer, "moorage-console"))
    flow = start_code_flow(provider, CALLBACK)
    assert "code_challenge_method=S256" in flow.url
    back = dict(parse_qsl(urlparse(follow_to(flow.url, "pat", CALLBACK)).query))
    with pytest.raises(LoginRefused, match="state"):
        finish_code_flow(provider, flow, CALLBACK, {**back, "state": "forged"})
    who = finish_code_flow(provider, flow, CALLBACK, back)
    assert who.user == "pat" and who.groups == ("payments-dev",)
    with pytest.raises(LoginRefused):  # a code is good once
        finish_code_flow(provider, flow, CALLBACK, back)
