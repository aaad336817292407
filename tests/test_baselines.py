"""Classical baselines: every one runs on real noisy faces of odd sizes and helps; names parse."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from facedenoise import baselines
from facedenoise.baselines import BASELINES, parse_baselines
from facedenoise.errors import FaceDenoiseError
from facedenoise.imageio import read_image
from facedenoise.metrics import psnr_ssim
from facedenoise.noise import add_gaussian_noise

NOISE_FACTOR = 0.3
# The tuned baselines gain 7-10 dB at noise factor 0.3 (docs/baselines.md); 4 dB leaves room
# for two small odd-sized crops while still catching a broken parameter (e.g. no smoothing).
MIN_GAIN_DB = 4.0


@pytest.fixture(scope="module")
def noisy_pairs(sample_faces):
    """Two real faces cropped to odd sizes, with noise factor 0.3."""
    rng = np.random.default_rng(1)
    pairs = []
    for path, (height, width) in zip(sample_faces[:2], [(101, 77), (128, 95)], strict=True):
        clean = read_image(path).pixels[:height, :width]
        pairs.append((add_gaussian_noise(clean, NOISE_FACTOR, rng), clean))
    return pairs


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=pytest.mark.slow) if name == "bm3d" else name for name in BASELINES],
)
def test_baseline_denoises_two_real_faces(name, noisy_pairs):
    baseline = BASELINES[name]
    for noisy, clean in noisy_pairs:
        denoised = baseline.run(noisy, NOISE_FACTOR)
        assert denoised.shape == noisy.shape
        assert denoised.dtype == np.float32
        assert denoised.min() >= 0.0 and denoised.max() <= 1.0
        psnr_in, _ = psnr_ssim(clean, noisy)
        psnr_out, _ = psnr_ssim(clean, denoised)
        assert psnr_out[0] - psnr_in[0] > MIN_GAIN_DB, f"{name} gained too little"


@pytest.mark.parametrize("name", ["gaussian", "nlm", "tv", "wavelet"])
def test_more_noise_means_more_smoothing(name, noisy_pairs):
    noisy, _ = noisy_pairs[0]

    def roughness(image):
        return float(np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean())

    gentle = BASELINES[name].run(noisy, 0.1)
    strong = BASELINES[name].run(noisy, 0.5)
    assert roughness(strong) < roughness(gentle)


@pytest.mark.parametrize("name", list(BASELINES))
def test_told_no_noise_every_baseline_returns_its_input(name, noisy_pairs):
    """The noise sweep's level 0: a clean image stays exactly as it is (no division by 0)."""
    if BASELINES[name].needs and importlib.util.find_spec(BASELINES[name].needs) is None:
        pytest.skip(f"{BASELINES[name].needs} is not installed")
    _, clean = noisy_pairs[1]
    assert np.array_equal(BASELINES[name].run(clean, 0.0), clean)


def test_parse_names_all_and_empty():
    assert parse_baselines("") == []
    assert parse_baselines(None) == []
    assert [b.name for b in parse_baselines(" NLM, tv,nlm ")] == ["nlm", "tv"]
    assert [b.name for b in parse_baselines("all")] == list(BASELINES)


def test_unknown_baseline_lists_the_valid_names():
    with pytest.raises(FaceDenoiseError, match="gaussian, nlm, tv, wavelet, bm3d"):
        parse_baselines("nlm,median")


@pytest.mark.parametrize(
    "name, module, hint",
    [("bm3d", "bm3d", r"pip install 'facedenoise\[bm3d\]'"),
     ("wavelet", "pywt", "pip install PyWavelets")],
)
def test_missing_package_says_how_to_install(monkeypatch, name, module, hint):
    real_find_spec = importlib.util.find_spec

    def find_spec(wanted, *args, **kwargs):
        return None if wanted == module else real_find_spec(wanted, *args, **kwargs)

    monkeypatch.setattr(baselines.importlib.util, "find_spec", find_spec)
    with pytest.raises(FaceDenoiseError, match=hint):
        parse_baselines(f"tv,{name}")
    assert [b.name for b in parse_baselines("tv")] == ["tv"]
