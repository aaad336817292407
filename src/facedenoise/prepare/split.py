"""The seeded order in which candidates are considered, and the split of each selected image."""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def seeded_order(count: int, seed: int) -> np.ndarray:
    """The order in which candidates (sorted by name) are considered for the selection."""
    return np.random.default_rng(seed & 0xFFFF_FFFF_FFFF_FFFF).permutation(count)


def _rounded_share(count: int, fraction: Fraction) -> int:
    """round(count * fraction), halves up, in exact arithmetic."""
    return (2 * count * fraction.numerator + fraction.denominator) // (2 * fraction.denominator)


def split_of(position: int, test_fraction: float, val_fraction: float) -> str:
    """The split of the image at `position` (0-based) in the seeded selection.

    Splits are interleaved rather than taken as blocks: any prefix of n images holds exactly
    round(n * test_fraction) test images, and validation takes round(m * val_fraction) of the m
    others. Because the order is already a seeded shuffle this is as random as blocks, but an
    image's split is known the moment it is selected (so prepare can stream), and a smaller
    --count with the same seed gives a prefix of the larger split.
    """
    test = Fraction(test_fraction).limit_denominator(1_000_000)
    if _rounded_share(position + 1, test) > _rounded_share(position, test):
        return "test"
    val = Fraction(val_fraction).limit_denominator(1_000_000)
    others_before = position - _rounded_share(position, test)
    if _rounded_share(others_before + 1, val) > _rounded_share(others_before, val):
        return "val"
    return "train"


def id_width(target: int) -> int:
    """Digits of the zero-padded ids: at least 5, as in FFHQ's 00000.png."""
    return max(5, len(str(max(target - 1, 0))))
