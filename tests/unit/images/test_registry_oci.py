"""The registry client's token flow and the OCI layout source, against local servers and files."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from moorage.images.catalogers.catalog import wanted
from moorage.images.layers import apply_layers
from moorage.images.registry import Registry, RegistryError
from moorage.images.sources import OciLayoutSource


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


def _blob(root: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def test_oci_layout_with_an_index_and_platform_selection(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n"
        info = tarfile.TarInfo("usr/lib/python3/six-1.16.0.dist-info/METADATA")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layer = _blob(tmp_path, gzip.compress(buf.getvalue()))
    config = _blob(tmp_path, json.dumps({"architecture": "amd64", "os": "linux"}).encode())
    manifest = _blob(tmp_path, json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}]}).encode())  # fmt: skip
    index = _blob(tmp_path, json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
                       "platform": {"os": "linux", "architecture": "riscv64"}}]}).encode())  # fmt: skip
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (tmp_path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", **index,
         "annotations": {"org.opencontainers.image.ref.name": "1.0"}}]}))  # fmt: skip
    with OciLayoutSource(tmp_path, "linux/riscv64").resolve("1.0") as image:
        assert image.digest == index["digest"]
        fs = apply_layers(image.layers(), wanted)
    assert "usr/lib/python3/six-1.16.0.dist-info/METADATA" in fs.files
    from moorage.images.interface import SourceError

    with pytest.raises(SourceError, match="has no image for linux/arm64"), \
            OciLayoutSource(tmp_path, "linux/arm64").resolve("1.0"):  # fmt: skip
        pass
