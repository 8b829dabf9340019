"""What the faces pass adds to a scan: the mixed library of ``bench/run.py`` (HEIC + 12 MP JPEG) plus the shared
labelled face photos, scanned, then read by the faces pass; wall and this process's CPU seconds of each.

    python -m bench.bench_faces                          # 24 photos of the mixed set, vit-b-16 (random weights)
    python -m bench.bench_faces --smoke --out /tmp/b     # 4 small photos, the tiny model (seconds)

The scan embeds every photo with the model (its cost depends on the model); the faces pass decodes each photo
again at 1280 px, runs YuNet at 640 px and SFace on each usable face, then groups. On a shared machine the CPU
seconds are the measure (the wall clock follows the others' load, which the report states).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
from pathlib import Path

if not __package__:  # run as a file (python bench/bench_faces.py): import from the repository root, as -m does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, product
from bench import run as run_bench

REPORT = "bench_faces.json"


def library(args, cache: Path, into: Path) -> tuple[int, int]:
    """The mixed set and the labelled face photos (FACES.tsv) linked into ``into``; (mixed photos, face photos)."""
    mixed = run_bench.ensure_sets(args, cache)["mixed"]
    (into / "mixed").mkdir(parents=True)
    for photo in sorted(mixed.iterdir()):
        common.link_or_copy(photo, into / "mixed" / photo.name)
    with open(Path(args.media) / "FACES.tsv", encoding="utf-8", newline="") as handle:
        faces = [row["file"] for row in csv.DictReader(handle, delimiter="\t")]
    (into / "faces").mkdir()
    for name in faces:
        common.link_or_copy(Path(args.media) / name, into / "faces" / name)
    return len(list(mixed.iterdir())), len(faces)


def measure(args) -> dict:
    cache = Path(args.cache).expanduser().resolve()
    checkpoint, what = common.ensure_model(cache, args.model)
    phases: dict[str, dict] = {}
    work = Path(tempfile.mkdtemp(prefix="ms-bench-faces-"))
    try:
        mixed, labelled = library(args, cache, work / "library")
        settings = product.Settings.from_env(
            environ={}, model=str(checkpoint), data_dir=str(work / "data"), library=str(work / "library"), ocr=False
        )
        services = product.Services(settings)
        try:
            services.encoder.describe()  # the model loads before the scan is timed
            with common.Phase("scan", phases, args.wait_quiet):
                scan = services.scans.run()
            with common.Phase("faces", phases, args.wait_quiet):
                faces = services.faces.run()
            people = len(services.people.people())
        finally:
            services.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if scan.errors or faces.errors:
        raise SystemExit(f"not every photo was read: scan {scan.summary()}; faces {faces.summary()}")
    photos = mixed + labelled
    scan_cpu, faces_cpu = phases["scan"]["own_cpu_s"], phases["faces"]["own_cpu_s"]
    return {
        "machine": common.machine_facts(),
        "made_at": common.now_iso(),
        "model": what,
        "photos": {"mixed": mixed, "labelled_faces": labelled, "total": photos},
        "scan": {**phases["scan"], "summary": scan.summary()},
        "faces_pass": {**phases["faces"], "summary": faces.summary(), "faces": faces.faces, "people": people},
        "faces_cpu_ms_per_photo": round(faces_cpu * 1000 / photos, 1),
        "scan_cpu_ms_per_photo": round(scan_cpu * 1000 / photos, 1),
        "faces_share_of_scan_cpu": round(faces_cpu / scan_cpu, 3) if scan_cpu else None,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--photos", type=int, default=24, help="photos of the mixed set (default 24)")
    parser.add_argument("--width", type=int, default=4032)
    parser.add_argument("--height", type=int, default=3024)
    parser.add_argument("--model", default="vit-b-16", help="vit-b-16 (default, random weights), tiny, or a path")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S")
    common.add_place_arguments(parser, REPORT, media=True)
    parser.add_argument("--smoke", action="store_true", help="tiny model, 4 small photos")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.photos, args.width, args.height, args.wait_quiet = "tiny", 4, 1152, 864, 0.0
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    report = measure(args)
    scan, faces = report["scan"], report["faces_pass"]
    lines = [
        f"{report['photos']['total']} photos ({report['photos']['mixed']} of the mixed set, "
        f"{report['photos']['labelled_faces']} labelled face photos); model: {report['model']}",
        f"CPU: {report['machine'].get('cpu', '?')}",
        f"scan:        {scan['wall_s']:.1f} s wall, {scan['own_cpu_s']:.1f} CPU-s "
        f"({report['scan_cpu_ms_per_photo']:.0f} CPU-ms/photo; others used {scan['others_share_of_machine']} "
        "of the machine)",
        f"faces pass:  {faces['wall_s']:.1f} s wall, {faces['own_cpu_s']:.1f} CPU-s "
        f"({report['faces_cpu_ms_per_photo']:.0f} CPU-ms/photo; others used {faces['others_share_of_machine']}); "
        f"{faces['faces']} faces, {faces['people']} people",
        f"faces add {report['faces_share_of_scan_cpu'] * 100:.0f}% to the scan's CPU",
    ]
    common.publish(args.out, REPORT, report, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
