"""Speed and memory of `facedenoise prepare` on an FFHQ-shaped folder.

    python benchmarks/bench_prepare.py [--images 70000] [--count 10000] [--workers N]
    python benchmarks/bench_prepare.py --hostile [--workers N]

With --hostile it instead prepares crafted sources (the bombs of tests/test_prepare_limits.py:
a 30000x30000 PNG, a 4 GB zip member, a 1.2 GB tar.gz member, a named pipe and a symlink to
/dev/zero, each beside four faces) and prints the time, the peak memory of the process tree
and what prepare made of each file.

Builds (once, in --cache) a folder laid out like FFHQ's thumbnails128x128 (1,000 files per
numbered subfolder) from the bundled faces, then runs the real command line on it twice into
the same --out: a fresh run, and a second one that only verifies. Prints images/s, wall time
and the peak memory of the whole process tree, and checks that the split counts are the
protocol's and that both runs wrote the same manifest.

Target (issue 3): the 10,000-image protocol from a 70,000-image folder in under 60 s on two
cores, peak RSS under 1 GB.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

PER_FOLDER = 1000  # FFHQ: 00000/00000.png ... 69000/69999.png
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def variants(faces: list[Path]) -> list[bytes]:
    """Distinct PNG encodings of the bundled faces: flips, rotations and brightness shifts."""
    encoded = []
    for path in faces:
        face = cv2.imread(str(path), cv2.IMREAD_COLOR)
        for turn in range(4):
            for flip in (False, True):
                for shift in (-12, 0, 12):
                    image = np.rot90(face, turn)
                    image = image[:, ::-1] if flip else image
                    image = np.clip(image.astype(np.int16) + shift, 0, 255).astype(np.uint8)
                    encoded.append(cv2.imencode(".png", np.ascontiguousarray(image))[1].tobytes())
    return encoded


def with_comment(png: bytes, index: int) -> bytes:
    """`png` with a tEXt chunk naming `index` before IEND: a valid PNG with its own bytes.

    Writing 70,000 files this way takes seconds, where encoding each one would take minutes;
    the pixels repeat every len(variants) files, which costs prepare nothing it would not pay
    on real, all-different faces.
    """
    body = b"tEXt" + b"Comment\x00" + str(index).encode()
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return png[:-12] + chunk + png[-12:]


def build_folder(root: Path, images: int) -> Path:
    """An FFHQ-shaped folder of `images` distinct PNGs, reused when already complete."""
    done = root / ".complete"
    if done.exists():
        return root / "thumbnails128x128"
    from facedenoise.prepare import sample_folder

    shutil.rmtree(root, ignore_errors=True)
    encoded = variants(sorted(sample_folder().glob("*.png")))
    folder = root / "thumbnails128x128"
    started = time.perf_counter()
    for index in range(images):
        sub = folder / f"{index // PER_FOLDER * PER_FOLDER:05d}"
        if index % PER_FOLDER == 0:
            sub.mkdir(parents=True)
        (sub / f"{index:05d}.png").write_bytes(with_comment(encoded[index % len(encoded)], index))
    done.write_text(f"{images}\n")
    print(f"built {images:,} images in {root} in {time.perf_counter() - started:.0f} s")
    return folder


def tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and all its descendants (shared pages counted in each)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/statm") as handle:
                total += int(handle.read().split()[1]) * PAGE_SIZE
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    pending += [int(child) for child in handle.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(command: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (all processes) and peak process-tree RSS of `command`.

    CPU seconds over the core count is what the wall time would be on an otherwise idle
    machine: the one fair number on a machine shared with other jobs.
    """
    cpu_before = children_cpu_seconds()
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = 0

    def sample() -> None:
        nonlocal peak
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    output = process.communicate()[0].decode()
    sampler.join()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"prepare failed ({process.returncode}):\n{output}")
    return seconds, children_cpu_seconds() - cpu_before, peak


def hostile_sources(root: Path) -> dict[str, Path]:
    """Each crafted file in its own source beside four faces, named by what it is."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import test_prepare_limits as craft  # the crafting helpers of the tests

    from facedenoise.prepare import sample_folder

    faces = sorted(sample_folder().glob("*.png"))[:4]
    sources = {}

    def folder(name: str) -> Path:
        path = root / f"source{len(sources)}"
        path.mkdir()
        for face in faces:
            shutil.copyfile(face, path / face.name)
        sources[name] = path
        return path

    folder("faces only")
    (folder("30000x30000 PNG") / "huge.png").write_bytes(craft.black_png(30000, 30000))
    pipes = folder("named pipe, /dev/zero link")
    os.mkfifo(pipes / "pipe.png")
    (pipes / "zero.png").symlink_to("/dev/zero")
    stored = [(face.name, face.read_bytes()) for face in faces]
    members = [(name, data, 0, len(data), zlib.crc32(data)) for name, data in stored]
    members.append(("bomb.png", craft.deflate_zeros(4_000_000_000), 8, 4_000_000_000, 0))
    sources["zip, 4 GB member"] = root / "bomb.zip"
    sources["zip, 4 GB member"].write_bytes(craft.zip_bytes(members))
    sources["tar.gz, 1.2 GB member"] = root / "bomb.tar.gz"
    sources["tar.gz, 1.2 GB member"].write_bytes(
        craft.tar_gz_with_zeros(faces, "bomb.png", 1_200_000_000)
    )
    return sources


def hostile(workers: int | None) -> None:
    """Prepare each crafted source and print time, peak memory and the outcome."""
    from facedenoise.dataset import load_manifest

    table = Table(title="prepare on crafted sources (four faces + the named file)")
    for column in ("source", "size", "wall s", "peak RSS (tree)", "selected", "skipped as"):
        table.add_column(column, justify="left" if column in ("source", "skipped as") else "right")
    with tempfile.TemporaryDirectory() as scratch:
        for name, source in hostile_sources(Path(scratch)).items():
            out = Path(scratch) / "out"
            shutil.rmtree(out, ignore_errors=True)
            command = [sys.executable, "-m", "facedenoise", "prepare", "--source", str(source)]
            command += ["--out", str(out), "--count", "all"]
            command += ["--workers", str(workers)] if workers else []
            seconds, _, peak = timed_run(command)
            manifest = load_manifest(out)
            size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
            size = source.stat().st_size if source.is_file() else size
            kinds = ", ".join(f"{e['source']}: {e['kind']}" for e in manifest["skipped"])
            table.add_row(
                name,
                f"{size / 2**20:,.1f} MiB",
                f"{seconds:.1f}",
                f"{peak / 2**20:,.0f} MiB",
                f"{len(manifest['images'])}",
                kinds or "-",
            )
    Console(width=160).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=70_000, help="files in the source folder")
    parser.add_argument("--count", type=int, default=10_000, help="prepare --count")
    parser.add_argument("--workers", type=int, default=None, help="prepare --workers")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="where the source folder is kept (default: ~/.cache/facedenoise)",
    )
    parser.add_argument("--out", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--hostile", action="store_true", help="prepare crafted bombs instead")
    args = parser.parse_args()
    if args.hostile:
        hostile(args.workers)
        return

    cache = args.cache or Path.home() / ".cache" / "facedenoise" / f"bench-ffhq-{args.images}"
    source = build_folder(cache, args.images)
    from facedenoise.config import PrepareConfig
    from facedenoise.dataset import load_manifest, manifest_sha256

    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch) / "data"
        command = [
            sys.executable,
            "-m",
            "facedenoise",
            "prepare",
            "--source",
            str(source),
            "--out",
            str(out),
            "--count",
            str(args.count),
        ]
        command += ["--workers", str(args.workers)] if args.workers else []
        shutil.rmtree(out, ignore_errors=True)
        fresh = timed_run(command)
        fresh_manifest = manifest_sha256(out)
        again = timed_run(command)
        counts = load_manifest(out)["counts"]
        same = manifest_sha256(out) == fresh_manifest

    selected = sum(counts.values())
    workers = args.workers or len(os.sched_getaffinity(0))
    table = Table(
        title=f"prepare: {args.count:,} of {args.images:,} images, {workers} workers "
        f"on {os.cpu_count()} cores"
    )
    cores = min(workers, os.cpu_count() or 1)
    columns = ("run", "wall s", "images/s", "CPU s", "CPU s / cores", "peak RSS (tree)")
    for column in columns:
        table.add_column(column, justify="right" if column != "run" else "left")
    for name, (seconds, cpu_seconds, peak) in (("fresh", fresh), ("again (verify)", again)):
        table.add_row(
            name,
            f"{seconds:.1f}",
            f"{selected / seconds:,.0f}",
            f"{cpu_seconds:.1f}",
            f"{cpu_seconds / cores:.1f}",
            f"{peak / 2**20:,.0f} MiB",
        )
    Console().print(table)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"largest single process (getrusage): {children:,.0f} MiB; "
        f"load average now: {os.getloadavg()[0]:.1f}"
    )
    print(f"counts: {counts}; same manifest on both runs: {same}")
    config = PrepareConfig(count=args.count)
    test = int(selected * config.test_fraction + 0.5)  # halves up, as prepare does
    val = int((selected - test) * config.val_fraction + 0.5)
    expected = {"train": selected - test - val, "val": val, "test": test}
    if counts != expected or not same:
        sys.exit(f"FAILED: expected counts {expected} and the same manifest twice")


if __name__ == "__main__":
    main()
