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
