"""Seeded noise models: the degradation every model is trained and evaluated against.

The mission's noise is additive Gaussian with a fixed factor (0.3 by default):
`noisy = clip(clean + noise_factor * N(0, 1), 0, 1)`, drawn per pixel and channel on
float [0, 1] images. Every noisy evaluation file comes from a generator seeded by
`(seed, image id)`, so any one of them can be regenerated on its own:

    noisy = noisy_uint8(clean_uint8, noise_factor, seed, image_id)  # == the stored file
"""

from __future__ import annotations

import hashlib

import numpy as np

from facedenoise.config import NOISE_FACTOR

_UINT64_MASK = (1 << 64) - 1


def noise_rng(seed: int, image_id: str) -> np.random.Generator:
    """A generator that depends only on `seed` and `image_id`.

    The id enters through sha256 rather than Python's `hash()`, which is salted per process,
    so the same pair gives the same stream on every machine and in every worker.
    """
    id_digest = hashlib.sha256(image_id.encode("utf-8")).digest()
    entropy = [seed & _UINT64_MASK, int.from_bytes(id_digest[:16], "little")]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def add_gaussian_noise(
    clean: np.ndarray, noise_factor: float, rng: np.random.Generator
) -> np.ndarray:
    """Add `noise_factor * N(0, 1)` to every pixel and channel of `clean`, clipped to [0, 1].

    clean: float array in [0, 1], any shape (HxWx3 RGB for images).
    noise_factor: the standard deviation of the noise on the [0, 1] scale.
    rng: where the noise comes from; one `standard_normal(clean.shape, dtype=float32)` draw
        (float32: three times faster than float64, and far finer than 8-bit output needs), so
        a generator from `noise_rng` reproduces the stored evaluation files exactly.
    Returns float32 noisy pixels in [0, 1], same shape as `clean`.
    """
    noisy = rng.standard_normal(np.shape(clean), dtype=np.float32)
    noisy *= np.float32(noise_factor)
    noisy += np.asarray(clean, dtype=np.float32)
    return np.clip(noisy, 0.0, 1.0, out=noisy)


def noisy_uint8(clean: np.ndarray, noise_factor: float, seed: int, image_id: str) -> np.ndarray:
    """The 8-bit noisy version of an 8-bit clean image, exactly as `prepare` stores it.

    clean: uint8 HxWx3 RGB. Returns uint8 of the same shape (rounded to nearest).
    """
    from facedenoise.imageio import quantize

    clean_float = clean.astype(np.float32) / np.float32(255.0)
    return quantize(add_gaussian_noise(clean_float, noise_factor, noise_rng(seed, image_id)))


LEVEL_WEIGHT_FLOOR = 0.02  # levels below ~5/255 weigh as much as 5/255


def level_weight(level, power: float = 2.0):
    """The loss weight of an image with noise `level` (a float, or an array or tensor of
    levels of any backend): 1 at the mission's 0.3, 1/level^power in shape (see
    TrainConfig.level_weighted_loss and level_weight_power)."""
    floor = LEVEL_WEIGHT_FLOOR**2
    return ((NOISE_FACTOR**2 + floor) / (level**2 + floor)) ** (power / 2)
