"""`moorage up --listen` takes what DOCKER_HOST and dockerd -H take."""

from __future__ import annotations

import pytest

from moorage.cli.up import listen_path


def test_unix_urls_and_paths() -> None:
    assert listen_path("unix:///tmp/x.sock") == "/tmp/x.sock"
    assert listen_path("/run/moorage/docker.sock") == "/run/moorage/docker.sock"
    assert listen_path("relative.sock") == "relative.sock"


@pytest.mark.parametrize("bad", ["tcp://127.0.0.1:2375", "unix://relative.sock", "npipe:////./pipe/docker"])
def test_other_schemes_are_errors(bad: str) -> None:
    with pytest.raises(ValueError, match="--listen"):
        listen_path(bad)
