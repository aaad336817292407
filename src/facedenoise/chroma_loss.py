"""The chroma stage inside the loss: train a noise-conditional model on what `denoise` returns.

`denoise` smooths the model's colour after it (`facedenoise.inference.chroma`). A network
trained on its own output spends capacity on colour noise that the stage removes anyway; with
`TrainConfig.loss_after_chroma` the loss and the metrics compare the clean image with the
output after this differentiable copy of the stage, so the network can leave fine colour
noise to it. A Keras loss sees only (target, prediction), so the target then carries each
image's noise level as a fourth channel (`facedenoise.data.with_level_in_target`).

Written in `keras.ops`, so it runs under any Keras 3 backend.
"""

from __future__ import annotations

import math

from keras import ops

from facedenoise.chroma_settings import GUIDE_EPSILON, LUMA_WEIGHTS, RADIUS_BY_LEVEL


def split_target(target):
    """(clean (N, H, W, 3), level (N,)) from a target with the level as a fourth channel."""
    return target[..., :3], target[:, 0, 0, 3]


def smooth_chroma_differentiable(rgb, level):
    """The chroma stage of `facedenoise.inference.chroma.smooth_chroma`, differentiable and
    batched: float (N, H, W, 3) RGB in [0, 1] and one level per image, shape (N,).

    Returns (N, H, W, 3); images whose level turns the stage off come back unchanged. Each
    radius is applied to the whole batch and picked per image (the filter costs little
    beside the network).
    """
    rgb = ops.cast(rgb, "float32")
    level = ops.cast(level, "float32")
    luma = ops.sum(rgb * ops.convert_to_tensor(LUMA_WEIGHTS), axis=-1, keepdims=True)
    colour = rgb - luma
    uppers = [lowest for lowest, _ in RADIUS_BY_LEVEL[1:]] + [math.inf]
    output = rgb
    for (lowest, radius), upper in zip(RADIUS_BY_LEVEL, uppers, strict=True):
        chosen = ops.cast(ops.logical_and(level >= lowest, level < upper), "float32")
        smoothed = ops.clip(luma + _guided_filter(luma, colour, radius), 0.0, 1.0)
        output = output + chosen[:, None, None, None] * (smoothed - output)
    return output


def _box_mean(values, radius: int):
    """Mean over (2r+1)^2 windows with mirrored borders (OpenCV's BORDER_REFLECT)."""
    padding = [(0, 0), (radius, radius), (radius, radius), (0, 0)]
    mirrored = ops.pad(values, padding, mode="symmetric")
    return ops.average_pool(mirrored, 2 * radius + 1, strides=1, padding="valid",
                             data_format="channels_last")


def _guided_filter(guide, source, radius: int):
    """The guided filter of (N, H, W, C) `source` steered by (N, H, W, 1) `guide` (see
    `facedenoise.inference.chroma._guided_filter`)."""
    mean_guide = _box_mean(guide, radius)
    variance = _box_mean(guide * guide, radius) - mean_guide**2
    mean_source = _box_mean(source, radius)
    covariance = _box_mean(guide * source, radius) - mean_guide * mean_source
    slope = covariance / (variance + GUIDE_EPSILON)
    offset = mean_source - slope * mean_guide
    return _box_mean(slope, radius) * guide + _box_mean(offset, radius)
