"""Training on the real bundled faces: it learns, it resumes, it is reproducible."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from facedenoise.config import ModelConfig, TrainConfig, load_run_config
from facedenoise.data import pairs_dataset, training_dataset
from facedenoise.errors import FaceDenoiseError
from facedenoise.train import train

TINY = ModelConfig(arch="unet", width=8, depth=2)


def _history(run_dir):
    with (run_dir / "history.csv").open() as handle:
        return list(csv.DictReader(handle))


def _noisy_input_mse(data_dir):
    errors = [
        np.mean((np.asarray(noisy) - np.asarray(clean)) ** 2)
        for noisy, clean in pairs_dataset(data_dir, "val", 64).unbatch()
    ]
    return float(np.mean(errors))


def test_training_batches_have_fresh_noise_of_the_right_strength(prepared_sample):
    config = TrainConfig(batch_size=4, seed=1)
    dataset, count = training_dataset(prepared_sample, config, noise_factor=0.3)
    (noisy_a, clean_a), (noisy_b, clean_b) = list(dataset.take(2))
    assert count > 0
    assert noisy_a.shape == clean_a.shape == (4, 128, 128, 3)
    assert 0.0 <= float(np.min(noisy_a)) and float(np.max(noisy_a)) <= 1.0
    clean, noise = np.asarray(clean_a), np.asarray(noisy_a) - np.asarray(clean_a)
    unclipped = (clean > 0.35) & (clean < 0.65)  # > 1 std away from both clipping bounds
    assert np.std(noise[unclipped]) == pytest.approx(0.3, rel=0.1)
    assert not np.allclose(noisy_a - clean_a, noisy_b - clean_b)


@pytest.mark.slow
def test_a_short_run_learns_and_writes_a_complete_run_folder(prepared_sample, tmp_path):
    config = TrainConfig(epochs=2, batch_size=4, steps_per_epoch=40, lr=2e-3)
    run_dir = train(prepared_sample, tmp_path / "runs", TINY, config)
    for name in ("config.json", "best.keras", "last.keras", "history.csv", "state.json",
                 "training_curves.png", "tensorboard"):
        assert (run_dir / name).exists(), name
    history = _history(run_dir)
    assert [int(row["epoch"]) for row in history] == [1, 2]
    assert float(history[-1]["val_loss"]) < 0.7 * _noisy_input_mse(prepared_sample)
    stored = load_run_config(run_dir / "config.json")
    assert stored.model == TINY and stored.noise_factor == pytest.approx(0.3)
    assert stored.manifest_sha256


@pytest.mark.slow
def test_same_seed_gives_the_same_first_epoch_loss(prepared_sample, tmp_path):
    config = TrainConfig(epochs=1, batch_size=4, steps_per_epoch=5, seed=7)
    first = train(prepared_sample, tmp_path / "a", TINY, config)
    second = train(prepared_sample, tmp_path / "b", TINY, config)
    assert _history(first)[0]["loss"] == _history(second)[0]["loss"]


@pytest.mark.slow
def test_an_interrupted_run_resumes_at_the_next_epoch(prepared_sample, tmp_path, monkeypatch):
    import facedenoise.train as train_module
    from facedenoise.callbacks import RichProgress

    class InterruptAtEpochTwo(RichProgress):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt
            super().on_epoch_begin(epoch, logs)

    config = TrainConfig(epochs=3, batch_size=4, steps_per_epoch=3)
    monkeypatch.setattr(train_module, "RichProgress", InterruptAtEpochTwo)
    with pytest.raises(KeyboardInterrupt):
        train(prepared_sample, tmp_path / "runs", TINY, config)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "state.json").read_text())["epoch"] == 1
    iterations_before = _optimizer_iterations(run_dir)
    assert iterations_before == 3

    monkeypatch.setattr(train_module, "RichProgress", RichProgress)
    train(prepared_sample, tmp_path / "runs", TINY, config, resume=run_dir)
    assert [int(row["epoch"]) for row in _history(run_dir)] == [1, 2, 3]
    assert _optimizer_iterations(run_dir) == 9  # the optimizer state carried over
    with pytest.raises(FaceDenoiseError, match="already finished"):
        train(prepared_sample, tmp_path / "runs", TINY, config, resume=run_dir)


def _optimizer_iterations(run_dir):
    import keras

    model = keras.saving.load_model(run_dir / "last.keras", compile=True)
    return int(model.optimizer.iterations.numpy())


def test_resume_refuses_a_folder_that_is_not_a_run(prepared_sample, tmp_path):
    with pytest.raises(FaceDenoiseError, match="not a resumable run"):
        train(prepared_sample, tmp_path, TINY, TrainConfig(), resume=tmp_path)


def test_bad_settings_are_refused_before_anything_is_written(prepared_sample, tmp_path):
    with pytest.raises(FaceDenoiseError, match="mse, l1, charbonnier"):
        train(prepared_sample, tmp_path / "runs", TINY, TrainConfig(loss="huber"))
    assert not (tmp_path / "runs").exists()


MIRRORED_CHECK = textwrap.dedent(
    """
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from facedenoise.config import ModelConfig
    from facedenoise.models import build_model
    from facedenoise.train import make_strategy

    images = np.random.default_rng(0).random((8, 32, 32, 3), dtype=np.float32)
    targets = np.clip(images + 0.1, 0, 1)
    losses = []
    for name in ("none", "mirrored"):
        strategy = make_strategy(name)
        keras.utils.set_random_seed(3)
        with strategy.scope():
            model = build_model(ModelConfig(arch="unet", width=4, depth=2))
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        first = model.train_on_batch(images, targets)
        second = model.train_on_batch(images, targets)
        losses.append((strategy.num_replicas_in_sync, float(first), float(second)))
    print(losses)
    (single, a1, a2), (replicas, b1, b2) = losses
    assert single == 1 and replicas == 2, losses
    assert abs(a1 - b1) < 1e-5 and abs(a2 - b2) < 1e-4, losses
    """
)


@pytest.mark.slow
def test_mirrored_strategy_step_matches_single_device():
    # A fresh process: logical devices must be configured before TensorFlow starts.
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_CHECK], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_init_starts_from_the_given_weights(prepared_sample, tiny_run, tmp_path):
    import keras

    from facedenoise.config import load_run_config

    source_model = load_run_config(tiny_run / "config.json").model
    frozen = TrainConfig(epochs=1, batch_size=4, steps_per_epoch=1, lr=0.0, schedule="constant",
                         init_from=str(tiny_run))
    run_dir = train(prepared_sample, tmp_path / "runs", source_model, frozen)
    trained = keras.saving.load_model(run_dir / "last.keras", compile=False)
    source = keras.saving.load_model(tiny_run / "best.keras", compile=False)
    for after, before in zip(trained.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(after, before)
    with pytest.raises(FaceDenoiseError, match="different architecture"):
        train(prepared_sample, tmp_path / "runs", TINY, frozen)
