"""Image scan of the Debian bookworm minbase image, cold and warm, and the OSV import.

    python bench/scan.py [--runs N] [--json]

Cold: the inventory and findings caches are empty, so the scan exports the image
from a real dockerd (``GET /images/{id}/get``), applies its layers, reads the dpkg
database and matches every package against the database. Warm: the same call with
the caches filled (one inspect, two cache reads). The database holds the 2,661 real
PyPI records from ../shared/data/osv when present (else the test fixtures) plus
Debian records for every source package in the image, so matching has real work.
Budgets (DESIGN.md): cold <= 2 s, warm <= 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from moorage.images.scanner import Scanner
from moorage.images.sources import ArchiveSource, EngineSource
from moorage.images.vulns.osv import OsvDatabase
from moorage.lab import Lab, build_debian, load_into
from moorage.lab.images import DEBIAN_REF

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "osv" / "PyPI-all.zip"
FIXTURES = ROOT / "tests" / "fixtures" / "osv" / "pypi"


def _debian_records(folder: Path, archive: Path) -> int:
    """One record per source package in the image (half affecting, half fixed)."""
    inv, _ = Scanner(folder.parent / "tmp-cache").inventory(ArchiveSource(archive), "")
    sources = sorted({(p.source_name, p.source_version) for p in inv.packages})
    for n, (name, version) in enumerate(sources):
        fixed = version + "+zz1" if n % 2 == 0 else "0.0.1-1"
        rec = {
            "id": f"BENCH-DEB-{n}",
            "modified": "2024-01-01T00:00:00Z",
            "affected": [
                {
                    "package": {"ecosystem": "Debian:12", "name": name},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                }
            ],
        }
        (folder / f"BENCH-DEB-{n}.json").write_text(json.dumps(rec))
    return len(sources)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="moorage-bench-scan-"))
    results: dict[str, Any] = {}
    lab = Lab(f"bscan{os.getpid() % 10000}")
    try:
        archive = build_debian()
        db = OsvDatabase(work / "vulndb.sqlite")
        source = str(SHARED) if SHARED.exists() else str(FIXTURES)
        t = time.perf_counter()
        status = db.update(source)
        results["import_s"] = time.perf_counter() - t
        results["import_records"] = status.records
        deb = work / "deb"
        deb.mkdir()
        results["debian_records"] = _debian_records(deb, archive.path)
        db.update(str(deb))
        lab.up(nodes=1, owner_pid=os.getpid())
        load_into(archive, [lab.client(1)])
        engine = EngineSource(lab.client(1, timeout=300))
        cold, warm, archive_cold = [], [], []
        findings = packages = 0
        for i in range(args.runs):
            cache = work / f"cache-{i}"
            t = time.perf_counter()
            report = Scanner(cache, db).scan(engine, DEBIAN_REF)
            cold.append(time.perf_counter() - t)
            findings, packages = len(report.findings), len(report.inventory.packages)
            for _ in range(20):
                t = time.perf_counter()
                again = Scanner(cache, db).scan(engine, DEBIAN_REF)
                warm.append(time.perf_counter() - t)
                assert again.cached and len(again.findings) == findings
            t = time.perf_counter()
            Scanner(work / f"acache-{i}", db).scan(ArchiveSource(archive.path), "")
            archive_cold.append(time.perf_counter() - t)
        results.update(
            packages=packages, findings=findings,
            cold_engine_median_s=statistics.median(cold), cold_archive_median_s=statistics.median(archive_cold),
            warm_median_ms=statistics.median(warm) * 1000, warm_p99_ms=sorted(warm)[int(len(warm) * 0.99) - 1] * 1000,
        )  # fmt: skip
    finally:
        lab.down()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"OSV import: {results['import_records']} records from {Path(source).name} in {results['import_s']:.2f} s"
    )
    print(f"image: {DEBIAN_REF}, {results['packages']} packages, {results['findings']} findings "
          f"({results['debian_records']} Debian records)")  # fmt: skip
    print(f"{'path':<34}{'median':>12}{'budget':>12}")
    print(f"{'cold, from the engine':<34}{results['cold_engine_median_s']:>10.3f} s{'<= 2 s':>12}")
    print(f"{'cold, from a docker-archive':<34}{results['cold_archive_median_s']:>10.3f} s")
    print(f"{'warm (cached by digest)':<34}{results['warm_median_ms']:>9.2f} ms{'<= 20 ms':>12}")
    print(f"{'warm p99':<34}{results['warm_p99_ms']:>9.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
