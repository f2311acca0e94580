"""The generated request models: spec.json is what the generator makes of the swagger
files kept as fixtures, and loads as the tuples models.py matches on."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

from moorage.engine_api import _spec

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "engine_api"


def _tuples_only(spec: Any) -> bool:
    if isinstance(spec, list):
        return False
    return not isinstance(spec, tuple) or all(_tuples_only(part) for part in spec)


def test_types_load_as_tuples() -> None:
    assert all(isinstance(s, tuple) and len(s) == 2 for s in _spec.SOURCES)
    assert all(_tuples_only(t) for fields in _spec.MODELS.values() for t in fields.values())
    assert all(_tuples_only(t) for t in _spec.ROOTS.values())
    assert _spec.ROOTS["PluginSetArgs"] == ("list", ("s",))


def test_spec_json_is_what_the_generator_writes(tmp_path: Path) -> None:
    paths = []
    for version, _ in _spec.SOURCES:
        path = tmp_path / f"swagger-v{version}.yaml"
        path.write_bytes(gzip.decompress((FIXTURES / f"swagger-v{version}.yaml.gz").read_bytes()))
        paths.append(str(path))
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_engine_models.py"), *paths],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert out == (ROOT / "src" / "moorage" / "engine_api" / "spec.json").read_text()
