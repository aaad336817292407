"""Export a trained model to ONNX, TensorFlow SavedModel or TFLite, then check the artefact.

Routes, chosen by testing with TensorFlow 2.21, Keras 3.15.1, numpy 2.4.6, tf2onnx 1.17,
onnx 1.23 and onnxruntime 1.32:

- `savedmodel`: Keras 3's `model.export(format="tf_saved_model")`, unchanged: TensorFlow
  runs the model's own layers at any height and width.
- `onnx`: tf2onnx's `convert.from_function` with an explicit input signature (`noisy`
  (N, H, W, 3) and, for a noise-conditional model, `noise_level` (N, 1)) over the export
  graph below. Keras 3's `model.export(format="onnx")` calls the same tf2onnx on the model as
  it is, and that gives wrong sizes: the models' PadToMultiple layer computes
  `(-size) % multiple`, which tf2onnx lowers with truncating division (a 100x77 input comes
  out 96x64).
- `tflite`: TensorFlow's TFLite converter on the export graph with built-in ops only, so the
  file runs in the plain TFLite / LiteRT interpreter (no Flex delegate). On the model as it
  is, the padding's dynamic `tf.pad` loses the static channel count and the converter needs
  Flex ops for the next convolution.

The export graph: mirror-pad the image to the model's size multiple with non-negative
arithmetic and a static channel count, run a clone of the model in which PadToMultiple is an
identity (its input is already a multiple), crop back. That is the same arithmetic as the
Keras model, and every export is checked: the artefact is loaded in its own runtime and
compared with the Keras model on a real, noisy face at two sizes (one not a multiple, one a
batch of two) to at most `TOLERANCE`. Height and width stay variable in every format.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from facedenoise.config import RUNS_DIR
from facedenoise.errors import FaceDenoiseError, check_choice

FORMATS = ("onnx", "savedmodel", "tflite")
DEFAULT_OPSET = 17
OPSETS = range(13, 19)  # what tf2onnx 1.17 writes and onnxruntime 1.32 runs
TOLERANCE = 1e-3  # max abs difference on [0, 1] between the artefact and the Keras model
_CHECK_FACE = "grace_hopper.png"
_CHECK_LEVELS = (0.3, 0.1)


@dataclass(frozen=True)
class ExportResult:
    """What `export_model` wrote and how it was checked.

    max_difference: the largest absolute difference on [0, 1] between the artefact (in
    `runtime`) and the Keras model over `checked_shapes`.
    """

    path: Path
    format: str
    source: Path
    noise_input: bool
    runtime: str
    max_difference: float
    checked_shapes: tuple[tuple[int, ...], ...]
    seconds: float


def check_export_arguments(
    model: str | Path | None, format: str, out: str | Path, *, force: bool = False,
    opset: int = DEFAULT_OPSET, runs_dir: str | Path = RUNS_DIR,
) -> Path:
    """Check everything that can be checked without TensorFlow; returns the .keras to export.

    Raises FaceDenoiseError for an unknown format, an opset outside OPSETS, an existing --out
    without `force` (or a folder that is not a SavedModel), a missing output folder, or a
    model that cannot be found or is already ONNX.
    """
    from facedenoise.runs import resolve_model

    check_choice("format", format, FORMATS)
    if format == "onnx" and opset not in OPSETS:
        raise FaceDenoiseError(
            f"--opset must be from {OPSETS[0]} to {OPSETS[-1]} (what tf2onnx writes), not {opset}."
        )
    if format == "onnx" and importlib.util.find_spec("tf2onnx") is None:
        raise FaceDenoiseError(
            "Exporting to ONNX needs tf2onnx and onnx: pip install 'facedenoise[export]'."
        )
    _check_out(Path(out), format, force)
    path = resolve_model(None if model is None else str(model), runs_dir)
    if path.suffix != ".keras":
        raise FaceDenoiseError(f"{path} is already {path.suffix[1:]}; export the .keras it came "
                               "from (a run folder, a .keras file or 'starter').")
    return path


# The file extension of each file format: `denoise --model` picks the runtime by it.
SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite"}


def _check_out(out: Path, format: str, force: bool) -> None:
    suffix = SUFFIXES.get(format)
    if suffix is not None and out.suffix != suffix:  # lower case, as denoise --model reads
        raise FaceDenoiseError(
            f"--out {out} should end in {suffix} for --format {format} (tools, and "
            "'facedenoise denoise --model', tell formats apart by the extension)."
        )
    if format == "savedmodel" and out.suffix.lower() in (*SUFFIXES.values(), ".keras"):
        raise FaceDenoiseError(
            f"--out {out} is a file name, but a SavedModel is a folder: name a folder.")
    if not out.parent.is_dir():
        raise FaceDenoiseError(f"The folder of --out {out} does not exist; create it first.")
    if not (out.exists() or out.is_symlink()):
        return
    if not force:
        raise FaceDenoiseError(f"{out} already exists; pass --force to overwrite it.")
    is_saved_model = out.is_dir() and (out / "saved_model.pb").is_file()
    if out.is_dir() and not (format == "savedmodel" and is_saved_model):
        raise FaceDenoiseError(
            f"{out} is a folder{' ' if is_saved_model else ' that is not a SavedModel'}; "
            "refusing to replace it. Choose another --out."
        )


def export_model(
    model: str | Path | None = None,
    *,
    format: str,
    out: str | Path,
    force: bool = False,
    opset: int = DEFAULT_OPSET,
    runs_dir: str | Path = RUNS_DIR,
    on_step: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a model (run folder, .keras file, 'starter', 'latest' or None for the default)
    to `format` at `out`, written beside `out` first and moved into place only once it has
    been loaded back in its runtime and agrees with the Keras model. `on_step(text)` hears
    each step. Raises FaceDenoiseError for bad arguments, a failed conversion or check.
    """
    from facedenoise.runs import load_model

    started = time.perf_counter()
    step = on_step or (lambda text: None)
    source = check_export_arguments(model, format, out, force=force, opset=opset,
                                    runs_dir=runs_dir)
    keras_model = load_model(source)
    out = Path(out)
    temporary = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    _remove(temporary)
    try:
        step(f"Converting {source.name} to {format}")
        _WRITERS[format](keras_model, temporary, opset, source)
        step(f"Checking {format} against Keras")
        runtime, difference, shapes = _verify(keras_model, temporary, format)
        _remove(out)
        os.replace(temporary, out)
    finally:
        _remove(temporary)
    from facedenoise.models import takes_noise_level

    return ExportResult(out, format, source, takes_noise_level(keras_model), runtime,
                        difference, shapes, time.perf_counter() - started)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


# --- The export graph --------------------------------------------------------------------------


def export_function(keras_model):
    """A tf.function computing `keras_model` at any size, built for converters (see the module
    docstring): inputs `noisy` (N, H, W, 3) and, if the model has one, `noise_level` (N, 1)."""
    import keras
    import tensorflow as tf

    from facedenoise.inference.runtimes import network_multiple
    from facedenoise.models import takes_noise_level

    multiple = network_multiple(keras_model)
    inner = keras.models.clone_model(keras_model, clone_function=_without_padding)
    inner.set_weights(keras_model.get_weights())
    image_spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="noisy")

    def run(noisy, *level):
        height, width = tf.shape(noisy)[1], tf.shape(noisy)[2]
        pad_height = (multiple - height % multiple) % multiple  # non-negative operands only
        pad_width = (multiple - width % multiple) % multiple
        paddings = [[0, 0], [0, pad_height], [0, pad_width], [0, 0]]
        padded = tf.pad(noisy, paddings, mode="SYMMETRIC")
        padded = tf.reshape(padded, [-1, height + pad_height, width + pad_width, 3])
        inputs = [padded, *level] if level else padded
        return {"denoised": inner(inputs, training=False)[:, :height, :width, :]}

    if takes_noise_level(keras_model):
        level_spec = tf.TensorSpec([None, 1], tf.float32, name="noise_level")
        return tf.function(lambda noisy, noise_level: run(noisy, noise_level),
                           input_signature=[image_spec, level_spec])
    return tf.function(lambda noisy: run(noisy), input_signature=[image_spec])


def _without_padding(layer):
    """clone_model's per-layer copy, with the size-padding layer replaced by an identity."""
    import keras

    if hasattr(layer, "multiple"):
        return keras.layers.Identity(name=layer.name)
    return layer.__class__.from_config(layer.get_config())


# --- Writers ---------------------------------------------------------------------------------


def _write_onnx(keras_model, path: Path, opset: int, source: Path) -> None:
    import onnx
    import tf2onnx

    from facedenoise import __version__
    from facedenoise.inference.runtimes import (
        HIGHEST_LEVEL_KEY,
        MULTIPLE_KEY,
        NOISE_INPUT_KEY,
        network_multiple,
    )
    from facedenoise.models import takes_noise_level
    from facedenoise.runs import stored_run_config

    function = export_function(keras_model)
    with _quiet_stderr(), _conversion_errors("ONNX"):
        proto, _ = tf2onnx.convert.from_function(
            function, input_signature=function.input_signature, opset=opset
        )
    metadata = {
        MULTIPLE_KEY: str(network_multiple(keras_model)),
        NOISE_INPUT_KEY: str(takes_noise_level(keras_model)).lower(),
        "facedenoise.version": __version__,
        "facedenoise.source": source.name,
        "facedenoise.value_range": "float32 RGB in [0, 1]; noise_level: noise std in [0, 1]",
    }
    stored = stored_run_config(source)  # the run's config.json beside the .keras, if any
    if stored is not None and stored.train.noise_range is not None:
        metadata[HIGHEST_LEVEL_KEY] = repr(float(stored.train.noise_range[1]))
    onnx.helper.set_model_props(proto, metadata)
    onnx.save(proto, str(path))


def _write_savedmodel(keras_model, path: Path, opset: int, source: Path) -> None:
    with _quiet_stderr(), _conversion_errors("SavedModel"):
        keras_model.export(str(path), format="tf_saved_model", verbose=False)


def _write_tflite(keras_model, path: Path, opset: int, source: Path) -> None:
    import tensorflow as tf

    function = export_function(keras_model)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], keras_model
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with _quiet_stderr(), _conversion_errors("TFLite"):
        data = converter.convert()
    path.write_bytes(data)


_WRITERS = {"onnx": _write_onnx, "savedmodel": _write_savedmodel, "tflite": _write_tflite}


@contextlib.contextmanager
def _conversion_errors(format: str):
    """A converter's failure as one FaceDenoiseError naming the format and the cause."""
    try:
        yield
    except FaceDenoiseError:
        raise
    except Exception as error:  # converters raise many types; the message is what matters
        lines = [line for line in str(error).splitlines() if "error" in line.lower()]
        cause = (lines[-1] if lines else str(error)).strip()[:300]
        raise FaceDenoiseError(
            f"Converting to {format} failed ({type(error).__name__}: {cause}). The model may "
            "use a layer this converter cannot lower; see docs in facedenoise/export.py."
        ) from error


@contextlib.contextmanager
def _quiet_stderr():
    """Keep converters' native log lines (MLIR dumps, TFLite notes) off the terminal."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# --- Checking --------------------------------------------------------------------------------


def check_inputs(noise_input: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """The check's inputs: a real face with the mission's noise (std 0.3, seeded) cropped to
    125x119 (not a multiple of any model's padding), and a batch of it and its mirror image at
    128x128; float32 [0, 1], with levels (N, 1) for a noise-conditional model."""
    from facedenoise.imageio import read_image

    face_path = resources.files("facedenoise") / "sample" / "faces" / _CHECK_FACE
    clean = read_image(Path(str(face_path))).pixels
    rng = np.random.default_rng(12)
    noisy = np.clip(clean + 0.3 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)
    single = noisy[None, :125, :119]
    pair = np.stack([noisy, noisy[:, ::-1]])
    if not noise_input:
        return [(single, None), (pair, None)]
    levels = np.asarray(_CHECK_LEVELS, np.float32)[:, None]
    return [(single, levels[:1]), (np.ascontiguousarray(pair), levels)]


def _verify(keras_model, path: Path, format: str):
    """(runtime name, max abs difference, shapes checked); raises FaceDenoiseError above
    TOLERANCE."""
    from facedenoise.models import takes_noise_level

    runtime, run = _RUNNERS[format](path)
    difference, shapes = 0.0, []
    for batch, levels in check_inputs(takes_noise_level(keras_model)):
        expected = np.asarray(keras_model(batch if levels is None else [batch, levels]))
        actual = np.asarray(run(batch, levels))
        if actual.shape != expected.shape:
            raise FaceDenoiseError(
                f"The {format} export gives shape {actual.shape} for input {batch.shape}, Keras "
                f"{expected.shape}; the export is not usable at this size."
            )
        difference = max(difference, float(np.abs(actual - expected).max()))
        shapes.append(batch.shape)
    if not difference <= TOLERANCE:
        raise FaceDenoiseError(
            f"The {format} export differs from the Keras model by up to {difference:.2g} on a "
            f"real face (allowed {TOLERANCE:g}); it was not written."
        )
    return runtime, difference, tuple(shapes)


def _onnx_runner(path: Path):
    from facedenoise.inference.runtimes import OnnxRuntime

    runtime = OnnxRuntime(path, providers=["CPUExecutionProvider"])
    return "onnxruntime", runtime


def _savedmodel_runner(path: Path):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))

    def run(batch, levels):
        return loaded.serve(batch if levels is None else [batch, levels]).numpy()

    return "tf.saved_model.load", run


def _tflite_runner(path: Path):
    import tensorflow as tf

    with warnings.catch_warnings():  # TF 2.21 announces the move to ai-edge-litert
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    # Inputs in the interpreter's order: the image is the one of rank 4.
    inputs = sorted(interpreter.get_input_details(), key=lambda detail: -len(detail["shape"]))

    def run(batch, levels):
        arrays = [batch] if levels is None else [batch, levels]
        for detail, array in zip(inputs, arrays, strict=True):
            interpreter.resize_tensor_input(detail["index"], array.shape)
        with _quiet_stderr():
            interpreter.allocate_tensors()
        for detail, array in zip(inputs, arrays, strict=True):
            interpreter.set_tensor(detail["index"], np.ascontiguousarray(array))
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    return "tf.lite.Interpreter", run


_RUNNERS = {"onnx": _onnx_runner, "savedmodel": _savedmodel_runner, "tflite": _tflite_runner}
