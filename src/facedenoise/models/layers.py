"""Small serializable layers that make every architecture work on any HxW and any backend.

All tensors are NHWC. The code speaks `keras.ops` only, so the models run under Keras 3's
TensorFlow, JAX and PyTorch backends and export without TensorFlow-only ops.
"""

from __future__ import annotations

import keras
from keras import ops

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
        # Non-negative operands only: converters turn % of a negative into truncation.
        return (self.multiple - size % self.multiple) % self.multiple

    def call(self, inputs):
        shape = ops.shape(inputs)
        paddings = [[0, 0], [0, self._padding(shape[1])], [0, self._padding(shape[2])], [0, 0]]
        return ops.pad(inputs, paddings, mode="symmetric")

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
        shape = ops.shape(reference)
        return padded[:, : shape[1], : shape[2], :]

    def compute_output_shape(self, input_shapes):
        padded, reference = input_shapes
        return (padded[0], reference[1], reference[2], padded[3])


def _spatial(size, factor):
    return None if size is None else size * factor


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpaceToDepth(keras.layers.Layer):
    """Fold each `block` x `block` patch into channels: (H, W, C) -> (H/b, W/b, b*b*C).

    Channels come out ordered (row in patch, column in patch, channel), as tf.nn.space_to_depth
    orders them, so weights trained with either implementation agree.
    """

    def __init__(self, block: int, **kwargs):
        super().__init__(**kwargs)
        self.block = int(block)

    def call(self, inputs):
        b = self.block
        shape = ops.shape(inputs)
        height, width, channels = shape[1] // b, shape[2] // b, inputs.shape[3]
        x = ops.reshape(inputs, (-1, height, b, width, b, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, height, width, b * b * channels))

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
    """Inverse of SpaceToDepth (a pixel shuffle): (H, W, b*b*C) -> (H*b, W*b, C)."""

    def __init__(self, block: int, **kwargs):
        super().__init__(**kwargs)
        self.block = int(block)

    def call(self, inputs):
        b = self.block
        shape = ops.shape(inputs)
        height, width = shape[1], shape[2]
        channels = inputs.shape[3] // (b * b)
        x = ops.reshape(inputs, (-1, height, width, b, b, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, height * b, width * b, channels))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        b = self.block
        return (batch, _spatial(height, b), _spatial(width, b), channels // (b * b))

    def get_config(self):
        return {**super().get_config(), "block": self.block}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SubtractNoise(keras.layers.Layer):
    """Residual output: clip(noisy - predicted_noise, 0, 1), computed in float32."""

    def call(self, inputs):
        noisy, noise = inputs
        noisy = ops.cast(noisy, self.compute_dtype)
        noise = ops.cast(noise, self.compute_dtype)
        return ops.clip(noisy - noise, 0.0, 1.0)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaleByLevel(keras.layers.Layer):
    """Multiply a per-pixel prediction (N, H, W, C) by a factor of each image's level (N, 1).

    fade: None multiplies by the level itself; a number multiplies by min(1, level / fade),
    so that the prediction passes unchanged from `fade` up and fades to zero at level 0.
    """

    def __init__(self, fade: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.fade = None if fade is None else float(fade)

    def call(self, inputs):
        values, level = inputs
        factor = ops.cast(ops.reshape(level, (-1, 1, 1, 1)), values.dtype)
        if self.fade is not None:
            factor = ops.minimum(factor / self.fade, 1.0)
        return values * factor

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "fade": self.fade}


@keras.saving.register_keras_serializable(package=PACKAGE)
class LevelModulation(keras.layers.Layer):
    """FiLM by the noise level: features (N, H, W, C) times (1 + scale) plus shift, both (N, C)
    computed by one dense layer from a level embedding (N, E). The dense layer starts at zero,
    so a block starts unmodulated."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.dense = keras.layers.Dense(2 * self.channels, kernel_initializer="zeros",
                                        name="dense")

    def build(self, input_shapes):
        self.dense.build(input_shapes[1])

    def call(self, inputs):
        features, embedding = inputs
        scale, shift = ops.split(ops.cast(self.dense(embedding), features.dtype), 2, axis=-1)
        scale = ops.reshape(scale, (-1, 1, 1, self.channels))
        shift = ops.reshape(shift, (-1, 1, 1, self.channels))
        return features * (1.0 + scale) + shift

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package=PACKAGE)
class NoiseLevelMap(keras.layers.Layer):
    """Broadcast one noise level per image, (N, 1), to a map (N, H, W, 1) shaped like `image`.

    The map is concatenated to the input, as in FFDNet and DRUNet: one set of weights serves
    every level, and the level decides how strongly the network smooths.
    """

    def call(self, inputs):
        image, level = inputs
        level = ops.cast(ops.reshape(level, (-1, 1, 1, 1)), image.dtype)
        return ops.zeros_like(image[..., :1]) + level

    def compute_output_shape(self, input_shapes):
        image, _ = input_shapes
        return (*image[:3], 1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SimpleGate(keras.layers.Layer):
    """NAFNet's gate: split the channels in two halves and multiply them."""

    def call(self, inputs):
        first, second = ops.split(inputs, 2, axis=-1)
        return first * second

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], input_shape[3] // 2)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelScale(keras.layers.Layer):
    """NAFNet's simplified channel attention: x * conv1x1(mean over H and W of x)."""

    def build(self, input_shape):
        channels = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(channels, channels), initializer="glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")

    def call(self, inputs):
        pooled = ops.mean(inputs, axis=(1, 2), keepdims=True)
        return inputs * (ops.matmul(pooled, self.kernel) + self.bias)


@keras.saving.register_keras_serializable(package=PACKAGE)
class LearnedScale(keras.layers.Layer):
    """Multiply by a per-channel weight that starts at `initial` (NAFNet's beta and gamma):
    a residual branch starting near zero keeps a deep network near identity at first."""

    def __init__(self, initial: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.initial = float(initial)

    def build(self, input_shape):
        self.scale = self.add_weight(
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.initial),
            name="scale",
        )

    def call(self, inputs):
        return inputs * self.scale

    def get_config(self):
        return {**super().get_config(), "initial": self.initial}
