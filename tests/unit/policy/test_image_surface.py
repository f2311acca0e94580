"""images.surface: the schema, needs, and the five rules on ImageFacts (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from moorage.policy.decision import Facts, Request, evaluate
from moorage.policy.documents import PolicyError
from moorage.policy.loader import PolicySet, load_folder
from moorage.policy.needs import needs
from moorage.policy.rules.image_surface import SURFACE_CHECKS, base_allowed
from moorage.policy.rules.image_trust import ImageFacts, needs_trust
from moorage.policy.schema import ImagesSpec, Surface

DOC = """\
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: pci}
spec:
  scope: {labels: {moorage.class: pci}}
  images:
    surface:
SURFACE"""
ALL = """\
      shells: forbid
      packageManagers: forbid
      maxPackages: 2
      maxSize: 200m
      bases: ["debian:bookworm*", "registry.local/base/*"]
"""
WHO: dict[str, Any] = {"user": "alice", "teams": ("payments",)}
PCI = {"Image": "app:1", "Labels": {"moorage.class": "pci"}}
MIB = 1 << 20
CLEAN = ImageFacts("app:1", "sha256:" + "a" * 64, scanned=True, size=10 * MIB, base="debian:bookworm-slim",
                   base_via="layers", packages=(("libc6", "2.36", "pkg:deb/debian/libc6@2.36", "/var/lib/dpkg/status"),))  # fmt: skip


def _load(tmp_path: Path, surface: str = ALL) -> PolicySet:
    (tmp_path / "pci.yaml").write_text(DOC.replace("SURFACE", surface))
    return load_folder(tmp_path)


def _rules(pset: PolicySet, facts: ImageFacts, body: dict[str, Any] | None = None) -> list[str]:
    decision = evaluate(
        pset, Request("container.create", body or PCI, **WHO), Facts(image_reports={"app:1": facts})
    )
    return [v.finding.rule for v in decision.denials]


# ----------------------------------------------------------------------- schema
def test_the_section_loads_with_its_camel_case_keys(tmp_path: Path) -> None:
    doc = _load(tmp_path).documents[0]
    surface = doc.spec.images.surface if doc.spec.images else None
    assert surface == Surface("forbid", "forbid", 2, "200m", ["debian:bookworm*", "registry.local/base/*"])
    assert msgspec.to_builtins(surface)["packageManagers"] == "forbid"


@pytest.mark.parametrize(
    ("surface", "expected"),
    [
        ("      maxPackages: -1\n", "spec.images.surface.maxPackages"),
        ("      maxSize: huge\n", "spec.images.surface.maxSize"),
        ("      shells: no\n", "spec.images.surface.shells"),
        ("      shell: forbid\n", "shell"),
        ("      bases: []\n", "spec.images.surface.bases"),
        ("      maxPackages: 1.5\n", "spec.images.surface.maxPackages"),
    ],
)
def test_bad_values_are_refused_at_load(tmp_path: Path, surface: str, expected: str) -> None:
    with pytest.raises(PolicyError) as err:
        _load(tmp_path, surface)
    assert expected in str(err.value), err.value


def test_an_empty_surface_counts_as_absent_and_any_setting_asks_for_a_scan(tmp_path: Path) -> None:
    assert not needs_trust(ImagesSpec(surface=Surface()))
    assert needs_trust(ImagesSpec(surface=Surface(max_packages=0)))
    got = needs(_load(tmp_path, "      maxPackages: 0\n"), Request("container.create", PCI, **WHO))
    assert got.trust is not None and got.trust.scan
    # a request outside the class needs nothing
    assert needs(_load(tmp_path), Request("container.create", {"Image": "app:1"}, **WHO)).trust is None


# ------------------------------------------------------------------------ rules
def test_a_clean_image_passes_and_only_the_class_is_judged(tmp_path: Path) -> None:
    pset = _load(tmp_path)
    assert _rules(pset, CLEAN) == []
    fat = ImageFacts("app:1", scanned=True, shells=("/bin/sh",), size=10**10)
    assert _rules(pset, fat, {"Image": "app:1"}) == []  # no moorage.class label: not in scope


def test_every_rule_names_the_field_the_value_and_a_fix(tmp_path: Path) -> None:
    pset = _load(tmp_path)
    pkgs = tuple((f"p{i}", "1", f"pkg:deb/debian/p{i}@1", "/var/lib/dpkg/status") for i in range(3))
    fat = ImageFacts("app:1", scanned=True, packages=pkgs, size=300 * MIB, base="ubuntu:22.04",
                     shells=("/bin/sh", "/bin/busybox", "bash 5.2 (deb)"),
                     package_managers=("/usr/bin/apt", "pip 23.0 (pypi)"))  # fmt: skip
    decision = evaluate(pset, Request("container.create", PCI, **WHO), Facts(image_reports={"app:1": fat}))
    found = {v.finding.rule: v.finding for v in decision.denials}
    assert list(found) == [rule for rule, _ in SURFACE_CHECKS]
    assert all(f.path == "Image" and f.fix for f in found.values())
    shell = found["images.surface.shell"]
    assert shell.value == "/bin/sh" and "/bin/busybox" in shell.message and "bash 5.2 (deb)" in shell.message
    assert "distroless" in shell.fix
    assert found["images.surface.package-manager"].value == "/usr/bin/apt"
    assert (
        found["images.surface.packages"].value == 3
        and "maxPackages 2" in found["images.surface.packages"].message
    )
    assert (
        found["images.surface.size"].value == 300 * MIB
        and "300.0 MiB" in found["images.surface.size"].message
    )
    base = found["images.surface.base"]
    assert base.value == "ubuntu:22.04" and "debian:bookworm*" in base.fix


def test_a_service_names_its_field_path(tmp_path: Path) -> None:
    pset = _load(tmp_path, "      shells: forbid\n")
    body = {"Labels": {"moorage.class": "pci"}, "TaskTemplate": {"ContainerSpec": {"Image": "app:1"}}}
    facts = ImageFacts("app:1", scanned=True, shells=("/usr/bin/dash",))
    decision = evaluate(pset, Request("service.create", body, **WHO), Facts(image_reports={"app:1": facts}))
    [v] = decision.denials
    assert (v.finding.rule, v.finding.path, v.finding.value) == (
        "images.surface.shell", "TaskTemplate.ContainerSpec.Image", "/usr/bin/dash")  # fmt: skip


def test_allow_is_the_same_as_absent(tmp_path: Path) -> None:
    pset = _load(tmp_path, "      shells: allow\n      packageManagers: allow\n")
    assert (
        _rules(pset, ImageFacts("app:1", scanned=True, shells=("/bin/sh",), package_managers=("/bin/apk",)))
        == []
    )


def test_what_is_not_known_fails_closed(tmp_path: Path) -> None:
    pset = _load(tmp_path)
    unknown = ImageFacts("app:1", scanned=True, base_via="it has no base label and no tagged local image...")
    decision = evaluate(
        pset, Request("container.create", PCI, **WHO), Facts(image_reports={"app:1": unknown})
    )
    found = {v.finding.rule: v.finding for v in decision.denials}
    assert set(found) == {"images.surface.size", "images.surface.base"}
    assert found["images.surface.base"].message.startswith("the base image is not known")
    assert "org.opencontainers.image.base.name" in found["images.surface.base"].fix
    assert found["images.surface.size"].message == "the image's size is not known"
    # an image that was not read at all: every set rule says so
    unread = ImageFacts("app:1", size=1, base="debian:bookworm")
    assert _rules(pset, unread) == [
        "images.surface.shell",
        "images.surface.package-manager",
        "images.surface.packages",
    ]


def test_an_image_that_could_not_be_checked_is_unscanned_only(tmp_path: Path) -> None:
    pset = _load(tmp_path)
    assert _rules(pset, ImageFacts("app:1", error="registry unreachable")) == ["images.unscanned"]
    decision = evaluate(pset, Request("container.create", PCI, **WHO), Facts())
    assert [v.finding.rule for v in decision.denials] == ["images.unscanned"]


def test_a_base_matches_by_any_of_its_names_and_forms() -> None:
    assert base_allowed(("docker.io/library/debian:bookworm-slim",), ["debian:bookworm*"])
    assert base_allowed(("debian:bookworm",), ["docker.io/library/debian:bookworm"])
    assert base_allowed(("debian:bookworm@sha256:" + "1" * 64,), ["debian:bookworm"])
    assert base_allowed(("registry.local/base/java:21",), ["registry.local/base/*"])
    assert base_allowed(("Registry.Local/base/java:21",), ["registry.local/BASE/*"])
    assert base_allowed(("debian:12",), ["debian"])  # no tag in the pattern: every tag
    assert base_allowed(("evil:1", "debian:bookworm"), ["debian:bookworm"])  # another tag of the same image
    assert not base_allowed(("debian:bullseye",), ["debian:bookworm*"])
    assert not base_allowed(("registry.local/other/java:21",), ["registry.local/base/*"])
    assert not base_allowed(("evil.example/debian:bookworm",), ["debian:bookworm*"])


def test_a_labelled_base_is_named_as_from_its_label(tmp_path: Path) -> None:
    pset = _load(tmp_path, '      bases: ["debian:*"]\n')
    facts = ImageFacts("app:1", scanned=True, base="ubuntu:22.04", base_via="label")
    decision = evaluate(pset, Request("container.create", PCI, **WHO), Facts(image_reports={"app:1": facts}))
    [v] = decision.denials
    assert "org.opencontainers.image.base.name label" in v.finding.message
