"""`original`: the notebook's U-Net, reproduced faithfully for comparison.

Five encoder levels of two 3x3 convolutions (128 filters, ReLU) and max-pooling, a 4x4
bottleneck, five decoder levels of a stride-2 transposed convolution, concatenation with the
skip and two 3x3 convolutions, and a sigmoid 3x3 output: 4,581,507 parameters for RGB input.
"""

from __future__ import annotations

import keras
from keras import layers

from facedenoise.config import ModelConfig
from facedenoise.models.layers import CropToMatch, PadToMultiple

FILTERS = 128
LEVELS = 5


def _two_convs(x, name: str):
    for index in (1, 2):
        conv = layers.Conv2D(
            FILTERS, 3, padding="same", activation="relu", name=f"{name}_conv{index}"
        )
        x = conv(x)
    return x


def build_original(config: ModelConfig) -> keras.Model:
    """The notebook's U-Net on any HxW (padded to a multiple of 32, cropped back).

    Input and output: float [0, 1] RGB, shape (batch, H, W, 3).
    """
    del config  # the original has a fixed shape; width/depth do not apply
    noisy = keras.Input(shape=(None, None, 3), name="noisy")
    x = PadToMultiple(2**LEVELS, name="pad")(noisy)
    skips = []
    for level in range(LEVELS):
        x = _two_convs(x, f"enc{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = _two_convs(x, "bottleneck")
    for level in reversed(range(LEVELS)):
        x = layers.Conv2DTranspose(FILTERS, 3, strides=2, padding="same", name=f"dec{level}_up")(x)
        x = layers.Concatenate(name=f"dec{level}_concat")([x, skips[level]])
        x = _two_convs(x, f"dec{level}")
    x = layers.Conv2D(3, 3, padding="same", activation="sigmoid", dtype="float32", name="output")(x)
    clean = CropToMatch(dtype="float32", name="crop")([x, noisy])
    return keras.Model(noisy, clean, name="original")
