"""Where trained models live and how they are found and loaded.

A run folder (`runs/<timestamp>-<arch>/`) holds `config.json`, `best.keras`, `last.keras`,
`history.csv`, `training_curves.png` and TensorBoard logs. The packaged starter weights live
in `facedenoise/weights/` with the same `config.json`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from facedenoise.errors import FaceDenoiseError

BEST = "best.keras"
LAST = "last.keras"
CONFIG = "config.json"
STARTER = "starter.keras"


def packaged_weights() -> Path | None:
    """The starter weights shipped with the package, or None when this build has none."""
    path = Path(str(resources.files("facedenoise") / "weights" / STARTER))
    return path if path.is_file() else None


def latest_run(runs_dir: Path) -> Path | None:
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
    """The .keras file for a run folder (best, else last) or a .keras file itself."""
    path = Path(path)
    if path.is_dir():
        for name in (BEST, LAST):
            if (path / name).is_file():
                return path / name
        raise FaceDenoiseError(f"{path} holds no {BEST} or {LAST}; is it a facedenoise run?")
    if not path.is_file():
        raise FaceDenoiseError(f"Model {path} does not exist; pass a run folder or a .keras file.")
    if path.suffix != ".keras":
        raise FaceDenoiseError(f"{path} is not a .keras file; pass a run folder or a .keras file.")
    return path


def resolve_model(spec: str | None, runs_dir: Path, prefer: str = "packaged") -> Path:
    """Find the .keras file a user means.

    spec: a run folder, a .keras file, 'latest' (newest run), 'starter' (the packaged
    weights), or None for the default:
    `prefer='packaged'` tries the starter weights first, `prefer='run'` the newest run first.
    """
    if spec == "starter":
        weights = packaged_weights()
        if weights is None:
            raise FaceDenoiseError("This build of facedenoise has no packaged starter weights.")
        return weights
    if spec is not None and spec != "latest":
        return model_file_of(Path(spec))
    run = latest_run(runs_dir)
    if spec == "latest":
        if run is None:
            raise FaceDenoiseError(f"No run in {runs_dir}; train one with 'facedenoise train'.")
        return model_file_of(run)
    order = [packaged_weights(), run] if prefer == "packaged" else [run, packaged_weights()]
    for candidate in order:
        if candidate is not None:
            return model_file_of(candidate)
    raise FaceDenoiseError(
        f"No model found: no run in {runs_dir} and no packaged weights. "
        "Train one with 'facedenoise train' or pass --model."
    )


def load_model(path: Path):
    """Load a facedenoise .keras model safely (no arbitrary code), for inference.

    Raises FaceDenoiseError when the file is not a facedenoise model.
    """
    import keras

    import facedenoise.models  # noqa: F401  (registers the custom layers)

    path = model_file_of(path)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for foreign or damaged files
        raise FaceDenoiseError(
            f"{path} is not a facedenoise model ({type(error).__name__}: {error})."[:400]
        ) from error
    if not _looks_like_denoiser(model):
        raise FaceDenoiseError(f"{path} is a Keras model but not a facedenoise denoiser.")
    return model


def _looks_like_denoiser(model) -> bool:
    inputs, outputs = model.inputs, model.outputs
    return (
        len(inputs) == 1
        and len(outputs) == 1
        and tuple(inputs[0].shape[1:]) == (None, None, 3)
        and outputs[0].shape[-1] == 3
    )
