"""Applying layers: whiteouts, opaque folders, symlinks."""

from __future__ import annotations

from moorage.images.catalogers.catalog import catalog, wanted
from moorage.images.catalogers.interface import OSInfo
from moorage.images.layers import apply_layers
from tests.unit.images.samples import dist_info, tar_layer


def test_whiteouts_and_opaque_dirs_apply_to_lower_layers_only() -> None:
    sp = "usr/lib/python3/site-packages"
    base = tar_layer(
        [
            (f"{sp}/a-1.0.dist-info/METADATA", dist_info("a", "1.0")),
            (f"{sp}/b-1.0.dist-info/METADATA", dist_info("b", "1.0")),
            ("opt/app/node_modules/left-pad/package.json", b'{"name":"left-pad","version":"1.3.0"}'),
            ("usr/lib/os-release", b'ID=debian\nVERSION_ID="12"\n'),
            ("etc/os-release", "../usr/lib/os-release"),
        ]
    )
    top = tar_layer(
        [
            (f"{sp}/.wh.a-1.0.dist-info", b""),
            ("opt/app/node_modules/.wh..wh..opq", b""),
            ("opt/app/node_modules/right-pad/package.json", b'{"name":"right-pad","version":"2.0.0"}'),
            (f"{sp}/b-1.0.dist-info/METADATA", dist_info("b", "1.1")),
        ],
        gz=True,
    )
    fs = apply_layers([base, top], wanted)
    found = catalog(fs)
    os_info, pkgs, warnings = found.os, found.packages, found.warnings
    assert os_info == OSInfo("debian", "12")
    assert {(p.name, p.version) for p in pkgs} == {("b", "1.1"), ("right-pad", "2.0.0")}
    assert not warnings
