"""The scanner through its seams: any VulnerabilitySource, findings cached by its version."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from moorage.images.catalogers.interface import Inventory
from moorage.images.ignore import IgnoreEntry
from moorage.images.interface import ImageSource, Layer, ResolvedImage
from moorage.images.scanner import Scanner
from moorage.images.vulns.choice import VulnerabilitySourceChoice
from moorage.images.vulns.interface import (
    DBStatus,
    Finding,
    Matches,
    VulnerabilitySource,
    VulnSourceError,
)
from moorage.images.vulns.osv import OsvDatabase
from tests.unit.images.samples import dist_info, tar_layer


class _Image(ResolvedImage):
    reference, digest, image_id, repo_digests, config = "app:1", "sha256:d", "sha256:i", (), {}

    def layers(self) -> list[Layer]:
        return [tar_layer([("site/idna-3.6.dist-info/METADATA", dist_info("idna", "3.6"))])]


class _Source(ImageSource):
    name = "fake"

    @contextlib.contextmanager
    def resolve(self, reference: str) -> Iterator[ResolvedImage]:
        yield _Image()


class _Vulns(VulnerabilitySource):
    """Answers one finding per package; counts its queries."""

    name: ClassVar[str] = "fake"

    def __init__(self, version: str) -> None:
        self._version = version
        self.queries = 0

    def exists(self) -> bool:
        return True

    @property
    def version(self) -> str:
        return self._version

    @property
    def built_at(self) -> float:
        return 1.0

    def status(self) -> DBStatus:
        return DBStatus(Path("-"), self._version, 1.0, (), (), 0)

    def query(self, inventory: Inventory) -> Matches:
        self.queries += 1
        return Matches(
            tuple(
                Finding(f"V-{p.name}", p.name, p.version, p.ecosystem, "high", None, None)
                for p in inventory.packages
            ),
            ("one warning",),
        )

    def update(
        self, source: str, progress: Callable[[int, int], None] | None = None, now: float | None = None
    ) -> DBStatus:
        return self.status()


def test_any_source_plugs_in_and_findings_are_cached_by_its_version(tmp_path: Path) -> None:
    vulns = _Vulns("v1")
    scanner = Scanner(tmp_path, vulns)
    first = scanner.scan(_Source(), "app:1")
    assert [f.id for f in first.findings] == ["V-idna"] and "one warning" in first.warnings
    assert not first.cached and first.db_version == "v1"
    again = scanner.scan(_Source(), "app:1", [IgnoreEntry("V-idna", "accepted", dt.date(2999, 1, 1))])
    assert again.cached and vulns.queries == 1 and again.active == ()
    vulns._version = "v2"  # a database update matches again, without reading layers again
    assert not scanner.scan(_Source(), "app:1").cached and vulns.queries == 2


def test_without_a_source_scanning_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(VulnSourceError, match="run moorage db update"):
        Scanner(tmp_path).scan(_Source(), "app:1")
    assert Scanner(tmp_path).inventory(_Source(), "app:1")[0].packages[0].name == "idna"


def test_sources_are_picked_by_name(tmp_path: Path) -> None:
    source = VulnerabilitySourceChoice.OSV.to_source(tmp_path / "v.sqlite")
    assert isinstance(source, OsvDatabase) and source.name == "osv" and not source.exists()
