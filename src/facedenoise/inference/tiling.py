"""Tiling arithmetic: cover an image of any size with equal, evenly spread, overlapping tiles,
run them through a model and blend the outputs back, a band of tile rows at a time.

NumPy around any `predict(batch) -> batch`, which runs on one worker thread so that the next
call overlaps the blending of the last (see `Predict`). Every pixel array here is float32 RGB
in [0, 1]. Memory grows with the tile and the image width, not the image height: the input is
read and the output written one band of rows at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

# (N, h, w, 3) float32 -> same shape. Called on a worker thread (thread-local settings such
# as device scopes do not reach it), one call at a time; it must return a new array each
# call, which the tiler may change (a reused output buffer would be overwritten by the next
# call before it is blended).
Predict = Callable[[np.ndarray], np.ndarray]
ReadRows = Callable[[int, int], np.ndarray]  # (start, stop) -> float32 (stop - start, W, 3)
WriteRows = Callable[[int, np.ndarray], None]  # (start, rows): finished output rows


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is at least `value`."""
    return -(-value // multiple) * multiple


def chunks(items: list, size: int) -> Iterable[list]:
    """`items` in consecutive lists of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def tile_starts(padded_length: int, tile_length: int, step: int, multiple: int = 1) -> list[int]:
    """Starts of the fewest tiles of `tile_length`, at most `step` apart, covering
    [0, padded_length), spread evenly so that neighbouring overlaps differ by at most one
    `multiple`.

    The last tile ends exactly at `padded_length`, so every tile has the same size (tiles of
    one image share a model call). When the three lengths are multiples of `multiple`, so is
    every start: a tile then sees the pixel grid of a whole-image pass.
    """
    last_start = padded_length - tile_length
    if last_start <= 0:
        return [0]
    gaps = -(-last_start // step)
    units = last_start // multiple
    starts = [(index * units * 2 + gaps) // (2 * gaps) * multiple for index in range(gaps)]
    return starts + [last_start]


def blend_weights(tile_length: int, overlap_before: int, overlap_after: int) -> np.ndarray:
    """The 1-D blending window of a tile, float32 of length `tile_length`.

    `overlap_before`/`overlap_after`: pixels shared with the previous/next tile (0 at the
    image border, where the weight stays 1). On each shared side the outer third of the
    overlap gets weight 0: a U-Net's output is worst at a tile border, so those pixels only
    give context. The middle third is a raised-cosine ramp; two neighbours compute their
    ramps from the same overlap, so they sum to exactly 1.
    """
    weights = np.ones(tile_length, np.float32)
    if overlap_before > 0:
        context, ramp = _ramp(overlap_before)
        weights[:context] = 0.0
        weights[context : context + len(ramp)] *= ramp
    if overlap_after > 0:
        context, ramp = _ramp(overlap_after)
        ramp_end = tile_length - context
        weights[ramp_end:] = 0.0
        weights[ramp_end - len(ramp) : ramp_end] *= ramp[::-1]
    return weights


def _ramp(overlap: int) -> tuple[int, np.ndarray]:
    context = overlap // 3
    ramp_length = overlap - 2 * context
    phase = (np.arange(ramp_length, dtype=np.float64) + 0.5) / max(ramp_length, 1)
    return context, (0.5 - 0.5 * np.cos(np.pi * phase)).astype(np.float32)


@dataclass(frozen=True)
class Axis:
    """The tiles along one axis: their size, starts and blending windows, and the sum of
    the windows at each position (the normaliser; windows of a 2-D tile are outer products,
    so the 2-D normaliser is the outer product of the two axes')."""

    length: int  # the image's length
    tile: int
    starts: tuple[int, ...]
    windows: tuple[np.ndarray, ...]
    total: np.ndarray  # float32 of the padded length


def plan_axis(length: int, tile: int, tile_overlap: int, multiple: int) -> Axis:
    """Tiles of `tile` (rounded down to `multiple`) at least `tile_overlap` apart over
    `length` pixels padded up to `multiple`."""
    padded = round_up(length, multiple)
    tile_length = max(multiple, tile // multiple * multiple)
    step = max(multiple, (tile_length - tile_overlap) // multiple * multiple)
    tile_length = min(tile_length, padded)
    starts = tile_starts(padded, tile_length, step, multiple)
    ends = [start + tile_length for start in starts]
    befores = [0] + [end - start for end, start in zip(ends, starts[1:], strict=False)]
    afters = befores[1:] + [0]
    windows = [blend_weights(tile_length, *sides) for sides in zip(befores, afters, strict=True)]
    total = np.zeros(padded, np.float32)
    for start, window in zip(starts, windows, strict=True):
        total[start : start + tile_length] += window
    return Axis(length, tile_length, tuple(starts), tuple(windows), total)


def mirror(indices: np.ndarray, length: int) -> np.ndarray:
    """Indices past the end reflected back like the models' SYMMETRIC padding."""
    return np.where(indices < length, indices, 2 * length - 1 - indices)


def _read_mirrored(read_rows: ReadRows, start: int, stop: int, height: int) -> np.ndarray:
    if stop <= height:
        return read_rows(start, stop)
    rows = mirror(np.arange(start, stop), height)
    first = int(rows.min())
    return read_rows(first, int(rows.max()) + 1)[rows - first]


def _columns(band: np.ndarray, start: int, tile_width: int) -> np.ndarray:
    width = band.shape[1]
    if start + tile_width <= width:
        return band[:, start : start + tile_width]
    return band[:, mirror(np.arange(start, start + tile_width), width)]


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
    """Run `predict` over overlapping tiles of one float32 HxWx3 [0, 1] image and blend them.

    H and W must be at least `multiple`. See `denoise_tiled_rows`; returns float32 HxWx3.
    """
    height, width = pixels.shape[:2]
    result = np.empty((height, width, 3), np.float32)

    def write_rows(start: int, rows: np.ndarray) -> None:
        result[start : start + len(rows)] = rows

    denoise_tiled_rows(
        lambda start, stop: pixels[start:stop],
        (height, width),
        predict,
        write_rows,
        tile=tile,
        tile_overlap=tile_overlap,
        multiple=multiple,
        batch_size=batch_size,
    )
    return result


def denoise_tiled_rows(
    read_rows: ReadRows,
    shape: tuple[int, int],
    predict: Predict,
    write_rows: WriteRows,
    *,
    tile: int,
    tile_overlap: int,
    multiple: int = 1,
    batch_size: int = 8,
) -> None:
    """Denoise an image of `shape` (H, W) read and written a band of rows at a time.

    The image is treated as padded at the bottom/right to a multiple of `multiple` by
    mirroring, exactly as the models' PadToMultiple layer does, and tiles start on multiples
    of `multiple`, so that a tile sees the pixel grid of a whole-image pass (pooling makes
    U-Nets depend on it). Tiles are `tile` pixels (rounded down to `multiple`), evenly spread,
    overlapping by at least `tile_overlap`; up to `batch_size` tiles go through `predict` at
    once, whole rows of tiles together. `write_rows(start, rows)` receives each finished
    band, top to bottom, exactly once per row. Memory: the tiles and outputs of two calls
    (one running, one being blended) and a band of the output the height of their tile rows.
    """
    height, width = shape
    rows_axis = plan_axis(height, tile, tile_overlap, multiple)
    columns_axis = plan_axis(width, tile, tile_overlap, multiple)
    rows_per_group = max(1, batch_size // len(columns_axis.starts))
    band = _Band(rows_axis, columns_axis, write_rows)
    tile_rows = list(zip(rows_axis.starts, rows_axis.windows, strict=True))
    # One model call runs on a worker thread while this thread blends the previous call's
    # tiles, writes finished rows and cuts the next batch (model runtimes release the GIL).
    pending = None  # (tiles, their Future, the band they need)
    with ThreadPoolExecutor(1, thread_name_prefix="facedenoise-model") as model_thread:
        for group in chunks(tile_rows, rows_per_group):
            top, bottom = group[0][0], group[-1][0] + rows_axis.tile
            rows = _read_mirrored(read_rows, top, bottom, height)
            tiles = [
                (y, window_y, x, window_x)
                for y, window_y in group
                for x, window_x in zip(columns_axis.starts, columns_axis.windows, strict=True)
            ]
            calls = -(-len(tiles) // batch_size)
            for chunk in chunks(tiles, -(-len(tiles) // calls)):
                batch = np.stack([
                    _columns(rows[y - top : y - top + rows_axis.tile], x, columns_axis.tile)
                    for y, _, x, _ in chunk
                ])
                running = (chunk, model_thread.submit(predict, batch), (top, bottom))
                if pending is not None:
                    _blend(band, *pending)
                pending = running
        if pending is not None:
            _blend(band, *pending)
    band.finish()


def _blend(band: _Band, tiles: list, outputs: Future, rows: tuple[int, int]) -> None:
    """Add one model call's tiles to the band, first moving the band down to `rows`."""
    if (band.top, band.top + len(band.sums)) != rows:
        band.advance(*rows)
    for (y, window_y, x, window_x), output in zip(tiles, outputs.result(), strict=True):
        band.add(y, x, output, np.outer(window_y, window_x))


class _Band:
    """The rows of the blended output that tiles still write to, [top, top + len)."""

    def __init__(self, rows_axis: Axis, columns_axis: Axis, write_rows: WriteRows):
        self.rows_axis, self.columns_axis, self.write_rows = rows_axis, columns_axis, write_rows
        self.top = 0
        self.sums = np.zeros((0, columns_axis.length, 3), np.float32)

    def advance(self, top: int, bottom: int) -> None:
        """Write out the rows above `top` (no later tile reaches them); cover [top, bottom)."""
        self._emit(top)
        kept = self.sums[top - self.top :]
        self.sums = np.zeros((bottom - top, self.columns_axis.length, 3), np.float32)
        self.sums[: len(kept)] = kept
        self.top = top

    def add(self, y: int, x: int, output: np.ndarray, weights: np.ndarray) -> None:
        # Columns past the image are mirrored padding: dropped (rows are dropped in _emit).
        kept_columns = min(x + self.columns_axis.tile, self.columns_axis.length) - x
        region = self.sums[y - self.top : y - self.top + len(output), x : x + kept_columns]
        kept = output[:, :kept_columns]
        if kept.flags.writeable:  # the model's own copy: weighted in place
            kept *= weights[:, :kept_columns, None]
        else:
            kept = kept * weights[:, :kept_columns, None]
        region += kept

    def finish(self) -> None:
        self._emit(self.top + len(self.sums))

    def _emit(self, stop: int) -> None:
        stop = min(stop, self.rows_axis.length)
        if stop <= self.top:
            return
        finished = self.sums[: stop - self.top]
        normaliser = np.outer(
            self.rows_axis.total[self.top : stop],
            self.columns_axis.total[: self.columns_axis.length],
        )
        finished /= normaliser[:, :, None]  # in place: these rows are never added to again
        self.write_rows(self.top, finished)
