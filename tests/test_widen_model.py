"""scripts/widen_model.py: a widened resunet computes what the narrow one did."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from facedenoise.config import ModelConfig, RunConfig, load_run_config, save_run_config
from facedenoise.models import build_model
from facedenoise.runs import load_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from widen_model import largest_difference, widen, widen_file  # noqa: E402

NARROW = ModelConfig(arch="resunet", width=4, depth=2)


def _trained_looking(config: ModelConfig) -> keras.Model:
    """An untrained model with every weight random: the builder's zero-initialised layers
    (residual blocks' second convolutions, the noise head) would hide a wrong index map.
    A std of 0.1 keeps the predicted noise near 1, as in trained weights; at 0.2 it reached
    about 50, where float32 rounding alone (3e-5 on an AMD EPYC, AVX2) passed the 1e-5 below."""
    keras.utils.set_random_seed(0)
    model = build_model(config)
    rng = np.random.default_rng(2)
    model.set_weights([rng.normal(0, 0.1, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def _save_run(model: keras.Model, config: ModelConfig, folder: Path) -> Path:
    folder.mkdir(parents=True)
    model.save(folder / "best.keras")
    save_run_config(RunConfig(model=config), folder / "config.json")
    return folder / "best.keras"


def test_widening_keeps_the_output_and_grows_the_parameters():
    narrow = _trained_looking(NARROW)
    wide = widen(narrow, NARROW, width=8)
    assert wide.count_params() > narrow.count_params()
    # Float32 sums in another order only: far below the 1e-5 the script allows.
    assert largest_difference(narrow, wide) < 1e-5


def test_adding_the_level_to_every_block_keeps_the_output():
    narrow = _trained_looking(NARROW)
    for width in (4, 8):  # FiLM alone, and FiLM with wider channels
        grown = widen(narrow, NARROW, width=width, level_modulation=True)
        film = [layer for layer in grown.layers if layer.name.endswith("_film")]
        assert film and grown.get_layer("level_embedding")
        assert largest_difference(narrow, grown) < 1e-5  # as above
        # The new layers are live: modulating changes the output (so the check above is
        # not blind to them).
        kernel, bias = film[0].get_weights()
        film[0].set_weights([kernel, np.full_like(bias, 0.5)])
        assert largest_difference(narrow, grown) > 1e-3


def test_widen_file_writes_the_model_and_its_config(tmp_path):
    source = _save_run(_trained_looking(NARROW), NARROW, tmp_path / "narrow")
    out = tmp_path / "wide" / "best.keras"
    widen_file(source, 6, out)
    assert load_run_config(out.parent / "config.json").model.width == 6
    assert sorted(path.name for path in out.parent.iterdir()) == ["best.keras", "config.json"]
    assert not load_run_config(out.parent / "config.json").model.level_modulation


def test_widen_file_records_the_level_in_every_block(tmp_path):
    source = _save_run(_trained_looking(NARROW), NARROW, tmp_path / "narrow")
    out = tmp_path / "film" / "best.keras"
    widen_file(source, 4, out, level_modulation=True)
    assert load_run_config(out.parent / "config.json").model.level_modulation
    assert any(layer.name.endswith("_film") for layer in load_model(out).layers)


def test_widen_file_refuses_other_architectures_and_writes_nothing(tmp_path):
    config = ModelConfig(arch="unet", width=4, depth=2)
    source = _save_run(build_model(config), config, tmp_path / "unet")
    out = tmp_path / "wide" / "best.keras"
    with pytest.raises(SystemExit, match="only a noise-conditional resunet"):
        widen_file(source, 8, out)
    assert not out.parent.exists()
