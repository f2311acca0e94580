"""ID token verification against self-made keys and tokens: every way a token can be
wrong is refused, precisely."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from moorage.identity.interface import LoginRefused, ProviderUnavailable
from moorage.identity.oidc import OidcConfig, OidcProvider, device_login

ISSUER = "https://id.example.test"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NOW = 1_800_000_000.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    n = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "n": b64(n.n.to_bytes(256, "big")), "e": b64(n.e.to_bytes(3, "big"))}


def token(claims: dict[str, Any], key: rsa.RSAPrivateKey = KEY, header: dict[str, Any] | None = None) -> str:
    head = b64(json.dumps(header or {"alg": "RS256", "kid": "k1"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{b64(sig)}"


def good(**kw: Any) -> dict[str, Any]:
    claims = {
        "iss": ISSUER,
        "aud": "moorage",
        "sub": "pat",
        "preferred_username": "pat",
        "groups": ["payments-dev"],
        "iat": NOW,
        "exp": NOW + 300,
    }
    claims.update(kw)
    return claims


def fetch(url: str, data: Any = None) -> Any:
    if url.endswith("/.well-known/openid-configuration"):
        return {
            "issuer": ISSUER,
            "jwks_uri": ISSUER + "/jwks",
            "token_endpoint": ISSUER + "/token",
            "device_authorization_endpoint": ISSUER + "/device/auth",
        }
    if url.endswith("/jwks"):
        return {"keys": [jwk(KEY, "k1")]}
    raise AssertionError(url)


def provider(now: float = NOW) -> OidcProvider:
    return OidcProvider(OidcConfig(ISSUER, "moorage"), fetch=fetch, clock=lambda: now)


def test_a_good_token_gives_the_person_and_their_groups() -> None:
    who = provider().authenticate({"id_token": token(good())})
    assert who.provider == "oidc" and who.user == "pat" and who.groups == ("payments-dev",)
    assert who.subject == f"{ISSUER}#pat"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (token(good(iss="https://evil.example.test")), "issued by"),
        (token(good(aud="another-app")), "not for Moorage"),
        (token(good(aud=["moorage", "another-app"])), "azp"),
        (token(good(exp=NOW - 120)), "expired"),
        (token(good(iat=NOW + 600)), "not valid yet"),
        (token(good(), key=OTHER), "signature"),
        (token(good(), header={"alg": "RS256", "kid": "unknown"}), "key the issuer does not publish"),
        (token(good(), header={"alg": "none", "kid": "k1"}), "not accepted"),
        (token(good(), header={"alg": "HS256", "kid": "k1"}), "not accepted"),
        ("not-a-jwt", "not a signed JWT"),
        ("a.b.c", "malformed"),
    ],
)
def test_wrong_tokens_are_refused_precisely(bad: str, why: str) -> None:
    with pytest.raises(LoginRefused, match=why):
        provider().authenticate({"id_token": bad})


def test_a_tampered_payload_is_refused() -> None:
    head, _, sig = token(good()).split(".")
    forged = b64(json.dumps(good(groups=["security"])).encode())
    with pytest.raises(LoginRefused, match="signature"):
        provider().authenticate({"id_token": f"{head}.{forged}.{sig}"})


def test_a_token_is_accepted_once() -> None:
    p = provider()
    t = token(good())
    p.authenticate({"id_token": t})
    with pytest.raises(LoginRefused, match="already used"):
        p.authenticate({"id_token": t})


def test_plain_http_issuers_only_on_this_machine() -> None:
    with pytest.raises(ProviderUnavailable, match="https"):
        OidcProvider(OidcConfig("http://id.example.test", "moorage"), fetch=fetch)
    OidcProvider(OidcConfig("http://127.0.0.1:8080", "moorage"), fetch=fetch)


def test_the_device_flow_polls_and_refuses_a_spent_code() -> None:
    answers = [{"error": "authorization_pending"}, {"error": "slow_down"}, {"id_token": "T"}]
    shown: list[str] = []

    def idp(url: str, data: Any = None) -> Any:
        if url.endswith("/device/auth"):
            return {
                "device_code": "d",
                "user_code": "ABCD-EFGH",
                "verification_uri": ISSUER + "/device",
                "expires_in": 600,
                "interval": 0,
            }
        if url.endswith("/token"):
            return answers.pop(0)
        return fetch(url, data)

    assert (
        device_login(ISSUER, "moorage", "openid", lambda u, c, x: shown.append(c), idp, lambda s: None) == "T"
    )
    assert shown == ["ABCD-EFGH"]
    answers[:] = [{"error": "invalid_grant", "error_description": "grant request is invalid"}]
    with pytest.raises(LoginRefused, match="invalid_grant"):
        device_login(ISSUER, "moorage", "openid", lambda u, c, x: None, idp, lambda s: None)
