"""The chroma stage: a luma-guided filter on the model's colour, as strong as the noise level.

Measured on the packaged weights, the model removes luma noise well but leaves colour
speckle: at 0.3 its colour error on held-out faces is five times FFDNet's while its luma
error is lower. Camera pipelines smooth colour more than brightness for the same reason
(the eye is far less sensitive to colour detail), so after the model the colour differences
R-Y, G-Y and B-Y (Y: BT.601 luma) go through a guided filter (He, Sun and Tang, 2010)
steered by the output's own luma: colour stays sharp where brightness has an edge and is
averaged where it is flat. Luma is unchanged, so detail is too. The radius grows with the
noise level and is zero below 0.03, so clean and barely noisy images come back untouched.
docs/architecture_experiments.md ("The chroma stage") has the measurements behind it.
"""

from __future__ import annotations

import cv2
import numpy as np

from facedenoise.chroma_settings import (
    GUIDE_EPSILON,
    LUMA_WEIGHTS,
    RADIUS_BY_LEVEL,
)


def chroma_radius(level: float | None) -> int:
    """The filter radius for a noise level in [0, 1] units (0: the stage is off; None, a
    model without a noise input: off)."""
    radius = 0
    for lowest, candidate in RADIUS_BY_LEVEL:
        if level is not None and level >= lowest:
            radius = candidate
    return radius


def smooth_chroma(rgb: np.ndarray, level: float | None) -> np.ndarray:
    """Smooth the colour of float32 HxWx3 RGB in [0, 1] for a noise level (see the module).

    Returns float32 HxWx3 in [0, 1] with the same luma (up to clipping); the input itself
    when the level's radius is 0.
    """
    radius = chroma_radius(level)
    if radius == 0:
        return rgb
    luma = rgb @ LUMA_WEIGHTS
    colour = rgb - luma[..., None]
    smoothed = _guided_filter(luma, colour, radius, GUIDE_EPSILON)
    return np.clip(luma[..., None] + smoothed, 0.0, 1.0).astype(np.float32, copy=False)


def smooth_chroma_batch(batch: np.ndarray, levels: list[float | None]) -> np.ndarray:
    """`smooth_chroma` over float32 (N, H, W, 3) with one level per image."""
    return np.stack([smooth_chroma(rgb, level) for rgb, level in zip(batch, levels, strict=True)])


def _box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.boxFilter(values, -1, (size, size), borderType=cv2.BORDER_REFLECT)


def _guided_filter(guide: np.ndarray, source: np.ndarray, radius: int,
                   epsilon: float) -> np.ndarray:
    """The guided filter of HxWxC `source` steered by HxW `guide`: in every window the
    output is the least-squares fit a * guide + b, averaged over the windows that cover a
    pixel. Linear in `source`, so colour differences that sum to zero under the luma weights
    still do."""
    guide = np.ascontiguousarray(guide, np.float32)[..., None]
    source = np.ascontiguousarray(source, np.float32)
    mean_guide = _box_mean(guide, radius)[..., None]
    variance = _box_mean(guide * guide, radius)[..., None] - mean_guide**2
    mean_source = _box_mean(source, radius)
    covariance = _box_mean(guide * source, radius) - mean_guide * mean_source
    slope = covariance / (variance + epsilon)
    offset = mean_source - slope * mean_guide
    return _box_mean(slope, radius) * guide + _box_mean(offset, radius)
