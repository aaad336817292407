"""Architecture registry: name -> pure builder(ModelConfig) -> uncompiled keras.Model.

Every model maps float [0, 1] RGB images (batch, H, W, 3) of any size to the same shape.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from facedenoise.config import ModelConfig, check_model_config
from facedenoise.models.original import build_original
from facedenoise.models.resunet import build_nafunet, build_resunet
from facedenoise.models.unet import build_unet

# Keyed in the order of config.ARCHITECTURES (the names commands check without Keras).
ARCHITECTURES: dict[str, Callable[[ModelConfig], keras.Model]] = {
    "resunet": build_resunet,
    "nafunet": build_nafunet,
    "unet": build_unet,
    "original": build_original,
}
# The notebook's network is reproduced as it was: it has no noise-level input.
WITHOUT_NOISE_INPUT = ("original",)


def build_model(config: ModelConfig) -> keras.Model:
    """Build the architecture named by `config.arch` (uncompiled)."""
    check_model_config(config)
    return ARCHITECTURES[config.arch](config)


def describe(config: ModelConfig, size: int = 128) -> dict:
    """Plain facts about one configuration: parameters, GMACs per size x size RGB image, and
    whether it takes a noise-level input."""
    model = build_model(config)
    return {
        "arch": config.arch,
        "parameters": int(model.count_params()),
        "gmacs": count_macs(model, size) / 1e9,
        "noise_input": takes_noise_level(model),
    }


def takes_noise_level(model: keras.Model) -> bool:
    """True for a noise-conditional model: inputs `noisy` (N, H, W, 3) and `noise_level` (N, 1)."""
    return len(model.inputs) == 2


def count_macs(model: keras.Model, size: int) -> int:
    """Multiply-accumulates of the model's convolutions for one size x size image."""
    config = model.get_config()
    for layer in config["layers"]:
        shape = layer["config"].get("batch_shape")
        if layer["class_name"] == "InputLayer" and len(shape) == 4:
            layer["config"]["batch_shape"] = (None, size, size, shape[-1])
    sized = keras.Model.from_config(config)  # same graph, static spatial shapes
    total = 0
    for layer in sized.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, height, width, _ = layer.output.shape
            kernel_h, kernel_w, channels_in, multiplier = layer.kernel.shape
            total += height * width * kernel_h * kernel_w * channels_in * multiplier
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            _, height, width, channels_in = layer.input.shape
            kernel_h, kernel_w = layer.kernel_size
            total += height * width * kernel_h * kernel_w * channels_in * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, _ = layer.output.shape
            kernel_h, kernel_w, channels_in, filters = layer.kernel.shape
            total += height * width * kernel_h * kernel_w * channels_in * filters
    return int(total)
