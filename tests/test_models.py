"""Every architecture: any size in, same size out, values in [0, 1]; the original is exact."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from facedenoise.config import ModelConfig
from facedenoise.errors import FaceDenoiseError
from facedenoise.models import ARCHITECTURES, build_model, count_macs
from facedenoise.runs import load_model

TINY = {"unet": ModelConfig(arch="unet", width=4, depth=3), "original": ModelConfig("original")}


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("height, width", [(37, 53), (31, 65), (128, 128)])
def test_any_size_in_same_size_out(arch, height, width):
    model = build_model(TINY[arch])
    images = np.random.default_rng(0).random((2, height, width, 3), dtype=np.float32)
    output = np.asarray(model(images))
    assert output.shape == images.shape
    assert output.dtype == np.float32
    assert output.min() >= 0.0 and output.max() <= 1.0


def test_original_is_the_notebooks_network():
    model = build_model(ModelConfig(arch="original"))
    assert model.count_params() == 4_581_507
    assert count_macs(model, 128) == pytest.approx(14.6e9, rel=0.01)


def test_default_unet_is_far_cheaper_than_the_original():
    original = count_macs(build_model(ModelConfig(arch="original")), 128)
    unet = count_macs(build_model(ModelConfig()), 128)
    assert unet <= original / 5


def test_count_macs_of_a_single_convolution():
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    model = keras.Model(inputs, outputs)
    assert count_macs(model, 16) == 16 * 16 * 3 * 3 * 3 * 8


def test_unet_is_residual_so_a_zero_noise_branch_returns_the_input():
    model = build_model(ModelConfig(arch="unet", width=8, depth=3))
    noise_layer = model.get_layer("noise")
    noise_layer.set_weights([np.zeros_like(weight) for weight in noise_layer.get_weights()])
    images = np.random.default_rng(1).random((1, 37, 53, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(model(images)), images, atol=1e-6)


def test_width_and_depth_change_the_unet():
    small = build_model(ModelConfig(arch="unet", width=4, depth=2)).count_params()
    wider = build_model(ModelConfig(arch="unet", width=8, depth=2)).count_params()
    deeper = build_model(ModelConfig(arch="unet", width=4, depth=3)).count_params()
    assert small < wider and small < deeper


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(FaceDenoiseError, match="unet, original"):
        build_model(ModelConfig(arch="resnet"))


def test_saved_model_round_trips_in_safe_mode(tmp_path):
    model = build_model(TINY["unet"])
    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    images = np.random.default_rng(2).random((1, 20, 24, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(loaded(images)), np.asarray(model(images)), atol=1e-6)


def test_a_foreign_keras_model_is_refused(tmp_path):
    inputs = keras.Input((10,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "other.keras")
    with pytest.raises(FaceDenoiseError, match="not a facedenoise"):
        load_model(tmp_path / "other.keras")


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(FaceDenoiseError, match="not a facedenoise model"):
        load_model(tmp_path / "junk.keras")
