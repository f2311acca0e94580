"""A small OCI Distribution API client: manifests, blobs, and token auth.

Authentication follows the registry token protocol: a ``401`` with
``WWW-Authenticate: Bearer realm=…,service=…,scope=…`` sends the client to the
realm for a token (with basic credentials when it has some), and the request is
retried with ``Authorization: Bearer``. A ``Basic`` challenge is answered with the
credentials directly. Credentials come from the constructor or from the Docker
CLI's ``config.json`` ``auths`` (plain ``auth`` entries; credential helpers are not
run).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import ipaddress
import json
import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode, urlsplit

from moorage.images.interface import SourceError

__all__ = ["MANIFEST_TYPES", "Manifest", "Registry", "RegistryError"]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
"""Media type of a Docker image manifest (schema 2)."""
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
"""Media type of a Docker manifest list (multi-platform)."""
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
"""Media type of an OCI image manifest."""
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
"""Media type of an OCI image index (multi-platform)."""
MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
"""The manifest types Moorage asks a registry for, most preferred first."""
MAX_MANIFEST = 4 << 20
"""The largest manifest read; registries cap theirs at 4 MiB too."""


class RegistryError(SourceError):
    """The registry refused, could not be reached, or answered something malformed."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry served it: the bytes (which its digest covers), type and digest."""

    raw: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        """The manifest parsed; :class:`RegistryError` when it is not a JSON object."""
        try:
            doc = json.loads(self.raw)
        except ValueError as exc:
            raise RegistryError(f"manifest {self.digest} is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise RegistryError(f"manifest {self.digest} is not a JSON object")
        return doc


def _is_local(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _docker_auths() -> dict[str, Any]:
    cfg = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
    try:
        doc = json.loads(cfg.read_text())
    except (OSError, ValueError):
        return {}
    auths = doc.get("auths") if isinstance(doc, dict) else None
    return auths if isinstance(auths, dict) else {}


class Registry:
    """One registry host. ``scheme`` defaults to https, and to http for loopback
    hosts (as the Docker engine treats ``localhost`` registries as insecure)."""

    def __init__(
        self,
        host: str,
        *,
        scheme: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.scheme = scheme or ("http" if _is_local(host) else "https")
        self.tls = tls
        self.timeout = timeout
        if username is None:
            entry = _docker_auths().get(host) or _docker_auths().get(f"{self.scheme}://{host}") or {}
            if isinstance(entry, dict) and entry.get("auth"):
                try:
                    username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    username = None
        self.username, self.password = username, password
        self._tokens: dict[str, str] = {}

    # ------------------------------------------------------------- transport
    def _conn(self, scheme: str, host: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(host, timeout=self.timeout, context=self.tls)
        return http.client.HTTPConnection(host, timeout=self.timeout)

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | IO[bytes] | None = None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        parts = urlsplit(url)
        conn = self._conn(parts.scheme, parts.netloc)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(method, path, body=body, headers=headers)
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise RegistryError(f"cannot reach the registry {parts.netloc}: {exc}") from exc

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send one request to ``/v2/…``, authenticating once if challenged. The
        caller reads the response and closes the connection."""
        url = path if "://" in path else f"{self.scheme}://{self.host}{path}"
        for attempt in range(2):
            hdrs = dict(headers or {})
            auth = self._tokens.get(scope)
            if auth:
                hdrs["Authorization"] = auth
            conn, resp = self._send(method, url, hdrs, body)
            if resp.status != 401 or attempt == 1:
                return conn, resp
            challenge = resp.getheader("WWW-Authenticate", "")
            resp.read()
            conn.close()
            self._tokens[scope] = self._authenticate(challenge, scope)
        raise AssertionError("unreachable")

    def _authenticate(self, challenge: str, scope: str) -> str:
        kind, _, params_text = challenge.partition(" ")
        params = dict(re.findall(r'(\w+)="([^"]*)"', params_text))
        if kind.lower() == "basic":
            if self.username is None:
                raise RegistryError(
                    f"the registry {self.host} needs a login: run docker login {self.host}", 401
                )
            cred = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            return f"Basic {cred}"
        if kind.lower() != "bearer" or "realm" not in params:
            raise RegistryError(
                f"the registry {self.host} sent an authentication challenge this client "
                f"doesn't understand: {challenge!r}",
                401,
            )
        query = {"scope": scope}
        if params.get("service"):
            query["service"] = params["service"]
        headers = {}
        if self.username is not None:
            cred = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {cred}"
        realm = params["realm"]
        conn, resp = self._send("GET", f"{realm}?{urlencode(query)}", headers)
        try:
            raw = resp.read(1 << 20)
        finally:
            conn.close()
        if resp.status != 200:
            raise RegistryError(f"the token service {realm} refused {scope!r}: {resp.status}", 401)
        try:
            doc = json.loads(raw)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"the token service {realm} answered without a token", 401)
        return f"Bearer {token}"

    # ---------------------------------------------------------------- reads
    def get_manifest(self, repo: str, reference: str) -> Manifest:
        """The manifest ``reference`` (a tag or digest) of ``repo``, checked against its digest."""
        scope = f"repository:{repo}:pull"
        conn, resp = self.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            scope=scope,
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        try:
            raw = resp.read(MAX_MANIFEST + 1)
        finally:
            conn.close()
        if resp.status == 404:
            raise RegistryError(f"{self.host}/{repo}:{reference} was not found in the registry", 404)
        if resp.status != 200:
            raise RegistryError(
                f"{self.host}/{repo}/manifests/{reference}: {resp.status} {raw[:200]!r}", resp.status
            )
        if len(raw) > MAX_MANIFEST:
            raise RegistryError(f"the manifest of {repo}:{reference} is over {MAX_MANIFEST} bytes")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if reference.startswith("sha256:") and reference != digest:
            raise RegistryError(
                f"the registry answered {repo}@{reference} with content whose digest is {digest}"
            )
        ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip()
        if ctype not in MANIFEST_TYPES:
            with contextlib.suppress(ValueError, AttributeError):
                ctype = str(json.loads(raw).get("mediaType") or ctype)
        return Manifest(raw, ctype, digest)

    def head_manifest(self, repo: str, reference: str) -> str | None:
        """The digest ``reference`` points to now, or None when it doesn't exist."""
        conn, resp = self.request(
            "HEAD",
            f"/v2/{repo}/manifests/{reference}",
            scope=f"repository:{repo}:pull",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        resp.read()
        conn.close()
        if resp.status == 404:
            return None
        digest = resp.getheader("Docker-Content-Digest")
        if resp.status != 200 or not digest:
            return self.get_manifest(repo, reference).digest
        return digest

    def open_blob(self, repo: str, digest: str) -> http.client.HTTPResponse:
        """A streaming response for the blob; the caller closes it."""
        url = f"/v2/{repo}/blobs/{digest}"
        for _ in range(3):  # a registry may redirect to storage
            conn, resp = self.request("GET", url, scope=f"repository:{repo}:pull")
            if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                url = resp.getheader("Location") or url
                resp.read()
                conn.close()
                continue
            if resp.status != 200:
                body = resp.read(200)
                conn.close()
                raise RegistryError(f"blob {digest} of {repo}: {resp.status} {body!r}", resp.status)
            return resp
        raise RegistryError(f"blob {digest} of {repo}: too many redirects")

    def get_blob(self, repo: str, digest: str, limit: int = 16 << 20) -> bytes:
        """A blob of at most ``limit`` bytes, checked against its digest."""
        resp = self.open_blob(repo, digest)
        try:
            data = resp.read(limit + 1)
        finally:
            resp.close()
        if len(data) > limit:
            raise RegistryError(f"blob {digest} is over {limit} bytes")
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RegistryError(f"blob {digest} of {repo} does not match its digest")
        return data

    # --------------------------------------------------------------- writes
    def put_blob(self, repo: str, data: bytes) -> str:
        """Upload ``data`` as a blob of ``repo`` (skipped when it is there); its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        scope = f"repository:{repo}:pull,push"
        conn, resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=scope)
        resp.read()
        conn.close()
        if resp.status == 200:
            return digest
        conn, resp = self.request(
            "POST", f"/v2/{repo}/blobs/uploads/", scope=scope, body=b"", headers={"Content-Length": "0"}
        )
        resp.read()
        conn.close()
        location = resp.getheader("Location")
        if resp.status != 202 or not location:
            raise RegistryError(f"starting a blob upload to {repo}: {resp.status}", resp.status)
        if "://" not in location:
            location = f"{self.scheme}://{self.host}{location}"
        sep = "&" if "?" in location else "?"
        conn, resp = self.request(
            "PUT",
            f"{location}{sep}digest={digest}",
            scope=scope,
            body=data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        resp.read()
        conn.close()
        if resp.status != 201:
            raise RegistryError(f"uploading blob {digest} to {repo}: {resp.status}", resp.status)
        return digest

    def put_manifest(self, repo: str, reference: str, raw: bytes, media_type: str) -> str:
        """Push a manifest under ``reference``; the digest the registry gives it."""
        conn, resp = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            scope=f"repository:{repo}:pull,push",
            body=raw,
            headers={"Content-Type": media_type, "Content-Length": str(len(raw))},
        )
        body = resp.read(500)
        conn.close()
        if resp.status != 201:
            raise RegistryError(f"pushing manifest {repo}:{reference}: {resp.status} {body!r}", resp.status)
        return "sha256:" + hashlib.sha256(raw).hexdigest()
