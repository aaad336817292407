"""The chroma stage: off at weak levels, luma kept, flat colour noise removed, colour edges
kept, and it reaches the Denoiser, `denoise` and `evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from facedenoise.cli import app
from facedenoise.config import DenoiseConfig
from facedenoise.imageio import read_image, write_image
from facedenoise.inference.chroma import (
    LUMA_WEIGHTS,
    RADIUS_BY_LEVEL,
    chroma_radius,
    smooth_chroma,
)
from facedenoise.metrics import psnr_ssim
from facedenoise.noise import add_gaussian_noise

runner = CliRunner()


def _colour_noise(shape=(40, 48), std=0.05, seed=0) -> np.ndarray:
    """Mid grey plus noise in the colour differences only (luma exactly 0.5)."""
    noise = np.random.default_rng(seed).normal(0, std, (*shape, 3)).astype(np.float32)
    noise -= (noise @ LUMA_WEIGHTS)[..., None]  # remove its luma: only colour is noisy
    return 0.5 + noise


def test_the_radius_is_zero_below_the_first_level_and_grows_with_the_level():
    assert chroma_radius(None) == 0 and chroma_radius(0.0) == 0 and chroma_radius(0.029) == 0
    levels = np.linspace(0, 1, 101)
    radii = [chroma_radius(level) for level in levels]
    assert radii == sorted(radii) and radii[-1] == RADIUS_BY_LEVEL[-1][1]


@pytest.mark.parametrize("level", [0.0, 0.02, None])
def test_weak_levels_give_the_image_back_untouched(level):
    image = _colour_noise()
    assert smooth_chroma(image, level) is image


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (31, 37), (65, 16)])
def test_luma_is_kept_and_flat_colour_noise_removed(shape):
    image = _colour_noise(shape)
    smoothed = smooth_chroma(image, 0.3)
    assert smoothed.shape == image.shape and smoothed.dtype == np.float32
    # No value nears 0 or 1, so nothing clips: luma is kept up to float32 rounding.
    np.testing.assert_allclose(smoothed @ LUMA_WEIGHTS, image @ LUMA_WEIGHTS, atol=1e-5)
    if min(shape) >= 16:  # enough pixels for a 9x9 window to average
        assert np.std(smoothed - 0.5) < 0.3 * np.std(image - 0.5)


def test_a_colour_edge_that_follows_a_luma_edge_stays_sharp():
    # Dark red on the left, bright green on the right: guided by luma, the colour step stays
    # where the brightness step is (a plain blur of radius 4 would smear it over 8 pixels).
    image = np.zeros((32, 32, 3), np.float32)
    image[:, :16] = (0.45, 0.15, 0.15)
    image[:, 16:] = (0.35, 0.8, 0.35)
    smoothed = smooth_chroma(image, 0.5)
    # Luma differs by 0.38 across the edge, far above the filter's epsilon (0.03 std): the
    # pixels next to the edge move by 2.2/255 at most (measured), where a box blur of the
    # colour with the same radius moves them by 54/255.
    assert np.abs(smoothed - image)[:, 14:18].max() < 3 / 255


def _identity_denoiser(run, chroma_filter: bool):
    from facedenoise.inference import Denoiser

    # top_up off: the image as it is reaches the model
    denoiser = Denoiser.load(run, config=DenoiseConfig(chroma_filter=chroma_filter,
                                                       top_up=False))
    denoiser.runtime = lambda batch, levels: batch
    return denoiser


def test_the_denoiser_applies_it_after_the_model_when_asked(tiny_conditional_run, tiny_run):
    image = _colour_noise((40, 44))
    filtered = _identity_denoiser(tiny_conditional_run, True)
    plain = _identity_denoiser(tiny_conditional_run, False)
    np.testing.assert_array_equal(plain.denoise(image, noise_level=0.3), image)
    np.testing.assert_allclose(filtered.denoise(image, noise_level=0.3),
                               smooth_chroma(image, 0.3), atol=1e-6)
    # A model without a noise input has no level to steer the filter: it is skipped.
    blind = _identity_denoiser(tiny_run, True)
    np.testing.assert_array_equal(blind.denoise(image), image)


def test_the_starter_with_it_beats_the_starter_without_on_held_out_faces(prepared_sample):
    # Measured on these 5 test faces at 0.3 (noise seed 4): 23.65 -> 25.28 dB, +1.62 dB; any
    # clear gain (0.3 dB, well above the spread between noise draws) is what this checks.
    from facedenoise.dataset import clean_files
    from facedenoise.inference import Denoiser

    faces = [read_image(path).pixels for path in clean_files(prepared_sample, "test")]
    rng = np.random.default_rng(4)
    noisy = [add_gaussian_noise(face, 0.3, rng) for face in faces]
    scores = {}
    for chroma_filter in (False, True):
        denoiser = Denoiser.load("starter", config=DenoiseConfig(chroma_filter=chroma_filter))
        outputs = [denoiser.denoise(image) for image in noisy]
        scores[chroma_filter] = np.mean(psnr_ssim(np.stack(faces), np.stack(outputs))[0])
    assert scores[True] > scores[False] + 0.3


def test_denoise_and_evaluate_take_the_option(tmp_path, sample_faces, tiny_conditional_run):
    clean = read_image(sample_faces[1]).pixels
    noisy = add_gaussian_noise(clean, 0.3, np.random.default_rng(1))
    write_image(tmp_path / "face.png", noisy)
    outputs = {}
    for flag in ("--chroma-filter", "--no-chroma-filter"):
        out = tmp_path / f"{flag}.png"
        result = runner.invoke(app, ["denoise", str(tmp_path / "face.png"), str(out),
                                     "--model", str(tiny_conditional_run), "--noise-level",
                                     "0.3", flag])
        assert result.exit_code == 0, result.output
        assert ("no chroma filter" in result.output) == (flag == "--no-chroma-filter")
        outputs[flag] = read_image(out).pixels
    assert not np.array_equal(outputs["--chroma-filter"], outputs["--no-chroma-filter"])

    pairs = tmp_path / "noisy", tmp_path / "clean"
    for folder, image in zip(pairs, (noisy, clean), strict=True):
        folder.mkdir()
        write_image(folder / "face.png", image)
    result = runner.invoke(app, ["evaluate", "--model", str(tiny_conditional_run), "--pairs",
                                 *map(str, pairs), "--no-chroma-filter", "--json"])
    assert result.exit_code == 0, result.output
    report = tiny_conditional_run / "eval" / "pairs-no-chroma-filter"
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["chroma_filter"] is False
