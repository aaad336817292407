"""One run of prepare: check the settings, lock --out, stream the candidates through the pool
in seeded order, decide each image's id and split, and write the manifest."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from facedenoise.config import NOISE_LEVEL_RANGE, PrepareConfig
from facedenoise.dataset import MANIFEST_NAME, NOISY_SPLITS
from facedenoise.errors import FaceDenoiseError
from facedenoise.fileio import remove_stale_temps
from facedenoise.imageio import check_max_pixels
from facedenoise.prepare.journal import (
    JOURNAL_NAME,
    Journal,
    load_previous,
    settings_header,
)
from facedenoise.prepare.manifest import (
    DUPLICATE,
    Manifest,
    image_record,
    no_usable_images,
    skip_record,
    write_manifest,
)
from facedenoise.prepare.pool import BATCH, BATCHES_PER_WORKER, in_order, start_pool
from facedenoise.prepare.sources import Candidate, Source, open_source, stream_tar
from facedenoise.prepare.split import id_width, seeded_order, split_of
from facedenoise.prepare.worker import STAGING_NAME, Context, Examined, Job, write_noisy

Progress = Callable[[int, int], None]  # (images done, images wanted)


def prepare(
    source: str | Path | None,
    out: Path,
    config: PrepareConfig,
    *,
    workers: int | None = None,
    force: bool = False,
    on_progress: Progress | None = None,
    show_progress: bool = False,
) -> Manifest:
    """Build the split dataset in `out` from `source` and return its manifest.

    source: a folder (searched recursively), a .zip or .tar(.gz) archive read in place, or
        None / "sample" for the bundled faces. It must not overlap `out`.
    out: the dataset folder (layout in `facedenoise.dataset`).
    workers: processes decoding and encoding images (default: every core; 1 runs in-process).
    force: replace a dataset that `out` holds from other settings (files prepare did not
        write are never deleted).
    on_progress: called as on_progress(done, total) after each finished image.
    show_progress: ignored; kept so that callers written for 0.1 still run (the core draws
        nothing: pass on_progress, as the command line does).
    With workers > 1 the pool starts processes with "spawn": a script that calls prepare()
    needs the usual `if __name__ == "__main__":` guard.
    Raises FaceDenoiseError for a bad config, a source without usable images, an `out`
    prepared with other settings and no `force`, or an `out` that cannot be written.
    """
    started = time.perf_counter()
    check_config(config)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FaceDenoiseError(f"{out} is a file; --out must be a folder.")
    spec, candidates = open_source(source, out)
    created_out = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        try:
            with exclusive(out):
                manifest = _run_locked(spec, candidates, out, config, workers, force, on_progress)
        finally:
            if created_out and out.is_dir() and not any(out.iterdir()):
                out.rmdir()  # nothing usable: leave no trace
    except OSError as error:  # reading is handled per file: this is --out failing
        raise FaceDenoiseError(
            f"Cannot write to {out} ({error.strerror or error}); free some space, check that "
            "it is writable, or choose another --out. Rerunning resumes."
        ) from error
    except BrokenProcessPool as error:
        raise FaceDenoiseError(
            "A prepare worker process died: out of memory (rerun with fewer --workers or a "
            "lower --max-pixels), or, from a Python script, a call to prepare() without the "
            '`if __name__ == "__main__":` guard (each worker re-runs the script). '
            "Rerunning resumes."
        ) from error
    manifest.seconds = time.perf_counter() - started
    return manifest


@contextlib.contextmanager
def exclusive(out: Path):
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


def _run_locked(spec, candidates, out, config, workers, force, on_progress) -> Manifest:
    run_started = time.time()
    header = settings_header(spec.label, config)
    previous = load_previous(out, header, force)
    remove_stale_temps(out, (MANIFEST_NAME, JOURNAL_NAME), run_started)  # a killed run's
    target = len(candidates) if config.count is None else min(config.count, len(candidates))
    shutil.rmtree(out / STAGING_NAME, ignore_errors=True)  # what a killed run left
    (out / STAGING_NAME).mkdir()
    workers = workers or available_cores()
    context = Context(
        spec,
        str(out),
        config.size,
        config.allow_upscale,
        config.noise_factor,
        config.seed,
        config.max_pixels,
    )
    journal = Journal(out / JOURNAL_NAME, header)
    pool = start_pool(workers, context)
    try:
        run = _Run(out, config, target, pool, workers, journal, on_progress)
        examined = _examined(spec, pool, workers, candidates, config.seed, previous, run)
        with contextlib.closing(examined):  # stops the look-ahead as soon as we are done
            for found in examined:
                run.take(found)
                if run.needed == 0:
                    break
        run.finish()
    finally:
        pool.stop()  # before the staging folder goes: no worker may still write into it
        journal.close()
        shutil.rmtree(out / STAGING_NAME, ignore_errors=True)
    if not run.images:
        (out / JOURNAL_NAME).unlink(missing_ok=True)
        raise no_usable_images(spec.label, run.skipped)
    manifest = write_manifest(out, header, len(candidates), run.images, run.skipped, previous)
    manifest.reused = run.reused
    return manifest


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: the cores this process may use
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _Run:
    """The main process's side of one run: decides ids and splits in seeded order."""

    def __init__(self, out, config, target, pool, workers, journal, on_progress):
        self.out, self.config, self.target = out, config, target
        self.pool, self.workers, self.journal = pool, workers, journal
        self.on_progress = on_progress or (lambda done, total: None)
        self.width = id_width(target)
        self.images: list[dict] = []
        self.skipped: list[dict] = []
        self.first_seen: dict[str, str] = {}  # source sha256 -> source name
        self.noisy_pending: deque[tuple[Future, dict]] = deque()
        self.folders: set[Path] = set()
        self.reused = 0
        self.done = 0

    @property
    def needed(self) -> int:
        return self.target - len(self.images)

    def take(self, found: Examined) -> None:
        """Select or skip one examined candidate (called in seeded order)."""
        staged = self.out / STAGING_NAME / f"{found.rank}.png"
        # Byte-identical files count once. Duplicates are caught with the sha256 that workers
        # compute anyway, among the candidates actually examined: hashing a 70,000-file source
        # up front would read ~2.5 GB before any work starts. The first copy in seeded order is
        # kept and a later one is replaced by the next candidate, so the selection is still a
        # pure function of (file list, file bytes, seed).
        if found.reason is None and found.source_sha256 in self.first_seen:
            reason = f"duplicate of {self.first_seen[found.source_sha256]}."
            found = dataclasses.replace(found, kind=DUPLICATE, reason=reason)
            staged.unlink(missing_ok=True)
        if found.reason is not None:
            self.skipped.append(skip_record(found.name, found.kind, found.reason))
            return
        self.first_seen[found.source_sha256] = found.name
        position = len(self.images)
        image_id = str(position).zfill(self.width)
        split = split_of(position, self.config.test_fraction, self.config.val_fraction)
        record = image_record(image_id, split, found.name, found.source_sha256, found.staged_sha256)
        self.images.append(record)
        if not self._reuse(found, record, staged):
            self._write(record, staged)

    def _reuse(self, found: Examined, record: dict, staged: Path) -> bool:
        """True when an earlier run's files for this image are all in place and verified."""
        earlier = found.reused
        if not earlier or (earlier["id"], earlier["split"]) != (record["id"], record["split"]):
            return False
        staged.unlink()  # its clean file is already in place
        if record["split"] in NOISY_SPLITS and not found.noisy_intact:
            return False
        if record["split"] in NOISY_SPLITS:
            record["noisy_sha256"] = earlier["noisy_sha256"]
        self.reused += 1
        self._advance()
        return True

    def _write(self, record: dict, staged: Path) -> None:
        """Move the staged clean file into place (unless it already is) and ask a worker for
        the noisy copy of a val/test image."""
        split, image_id = record["split"], record["id"]
        if staged.exists():  # new, or an earlier run gave it another id
            os.replace(staged, self._folder("clean", split) / f"{image_id}.png")
        if split in NOISY_SPLITS:
            self._folder("noisy", split)
            self.noisy_pending.append((self.pool.submit(write_noisy, split, image_id), record))
            self._collect_noisy(limit=self.workers * BATCHES_PER_WORKER * BATCH)
        else:
            self._done(record)

    def _folder(self, kind: str, split: str) -> Path:
        """out/<kind>/<split>, created on first use (so a failed run leaves no empty tree)."""
        folder = self.out / kind / split
        if folder not in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
            self.folders.add(folder)
        return folder

    def _advance(self) -> None:
        self.done += 1
        self.on_progress(self.done, self.target)

    def _done(self, record: dict) -> None:
        self.journal.append(record)
        self._advance()

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


def _examined(spec: Source, pool, workers, candidates, seed, previous, run) -> Iterator[Examined]:
    """Every candidate, examined, in seeded order (lazily: stop iterating when done)."""
    order = seeded_order(len(candidates), seed)

    def job(rank: int, data=None) -> Job:
        candidate: Candidate = candidates[order[rank]]
        return Job(rank, candidate, previous.records.get(candidate.name), data)

    if spec.kind != "tar-stream":
        yield from in_order(pool, (job(rank) for rank in range(len(order))), workers)
        return
    # A compressed tar has no random access: read it front to back, taking the members whose
    # rank falls in the next range, and hand them on in rank order (only hashes are buffered;
    # the images wait on disk, staged).
    start = 0
    while start < len(order) and run.needed > 0:
        stop = min(len(order), start + run.needed + run.needed // 20 + 32)
        wanted = {candidates[order[rank]].locator: rank for rank in range(start, stop)}
        jobs = (job(rank, data) for rank, data in stream_tar(spec, wanted))
        ready: dict[int, Examined] = {}
        for found in in_order(pool, jobs, workers):
            ready[found.rank] = found
            while start in ready:
                yield ready.pop(start)
                start += 1
        start = stop


def check_config(config: PrepareConfig) -> None:
    """Raise FaceDenoiseError for settings prepare cannot use, naming each problem."""
    problems = []
    if config.count is not None and (not isinstance(config.count, int) or config.count < 1):
        problems.append(f"count must be a whole number of at least 1 or None, not {config.count}")
    for name in ("test_fraction", "val_fraction"):
        value = getattr(config, name)
        if not 0.0 <= value < 1.0:  # NaN fails every comparison, so it lands here too
            problems.append(f"{name} must be in [0, 1), not {value}")
    if config.size < 1:
        problems.append(f"size must be at least 1, not {config.size}")
    low, high = NOISE_LEVEL_RANGE
    # Not 0: noisy files equal to the clean ones cannot be evaluated (PSNR is infinite).
    if not (math.isfinite(config.noise_factor) and low < config.noise_factor <= high):
        problems.append(f"noise_factor must be in ({low:g}, {high:g}], not {config.noise_factor}")
    if problems:
        raise FaceDenoiseError("Invalid prepare settings: " + "; ".join(problems) + ".")
    check_max_pixels(config.max_pixels)
