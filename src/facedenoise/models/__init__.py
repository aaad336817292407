"""Architecture registry: name -> pure builder(ModelConfig) -> uncompiled keras.Model.

Every model maps float [0, 1] RGB images (batch, H, W, 3) of any size to the same shape.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from facedenoise.config import ModelConfig
from facedenoise.errors import FaceDenoiseError
from facedenoise.models.original import build_original
from facedenoise.models.unet import build_unet

ARCHITECTURES: dict[str, Callable[[ModelConfig], keras.Model]] = {
    "unet": build_unet,
    "original": build_original,
}


def build_model(config: ModelConfig) -> keras.Model:
    """Build the architecture named by `config.arch` (uncompiled)."""
    try:
        builder = ARCHITECTURES[config.arch]
    except KeyError:
        valid = ", ".join(ARCHITECTURES)
        raise FaceDenoiseError(
            f"Unknown architecture '{config.arch}'; choose one of: {valid}."
        ) from None
    if config.width < 1 or config.depth < 1 or config.convs_per_level < 1:
        raise FaceDenoiseError("Model width, depth and convs_per_level must be at least 1.")
    return builder(config)


def takes_noise_level(model: keras.Model) -> bool:
    """True for a noise-conditional model: inputs `noisy` (N, H, W, 3) and `noise_level` (N, 1)."""
    return len(model.inputs) == 2


def count_macs(model: keras.Model, size: int) -> int:
    """Multiply-accumulates of the model's convolutions for one size x size RGB image."""
    config = model.get_config()
    config["layers"][0]["config"]["batch_shape"] = (None, size, size, 3)
    sized = keras.Model.from_config(config)  # same graph, static spatial shapes
    total = 0
    for layer in sized.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            _, height, width, channels_in = layer.input.shape
            kernel_h, kernel_w = layer.kernel_size
            total += height * width * kernel_h * kernel_w * channels_in * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, _ = layer.output.shape
            kernel_h, kernel_w, channels_in, filters = layer.kernel.shape
            total += height * width * kernel_h * kernel_w * channels_in * filters
    return int(total)
