"""The base image (label, else the engine's images by layer prefix) and the attack
surface ImageGate gathers, against a scripted engine and scanner. No engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

from moorage.admission.image_base import Base, LocalImage, LocalImages, find_base
from moorage.admission.images import ImageGate
from moorage.images.catalogers.interface import Inventory, Package
from moorage.policy.rules.image_trust import ImageFacts

L = tuple(f"sha256:{c * 64}" for c in "123456")
DIGEST = "sha256:" + "d" * 64


def img(
    id_: str, names: tuple[str, ...], layers: tuple[str, ...], digests: tuple[str, ...] = ()
) -> LocalImage:
    return LocalImage(id_, names, layers, digests)


LOCAL = [
    img("sha256:deb", ("debian:bookworm",), L[:2]),
    img("sha256:deb-slim", ("debian:bookworm-slim", "registry.local/base/debian:12"), L[:3]),
    img("sha256:dangling", (), L[:4]),  # no name: never a base
    img("sha256:app", ("app:1",), L[:5]),
]


def test_the_longest_named_prefix_is_the_base_with_all_its_names() -> None:
    base = find_base("sha256:app", L[:5], "", "", LOCAL)
    assert base == Base("debian:bookworm-slim", ("registry.local/base/debian:12",), "layers")
    # an image is never its own base; the one below it is
    assert find_base("sha256:deb-slim", L[:3], "", "", LOCAL).name == "debian:bookworm"


def test_an_image_with_the_same_layers_counts_and_ties_give_every_name() -> None:
    local = [*LOCAL, img("sha256:app-cmd", ("app:cmd",), L[:5])]  # FROM app:1 + CMD: no new layer
    assert find_base("sha256:app-cmd", L[:5], "", "", local) == Base("app:1", (), "layers")
    twins = [img("sha256:a", ("a:1",), L[:2]), img("sha256:b", ("b:1",), L[:2])]
    assert find_base("sha256:x", L[:3], "", "", twins) == Base("a:1", ("b:1",), "layers")


def test_a_base_that_is_not_below_or_not_readable_is_not_known() -> None:
    other = find_base("sha256:x", (L[5],), "", "", LOCAL)
    assert other.name == "" and "no tagged local image" in other.via
    unread = find_base("sha256:x", L[:5], "", "", None)
    assert unread.name == "" and "could not be read" in unread.via
    assert find_base("sha256:x", (), "", "", LOCAL).name == ""  # no layers known


def test_the_label_names_the_base_unless_its_digest_contradicts_it() -> None:
    assert find_base("sha256:x", (L[5],), "debian:bookworm", "", LOCAL) == Base(
        "debian:bookworm", (), "label"
    )
    pinned = find_base("sha256:x", L[:3], "debian:bookworm", DIGEST, None)
    assert pinned == Base(f"debian:bookworm@{DIGEST}", (), "label")
    local = [img("sha256:deb", ("debian:bookworm",), L[:2], (f"debian@{DIGEST}",))]
    assert find_base("sha256:x", L[:3], "debian:bookworm", DIGEST, local).via == "label"
    lie = find_base("sha256:x", (L[5],), "debian:bookworm", DIGEST, local)
    assert lie.name == "" and "not below" in lie.via


class Engine:
    """A scripted engine: ``call`` answers by path and records each call."""

    def __init__(self, images: dict[str, dict[str, Any]], fail: bool = False) -> None:
        self.images, self.fail, self.calls = images, fail, list[str]()

    def call(self, method: str, path: str) -> Any:
        self.calls.append(path)
        if self.fail:
            raise OSError("engine gone")
        if path == "/images/json":
            return [{"Id": d["Id"], "RepoTags": d.get("RepoTags"), "RepoDigests": d.get("RepoDigests")}
                    for d in self.images.values()]  # fmt: skip
        name = unquote(path.removeprefix("/images/").removesuffix("/json"))
        for d in self.images.values():
            if name == d["Id"] or name in (d.get("RepoTags") or []):
                return d
        raise OSError(f"no image {name}")


def _doc(id_: str, tags: list[str], layers: tuple[str, ...], size: int = 0) -> dict[str, Any]:
    return {"Id": id_, "RepoTags": tags, "RepoDigests": [], "RootFS": {"Layers": list(layers)}, "Size": size}


ENGINE = {
    "deb": _doc("sha256:deb", ["debian:bookworm"], L[:2]),
    "none": _doc("sha256:none", ["<none>:<none>"], L[:4]),
    "app": _doc("sha256:app", ["app:1"], L[:3], size=123_456),
}


def test_local_images_are_listed_once_per_ttl_and_inspected_once_per_id() -> None:
    now = [0.0]
    engine = Engine(ENGINE)
    local = LocalImages(engine, ttl=10.0, clock=lambda: now[0])
    got = local.images()
    assert got is not None and [i.names for i in got] == [("debian:bookworm",), ("app:1",)]
    assert engine.calls == ["/images/json", "/images/sha256%3Adeb/json", "/images/sha256%3Aapp/json"]
    now[0] = 5.0
    assert local.images() == got and len(engine.calls) == 3
    now[0] = 11.0
    assert local.images() == got and engine.calls[3:] == ["/images/json"]  # layers kept by id
    assert LocalImages(Engine(ENGINE, fail=True)).images() is None


class Scanner:
    """Answers one inventory; no vulnerability database."""

    db = None

    def __init__(self, inv: Inventory) -> None:
        self.inv = inv

    def inventory(self, source: Any, reference: str) -> tuple[Inventory, bool]:
        return self.inv, True


def test_the_gate_fills_in_the_surface_from_the_scan_and_the_engine(tmp_path: Path) -> None:
    bash = Package("bash", "5.2", "deb", "Debian:12", "pkg:deb/debian/bash@5.2", "/var/lib/dpkg/status")
    inv = Inventory("sha256:app", "sha256:app", None, (bash,), executables=("/bin/sh", "/usr/bin/apt"),
                    size=99, diff_ids=L[:3])  # fmt: skip
    gate = ImageGate(Scanner(inv), Engine(ENGINE))  # type: ignore[arg-type]
    facts = gate._one("container.create", "app:1", [], True).facts
    assert facts.error == "" and facts.scanned
    assert facts.shells == ("/bin/sh", "bash 5.2 (deb)") and facts.package_managers == ("/usr/bin/apt",)
    assert facts.size == 123_456  # the engine's inspect, not the layers' content
    assert (facts.base, facts.base_via) == ("debian:bookworm", "layers")
    # without a scan, no surface is claimed
    bare = gate._one("container.create", "app:1", [], False).facts
    assert not bare.scanned and bare.size is None and bare.shells == ()


def test_without_an_engine_a_labelled_base_is_still_known_and_the_size_is_the_layers() -> None:
    inv = Inventory(
        "sha256:app", "sha256:app", None, (), size=99, diff_ids=L[:3], base_name="debian:bookworm"
    )
    gate = ImageGate(Scanner(inv), None)  # type: ignore[arg-type]
    facts = gate._surface((ImageFacts("x", scanned=True), inv), None)
    assert (facts.base, facts.base_via, facts.size) == ("debian:bookworm", "label", 99)
    unlabelled = gate._surface(
        (ImageFacts("x", scanned=True), Inventory("i", "i", None, (), diff_ids=L[:3])), None
    )
    assert unlabelled.base == "" and "could not be read" in unlabelled.base_via and unlabelled.size is None
