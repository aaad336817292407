"""Denoise photos of any size with a trained model: pad, tile, blend, batch.

- `Denoiser`: a loaded model plus its `DenoiseConfig`. `denoise(array)` takes uint8, uint16 or
  float [0, 1] arrays (grey, RGB or RGBA) of any size and returns the same layout and type.
- `denoise_tiled`: the tiling arithmetic, pure NumPy around any `predict(batch) -> batch`.
- `denoise_paths`: the core of `facedenoise denoise`; paths work like `cp`.

Every pixel array crossing these functions is float32 RGB in [0, 1] unless a docstring says
otherwise; conversions from stored 8/16-bit samples happen in `facedenoise.imageio`.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facedenoise.config import DenoiseConfig
from facedenoise.errors import FaceDenoiseError
from facedenoise.imageio import (
    FoundImage,
    LoadedImage,
    array_from_image,
    find_images,
    image_from_array,
    is_image_path,
    read_stored,
    write_image,
)

Predict = Callable[[np.ndarray], np.ndarray]  # (N, h, w, 3) float32 -> same shape


# --- Tiling -----------------------------------------------------------------------------------


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def tile_starts(padded_length: int, tile_length: int, step: int) -> list[int]:
    """Starts of tiles of `tile_length` that cover [0, padded_length), `step` apart.

    The last tile is moved back to end exactly at `padded_length`, so every tile has the same
    size (tiles of one image share a model call). When all three lengths are multiples of the
    network's multiple, every start is one too.
    """
    last_start = padded_length - tile_length
    return list(range(0, last_start, step)) + [last_start]


def blend_weights(tile_length: int, overlap: int, fade_in: bool, fade_out: bool) -> np.ndarray:
    """The 1-D blending window of a tile, float32 of length `tile_length`.

    The outer quarter of the overlap on a side with a neighbour gets weight 0: a U-Net's
    output is worst at a tile border, so those pixels only give context. The middle half of
    the overlap is a raised-cosine ramp; two neighbours' ramps sum to 1 where tiles are
    `tile_length - overlap` apart. Sides without a neighbour (the image border) keep weight 1.
    """
    weights = np.ones(tile_length, np.float32)
    context = overlap // 4
    ramp_length = overlap - 2 * context
    phase = (np.arange(ramp_length, dtype=np.float64) + 0.5) / max(ramp_length, 1)
    ramp = (0.5 - 0.5 * np.cos(np.pi * phase)).astype(np.float32)
    if fade_in:
        weights[:context] = 0.0
        weights[context : context + ramp_length] *= ramp
    if fade_out:
        ramp_end = tile_length - context
        weights[ramp_end:] = 0.0
        weights[ramp_end - ramp_length : ramp_end] *= ramp[::-1]
    return weights


def _mirror(indices: np.ndarray, length: int) -> np.ndarray:
    """Indices past the end reflected back like tf.pad's SYMMETRIC mode (PadToMultiple)."""
    return np.where(indices < length, indices, 2 * length - 1 - indices)


def _extract_tile(pixels, input_start_y, input_start_x, tile_height, tile_width) -> np.ndarray:
    height, width = pixels.shape[:2]
    input_end_y, input_end_x = input_start_y + tile_height, input_start_x + tile_width
    if input_end_y <= height and input_end_x <= width:
        return pixels[input_start_y:input_end_y, input_start_x:input_end_x]
    rows = _mirror(np.arange(input_start_y, input_end_y), height)
    cols = _mirror(np.arange(input_start_x, input_end_x), width)
    return pixels[rows[:, None], cols[None, :]]


def pad_edges(pixels: np.ndarray, min_height: int, min_width: int) -> np.ndarray:
    """Pad (..., H, W, C) at the bottom/right by repeating edge pixels up to a minimum size."""
    height, width = pixels.shape[-3:-1]
    extra = [(0, max(0, min_height - height)), (0, max(0, min_width - width)), (0, 0)]
    if not any(after for _, after in extra):
        return pixels
    return np.pad(pixels, [(0, 0)] * (pixels.ndim - 3) + extra, mode="edge")


def denoise_tiled(
    pixels: np.ndarray,
    predict: Predict,
    *,
    tile: int,
    tile_overlap: int,
    multiple: int = 1,
    batch_size: int = 8,
) -> np.ndarray:
    """Run `predict` over overlapping tiles of one image and blend them back.

    pixels: float32 HxWx3 in [0, 1], with H and W at least `multiple`. The image is treated as
    padded at the bottom/right to a multiple of `multiple` by mirroring, exactly as the
    models' PadToMultiple layer does, and tiles start on multiples of `multiple`, so that a
    tile sees the same pixel grid as a whole-image pass (pooling makes U-Nets depend on it).
    Tiles are `tile` pixels (rounded down to `multiple`) apart by at least `tile_overlap`;
    `batch_size` tiles go through `predict` at once. Memory: the image, one float32
    accumulator of its size and one batch of tiles. Returns float32 HxWx3.
    """
    image_height, image_width = pixels.shape[:2]
    padded_height = _round_up(image_height, multiple)
    padded_width = _round_up(image_width, multiple)
    tile_length = max(multiple, tile // multiple * multiple)
    step = max(multiple, (tile_length - tile_overlap) // multiple * multiple)
    overlap = tile_length - step  # at least tile_overlap: the step was rounded down
    tile_height = min(tile_length, padded_height)
    tile_width = min(tile_length, padded_width)
    starts_y = tile_starts(padded_height, tile_height, step)
    starts_x = tile_starts(padded_width, tile_width, step)
    weights_y = {
        y: blend_weights(tile_height, overlap, y > 0, y + tile_height < padded_height)
        for y in starts_y
    }
    weights_x = {
        x: blend_weights(tile_width, overlap, x > 0, x + tile_width < padded_width)
        for x in starts_x
    }
    weighted_sum = np.zeros((image_height, image_width, 3), np.float32)
    weight_total = np.zeros((image_height, image_width, 1), np.float32)
    for chunk in _chunks(list(itertools.product(starts_y, starts_x)), batch_size):
        batch = np.stack([_extract_tile(pixels, y, x, tile_height, tile_width) for y, x in chunk])
        for (input_start_y, input_start_x), tile_output in zip(chunk, predict(batch), strict=True):
            # Rows and columns past the image are mirrored padding: drop them.
            output_end_y = min(input_start_y + tile_height, image_height)
            output_end_x = min(input_start_x + tile_width, image_width)
            kept_rows, kept_cols = output_end_y - input_start_y, output_end_x - input_start_x
            weights = np.outer(
                weights_y[input_start_y][:kept_rows], weights_x[input_start_x][:kept_cols]
            )[:, :, None]
            region = (slice(input_start_y, output_end_y), slice(input_start_x, output_end_x))
            weighted_sum[region] += tile_output[:kept_rows, :kept_cols] * weights
            weight_total[region] += weights
    weighted_sum /= weight_total
    return weighted_sum


# --- The Denoiser -----------------------------------------------------------------------------


def _check_config(config: DenoiseConfig) -> None:
    if config.tile < 1 or config.batch_size < 1:
        raise FaceDenoiseError("--tile and --batch-size must be at least 1.")
    if not 0 <= config.tile_overlap < config.tile:
        raise FaceDenoiseError(
            f"--tile-overlap must lie in [0, {config.tile}) for --tile {config.tile}; "
            "an overlap of a sixteenth to a quarter of the tile is plenty."
        )


def _network_multiple(model) -> int:
    """The size multiple the model pads to internally (1 when it does not pad)."""
    from facedenoise.models.layers import PadToMultiple

    multiples = [layer.multiple for layer in model.layers if isinstance(layer, PadToMultiple)]
    return max(multiples, default=1)


class Denoiser:
    """A facedenoise model ready to denoise arrays of any size.

    `model`: a Keras model mapping float [0, 1] RGB (N, H, W, 3) to the same shape (as built by
    `facedenoise.models`). `config`: tiling and batching. `source`: where it was loaded from,
    for messages. `model_seconds` adds up the time spent in model calls.
    """

    def __init__(self, model, config: DenoiseConfig | None = None, source: Path | None = None):
        import tensorflow as tf

        self.config = config or DenoiseConfig()
        _check_config(self.config)
        self.model = model
        self.source = source
        self.multiple = _network_multiple(model)
        self.model_seconds = 0.0
        # One trace serves every batch and image size: no retracing per new size.
        self._call = tf.function(
            lambda batch: model(batch, training=False),
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
        )

    @classmethod
    def load(
        cls,
        model: str | Path | None = None,
        runs_dir: str | Path = "runs",
        prefer: str = "packaged",
        config: DenoiseConfig | None = None,
    ) -> Denoiser:
        """Load a model by run folder, .keras file, 'latest' or None (the default model).

        None takes the packaged starter weights, else the newest run in `runs_dir`
        (`prefer='run'` swaps the order). Raises FaceDenoiseError when nothing is found.
        """
        from facedenoise.runs import load_model, resolve_model

        path = resolve_model(None if model is None else str(model), Path(runs_dir), prefer)
        return cls(load_model(path), config=config, source=path)

    def _predict(self, batch: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        result = self._call(np.ascontiguousarray(batch, np.float32)).numpy()
        self.model_seconds += time.perf_counter() - started
        return result

    def _predict_whole(self, batch: np.ndarray) -> np.ndarray:
        # The models' own mirror padding needs at least half a multiple; edge-pad tiny images.
        height, width = batch.shape[1:3]
        padded = pad_edges(batch, self.multiple, self.multiple)
        return self._predict(padded)[:, :height, :width]

    def needs_tiles(self, shape: tuple[int, ...]) -> bool:
        """True when an image of `shape` (H, W, ...) is larger than the tile on either side."""
        return shape[0] > self.config.tile or shape[1] > self.config.tile

    def denoise_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Denoise one float32 HxWx3 [0, 1] image of any size (tiled when large)."""
        pixels = _as_rgb(pixels)
        if not self.needs_tiles(pixels.shape):
            return self._predict_whole(pixels[None])[0]
        height, width = pixels.shape[:2]
        clean = denoise_tiled(
            pad_edges(pixels, self.multiple, self.multiple),
            self._predict,
            tile=self.config.tile,
            tile_overlap=self.config.tile_overlap,
            multiple=self.multiple,
            batch_size=self.config.batch_size,
        )
        return clean[:height, :width]

    def denoise_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Denoise float32 HxWx3 [0, 1] images; same-size ones share model calls.

        Returns float32 arrays in the order given. Images larger than the tile are tiled.
        """
        images = [_as_rgb(pixels) for pixels in images]
        results: list[np.ndarray | None] = [None] * len(images)
        indices_by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, pixels in enumerate(images):
            if self.needs_tiles(pixels.shape):
                results[index] = self.denoise_pixels(pixels)
            else:
                indices_by_size[pixels.shape[:2]].append(index)
        for indices in indices_by_size.values():
            for chunk in _chunks(indices, self.config.batch_size):
                outputs = self._predict_whole(np.stack([images[index] for index in chunk]))
                for index, output in zip(chunk, outputs, strict=True):
                    results[index] = output
        return results

    def denoise(self, array: np.ndarray) -> np.ndarray:
        """Denoise an image array of any size; returns the same shape and sample type.

        array: HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA; also HxWx1, HxWx2 grey + alpha), as
        uint8, uint16 (full range) or float in [0, 1]. Integer input gives the same dtype back;
        float input gives float32. Alpha is passed through untouched.
        """
        image = image_from_array(array, "array", check_range=True)
        clean = self.denoise_pixels(image.pixels)
        result = array_from_image(clean, dtype=image.dtype, grey=image.grey, alpha=image.alpha)
        return result.reshape(np.shape(array))


def _as_rgb(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels, np.float32)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or 0 in pixels.shape:
        raise FaceDenoiseError(
            f"Expected a float RGB image of shape HxWx3, got {pixels.shape}; "
            "use Denoiser.denoise for grey, RGBA or integer arrays."
        )
    return pixels


# --- Files ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileResult:
    """One input file and what became of it: its output and, when skipped or failed, why."""

    source: Path
    target: Path | None
    message: str = ""


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

    @property
    def images_per_second(self) -> float:
        return len(self.done) / self.seconds if self.seconds > 0 else 0.0

    def describe(self, max_listed: int = 10):
        """A rich Text: counts, speed, the model, then each failure and the first skips."""
        from rich.text import Text

        text = Text()
        if not (self.done or self.skipped or self.failed):
            return Text("No images to denoise.", style="yellow")
        if self.done:
            text.append(f"Denoised {len(self.done)} image(s)", style="bold green")
            text.append(
                f" in {self.seconds:.1f} s ({self.images_per_second:.1f} images/s, model "
                f"{self.model_seconds:.1f} s) with {self.model}\n"
            )
        if self.skipped:
            text.append(f"Skipped {len(self.skipped)}", style="bold yellow")
            text.append(" (output exists; --force overwrites): ")
            names = [str(result.target) for result in self.skipped[:max_listed]]
            text.append(", ".join(names) + (" ..." if len(self.skipped) > max_listed else ""))
            text.append("\n")
        if self.failed:
            text.append(f"Failed {len(self.failed)}:\n", style="bold red")
            for result in self.failed:
                text.append(f"  {result.message}\n")
        text.rstrip()
        return text


@dataclass(frozen=True)
class _Job:
    source: Path
    target: Path


def _split_paths(paths: list[str]) -> tuple[list[str], str | None]:
    """cp-style arguments: one path writes beside it; otherwise the last path is the output."""
    if not paths:
        raise FaceDenoiseError("Name at least one image, folder or glob to denoise.")
    if len(paths) == 1:
        return list(paths), None
    return list(paths[:-1]), paths[-1]


def _output_is_file(inputs: list[str], output: str) -> bool:
    output_path = Path(output)
    if len(inputs) != 1 or not Path(inputs[0]).is_file():
        if output_path.is_file():
            raise FaceDenoiseError(
                f"{output} is a file, but with several inputs (or a folder or glob) the last "
                "path must be a folder."
            )
        return False
    if output_path.is_dir() or output.endswith(("/", "\\")):
        return False
    if not is_image_path(output_path):
        raise FaceDenoiseError(
            f"Cannot tell the format of {output}: give it an image extension (.png, .jpg, ...), "
            "or end it with '/' to write into a folder."
        )
    return True


def plan_jobs(paths: list[str], suffix: str, recursive: bool) -> list[_Job]:
    """Pair every input image with its output path, like `cp` (see `denoise_paths`).

    Raises FaceDenoiseError for missing inputs, outputs that would overwrite an input, and
    two inputs that would write the same output.
    """
    inputs, output = _split_paths(paths)
    found = find_images(inputs, recursive=recursive)
    if output is not None and _output_is_file(inputs, output):
        jobs = [_Job(found[0].path, Path(output))]
    elif output is None:
        # Earlier outputs found in a folder are not inputs: re-running must not stack suffixes.
        jobs = [
            _Job(image.path, image.path.with_name(image.path.stem + suffix + image.path.suffix))
            for image in found
            if not (image.base and suffix and image.path.stem.endswith(suffix))
        ]
    else:
        out_dir = Path(output)
        jobs = [
            _Job(image.path, out_dir / _relative_name(image.path, image.base))
            for image in found
            if not _is_earlier_output(image, _absolute(out_dir))
        ]
    _check_targets(jobs)
    return jobs


def _absolute(path: Path) -> Path:
    # Lexical (no file-system calls): cheap enough for every file of a large folder.
    return Path(os.path.abspath(path))


def _relative_name(path: Path, base: Path | None) -> Path:
    if base is None:
        return Path(path.name)
    try:
        return path.relative_to(base)  # folder listings and glob matches start with their base
    except ValueError:
        return _absolute(path).relative_to(_absolute(base))


def _is_earlier_output(image: FoundImage, out_dir: Path) -> bool:
    """True for an image found in the (absolute) output folder nested in its searched folder."""
    if image.base is None or out_dir == _absolute(image.base):
        return False  # the same folder: _check_targets refuses to overwrite the inputs
    return _absolute(image.path).is_relative_to(out_dir)


def _check_targets(jobs: list[_Job]) -> None:
    sources = {job.source.resolve(): job.source for job in jobs}
    seen: dict[Path, Path] = {}
    for job in jobs:
        target = job.target.resolve()
        if target in sources:
            raise FaceDenoiseError(
                f"{job.source} would be written over the input {sources[target]}; inputs are "
                "never overwritten, even with --force. Choose another output or --suffix."
            )
        if target in seen:
            raise FaceDenoiseError(
                f"{seen[target]} and {job.source} would both be written to {job.target}; "
                "denoise them into separate folders."
            )
        seen[target] = job.source


def denoise_paths(
    paths: list[str],
    *,
    model: str | Path | Denoiser | None = None,
    config: DenoiseConfig | None = None,
    force: bool = False,
    recursive: bool = False,
    runs_dir: str | Path = "runs",
    on_progress: Callable[[int, int], None] | None = None,
) -> DenoiseSummary:
    """Denoise image files, folders and globs; paths work like `cp`.

    paths: INPUT... [OUTPUT]. One path: each result goes beside its input as
    `<stem><suffix><ext>`. Two or more: the last is the output, a file when the only input is
    a file (its extension picks the format), otherwise a folder (created if missing) in which
    inputs found in a folder or glob keep their sub-folders.
    model: run folder, .keras file, 'latest', a loaded Denoiser (which keeps its own tile
    and batch settings), or None for the default.
    Existing outputs: with a single image, FaceDenoiseError; with several, they are skipped
    (re-running resumes); `force` overwrites them. Inputs are never overwritten.
    on_progress(finished, total) is called once the model is loaded and after each image.
    Unreadable or unwritable files are collected in `.failed`; the rest go on.
    """
    config = config or DenoiseConfig()
    _check_config(config)
    summary = DenoiseSummary()
    jobs = plan_jobs(paths, config.suffix, recursive)
    if len(jobs) == 1 and jobs[0].target.exists() and not force:
        raise FaceDenoiseError(f"{jobs[0].target} already exists; pass --force to overwrite it.")
    todo = []
    for job in jobs:
        if job.target.exists() and not force:
            summary.skipped.append(FileResult(job.source, job.target, "output exists"))
        else:
            todo.append(job)
    if not todo:
        return summary
    started = time.perf_counter()
    if isinstance(model, Denoiser):
        denoiser = model
    else:
        denoiser = Denoiser.load(model, runs_dir=runs_dir, config=config)
    summary.model = str(denoiser.source or "the given model")
    summary.load_seconds = time.perf_counter() - started
    _Pipeline(denoiser, config, summary, len(todo), on_progress).run(todo)
    return summary


# How many images may wait in memory for a batch of their size before the largest group
# runs anyway (many sizes would otherwise keep a whole folder in memory).
_MAX_WAITING_BATCHES = 2
# Decoding and encoding release the GIL: one thread per core, a few more on big machines.
_IO_THREADS = max(2, min(8, os.cpu_count() or 2))


class _Pipeline:
    """Reads ahead and writes behind on threads while the model runs on the main thread.

    Decoding and encoding release the GIL, so on a folder of small images the model is rarely
    idle. At most `batch_size + 2` images are read ahead (as stored 8/16-bit arrays) and at
    most as many wait to be written.
    """

    def __init__(self, denoiser, config, summary, total, on_progress):
        self.denoiser, self.config, self.summary = denoiser, config, summary
        self.total, self.on_progress = total, on_progress
        self.batch_size = denoiser.config.batch_size  # a passed-in Denoiser keeps its own
        self.lookahead = self.batch_size + 2
        self.reads: deque[tuple[_Job, Future]] = deque()
        self.writes: deque[tuple[_Job, Future]] = deque()
        self.waiting: dict[tuple[int, int], list[tuple[_Job, LoadedImage]]] = {}

    def run(self, jobs: list[_Job]) -> None:
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
            self.reads.append((job, self.pool.submit(read_stored, job.source)))

    def _take(self, job: _Job, read: Future) -> None:
        try:
            image = image_from_array(read.result(), str(job.source))
        except FaceDenoiseError as error:
            self._fail(job, str(error))
            return
        if self.denoiser.needs_tiles(image.pixels.shape):
            self._write(job, image, self.denoiser.denoise_pixels(image.pixels))
            return
        size = image.pixels.shape[:2]
        self.waiting.setdefault(size, []).append((job, image))
        if len(self.waiting[size]) >= self.batch_size:
            self._flush(size)
        elif sum(map(len, self.waiting.values())) > _MAX_WAITING_BATCHES * self.batch_size:
            self._flush(max(self.waiting, key=lambda key: len(self.waiting[key])))

    def _flush(self, size: tuple[int, int]) -> None:
        group = self.waiting.pop(size)
        outputs = self.denoiser.denoise_batch([image.pixels for _, image in group])
        for (job, image), clean in zip(group, outputs, strict=True):
            self._write(job, image, clean)

    def _write(self, job: _Job, image: LoadedImage, clean: np.ndarray) -> None:
        options = dict(
            dtype=image.dtype,
            grey=image.grey,
            alpha=image.alpha,
            jpeg_quality=self.config.jpeg_quality,
        )
        self.writes.append((job, self.pool.submit(_write_file, job.target, clean, options)))

    def _collect_writes(self, limit: int) -> None:
        """Record finished writes; wait for the oldest while more than `limit` are queued."""
        while self.writes and (len(self.writes) > limit or self.writes[0][1].done()):
            job, write = self.writes.popleft()
            try:
                write.result()
            except FaceDenoiseError as error:
                self._fail(job, str(error))
                continue
            self.summary.done.append(FileResult(job.source, job.target))
            self._report()

    def _fail(self, job: _Job, message: str) -> None:
        self.summary.failed.append(FileResult(job.source, job.target, message))
        self._report()

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(len(self.summary.done) + len(self.summary.failed), self.total)


def _write_file(target: Path, clean: np.ndarray, options: dict) -> None:
    try:
        write_image(target, clean, **options)
    except OSError as error:
        raise FaceDenoiseError(f"Cannot write {target}: {error.strerror or error}.") from error
