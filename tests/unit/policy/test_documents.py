"""Policy documents: schema validation with file, line and field; all-or-nothing loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from moorage.policy.documents import PolicyError, load_folder, parse_size

GOOD = """\
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: org, version: 3}
spec:
  mode: enforce
  packs: [baseline]
  resources:
    require: [memory]
    max: {memory: 1g}
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_a_good_folder_loads_with_a_version(tmp_path: Path) -> None:
    write(tmp_path, "org.yaml", GOOD)
    pset = load_folder(tmp_path)
    assert [d.name for d in pset.documents] == ["org"]
    assert pset.documents[0].version == "3" and len(pset.version) == 12
    write(tmp_path, "org.yaml", GOOD.replace("1g", "2g"))
    assert load_folder(tmp_path).version != pset.version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("mode: enforce", "mode: enforced"),
            ":5: spec.mode: 'enforced' is not one of enforce, audit",
        ),
        (GOOD.replace("  packs:", "  pack:"), ":6: spec.pack: unknown field"),
        (GOOD.replace("memory: 1g", "memory: lots"), ":9: spec.resources.max.memory"),
        (GOOD.replace("moorage.dev/v1", "v2"), ":1: apiVersion: must be 'moorage.dev/v1'"),
        (
            GOOD.replace("require: [memory]", "require: [memory, disk]"),
            ":8: spec.resources.require[1]: 'disk'",
        ),
        (
            GOOD + "  custom:\n    - {id: x, expr: 'request.User ==', message: m}\n",
            ":11: spec.custom[0].expr: CEL",
        ),
        (GOOD.replace("packs: [baseline]", "packs: [baseline"), "not valid YAML"),
        (
            GOOD.replace("metadata: {name: org, version: 3}", "metadata: {version: 3}"),
            ":3: metadata: 'name' is a required",
        ),
    ],
)
def test_a_bad_file_names_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(PolicyError) as err:
        load_folder(tmp_path)
    assert str(err.value).startswith(str(path))
    assert expected in str(err.value)


def test_duplicate_names_and_empty_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no policy documents"):
        load_folder(tmp_path)
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD)
    with pytest.raises(PolicyError, match="also used in"):
        load_folder(tmp_path)
    with pytest.raises(PolicyError, match="no such policy"):
        load_folder(tmp_path / "missing")


def test_sizes_read_like_docker() -> None:
    assert parse_size("512m") == 512 << 20
    assert parse_size("2g") == 2 << 30
    assert parse_size("1.5GiB") == 3 << 29
    assert parse_size(1024) == 1024
    with pytest.raises(ValueError):
        parse_size("two")
