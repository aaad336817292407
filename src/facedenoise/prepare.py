"""Raw faces (folder, .zip, .tar[.gz] or the bundled sample) -> split dataset + manifest.

The protocol: list every image in the source, sort by relative path, shuffle with the seed, and
walk that order taking usable, not-yet-seen images until `count` are selected. Test takes
`test_fraction` of the selection, validation `val_fraction` of the rest, train the remainder.
Each image is decoded, centre-cropped to a square, resized to `size` and written as 8-bit RGB
PNG; validation and test images also get a fixed noisy copy seeded by (seed, id).

Work is streamed through a process pool: a worker reads, hashes and decodes one candidate and
stages its clean PNG; the main process, consuming results in seeded order, decides its id and
split, renames the staged file into place and asks a worker for the noisy copy. Memory is
bounded by the number of images in flight, whatever the dataset size.

Every output file is written atomically. A journal beside the outputs records each finished
image, so an interrupted run resumes; a finished run leaves only `manifest.json`, and running
it again verifies the files against their hashes instead of redoing the work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import struct
import tarfile
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import resources
from itertools import islice
from pathlib import Path

import numpy as np

from facedenoise import __version__
from facedenoise.config import PrepareConfig, to_dict
from facedenoise.dataset import (
    MANIFEST_NAME,
    NOISY_SPLITS,
    SPLITS,
    clean_path,
    is_safe_id,
    load_manifest,
    noisy_path,
)
from facedenoise.errors import FaceDenoiseError
from facedenoise.fileio import atomic_write_text
from facedenoise.imageio import IMAGE_EXTENSIONS

JOURNAL_NAME = ".prepare-journal.jsonl"  # a header line (settings), then one line per image
STAGING_NAME = ".prepare-staging"  # images being written, and those awaiting an id
SAMPLE_SOURCE = "sample"
_BATCH = 8  # candidates per pool task: amortises inter-process overhead
_BATCHES_PER_WORKER = 4  # tasks in flight per worker: keeps workers busy, memory bounded


# ---------------------------------------------------------------------------------------------
# The result


@dataclass
class Manifest:
    """A prepared dataset: the parsed `manifest.json` and how this run went.

    path: the manifest file. data: its content (see the module docstring of `dataset`).
    reused: images verified from an earlier run instead of being written again.
    seconds: wall time of the run.
    """

    path: Path
    data: dict
    reused: int = 0
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        return self.data["counts"]

    @property
    def skipped(self) -> list[dict]:
        return self.data["skipped"]

    @property
    def images(self) -> list[dict]:
        return self.data["images"]

    @property
    def shortfall(self) -> str | None:
        """A sentence when the source held fewer usable images than `count` asked for."""
        requested = self.data["params"]["count"]
        selected = len(self.images)
        if requested is None or selected >= requested:
            return None
        return f"only {selected:,} usable images in the source; --count asked for {requested:,}"

    def summary_line(self) -> str:
        """One line: split sizes, skipped files, and any shortfall."""
        counts = ", ".join(f"{self.counts[split]:,} {split}" for split in SPLITS)
        parts = [counts, f"{len(self.skipped):,} skipped"]
        if self.reused:
            parts.append(f"{self.reused:,} verified from the previous run")
        if self.shortfall:
            parts.append(self.shortfall)
        return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# Sources


@dataclass(frozen=True)
class Source:
    """Where candidates come from; picklable, so each worker can read them itself.

    kind: "folder", "zip", "tar" (uncompressed: random access by offset) or "tar-stream"
    (compressed: read front to back by the main process, bytes sent to the workers).
    label: what the manifest records as the source.
    """

    kind: str
    path: str
    label: str


@dataclass(frozen=True)
class Candidate:
    """One image file of the source.

    name: relative path or archive member name; recorded in the manifest and never used as an
    output path. locator: how to read it (member index, or (offset, size) in a plain tar).
    """

    name: str
    locator: object = None


def _is_candidate_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def sample_folder() -> Path:
    """The bundled sample faces."""
    return Path(str(resources.files("facedenoise") / "sample" / "faces"))


def open_source(source: str | Path | None, out: Path) -> tuple[Source, list[Candidate]]:
    """Identify `source` and list its candidate images, sorted by name.

    `out` is left out of a folder listing so that a dataset prepared inside its own source
    does not feed on itself. Raises FaceDenoiseError for a missing or image-less source.
    """
    if source is None or str(source) == SAMPLE_SOURCE:
        folder = sample_folder()
        if not folder.is_dir():
            raise FaceDenoiseError(
                f"The bundled sample faces are missing ({folder}); reinstall facedenoise or "
                "pass --source with a folder of faces."
            )
        spec = Source("folder", str(folder), SAMPLE_SOURCE)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise FaceDenoiseError(
                f"{source} does not exist; pass a folder of images, a .zip or .tar(.gz) "
                "archive, or 'sample'."
            )
        spec = Source(_source_kind(path), str(path.resolve()), str(path.resolve()))
    candidates = _list_candidates(spec, Path(out).resolve())
    if not candidates:
        raise FaceDenoiseError(
            f"{spec.label} holds no images ({', '.join(IMAGE_EXTENSIONS)}); check --source."
        )
    return spec, candidates


def _source_kind(path: Path) -> str:
    if path.is_dir():
        return "folder"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        try:
            with tarfile.open(path, "r:"):
                return "tar"
        except tarfile.ReadError:
            return "tar-stream"
    raise FaceDenoiseError(
        f"{path} is neither a folder nor a .zip/.tar(.gz) archive; check --source."
    )


def _list_candidates(spec: Source, out: Path) -> list[Candidate]:
    try:
        if spec.kind == "folder":
            candidates = _list_folder(Path(spec.path), out)
        elif spec.kind == "zip":
            with zipfile.ZipFile(spec.path) as archive:
                members = [
                    (info.filename, index)
                    for index, info in enumerate(archive.infolist())
                    if not info.is_dir()
                ]
            candidates = _unique_members(members)
        else:
            candidates = _list_tar(spec)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError) as error:
        raise FaceDenoiseError(f"Cannot list {spec.label} ({error}); check --source.") from error
    return sorted(candidates, key=lambda candidate: candidate.name)


def _list_folder(root: Path, out: Path) -> list[Candidate]:
    candidates = []
    for folder, subfolders, files in os.walk(root):
        # Hidden folders and our own output are never part of the source.
        subfolders[:] = [
            name
            for name in subfolders
            if not name.startswith(".") and Path(folder, name).resolve() != out
        ]
        relative = Path(folder).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        candidates += [Candidate(prefix + name) for name in files if _is_candidate_name(name)]
    return candidates


def _list_tar(spec: Source) -> list[Candidate]:
    mode = "r:" if spec.kind == "tar" else "r|*"
    members = []
    with tarfile.open(spec.path, mode) as archive:
        for index, member in enumerate(archive):
            if member.isfile():
                locator = (member.offset_data, member.size) if spec.kind == "tar" else index
                members.append((member.name, locator))
    return _unique_members(members)


def _unique_members(members: list[tuple[str, object]]) -> list[Candidate]:
    """Image members; of several with one name, the last counts, as when extracting."""
    by_name = {name: locator for name, locator in members if _is_candidate_name(name)}
    return [Candidate(name, locator) for name, locator in by_name.items()]


# What reading one file or member can raise: a damaged member (bad CRC, truncated deflate
# stream), an encrypted or exotically compressed one, or plain I/O errors. Each skips one file.
_READ_ERRORS = (
    OSError,
    EOFError,
    zlib.error,
    zipfile.BadZipFile,
    RuntimeError,
    NotImplementedError,
)
_open_zips: dict[str, zipfile.ZipFile] = {}  # per worker process: open each archive once


def read_candidate(spec: Source, candidate: Candidate) -> bytes:
    """The stored bytes of `candidate` (not for "tar-stream", which is read in order)."""
    if spec.kind == "folder":
        return (Path(spec.path) / candidate.name).read_bytes()
    if spec.kind == "zip":
        if spec.path not in _open_zips:
            _open_zips[spec.path] = zipfile.ZipFile(spec.path)
        archive = _open_zips[spec.path]
        return archive.read(archive.infolist()[candidate.locator])
    offset, size = candidate.locator
    with open(spec.path, "rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def _stream_tar(spec: Source, wanted: dict[int, object]) -> Iterator[tuple[object, bytes]]:
    """(key, bytes) of the members whose index is in `wanted`, in archive order."""
    with tarfile.open(spec.path, "r|*") as archive:
        for index, member in enumerate(archive):
            if index in wanted:
                handle = archive.extractfile(member)
                yield wanted[index], handle.read() if handle else b""


# ---------------------------------------------------------------------------------------------
# Selection and split


def seeded_order(count: int, seed: int) -> np.ndarray:
    """The order in which candidates (sorted by name) are considered for the selection."""
    return np.random.default_rng(seed & 0xFFFF_FFFF_FFFF_FFFF).permutation(count)


def _rounded_share(count: int, fraction: Fraction) -> int:
    """round(count * fraction), halves up, in exact arithmetic."""
    return (2 * count * fraction.numerator + fraction.denominator) // (2 * fraction.denominator)


def split_of(position: int, test_fraction: float, val_fraction: float) -> str:
    """The split of the image at `position` (0-based) in the seeded selection.

    Splits are interleaved rather than taken as blocks: any prefix of n images holds exactly
    round(n * test_fraction) test images, and validation takes round(m * val_fraction) of the m
    others. Because the order is already a seeded shuffle this is as random as blocks, but an
    image's split is known the moment it is selected (so prepare can stream), and a smaller
    --count with the same seed gives a prefix of the larger split.
    """
    test = Fraction(test_fraction).limit_denominator(1_000_000)
    if _rounded_share(position + 1, test) > _rounded_share(position, test):
        return "test"
    val = Fraction(val_fraction).limit_denominator(1_000_000)
    others_before = position - _rounded_share(position, test)
    if _rounded_share(others_before + 1, val) > _rounded_share(others_before, val):
        return "val"
    return "train"


def id_width(target: int) -> int:
    """Digits of the zero-padded ids: at least 5, as in FFHQ's 00000.png."""
    return max(5, len(str(max(target - 1, 0))))


# ---------------------------------------------------------------------------------------------
# Work done in the pool


@dataclass(frozen=True)
class _Context:
    """What every worker needs; sent once when the worker starts."""

    source: Source
    out: str
    size: int
    allow_upscale: bool
    noise_factor: float
    seed: int

    @property
    def staging(self) -> str:
        return os.path.join(self.out, STAGING_NAME)


@dataclass(frozen=True)
class _Job:
    rank: int  # position in the seeded order
    candidate: Candidate
    previous: dict | None = None  # this candidate's record from an earlier run, to verify
    data: bytes | None = None  # already read (tar-stream)


@dataclass(frozen=True)
class _Examined:
    """A candidate after a worker looked at it."""

    rank: int
    name: str
    source_sha256: str | None = None
    reason: str | None = None  # why it is skipped; None when usable
    staged_sha256: str | None = None  # sha256 of its clean PNG, staged as <rank>.png
    reused: dict | None = None  # the earlier record, its clean file verified (and staged)
    noisy_intact: bool = False  # the earlier record's noisy file is verified too


_context: _Context | None = None  # set once per worker process


def _set_context(context: _Context) -> None:
    global _context
    _context = context


def _init_worker(context: _Context) -> None:
    import cv2

    _set_context(context)
    # Ctrl-C is the main process's to handle; workers just get shut down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)  # one process per core already
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # corrupt files are
    # reported in the manifest; libpng's own complaints would scramble the progress bar


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_png(rgb: np.ndarray, noisy: bool = False) -> bytes:
    """8-bit RGB HxWx3 -> PNG bytes (deterministic for a given OpenCV build).

    Encoding is the largest cost of prepare, so the settings are chosen per content: faces
    compress best with the Paeth filter at zlib level 1 (as small as level 3, twice as fast),
    noisy images barely compress at all and Huffman coding alone, unfiltered, gives the
    smallest files fastest (measured on the bundled faces).
    """
    import cv2

    if noisy:
        params = [
            cv2.IMWRITE_PNG_STRATEGY,
            cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY,
            cv2.IMWRITE_PNG_FILTER,
            cv2.IMWRITE_PNG_FILTER_NONE,
        ]
    else:
        params = [
            cv2.IMWRITE_PNG_COMPRESSION,
            1,
            cv2.IMWRITE_PNG_FILTER,
            cv2.IMWRITE_PNG_FILTER_PAETH,
        ]
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise FaceDenoiseError("OpenCV could not encode a PNG image.")
    return encoded.tobytes()


def clean_image(data: bytes, size: int, allow_upscale: bool) -> np.ndarray:
    """Encoded image bytes -> uint8 RGB `size`x`size`: upright, centre-cropped, resized.

    Grey becomes RGB, alpha is dropped, 16-bit and float are rounded to 8-bit. Shrinking uses
    INTER_AREA; images smaller than `size` raise FaceDenoiseError unless `allow_upscale`.
    """
    import cv2

    from facedenoise.imageio import decode_stored, quantize

    stored = decode_stored(data, "the file")  # upright; grey[+alpha] or RGB[A]; 8/16-bit/float
    if stored.ndim == 3:  # drop alpha
        stored = stored[:, :, 0] if stored.shape[2] == 2 else stored[:, :, :3]
    height, width = stored.shape[:2]
    side = min(height, width)
    if side < size and not allow_upscale:
        raise FaceDenoiseError(
            f"{width}x{height} is smaller than --size {size} (--allow-upscale keeps it)."
        )
    top, left = (height - side) // 2, (width - side) // 2
    square = stored[top : top + side, left : left + side]
    if square.dtype != np.uint8:  # resize first, round once
        square = square.astype(np.float32) / (65535.0 if square.dtype == np.uint16 else 1.0)
    if side != size:
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
        square = cv2.resize(square, (size, size), interpolation=interpolation)
    rgb = square if square.dtype == np.uint8 else quantize(square, "uint8")
    return cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB) if rgb.ndim == 2 else np.ascontiguousarray(rgb)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_NOT_PLAIN_MARKERS = (b"tRNS", b"eXIf", b"Exif", b"EXIF", b"exif")  # exif: ImageMagick's text


def _already_clean(data: bytes, size: int) -> bool:
    """True for a PNG that decodes to exactly the clean image: 8-bit RGB, `size` square.

    Read from the IHDR chunk: bit depth 8, colour type 2 (RGB), no interlacing. A tRNS chunk
    (a transparent colour, read back as alpha) or any EXIF block (which may rotate the image)
    rules it out; the byte search may rarely hit compressed data, which costs one re-encode.
    """
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        return False
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return (width, height, depth, colour, interlace) == (size, size, 8, 2, 0) and not any(
        marker in data for marker in _NOT_PLAIN_MARKERS
    )


def _file_holds(path: Path, sha256: str | None) -> bool:
    try:
        return _sha256(path.read_bytes()) == sha256
    except OSError:
        return False


def _stage_earlier(rank: int, record: dict) -> bool:
    """Stage the clean file of an earlier record if it still holds what the record says.

    A hard link, not a copy: cheap, and it keeps the verified content even if the main process
    meanwhile renames another image onto the old name (ids can shift when the source changed).
    """
    out = Path(_context.out)
    staged = Path(_context.staging, f"{rank}.png")
    try:
        os.link(clean_path(out, record["split"], record["id"]), staged)
    except FileNotFoundError:
        return False
    except OSError:  # a file system without hard links
        try:
            shutil.copyfile(clean_path(out, record["split"], record["id"]), staged)
        except OSError:
            return False
    if _file_holds(staged, record["sha256"]):
        return True
    staged.unlink()
    return False


def _examine(job: _Job) -> _Examined:
    """Read, hash and (unless an earlier run already did) decode and stage one candidate."""
    import cv2

    context = _context
    try:
        data = job.data if job.data is not None else read_candidate(context.source, job.candidate)
    except _READ_ERRORS as error:
        return _Examined(job.rank, job.candidate.name, reason=f"unreadable ({error}).")
    source_sha256 = _sha256(data)
    found = _Examined(job.rank, job.candidate.name, source_sha256)
    previous = job.previous
    unchanged = previous is not None and previous["source_sha256"] == source_sha256
    if unchanged and _stage_earlier(job.rank, previous):
        noisy_intact = previous["split"] in NOISY_SPLITS and _file_holds(
            noisy_path(context.out, previous["split"], previous["id"]), previous["noisy_sha256"]
        )
        return dataclasses.replace(
            found, staged_sha256=previous["sha256"], reused=previous, noisy_intact=noisy_intact
        )
    try:
        rgb = clean_image(data, context.size, context.allow_upscale)
    except FaceDenoiseError as error:
        return dataclasses.replace(found, reason=str(error))
    except cv2.error as error:
        return dataclasses.replace(found, reason=f"OpenCV cannot decode it ({error.err}).")
    # An FFHQ thumbnail already is what we would write: keep its bytes instead of encoding
    # the same pixels again, a third of the work per image (it was decoded above, so it is
    # known to be readable).
    png = data if _already_clean(data, context.size) else encode_png(rgb)
    _write_scratch(os.path.join(context.staging, f"{job.rank}.png"), png)
    return dataclasses.replace(found, staged_sha256=_sha256(png))


def _examine_batch(jobs: list[_Job]) -> list[_Examined]:
    return [_examine(job) for job in jobs]


def _write_noisy(split: str, image_id: str) -> str:
    """Write the fixed noisy copy of a clean image; returns the sha256 of the written PNG."""
    import cv2

    from facedenoise.noise import noisy_uint8

    out = _context.out
    clean = cv2.imread(str(clean_path(out, split, image_id)), cv2.IMREAD_COLOR)[:, :, ::-1]
    noisy = noisy_uint8(clean, _context.noise_factor, _context.seed, image_id)
    png = encode_png(noisy, noisy=True)
    staged = os.path.join(_context.staging, f"noisy-{image_id}.png")
    _write_scratch(staged, png)
    os.replace(staged, noisy_path(out, split, image_id))  # atomic: whole file or none
    return _sha256(png)


def _write_scratch(path: str, data: bytes) -> None:
    """Write a file in the staging folder. Not atomic, and needs not be: a staged file is used
    only after its writer reported it complete, and the folder is wiped when a run starts."""
    with open(path, "wb") as handle:
        handle.write(data)


class _InProcess:
    """The executor interface, run in the calling process (workers=1): no start-up cost."""

    def __init__(self, context: _Context):
        import cv2

        _set_context(context)
        self._log_level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

    def submit(self, function, *args) -> Future:
        future = Future()
        future.set_result(function(*args))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        import cv2

        cv2.utils.logging.setLogLevel(self._log_level)


def _executor(workers: int, context: _Context):
    if workers == 1:
        return _InProcess(context)
    import multiprocessing

    # spawn, not fork: the caller may hold threads (TensorFlow, rich's refresh thread).
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(context,),
    )


def _in_order(pool, jobs: Iterator[_Job], workers: int) -> Iterator[_Examined]:
    """Examine `jobs` in the pool, yielding results in job order with bounded look-ahead."""
    pending: deque[Future] = deque()
    try:
        while True:
            while len(pending) < workers * _BATCHES_PER_WORKER:
                batch = list(islice(jobs, _BATCH))
                if not batch:
                    break
                pending.append(pool.submit(_examine_batch, batch))
            if not pending:
                return
            yield from pending.popleft().result()
    finally:
        # Workers still running write staged files: let them finish before cleaning up.
        for future in pending:
            future.cancel()
        wait(pending)


# ---------------------------------------------------------------------------------------------
# State on disk: what an earlier run left, resume and --force


@dataclass
class _Previous:
    records: dict[str, dict] = field(default_factory=dict)  # source name -> reusable record
    outputs: set[Path] = field(default_factory=set)  # every file earlier runs wrote


def _header(spec: Source, config: PrepareConfig) -> dict:
    return {"version": __version__, "source": spec.label, "params": to_dict(config)}


def _read_journal(path: Path) -> tuple[dict | None, list[dict]]:
    """The header and records of a journal; a line cut short by a kill is ignored."""
    header, records = None, []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None, []
    for number, line in enumerate(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if number == 0:
            header = entry if isinstance(entry, dict) else None
        elif isinstance(entry, dict):
            records.append(entry)
    return header, records


def _valid_record(record: object) -> bool:
    keys = ("id", "split", "source", "source_sha256", "sha256")
    return (
        isinstance(record, dict)
        and all(isinstance(record.get(key), str) for key in keys)
        and is_safe_id(record["id"])
        and record["split"] in SPLITS
        and (record["split"] not in NOISY_SPLITS or isinstance(record.get("noisy_sha256"), str))
    )


def _output_paths(out: Path, record: dict) -> list[Path]:
    paths = [clean_path(out, record["split"], record["id"])]
    if record["split"] in NOISY_SPLITS:
        paths.append(noisy_path(out, record["split"], record["id"]))
    return paths


def _describe_change(before: dict, now: dict) -> str:
    changes = (
        [f"source {before.get('source')} -> {now['source']}"]
        if (before.get("source") != now["source"])
        else []
    )
    old_params = before.get("params") if isinstance(before.get("params"), dict) else {}
    changes += [
        f"{key} {old_params.get(key)} -> {value}"
        for key, value in now["params"].items()
        if old_params.get(key) != value
    ]
    return ", ".join(changes) or "unreadable settings"


def _load_previous(out: Path, header: dict, force: bool) -> _Previous:
    """What earlier runs left in `out`; refuses (FaceDenoiseError) to mix in other settings.

    With `force`, the files an earlier run with other settings wrote are deleted first; files
    prepare did not write are never touched.
    """
    journal_path, manifest_path = out / JOURNAL_NAME, out / MANIFEST_NAME
    if not journal_path.exists() and not manifest_path.exists():
        _refuse_foreign(out, force)
        return _Previous()
    journal_header, journal_records = _read_journal(journal_path)
    manifest = _read_manifest(out) if manifest_path.exists() else {}
    # An unfinished run is the authority on what `out` is being prepared for.
    before = (journal_header or {}) if journal_path.exists() else manifest
    manifest_records = manifest.get("images") if isinstance(manifest.get("images"), list) else []
    written = [r for r in manifest_records + journal_records if _valid_record(r)]
    outputs = {path for record in written for path in _output_paths(out, record)}
    if not _same(before, header):
        if not force:
            raise FaceDenoiseError(
                f"{out} holds a dataset prepared with other settings "
                f"({_describe_change(before, header)}); pass --force to replace it, or choose "
                "another --out."
            )
        _remove_earlier_run(out, outputs)
        return _Previous()
    reusable = [r for r in manifest_records if _reusable_from(manifest, header)]
    reusable += journal_records if _reusable_from(journal_header, header) else []
    # Later entries win: the journal's over the manifest's, a record over an older one.
    records = {record["source"]: record for record in reusable if _valid_record(record)}
    return _Previous(records, outputs)


def _read_manifest(out: Path) -> dict:
    """The manifest in `out`, or {} when it is unreadable (treated as other settings)."""
    try:
        return load_manifest(out)
    except FaceDenoiseError:
        return {}


def _reusable_from(before: dict | None, header: dict) -> bool:
    """Files recorded under these exact settings, by this very version, can be reused."""
    return _same(before, header) and before.get("version") == header["version"]


def _same(before: dict | None, header: dict) -> bool:
    return (
        isinstance(before, dict)
        and before.get("source") == header["source"]
        and (before.get("params") == header["params"])
    )


def _refuse_foreign(out: Path, force: bool) -> None:
    """Refuse an --out whose clean/ or noisy/ folders prepare did not write (unless --force)."""
    foreign = [name for name in ("clean", "noisy") if (out / name).exists()]
    if foreign and not force:
        raise FaceDenoiseError(
            f"{out} already has {' and '.join(foreign)}/ folders that facedenoise prepare did "
            "not record; choose another --out, or pass --force to write into it (files with "
            "other names are left alone)."
        )


def _remove_earlier_run(out: Path, outputs: set[Path]) -> None:
    for path in outputs:
        path.unlink(missing_ok=True)
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    (out / JOURNAL_NAME).unlink(missing_ok=True)


class _Journal:
    """Append-only record of finished images, so that an interrupted run can resume."""

    def __init__(self, path: Path, header: dict):
        if not path.exists():
            atomic_write_text(path, json.dumps(header) + "\n")
        self.path = path
        ends_cleanly = path.read_bytes().endswith(b"\n")
        self._handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        if not ends_cleanly:  # a kill cut the last line short: start on a fresh one
            self._handle.write("\n")

    def append(self, record: dict) -> None:
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()  # a kill loses at most the line being written

    def close(self) -> None:
        self._handle.close()


# ---------------------------------------------------------------------------------------------
# The run


def _record(
    image_id: str,
    split: str,
    source: str,
    source_sha256: str,
    sha256: str,
    noisy_sha256: str | None = None,
) -> dict:
    """A manifest image entry, keys always in the same order (byte-identical manifests)."""
    record = {
        "id": image_id,
        "split": split,
        "source": source,
        "source_sha256": source_sha256,
        "sha256": sha256,
    }
    if split in NOISY_SPLITS:
        record["noisy_sha256"] = noisy_sha256
    return record


class _Run:
    """The main process's side of one run: decides ids and splits in seeded order."""

    def __init__(
        self,
        out: Path,
        config: PrepareConfig,
        target: int,
        pool,
        workers: int,
        journal: _Journal,
        advance: Callable[[], None],
    ):
        self.out, self.config, self.target = out, config, target
        self.pool, self.workers, self.journal, self.advance = pool, workers, journal, advance
        self.width = id_width(target)
        self.images: list[dict] = []
        self.skipped: list[dict] = []
        self.first_seen: dict[str, str] = {}  # source sha256 -> source name
        self.noisy_pending: deque[tuple[Future, dict]] = deque()
        self.folders: set[Path] = set()
        self.reused = 0

    @property
    def needed(self) -> int:
        return self.target - len(self.images)

    def take(self, found: _Examined) -> None:
        """Select or skip one examined candidate (called in seeded order)."""
        staged = self.out / STAGING_NAME / f"{found.rank}.png"
        # Byte-identical files count once. Duplicates are caught with the sha256 that workers
        # compute anyway, among the candidates actually examined: hashing a 70,000-file source
        # up front would read ~2.5 GB before any work starts. The first copy in seeded order is
        # kept and a later one is replaced by the next candidate, so the selection is still a
        # pure function of (file list, file bytes, seed).
        if found.reason is None and found.source_sha256 in self.first_seen:
            found = dataclasses.replace(
                found, reason=f"duplicate of {self.first_seen[found.source_sha256]}."
            )
            staged.unlink(missing_ok=True)
        if found.reason is not None:
            self.skipped.append({"source": found.name, "reason": found.reason})
            return
        self.first_seen[found.source_sha256] = found.name
        position = len(self.images)
        image_id = str(position).zfill(self.width)
        split = split_of(position, self.config.test_fraction, self.config.val_fraction)
        record = _record(image_id, split, found.name, found.source_sha256, found.staged_sha256)
        self.images.append(record)
        earlier = found.reused
        if earlier and (earlier["id"], earlier["split"]) == (image_id, split):
            staged.unlink()  # already in place
            if split not in NOISY_SPLITS or found.noisy_intact:
                if split in NOISY_SPLITS:
                    record["noisy_sha256"] = earlier["noisy_sha256"]
                self.reused += 1
                self.advance()
                return
        else:  # new, or an earlier run gave it another id: its clean file is staged
            os.replace(staged, self._folder("clean", split) / f"{image_id}.png")
        if split in NOISY_SPLITS:
            self._folder("noisy", split)
            self.noisy_pending.append((self.pool.submit(_write_noisy, split, image_id), record))
            self._collect_noisy(limit=self.workers * _BATCHES_PER_WORKER * _BATCH)
        else:
            self._done(record)

    def _folder(self, kind: str, split: str) -> Path:
        """out/<kind>/<split>, created on first use (so a failed run leaves no empty tree)."""
        folder = self.out / kind / split
        if folder not in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
            self.folders.add(folder)
        return folder

    def _done(self, record: dict) -> None:
        self.journal.append(record)
        self.advance()

    def _collect_noisy(self, limit: int = 0) -> None:
        """Wait for noisy copies, oldest first, until at most `limit` are outstanding."""
        while len(self.noisy_pending) > limit or (
            self.noisy_pending and self.noisy_pending[0][0].done()
        ):
            future, record = self.noisy_pending.popleft()
            record["noisy_sha256"] = future.result()
            self._done(record)

    def finish(self) -> None:
        self._collect_noisy(limit=0)


def prepare(
    source: str | Path | None,
    out: Path,
    config: PrepareConfig,
    *,
    workers: int | None = None,
    force: bool = False,
    show_progress: bool = True,
) -> Manifest:
    """Build the split dataset in `out` from `source` and return its manifest.

    source: a folder (searched recursively), a .zip or .tar(.gz) archive read in place, or
        None / "sample" for the bundled faces.
    out: the dataset folder (layout in `facedenoise.dataset`).
    workers: processes decoding and encoding images (default: every core; 1 runs in-process).
    force: replace a dataset that `out` holds from other settings (files prepare did not
        write are never deleted).
    show_progress: draw a progress bar with images/s on stderr.
    With workers > 1 the pool starts processes with "spawn": a script that calls prepare()
    needs the usual `if __name__ == "__main__":` guard.
    Raises FaceDenoiseError for a bad config, a source without usable images, or an `out`
    prepared with other settings and no `force`.
    """
    started = time.perf_counter()
    _check_config(config)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FaceDenoiseError(f"{out} is a file; --out must be a folder.")
    spec, candidates = open_source(source, out)
    created_out = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with _exclusive(out):
            manifest = _prepare_locked(spec, candidates, out, config, workers, force, show_progress)
    finally:
        if created_out and not any(out.iterdir()):  # nothing usable: leave no trace
            out.rmdir()
    manifest.seconds = time.perf_counter() - started
    return manifest


@contextlib.contextmanager
def _exclusive(out: Path):
    """Hold an exclusive lock on `out`: two runs writing one dataset would corrupt it."""
    import fcntl

    handle = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        raise FaceDenoiseError(
            f"Another 'facedenoise prepare' is writing to {out}; wait for it to finish or "
            "choose another --out."
        ) from None
    try:
        yield
    finally:
        os.close(handle)  # releases the lock


def _prepare_locked(spec, candidates, out, config, workers, force, show_progress) -> Manifest:
    header = _header(spec, config)
    previous = _load_previous(out, header, force)
    target = len(candidates) if config.count is None else min(config.count, len(candidates))
    order = seeded_order(len(candidates), config.seed)
    shutil.rmtree(out / STAGING_NAME, ignore_errors=True)  # what a killed run left
    (out / STAGING_NAME).mkdir()
    workers = workers or _available_cores()
    context = _Context(
        spec, str(out), config.size, config.allow_upscale, config.noise_factor, config.seed
    )
    journal = _Journal(out / JOURNAL_NAME, header)
    pool = _executor(workers, context)
    try:
        with _progress(show_progress, target) as advance:
            run = _Run(out, config, target, pool, workers, journal, advance)
            examined = _examined(spec, pool, workers, candidates, order, previous, run)
            with contextlib.closing(examined):  # stops the look-ahead as soon as we are done
                for found in examined:
                    run.take(found)
                    if run.needed == 0:
                        break
            run.finish()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        journal.close()
        shutil.rmtree(out / STAGING_NAME, ignore_errors=True)
    if not run.images:
        (out / JOURNAL_NAME).unlink(missing_ok=True)
        raise _no_usable_images(spec, run.skipped)
    manifest = _write_manifest(out, header, len(candidates), run, previous)
    manifest.reused = run.reused
    return manifest


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: the cores this process may use
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _examined(spec, pool, workers, candidates, order, previous, run) -> Iterator[_Examined]:
    """Every candidate, examined, in seeded order (lazily: stop iterating when done)."""

    def job(rank: int, data: bytes | None = None) -> _Job:
        candidate = candidates[order[rank]]
        return _Job(rank, candidate, previous.records.get(candidate.name), data)

    if spec.kind != "tar-stream":
        yield from _in_order(pool, (job(rank) for rank in range(len(order))), workers)
        return
    # A compressed tar has no random access: read it front to back, taking the members whose
    # rank falls in the next range, and hand them on in rank order (only hashes are buffered;
    # the images wait on disk, staged).
    start = 0
    while start < len(order) and run.needed > 0:
        stop = min(len(order), start + run.needed + run.needed // 20 + 32)
        wanted = {candidates[order[rank]].locator: rank for rank in range(start, stop)}
        jobs = (job(rank, data) for rank, data in _stream_tar(spec, wanted))
        ready: dict[int, _Examined] = {}
        for found in _in_order(pool, jobs, workers):
            ready[found.rank] = found
            while start in ready:
                yield ready.pop(start)
                start += 1
        start = stop


def _write_manifest(
    out: Path, header: dict, candidates: int, run: _Run, previous: _Previous
) -> Manifest:
    images = sorted(run.images, key=lambda record: record["id"])
    counts = {split: sum(record["split"] == split for record in images) for split in SPLITS}
    data = {
        **header,
        "candidates": candidates,
        "counts": counts,
        "images": images,
        "skipped": run.skipped,
    }
    # Files an earlier run wrote under ids this run no longer uses would look like data.
    current = {path for record in images for path in _output_paths(out, record)}
    for path in previous.outputs - current:
        path.unlink(missing_ok=True)
    atomic_write_text(out / MANIFEST_NAME, json.dumps(data, indent=1) + "\n")
    (out / JOURNAL_NAME).unlink(missing_ok=True)
    return Manifest(out / MANIFEST_NAME, data)


def _no_usable_images(spec: Source, skipped: list[dict]) -> FaceDenoiseError:
    reasons = sorted({entry["reason"] for entry in skipped})
    return FaceDenoiseError(
        f"No usable image in {spec.label}: all {len(skipped)} candidate(s) were skipped "
        f"({'; '.join(reasons[:3])}); check --source, or --allow-upscale for small images."
    )


def _check_config(config: PrepareConfig) -> None:
    problems = []
    if config.count is not None and (not isinstance(config.count, int) or config.count < 1):
        problems.append(f"count must be a whole number of at least 1 or None, not {config.count}")
    for name in ("test_fraction", "val_fraction"):
        value = getattr(config, name)
        if not 0.0 <= value < 1.0:
            problems.append(f"{name} must be in [0, 1), not {value}")
    if config.size < 1:
        problems.append(f"size must be at least 1, not {config.size}")
    if config.noise_factor < 0:
        problems.append(f"noise_factor must be at least 0, not {config.noise_factor}")
    if problems:
        raise FaceDenoiseError("Invalid prepare settings: " + "; ".join(problems) + ".")


class _progress:
    """A rich progress bar with images/s on stderr, or nothing (`enabled=False`)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]prepare"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.start()
        task = self.bar.add_task("prepare", total=self.total, rate="")
        started = time.perf_counter()

        def advance() -> None:
            done = self.bar.tasks[0].completed + 1
            rate = done / max(time.perf_counter() - started, 1e-9)
            self.bar.update(task, advance=1, rate=f"{rate:,.0f} images/s")

        return advance

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.stop()
