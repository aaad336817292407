"""Small serializable layers that make every architecture work on any HxW.

All tensors are NHWC. These layers hold no weights, so they cost nothing in parameters.
"""

from __future__ import annotations

import keras
import tensorflow as tf

PACKAGE = "facedenoise"


@keras.saving.register_keras_serializable(package=PACKAGE)
class PadToMultiple(keras.layers.Layer):
    """Pad height and width at the bottom/right, by mirroring, up to a multiple of `multiple`.

    Symmetric (edge-including) mirroring keeps statistics at the border close to the image's,
    which matters for a denoiser; it needs the image to be at least half a multiple high/wide.
    """

    def __init__(self, multiple: int, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def _padding(self, size):
        return (-size) % self.multiple

    def call(self, inputs):
        height, width = tf.shape(inputs)[1], tf.shape(inputs)[2]
        paddings = [[0, 0], [0, self._padding(height)], [0, self._padding(width)], [0, 0]]
        padded = tf.pad(inputs, paddings, mode="SYMMETRIC")
        static = inputs.shape
        if static[1] is not None and static[2] is not None:
            padded = tf.ensure_shape(padded, self.compute_output_shape(static))
        return padded

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        if height is not None:
            height = height + self._padding(height)
        if width is not None:
            width = width + self._padding(width)
        return (batch, height, width, channels)

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package=PACKAGE)
class CropToMatch(keras.layers.Layer):
    """Crop the first input to the height and width of the second (undoes PadToMultiple)."""

    def call(self, inputs):
        padded, reference = inputs
        height, width = tf.shape(reference)[1], tf.shape(reference)[2]
        return padded[:, :height, :width, :]

    def compute_output_shape(self, input_shapes):
        padded, reference = input_shapes
        return (padded[0], reference[1], reference[2], padded[3])


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpaceToDepth(keras.layers.Layer):
    """Fold each `block` x `block` patch into channels: (H, W, C) -> (H/b, W/b, C*b*b)."""

    def __init__(self, block: int, **kwargs):
        super().__init__(**kwargs)
        self.block = int(block)

    def call(self, inputs):
        return tf.nn.space_to_depth(inputs, self.block)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        b = self.block
        return (
            batch,
            None if height is None else height // b,
            None if width is None else width // b,
            channels * b * b,
        )

    def get_config(self):
        return {**super().get_config(), "block": self.block}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DepthToSpace(keras.layers.Layer):
    """Inverse of SpaceToDepth: (H, W, C*b*b) -> (H*b, W*b, C)."""

    def __init__(self, block: int, **kwargs):
        super().__init__(**kwargs)
        self.block = int(block)

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.block)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        b = self.block
        return (
            batch,
            None if height is None else height * b,
            None if width is None else width * b,
            channels // (b * b),
        )

    def get_config(self):
        return {**super().get_config(), "block": self.block}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SubtractNoise(keras.layers.Layer):
    """Residual output: clip(noisy - predicted_noise, 0, 1), computed in float32."""

    def call(self, inputs):
        noisy, noise = inputs
        noisy = tf.cast(noisy, self.compute_dtype)
        noise = tf.cast(noise, self.compute_dtype)
        return tf.clip_by_value(noisy - noise, 0.0, 1.0)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]
