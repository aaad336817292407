"""Noise levels: check a level someone asked for, or estimate one per image.

A noise level is the std of the Gaussian noise before clipping, in [0, 1] units (0.3 is the
mission's 76.5/255). `AUTO` asks for an estimate from the image itself.
"""

from __future__ import annotations

import math

import numpy as np

from facedenoise.config import AUTO, NOISE_LEVEL_RANGE
from facedenoise.errors import FaceDenoiseError

NoiseLevel = float | str | None  # a level, AUTO, or None (a default chosen by the caller)


def check_noise_level(value: NoiseLevel) -> float | str:
    """AUTO, or `value` as a float in NOISE_LEVEL_RANGE; raises FaceDenoiseError otherwise.

    Accepts None and 'auto' (any case) for AUTO, numbers, and numeric strings ("0.15").
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == AUTO):
        return AUTO
    low, high = NOISE_LEVEL_RANGE
    try:
        level = float(value)
    except (TypeError, ValueError):
        level = math.nan
    if isinstance(value, bool) or not (math.isfinite(level) and low <= level <= high):
        raise FaceDenoiseError(
            f"The noise level must be '{AUTO}' or a number from {low:g} to {high:g} (the std "
            f"of the noise on [0, 1] images; 0.3 is 76.5/255), not {value!r}."
        )
    return level


def estimate_level(pixels: np.ndarray) -> float:
    """The noise level of float32 HxWx3 [0, 1] pixels, clamped to NOISE_LEVEL_RANGE.

    Raises FaceDenoiseError when the image cannot be estimated from (too small), saying how
    to give the level instead.
    """
    try:
        estimate = _estimator()(pixels)
    except FaceDenoiseError as error:
        raise FaceDenoiseError(
            f"{error} Give the noise level instead (--noise-level, or noise_level=...)."
        ) from error
    low, high = NOISE_LEVEL_RANGE
    return float(min(max(estimate, low), high))


def _estimator():
    # Looked up at call time (tests replace it); the estimator is pure NumPy/OpenCV.
    from facedenoise.noise_estimation import estimate_noise_level

    return estimate_noise_level


# A level told well above an image's own noise: the network, trained only on images carrying
# the level it is told, then undoes a clipping bias that is not there (brighter, +20-28%
# contrast) and draws a texture on skin; 2x over at 0.2 costs 2 dB, 0.3 on a clean face 6 dB,
# 0.1 on a clean photo 2.4 dB (and a grid on smooth areas) against topping the noise up first
# (docs/noise_estimation.md, "Levels told too high"). Above TOP_UP_FROM, noise is added until
# the image carries at least the told level over TOP_UP_RATIO; at or below it, topping up
# costs more than over-telling (clean faces told 0.03: -0.9 dB).
TOP_UP_FROM = 0.05
TOP_UP_RATIO = 1.25
TOP_UP_SEED = 0


def top_up_std(told: float, estimate: float) -> float:
    """The std of Gaussian noise to add to an image whose own noise reads `estimate` before
    denoising it at `told`: 0 unless `told` is above TOP_UP_FROM and the image's noise is
    below `told` / TOP_UP_RATIO (noise adds in variance)."""
    if told <= TOP_UP_FROM:
        return 0.0
    return math.sqrt(max((told / TOP_UP_RATIO) ** 2 - estimate**2, 0.0))


# Correlated noise, such as camera noise after demosaicing, reads low at the fine scale
# (0.029 for std 0.1 blurred by a Gaussian of sigma 0.7) and about right on the 2x2 means
# (0.086); granular textures read higher there too (0.12 on a clean photo of sand, fine
# 0.03). `auto` takes the half-scale reading where it is higher, but at most this many
# times the fine one: on held-out faces that noise at 0.03 / 0.05 / 0.1 gains 1.1 / 1.3 /
# 2.5 dB more than with the fine reading alone, white noise, clean JPEGs and noise 0.1 then
# JPEG read as before, and a clean crop of sand comes back at 32.9 dB (was 42.6; 3 allowed
# 27.3). docs/noise_estimation.md, "Correlated noise under auto".
CORRELATED_RATIO = 2.0
# Below this fine reading (0.5/255) the half-scale one could add at most as much again, so
# it is not read: most clean photos read under it, and on a small face it costs about as
# much time again as the first (docs/noise_estimation.md, "Speed").
CLEAN_BELOW = 0.002


def auto_level(pixels: np.ndarray) -> float:
    """The level `--noise-level auto` uses for float32 HxWx3 [0, 1] pixels: the estimate
    (`estimate_level`), raised towards the estimate at half scale (`_half_scale`) up to
    CORRELATED_RATIO times itself. Raises FaceDenoiseError when `pixels` are too small."""
    fine = estimate_level(pixels)
    if fine < CLEAN_BELOW:
        return fine
    raised = min(_half_scale(pixels, fine), CORRELATED_RATIO * fine, NOISE_LEVEL_RANGE[1])
    return max(fine, raised)


def noise_already_there(pixels: np.ndarray) -> float:
    """How much noise an image may already carry, for the top-up: the larger of its estimate
    and its estimate at half scale (`_half_scale`), so that correlated noise counts; that
    granular textures read higher at half scale only means less noise is added. Raises
    FaceDenoiseError when `pixels` are too small to estimate."""
    fine = estimate_level(pixels)
    return max(fine, _half_scale(pixels, fine))


def _half_scale(pixels: np.ndarray, fine: float) -> float:
    """The estimate of the image's 2x2 means times 2 (white noise keeps its std there, so it
    reads as `fine`, the estimate of `pixels`); `fine` when the means are too small."""
    import cv2  # as the estimator; area resizing by exactly 1/2 is the 2x2 mean

    height, width = pixels.shape[0] // 2, pixels.shape[1] // 2
    even = np.asarray(pixels[: 2 * height, : 2 * width], np.float32)  # cv2 takes few dtypes
    means = cv2.resize(even, (width, height), interpolation=cv2.INTER_AREA)
    try:
        return 2 * estimate_level(means)
    except FaceDenoiseError:  # too small at half scale
        return fine


# A black-and-white photo in a colour JPEG comes back a level or two off grey.
GREY_TOLERANCE = 2 / 255


def is_grey(pixels: np.ndarray) -> bool:
    """True when the three channels of float32 (..., 3) `pixels` agree within GREY_TOLERANCE
    everywhere (a black-and-white photo, whether stored grey or as RGB)."""
    from facedenoise.noise_estimation import channels_agree

    return channels_agree(pixels, GREY_TOLERANCE)


def add_top_up(rows: np.ndarray, first_row: int, std: float) -> np.ndarray:
    """float32 rows (R, W, 3) of an image starting at row `first_row`, with Gaussian noise of
    `std` added and clipped to [0, 1], independent per channel as the models were trained on
    (also on a black-and-white photo, whose output is made grey afterwards: grey noise
    reads as more luminance noise than the level, and the worst clean face told 0.3 fell
    from 23.8 to 21.8 dB). Each image row draws its own seeded noise, so the same row gets
    the same noise however the image is cut into tiles or bands."""
    if std == 0:
        return rows
    topped = np.empty(rows.shape, np.float32)  # filled in place: one image-sized array
    for index in range(len(rows)):
        rng = np.random.default_rng((TOP_UP_SEED, first_row + index))
        rng.standard_normal(rows.shape[1:], np.float32, out=topped[index])
    topped *= np.float32(std)
    topped += rows
    return np.clip(topped, 0, 1, out=topped)
