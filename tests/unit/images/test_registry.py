"""The registry client's token flow, against a local server."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from moorage.images.registry import Registry, RegistryError


class _Handler(BaseHTTPRequestHandler):
    manifest = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}'
    seen: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.path.startswith("/token"):
            self.seen.append(self.path)
            ok = self.headers.get("Authorization") == "Basic dTpw"  # u:p
            body = json.dumps({"token": "T0K"}).encode() if ok else b"{}"
            self.send_response(200 if ok else 401)
        elif self.headers.get("Authorization") != "Bearer T0K":
            body = b'{"errors":[{"code":"UNAUTHORIZED"}]}'
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{port}/token",'
                             f'service="reg",scope="repository:app:pull"')  # fmt: skip
        else:
            body = self.manifest
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_bearer_token_flow_with_basic_credentials(server: str) -> None:
    m = Registry(server, username="u", password="p").get_manifest("app", "1")
    assert m.digest == "sha256:" + hashlib.sha256(_Handler.manifest).hexdigest()
    assert any("scope=repository%3Aapp%3Apull" in p and "service=reg" in p for p in _Handler.seen)
    with pytest.raises(RegistryError, match="refused 'repository:app:pull'"):
        Registry(server, username="u", password="wrong").get_manifest("app", "1")
