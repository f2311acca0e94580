"""Image trust against a real dockerd and a real registry: exact findings for old
PyPI packages and a Debian root filesystem, cosign-compatible signatures, and the
gateway refusing unsigned, forbidden-package and over-severity images."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from moorage.admission.exceptions import ExceptionStore
from moorage.admission.images import ImageGate
from moorage.admission.pipeline import PolicyAdmission
from moorage.audit import JsonLinesSink
from moorage.images.interface import SignatureError
from moorage.images.registry import Registry
from moorage.images.scanner import Scanner
from moorage.images.sign import generate_key, load_private_key, load_public_keys, sign_image, verify_image
from moorage.images.sources import EngineSource, RegistrySource
from moorage.images.vulns.osv import OsvDatabase
from moorage.lab import Lab, build_busybox, build_debian, load_into
from moorage.lab.images import BUSYBOX_REF, DEBIAN_REF
from tests.conftest import needs_root, unique_name
from tests.gateway_harness import RunningGateway, docker, ok

FIXTURES = Path(__file__).parent.parent / "fixtures" / "osv" / "pypi"
OLD_PYPI = {"requests": "2.19.0", "urllib3": "1.24.1", "PyYAML": "5.3", "idna": "3.6", "Werkzeug": "3.0.1"}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    needs_root()
    lab = Lab(unique_name("img"))
    lab.up(nodes=1, registry=True, owner_pid=os.getpid())
    try:
        load_into(build_busybox(), [lab.client(1)])
        load_into(build_debian(), [lab.client(1)])
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def work(lab: Lab) -> Iterator[Path]:
    folder = Path(f"/tmp/moorage-{lab.name}-work")
    folder.mkdir()
    os.chmod(folder, 0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _direct(lab: Lab, *args: str) -> str:
    env = {**os.environ, "DOCKER_HOST": lab.docker_host(1), "DOCKER_BUILDKIT": "0"}
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, f"docker {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def _build(lab: Lab, work: Path, tag: str, packages: dict[str, str], marker: str = "") -> None:
    ctx = work / f"ctx-{tag.replace('/', '-').replace(':', '-')}"
    site = ctx / "site"
    for name, version in packages.items():
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense: MIT\n"
        )
    site.mkdir(parents=True, exist_ok=True)
    (site / "marker.txt").write_text(marker or tag)
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX_REF}\nCOPY site /usr/lib/python3.11/site-packages\n")
    _direct(lab, "build", "-q", "-t", tag, str(ctx))


def _push(lab: Lab, ref: str) -> str:
    """Push through the lab engine; the registry digest."""
    repo, _, tag = ref.rpartition(":")
    lab.client(1).call(
        "POST", f"/images/{repo}/push?tag={tag}", headers={"X-Registry-Auth": "e30="}, timeout=120
    )
    host, _, path = repo.partition("/")
    digest = Registry(host).head_manifest(path, tag)
    assert digest
    return digest


@pytest.fixture(scope="module")
def db(work: Path) -> OsvDatabase:
    vdb = OsvDatabase(work / "vulndb.sqlite")
    vdb.update(str(FIXTURES))
    return vdb


def _oracle(package: str, version: str) -> set[str]:
    """The records that list this exact version in their explicit ``versions``."""
    out = set()
    for f in FIXTURES.glob("*.json"):
        rec = json.loads(f.read_text())
        for a in rec.get("affected", []):
            if a["package"]["name"].lower() == package.lower() and version in a.get("versions", []):
                out.add(rec["id"])
    return out


def test_old_pypi_packages_give_exactly_the_records_that_affect_those_versions(
    lab: Lab, work: Path, db: OsvDatabase
) -> None:
    _build(lab, work, "trust/oldpy:1", OLD_PYPI)
    report = Scanner(work / "cache-a", db).scan(EngineSource(lab.client(1, timeout=300)), "trust/oldpy:1")
    names = {p.name: p.version for p in report.inventory.packages if p.type == "pypi"}
    assert names == {
        "requests": "2.19.0",
        "urllib3": "1.24.1",
        "pyyaml": "5.3",
        "idna": "3.6",
        "werkzeug": "3.0.1",
    }
    for name, version in names.items():
        got = {f.id for f in report.findings if f.package == name}
        assert got == _oracle(name, version), name
    # the ranges and the fixed versions agree with the records
    by_id = {f.id: f for f in report.findings}
    assert by_id["PYSEC-2023-192"].fixed == "1.26.17" and by_id["PYSEC-2023-192"].severity == "high"
    assert by_id["PYSEC-2024-60"].severity == "high" and by_id["PYSEC-2024-60"].fixed == "3.7"
    assert "PYSEC-2023-221" not in by_id  # werkzeug 3.0.1 is the fix of that range
    assert "PYSEC-2020-176" not in by_id  # pyyaml 5.3 is past 5.2b1


def test_debian_rootfs_findings_match_debian_records_by_source_package(lab: Lab, work: Path) -> None:
    # The truth about what is installed comes from the real dpkg inside the image.
    listing = _direct(lab, "run", "--rm", DEBIAN_REF, "dpkg-query", "-W", "-f",
                      "${source:Package} ${source:Version}\\n")  # fmt: skip
    sources = dict(line.split() for line in listing.splitlines() if line.strip())
    assert len(sources) > 40
    glibc, util, _zlib, tar = (sources[k] for k in ("glibc", "util-linux", "zlib", "tar"))
    records = {
        # fixed after the installed version: affected, with the fix shown
        "TEST-DEB-1": {
            "affected": [
                {
                    "package": {"ecosystem": "Debian:12", "name": "glibc"},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": glibc + "+zz1"}]}
                    ],
                }
            ],
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        },
        # fixed before the installed version: not affected
        "TEST-DEB-2": {
            "affected": [
                {
                    "package": {"ecosystem": "Debian:12", "name": "util-linux"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.20-1"}]}],
                }
            ]
        },
        # no fix: affected, shown as unfixed
        "TEST-DEB-3": {
            "affected": [
                {
                    "package": {"ecosystem": "Debian:12", "name": "zlib"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                }
            ]
        },
        # another release: not affected
        "TEST-DEB-4": {
            "affected": [
                {
                    "package": {"ecosystem": "Debian:11", "name": "tar"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                }
            ]
        },
        # the binary package name is not the key: bsdutils is built from util-linux
        "TEST-DEB-5": {
            "affected": [
                {
                    "package": {"ecosystem": "Debian:12", "name": "bsdutils"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                }
            ]
        },
        # an epoch-less "last_affected" equal to the installed version: affected
        "TEST-DEB-6": {
            "affected": [
                {
                    "package": {"ecosystem": "Debian:12", "name": "tar"},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": tar}]}
                    ],
                }
            ]
        },
        # the same with util-linux: an upstream version below ours, with a tilde pre-release fix
        "TEST-DEB-7": {
            "affected": [
                {
                    "package": {"ecosystem": "Debian:12", "name": "util-linux"},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": util + "~1"}]}
                    ],
                }
            ]
        },
    }
    folder = work / "debian-osv"
    folder.mkdir()
    for rid, rec in records.items():
        (folder / f"{rid}.json").write_text(
            json.dumps({"id": rid, "modified": "2024-01-01T00:00:00Z", **rec})
        )
    db = OsvDatabase(work / "debian.sqlite")
    db.update(str(folder))
    report = Scanner(work / "cache-deb", db).scan(EngineSource(lab.client(1, timeout=300)), DEBIAN_REF)
    assert report.inventory.os is not None and report.inventory.os.ecosystem == "Debian:12"
    assert len(report.inventory.packages) > 80
    got = {(f.id, f.package) for f in report.findings}
    # glibc's binaries (libc6, libc-bin) each carry the glibc finding
    glibc_bins = {p.name for p in report.inventory.packages if p.source_name == "glibc"}
    zlib_bins = {p.name for p in report.inventory.packages if p.source_name == "zlib"}
    tar_bins = {p.name for p in report.inventory.packages if p.source_name == "tar"}
    want = ({("TEST-DEB-1", b) for b in glibc_bins} | {("TEST-DEB-3", b) for b in zlib_bins}
            | {("TEST-DEB-6", b) for b in tar_bins})  # fmt: skip
    assert got == want
    by = {f.id: f for f in report.findings}
    assert by["TEST-DEB-1"].fixed == glibc + "+zz1" and by["TEST-DEB-1"].severity == "critical"
    assert by["TEST-DEB-3"].fixed is None


def test_signatures_verify_per_cosign_and_tampering_fails_with_a_reason(lab: Lab, work: Path) -> None:
    registry_host = lab.registry
    assert registry_host
    _direct(lab, "tag", BUSYBOX_REF, f"{registry_host}/trust/sig:1")
    digest = _push(lab, f"{registry_host}/trust/sig:1")
    priv, pub = generate_key(work / "sig")
    _, other_pub = generate_key(work / "other")
    reg = Registry(registry_host)
    tag = sign_image(reg, "trust/sig", digest, load_private_key(priv))
    assert tag == f"sha256-{digest.partition(':')[2]}.sig"
    manifest = reg.get_manifest("trust/sig", tag).json()
    layer = manifest["layers"][0]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    assert "dev.cosignproject.cosign/signature" in layer["annotations"]
    payload = json.loads(reg.get_blob("trust/sig", layer["digest"]))
    assert payload["critical"]["image"]["docker-manifest-digest"] == digest
    assert payload["critical"]["type"] == "cosign container image signature"
    keys = load_public_keys([pub])
    assert verify_image(reg, "trust/sig", digest, keys).signatures == 1
    # rotation: both keys in force, either signature verifies
    v = verify_image(reg, "trust/sig", digest, load_public_keys([other_pub, pub]))
    assert len(v.key_ids) == 1
    # the wrong key
    with pytest.raises(SignatureError, match="does not verify with any of the 1 trusted key"):
        verify_image(reg, "trust/sig", digest, load_public_keys([other_pub]))
    # another digest: no signature at all
    _direct(lab, "tag", DEBIAN_REF, f"{registry_host}/trust/sig:2")
    digest2 = _push(lab, f"{registry_host}/trust/sig:2")
    with pytest.raises(SignatureError, match="is not signed"):
        verify_image(reg, "trust/sig", digest2, keys)
    # a signature moved to another digest: the payload names the first image
    reg.put_manifest("trust/sig", f"sha256-{digest2.partition(':')[2]}.sig",
                     json.dumps(manifest).encode(), manifest["mediaType"])  # fmt: skip
    with pytest.raises(SignatureError, match=f"it signs {digest}, not this image's {digest2}"):
        verify_image(reg, "trust/sig", digest2, keys)
    # an altered payload: new bytes under the old signature
    forged = dict(payload)
    forged["optional"] = {"note": "altered"}
    body = json.dumps(forged, separators=(",", ":")).encode()
    forged_digest = reg.put_blob("trust/sig", body)
    altered = json.loads(json.dumps(manifest))
    altered["layers"][0].update(digest=forged_digest, size=len(body))
    reg.put_manifest("trust/sig", tag, json.dumps(altered).encode(), manifest["mediaType"])
    with pytest.raises(SignatureError, match="does not verify"):
        verify_image(reg, "trust/sig", digest, keys)
    # the CLI says the same, with exit 1
    cli = [
        sys.executable,
        "-m",
        "moorage.cli.main",
        "image",
        "verify",
        f"{registry_host}/trust/sig:1",
        "--key",
        str(pub),
    ]
    proc = subprocess.run(cli, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "no valid signature" in proc.stderr


POLICY = """\
apiVersion: moorage.dev/v1
kind: Policy
metadata: {name: trust}
spec:
  mode: enforce
  images:
    signatures: {required: true, keys: [trust.pub]}
    vulnerabilities: {maxSeverity: medium}
    packages: {forbidden: [pyyaml]}
    database: {maxAge: 7d}
"""


@pytest.fixture(scope="module")
def gated(lab: Lab, work: Path, db: OsvDatabase) -> Iterator[tuple[RunningGateway, Path]]:
    policies = work / "policies"
    policies.mkdir()
    priv, _ = generate_key(policies / "trust")
    (policies / "trust.yaml").write_text(POLICY)
    store = ExceptionStore.in_folder(work)
    gate = ImageGate(Scanner(work / "gw-cache", db), lab.client(1, timeout=300))
    admission = PolicyAdmission(source=policies, exceptions=store, images=gate)
    gw = RunningGateway(lab.docker_host(1), work / "docker.sock", admission=admission, exceptions=store,
                        audit=JsonLinesSink(work / "audit.jsonl"))  # fmt: skip
    try:
        yield gw, priv
    finally:
        gw.stop()
        store.close()


def test_the_gateway_runs_signed_clean_images_and_refuses_the_rest(
    lab: Lab, work: Path, gated: tuple[RunningGateway, Path]
) -> None:
    gw, priv = gated
    host = lab.registry
    assert host
    reg = Registry(host)
    key = load_private_key(priv)
    images = {"clean": {}, "forbidden": {"PyYAML": "6.0.1"}, "vulnerable": {"idna": "3.6"}, "unsigned": {}}
    digests = {}
    for name, pkgs in images.items():
        ref = f"{host}/trust/{name}:1"
        _build(lab, work, ref, pkgs, marker=name)
        digests[name] = _push(lab, ref)
        _direct(lab, "rmi", ref)
        if name != "unsigned":
            sign_image(reg, f"trust/{name}", digests[name], key)

    # signed and clean: pulled (pinned to the checked digest, then tagged) and run
    ok(docker(gw, "pull", f"{host}/trust/clean:1", user="alice"))
    out = ok(docker(gw, "run", "--rm", f"{host}/trust/clean:1", "cat", "/usr/lib/python3.11/site-packages/marker.txt",
                    user="alice"))  # fmt: skip
    assert out.strip() == "clean"
    # the audit records name the digest image trust checked
    records = [json.loads(line) for line in (work / "audit.jsonl").read_text().splitlines()]
    creates = [r for r in records if r["kind"] == "container.create" and r["decision"] == "allow"]
    assert creates and creates[-1]["image_digest"] == digests["clean"]
    # docker run of an image not yet here: the create answers 404, the CLI pulls through the gateway
    _direct(lab, "rmi", f"{host}/trust/clean:1")
    run = docker(gw, "run", "--rm", f"{host}/trust/clean:1", "true", user="alice")
    assert run.returncode == 0, run.stderr
    assert "Unable to find image" in run.stderr

    unsigned = docker(gw, "pull", f"{host}/trust/unsigned:1", user="alice")
    assert unsigned.returncode != 0
    assert "images.signature" in unsigned.stderr and "is not signed" in unsigned.stderr

    forbidden = docker(gw, "pull", f"{host}/trust/forbidden:1", user="alice")
    assert forbidden.returncode != 0
    assert "images.package-forbidden" in forbidden.stderr and "pyyaml 6.0.1" in forbidden.stderr

    vulnerable = docker(gw, "pull", f"{host}/trust/vulnerable:1", user="alice")
    assert vulnerable.returncode != 0
    assert "images.vulnerabilities" in vulnerable.stderr and "PYSEC-2024-60" in vulnerable.stderr
    assert "fixed in 3.7" in vulnerable.stderr

    # a local image that was never pushed has no registry digest, so no signature
    local = docker(gw, "run", "--rm", BUSYBOX_REF, "true", user="alice")
    assert local.returncode != 0 and "no registry digest" in local.stderr


def test_a_tag_that_moves_to_an_unsigned_digest_is_refused(
    lab: Lab, work: Path, gated: tuple[RunningGateway, Path]
) -> None:
    gw, priv = gated
    host = lab.registry
    assert host
    ref = f"{host}/trust/moving:1"
    _build(lab, work, ref, {}, marker="first")
    first = _push(lab, ref)
    sign_image(Registry(host), "trust/moving", first, load_private_key(priv))
    ok(docker(gw, "pull", ref, user="alice"))
    # the tag now points at new, unsigned content
    _build(lab, work, ref + "-b", {}, marker="second")
    _direct(lab, "tag", ref + "-b", ref)
    second = _push(lab, ref)
    assert second != first
    moved = docker(gw, "pull", ref, user="alice")
    assert moved.returncode != 0 and "images.signature" in moved.stderr


def test_registry_source_scans_without_the_engine(lab: Lab, work: Path, db: OsvDatabase) -> None:
    host = lab.registry
    assert host
    ref = f"{host}/trust/regscan:1"
    _build(lab, work, ref, {"urllib3": "1.24.1"})
    _push(lab, ref)
    report = Scanner(work / "cache-reg", db).scan(RegistrySource(), ref)
    assert {f.id for f in report.findings} == _oracle("urllib3", "1.24.1")
