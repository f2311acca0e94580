"""The names a docker load archive writes, read before the engine loads it."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from moorage.admission.errors import ClientError
from moorage.gateway.archive import archive_names


def archive(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_names_from_every_place_an_archive_keeps_them() -> None:
    f = archive({
        "abc/layer.tar": b"x" * 100,
        "manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["team/app:1", "team/app:2"]}]).encode(),
        "repositories": json.dumps({"legacy/app": {"v1": "abc"}}).encode(),
        "index.json": json.dumps({"manifests": [{"annotations": {"io.containerd.image.name": "oci/app:3"}}]}).encode(),
    })  # fmt: skip
    assert archive_names(f) == ["team/app:1", "team/app:2", "legacy/app:v1", "oci/app:3"]
    assert f.tell() == 0  # rewound, ready to be sent on


def test_an_archive_without_names_writes_none() -> None:
    assert archive_names(archive({"manifest.json": b'[{"Config": "c.json", "RepoTags": null}]'})) == []


@pytest.mark.parametrize("data", [b"not a tar at all" * 100, archive({"other.txt": b"x"}).getvalue(),
                                  archive({"manifest.json": b"{nope"}).getvalue()])  # fmt: skip
def test_what_is_not_an_image_archive_is_refused(data: bytes) -> None:
    with pytest.raises(ClientError) as err:
        archive_names(io.BytesIO(data))
    assert err.value.status == 400


def test_the_dockerfile_of_a_build_context() -> None:
    from moorage.gateway.archive import context_dockerfile

    ctx = archive({"./Dockerfile": b"FROM a\n", "sub/Other.df": b"FROM b\n", "app.py": b"x"})
    assert context_dockerfile(ctx, "") == b"FROM a\n"
    assert context_dockerfile(ctx, "sub/Other.df") == b"FROM b\n"
    assert (
        context_dockerfile(archive({"dockerfile": b"FROM c\n"}), "") == b"FROM c\n"
    )  # the engine's fallback
    with pytest.raises(ClientError):
        context_dockerfile(ctx, "missing")
