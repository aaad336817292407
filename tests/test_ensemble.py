"""Test-time self-ensemble (`--ensemble`): transforms undo exactly, an orientation-blind
model is unchanged, fold-offset patterns average out, and it reaches the CLI and evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from facedenoise.cli import app
from facedenoise.errors import FaceDenoiseError
from facedenoise.imageio import read_image, write_image
from facedenoise.inference.ensemble import (
    ENSEMBLE_SIZES,
    TRANSFORMS,
    check_ensemble,
    self_ensemble,
    transform,
    undo,
)
from facedenoise.metrics import psnr_ssim
from facedenoise.noise import add_gaussian_noise

runner = CliRunner()


def _batch(shape=(2, 6, 10, 3)) -> np.ndarray:
    return np.random.default_rng(0).random(shape, dtype=np.float32)


def test_every_transform_is_undone_exactly_and_all_eight_differ():
    batch = _batch((2, 5, 7, 3))  # odd, non-square: rotations swap the sides
    seen = set()
    for turns, mirror in TRANSFORMS:
        moved = transform(batch, turns, mirror)
        np.testing.assert_array_equal(undo(moved, turns, mirror), batch)
        seen.add(np.ascontiguousarray(transform(_batch((1, 4, 4, 1)), turns, mirror)).tobytes())
    assert len(seen) == 8


@pytest.mark.parametrize("size", ENSEMBLE_SIZES)
def test_a_model_blind_to_orientation_gives_its_plain_answer(size):
    batch = _batch()
    calls = []

    def pointwise(view):
        calls.append(view.shape)
        return view * 0.5 + 0.1

    result = self_ensemble(pointwise, batch, size)
    # `size` equal float32 values, summed in float64: their mean is exact.
    np.testing.assert_array_equal(result, batch * 0.5 + 0.1)
    assert len(calls) == size and result.dtype == np.float32 and result.flags.c_contiguous


def _fold_pattern(view: np.ndarray) -> np.ndarray:
    """What a model with a 2x2 fold might add: a value per (row, column) parity."""
    rows = np.arange(view.shape[1])[:, None] % 2
    columns = np.arange(view.shape[2])[None, :] % 2
    pattern = np.array([[0.04, -0.01], [0.02, -0.05]], np.float32)[rows, columns]
    return view + pattern[None, :, :, None]


def test_four_transforms_average_a_fold_pattern_out_of_even_images():
    batch = _batch((1, 8, 12, 3))
    mean = np.float32((0.04 - 0.01 + 0.02 - 0.05) / 4)
    np.testing.assert_allclose(self_ensemble(_fold_pattern, batch, 4), batch + mean, atol=1e-6)
    # Two transforms (the half turn) move both parities at once: the checkerboard part,
    # (0.04 + 0.01 - 0.02 - 0.05) / 4 = -0.005, stays.
    left = np.abs(self_ensemble(_fold_pattern, batch, 2) - batch - mean)
    np.testing.assert_allclose(left, 0.005, atol=1e-6)


@pytest.mark.parametrize("size", [0, 3, 16, 2.0, True])
def test_other_sizes_are_refused(size):
    with pytest.raises(FaceDenoiseError, match="--ensemble must be one of 1, 2, 4, 8"):
        check_ensemble(size)


@pytest.mark.parametrize("shape", [(301, 40), (40, 301), (50, 37)])
def test_tiles_and_bands_see_the_ensemble_like_whole_images(tiny_run, shape):
    # Non-square tiles turn into their transpose under a quarter turn; tiles are predicted on a
    # worker thread and blended in place. With a model blind to orientation, every ensemble
    # must give back the plain result exactly (uint16: any slip would show).
    from facedenoise.config import DenoiseConfig
    from facedenoise.inference import Denoiser

    image = (np.random.default_rng(5).random((*shape, 3)) * 65535).astype(np.uint16)
    results = []
    for size in ENSEMBLE_SIZES:
        denoiser = Denoiser.load(tiny_run, config=DenoiseConfig(tile=64, batch_size=3,
                                                                ensemble=size))
        denoiser.runtime = lambda batch, levels: np.sqrt(batch) * np.float32(0.9)
        results.append(denoiser.denoise(image))
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])
    assert not np.array_equal(results[0], image)  # the fake model did run


def test_the_ensemble_cleans_held_out_faces_a_little_more(prepared_sample):
    # Measured on the 9 held-out faces at 0.1: +0.34 dB for 8 transforms
    # (docs/architecture_experiments.md); any gain at all is what this checks.
    from facedenoise.config import DenoiseConfig
    from facedenoise.dataset import clean_files
    from facedenoise.inference import Denoiser

    faces = [read_image(path).pixels for path in clean_files(prepared_sample, "test")]
    rng = np.random.default_rng(3)
    noisy = [add_gaussian_noise(face, 0.1, rng) for face in faces]
    scores = {}
    for size in (1, 8):
        denoiser = Denoiser.load("starter", config=DenoiseConfig(ensemble=size))
        outputs = [denoiser.denoise(image, noise_level=0.1) for image in noisy]
        scores[size] = np.mean(psnr_ssim(np.stack(faces), np.stack(outputs))[0])
    assert scores[8] > scores[1]


def test_denoise_and_evaluate_take_the_option(tmp_path, sample_faces, tiny_run):
    write_image(tmp_path / "face.png", read_image(sample_faces[0]).pixels)
    plain = runner.invoke(app, ["denoise", str(tmp_path / "face.png"), str(tmp_path / "a.png"),
                                "--model", str(tiny_run)])
    averaged = runner.invoke(app, ["denoise", str(tmp_path / "face.png"),
                                   str(tmp_path / "b.png"), "--model", str(tiny_run),
                                   "--ensemble", "4"])
    assert plain.exit_code == 0 and averaged.exit_code == 0, averaged.output
    # The untrained tiny model is not orientation-blind: its average differs.
    assert not np.array_equal(read_image(tmp_path / "a.png").pixels,
                              read_image(tmp_path / "b.png").pixels)

    refused = runner.invoke(app, ["denoise", str(tmp_path / "face.png"), str(tmp_path / "c.png"),
                                  "--ensemble", "3"])
    assert refused.exit_code == 1 and not (tmp_path / "c.png").exists()
    assert refused.output.strip() == "error: --ensemble must be one of 1, 2, 4, 8, not 3."

    pairs = tmp_path / "noisy", tmp_path / "clean"
    clean = read_image(sample_faces[1]).pixels
    noisy = add_gaussian_noise(clean, 0.1, np.random.default_rng(1))
    for folder, image in zip(pairs, (noisy, clean), strict=True):
        folder.mkdir()
        write_image(folder / "face.png", image)
    scores = {}
    for size in (1, 2):
        report = tmp_path / f"report{size}"
        result = runner.invoke(app, ["evaluate", "--model", str(tiny_run), "--pairs",
                                     *map(str, pairs), "--out", str(report), "--ensemble",
                                     str(size), "--json"])
        assert result.exit_code == 0, result.output
        metrics = json.loads((report / "metrics.json").read_text())
        assert metrics["ensemble"] == size
        scores[size] = metrics["methods"]["model"]["psnr"]["mean"]
    assert scores[1] != scores[2]  # the setting reached the model

    refused = runner.invoke(app, ["evaluate", "--model", str(tiny_run), "--ensemble", "5"])
    assert refused.exit_code == 1
    assert refused.output.strip() == "error: --ensemble must be one of 1, 2, 4, 8, not 5."
