"""The OCI layout source: an index, platform selection, and a clear error for a missing platform."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from moorage.images.catalogers.catalog import wanted
from moorage.images.interface import SourceError
from moorage.images.layers import apply_layers
from moorage.images.sources.choice import SourceChoice
from moorage.images.sources.oci import OciLayoutSource


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
    with pytest.raises(SourceError, match="has no image for linux/arm64"), \
            OciLayoutSource(tmp_path, "linux/arm64").resolve("1.0"):  # fmt: skip
        pass


def test_a_source_is_chosen_by_name_or_by_what_the_target_is(tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    archive.write_bytes(b"")
    assert SourceChoice.for_target(str(tmp_path)) is SourceChoice.OCI
    assert SourceChoice.for_target(str(archive)) is SourceChoice.ARCHIVE
    assert SourceChoice.for_target("busybox:1.36") is SourceChoice.ENGINE

    def no_engine() -> object:
        raise AssertionError("only the engine source needs an engine")

    source, ref = SourceChoice.OCI.to_source(str(tmp_path), "linux/arm64", no_engine)
    assert isinstance(source, OciLayoutSource) and source.platform == "linux/arm64" and ref == ""
    source, ref = SourceChoice.REGISTRY.to_source("reg.test/app:1", None, no_engine)
    assert source.name == "registry" and ref == "reg.test/app:1"
    source, ref = SourceChoice.ENGINE.to_source("app:1", None, lambda: "client")
    assert source.name == "engine" and ref == "app:1"
