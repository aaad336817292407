"""Denoising image files, folders and globs: the core of `facedenoise denoise`.

Reading and writing run on threads while the model runs (on the main thread, or for a tiled
photo on a worker thread of the tiler); the result is plain data (`DenoiseSummary`), rendered
by the CLI.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facedenoise.config import AUTO, RUNS_DIR, DenoiseConfig
from facedenoise.embedding import JPEG_EXTENSIONS, METADATA_EXTENSIONS
from facedenoise.errors import FaceDenoiseError
from facedenoise.exif import fits_one_jpeg_segment
from facedenoise.imageio import (
    LoadedImage,
    StoredFile,
    image_from_array,
    read_stored_with_metadata,
    write_image,
    write_stored,
)
from facedenoise.inference.denoiser import Denoiser, ModelInput, check_config
from facedenoise.inference.levels import NoiseLevel, check_noise_level
from facedenoise.inference.planning import Job, plan_jobs


@dataclass(frozen=True)
class FileResult:
    """One input file and what became of it: its output, the noise level it was denoised at
    (None for a model without a noise input, or when it was not denoised), whether that
    level was estimated, the std of the noise added first when a level was told well above
    the image's own (`Denoiser.level_and_top_up`), what of the input's metadata its output's
    format cannot hold ("colour profile", "EXIF"), whether the input's EXIF block could not
    be read (so the output lacks it), how many frames or pages the input held (only the
    first is denoised) and, when skipped or failed, why."""

    source: Path
    target: Path | None
    message: str = ""
    noise_level: float | None = None
    level_estimated: bool = False
    top_up: float = 0.0
    metadata_left_out: tuple[str, ...] = ()
    exif_unreadable: bool = False
    frames: int = 1


@dataclass
class DenoiseSummary:
    """What `denoise_paths` did. Times are seconds; `seconds` excludes loading the model."""

    done: list[FileResult] = field(default_factory=list)
    skipped: list[FileResult] = field(default_factory=list)
    failed: list[FileResult] = field(default_factory=list)
    model: str = ""
    seconds: float = 0.0
    model_seconds: float = 0.0
    load_seconds: float = 0.0
    runtime: str = ""  # "onnxruntime" or "keras"

    @property
    def images_per_second(self) -> float:
        return len(self.done) / self.seconds if self.seconds > 0 else 0.0

    def noise_levels(self) -> dict | None:
        """min, median and max of the levels the denoised files used, and whether they were
        estimated; None when no file used one (a model without a noise input)."""
        levels = [result.noise_level for result in self.done if result.noise_level is not None]
        if not levels:
            return None
        return {
            "min": min(levels),
            "median": statistics.median(levels),
            "max": max(levels),
            "estimated": any(result.level_estimated for result in self.done),
        }

    def describe(self, max_listed: int = 10) -> list[tuple[str, str]]:
        """The summary as plain lines `(kind, text)`, kind one of done, skipped, failed,
        levels, metadata, empty: counts, speed, the model and levels, the first skips, the
        first outputs written without the input's colour profile or EXIF, each failure."""
        if not (self.done or self.skipped or self.failed):
            return [("empty", "No images to denoise.")]
        lines = []
        if self.done:
            lines.append((
                "done",
                f"Denoised {len(self.done)} image(s) in {self.seconds:.1f} s "
                f"({self.images_per_second:.1f} images/s, model {self.model_seconds:.1f} s) "
                f"with {self.model}",
            ))
        levels = self.noise_levels()
        if levels is not None:
            how = "estimated" if levels["estimated"] else "given"
            lines.append((
                "levels",
                f"Noise level ({how}): min {levels['min']:.3f}, median {levels['median']:.3f}, "
                f"max {levels['max']:.3f}",
            ))
        if self.skipped:
            lines.append((
                "skipped",
                f"Skipped {len(self.skipped)} (output exists; --force overwrites): "
                + _targets(self.skipped, max_listed),
            ))
        lost = [result for result in self.done if result.metadata_left_out]
        if lost:
            kinds = " and ".join(kind for kind in _METADATA_KINDS
                                 if any(kind in result.metadata_left_out for result in lost))
            lines.append((
                "metadata",
                f"Written without the input's {kinds} ({len(lost)}; only PNG and JPEG "
                "outputs carry them, JPEG an EXIF block of up to 64 KB): "
                + _targets(lost, max_listed),
            ))
        unreadable = [result for result in self.done if result.exif_unreadable]
        if unreadable:
            lines.append((
                "metadata",
                f"Written without the input's EXIF, which could not be read "
                f"({len(unreadable)}): " + _targets(unreadable, max_listed),
            ))
        animated = [result for result in self.done if result.frames > 1]
        if animated:
            lines.append((
                "metadata",
                f"Denoised only the first frame or page of inputs that hold several "
                f"({len(animated)}; outputs hold one image): " + _targets(animated, max_listed),
            ))
        if self.failed:
            lines.append(("failed", f"Failed {len(self.failed)}:"))
            lines += [("failed", f"  {_naming(result)}") for result in self.failed]
        return lines


def _targets(results: list[FileResult], max_listed: int) -> str:
    """The first `max_listed` results' outputs, comma-separated, '...' when there are more."""
    more = " ..." if len(results) > max_listed else ""
    return ", ".join(str(result.target) for result in results[:max_listed]) + more


def _naming(result: FileResult) -> str:
    """A failure's message, led by the file's path unless the message names it already
    (some errors, such as the noise estimate's, are about pixels, not files)."""
    source = str(result.source)
    return result.message if source in result.message else f"{source}: {result.message}"


def denoise_paths(
    paths: list[str],
    *,
    model: str | Path | Denoiser | None = None,
    config: DenoiseConfig | None = None,
    force: bool = False,
    recursive: bool = False,
    runs_dir: str | Path = RUNS_DIR,
    noise_level: NoiseLevel = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_model: Callable[[Denoiser], None] | None = None,
) -> DenoiseSummary:
    """Denoise image files, folders and globs; paths work like `cp`.

    paths: INPUT... [OUTPUT]. One path: each result goes beside its input as
    `<stem><suffix><ext>`. Two or more: the last is the output, a file when the only input is
    a file (its extension picks the format), otherwise a folder (created if missing) in which
    inputs found in a folder or glob keep their sub-folders; no output leaves that folder.
    model: run folder, .keras or .onnx file, 'latest', 'starter', a loaded Denoiser (which
    keeps its own tile, batch, ensemble and chroma-stage settings), or None for the default
    model.
    noise_level: AUTO (estimated per image), a level in [0, 1], or None for `config`'s.
    Existing outputs: with a single image, FaceDenoiseError; with several, they are skipped
    (re-running resumes); `force` overwrites them. Inputs are never overwritten.
    on_model(denoiser) is called once the model is loaded; on_progress(finished, total) then
    and after each image. Unreadable, oversized or unwritable files are collected in
    `.failed` with the reason; the rest go on.
    """
    if config is None:
        config = model.config if isinstance(model, Denoiser) else DenoiseConfig()
    check_config(config)
    level = check_noise_level(config.noise_level if noise_level is None else noise_level)
    summary = DenoiseSummary()
    todo = _todo(plan_jobs(paths, config.suffix, recursive), force, summary)
    if not todo:
        return summary
    started = time.perf_counter()
    if isinstance(model, Denoiser):
        denoiser = model
    else:
        denoiser = Denoiser.load(model, runs_dir=runs_dir, config=config)
    denoiser.check_level(level)
    summary.model = str(denoiser.source or "the given model")
    summary.runtime = denoiser.runtime.name
    summary.load_seconds = time.perf_counter() - started
    if on_model is not None:
        on_model(denoiser)
    _Pipeline(denoiser, config, level, summary, len(todo), on_progress).run(todo)
    return summary


def _todo(jobs: list[Job], force: bool, summary: DenoiseSummary) -> list[Job]:
    """The jobs to run; existing outputs are skipped (a single one is refused)."""
    if len(jobs) == 1 and jobs[0].target.exists() and not force:
        raise FaceDenoiseError(f"{jobs[0].target} already exists; pass --force to overwrite it.")
    todo = []
    for job in jobs:
        if job.target.exists() and not force:
            summary.skipped.append(FileResult(job.source, job.target, "output exists"))
        else:
            todo.append(job)
    return todo


# How many images may wait in memory for a batch of their size before the largest group
# runs anyway (many sizes would otherwise keep a whole folder in memory).
_MAX_WAITING_BATCHES = 2
# Decoding and encoding release the GIL: one thread per core, a few more on big machines.
_IO_THREADS = max(2, min(8, os.cpu_count() or 2))


@dataclass
class _Waiting:
    job: Job
    image: LoadedImage
    prepared: ModelInput  # what the model gets (noise topped up, level, grey or not)
    icc_profile: bytes | None  # the input file's, for the output
    exif: bytes | None
    exif_unreadable: bool
    frames: int


class _Pipeline:
    """Reads ahead and writes behind on threads while the model runs.

    Decoding and encoding release the GIL, so on a folder of small images the model is rarely
    idle. At most `batch_size + 2` images are read ahead (as stored 8/16-bit arrays) and at
    most as many wait to be written. Images larger than a tile are denoised alone, converted
    one band of tiles at a time.
    """

    def __init__(self, denoiser, config, level, summary, total, on_progress):
        self.denoiser, self.config, self.level, self.summary = denoiser, config, level, summary
        self.total, self.on_progress = total, on_progress
        self.batch_size = denoiser.config.batch_size  # a passed-in Denoiser keeps its own
        self.lookahead = self.batch_size + 2
        self.reads: deque[tuple[Job, Future]] = deque()
        self.writes: deque[tuple[FileResult, Future]] = deque()
        self.waiting: dict[tuple[int, int], list[_Waiting]] = {}

    def run(self, jobs: list[Job]) -> None:
        started = time.perf_counter()
        model_seconds_before = self.denoiser.model_seconds
        self._report()
        job_iterator = iter(jobs)
        with ThreadPoolExecutor(_IO_THREADS, thread_name_prefix="facedenoise-io") as self.pool:
            self._read_ahead(job_iterator)
            while self.reads:
                job, read = self.reads.popleft()
                self._read_ahead(job_iterator)
                self._take(job, read)
                self._collect_writes(limit=self.lookahead)
            for size in list(self.waiting):
                self._flush(size)
            self._collect_writes(limit=0)
        self.summary.seconds = time.perf_counter() - started
        self.summary.model_seconds = self.denoiser.model_seconds - model_seconds_before

    def _read_ahead(self, job_iterator) -> None:
        for job in itertools.islice(job_iterator, self.lookahead - len(self.reads)):
            self.reads.append((job, self.pool.submit(_read, job.source, self.config.max_pixels)))

    def _take(self, job: Job, read: Future) -> None:
        try:
            stored_file = read.result()
            if self.denoiser.needs_tiles(stored_file.stored.shape):
                self._take_large(job, stored_file)
                return
            image = image_from_array(stored_file.stored, str(job.source), check_range=True)
            prepared = self.denoiser.model_input(image.pixels, self.level)
        except FaceDenoiseError as error:
            self._fail(job, str(error))
            return
        size = image.pixels.shape[:2]
        self.waiting.setdefault(size, []).append(_Waiting(
            job, image, prepared, stored_file.icc_profile, self._exif(stored_file),
            self._exif_unreadable(stored_file), stored_file.frames))
        if len(self.waiting[size]) >= self.batch_size:
            self._flush(size)
        elif sum(map(len, self.waiting.values())) > _MAX_WAITING_BATCHES * self.batch_size:
            self._flush(max(self.waiting, key=lambda key: len(self.waiting[key])))

    def _take_large(self, job: Job, stored_file: StoredFile) -> None:
        # Written from the stored layout: no float copy of a large photo on the way out.
        clean, level, top_up = self.denoiser.denoise_stored_with_top_up(
            stored_file.stored, self.level, str(job.source))
        options = dict(jpeg_quality=self.config.jpeg_quality,
                       icc_profile=stored_file.icc_profile, exif=self._exif(stored_file))
        write = self.pool.submit(_write_file, job.target, clean, options, write_stored)
        result = self._result(job, level, top_up, options, self._exif_unreadable(stored_file),
                              stored_file.frames)
        self.writes.append((result, write))

    def _exif(self, stored_file: StoredFile) -> bytes | None:
        return stored_file.exif if self.config.keep_exif else None

    def _exif_unreadable(self, stored_file: StoredFile) -> bool:
        return stored_file.exif_unreadable and self.config.keep_exif

    def _flush(self, size: tuple[int, int]) -> None:
        group = self.waiting.pop(size)
        outputs = self.denoiser.denoise_batch_at([entry.prepared for entry in group])
        for entry, clean in zip(group, outputs, strict=True):
            self._write(entry, clean)

    def _write(self, entry: _Waiting, clean: np.ndarray) -> None:
        options = dict(
            dtype=entry.image.dtype,
            grey=entry.image.grey,
            alpha=entry.image.alpha,
            jpeg_quality=self.config.jpeg_quality,
            icc_profile=entry.icc_profile,
            exif=entry.exif,
        )
        result = self._result(entry.job, entry.prepared.level, entry.prepared.top_up, options,
                              entry.exif_unreadable, entry.frames)
        self.writes.append((result, self.pool.submit(_write_file, entry.job.target, clean,
                                                     options)))

    def _result(self, job: Job, level: float | None, top_up: float, options,
                exif_unreadable: bool, frames: int) -> FileResult:
        estimated = level is not None and self.level == AUTO
        return FileResult(job.source, job.target, "", level, estimated, top_up,
                          _metadata_left_out(job.target, options), exif_unreadable, frames)

    def _collect_writes(self, limit: int) -> None:
        """Record finished writes; wait for the oldest while more than `limit` are queued."""
        while self.writes and (len(self.writes) > limit or self.writes[0][1].done()):
            result, write = self.writes.popleft()
            try:
                write.result()
            except FaceDenoiseError as error:
                self._fail(Job(result.source, result.target), str(error))
                continue
            self.summary.done.append(result)
            self._report()

    def _fail(self, job: Job, message: str) -> None:
        self.summary.failed.append(FileResult(job.source, job.target, message))
        self._report()

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(len(self.summary.done) + len(self.summary.failed), self.total)


_METADATA_KINDS = {"colour profile": "icc_profile", "EXIF": "exif"}  # name: write option


def _metadata_left_out(target: Path, options: dict) -> tuple[str, ...]:
    """What of the colour profile and EXIF block in the write `options` a `target` of its
    format cannot hold: none for PNG outputs, an EXIF block over one segment for JPEG."""
    extension = target.suffix.lower()
    if extension in METADATA_EXTENSIONS:
        exif = options.get("exif")
        too_large = extension in JPEG_EXTENSIONS and exif and not fits_one_jpeg_segment(exif)
        return ("EXIF",) if too_large else ()
    return tuple(kind for kind, option in _METADATA_KINDS.items() if options.get(option))


def _read(path: Path, max_pixels: int) -> StoredFile:
    """The stored array of an image file, its ICC profile and EXIF block; its declared size
    is checked against `max_pixels` before it is decoded (ImageError, a FaceDenoiseError,
    names the file and the limit)."""
    return read_stored_with_metadata(path, max_pixels=max_pixels)


def _write_file(target: Path, clean: np.ndarray, options: dict, writer=write_image) -> None:
    try:
        writer(target, clean, **options)
    except OSError as error:
        raise FaceDenoiseError(f"Cannot write {target}: {error.strerror or error}.") from error
