"""Estimate the level of clipped Gaussian noise in one image, for `--noise-level auto`
(`inference/levels.auto_level` reads it at full and at half scale).

The noise model is the project's: `noisy = clip(clean + level * N(0, 1), 0, 1)`, drawn per
pixel and channel, and `estimate_noise_level(noisy)` returns `level`, about 0 for a clean image.

How (a classical estimator, corrected for clipping and for texture; docs/noise_estimation.md
has the measurements that chose it):

1. Colour goes through an orthonormal opponent transform (luminance and two colour
   differences). Noise that is independent per channel stays independent with the same
   variance, while texture, mostly shared by R, G and B, cancels in the differences.
2. A residual that removes the picture and keeps the noise: Immerkaer's 3x3 operator (the
   outer product of two second differences, scaled so that iid noise keeps its variance). It
   annihilates anything linear along either axis, so smooth shading leaves no trace.
3. Clipping: a pixel of clean value m shows noise of variance V(m, level) < level^2, a closed
   form of the clipped Gaussian (`clipped_mean_std`). The clean value is unknown, but the mean
   of a 5x5 window is E[Y] = f(m, level), so `_variance_row` maps (local mean, level) to
   the noise variance; a second-order term corrects for reading V at the window's mean
   rather than averaging it over the window (the noise in the mean, the clean spread).
4. Texture: the image is cut into 8x8 blocks; blocks whose residual or gradient energy is
   above what noise alone would give (`_LAPLACIAN_LIMIT`, `_GRADIENT_LIMIT`, the 99.9th
   percentiles for pure noise) are left out, and the level is solved again from the rest,
   until it stops changing (weak-texture selection, after Liu, Tanaka and Okutomi 2012).
5. The level is the one at which the variance the model predicts over the kept pixels equals
   the residual energy measured there.
6. Noise left only in the luminance (JPEG's chroma subsampling) is read from the luminance.

Large images are sampled: at most `_MAX_SAMPLED_PIXELS` pixels, in evenly spread tiles, so a
12-megapixel photo costs about as much as a 512x512 one. Everything is deterministic.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from facedenoise.errors import FaceDenoiseError

_BLOCK = 8  # pixels on a side of the blocks that texture is judged on
_MEAN_WINDOW = 5  # pixels on a side of the window whose mean stands for the clean value
_BORDER = _MEAN_WINDOW // 2  # pixels at each edge without a full window
_SPREAD_BINS = 64  # histogram bins of the 5x5 std, over [0, _SPREAD_RANGE]
_SPREAD_RANGE = 0.5  # the largest std of values in [0, 1]
_LEVEL_GRID = np.linspace(0.0, 1.0, 401)  # levels the clipping table is computed at
_MEAN_GRID = np.linspace(0.0, 1.0, 513)  # local means the clipping table is computed at
_CLEAN_GRID = np.linspace(0.0, 1.0, 1025)  # clean values the table is solved on
# 99.9th percentiles of block energy / expected noise variance for pure noise in 8x8 blocks
# (measured on flat images, levels 0.02-0.5): a block above either holds texture. So high
# that leaving out the pure-noise blocks above them biases the level by under 0.5%.
_LAPLACIAN_LIMIT = 2.5
_GRADIENT_LIMIT = 1.7
# The start: 10th percentile of block energy / expected variance, for pure noise (measured).
_START_QUANTILE = 0.1
_START_RATIO = 0.63
# Luminance alone above 3x the joint level + 0.02: the colour noise was smoothed away.
_LUMINANCE_RATIO = 3.0
_LUMINANCE_MARGIN = 0.02
# Noise left in luminance only reads high there: JPEG keeps the noise of Y = 0.299 R +
# 0.587 G + 0.114 B (std |w| = 0.668 of the level) in every channel, so the opponent
# luminance (R + G + B) / sqrt(3) carries sqrt(3) * 0.668 = 1.157 times the level (measured
# 1.13-1.28 on 4:2:0 JPEGs of noisy photos at quality 85-95).
_LUMINANCE_ONLY_SCALE = 1.0 / (math.sqrt(3.0) * math.hypot(0.299, 0.587, 0.114))
_MIN_BLOCKS = 8  # fewer weak-texture blocks than this: keep the previous estimate
# Block energy below this is an exactly constant block (float rounding only): one 8-bit step
# of noise in a block already gives about 1e-6.
_CONSTANT_ENERGY = 1e-10
_MAX_ITERATIONS = 12
_BISECTIONS = 24  # halvings of [0, 1]: a level to 6e-8
_TOLERANCE = 1e-5  # level change at which the weak-texture iteration stops
_MAX_SAMPLED_PIXELS = 1 << 18  # larger images are sampled in tiles
_SAMPLE_TILE = 128
# Channels closer than this everywhere are one grey channel (colour differences would be 0).
_GREY_TOLERANCE = 0.5 / 255.0
_RANGE_TOLERANCE = 1e-3  # float rounding past [0, 1]; anything further is a scaling mistake
_MIN_SIDE = 2 * _BORDER + 2 * _BLOCK  # pixels: room for 2x2 blocks inside the border
# Immerkaer's operator, divided by 6 so that the sum of squared weights is 1.
_LAPLACIAN = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32) / 6.0
_OPPONENT = np.array(
    [
        [1.0, 1.0, 1.0],
        [1.0, -1.0, 0.0],
        [1.0, 1.0, -2.0],
    ]
) / np.sqrt([[3.0], [2.0], [6.0]])


def estimate_noise_level(pixels: np.ndarray) -> float:
    """The std of the Gaussian noise in `pixels`, before clipping, in [0, 1] units.

    pixels: float array HxWx3 (RGB) or HxW (grey), values in [0, 1], at least 20x20; noise is
        assumed to be `clip(clean + level * N(0, 1), 0, 1)`, independent per pixel and channel.
    Returns the estimated level in [0, 1]: about 0 for a clean photo (texture and JPEG
    artefacts read as a few thousandths), within about 0.01 of the truth from 0.02 to 0.5
    (docs/noise_estimation.md has the measured errors). Deterministic; an image above 512x512
    pixels is estimated from evenly spread tiles holding that many pixels.
    Raises FaceDenoiseError for arrays of the wrong shape, size, type or range.
    """
    tiles = _grey_if_equal(_sample_tiles(_checked(pixels)))
    stats = [_TileStatistics(tile) for tile in tiles]
    blocks = _Blocks(stats)
    # A block of one exact value holds no noise at any level (even clipped noise is that
    # flat with odds of 2^-64), only bars, margins and cut-out backgrounds added after the
    # noise: they would hold the level at 0 once they pass the start's tenth percentile.
    informative = (blocks.laplacian > _CONSTANT_ENERGY) | (blocks.gradient > _CONSTANT_ENERGY)
    if not informative.any():
        return 0.0
    level = _level_from(stats, blocks, informative)
    luminance_blocks = informative & (blocks.channel == 0)
    if stats[0].opponent_count == 1 or not luminance_blocks.any():
        return level
    # JPEG's 4:2:0 chroma subsampling (and cameras' chroma smoothing) leave the noise in the
    # luminance only: the colour differences then look clean and pull the joint level to
    # about 0. Luminance read alone well above the joint level is that case; on clean photos
    # luminance texture alone reads at most 0.021 above it (measured).
    luminance = _level_from(stats, blocks, luminance_blocks)
    if luminance > _LUMINANCE_RATIO * level + _LUMINANCE_MARGIN:
        return luminance * _LUMINANCE_ONLY_SCALE
    return level


class _Blocks:
    """The block statistics of all tiles, concatenated (see _TileStatistics)."""

    def __init__(self, stats):
        self.laplacian = np.concatenate([s.laplacian for s in stats])
        self.gradient = np.concatenate([s.gradient for s in stats])
        self.bins = np.concatenate([s.block_bins for s in stats])
        self.weights = np.concatenate([s.weights for s in stats])
        self.channel = np.concatenate([s.channel for s in stats])


def _level_from(stats, blocks: _Blocks, usable: np.ndarray) -> float:
    """The weak-texture iteration over the `usable` blocks."""
    level = _initial_level(blocks.laplacian[usable], blocks.bins[usable], blocks.weights[usable])
    for _ in range(_MAX_ITERATIONS):
        expected = _block_variance(blocks.bins, blocks.weights, level)
        weak = (
            usable
            & (blocks.laplacian <= _LAPLACIAN_LIMIT * expected)
            & (blocks.gradient <= _GRADIENT_LIMIT * expected)
        )
        if np.count_nonzero(weak) < _MIN_BLOCKS:
            break
        new_level = _pooled_level(stats, weak, blocks.laplacian)
        converged = abs(new_level - level) < _TOLERANCE
        level = new_level
        if converged:
            break
    return float(min(max(level, 0.0), 1.0))


def _checked(pixels) -> np.ndarray:
    """`pixels` as an HxWxC array (C = 1 or 3) of numbers in [0, 1], or a FaceDenoiseError
    saying what is wrong. No copy of a float32 image is made."""
    array = np.asarray(pixels)
    if array.dtype.kind not in "fiu":
        raise FaceDenoiseError(
            f"Noise estimation needs a float image in [0, 1], got an array of {array.dtype}."
        )
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise FaceDenoiseError(
            f"Noise estimation needs an HxWx3 or HxW image, got shape {np.shape(pixels)}."
        )
    if min(array.shape[:2]) < _MIN_SIDE:
        raise FaceDenoiseError(
            f"Noise estimation needs an image of at least {_MIN_SIDE}x{_MIN_SIDE} pixels, "
            f"got {array.shape[1]}x{array.shape[0]}."
        )
    low, high = array.min(), array.max()
    # Written so that NaN (for which every comparison is false) fails too.
    if not (low >= -_RANGE_TOLERANCE and high <= 1.0 + _RANGE_TOLERANCE):
        raise FaceDenoiseError(
            f"Noise estimation needs pixel values in [0, 1], got {low} to {high} "
            "(divide 8-bit images by 255)."
        )
    return array


def _sample_tiles(pixels: np.ndarray) -> list[np.ndarray]:
    """The whole image, or evenly spread square tiles of it holding about
    `_MAX_SAMPLED_PIXELS` pixels when it is larger (tiles, not resizing: resizing averages the
    noise away), as float32 clipped to [0, 1]."""
    height, width = pixels.shape[:2]
    if height * width <= _MAX_SAMPLED_PIXELS:
        tiles = [pixels]
    else:
        side = min(_SAMPLE_TILE, height, width)
        count = max(1, _MAX_SAMPLED_PIXELS // (side * side))
        rows = min(max(1, round(math.sqrt(count * height / width))), count)
        columns = max(1, count // rows)
        tops = np.linspace(0, height - side, rows).astype(int)
        lefts = np.linspace(0, width - side, columns).astype(int)
        tiles = [pixels[top : top + side, left : left + side] for top in tops for left in lefts]
    return [np.clip(tile.astype(np.float32), 0.0, 1.0) for tile in tiles]


def _grey_if_equal(tiles: list[np.ndarray]) -> list[np.ndarray]:
    """One channel of each tile when all three channels are equal to within rounding in every
    tile: a grey picture stored as RGB, whose colour differences would read as no noise."""
    if tiles[0].shape[2] == 1 or not all(
            channels_agree(tile, _GREY_TOLERANCE) for tile in tiles):
        return tiles
    return [tile[..., :1] for tile in tiles]


def channels_agree(pixels: np.ndarray, tolerance: float) -> bool:
    """True when the three channels of float (..., 3) `pixels` differ by at most `tolerance`
    everywhere: a grey picture stored as RGB."""
    return all(float(np.max(np.abs(pixels[..., first] - pixels[..., first + 1]), initial=0))
               <= tolerance for first in (0, 1))


class _TileStatistics:
    """Per-block energies of one tile, and the local statistics of its pixels.

    laplacian, gradient: (K x blocks,) mean squared residual and mean squared first
        differences per block and opponent channel (K of them); both equal the noise variance
        in a flat block.
    block_bins: (K x blocks, C) per-block mean of each colour channel as an index into
        `_MEAN_GRID`, and weights: the squared opponent weights of each of these blocks'
        channel (for the texture test).
    local_variance: (C, blocks, pixels per block) the variance of the 5x5 window around each
        pixel; cells: the same pixels' cell in a histogram over (5x5 mean on `_MEAN_GRID`,
        5x5 std in `_SPREAD_BINS` steps).
    """

    def __init__(self, tile: np.ndarray):
        colours = tile.shape[2]
        transform = _OPPONENT if colours == 3 else np.ones((1, 1))
        self.mixing = transform**2
        self.opponent_count = transform.shape[0]
        opponent = tile @ transform.T.astype(np.float32)
        laplacian, gradient = [], []
        for k in range(self.opponent_count):
            residual, gradient_energy = _residual_energies(np.ascontiguousarray(opponent[..., k]))
            laplacian.append(_blocks(residual).mean(axis=1))
            gradient.append(_blocks(gradient_energy).mean(axis=1))
        self.laplacian = np.concatenate(laplacian).astype(np.float64)
        self.gradient = np.concatenate(gradient).astype(np.float64)
        local = [_local_mean_variance(tile[..., c]) for c in range(colours)]
        means = np.stack([_blocks(mean) for mean, _ in local])  # (C, blocks, pixels)
        block_bins = np.rint(means.mean(axis=2).T * (_MEAN_GRID.size - 1)).astype(np.int32)
        self.block_bins = np.tile(block_bins, (self.opponent_count, 1))  # (K x blocks, C)
        self.weights = np.repeat(self.mixing, block_bins.shape[0], axis=0)
        self.channel = np.repeat(np.arange(self.opponent_count), block_bins.shape[0])
        self.local_variance = np.stack([_blocks(variance) for _, variance in local])
        mean_bins = np.rint(means * (_MEAN_GRID.size - 1)).astype(np.int32)
        spread_bins = np.minimum(
            np.sqrt(self.local_variance) * (_SPREAD_BINS / _SPREAD_RANGE), _SPREAD_BINS - 1
        ).astype(np.int32)
        self.cells = mean_bins * _SPREAD_BINS + spread_bins


def _local_mean_variance(channel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) variance of the 5x5 window around each pixel, cropped."""
    window = (_MEAN_WINDOW, _MEAN_WINDOW)
    channel = np.ascontiguousarray(channel, dtype=np.float64)
    mean = cv2.blur(channel, window, borderType=cv2.BORDER_REFLECT)
    square = cv2.blur(channel * channel, window, borderType=cv2.BORDER_REFLECT)
    crop = (slice(_BORDER, -_BORDER), slice(_BORDER, -_BORDER))
    return mean[crop], np.maximum(square[crop] - mean[crop] ** 2, 0.0)


def _residual_energies(channel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared Immerkaer residual and half the squared first differences, cropped like
    `_local_mean` (both have expectation equal to the noise variance on flat areas)."""
    residual = cv2.filter2D(channel, -1, _LAPLACIAN, borderType=cv2.BORDER_REFLECT)
    dx = np.zeros_like(channel)
    dy = np.zeros_like(channel)
    dx[:, :-1] = channel[:, 1:] - channel[:, :-1]
    dy[:-1, :] = channel[1:, :] - channel[:-1, :]
    crop = (slice(_BORDER, -_BORDER), slice(_BORDER, -_BORDER))
    return residual[crop] ** 2, 0.25 * (dx[crop] ** 2 + dy[crop] ** 2)


def _blocks(array: np.ndarray) -> np.ndarray:
    """(blocks, pixels per block) view of the whole 8x8 blocks of a 2-D array."""
    rows, columns = array.shape[0] // _BLOCK, array.shape[1] // _BLOCK
    trimmed = array[: rows * _BLOCK, : columns * _BLOCK]
    return (
        trimmed.reshape(rows, _BLOCK, columns, _BLOCK)
        .swapaxes(1, 2)
        .reshape(rows * columns, _BLOCK * _BLOCK)
    )


def _initial_level(laplacian, block_bins, weights) -> float:
    """The level at which the tenth percentile of (block energy / predicted noise variance)
    is what it is for pure noise: a start from below for the weak-texture iteration (a start
    from above lets textured blocks justify themselves)."""

    # np.quantile's linear interpolation between the two order statistics around the
    # quantile, from a partial sort (np.quantile itself costs several times more per call).
    position = _START_QUANTILE * (laplacian.size - 1)
    below = int(position)
    above = min(below + 1, laplacian.size - 1)
    fraction = position - below

    def low_quantile(level: float) -> float:
        expected = np.maximum(_block_variance(block_bins, weights, level), 1e-12)
        lower, upper = np.partition(laplacian / expected, (below, above))[[below, above]]
        return float(lower + (upper - lower) * fraction)

    low, high = 0.0, 1.0
    for _ in range(_BISECTIONS):
        middle = 0.5 * (low + high)
        if low_quantile(middle) > _START_RATIO:
            low = middle
        else:
            high = middle
    return low


def _pooled_level(stats, weak, laplacian) -> float:
    """The level at which the predicted noise variance over the kept blocks' pixels equals
    their measured residual energy.

    Pixels enter through a histogram over (local mean, local std) cells, holding the count
    and the sum of local variances per cell (weighted by the opponent transform), so a trial
    level costs a few operations per occupied cell.
    """
    size = _MEAN_GRID.size * _SPREAD_BINS
    counts = np.zeros(size)
    variances = np.zeros(size)
    start = 0
    for tile in stats:
        blocks = tile.cells.shape[1]
        kept = weak[start : start + tile.opponent_count * blocks].reshape(-1, blocks)
        start += kept.size
        # Each pixel of colour c counts once per kept opponent channel, times its weight there.
        pixel_weights = np.repeat(tile.mixing.T @ kept, tile.cells.shape[2], axis=1).ravel()
        cells = tile.cells.ravel()
        counts += np.bincount(cells, pixel_weights, minlength=size)
        variances += np.bincount(cells, pixel_weights * tile.local_variance.ravel(), minlength=size)
    occupied = np.flatnonzero(counts)
    counts, variances = counts[occupied], variances[occupied]
    mean_index = occupied // _SPREAD_BINS
    target = laplacian[weak].sum() * _BLOCK * _BLOCK

    def predicted(level: float) -> float:
        variance = _row_at_level(level, _VARIANCE)[mean_index]
        half_curvature = 0.5 * _row_at_level(level, _CURVATURE)[mean_index]
        base = counts * variance
        # Jensen's term (see _variance_row), held within half the base variance: it is a
        # second-order expansion, valid for small spreads only.
        jensen = half_curvature * (variances - base)
        return float(np.sum(base + np.clip(jensen, -0.5 * base, 0.5 * base)))

    return _solve_level(predicted, target)


def _solve_level(predicted, target: float) -> float:
    """The level in [0, 1] where the increasing function `predicted(level)` meets `target`."""
    low, high = 0.0, 1.0
    if predicted(low) >= target:
        return low
    if predicted(high) <= target:
        return high
    for _ in range(_BISECTIONS):
        middle = 0.5 * (low + high)
        if predicted(middle) < target:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def _block_variance(block_bins, weights, level: float) -> np.ndarray:
    """Predicted noise variance of each block's opponent residual (for the texture test).

    block_bins: (blocks, C) each colour channel's block mean as an index into `_MEAN_GRID`;
    weights: (blocks, C) the squared opponent weights of the block's channel.
    """
    variance = _row_at_level(level, _VARIANCE)
    return np.sum(variance[block_bins] * weights, axis=1)


_VARIANCE, _CURVATURE = 0, 1  # the two rows of `_variance_row`


def _row_at_level(level: float, part: int) -> np.ndarray:
    """`_variance_row(...)[part]` (one value per local mean) for `level`, interpolated
    linearly between the two grid levels around it."""
    position = min(max(level, 0.0), 1.0) * (_LEVEL_GRID.size - 1)
    index = min(int(position), _LEVEL_GRID.size - 2)
    weight = position - index
    return (_variance_row(index)[part] * (1.0 - weight)
            + _variance_row(index + 1)[part] * weight)


@functools.cache
def _variance_row(index: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise variance V of one pixel at grid level `_LEVEL_GRID[index]` as a function of the
    local mean (on `_MEAN_GRID`), and its second derivative V'' along the local mean.

    The clean value m whose clipped mean f(m, level) equals the local mean is found by
    interpolation (f increases with m; m is held to [0, 1]) and the clipped variance is read
    there. V is concave near the middle, so V read at a window's mean differs from the mean
    of V over the window's pixels by V''/2 times (the spread of the window's clean values
    minus the noise in its mean): `_pooled_level` adds that term, which it measures as
    V''/2 (local variance - V). Rows are built when first read: one estimate reads a few
    dozen of the 401 levels, so a process's first estimate does not pay for all of them.
    """
    means, stds = clipped_mean_std(_CLEAN_GRID, _LEVEL_GRID[index])
    clean_value = np.interp(_MEAN_GRID, means, _CLEAN_GRID)
    variance = np.interp(clean_value, _CLEAN_GRID, stds) ** 2
    step = _MEAN_GRID[1] - _MEAN_GRID[0]
    return variance, np.gradient(np.gradient(variance, step), step)


def clipped_mean_std(clean, level) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of `clip(clean + level * Z, 0, 1)`, Z ~ N(0, 1): closed forms.

    clean: clean values (any shape, broadcast against `level`); level: noise std >= 0.
    With a = -clean/level, b = (1 - clean)/level, P = Phi(b) - Phi(a):
    E[Y] = (1 - Phi(b)) + clean P + level (phi(a) - phi(b)),
    E[Y^2] = (1 - Phi(b)) + clean^2 P + 2 clean level (phi(a) - phi(b))
             + level^2 (P + a phi(a) - b phi(b)).
    Returns float64 arrays (mean, std); level 0 gives (clip(clean), 0).
    """
    clean, level = np.broadcast_arrays(np.asarray(clean, np.float64), np.asarray(level, np.float64))
    safe = np.maximum(level, 1e-12)
    a, b = -clean / safe, (1.0 - clean) / safe
    pdf_a, pdf_b = _normal_pdf(a), _normal_pdf(b)
    cdf_b = _normal_cdf(b)  # once: math.erf per element is most of the tables' build time
    inside = cdf_b - _normal_cdf(a)
    above = 1.0 - cdf_b
    mean = above + clean * inside + level * (pdf_a - pdf_b)
    second = (
        above
        + clean**2 * inside
        + 2.0 * clean * level * (pdf_a - pdf_b)
        + level**2 * (inside + a * pdf_a - b * pdf_b)
    )
    variance = np.maximum(second - mean**2, 0.0)
    noiseless = level <= 0
    mean = np.where(noiseless, np.clip(clean, 0.0, 1.0), mean)
    return mean, np.where(noiseless, 0.0, np.sqrt(variance))


_erf = np.frompyfunc(math.erf, 1, 1)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.asarray(_erf(x / math.sqrt(2.0)), np.float64))


def _normal_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
