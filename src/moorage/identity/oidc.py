"""OpenID Connect: the gateway verifies ID tokens; the CLI gets them with the device
authorization grant (RFC 8628), the flow for terminals.

Verification follows OpenID Connect Core 3.1.3.7: the issuer must be the one
configured (and discovery's), the audience must hold our client id (and ``azp``
be it when there are several), the signature must verify with a key from the
issuer's JWKS for an asymmetric algorithm (never ``none``, never HMAC), and
``exp``/``iat``/``nbf`` must hold, with 60 s of leeway. A token is accepted once:
a replayed one is refused.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from moorage.identity.interface import Identity, IdentityProvider, LoginRefused, ProviderUnavailable

__all__ = [
    "CodeFlow",
    "OidcConfig",
    "OidcProvider",
    "device_login",
    "fetch_json",
    "finish_code_flow",
    "start_code_flow",
]

LEEWAY = 60
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
Fetch = Callable[..., Any]  # (url) for a GET, (url, form) for a POST


def fetch_json(url: str, data: Mapping[str, str] | None = None, timeout: float = 10) -> Any:
    """GET (or form-POST) ``url`` and decode its JSON; ProviderUnavailable on failure.
    An OAuth error answer (4xx with ``error``) is returned as it is."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            doc = json.loads(exc.read())
        except ValueError:
            doc = None
        if isinstance(doc, dict) and "error" in doc:
            return doc
        raise ProviderUnavailable(f"{url} answered {exc.code}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ProviderUnavailable(f"cannot ask the OpenID provider at {url}: {exc}") from exc


def _check_url(issuer: str) -> None:
    """https, or http to this machine only (tests and local providers)."""
    url = urllib.parse.urlparse(issuer)
    if url.scheme == "https":
        return
    host = url.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if url.scheme != "http" or not loopback:
        raise ProviderUnavailable(f"the issuer {issuer} must use https (http only on this machine)")


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _int(part: str) -> int:
    return int.from_bytes(_b64(part), "big")


@dataclass(frozen=True)
class OidcConfig:
    """Which OpenID provider to trust, as whom, and where its tokens put user and groups."""

    issuer: str
    client_id: str
    scope: str = "openid profile"
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"


class OidcProvider(IdentityProvider):
    """Logs people in with an ID token from an OpenID provider, checked against the
    provider's published keys, once (a replayed token is refused)."""

    name = "oidc"

    def __init__(
        self,
        config: OidcConfig,
        fetch: Fetch = fetch_json,
        clock: Callable[[], float] = time.time,
        spend: Callable[[str, float], bool] | None = None,
    ) -> None:
        """``spend(digest, expiry)``: True the first time a token is presented, False on
        a replay. Shared by every gateway worker (the certificate store's); without
        it, this process's memory."""
        _check_url(config.issuer)
        self.config = config
        self.fetch = fetch
        self.clock = clock
        self._meta: dict[str, Any] | None = None
        self._keys: dict[str, Any] = {}
        self._used: dict[str, float] = {}  # token digest -> its expiry
        self.spend = spend or self._spend_here
        self._lock = threading.Lock()

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, fetched once; it must name the configured issuer."""
        if self._meta is None:
            doc = self.fetch(self.config.issuer.rstrip("/") + "/.well-known/openid-configuration")
            if not isinstance(doc, dict) or doc.get("issuer") != self.config.issuer:
                raise ProviderUnavailable(
                    f"the discovery document of {self.config.issuer} names another issuer"
                )
            for key in ("jwks_uri", "token_endpoint"):
                _check_url(str(doc.get(key, "")))
            self._meta = doc
        return self._meta

    def _key(self, kid: str | None, alg: str) -> Any:
        if kid not in self._keys:  # a key we don't know yet: the issuer may have rotated
            doc = self.fetch(str(self.metadata()["jwks_uri"]))
            keys = doc.get("keys") if isinstance(doc, dict) else None
            if not isinstance(keys, list):
                raise ProviderUnavailable("the issuer's JWKS holds no keys")
            self._keys = {str(k.get("kid")): k for k in keys if isinstance(k, dict)}
        jwk = self._keys.get(str(kid))
        if jwk is None:
            raise LoginRefused("the ID token is signed with a key the issuer does not publish")
        if alg.startswith(("RS", "PS")) and jwk.get("kty") == "RSA":
            return rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
        if alg == "ES256" and jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
            return ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]), ec.SECP256R1()).public_key()
        raise LoginRefused(f"the ID token's algorithm {alg} does not match its key")

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid ID token for us; LoginRefused saying what is wrong."""
        parts = token.split(".")
        if len(parts) != 3:
            raise LoginRefused("the ID token is not a signed JWT (header.payload.signature)")
        try:
            header = json.loads(_b64(parts[0]))
            claims = json.loads(_b64(parts[1]))
            signature = _b64(parts[2])
        except (ValueError, UnicodeDecodeError) as exc:
            raise LoginRefused(f"the ID token is malformed: {exc}") from exc
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise LoginRefused("the ID token is malformed")
        alg = str(header.get("alg"))
        hashes_of = {
            "RS256": hashes.SHA256(),
            "RS384": hashes.SHA384(),
            "RS512": hashes.SHA512(),
            "PS256": hashes.SHA256(),
            "ES256": hashes.SHA256(),
        }
        if alg not in hashes_of:
            raise LoginRefused(f"the ID token's algorithm {alg!r} is not accepted (RS256, PS256, ES256, …)")
        key = self._key(header.get("kid"), alg)
        signed = f"{parts[0]}.{parts[1]}".encode()
        try:
            if alg == "ES256":
                if len(signature) != 64:
                    raise InvalidSignature
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
            elif alg.startswith("PS"):
                key.verify(
                    signature,
                    signed,
                    padding.PSS(padding.MGF1(hashes_of[alg]), padding.PSS.DIGEST_LENGTH),
                    hashes_of[alg],
                )
            else:
                key.verify(signature, signed, padding.PKCS1v15(), hashes_of[alg])
        except InvalidSignature as exc:
            raise LoginRefused(
                "the ID token's signature does not verify: it was altered or not signed by the issuer"
            ) from exc
        if claims.get("iss") != self.config.issuer:
            raise LoginRefused(
                f"the ID token was issued by {claims.get('iss')!r}, not by {self.config.issuer}"
            )
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.config.client_id not in audiences:
            raise LoginRefused(
                f"the ID token is for {aud!r}, not for Moorage's client {self.config.client_id}"
            )
        if len(audiences) > 1 and claims.get("azp") != self.config.client_id:
            raise LoginRefused("the ID token has several audiences and its azp is not Moorage's client")
        now = self.clock()
        try:
            exp = float(claims["exp"])
            iat = float(claims.get("iat", now))
            nbf = float(claims.get("nbf", now))
        except (KeyError, TypeError, ValueError) as exc:
            raise LoginRefused("the ID token has no valid exp") from exc
        if now > exp + LEEWAY:
            raise LoginRefused("the ID token has expired: log in again")
        if iat > now + LEEWAY or nbf > now + LEEWAY:
            raise LoginRefused("the ID token is not valid yet (is this machine's clock right?)")
        if not self.spend(hashlib.sha256(token.encode()).hexdigest(), exp + LEEWAY):
            raise LoginRefused("this ID token was already used: log in again")
        return claims

    def _spend_here(self, digest: str, until: float) -> bool:
        now = self.clock()
        with self._lock:
            self._used = {d: e for d, e in self._used.items() if e > now}
            if digest in self._used:
                return False
            self._used[digest] = until
            return True

    def authenticate(self, credentials: Mapping[str, Any]) -> Identity:
        token = credentials.get("id_token")
        if not isinstance(token, str) or not token:
            raise LoginRefused("send the ID token from the device flow (moorage login --oidc)")
        claims = self.verify(token)
        sub = str(claims.get("sub") or "")
        if not sub:
            raise LoginRefused("the ID token has no subject (sub)")
        user = str(claims.get(self.config.username_claim) or claims.get("email") or sub)
        groups = claims.get(self.config.groups_claim) or []
        groups = tuple(sorted(str(g) for g in groups)) if isinstance(groups, list) else (str(groups),)
        return Identity("oidc", f"{self.config.issuer}#{sub}", user, groups, claims)

    def lookup(self, subject: str) -> Identity | None:
        """OpenID providers have no lookup for Moorage: people are checked at each login."""
        raise ProviderUnavailable("an OpenID provider can't be asked about a person between logins")


def device_login(
    issuer: str,
    client_id: str,
    scope: str,
    show: Callable[[str, str, str], None],
    fetch: Callable[..., Any] = fetch_json,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Run the device authorization grant; ``show(uri, code, uri_complete)`` tells the
    person where to approve. Returns the ID token."""
    _check_url(issuer)
    meta = fetch(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if (
        not isinstance(meta, dict)
        or meta.get("issuer") != issuer
        or "device_authorization_endpoint" not in meta
    ):
        raise ProviderUnavailable(f"{issuer} offers no device authorization (RFC 8628)")
    start = fetch(str(meta["device_authorization_endpoint"]), {"client_id": client_id, "scope": scope})
    if not isinstance(start, dict) or "device_code" not in start:
        raise LoginRefused(f"the OpenID provider refused to start a login: {start}")
    show(
        str(start.get("verification_uri", "")),
        str(start.get("user_code", "")),
        str(start.get("verification_uri_complete", "")),
    )
    interval = float(start.get("interval", 5))
    deadline = time.monotonic() + float(start.get("expires_in", 600))
    while time.monotonic() < deadline:
        sleep(interval)
        answer = fetch(
            str(meta["token_endpoint"]),
            {"client_id": client_id, "grant_type": DEVICE_GRANT, "device_code": str(start["device_code"])},
        )
        error = answer.get("error") if isinstance(answer, dict) else "invalid_response"
        if error is None and isinstance(answer.get("id_token"), str):
            return str(answer["id_token"])
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5
            continue
        if error in ("expired_token", "access_denied", "invalid_grant"):
            raise LoginRefused(f"the login was not approved: {error} ({answer.get('error_description', '')})")
        raise LoginRefused(f"the OpenID provider answered {answer}")
    raise LoginRefused("the login was not approved in time: run moorage login --oidc again")


@dataclass(frozen=True)
class CodeFlow:
    """The authorization code flow with PKCE (RFC 7636, S256) for a browser (the
    console): ``url`` to send the person to; ``state``, ``nonce`` and ``verifier`` to
    keep until the redirect comes back."""

    url: str
    state: str
    nonce: str
    verifier: str


def start_code_flow(provider: OidcProvider, redirect_uri: str) -> CodeFlow:
    """Begin a browser login: the authorization URL, with fresh state, nonce and PKCE verifier."""
    meta = provider.metadata()
    endpoint = str(meta.get("authorization_endpoint", ""))
    _check_url(endpoint)
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": provider.config.client_id,
            "redirect_uri": redirect_uri,
            "scope": provider.config.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return CodeFlow(f"{endpoint}?{query}", state, nonce, verifier)


def finish_code_flow(
    provider: OidcProvider, flow: CodeFlow, redirect_uri: str, params: Mapping[str, str]
) -> Identity:
    """The identity behind the redirect's ``params`` (``code``, ``state``), or LoginRefused."""
    if params.get("error"):
        raise LoginRefused(f"the OpenID provider refused the login: {params.get('error')}")
    if not secrets.compare_digest(str(params.get("state", "")), flow.state):
        raise LoginRefused("the login's state does not match: start again")
    answer = provider.fetch(
        str(provider.metadata()["token_endpoint"]),
        {
            "grant_type": "authorization_code",
            "code": str(params.get("code", "")),
            "redirect_uri": redirect_uri,
            "client_id": provider.config.client_id,
            "code_verifier": flow.verifier,
        },
    )
    token = answer.get("id_token") if isinstance(answer, dict) else None
    if not isinstance(token, str):
        raise LoginRefused(f"the OpenID provider gave no ID token: {answer}")
    who = provider.authenticate({"id_token": token})
    if who.claims.get("nonce") != flow.nonce:
        raise LoginRefused("the ID token's nonce is not this login's")
    return who
