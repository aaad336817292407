"""The inputs every architecture shares: the noisy image and, optionally, its noise level."""

from __future__ import annotations

import keras
from keras import layers

from facedenoise.config import ModelConfig
from facedenoise.models.layers import NoiseLevelMap


def model_inputs(config: ModelConfig):
    """(model inputs, noise-level input or None); the first input is always `noisy`."""
    noisy = keras.Input(shape=(None, None, 3), name="noisy")
    if not config.noise_input:
        return noisy, None
    level = keras.Input(shape=(1,), name="noise_level")
    return [noisy, level], level


def with_noise_level(x, level, name: str):
    """Concatenate the noise-level map to `x` (no-op for a model without a noise input)."""
    if level is None:
        return x
    level_map = NoiseLevelMap(name=f"{name}_level")([x, level])
    return layers.Concatenate(name=f"{name}_with_level")([x, level_map])
