"""Test-time self-ensemble: the model averaged over flips and rotations of its input.

Each transform is undone on the output before averaging, so a model that treats every
orientation alike gives back its plain answer, and what it does differently per orientation
(its errors, and patterns tied to its down-sampling grid) is averaged down. On even-sized
inputs (the Denoiser pads to the model's multiple) a flip also moves every pixel to the other
parity, so the first four transforms put each pixel at all four offsets of a 2x2 fold.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from facedenoise.errors import FaceDenoiseError

# (quarter turns, mirror left-right afterwards), in the order the sizes take them: 2 adds the
# half turn (both parities move), 4 the two mirrors (every 2x2 offset), 8 the quarter turns.
TRANSFORMS = ((0, False), (2, False), (0, True), (2, True),
              (1, False), (3, False), (1, True), (3, True))
ENSEMBLE_SIZES = (1, 2, 4, 8)


def check_ensemble(size: int) -> int:
    """`size` if it is an int in ENSEMBLE_SIZES, else FaceDenoiseError (2.0 and True too)."""
    if isinstance(size, bool) or not isinstance(size, int) or size not in ENSEMBLE_SIZES:
        sizes = ", ".join(str(choice) for choice in ENSEMBLE_SIZES)
        raise FaceDenoiseError(f"--ensemble must be one of {sizes}, not {size}.")
    return size


def transform(batch: np.ndarray, turns: int, mirror: bool) -> np.ndarray:
    """An (N, H, W, C) batch turned by `turns` quarter turns, then mirrored left-right."""
    turned = np.rot90(batch, turns, axes=(1, 2))
    return turned[:, :, ::-1] if mirror else turned


def undo(batch: np.ndarray, turns: int, mirror: bool) -> np.ndarray:
    """The inverse of `transform(batch, turns, mirror)`."""
    unmirrored = batch[:, :, ::-1] if mirror else batch
    return np.rot90(unmirrored, -turns, axes=(1, 2))


def self_ensemble(
    predict: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, size: int
) -> np.ndarray:
    """The mean of `predict` over the first `size` TRANSFORMS of `batch` (N, H, W, C), each
    undone. `predict` maps float32 batches to batches of the same shape; size 1 calls it once
    on `batch` itself. Returns a new float32 array (C order, writable)."""
    if size == 1:
        return predict(batch)
    # Summed in float64, where eight equal float32 values add and divide exactly: a model
    # blind to orientation gives back its plain answer bit for bit.
    total = None
    for turns, mirror in TRANSFORMS[:size]:
        output = undo(predict(np.ascontiguousarray(transform(batch, turns, mirror))), turns, mirror)
        if total is None:
            total = np.array(output, np.float64, order="C")
        else:
            total += output
    return np.ascontiguousarray(total / size, np.float32)
