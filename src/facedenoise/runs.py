"""Where trained models live, which one a command uses, and how it is loaded.

A run folder (`runs/<timestamp>-<arch>/`) holds `config.json`, `best.keras`, `last.keras`,
`history.csv`, `training_curves.png` and TensorBoard logs. The packaged starter weights live
in `facedenoise/weights/` with the same `config.json`, as `starter.keras` and, for inference
without TensorFlow, `starter.onnx` (made by `facedenoise export`).

The default model rule, the same for every command: the newest run in the runs folder, else
the packaged starter weights (`default_model`).
"""

from __future__ import annotations

import os
import sys
import zipfile
from importlib import resources
from pathlib import Path

from facedenoise.config import RUNS_DIR
from facedenoise.errors import FaceDenoiseError

BEST = "best.keras"
LAST = "last.keras"
CONFIG = "config.json"
STARTER = "starter.keras"
STARTER_ONNX = "starter.onnx"
MODEL_SUFFIXES = (".keras", ".onnx")
# What keras.saving.load_model raises for a foreign, damaged or tampered file (measured on
# empty, random, truncated, re-zipped and edited files). Anything else is a bug and keeps
# its traceback.
_LOAD_ERRORS = (ValueError, TypeError, KeyError, OSError, EOFError, zipfile.BadZipFile)


def _packaged(name: str) -> Path | None:
    path = Path(str(resources.files("facedenoise") / "weights" / name))
    return path if path.is_file() else None


def packaged_weights() -> Path | None:
    """The starter weights shipped with the package (.keras), or None when this build has none."""
    return _packaged(STARTER)


def packaged_onnx() -> Path | None:
    """The starter weights as ONNX (same model as `packaged_weights`), or None."""
    return _packaged(STARTER_ONNX)


def is_packaged(path: Path) -> bool:
    """True when `path` is one of the packaged starter files."""
    packaged = [p.resolve() for p in (packaged_weights(), packaged_onnx()) if p is not None]
    return Path(path).resolve() in packaged


def latest_run(runs_dir: str | Path = RUNS_DIR) -> Path | None:
    """The newest run folder under `runs_dir` that holds a model, or None."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return None
    candidates = [
        run for run in runs_dir.iterdir() if (run / BEST).is_file() or (run / LAST).is_file()
    ]
    # Run names start with a sortable timestamp; mtime breaks ties between renamed folders.
    return max(candidates, key=lambda run: (run.name, run.stat().st_mtime), default=None)


def model_file_of(path: Path) -> Path:
    """The model file for a run folder (best, else last .keras) or a .keras/.onnx file."""
    path = Path(path)
    if path.is_dir():
        for name in (BEST, LAST):
            if (path / name).is_file():
                return path / name
        raise FaceDenoiseError(f"{path} holds no {BEST} or {LAST}; is it a facedenoise run?")
    if not path.is_file():
        raise FaceDenoiseError(
            f"Model {path} does not exist; pass a run folder, a .keras or .onnx file, "
            "'starter' or 'latest'."
        )
    if path.suffix not in MODEL_SUFFIXES:
        raise FaceDenoiseError(
            f"{path} is not a .keras or .onnx file; pass a run folder or a model file."
        )
    return path


def default_model(runs_dir: str | Path = RUNS_DIR) -> Path:
    """The model a command uses when none is named: the newest run in `runs_dir`, else the
    packaged starter weights. Raises FaceDenoiseError when there is neither."""
    run = latest_run(runs_dir)
    if run is not None:
        return model_file_of(run)
    weights = packaged_weights()
    if weights is not None:
        return weights
    raise FaceDenoiseError(
        f"No model found: no run in {runs_dir} and no packaged weights. "
        "Train one with 'facedenoise train' or pass --model."
    )


def resolve_model(
    spec: str | Path | None, runs_dir: str | Path = RUNS_DIR, prefer: str | None = None
) -> Path:
    """The model file a user means.

    spec: a run folder, a .keras or .onnx file, 'latest' (the newest run), 'starter' (the
    packaged weights, as .keras), or None for `default_model`. `prefer` is ignored: it chose
    between two default rules before there was one (kept so old callers still work).
    """
    if spec == "starter":
        weights = packaged_weights()
        if weights is None:
            raise FaceDenoiseError("This build of facedenoise has no packaged starter weights.")
        return weights
    if spec == "latest":
        run = latest_run(runs_dir)
        if run is None:
            raise FaceDenoiseError(f"No run in {runs_dir}; train one with 'facedenoise train'.")
        return model_file_of(run)
    if spec is None:
        return default_model(runs_dir)
    return model_file_of(Path(spec))


def stored_run_config(path: Path):
    """The RunConfig in the config.json beside a model file (a run's or the packaged
    weights'), or None when there is none."""
    from facedenoise.config import load_run_config

    config_file = Path(path).parent / "config.json"
    return load_run_config(config_file) if config_file.is_file() else None


def stored_model_config(path: Path):
    """The ModelConfig in the config.json beside a model file, or None (see
    `stored_run_config`)."""
    config = stored_run_config(path)
    return None if config is None else config.model


def fast_model_file(path: Path) -> Path:
    """The file to run for inference: the packaged starter's ONNX twin when `path` is the
    packaged .keras and the twin exists (no TensorFlow needed), else `path` itself."""
    weights, onnx = packaged_weights(), packaged_onnx()
    if weights is not None and onnx is not None and Path(path).resolve() == weights.resolve():
        return onnx
    return Path(path)


def describe_model(path: Path, runs_dir: str | Path = RUNS_DIR) -> str:
    """A short description of a model file for messages: which rule picked it, and where."""
    path = Path(path)
    if is_packaged(path):
        return f"the packaged starter weights ({path.name})"
    run = latest_run(runs_dir)
    if run is not None and path.parent.resolve() == run.resolve():
        return f"the newest run in {runs_dir}: {path}"
    return str(path)


def quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up chatter (for the CLI and the Python API alike).

    TensorFlow's C++ core logs (oneDNN notes, "could not find cuda drivers") before
    TF_CPP_MIN_LOG_LEVEL takes effect, so file descriptor 2 points at /dev/null while it
    loads and probes its devices. Python exceptions still propagate.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "tensorflow" in sys.modules:
        return
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)


def load_model(path: Path, compile: bool = False):
    """Load a facedenoise .keras model safely (no arbitrary code), for inference.

    compile: also restore the optimizer and loss (resuming a run's last.keras).
    Raises FaceDenoiseError when the file is not a facedenoise model (foreign, damaged or
    tampered); any other exception is a bug and propagates.
    """
    path = model_file_of(path)
    quiet_tensorflow()
    import keras

    import facedenoise.models  # noqa: F401  (registers the custom layers)

    if path.suffix == ".onnx":
        raise FaceDenoiseError(
            f"{path} is an ONNX model: it runs with 'facedenoise denoise' or Denoiser.load, "
            "but cannot be trained or loaded into Keras; use the .keras file it came from."
        )
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except _LOAD_ERRORS as error:
        raise FaceDenoiseError(
            f"{path} is not a facedenoise model ({type(error).__name__}: {error})."[:400]
        ) from error
    if not looks_like_denoiser(model):
        raise FaceDenoiseError(f"{path} is a Keras model but not a facedenoise denoiser.")
    return model


def looks_like_denoiser(model) -> bool:
    """True for a Keras model with the denoiser's inputs and output: `noisy` (N, H, W, 3),
    optionally `noise_level` (N, 1), and an RGB output."""
    inputs, outputs = model.inputs, model.outputs
    if len(outputs) != 1 or outputs[0].shape[-1] != 3 or len(inputs) not in (1, 2):
        return False
    image_ok = tuple(inputs[0].shape[1:]) == (None, None, 3)
    return image_ok and (len(inputs) == 1 or tuple(inputs[1].shape[1:]) == (1,))
