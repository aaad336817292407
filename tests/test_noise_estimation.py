"""estimate_noise_level: the level behind `--noise-level auto`, on real faces and photos.

Tolerances come from the spread measured by benchmarks/bench_estimator.py (all 24 bundled
faces, docs/noise_estimation.md): the largest error seen at each level, with about 1.5x room.
The noise is seeded, so every case is deterministic.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facedenoise.errors import FaceDenoiseError
from facedenoise.imageio import quantize, read_image
from facedenoise.noise import add_gaussian_noise, noise_rng
from facedenoise.noise_estimation import clipped_mean_std, estimate_noise_level

LEVELS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def tolerance(level: float) -> float:
    """Largest error allowed on one 128x128 image: 0.002 + 3.5% of the level. The worst
    errors measured over all 24 bundled faces with this file's noise: 0.0004 at 0.02, 0.0021
    at 0.1, 0.0053 at 0.3, 0.0138 at 0.5 (1.4x to 7x inside)."""
    return 0.002 + 0.035 * level


def noisy_8bit(clean: np.ndarray, level: float, image_id: str) -> np.ndarray:
    """The protocol's noise, stored as 8-bit and read back, as a user's file would be."""
    noisy = add_gaussian_noise(clean, level, noise_rng(7, image_id))
    return quantize(noisy).astype(np.float32) / 255.0


def jpeg(clean: np.ndarray, quality: int) -> np.ndarray:
    encoded = cv2.imencode(".jpg", quantize(clean)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded[1], cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def faces(sample_faces) -> dict[str, np.ndarray]:
    return {path.stem: read_image(path).pixels for path in sample_faces}


def test_clean_faces_read_about_zero(faces):
    estimates = {name: estimate_noise_level(face) for name, face in faces.items()}
    # Measured: at most 0.005 (the film grain of old photographs); the target is 0.01.
    assert max(estimates.values()) < 0.01, estimates


@pytest.mark.parametrize("quality", [85, 95])
def test_clean_jpeg_faces_read_about_zero(faces, quality):
    estimates = [estimate_noise_level(jpeg(face, quality)) for face in list(faces.values())[:8]]
    assert max(estimates) < 0.01, estimates


def test_noise_in_a_jpeg_is_found_in_the_luminance(faces):
    # JPEG's chroma subsampling smooths the colour noise away and leaves the luminance noise
    # (measured on the bundled faces at 0.1, quality 85: 0.127, JPEG's own artefacts adding
    # to it); read jointly, the smooth colour differences would say "clean" (0.003).
    for name in ("astronaut", "obama", "swingset2_lisa"):
        estimate = estimate_noise_level(jpeg(noisy_8bit(faces[name], 0.1, name), 85))
        assert 0.08 <= estimate <= 0.15, (name, estimate)


@pytest.mark.parametrize("level", LEVELS)
def test_known_levels_are_recovered_on_faces(faces, level):
    names = list(faces)[::3]  # 8 faces of 24, different people and sources
    errors = np.array(
        [estimate_noise_level(noisy_8bit(faces[n], level, n)) - level for n in names]
    )
    assert np.abs(errors).max() <= tolerance(level), dict(zip(names, errors.round(4), strict=True))
    assert np.abs(errors).mean() <= 0.01  # the target


def test_a_photo_at_the_missions_level_and_a_low_one():
    from skimage import data

    for photo in (data.astronaut(), data.chelsea()):
        clean = photo.astype(np.float32) / 255.0
        for level in (0.05, 0.3):
            estimate = estimate_noise_level(noisy_8bit(clean, level, "photo"))
            assert abs(estimate - level) <= tolerance(level)


@pytest.mark.parametrize("level", [0.1, 0.3, 0.5])
@pytest.mark.parametrize("light", ["dark", "bright"])
def test_heavily_clipped_images(faces, level, light):
    # A dark face (values 0-0.15) loses about a third of its noise to clipping at 0.3; the
    # clipped std alone would read as about 0.2.
    for name in ("astronaut", "biden"):
        face = faces[name]
        clean = 0.15 * face if light == "dark" else 0.85 + 0.15 * face
        estimate = estimate_noise_level(noisy_8bit(clean, level, name))
        assert abs(estimate - level) <= 0.02, (name, estimate)


def test_a_large_image_is_sampled_and_still_right():
    rows, columns = np.mgrid[0:1500, 0:2000].astype(np.float32)
    clean = 0.5 + 0.3 * np.sin(rows / 150.0)[..., None] * np.cos(columns / 200.0)[..., None]
    clean = np.repeat(clean, 3, axis=2) * np.array([1.0, 0.9, 0.8], np.float32)
    estimate = estimate_noise_level(noisy_8bit(clean, 0.2, "large"))
    assert abs(estimate - 0.2) <= tolerance(0.2)


def test_grey_images_in_both_layouts(faces):
    grey = faces["einstein"][..., 0]
    noisy = noisy_8bit(grey, 0.1, "grey")
    assert abs(estimate_noise_level(noisy) - 0.1) <= tolerance(0.1)
    # The same grey noise copied to R, G and B: colour differences are 0, which must not read
    # as a clean image.
    same_in_rgb = np.repeat(noisy[..., None], 3, axis=2)
    assert estimate_noise_level(same_in_rgb) == pytest.approx(estimate_noise_level(noisy))


def test_deterministic_and_leaves_its_input_alone(faces):
    noisy = noisy_8bit(faces["curie"], 0.2, "curie")
    before = noisy.copy()
    first = estimate_noise_level(noisy)
    assert estimate_noise_level(noisy) == first
    np.testing.assert_array_equal(noisy, before)
    assert isinstance(first, float)


@pytest.mark.parametrize("level", [0.1, 0.3])
@pytest.mark.parametrize("bar_value", [0.0, 1.0])
def test_bars_added_after_the_noise_do_not_hide_it(faces, level, bar_value):
    # Letterbox bars, scan margins, cut-out backgrounds: exact constants. With 32-pixel bars
    # on a 512x512 mosaic (a quarter of its blocks) the estimate read 0.000 at 0.3.
    names = sorted(faces)
    mosaic = np.concatenate([np.concatenate([faces[names[(4 * row + column) % len(names)]]
                                             for column in range(4)], axis=1)
                             for row in range(4)], axis=0)
    noisy = noisy_8bit(mosaic, level, "bars")
    noisy[:64] = bar_value
    noisy[-64:] = bar_value
    assert abs(estimate_noise_level(noisy) - level) <= tolerance(level)


def test_flat_and_saturated_images_read_zero():
    for value in (0.0, 0.4, 1.0):
        assert estimate_noise_level(np.full((40, 40, 3), value, np.float32)) == 0.0


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        (np.zeros((10, 40, 3), np.float32), "at least 20x20"),
        (np.zeros((40, 40, 4), np.float32), "HxWx3 or HxW"),
        (np.zeros((2, 40, 40, 3), np.float32), "HxWx3 or HxW"),
        (np.full((40, 40, 3), 255, np.uint8), "divide 8-bit images by 255"),
        (np.full((40, 40, 3), np.nan, np.float32), "values in [0, 1]"),
        (np.full((40, 40, 3), -0.5, np.float32), "values in [0, 1]"),
        (np.zeros((40, 40, 3), bool), "float image"),
    ],
)
def test_bad_input_gets_a_clear_error(pixels, message):
    with pytest.raises(FaceDenoiseError, match=message.replace("[", r"\[").replace("]", r"\]")):
        estimate_noise_level(pixels)


@pytest.mark.parametrize(("clean", "level"), [(0.5, 0.3), (0.05, 0.3), (0.95, 0.5), (0.0, 0.02)])
def test_clipped_moments_match_sampling(clean, level):
    samples = np.clip(clean + level * np.random.default_rng(0).standard_normal(1_000_000), 0, 1)
    mean, std = clipped_mean_std(clean, level)
    # 1e6 samples: the sample mean and std are within 5e-4 (> 4 standard errors) of the truth.
    assert float(mean) == pytest.approx(samples.mean(), abs=5e-4)
    assert float(std) == pytest.approx(samples.std(), abs=5e-4)


def test_clipped_moments_without_noise_are_the_clipped_value():
    mean, std = clipped_mean_std(np.array([-0.2, 0.3, 1.4]), 0.0)
    np.testing.assert_allclose(mean, [0.0, 0.3, 1.0])
    np.testing.assert_array_equal(std, 0.0)
