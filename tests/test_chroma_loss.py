"""Training through the chroma stage: the differentiable copy matches the stage `denoise` runs,
the target carries the level, the loss and validation see the stage, and such a run resumes."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from facedenoise.callbacks import LevelValidation
from facedenoise.chroma_loss import smooth_chroma_differentiable
from facedenoise.config import ModelConfig, TrainConfig
from facedenoise.data import training_dataset, with_level_in_target
from facedenoise.errors import FaceDenoiseError
from facedenoise.inference.chroma import RADIUS_BY_LEVEL, smooth_chroma
from facedenoise.runs import load_model
from facedenoise.train import mse_after_chroma, train

# Levels on both sides of every radius step, and 0 (the stage off).
LEVELS = (0.0, 0.029, 0.03, 0.05, 0.09, 0.12, 0.15, 0.3, 0.5)


def _images(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour ramps plus noise, clipped: colour edges, flat areas and clipping."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, width, dtype=np.float32)[None, None, :, None]
    tint = rng.random((count, 1, 1, 3), dtype=np.float32)
    noise = rng.normal(0, 0.15, (count, height, width, 3)).astype(np.float32)
    return np.clip(0.6 * ramp * tint + 0.2 + noise, 0, 1).astype(np.float32)


@pytest.mark.parametrize("height, width", [(37, 29), (31, 65), (9, 9)])
def test_the_differentiable_stage_matches_the_stage_denoise_runs(height, width):
    images = _images(len(LEVELS), height, width)
    batched = np.asarray(smooth_chroma_differentiable(images, np.array(LEVELS, np.float32)))
    for image, level, output in zip(images, LEVELS, batched, strict=True):
        # Both sides work in float32, but OpenCV sums its boxes in float64 and the variance
        # and covariance (differences of box means) are divided by epsilon 1e-3: 2.7e-6 at
        # most over 20 seeds and these sizes, so 2e-5 leaves room, and a wrong radius or
        # padding moves pixels by 1e-3 or more.
        np.testing.assert_allclose(output, smooth_chroma(image, level), atol=2e-5)
    assert RADIUS_BY_LEVEL[0][0] > LEVELS[1]  # 0.029 is below the first step: unchanged
    np.testing.assert_array_equal(batched[1], images[1])


def test_the_loss_is_the_mse_after_the_stage_and_has_gradients():
    clean = _images(3, 24, 20, seed=1)
    output = _images(3, 24, 20, seed=2)
    levels = np.array([0.0, 0.1, 0.3], np.float32)
    target = np.concatenate([clean, np.broadcast_to(levels[:, None, None, None],
                                                    (3, 24, 20, 1))], axis=-1)
    output_tensor = tf.constant(output)
    with tf.GradientTape() as tape:
        tape.watch(output_tensor)
        loss = mse_after_chroma(tf.constant(target), output_tensor)
        mean_loss = tf.reduce_mean(loss)
    expected = [np.mean((smooth_chroma(image, level) - reference) ** 2, axis=-1)
                for image, level, reference in zip(output, levels, clean, strict=True)]
    np.testing.assert_allclose(np.asarray(loss), np.stack(expected), atol=1e-5)
    gradient = np.asarray(tape.gradient(mean_loss, output_tensor))
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).sum() > 0


def test_the_target_carries_each_images_level(prepared_sample):
    config = TrainConfig(batch_size=4, seed=3, noise_range=(0.0, 0.5), patch_size=32)
    dataset, _ = training_dataset(prepared_sample, config, 0.3, with_level=True)
    (noisy, level), target, weight = next(iter(with_level_in_target(dataset)))
    assert target.shape == (4, 32, 32, 4) and noisy.shape == (4, 32, 32, 3)
    level_maps = np.asarray(target[..., 3])
    np.testing.assert_array_equal(level_maps, np.broadcast_to(np.asarray(level)[:, :, None],
                                                              level_maps.shape))
    assert len(set(np.asarray(level)[:, 0].tolist())) > 1  # one level per image
    assert weight.shape == (4, 1, 1)


class _Shift:
    """A stand-in model whose output has colour noise: the input plus fixed colour speckle."""

    def __init__(self, speckle):
        self.speckle = speckle

    def predict(self, inputs, **kwargs):
        return np.clip(inputs[0] + self.speckle, 0, 1).astype(np.float32)


@pytest.mark.parametrize("chroma_filter", [False, True])
def test_level_validation_scores_after_the_stage_when_asked(chroma_filter):
    clean = _images(4, 32, 32, seed=4) * 0.5 + 0.25
    speckle = np.random.default_rng(5).normal(0, 0.05, clean.shape[1:]).astype(np.float32)
    callback = LevelValidation(list(clean), (0.3,), seed=6, chroma_filter=chroma_filter)
    callback.set_model(_Shift(speckle))
    logs = {}
    callback.on_epoch_end(0, logs)
    restored = _Shift(speckle).predict([callback.noisy[0.3]])
    if chroma_filter:
        restored = np.stack([smooth_chroma(image, 0.3) for image in restored])
    mse = np.mean((restored - clean) ** 2, axis=(1, 2, 3))
    # The callback's own arithmetic on the same arrays: float rounding only.
    assert logs["val_psnr_at_0.3"] == pytest.approx(np.mean(10 * np.log10(1 / mse)), abs=1e-4)


def test_it_needs_a_noise_input_and_mse(prepared_sample, tmp_path):
    plain = ModelConfig(arch="unet", width=4, depth=2, noise_input=False)
    config = TrainConfig(noise_range=(0.0, 0.5), loss_after_chroma=True)
    with pytest.raises(FaceDenoiseError, match="noise-conditional"):
        train(prepared_sample, tmp_path / "runs", plain, TrainConfig(loss_after_chroma=True))
    with pytest.raises(FaceDenoiseError, match="mse only"):
        train(prepared_sample, tmp_path / "runs", ModelConfig(arch="resunet", width=4, depth=2),
              replace(config, loss="l1"))
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_run_through_the_stage_trains_and_resumes(prepared_sample, tmp_path):
    model = ModelConfig(arch="resunet", width=4, depth=2)
    config = TrainConfig(epochs=1, batch_size=4, steps_per_epoch=2, noise_range=(0.0, 0.5),
                         patch_size=64, loss_after_chroma=True)
    run_dir = train(prepared_sample, tmp_path / "runs", model, config)
    run_dir = train(None, tmp_path / "runs", resume=run_dir, epochs=2)  # reloads the loss
    resumed = load_model(run_dir / "last.keras", compile=True)
    assert resumed.loss is mse_after_chroma
    with (run_dir / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for row in rows:
        assert np.isfinite(float(row["loss"])) and float(row["val_psnr"]) > 10
        assert {"psnr", "ssim", "val_psnr_at_0.1", "val_psnr_mean"} <= set(row)


def test_the_command_refuses_it_with_another_loss_in_one_line(prepared_sample, tmp_path):
    from typer.testing import CliRunner

    from facedenoise.cli import app

    result = CliRunner().invoke(app, ["train", "--data", str(prepared_sample), "--runs",
                                      str(tmp_path / "runs"), "--loss", "l1",
                                      "--loss-after-chroma"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "--loss mse" in result.output and not (tmp_path / "runs").exists()
