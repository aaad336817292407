"""Shared fixtures: real bundled faces, and a tiny (untrained) model saved as a run folder."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The JAX tests (run in subprocesses that inherit this) spend most of their time compiling
# every op of tiny models; unoptimised machine code compiles about four times faster and is
# as exact. No test here compiles TensorFlow with XLA.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")


@pytest.fixture(scope="session")
def sample_faces() -> list[Path]:
    """The bundled 128x128 face PNGs."""
    folder = Path(str(resources.files("facedenoise") / "sample" / "faces"))
    faces = sorted(folder.glob("*.png"))
    assert len(faces) >= 12, "the bundled sample should hold at least 12 faces"
    return faces


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder with an untrained width-4 `unet` without a noise input (one input)."""
    from facedenoise.config import ModelConfig

    return _tiny_run(tmp_path_factory, ModelConfig(arch="unet", width=4, depth=2,
                                                   noise_input=False))


@pytest.fixture(scope="session")
def tiny_conditional_run(tmp_path_factory) -> Path:
    """A run folder with an untrained width-4 noise-conditional `resunet` (two inputs)."""
    from facedenoise.config import ModelConfig

    return _tiny_run(tmp_path_factory, ModelConfig(arch="resunet", width=4, depth=2))


def _tiny_run(tmp_path_factory, model_config) -> Path:
    from facedenoise import __version__
    from facedenoise.config import RunConfig, save_run_config
    from facedenoise.models import build_model

    run_dir = tmp_path_factory.mktemp("runs") / f"20260101-000000-{model_config.arch}"
    run_dir.mkdir()
    config = RunConfig(model=model_config, version=__version__)
    build_model(config.model).save(run_dir / "best.keras")
    save_run_config(config, run_dir / "config.json")
    return run_dir


@pytest.fixture(scope="session")
def prepared_sample(tmp_path_factory) -> Path:
    """The bundled sample prepared with the default settings (read-only for tests)."""
    from facedenoise.config import PrepareConfig
    from facedenoise.prepare import prepare

    out = tmp_path_factory.mktemp("prepared") / "data"
    prepare("sample", out, PrepareConfig(), workers=1, show_progress=False)
    return out
