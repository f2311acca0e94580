"""Package catalogers: what is installed, read from the package databases in an image.

OS packages come from dpkg (``var/lib/dpkg/status`` and distroless
``status.d/``), apk (``lib/apk/db/installed``) and rpm (the sqlite rpmdb);
language packages from Python metadata (``*.dist-info/METADATA``,
``*.egg-info``) and npm (``node_modules/**/package.json``); the OS from
``os-release``. Each cataloger reads bytes and returns :class:`Package` values; a
database that can't be parsed becomes a warning on the inventory, not a crash,
so a scan never silently reports "nothing installed" for a corrupt image.
"""

from __future__ import annotations

import json
import posixpath
import re
import sqlite3
import struct
from email.parser import BytesHeaderParser
from urllib.parse import quote

from moorage.images.interface import OSInfo, Package
from moorage.images.layers import Filesystem

__all__ = ["catalog", "parse_os_release", "pep503", "wanted"]

DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_D = "var/lib/dpkg/status.d/"
APK_DB = "lib/apk/db/installed"
RPM_DBS = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")


def wanted(path: str) -> bool:
    """The paths a cataloger reads; everything else in a layer is skipped unread."""
    if path in (DPKG_STATUS, APK_DB) or path in RPM_DBS or path in OS_RELEASE:
        return True
    if path.startswith(DPKG_STATUS_D):
        return not path.endswith(".md5sums")
    if path.endswith("/METADATA"):
        return path[: -len("/METADATA")].endswith(".dist-info")
    if path.endswith((".egg-info/PKG-INFO", ".egg-info")):
        return True
    if path.endswith("/package.json") and "node_modules/" in path:
        parts = path.split("/")
        return len(parts) >= 3 and (
            parts[-3] == "node_modules"
            or (len(parts) >= 4 and parts[-4] == "node_modules" and parts[-3][:1] == "@")
        )
    return False


def pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------- os-release
def parse_os_release(data: bytes) -> OSInfo | None:
    values: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, eq, value = line.strip().partition("=")
        if not eq or key.startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    if "ID" not in values:
        return None
    return OSInfo(
        values["ID"].lower(),
        values.get("VERSION_ID", ""),
        values.get("PRETTY_NAME", ""),
        values.get("VERSION_CODENAME", ""),
    )


# ---------------------------------------------------------------------- dpkg
def _paragraphs(text: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if cur:
                out.append(cur)
            cur, last = {}, ""
        elif line[0] in " \t":
            if last:
                cur[last] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            last = key.strip()
            cur[last] = value.strip()
    if cur:
        out.append(cur)
    return out


def _dpkg(data: bytes, path: str, os_info: OSInfo | None) -> list[Package]:
    distro = f"{os_info.id}-{os_info.version_id}" if os_info and os_info.version_id else ""
    namespace = os_info.id if os_info and os_info.id in ("debian", "ubuntu") else "debian"
    eco = (os_info.ecosystem if os_info else None) or ""
    out = []
    for p in _paragraphs(data.decode("utf-8", "replace")):
        name, version = p.get("Package"), p.get("Version")
        status = p.get("Status", "install ok installed")
        if not name or not version or not status.endswith(" installed"):
            continue
        src_name, src_version = name, version
        if p.get("Source"):
            src_name, _, rest = p["Source"].partition(" ")
            if rest.strip().startswith("(") and rest.strip().endswith(")"):
                src_version = rest.strip()[1:-1].strip()
        arch = p.get("Architecture", "")
        qs = [f"arch={arch}"] if arch else []
        if distro:
            qs.append(f"distro={distro}")
        if src_name != name:
            qs.append(f"upstream={quote(src_name)}")
        purl = f"pkg:deb/{namespace}/{quote(name)}@{quote(version, safe='')}" + (
            "?" + "&".join(qs) if qs else ""
        )
        out.append(Package(name, version, "deb", eco, purl, "/" + path, src_name, src_version))
    return out


# ----------------------------------------------------------------------- apk
def _apk(data: bytes, path: str, os_info: OSInfo | None) -> list[Package]:
    distro = f"alpine-{os_info.version_id}" if os_info and os_info.version_id else ""
    eco = (os_info.ecosystem if os_info else None) or "Alpine"
    out = []
    entry: dict[str, str] = {}
    for line in [*data.decode("utf-8", "replace").splitlines(), ""]:
        if not line.strip():
            if entry.get("P") and entry.get("V"):
                name, version = entry["P"], entry["V"]
                qs = [f"arch={entry['A']}"] if entry.get("A") else []
                if distro:
                    qs.append(f"distro={distro}")
                purl = f"pkg:apk/alpine/{quote(name)}@{quote(version, safe='')}" + (
                    "?" + "&".join(qs) if qs else ""
                )
                lic = (entry["L"],) if entry.get("L") else ()
                out.append(
                    Package(name, version, "apk", eco, purl, "/" + path, entry.get("o", name), version, lic)
                )
            entry = {}
            continue
        key, colon, value = line.partition(":")
        if colon and len(key) == 1:
            entry.setdefault(key, value)
    return out


# ----------------------------------------------------------------------- rpm
_RPM_TAGS = {
    1000: "name",
    1001: "version",
    1002: "release",
    1003: "epoch",
    1014: "license",
    1022: "arch",
    1044: "sourcerpm",
}


def _rpm_header(blob: bytes) -> dict[str, str | int]:
    """The few tags we need from one rpm header blob (an rpmdb ``Packages`` row)."""
    il, dl = struct.unpack(">II", blob[:8])
    if il > 100_000 or 8 + il * 16 + dl > len(blob):
        raise ValueError("header counts run past the blob")
    store = 8 + il * 16
    out: dict[str, str | int] = {}
    for i in range(il):
        tag, typ, off, count = struct.unpack(">IIII", blob[8 + i * 16 : 24 + i * 16])
        name = _RPM_TAGS.get(tag)
        if name is None or off >= dl:
            continue
        start = store + off
        if typ == 4 and count >= 1:  # INT32
            out[name] = struct.unpack(">I", blob[start : start + 4])[0]
        elif typ in (6, 8, 9):  # STRING, STRING_ARRAY, I18NSTRING: the first string
            end = blob.index(b"\0", start)
            out[name] = blob[start:end].decode("utf-8", "replace")
    return out


def _rpm(data: bytes, path: str, os_info: OSInfo | None) -> list[Package]:
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(data)
        rows = conn.execute("SELECT blob FROM Packages").fetchall()
    finally:
        conn.close()
    distro_id = os_info.id if os_info else "rpm"
    eco = ""
    if os_info:
        major = os_info.version_id.split(".")[0]
        eco = {"rocky": f"Rocky Linux:{major}", "almalinux": f"AlmaLinux:{major}"}.get(os_info.id, "")
    out = []
    for (blob,) in rows:
        h = _rpm_header(bytes(blob))
        name = str(h.get("name", ""))
        if not name or name == "gpg-pubkey":
            continue
        version = f"{h.get('version', '')}-{h.get('release', '')}"
        epoch = h.get("epoch")
        full = f"{epoch}:{version}" if epoch else version
        qs = [f"arch={h['arch']}"] if h.get("arch") else []
        if epoch:
            qs.append(f"epoch={epoch}")
        if os_info and os_info.version_id:
            qs.append(f"distro={os_info.id}-{os_info.version_id}")
        purl = f"pkg:rpm/{distro_id}/{quote(name)}@{quote(version, safe='')}" + (
            "?" + "&".join(qs) if qs else ""
        )
        srpm = str(h.get("sourcerpm", ""))
        src = re.sub(r"-[^-]+-[^-]+\.src\.rpm$", "", srpm) if srpm else name
        lic = (str(h["license"]),) if h.get("license") else ()
        out.append(Package(name, full, "rpm", eco, purl, "/" + path, src, full, lic))
    return out


# -------------------------------------------------------------------- Python
def _python(data: bytes, path: str) -> Package | None:
    headers = BytesHeaderParser().parsebytes(data)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        return None
    lic = headers.get("License-Expression") or headers.get("License") or ""
    licenses = (lic.strip(),) if lic.strip() and len(lic) < 200 and "\n" not in lic.strip() else ()
    norm = pep503(str(name))
    return Package(
        norm,
        str(version).strip(),
        "pypi",
        "PyPI",
        f"pkg:pypi/{norm}@{quote(str(version).strip())}",
        "/" + path,
        licenses=licenses,
    )


# ----------------------------------------------------------------------- npm
def _npm(data: bytes, path: str) -> Package | None:
    doc = json.loads(data)
    if not isinstance(doc, dict):
        return None
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    if name.startswith("@") and "/" in name:
        scope, _, bare = name.partition("/")
        purl_name = f"{quote(scope)}/{quote(bare)}"
    else:
        purl_name = quote(name)
    lic = doc.get("license")
    licenses = (lic,) if isinstance(lic, str) and lic else ()
    return Package(
        name, version, "npm", "npm", f"pkg:npm/{purl_name}@{quote(version)}", "/" + path, licenses=licenses
    )


# --------------------------------------------------------------------- main
def catalog(fs: Filesystem) -> tuple[OSInfo | None, list[Package], list[str]]:
    """The OS, the packages and any warnings, from the wanted files of an image."""
    warnings: list[str] = list(fs.warnings)
    os_info = None
    for p in OS_RELEASE:
        if p in fs.files:
            os_info = parse_os_release(fs.files[p])
            break
    packages: list[Package] = []

    def guarded(what: str, fn: object, *args: object) -> None:
        try:
            result = fn(*args)  # type: ignore[operator]
        except (ValueError, KeyError, IndexError, struct.error, sqlite3.Error, UnicodeError) as exc:
            warnings.append(f"{what} could not be read: {exc}")
            return
        if isinstance(result, list):
            packages.extend(result)
        elif result is not None:
            packages.append(result)

    if DPKG_STATUS in fs.files:
        guarded(f"/{DPKG_STATUS}", _dpkg, fs.files[DPKG_STATUS], DPKG_STATUS, os_info)
    for p in fs.glob_dir(DPKG_STATUS_D):
        guarded(f"/{p}", _dpkg, fs.files[p], p, os_info)
    if APK_DB in fs.files:
        guarded(f"/{APK_DB}", _apk, fs.files[APK_DB], APK_DB, os_info)
    for p in RPM_DBS:
        if p in fs.files:
            guarded(f"/{p}", _rpm, fs.files[p], p, os_info)
    for p in sorted(fs.files):
        if (
            p.endswith("/METADATA")
            or p.endswith(".egg-info/PKG-INFO")
            or (p.endswith(".egg-info") and posixpath.basename(p) != "PKG-INFO")
        ):
            guarded(f"/{p}", _python, fs.files[p], p)
        elif p.endswith("/package.json"):
            guarded(f"/{p}", _npm, fs.files[p], p)
    if os_info is None and any(p.type in ("deb", "apk", "rpm") for p in packages):
        warnings.append("no /etc/os-release: OS packages can't be matched to a distribution's advisories")
    return os_info, packages, warnings
