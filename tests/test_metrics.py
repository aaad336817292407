"""PSNR/SSIM: known answers, and agreement with scikit-image on real faces.

Tolerances: PSNR within 1e-4 dB and SSIM within 1e-4 of scikit-image. Both libraries use the
same 11x11 Gaussian window (sigma 1.5) and score the same pixels: TensorFlow filters 'valid',
scikit-image filters a reflect-padded image and then crops (win_size - 1) / 2 = 5 pixels from
every border, which leaves exactly the valid windows. What remains is float32 (TensorFlow)
against float64 (scikit-image) round-off, largest where SSIM is high because the variances
are differences of close numbers; we measured at most 2.2e-5 on real images.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from facedenoise.imageio import read_image
from facedenoise.metrics import psnr_ssim

PSNR_TOLERANCE_DB = 1e-4
SSIM_TOLERANCE = 1e-4
SSIM_K1 = 0.01


def _skimage_ssim(clean, restored):
    return structural_similarity(
        clean, restored, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=1.0, channel_axis=-1,
    )


@pytest.fixture(scope="module")
def faces(sample_faces):
    return [read_image(path).pixels for path in sample_faces[:4]]


def test_identical_images_have_infinite_psnr_and_unit_ssim(faces):
    psnr, ssim = psnr_ssim(np.stack(faces), np.stack(faces))
    assert np.all(np.isinf(psnr)) and np.all(psnr > 0)
    np.testing.assert_allclose(ssim, 1.0, atol=1e-6)


def test_constant_offset_known_answers():
    # A flat grey image shifted by 0.05: MSE 0.0025 -> PSNR 10 log10(1 / 0.0025) dB. With no
    # variance, SSIM is the luminance term alone: (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1).
    # TensorFlow is 1.9e-4 above it here: in float32, E[xy] - E[x]E[y] of a flat image leaves
    # ~1e-7 of round-off, which is not small next to C2 = 9e-4; hence the looser tolerance.
    clean = np.full((1, 32, 40, 3), 0.5, np.float32)
    psnr, ssim = psnr_ssim(clean, clean + 0.05)
    c1 = SSIM_K1**2
    assert psnr[0] == pytest.approx(10 * np.log10(1 / 0.0025), abs=1e-3)
    assert ssim[0] == pytest.approx((2 * 0.5 * 0.55 + c1) / (0.5**2 + 0.55**2 + c1), abs=5e-4)


def test_offset_on_a_real_face_has_the_offset_psnr(faces):
    clean = np.clip(faces[0], 0.1, 0.9)  # keep the shifted image inside [0, 1]
    psnr, _ = psnr_ssim(clean, clean + 0.1)
    assert psnr[0] == pytest.approx(20.0, abs=1e-3)


@pytest.mark.parametrize("size", [(128, 128), (37, 61)])
def test_matches_scikit_image_on_real_faces(faces, size):
    rng = np.random.default_rng(0)
    height, width = size
    clean = np.stack([face[:height, :width] for face in faces])
    for noise in (0.3, 0.05):  # SSIM near 0.1 and near 0.9
        restored = np.clip(clean + noise * rng.standard_normal(clean.shape), 0, 1)
        restored = restored.astype(np.float32)
        psnr, ssim = psnr_ssim(clean, restored)
        for index in range(len(clean)):
            expected_psnr = peak_signal_noise_ratio(clean[index], restored[index], data_range=1.0)
            expected_ssim = _skimage_ssim(clean[index], restored[index])
            assert psnr[index] == pytest.approx(expected_psnr, abs=PSNR_TOLERANCE_DB)
            assert ssim[index] == pytest.approx(expected_ssim, abs=SSIM_TOLERANCE)


def test_single_image_is_a_batch_of_one(faces):
    psnr, ssim = psnr_ssim(faces[0], np.clip(faces[0] + 0.02, 0, 1))
    assert psnr.shape == ssim.shape == (1,)
    assert psnr.dtype == np.float64


@pytest.mark.parametrize("size, channels", [((11, 11), 3), ((37, 61), 3), ((128, 128), 3),
                                            ((203, 150), 1)])
def test_ssim_equals_tensorflows_definition(faces, size, channels):
    # metrics.ssim filters with two 1-D passes instead of tf.image.ssim's 11x11 window: the
    # same sums in another order, so float32 round-off only, largest near SSIM 1 where the
    # variances are differences of close numbers. Against scikit-image in float64 it was off
    # by at most 1.5e-5 on these images, tf.image.ssim by up to 2.7e-5 (4e-5 between them).
    import tensorflow as tf

    from facedenoise.metrics import ssim

    rng = np.random.default_rng(5)
    height, width = size
    clean = np.stack([np.resize(face, (height, width, 3))[..., :channels] for face in faces])
    for noise in (0.3, 0.02):
        restored = np.clip(clean + noise * rng.standard_normal(clean.shape), 0, 1)
        restored = restored.astype(np.float32)
        ours = np.asarray(ssim(clean, restored))
        exact = [_skimage_ssim(image.astype(np.float64), output.astype(np.float64))
                 for image, output in zip(clean, restored, strict=True)]
        np.testing.assert_allclose(ours, exact, atol=3e-5)
        np.testing.assert_allclose(ours, tf.image.ssim(clean, restored, max_val=1.0).numpy(),
                                   atol=SSIM_TOLERANCE)


def test_ssim_refuses_images_smaller_than_its_window():
    import tensorflow as tf

    from facedenoise.metrics import ssim

    images = np.zeros((1, 10, 40, 3), np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least 11x11"):
        ssim(images, images)
