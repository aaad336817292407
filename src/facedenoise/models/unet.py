"""`unet`: the default, a residual U-Net designed for quality per FLOP.

- The input is folded 2x2 into channels first (as in FFDNet), so every convolution runs at
  most at half resolution: a quarter of the cost at the level that dominates a plain U-Net,
  and twice the receptive field, which heavy noise (std 0.3) needs.
- Channels double at each level (width, 2*width, ...), so deep levels see wide context cheaply.
- Residual learning: the network predicts the noise and the output is clip(noisy - noise).
- A small full-resolution head predicts that noise from the unfolded features and the noisy
  image itself. Noise is pixel-level detail; predicted in folded form only, it is learned
  several times more slowly (measured: validation MSE 0.034 vs 0.0053 after the same 300
  steps on the bundled faces, for about 10% more compute with the head).
"""

from __future__ import annotations

import keras
from keras import layers

from facedenoise.config import ModelConfig
from facedenoise.models.inputs import model_inputs, with_noise_level
from facedenoise.models.layers import (
    CropToMatch,
    DepthToSpace,
    PadToMultiple,
    SpaceToDepth,
    SubtractNoise,
)

FOLD = 2  # space-to-depth block at the input
HEAD_CHANNELS = 8  # features per pixel handed to the full-resolution head


def _conv_block(x, filters: int, blocks: int, name: str):
    for index in range(1, blocks + 1):
        conv = layers.Conv2D(
            filters, 3, padding="same", activation="relu", kernel_initializer="he_normal",
            name=f"{name}_conv{index}",
        )
        x = conv(x)
    return x


def build_unet(config: ModelConfig) -> keras.Model:
    """A residual U-Net of `config.depth` levels starting at `config.width` channels.

    Input and output: float [0, 1] RGB, shape (batch, H, W, 3), any H and W of at least
    half of 2 * 2**(depth - 1) pixels; with `config.noise_input`, a second input, the noise
    level (batch, 1), enters as a constant map at the input and at the head.
    """
    channels = [config.width * 2**level for level in range(config.depth)]
    inputs, noise_level = model_inputs(config)
    noisy = inputs[0] if noise_level is not None else inputs
    padded = PadToMultiple(FOLD * 2 ** (config.depth - 1), name="pad")(noisy)
    x = with_noise_level(SpaceToDepth(FOLD, name="fold")(padded), noise_level, "fold")
    skips = []
    for level, filters in enumerate(channels[:-1]):
        x = _conv_block(x, filters, config.convs_per_level, f"enc{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = _conv_block(x, channels[-1], config.convs_per_level, "bottleneck")
    for level in reversed(range(config.depth - 1)):
        x = layers.Conv2DTranspose(channels[level], 2, strides=2, name=f"dec{level}_up")(x)
        x = layers.Concatenate(name=f"dec{level}_concat")([x, skips[level]])
        x = _conv_block(x, channels[level], config.convs_per_level, f"dec{level}")
    x = _conv_block(x, HEAD_CHANNELS * FOLD * FOLD, 1, "head_fold")
    x = DepthToSpace(FOLD, name="unfold")(x)
    x = layers.Concatenate(name="head_concat")([x, padded])
    x = with_noise_level(x, noise_level, "head")
    x = _conv_block(x, 2 * HEAD_CHANNELS, 1, "head")
    noise = layers.Conv2D(3, 3, padding="same", dtype="float32", name="noise")(x)
    clean = SubtractNoise(dtype="float32", name="subtract")([padded, noise])
    clean = CropToMatch(dtype="float32", name="crop")([clean, noisy])
    return keras.Model(inputs, clean, name="unet")
