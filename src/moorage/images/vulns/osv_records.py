"""Reading OSV exports: an ``all.zip``, a folder of ``.json`` records, or either over
HTTP. Every record is checked before anything is written, so a corrupt or partial
export is rejected whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from moorage.images.catalogers.python import pep503
from moorage.images.vulns.interface import VulnSourceError

__all__ = ["MAX_RECORD", "OsvDatabaseError", "index_name", "read_records"]

MAX_RECORD = 8 << 20
"""The largest record accepted; anything bigger is not an OSV record."""


class OsvDatabaseError(VulnSourceError):
    """The OSV database is missing or corrupt, or an import was rejected."""


def index_name(ecosystem: str, name: str) -> str:
    """The name a package is indexed under: PyPI names PEP 503-normalised, others as given."""
    return pep503(name) if ecosystem.lower().startswith("pypi") else name


def _check_record(doc: Any, where: str) -> dict[str, Any]:
    """The fields matching relies on; anything else malformed rejects the import."""
    if not isinstance(doc, dict):
        raise OsvDatabaseError(f"{where}: an OSV record must be a JSON object")
    for key in ("id", "modified"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise OsvDatabaseError(f"{where}: the OSV field {key!r} is missing or not a string")
    affected = doc.get("affected", [])
    if not isinstance(affected, list):
        raise OsvDatabaseError(f"{where}: 'affected' must be a list")
    for i, a in enumerate(affected):
        at = f"{where}: affected[{i}]"
        if not isinstance(a, dict):
            raise OsvDatabaseError(f"{at} must be an object")
        pkg = a.get("package")
        if pkg is not None and (
            not isinstance(pkg, dict)
            or not isinstance(pkg.get("name"), str)
            or not isinstance(pkg.get("ecosystem"), str)
        ):
            raise OsvDatabaseError(f"{at}.package needs string 'ecosystem' and 'name'")
        for j, r in enumerate(a.get("ranges") or []):
            if not isinstance(r, dict) or r.get("type") not in ("ECOSYSTEM", "SEMVER", "GIT"):
                raise OsvDatabaseError(f"{at}.ranges[{j}].type must be ECOSYSTEM, SEMVER or GIT")
            events = r.get("events")
            if not isinstance(events, list) or not events:
                raise OsvDatabaseError(f"{at}.ranges[{j}].events must be a non-empty list")
            for k, ev in enumerate(events):
                if (
                    not isinstance(ev, dict)
                    or len(ev) != 1
                    or next(iter(ev)) not in ("introduced", "fixed", "last_affected", "limit")
                    or not isinstance(next(iter(ev.values())), str)
                ):
                    raise OsvDatabaseError(
                        f"{at}.ranges[{j}].events[{k}] must be one of introduced, fixed, "
                        f"last_affected, limit with a string version"
                    )
        if not isinstance(a.get("versions", []), list):
            raise OsvDatabaseError(f"{at}.versions must be a list")
    return doc


def _parse(data: bytes, where: str) -> dict[str, Any]:
    if len(data) > MAX_RECORD:
        raise OsvDatabaseError(f"{where}: over {MAX_RECORD} bytes, not an OSV record")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OsvDatabaseError(f"{where}: not valid JSON ({exc}); the import is rejected whole") from exc
    return _check_record(doc, where)


def _read_zip(data: bytes, where: str) -> Iterator[tuple[str, bytes]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        bad = zf.testzip()  # every member's CRC: a truncated or altered export is caught here
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise OsvDatabaseError(
            f"{where} is not a complete zip archive ({exc}); the import is rejected"
        ) from exc
    if bad is not None:
        raise OsvDatabaseError(f"{where}: {bad} fails its CRC check; the import is rejected")
    with zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            yield f"{where}:{info.filename}", zf.read(info)


def read_records(
    source: str, progress: Callable[[int, int], None] | None
) -> tuple[list[dict[str, Any]], str]:
    """All records of an export, checked, and the sha256 of what was read."""
    h = hashlib.sha256()
    items: list[tuple[str, bytes]] = []
    if source.startswith(("http://", "https://", "file://")):
        try:
            with urllib.request.urlopen(source, timeout=120) as resp:
                data = resp.read()
        except OSError as exc:
            raise OsvDatabaseError(f"cannot download {source}: {exc}") from exc
        h.update(data)
        items = list(_read_zip(data, source)) if data[:2] == b"PK" else [(source, data)]
    else:
        path = Path(source)
        if path.is_dir():
            files = sorted(path.rglob("*.json"))
            if not files:
                raise OsvDatabaseError(f"{path} holds no .json files: nothing to import")
            for f in files:
                data = f.read_bytes()
                h.update(data)
                items.append((str(f), data))
        elif path.is_file():
            data = path.read_bytes()
            h.update(data)
            items = list(_read_zip(data, str(path))) if data[:2] == b"PK" else [(str(path), data)]
        else:
            raise OsvDatabaseError(
                f"{source} does not exist: give an OSV all.zip, a folder of .json files, or a URL"
            )
    out = []
    for n, (where, data) in enumerate(items):
        out.append(_parse(data, where))
        if progress and n % 200 == 0:
            progress(n, len(items))
    if not out:
        raise OsvDatabaseError(f"{source} holds no OSV records")
    return out, h.hexdigest()
