"""`resunet` and `nafunet`: noise-conditional U-Nets with additive skips, for quality per FLOP.

Both share one skeleton and differ only in their block:
- The input is folded 2x2 into channels (as in FFDNet), so the network runs at half
  resolution, and the noise level enters as a constant map beside it (FFDNet, DRUNet).
- Each level has `blocks_per_level` blocks in the encoder and in the decoder; a 2x2
  convolution with stride 2 goes down, a 1x1 convolution and a pixel shuffle go up (no
  transposed convolution: its uneven overlaps are a classic source of grid artefacts), and
  skips are added rather than concatenated (DRUNet), which halves the decoder's cost.
- Residual learning with a full-resolution head, as in `unet`: the network predicts the noise
  and the output is clip(noisy - min(1, level / level_fade) * prediction, 0, 1)
  (`scale_by_level`): a clean image (level 0) comes back untouched by construction. (With
  `level_fade` None the prediction is multiplied by the level itself, i.e. predicted in units
  of the level, as diffusion models do: measured, a network that only sees the level as an
  added input channel learns that division poorly, so the default fades in at 0.02 instead.)
- `resunet` blocks: x + conv3x3(relu(conv3x3(x))).
- `nafunet` blocks: NAFNet's (LayerNorm, 1x1 expand, 3x3 depthwise, SimpleGate, simplified
  channel attention; then a gated 1x1 feed-forward), about a third of the MACs of a
  `resunet` block of the same width.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from facedenoise.config import ModelConfig
from facedenoise.models.inputs import model_inputs, with_noise_level
from facedenoise.models.layers import (
    ChannelScale,
    CropToMatch,
    DepthToSpace,
    LearnedScale,
    LevelModulation,
    PadToMultiple,
    ScaleByLevel,
    SimpleGate,
    SpaceToDepth,
    SubtractNoise,
)

FOLD = 2  # space-to-depth block at the input
HEAD_CHANNELS = 8  # features per pixel handed to the full-resolution head
LEVEL_EMBEDDING = 32  # features of the level that modulate each block (level_modulation)

Block = Callable[..., object]


def _conv(filters: int, kernel: int, name: str, activation=None, strides: int = 1,
          initializer="he_normal"):
    return layers.Conv2D(
        filters, kernel, strides=strides, padding="same", activation=activation,
        kernel_initializer=initializer, name=name,
    )


def residual_block(x, channels: int, name: str, level_embedding=None,
                   modulate_residual: bool = False):
    """x + conv3x3(relu(conv3x3(x))): the plain residual block of DRUNet and EDSR; with a
    `level_embedding`, the first convolution's output is modulated by the level before the
    ReLU (`LevelModulation`, FiLM), and with `modulate_residual` the second's as well.

    The second convolution starts at zero, so every block starts as the identity: without
    normalisation, He-initialised branches would double the activations' variance per block.
    """
    if level_embedding is None:
        y = _conv(channels, 3, f"{name}_conv1", activation="relu")(x)
    else:
        y = _conv(channels, 3, f"{name}_conv1")(x)
        y = LevelModulation(channels, name=f"{name}_film")([y, level_embedding])
        y = layers.ReLU(name=f"{name}_relu")(y)
    y = _conv(channels, 3, f"{name}_conv2", initializer="zeros")(y)
    if modulate_residual:
        y = LevelModulation(channels, name=f"{name}_film2")([y, level_embedding])
    return layers.Add(name=f"{name}_add")([x, y])


def naf_block(x, channels: int, name: str):
    """NAFNet's block: a gated depthwise-convolution branch, then a gated feed-forward."""
    y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(x)
    y = _conv(2 * channels, 1, f"{name}_expand")(y)
    y = layers.DepthwiseConv2D(3, padding="same", name=f"{name}_depthwise")(y)
    y = SimpleGate(name=f"{name}_gate1")(y)
    y = ChannelScale(name=f"{name}_attention")(y)
    y = _conv(channels, 1, f"{name}_project")(y)
    x = layers.Add(name=f"{name}_add1")([x, LearnedScale(name=f"{name}_beta")(y)])
    y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(x)
    y = _conv(2 * channels, 1, f"{name}_ffn_expand")(y)
    y = SimpleGate(name=f"{name}_gate2")(y)
    y = _conv(channels, 1, f"{name}_ffn_project")(y)
    return layers.Add(name=f"{name}_add2")([x, LearnedScale(name=f"{name}_gamma")(y)])


def _blocks(x, block: Block, count: int, channels: int, name: str, level_embedding=None,
            modulate_residual: bool = False):
    extra = {} if level_embedding is None else {"level_embedding": level_embedding,
                                                "modulate_residual": modulate_residual}
    for index in range(1, count + 1):
        x = block(x, channels, f"{name}_block{index}", **extra)
    return x


def build_skeleton(config: ModelConfig, block: Block, name: str) -> keras.Model:
    """The shared U-Net skeleton of `resunet` and `nafunet` (see the module docstring).

    Input: float [0, 1] RGB (batch, H, W, 3) and, when `config.noise_input`, the noise level
    (batch, 1) in [0, 1] units; output: float [0, 1] RGB of the input's shape. H and W must
    be at least half of 2 * 2**(depth - 1) pixels.
    """
    channels = [config.width * 2**level for level in range(config.depth)]
    inputs, level = model_inputs(config)
    noisy = inputs[0] if level is not None else inputs
    padded = PadToMultiple(FOLD * 2 ** (config.depth - 1), name="pad")(noisy)
    x = with_noise_level(SpaceToDepth(FOLD, name="fold")(padded), level, "fold")
    x = _conv(channels[0], 3, "stem")(x)
    embedding = None
    if level is not None and config.level_modulation:
        embedding = layers.Dense(LEVEL_EMBEDDING, activation="relu", name="level_embedding")(
            level)
    modulate = config.residual_modulation
    skips = []
    for index, filters in enumerate(channels[:-1]):
        x = _blocks(x, block, config.blocks_per_level, filters, f"enc{index}", embedding,
                    modulate)
        skips.append(x)
        x = _conv(channels[index + 1], 2, f"enc{index}_down", strides=2)(x)
    x = _blocks(x, block, config.middle_blocks, channels[-1], "middle", embedding, modulate)
    for index in reversed(range(config.depth - 1)):
        x = _conv(channels[index] * 4, 1, f"dec{index}_up")(x)
        x = DepthToSpace(2, name=f"dec{index}_shuffle")(x)
        x = layers.Add(name=f"dec{index}_skip")([x, skips[index]])
        x = _blocks(x, block, config.blocks_per_level, channels[index], f"dec{index}",
                    embedding, modulate)
    x = _conv(HEAD_CHANNELS * FOLD * FOLD, 3, "head_fold", activation="relu")(x)
    x = DepthToSpace(FOLD, name="unfold")(x)
    x = layers.Concatenate(name="head_concat")([x, padded])
    x = with_noise_level(x, level, "head")
    x = _conv(2 * HEAD_CHANNELS, 3, "head_conv1", activation="relu")(x)
    # Starts at zero: an untrained model hands the input back instead of adding noise.
    noise = layers.Conv2D(3, 3, padding="same", dtype="float32", kernel_initializer="zeros",
                          name="noise")(x)
    if level is not None and config.scale_by_level:
        noise = ScaleByLevel(config.level_fade, dtype="float32", name="noise_times_level")(
            [noise, level])
    clean = SubtractNoise(dtype="float32", name="subtract")([padded, noise])
    clean = CropToMatch(dtype="float32", name="crop")([clean, noisy])
    return keras.Model(inputs, clean, name=name)


def build_resunet(config: ModelConfig) -> keras.Model:
    """`resunet`: the skeleton with plain residual blocks."""
    return build_skeleton(config, residual_block, "resunet")


def build_nafunet(config: ModelConfig) -> keras.Model:
    """`nafunet`: the skeleton with NAFNet blocks."""
    return build_skeleton(config, naf_block, "nafunet")
