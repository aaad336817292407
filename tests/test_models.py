"""Every architecture: any size in, same size out, values in [0, 1]; the original is exact;
noise-conditional models use their level; the code runs under Keras' JAX backend too."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from facedenoise.config import ARCHITECTURES as ARCHITECTURE_NAMES
from facedenoise.config import ModelConfig
from facedenoise.errors import FaceDenoiseError
from facedenoise.models import ARCHITECTURES, build_model, count_macs, describe, takes_noise_level
from facedenoise.runs import load_model

TINY = {
    "unet": ModelConfig(arch="unet", width=4, depth=3),
    "resunet": ModelConfig(arch="resunet", width=4, depth=3),
    "nafunet": ModelConfig(arch="nafunet", width=4, depth=3),
    "original": ModelConfig("original", noise_input=False),
    # not an architecture of its own: resunet with every block modulated by the level
    "resunet-film": ModelConfig(arch="resunet", width=4, depth=3, level_modulation=True),
}


def _inputs(model, images, level=0.2):
    if not takes_noise_level(model):
        return images
    return [images, np.full((len(images), 1), level, np.float32)]


def test_the_registry_serves_exactly_the_names_commands_check():
    assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("height, width", [(37, 53), (31, 65), (128, 128)])
def test_any_size_in_same_size_out(arch, height, width):
    model = build_model(TINY[arch])
    images = np.random.default_rng(0).random((2, height, width, 3), dtype=np.float32)
    output = np.asarray(model(_inputs(model, images)))
    assert output.shape == images.shape
    assert output.dtype == np.float32
    assert output.min() >= 0.0 and output.max() <= 1.0


@pytest.mark.parametrize("arch", ["unet", "resunet", "nafunet"])
def test_noise_conditional_models_take_and_use_the_level(arch):
    keras.utils.set_random_seed(0)
    model = build_model(TINY[arch])
    assert takes_noise_level(model)
    assert [tensor.name for tensor in model.inputs] == ["noisy", "noise_level"]
    rng = np.random.default_rng(1)
    # The last layer of resunet/nafunet starts at zero (untrained = identity): randomise it.
    noise_layer = model.get_layer("noise")
    noise_layer.set_weights([rng.normal(0, 0.1, w.shape) for w in noise_layer.get_weights()])
    images = rng.random((2, 40, 40, 3), dtype=np.float32)
    low = np.asarray(model(_inputs(model, images, 0.1)))
    high = np.asarray(model(_inputs(model, images, 0.5)))
    # Untrained weights: the level only has to reach the output, by any amount.
    assert np.abs(low - high).max() > 1e-4


def _randomise_and_copy(source, target, rng) -> None:
    """Give `source`'s zero-initialised layers (the branches' last convolutions, the head)
    random weights, then copy every layer of `source` into `target`'s layer of that name:
    `target` then differs only by the layers `source` lacks."""
    for layer in source.layers:
        if layer.name.endswith("conv2") or layer.name == "noise":
            layer.set_weights([rng.normal(0, 0.1, w.shape) for w in layer.get_weights()])
        target.get_layer(layer.name).set_weights(layer.get_weights())


def test_level_modulation_starts_as_the_plain_model_and_reaches_every_block():
    from facedenoise.models.layers import LevelModulation

    plain, film = build_model(TINY["resunet"]), build_model(TINY["resunet-film"])
    rng = np.random.default_rng(2)
    _randomise_and_copy(plain, film, rng)
    images = rng.random((2, 40, 40, 3), dtype=np.float32)
    # the modulation's dense layers start at zero: the same function as the plain model
    np.testing.assert_allclose(np.asarray(film(_inputs(film, images, 0.3))),
                               np.asarray(plain(_inputs(plain, images, 0.3))), atol=1e-6)
    modulations = [layer for layer in film.layers if isinstance(layer, LevelModulation)]
    assert len(modulations) == 2 * 2 * 2 + 2  # two blocks a level, encoder and decoder; middle
    before = np.asarray(film(_inputs(film, images, 0.3)))
    middle = film.get_layer("middle_block1_film")
    middle.set_weights([np.full(w.shape, 0.5, np.float32) for w in middle.get_weights()])
    assert np.abs(np.asarray(film(_inputs(film, images, 0.3))) - before).max() > 1e-4


def test_residual_modulation_adds_a_second_modulation_per_block_that_starts_at_zero():
    from facedenoise.models.layers import LevelModulation

    once = build_model(TINY["resunet-film"])
    twice = build_model(ModelConfig(arch="resunet", width=4, depth=3, level_modulation=True,
                                    residual_modulation=True))
    modulations = [layer for layer in twice.layers if isinstance(layer, LevelModulation)]
    assert len(modulations) == 2 * (2 * 2 * 2 + 2)
    rng = np.random.default_rng(3)
    _randomise_and_copy(once, twice, rng)
    images = rng.random((2, 40, 40, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(twice(_inputs(twice, images, 0.3))),
                               np.asarray(once(_inputs(once, images, 0.3))), atol=1e-6)
    second = twice.get_layer("middle_block1_film2")
    second.set_weights([np.full(w.shape, 0.5, np.float32) for w in second.get_weights()])
    assert np.abs(np.asarray(twice(_inputs(twice, images, 0.3)))
                  - np.asarray(once(_inputs(once, images, 0.3)))).max() > 1e-4
    with pytest.raises(FaceDenoiseError, match="needs level_modulation"):
        build_model(ModelConfig(arch="resunet", width=4, depth=3, residual_modulation=True))


@pytest.mark.parametrize("arch", ["resunet", "nafunet"])
def test_level_zero_hands_the_image_back_exactly(arch):
    model = build_model(TINY[arch])
    rng = np.random.default_rng(6)
    noise_layer = model.get_layer("noise")
    noise_layer.set_weights([rng.normal(0, 0.1, w.shape) for w in noise_layer.get_weights()])
    images = rng.random((2, 33, 47, 3), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(model(_inputs(model, images, 0.0))), images)


@pytest.mark.parametrize("arch", ["unet", "resunet"])
def test_without_noise_input_a_model_has_one_input(arch):
    config = ModelConfig(arch=arch, width=4, depth=2, noise_input=False)
    assert not takes_noise_level(build_model(config))


def test_original_is_the_notebooks_network():
    model = build_model(ModelConfig(arch="original"))
    assert not takes_noise_level(model)
    assert model.count_params() == 4_581_507
    assert count_macs(model, 128) == pytest.approx(14.6e9, rel=0.01)


def test_default_model_is_far_cheaper_than_the_original_and_within_one_gmac():
    original = count_macs(build_model(ModelConfig(arch="original")), 128)
    default = describe(ModelConfig())
    assert default["gmacs"] * 1e9 <= original / 5
    assert default["gmacs"] <= 1.0
    assert default["noise_input"]


def test_count_macs_of_a_single_convolution():
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    model = keras.Model(inputs, outputs)
    assert count_macs(model, 16) == 16 * 16 * 3 * 3 * 3 * 8


def test_count_macs_of_a_depthwise_convolution():
    inputs = keras.Input((None, None, 6))
    outputs = keras.layers.DepthwiseConv2D(3, padding="same")(inputs)
    assert count_macs(keras.Model(inputs, outputs), 16) == 16 * 16 * 3 * 3 * 6


@pytest.mark.parametrize("arch", ["unet", "resunet", "nafunet"])
def test_models_are_residual_so_a_zero_noise_branch_returns_the_input(arch):
    model = build_model(TINY[arch])
    noise_layer = model.get_layer("noise")
    noise_layer.set_weights([np.zeros_like(weight) for weight in noise_layer.get_weights()])
    images = np.random.default_rng(1).random((1, 37, 53, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(model(_inputs(model, images))), images, atol=1e-6)


def test_width_and_depth_change_the_model():
    small = build_model(ModelConfig(arch="resunet", width=4, depth=2)).count_params()
    wider = build_model(ModelConfig(arch="resunet", width=8, depth=2)).count_params()
    deeper = build_model(ModelConfig(arch="resunet", width=4, depth=3)).count_params()
    assert small < wider and small < deeper


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(FaceDenoiseError, match="resunet, nafunet, unet, original"):
        build_model(ModelConfig(arch="resnet"))


@pytest.mark.parametrize("arch", ["unet", "resunet", "nafunet"])
def test_saved_model_round_trips_in_safe_mode(arch, tmp_path):
    model = build_model(TINY[arch])
    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    images = np.random.default_rng(2).random((1, 20, 24, 3), dtype=np.float32)
    np.testing.assert_allclose(
        np.asarray(loaded(_inputs(loaded, images))), np.asarray(model(_inputs(model, images))),
        atol=1e-6,
    )


def test_space_to_depth_matches_tensorflows_channel_order():
    # Weights trained with tf.nn.space_to_depth must mean the same with keras.ops.
    import tensorflow as tf

    from facedenoise.models.layers import DepthToSpace, SpaceToDepth

    images = np.random.default_rng(3).random((2, 8, 6, 3), dtype=np.float32)
    folded = np.asarray(SpaceToDepth(2)(images))
    np.testing.assert_array_equal(folded, tf.nn.space_to_depth(images, 2).numpy())
    np.testing.assert_array_equal(np.asarray(DepthToSpace(2)(folded)), images)


def test_a_foreign_keras_model_is_refused(tmp_path):
    inputs = keras.Input((10,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "other.keras")
    with pytest.raises(FaceDenoiseError, match="not a facedenoise"):
        load_model(tmp_path / "other.keras")


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(FaceDenoiseError, match="not a facedenoise model"):
        load_model(tmp_path / "junk.keras")


JAX_CHECK = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    from facedenoise.runs import load_model
    from facedenoise.models import takes_noise_level
    images = np.load(sys.argv[1])
    results = {}
    for path in sys.argv[2:]:
        model = load_model(path)
        inputs = images
        if takes_noise_level(model):
            inputs = [images, np.full((len(images), 1), 0.2, np.float32)]
        results[path] = np.asarray(model(inputs)).tolist()
    print(json.dumps(results))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_every_architecture_runs_under_jax_with_weights_saved_under_tensorflow(tmp_path):
    images = np.random.default_rng(4).random((1, 37, 45, 3), dtype=np.float32)
    np.save(tmp_path / "images.npy", images)
    expected = {}
    for arch, config in TINY.items():
        keras.utils.set_random_seed(5)
        model = build_model(config)
        path = str(tmp_path / f"{arch}.keras")
        model.save(path)
        expected[path] = np.asarray(model(_inputs(model, images)))
    environment = {"KERAS_BACKEND": "jax", "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu",
                   "XLA_FLAGS": os.environ["XLA_FLAGS"]}  # set in conftest.py
    result = subprocess.run(
        [sys.executable, "-c", JAX_CHECK, str(tmp_path / "images.npy"), *expected],
        capture_output=True, text=True, timeout=600, env=environment,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = json.loads(result.stdout.strip().splitlines()[-1])
    for path, output in outputs.items():
        # float32 convolutions in another library: rounding differs, structure must not.
        np.testing.assert_allclose(np.asarray(output), expected[path], atol=1e-4, err_msg=path)
