"""The two ways a model runs: Keras (TensorFlow) and ONNX Runtime (no TensorFlow).

Both expose the same small interface, so that the Denoiser, the tiling and the file pipeline
do not care which one runs:

- `takes_noise_level`: the model has a second input, the noise level per image (N, 1);
- `multiple`: the size multiple the model pads to internally (1 when it does not pad);
- `__call__(batch, levels)`: float32 (N, H, W, 3) in [0, 1] and float32 (N, 1) levels (or
  None for a model without a noise input) -> float32 (N, H, W, 3).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facedenoise.errors import FaceDenoiseError

# Metadata keys written into exported ONNX files (see facedenoise.export).
MULTIPLE_KEY = "facedenoise.multiple"
# The top of the noise levels the model was trained on (absent: unknown).
HIGHEST_LEVEL_KEY = "facedenoise.highest_level"
NOISE_INPUT_KEY = "facedenoise.noise_input"


def network_multiple(model) -> int:
    """The size multiple a Keras model pads to internally (1 when it does not pad)."""
    multiples = [int(layer.multiple) for layer in model.layers if hasattr(layer, "multiple")]
    return max(multiples, default=1)


class KerasRuntime:
    """A Keras model, traced once for every batch and image size."""

    name = "keras"

    def __init__(self, model):
        from facedenoise.runs import quiet_tensorflow

        quiet_tensorflow()
        import tensorflow as tf

        from facedenoise.models import takes_noise_level

        self.model = model
        self.takes_noise_level = takes_noise_level(model)
        self.multiple = network_multiple(model)
        images = tf.TensorSpec([None, None, None, 3], tf.float32)
        if self.takes_noise_level:
            levels = tf.TensorSpec([None, 1], tf.float32)
            self._call = tf.function(
                lambda batch, level: model([batch, level], training=False),
                input_signature=[images, levels],
            )
        else:
            self._call = tf.function(
                lambda batch: model(batch, training=False), input_signature=[images]
            )

    def __call__(self, batch: np.ndarray, levels: np.ndarray | None) -> np.ndarray:
        if self.takes_noise_level:
            return self._call(batch, levels).numpy()
        return self._call(batch).numpy()


class OnnxRuntime:
    """An ONNX model run by onnxruntime: the light path, without TensorFlow.

    `providers`: onnxruntime execution providers, best first (default: CUDA when the
    installed onnxruntime has it, then CPU).
    """

    name = "onnxruntime"

    def __init__(self, path: Path, providers: list[str] | None = None):
        self.path = Path(path)
        self.session = _session(self.path, providers)
        inputs = self.session.get_inputs()
        metadata = self.session.get_modelmeta().custom_metadata_map
        self._check_signature(inputs)
        self.takes_noise_level = len(inputs) == 2
        self.multiple = int(metadata.get(MULTIPLE_KEY, "1"))
        highest = metadata.get(HIGHEST_LEVEL_KEY)
        self.highest_level = None if highest is None else float(highest)
        self._input_names = [node.name for node in inputs]

    def _check_signature(self, inputs) -> None:
        shapes = [node.shape for node in inputs]
        image_ok = len(shapes) in (1, 2) and len(shapes[0]) == 4 and shapes[0][3] == 3
        level_ok = len(shapes) == 1 or (len(shapes[1]) == 2 and shapes[1][1] == 1)
        if not (image_ok and level_ok and all(n.type == "tensor(float)" for n in inputs)):
            raise FaceDenoiseError(
                f"{self.path} is an ONNX model but not a facedenoise denoiser (inputs "
                f"{[(node.name, node.shape) for node in inputs]}); export one with "
                "'facedenoise export --format onnx'."
            )

    def __call__(self, batch: np.ndarray, levels: np.ndarray | None) -> np.ndarray:
        feeds = {self._input_names[0]: batch}
        if self.takes_noise_level:
            feeds[self._input_names[1]] = levels
        return self.session.run(None, feeds)[0]


def _session(path: Path, providers: list[str] | None):
    try:
        import onnxruntime
    except ImportError as error:
        raise FaceDenoiseError(
            "ONNX models need onnxruntime: pip install onnxruntime (or onnxruntime-gpu)."
        ) from error
    if not path.is_file():
        raise FaceDenoiseError(f"Model {path} does not exist; pass a run folder, .keras or .onnx.")
    available = onnxruntime.get_available_providers()
    wanted = providers or ["CUDAExecutionProvider", "CPUExecutionProvider"]
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: no warnings on stderr
    # One thread per core this process may use (a container may allow fewer than the host has).
    if hasattr(os, "sched_getaffinity"):
        options.intra_op_num_threads = len(os.sched_getaffinity(0))
    # Idle threads sleep instead of spinning: on a shared machine spinning cost 40% per batch
    # (measured: 58 vs 42 ms per 128x128 face in batches of 8, two cores under load).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return onnxruntime.InferenceSession(
            str(path), options, providers=[name for name in wanted if name in available]
        )
    except Exception as error:  # onnxruntime raises its own, unexported, exception types
        if type(error).__module__.split(".")[0] != "onnxruntime":
            raise
        raise FaceDenoiseError(
            f"{path} is not a usable ONNX model ({type(error).__name__}: {error})."[:400]
        ) from error
