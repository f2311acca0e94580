from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from moorage.lab import images


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_CACHE", str(tmp_path / "cache"))


def test_archive_is_docker_save_format_and_deterministic(tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w") as tar:
        info = tarfile.TarInfo("hello")
        tar.addfile(info)
    a = images.write_archive(layer, "x/y:1", {"Cmd": ["sh"]}, tmp_path / "a.tar")
    b = images.write_archive(layer, "x/y:1", {"Cmd": ["sh"]}, tmp_path / "b.tar")
    assert a.image_id == b.image_id
    with tarfile.open(a.path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config_bytes = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
        layer_bytes = tar.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == ["x/y:1"]
    # the image ID is the config's digest, and the config names the layer's digest
    assert a.image_id == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    assert json.loads(config_bytes)["rootfs"]["diff_ids"] == [diff_id]


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox-static not installed")
def test_busybox_image_is_cached_and_complete() -> None:
    first = images.build_busybox()
    again = images.build_busybox()
    assert first == again
    assert images.build_busybox(rebuild=True).image_id == first.image_id
    with tarfile.open(first.path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        inner = tar.extractfile(manifest[0]["Layers"][0])
        assert inner is not None
        with tarfile.open(fileobj=inner) as layer:
            names = set(layer.getnames())
            assert layer.getmember("bin/sh").linkname == "/bin/busybox"
    assert {"bin/busybox", "bin/sh", "etc/passwd", "tmp"} <= names


def test_apt_mirror_reads_deb822_and_skips_security(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "sources.list.d"
    src.mkdir()
    (src / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example.invalid/debian-security\n\n"
        "Types: deb\nURIs: http://mirror.example.invalid/debian\nSuites: bookworm\n"
    )
    real = Path

    def fake_path(p: str) -> Path:
        if p == "/etc/apt/sources.list":
            return real(tmp_path / "none")
        if p == "/etc/apt/sources.list.d":
            return real(src)
        return real(p)

    monkeypatch.setattr(images, "Path", fake_path)
    assert images.apt_mirror() == "http://mirror.example.invalid/debian"


def test_apt_mirror_missing_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "Path", lambda p: Path(tmp_path / "nothing" / str(p).lstrip("/")))
    with pytest.raises(images.ImageBuildError, match="--mirror"):
        images.apt_mirror()
